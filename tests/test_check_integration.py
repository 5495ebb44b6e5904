"""Tests for scripts/check_integration.py, the local hassfest/HACS stand-in."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_integration", REPO / "scripts" / "check_integration.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_integration", module)
    spec.loader.exec_module(module)
    return module


checker = _load_checker()

GOOD_MANIFEST: dict[str, Any] = {
    "domain": "pylontech",
    "name": "Pylontech",
    "codeowners": ["@someone"],
    "config_flow": True,
    "documentation": "https://example.org/pylontech",
    "iot_class": "local_polling",
    "issue_tracker": "https://example.org/pylontech/issues",
    "requirements": ["python-can==4.6.1", "serialx>=1.11.0"],
    "usb": [{"vid": "0403", "pid": "6001"}],
    "version": "0.1.0",
}

STRINGS: dict[str, Any] = {
    "config": {
        "step": {"user": {"title": "Connect", "description": "Port {port} at {baud} baud"}},
        "error": {"cannot_connect": "Could not connect: {error}"},
    },
    "entity": {"sensor": {"cell_voltage": {"name": "Cell {cell} voltage"}}},
    "exceptions": {"read_failed": {"message": "Reading failed: {error}"}},
    "issues": {"module_fault": {"title": "Module {number}", "description": "Fault {code}"}},
}


def _manifest(**changes: object) -> dict[str, Any]:
    manifest = copy.deepcopy(GOOD_MANIFEST)
    for key, value in changes.items():
        if value is None:
            del manifest[key]
        else:
            manifest[key] = value
    return manifest


def _one(errors: list[str], fragment: str) -> None:
    assert any(fragment in error for error in errors), errors


# ---- manifest --------------------------------------------------------------------------------
def test_good_manifest_passes() -> None:
    assert checker.check_manifest(GOOD_MANIFEST, directory_name="pylontech") == []


@pytest.mark.parametrize("key", ["domain", "name", "codeowners", "documentation", "iot_class"])
def test_manifest_required_keys(key: str) -> None:
    _one(checker.check_manifest(_manifest(**{key: None})), f"required key '{key}'")


def test_manifest_version_required_and_parseable() -> None:
    _one(checker.check_manifest(_manifest(version=None)), "required key 'version'")
    _one(checker.check_manifest(_manifest(version="latest and greatest")), "not a valid version")


def test_manifest_issue_tracker_required_by_hacs() -> None:
    _one(checker.check_manifest(_manifest(issue_tracker=None)), "issue_tracker")


def test_manifest_unknown_key() -> None:
    _one(checker.check_manifest(_manifest(homepage="https://x.org")), "unknown key 'homepage'")


def test_manifest_key_order() -> None:
    shuffled = dict(reversed(list(GOOD_MANIFEST.items())))
    _one(checker.check_manifest(shuffled), "keys must be ordered")
    # domain and name first, then alphabetical: name before codeowners is right.
    assert checker.check_manifest(GOOD_MANIFEST) == []


def test_manifest_urls_must_be_https() -> None:
    _one(
        checker.check_manifest(_manifest(documentation="http://example.org/x")),
        "'documentation' must be an https:// URL",
    )


def test_manifest_value_checks() -> None:
    _one(checker.check_manifest(_manifest(iot_class="local_pull")), "'iot_class' must be")
    _one(checker.check_manifest(_manifest(codeowners=["someone"])), "'codeowners'")
    _one(checker.check_manifest(_manifest(config_flow="yes")), "'config_flow' must be true")
    _one(checker.check_manifest(_manifest(requirements=["not a requirement!"])), "PEP 508")
    _one(checker.check_manifest(_manifest(usb=[{"vid": "0403", "pid": "6001x"}])), "'pid'")
    _one(checker.check_manifest(_manifest(usb=[{"vid": "1a86"}])), "upper-case hex")
    _one(checker.check_manifest(_manifest(usb=[{"vendor": "x"}])), "unknown key 'vendor'")
    _one(
        checker.check_manifest(GOOD_MANIFEST, directory_name="pylon"),
        "does not match its folder",
    )


def test_manifest_not_an_object() -> None:
    assert checker.check_manifest([1, 2]) == ["manifest.json: must be a JSON object"]


# ---- hacs.json --------------------------------------------------------------------------------
def test_hacs_good() -> None:
    assert checker.check_hacs({"name": "Pylontech", "homeassistant": "2026.10.0"}) == []


def test_hacs_rejects_unknown_keys() -> None:
    errors = checker.check_hacs(
        {"name": "Pylontech", "homeassistant": "2026.10.0", "render_readme": True}
    )
    assert errors == ["hacs.json: key 'render_readme' is not allowed by HACS"]


def test_hacs_requires_name_and_minimum_version() -> None:
    errors = checker.check_hacs({"content_in_root": False})
    _one(errors, "'name' is required")
    _one(errors, "'homeassistant' (minimum version) is required")


def test_hacs_types_and_versions() -> None:
    _one(checker.check_hacs({"name": "P", "homeassistant": "10"}), "not a Home Assistant version")
    _one(
        checker.check_hacs({"name": "P", "homeassistant": "2026.10.0", "zip_release": "yes"}),
        "'zip_release' has the wrong type",
    )
    _one(
        checker.check_hacs({"name": "P", "homeassistant": "2026.10.0", "zip_release": True}),
        "'zip_release' needs 'filename'",
    )


# ---- translations -----------------------------------------------------------------------------
def test_translations_consistent() -> None:
    german = copy.deepcopy(STRINGS)
    german["config"]["error"]["cannot_connect"] = "Keine Verbindung: {error}"
    used = [("sensor.py", "cell_voltage", "sensor"), ("coordinator.py", "read_failed", None)]
    errors = checker.check_translations(
        STRINGS, {"en": copy.deepcopy(STRINGS), "de": german}, used_keys=used
    )
    assert errors == []


def test_translations_missing_and_extra_keys() -> None:
    german = copy.deepcopy(STRINGS)
    del german["issues"]
    german["config"]["error"]["typo_key"] = "x"
    errors = checker.check_translations(STRINGS, {"en": STRINGS, "de": german})
    _one(errors, "translations/de.json: missing 'issues.module_fault.title'")
    _one(errors, "translations/de.json: 'config.error.typo_key' does not exist")


def test_translations_placeholder_mismatch() -> None:
    french = copy.deepcopy(STRINGS)
    french["config"]["step"]["user"]["description"] = "Port {porte} à {baud} bauds"
    errors = checker.check_translations(STRINGS, {"en": STRINGS, "fr": french})
    assert len(errors) == 1
    _one(errors, "'config.step.user.description' placeholders ['baud', 'porte']")


def test_translations_en_must_mirror_strings() -> None:
    english = copy.deepcopy(STRINGS)
    english["entity"]["sensor"]["cell_voltage"]["name"] = "Something else"
    del english["exceptions"]
    errors = checker.check_translations(STRINGS, {"en": english})
    _one(errors, "'entity.sensor.cell_voltage.name' differs from strings.json")
    _one(errors, "missing 'exceptions.read_failed.message' (present in strings.json)")
    _one(checker.check_translations(STRINGS, {}), "translations/en.json is missing")


def test_translations_unresolved_reference_and_bad_leaf() -> None:
    english = copy.deepcopy(STRINGS)
    english["config"]["error"]["cannot_connect"] = "[%key:common::config_flow::error%]"
    strings = copy.deepcopy(english)
    _one(checker.check_translations(strings, {"en": english}), "unresolved [%key:")
    broken = copy.deepcopy(STRINGS)
    broken["config"]["error"]["cannot_connect"] = 3
    _one(checker.check_translations(broken, {"en": STRINGS}), "must be a string, not int")


def test_translation_keys_used_in_code_must_exist() -> None:
    used = [("sensor.py", "cell_temperature", "sensor"), ("coordinator.py", "gone", None)]
    errors = checker.check_translations(STRINGS, {"en": STRINGS}, used_keys=used)
    _one(errors, "sensor.py: translation_key 'cell_temperature'")
    _one(errors, "coordinator.py: translation_key 'gone'")
    # A platform file only matches its own platform's entity strings.
    wrong_platform = [("binary_sensor.py", "cell_voltage", "binary_sensor")]
    _one(
        checker.check_translations(STRINGS, {"en": STRINGS}, used_keys=wrong_platform),
        "entity.binary_sensor.cell_voltage",
    )


def test_device_translation_keys() -> None:
    strings = copy.deepcopy(STRINGS)
    strings["device"] = {"module": {"name": "Module {number}"}}
    used = [("entity.py", "module", None)]
    assert checker.check_translations(strings, {"en": strings}, used_keys=used) == []
    _one(checker.check_translations(STRINGS, {"en": STRINGS}, used_keys=used), "device.module")


def test_find_translation_keys(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "x.py").write_text('translation_key = "ignored_in_core"\n')
    (tmp_path / "sensor.py").write_text(
        "DESC = Desc(key='a', translation_key='cell_voltage')\n"
        "class E:\n    _attr_translation_key = 'bank_state'\n"
        "raise Err(translation_domain='x', translation_key=NAME)\n"
    )
    (tmp_path / "coordinator.py").write_text("UpdateFailed(translation_key='read_failed')\n")
    found = checker.find_translation_keys(tmp_path)
    assert sorted(found) == [
        ("coordinator.py", "read_failed", None),
        ("sensor.py", "bank_state", "sensor"),
        ("sensor.py", "cell_voltage", "sensor"),
    ]


# ---- icons, services, quality scale -----------------------------------------------------------
def test_icons_shape() -> None:
    good = {
        "entity": {"sensor": {"cell_voltage": {"default": "mdi:flash", "state": {"x": "mdi:a"}}}},
        "services": {"refresh_details": {"service": "mdi:refresh"}},
    }
    assert checker.check_icons(good) == []
    bad = {
        "entity": {
            "sensor": {"a": {"state": {"on": "flash"}}, "b": "mdi:x"},
            "sensors": {"c": {"default": "mdi:x"}},
        },
        "services": {"refresh": "mdi:refresh", "other": {"icon": "mdi:x"}},
        "extra": {},
    }
    errors = checker.check_icons(bad)
    _one(errors, "entity.sensor.a: 'default' is required")
    _one(errors, "entity.sensor.a.state.on must be an 'mdi:name' icon")
    _one(errors, "entity.sensor.b must be an object")
    _one(errors, "entity.sensors is not an entity platform")
    _one(errors, "services.other must have a 'service' icon")
    _one(errors, "unknown top-level key 'extra'")


def test_services_need_strings() -> None:
    services = {"refresh_details": {"fields": {"module": {"selector": {"number": {}}}}}}
    strings = {"services": {"refresh_details": {"name": "Refresh", "description": "Reads."}}}
    errors = checker.check_services(services, strings, None)
    assert errors == [
        "strings.json: services.refresh_details.fields.module needs 'name' and 'description'"
    ]
    _one(checker.check_services({}, strings, None), "not in services.yaml")
    _one(checker.check_services(services, {}, None), "needs 'name' and 'description'")
    _one(checker.check_services({"a": None}, None, {"services": {}}), "services.a has no icon")


def test_quality_scale() -> None:
    good = {
        "rules": {
            "config-flow": "done",
            "docs-triggers": {"status": "exempt", "comment": "No triggers."},
            "brands": {"status": "todo", "comment": "Icon pending."},
        }
    }
    assert checker.check_quality_scale(good) == []
    bad = {
        "rules": {
            "config-flows": "done",
            "docs-conditions": {"status": "exempt"},
            "brands": {"status": "maybe", "note": "x"},
            "devices": 3,
        }
    }
    errors = checker.check_quality_scale(bad)
    _one(errors, "config-flows: unknown rule")
    _one(errors, "docs-conditions: an exemption needs a 'comment'")
    _one(errors, "brands: status must be one of")
    _one(errors, "brands: unknown keys ['note']")
    _one(errors, "devices: must be a status or a mapping")
    _one(checker.check_quality_scale({"rule": {}}), "exactly one key, 'rules'")


# ---- whole tree -------------------------------------------------------------------------------
def _write_tree(root: Path, manifest: dict[str, Any], hacs: dict[str, Any]) -> Path:
    package = root / "custom_components" / "pylontech"
    (package / "translations").mkdir(parents=True)
    (package / "manifest.json").write_text(json.dumps(manifest))
    (package / "strings.json").write_text(json.dumps(STRINGS))
    (package / "translations" / "en.json").write_text(json.dumps(STRINGS))
    (root / "hacs.json").write_text(json.dumps(hacs))
    return package


def test_tree_good_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good"
    _write_tree(good, GOOD_MANIFEST, {"name": "Pylontech", "homeassistant": "2026.10.0"})
    assert checker.check_tree(good) == []
    assert checker.main([str(good)]) == 0

    bad = tmp_path / "bad"
    package = _write_tree(bad, _manifest(version=None), {"name": "P", "render_readme": True})
    (package / "quality_scale.yaml").write_text("rules:\n  brands: sometime\n")
    (package / "icons.json").write_text("{not json")
    errors = checker.check_tree(bad)
    _one(errors, "custom_components/pylontech/manifest.json: required key 'version'")
    _one(errors, "hacs.json: key 'render_readme' is not allowed")
    _one(errors, "quality_scale.yaml: brands: status must be one of")
    _one(errors, "icons.json: cannot be read as JSON")
    capsys.readouterr()
    assert checker.main([str(bad)]) == 1
    assert "problem(s)" in capsys.readouterr().out


def test_tree_without_integration(tmp_path: Path) -> None:
    _one(checker.check_tree(tmp_path), "no integration found")


def test_repository_tree_passes() -> None:
    """The checked-in integration satisfies every check (same as scripts/lint)."""
    assert checker.check_tree(REPO) == []
