"""Sanity checks of the test environment that scripts/setup builds.

They fail loudly when the environment drifts from what the project targets (wrong Python,
wrong Home Assistant, the integration's requirements missing or outside HA's constraints),
which otherwise shows up as confusing import errors deep inside other tests.
"""

from __future__ import annotations

from importlib import metadata
import json
from pathlib import Path
import sys

import pytest

homeassistant_const = pytest.importorskip("homeassistant.const")
requirements = pytest.importorskip("packaging.requirements")

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "custom_components" / "pylontech" / "manifest.json"


def _ha_constraints() -> dict[str, str]:
    """Map of package name -> pinned version from Home Assistant's package_constraints.txt."""
    path = Path(homeassistant_const.__file__).with_name("package_constraints.txt")
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_python_is_the_home_assistant_one() -> None:
    assert sys.version_info >= (3, 14, 2)


def test_home_assistant_is_the_phacc_pinned_release() -> None:
    assert homeassistant_const.__version__ == "2026.10.4"
    assert metadata.version("pytest-homeassistant-custom-component") == "0.13.375"


def test_manifest_requirements_installed_within_ha_constraints() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    pins = _ha_constraints()
    for text in manifest.get("requirements", []):
        requirement = requirements.Requirement(text)
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{requirement.name} {installed} does not satisfy the manifest's '{text}': "
            "run scripts/setup"
        )
        pinned = pins.get(requirement.name.lower())
        if pinned is not None:
            assert installed == pinned, f"{requirement.name}: HA pins {pinned}, have {installed}"


def test_pytest_configuration(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.getini("asyncio_mode") == "auto"
    assert pytestconfig.getini("testpaths") == ["tests"]
    markers = " ".join(pytestconfig.getini("markers"))
    assert "soak:" in markers
    assert "slow:" in markers
