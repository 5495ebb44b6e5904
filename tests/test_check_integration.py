"""Tests for scripts/check_integration.py: the HACS and repository rules hassfest leaves out."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
import struct
import sys
from types import ModuleType
from typing import Any
import zlib

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


# ---- manifest (HACS) --------------------------------------------------------------------------
def test_good_manifest_passes() -> None:
    assert checker.check_manifest(GOOD_MANIFEST) == []


def test_manifest_version_required_and_parseable() -> None:
    _one(checker.check_manifest(_manifest(version=None)), "'version' is missing")
    _one(checker.check_manifest(_manifest(version="latest and greatest")), "not a valid version")


def test_manifest_issue_tracker_required_by_hacs() -> None:
    _one(checker.check_manifest(_manifest(issue_tracker=None)), "'issue_tracker' is missing")
    _one(
        checker.check_manifest(_manifest(issue_tracker="http://example.org/issues")),
        "'issue_tracker' must be an https:// URL",
    )


def test_manifest_schema_is_left_to_hassfest() -> None:
    """Keys, order and value types are hassfest's: not reported twice."""
    shuffled = dict(reversed(list(_manifest(iot_class="local_pull", homepage="x").items())))
    assert checker.check_manifest(shuffled) == []


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


# ---- brand ------------------------------------------------------------------------------------
def _png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(header))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def _brand(root: Path, **images: bytes) -> Path:
    brand = root / "brand"
    brand.mkdir(parents=True)
    for name, data in images.items():
        (brand / name.replace("_2x", "@2x")).write_bytes(data)
    return brand


def test_png_size() -> None:
    assert checker.png_size(_png(256, 128)) == (256, 128)
    assert checker.png_size(b"GIF89a" + bytes(30)) is None


def test_brand_good(tmp_path: Path) -> None:
    brand = _brand(
        tmp_path,
        **{"icon.png": _png(256, 256), "icon_2x.png": _png(512, 512)},
        **{"logo.png": _png(452, 128), "dark_logo_2x.png": _png(900, 256)},
    )
    assert checker.check_brand(brand) == []


def test_brand_icon_required(tmp_path: Path) -> None:
    _one(checker.check_brand(tmp_path / "brand"), "brand/icon.png is missing")
    brand = _brand(tmp_path, **{"logo.png": _png(256, 128)})
    _one(checker.check_brand(brand), "brand/icon.png is missing")


def test_brand_sizes_and_names(tmp_path: Path) -> None:
    brand = _brand(
        tmp_path,
        **{"icon.png": _png(256, 255), "icon_2x.png": b"not a png", "logo.png": _png(600, 100)},
        **{"banner.png": _png(10, 10)},
    )
    errors = checker.check_brand(brand)
    _one(errors, "brand/icon.png: must be 256x256 pixels, not 256x255")
    _one(errors, "brand/icon@2x.png: not a PNG file")
    _one(errors, "brand/logo.png: its shortest side must be 128 to 256 pixels, not 100")
    _one(errors, "brand/banner.png: not a brand image name")
    assert len(errors) == 4


# ---- whole tree -------------------------------------------------------------------------------
def _write_tree(root: Path, manifest: dict[str, Any], hacs: dict[str, Any]) -> Path:
    package = root / "custom_components" / "pylontech"
    (package / "translations").mkdir(parents=True)
    (package / "manifest.json").write_text(json.dumps(manifest))
    (package / "strings.json").write_text(json.dumps(STRINGS))
    (package / "translations" / "en.json").write_text(json.dumps(STRINGS))
    _brand(package, **{"icon.png": _png(256, 256)})
    (root / "hacs.json").write_text(json.dumps(hacs))
    return package


def test_tree_good_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good"
    _write_tree(good, GOOD_MANIFEST, {"name": "Pylontech", "homeassistant": "2026.10.0"})
    assert checker.check_tree(good) == []
    assert checker.main([str(good)]) == 0

    bad = tmp_path / "bad"
    package = _write_tree(bad, _manifest(version=None), {"name": "P", "render_readme": True})
    (package / "brand" / "icon.png").write_bytes(_png(128, 128))
    (package / "translations" / "de.json").write_text("{not json")
    errors = checker.check_tree(bad)
    _one(errors, "custom_components/pylontech/manifest.json: 'version' is missing")
    _one(errors, "hacs.json: key 'render_readme' is not allowed")
    _one(errors, "custom_components/pylontech/brand/icon.png: must be 256x256")
    _one(errors, "translations/de.json: cannot be read as JSON")
    capsys.readouterr()
    assert checker.main([str(bad)]) == 1
    assert "problem(s)" in capsys.readouterr().out


def test_tree_needs_hacs_json(tmp_path: Path) -> None:
    _write_tree(tmp_path, GOOD_MANIFEST, {})
    (tmp_path / "hacs.json").unlink()
    assert checker.check_tree(tmp_path) == ["hacs.json is missing (HACS requires it)"]


def test_tree_without_integration(tmp_path: Path) -> None:
    _one(checker.check_tree(tmp_path), "no integration found")


def test_repository_tree_passes() -> None:
    """The checked-in integration satisfies every check (same as scripts/lint)."""
    assert checker.check_tree(REPO) == []
