"""Load ``custom_components/pylontech/core`` as a standalone package.

The core has no Home Assistant imports and uses relative imports only, so it can be
loaded as ``pylontech_core`` in an environment without Home Assistant (the ``bench``
venv holding the peers), exactly the way ``scripts/decode`` does.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
import sys
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
CORE_DIR = ROOT / "custom_components" / "pylontech" / "core"
PACKAGE = "pylontech_core"


def load_core() -> ModuleType:
    """Import the core package once under the name ``pylontech_core``."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, CORE_DIR / "__init__.py", submodule_search_locations=[str(CORE_DIR)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {CORE_DIR}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def core_module(name: str) -> ModuleType:
    """``core_module("protocol.rs485")`` -> the loaded submodule."""
    load_core()
    return importlib.import_module(f"{PACKAGE}.{name}")
