"""Top-level test configuration.

Import the repository's ``custom_components`` package before any Home Assistant
fixture runs: PHACC's ``hass`` fixture puts its own testing config dir (with an empty
``custom_components`` package) first on ``sys.path``, and whichever package was
imported first is the one Home Assistant's loader finds.
"""

from __future__ import annotations

import importlib.util

import custom_components  # noqa: F401 - the import is the point (see above)


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


# The simulator's fixtures (``battery_simulator`` ...) for every test package.
pytest_plugins = [name for name in ("simulator.pytest_plugin",) if _available(name)]
