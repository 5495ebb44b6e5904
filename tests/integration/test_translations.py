"""Strings, translations and icons agree with the fault catalog and the entity tables."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

from custom_components.pylontech import binary_sensor, sensor
from custom_components.pylontech.core.faults import FAULTS
from custom_components.pylontech.core.faults.catalog import LOCATION_PLACEHOLDERS
from custom_components.pylontech.issues import FIXABLE, ISSUE_BANK_PLACEHOLDER

PACKAGE = Path(sensor.__file__).parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _load(name: str) -> dict[str, Any]:
    return json.loads((PACKAGE / name).read_text(encoding="utf-8"))


STRINGS = _load("strings.json")
ICONS = _load("icons.json")


def _leaves(node: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    if isinstance(node, dict):
        found: dict[tuple[str, ...], str] = {}
        for key, value in node.items():
            found.update(_leaves(value, (*path, key)))
        return found
    return {path: node}


def test_en_is_strings() -> None:
    """translations/en.json is a copy of strings.json."""
    assert _load("translations/en.json") == STRINGS


def test_every_fault_has_an_issue_text() -> None:
    """issues.<key> for every catalog fault, saying meaning, BMS action, recovery, steps."""
    issues = STRINGS["issues"]
    assert set(issues) == {str(f.key) for f in FAULTS}
    for fault in FAULTS:
        text = issues[fault.key]
        assert text["title"] == f"{{{ISSUE_BANK_PLACEHOLDER}}}: {fault.title}"
        if fault.key in FIXABLE:
            # hassfest: a fixable issue has a fix flow and no description; the flow's
            # confirm step explains the fault, then asks.
            assert fault.fix is not None
            assert "description" not in text
            confirm = text["fix_flow"]["step"]["confirm"]
            assert confirm["title"] == fault.fix.title
            description = confirm["description"]
            assert description.endswith(f"\n\n{fault.fix.confirm}")
            assert text["fix_flow"]["abort"]["not_loaded"]
        else:
            assert fault.fix is None
            assert "fix_flow" not in text
            description = text["description"]
        for part in (fault.meaning, fault.bms_action, fault.recovery, *fault.fix_steps):
            assert part in description, (fault.key, part)
        for number, step in enumerate(fault.fix_steps, 1):
            assert f"{number}. {step}" in description
        allowed = {*LOCATION_PLACEHOLDERS, ISSUE_BANK_PLACEHOLDER, *fault.placeholders}
        used = set(PLACEHOLDER.findall(description)) | set(PLACEHOLDER.findall(text["title"]))
        assert used <= allowed, (fault.key, used - allowed)
        # Two banks' repairs must say which bank they concern.
        assert ISSUE_BANK_PLACEHOLDER in PLACEHOLDER.findall(text["title"]), fault.key
        assert ISSUE_BANK_PLACEHOLDER in PLACEHOLDER.findall(description), fault.key


def _entity_keys() -> dict[str, set[str]]:
    sensors = {
        d.translation_key
        for d in (
            *sensor.BANK_SENSORS,
            *sensor.MODULE_SENSORS,
            *sensor.MODULE_SERIES,
            *sensor.ENERGY_COUNTERS,
        )
    }
    binaries = {
        d.translation_key
        for d in (
            *binary_sensor.FLAG_FAMILIES,
            *binary_sensor.BANK_BINARY_SENSORS,
            *binary_sensor.MODULE_BINARY_SENSORS,
            binary_sensor.BANK_BATTERY_LOW,
            binary_sensor.MODULE_BATTERY_LOW,
            binary_sensor.LINK_CONNECTIVITY,
            binary_sensor.COMPANION_CONNECTIVITY,
        )
    }
    return {"sensor": sensors, "binary_sensor": binaries}  # type: ignore[dict-item]


def test_every_entity_has_a_name_and_an_icon() -> None:
    """Each translation key the platforms use has a name and an icon, and nothing else."""
    for platform, keys in _entity_keys().items():
        assert set(STRINGS["entity"][platform]) == keys, platform
        assert set(ICONS["entity"][platform]) == keys, platform
        for key in keys:
            assert STRINGS["entity"][platform][key]["name"]
            assert ICONS["entity"][platform][key]["default"].startswith("mdi:")
    states = STRINGS["entity"]["sensor"]["state"]["state"]
    assert set(states) == set(sensor.MODULE_STATE_OPTIONS)
    assert set(ICONS["entity"]["sensor"]["state"]["state"]) == set(sensor.MODULE_STATE_OPTIONS)
    for family in binary_sensor.FLAG_FAMILIES:
        attributes = STRINGS["entity"]["binary_sensor"][family.key]["state_attributes"]
        assert attributes["flags"]["name"]


def test_module_device_names() -> None:
    """Module devices are named by position, with the group behind an LV-Hub."""
    assert STRINGS["device"]["module"]["name"] == "Module {number}"
    assert set(PLACEHOLDER.findall(STRINGS["device"]["group_module"]["name"])) == {
        "group",
        "number",
    }


@pytest.mark.parametrize("language", ["de", "nl"])
def test_translation_is_complete(language: str) -> None:
    """A translation has every string of strings.json, with the same placeholders."""
    translated = _leaves(_load(f"translations/{language}.json"))
    english = _leaves(STRINGS)
    assert set(translated) == set(english)
    for path, text in english.items():
        assert set(PLACEHOLDER.findall(translated[path])) == set(PLACEHOLDER.findall(text)), path
        assert translated[path].strip(), path
    for fault in FAULTS:
        path: tuple[str, ...] = ("issues", str(fault.key), "description")
        if fault.fix is not None:
            path = ("issues", str(fault.key), "fix_flow", "step", "confirm", "description")
        description = translated[path]
        steps = re.findall(r"^\d+\. ", description, flags=re.MULTILINE)
        assert len(steps) == len(fault.fix_steps), fault.key
        if fault.fix_steps:
            assert description != english[path]
