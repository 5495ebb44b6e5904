#!/usr/bin/env python3
"""The integration's repository rules that Home Assistant's hassfest does not check.

hassfest (scripts/lint runs it) validates the manifest schema, strings.json and en.json,
icons, services, config flow and the quality scale. What is left here:

* ``hacs.json``: only the keys HACS accepts, a ``name`` and a minimum ``homeassistant`` version.
* ``manifest.json``, as HACS reads it: an ``issue_tracker`` (https) and a ``version`` that
  HACS and Home Assistant can order (hassfest requires neither of them).
* ``brand/``: the icon (and logo) Home Assistant shows for a custom integration, as PNG files
  of the sizes the home-assistant/brands rules ask for.
* translations: ``en.json`` is ``strings.json`` (custom integrations load it at runtime),
  every other language has the same keys and ``{placeholders}`` and no ``[%key:...%]``
  reference (nothing resolves them outside core), and every literal ``translation_key`` in
  the Python code has an entry.

Runs on Python 3.11+ with the standard library.

Usage: ``scripts/check_integration.py [REPO_ROOT]``; exit status 1 when anything is wrong.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
import json
from pathlib import Path
import re
import struct
import sys
from typing import Any

DOMAIN_DIR = Path("custom_components")

HACS_KNOWN = frozenset(
    {
        "name",
        "content_in_root",
        "zip_release",
        "filename",
        "hide_default_branch",
        "country",
        "homeassistant",
        "hacs",
        "persistent_directory",
    }
)
HACS_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "content_in_root": bool,
    "zip_release": bool,
    "filename": str,
    "hide_default_branch": bool,
    "country": (str, list),
    "homeassistant": str,
    "hacs": str,
    "persistent_directory": str,
}

# Entity platforms a custom integration may provide (keys under strings/icons "entity").
ENTITY_PLATFORMS = frozenset(
    {
        "ai_task",
        "alarm_control_panel",
        "binary_sensor",
        "button",
        "calendar",
        "camera",
        "climate",
        "conversation",
        "cover",
        "date",
        "datetime",
        "device_tracker",
        "event",
        "fan",
        "humidifier",
        "image",
        "lawn_mower",
        "light",
        "lock",
        "media_player",
        "notify",
        "number",
        "remote",
        "scene",
        "select",
        "sensor",
        "siren",
        "stt",
        "switch",
        "text",
        "time",
        "todo",
        "tts",
        "update",
        "vacuum",
        "valve",
        "wake_word",
        "water_heater",
        "weather",
    }
)


# home-assistant/brands: square icons, logos with their shortest side in a range (pixels).
BRAND_ICONS = {"icon.png": 256, "icon@2x.png": 512}
BRAND_LOGOS = {"logo.png": (128, 256), "logo@2x.png": (256, 512)}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_VERSION_RE = re.compile(r"^\d+(\.\d+){1,3}([._-]?(a|b|rc|dev|beta|alpha)\.?\d*)?$")
_HA_VERSION_RE = re.compile(r"^20\d\d\.(\d|1[0-2])(\.\d+)?([ab]\d+|\.dev\d+|b\d+)?$")
_PLACEHOLDER_RE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_KEY_REF_RE = re.compile(r"\[%key:[^%]+%\]")


def _is_https_url(value: object) -> bool:
    return isinstance(value, str) and re.match(r"^https://[^\s/]+\.[^\s]+$", value) is not None


def _version_ok(value: str) -> bool:
    """Whether HACS/HA can order this version (AwesomeVersion when installed, else a regex)."""
    try:
        from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
    except ImportError:
        return _VERSION_RE.match(value) is not None
    return AwesomeVersion(value).strategy not in (
        AwesomeVersionStrategy.UNKNOWN,
        AwesomeVersionStrategy.SPECIALCONTAINER,
    )


# ------------------------------------------------------------------------------------------------
# manifest.json (what HACS needs beyond hassfest's schema)
# ------------------------------------------------------------------------------------------------
def check_manifest(manifest: object) -> list[str]:
    """Return the HACS errors for a parsed manifest.json: issue tracker and version."""
    if not isinstance(manifest, dict):
        return ["manifest.json: must be a JSON object"]
    errors: list[str] = []
    if "issue_tracker" not in manifest:
        errors.append("manifest.json: 'issue_tracker' is missing (HACS requires it)")
    elif not _is_https_url(manifest["issue_tracker"]):
        errors.append("manifest.json: 'issue_tracker' must be an https:// URL")
    if "version" not in manifest:
        errors.append("manifest.json: 'version' is missing (HACS requires it)")
    else:
        version = manifest["version"]
        if not isinstance(version, str) or not _version_ok(version):
            errors.append(
                f"manifest.json: 'version' {version!r} is not a valid version (e.g. '1.2.3')"
            )
    return errors


# ------------------------------------------------------------------------------------------------
# hacs.json
# ------------------------------------------------------------------------------------------------
def check_hacs(hacs: object) -> list[str]:
    """Return HACS-validation-style errors for a parsed hacs.json."""
    if not isinstance(hacs, dict):
        return ["hacs.json: must be a JSON object"]
    errors: list[str] = []
    for key, value in hacs.items():
        if key not in HACS_KNOWN:
            errors.append(f"hacs.json: key '{key}' is not allowed by HACS")
        elif not isinstance(value, HACS_TYPES[key]):
            errors.append(f"hacs.json: '{key}' has the wrong type ({type(value).__name__})")
    if not isinstance(hacs.get("name"), str) or not hacs.get("name"):
        errors.append("hacs.json: 'name' is required")
    minimum = hacs.get("homeassistant")
    if minimum is None:
        errors.append("hacs.json: 'homeassistant' (minimum version) is required")
    elif isinstance(minimum, str) and not _HA_VERSION_RE.match(minimum):
        errors.append(f"hacs.json: 'homeassistant' {minimum!r} is not a Home Assistant version")
    if hacs.get("zip_release") and not hacs.get("filename"):
        errors.append("hacs.json: 'zip_release' needs 'filename'")
    return errors


# ------------------------------------------------------------------------------------------------
# strings.json / translations
# ------------------------------------------------------------------------------------------------
def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from _leaves(value, path)
        else:
            yield path, value


def _placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(text))


def _check_tree_shape(tree: object, source: str) -> list[str]:
    if not isinstance(tree, dict):
        return [f"{source}: must be a JSON object"]
    errors = []
    for path, value in _leaves(tree):
        if not isinstance(value, str):
            errors.append(f"{source}: '{path}' must be a string, not {type(value).__name__}")
        elif not value.strip():
            errors.append(f"{source}: '{path}' is empty")
    return errors


def check_translations(
    strings: object | None,
    translations: Mapping[str, object],
    *,
    used_keys: Iterable[tuple[str, str, str | None]] = (),
) -> list[str]:
    """Compare strings.json with translations/<lang>.json and the translation keys in use.

    ``used_keys`` holds ``(file, translation_key, platform)`` triples found in the code;
    ``platform`` is the entity platform when the file is a platform module, else ``None``.
    """
    errors: list[str] = []
    if strings is not None:
        errors.extend(_check_tree_shape(strings, "strings.json"))
    for lang, tree in sorted(translations.items()):
        errors.extend(_check_tree_shape(tree, f"translations/{lang}.json"))
    if errors:
        return errors

    english = translations.get("en")
    if strings is not None and english is None:
        errors.append("translations/en.json is missing (custom integrations load it at runtime)")
    reference = english if english is not None else strings
    if reference is None:
        return errors
    assert isinstance(reference, dict)
    ref_leaves = dict(_leaves(reference))
    ref_name = "translations/en.json" if english is not None else "strings.json"

    if strings is not None and english is not None:
        assert isinstance(strings, dict)
        strings_leaves = dict(_leaves(strings))
        for path in sorted(strings_leaves.keys() - ref_leaves.keys()):
            errors.append(f"translations/en.json: missing '{path}' (present in strings.json)")
        for path in sorted(ref_leaves.keys() - strings_leaves.keys()):
            errors.append(f"translations/en.json: '{path}' is not in strings.json")
        for path in sorted(strings_leaves.keys() & ref_leaves.keys()):
            source_text, english_text = str(strings_leaves[path]), str(ref_leaves[path])
            if _KEY_REF_RE.search(source_text):
                continue  # resolved by hand in en.json; compared through placeholders of en only
            if source_text != english_text:
                errors.append(f"translations/en.json: '{path}' differs from strings.json")

    for lang, tree in sorted(translations.items()):
        source = f"translations/{lang}.json"
        assert isinstance(tree, dict)
        leaves = dict(_leaves(tree))
        for path, text in sorted(leaves.items()):
            assert isinstance(text, str)
            if _KEY_REF_RE.search(text):
                errors.append(f"{source}: '{path}' has an unresolved [%key:...%] reference")
        if lang == "en":
            continue
        for path in sorted(ref_leaves.keys() - leaves.keys()):
            errors.append(f"{source}: missing '{path}' (present in {ref_name})")
        for path in sorted(leaves.keys() - ref_leaves.keys()):
            errors.append(f"{source}: '{path}' does not exist in {ref_name}")
        for path in sorted(ref_leaves.keys() & leaves.keys()):
            want = _placeholders(str(ref_leaves[path]))
            have = _placeholders(str(leaves[path]))
            if want != have:
                errors.append(
                    f"{source}: '{path}' placeholders {sorted(have)} differ from "
                    f"{ref_name} {sorted(want)}"
                )

    for filename, key, platform in used_keys:
        if not _key_defined(reference, key, platform):
            where = f"entity.{platform}.{key}" if platform else f"'{key}'"
            errors.append(
                f"{filename}: translation_key '{key}' has no entry in {ref_name} "
                f"(looked for {where}, exceptions.{key}, issues.{key}, device.{key})"
            )
    return errors


def _key_defined(reference: Mapping[str, Any], key: str, platform: str | None) -> bool:
    sections = [
        reference.get("exceptions", {}),
        reference.get("issues", {}),
        reference.get("device", {}),  # DeviceInfo(translation_key=...)
    ]
    entity = reference.get("entity", {})
    if isinstance(entity, dict):
        if platform is not None:
            sections.append(entity.get(platform, {}))
        else:
            sections.extend(entity.values())
    sections.extend(
        (reference.get(name, {}) or {}).get(sub, {})
        for name in ("config", "options")
        for sub in ("step", "error", "abort")
    )
    sections.append(reference.get("selector", {}))
    sections.append(reference.get("services", {}))
    return any(isinstance(section, dict) and key in section for section in sections)


def find_translation_keys(package: Path) -> list[tuple[str, str, str | None]]:
    """Literal ``translation_key`` values in the integration's Python code (outside core/)."""
    found: list[tuple[str, str, str | None]] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] in ("core", "__pycache__"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as err:
            if sys.version_info < (3, 14):  # HA code may use 3.14 syntax; ruff judges it there
                print(f"note: {relative} not scanned on Python < 3.14", file=sys.stderr)
                continue
            raise SyntaxError(f"{path}: {err.msg} (line {err.lineno})") from err
        platform = path.stem if path.stem in ENTITY_PLATFORMS else None
        for node in ast.walk(tree):
            value: ast.expr | None = None
            if isinstance(node, ast.keyword) and node.arg == "translation_key":
                value = node.value
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(
                    isinstance(t, ast.Name) and t.id in ("_attr_translation_key", "translation_key")
                    for t in targets
                ):
                    value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append((str(relative), value.value, platform))
    return found


# ------------------------------------------------------------------------------------------------
# brand/
# ------------------------------------------------------------------------------------------------
def png_size(data: bytes) -> tuple[int, int] | None:
    """Return a PNG's (width, height) from its header, or None when it is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_brand(brand: Path) -> list[str]:
    """Check the brand images a custom integration ships (``brand/`` beside its manifest)."""
    if not (brand / "icon.png").is_file():
        return ["brand/icon.png is missing (Home Assistant shows it for the integration)"]
    errors: list[str] = []
    for path in sorted(brand.iterdir()):
        name = path.name.removeprefix("dark_")
        if name not in BRAND_ICONS and name not in BRAND_LOGOS:
            errors.append(f"brand/{path.name}: not a brand image name")
            continue
        size = png_size(path.read_bytes())
        if size is None:
            errors.append(f"brand/{path.name}: not a PNG file")
        elif name in BRAND_ICONS:
            side = BRAND_ICONS[name]
            if size != (side, side):
                errors.append(
                    f"brand/{path.name}: must be {side}x{side} pixels, not {size[0]}x{size[1]}"
                )
        else:
            low, high = BRAND_LOGOS[name]
            if not low <= min(size) <= high:
                errors.append(
                    f"brand/{path.name}: its shortest side must be {low} to {high} pixels, "
                    f"not {min(size)}"
                )
    return errors


# ------------------------------------------------------------------------------------------------
# The whole tree
# ------------------------------------------------------------------------------------------------
def _load_json(path: Path, errors: list[str], root: Path) -> object | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        errors.append(f"{path.relative_to(root)}: cannot be read as JSON: {err}")
        return None


def check_tree(root: Path) -> list[str]:
    """Run every check over the repository at ``root``."""
    errors: list[str] = []
    integrations = sorted(
        path.parent for path in (root / DOMAIN_DIR).glob("*/manifest.json") if path.is_file()
    )
    if not integrations:
        errors.append(f"{DOMAIN_DIR}/<domain>/manifest.json: no integration found")

    hacs_path = root / "hacs.json"
    if not hacs_path.exists():
        errors.append("hacs.json is missing (HACS requires it)")
    else:
        hacs = _load_json(hacs_path, errors, root)
        if hacs is not None:
            errors.extend(check_hacs(hacs))

    for package in integrations:
        rel = package.relative_to(root)
        manifest = _load_json(package / "manifest.json", errors, root)
        if manifest is not None:
            errors.extend(f"{rel}/{e}" for e in check_manifest(manifest))
        errors.extend(f"{rel}/{e}" for e in check_brand(package / "brand"))

        strings_path = package / "strings.json"
        strings = _load_json(strings_path, errors, root) if strings_path.exists() else None
        translations: dict[str, object] = {}
        for path in sorted((package / "translations").glob("*.json")):
            data = _load_json(path, errors, root)
            if data is not None:
                translations[path.stem] = data
        used = find_translation_keys(package)
        errors.extend(
            f"{rel}/{e}" for e in check_translations(strings, translations, used_keys=used)
        )
    return errors


def main(argv: list[str] | None = None) -> int:
    """Check the repository given as the only argument (default: this script's checkout)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parent.parent
    errors = check_tree(root.resolve())
    for error in errors:
        print(f"error: {error}")
    if errors:
        print(f"check_integration: {len(errors)} problem(s)")
        return 1
    print("check_integration: hacs.json, manifest (HACS), brand, translations OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
