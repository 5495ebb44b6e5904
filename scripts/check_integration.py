#!/usr/bin/env python3
"""Local stand-in for hassfest and the HACS action (both only run as containers from ghcr.io).

Checks the integration's metadata the way Home Assistant's validators would:

* ``custom_components/<domain>/manifest.json``: required and known keys, key order
  (``domain``, ``name``, then alphabetical), value types, https URLs, a parseable ``version``.
* ``hacs.json``: only the keys HACS accepts, a ``name`` and a minimum ``homeassistant`` version.
* ``strings.json`` and ``translations/*.json``: the same key tree as ``en``, the same
  ``{placeholders}``, no unresolved ``[%key:...%]`` references at runtime, and every literal
  ``translation_key`` used in the Python code present in the strings.
* ``icons.json``: ``entity`` -> platform -> key -> ``default``/``state``...; ``services``.
* ``services.yaml``: every action and field has a name and description in the strings.
* ``quality_scale.yaml``: known rules, valid statuses, comments on exemptions.

Files that do not exist yet are skipped (except the manifest); what exists is checked strictly.
Runs on Python 3.11+ with the standard library (PyYAML, when installed, for the YAML files).

Usage: ``scripts/check_integration.py [REPO_ROOT]``; exit status 1 when anything is wrong.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
import json
from pathlib import Path
import re
import sys
from typing import Any

try:  # Only the YAML files need it; the test environment always has it.
    import yaml
except ImportError:  # pragma: no cover - exercised only on bare hosts
    yaml = None

DOMAIN_DIR = Path("custom_components")

MANIFEST_REQUIRED = ("domain", "name", "codeowners", "documentation", "iot_class", "version")
# Keys Home Assistant's loader knows (homeassistant/loader.py `Manifest`), minus internal ones.
MANIFEST_KNOWN = frozenset(
    {
        "after_dependencies",
        "bluetooth",
        "codeowners",
        "config_flow",
        "dependencies",
        "dhcp",
        "disabled",
        "documentation",
        "domain",
        "homekit",
        "import_executor",
        "integration_type",
        "iot_class",
        "issue_tracker",
        "loggers",
        "mqtt",
        "name",
        "preview_features",
        "quality_scale",
        "requirements",
        "single_config_entry",
        "ssdp",
        "usb",
        "version",
        "zeroconf",
    }
)
IOT_CLASSES = frozenset(
    {"assumed_state", "calculated", "cloud_polling", "cloud_push", "local_polling", "local_push"}
)
INTEGRATION_TYPES = frozenset(
    {"device", "entity", "hardware", "helper", "hub", "service", "system", "virtual"}
)
QUALITY_SCALE_TIERS = frozenset({"bronze", "silver", "gold", "platinum", "internal", "legacy"})
USB_MATCHER_KEYS = frozenset({"vid", "pid", "serial_number", "manufacturer", "description"})

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

# Integration quality scale rules (hassfest's list as of Home Assistant 2026.11).
QUALITY_RULES = frozenset(
    {
        # Bronze
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
        # Silver
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
        # Gold
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
        # Platinum
        "async-dependency",
        "inject-websession",
        "strict-typing",
    }
)
QUALITY_STATUSES = frozenset({"done", "todo", "exempt"})

ICON_TOP_KEYS = frozenset({"entity", "entity_component", "services", "triggers", "conditions"})
ICON_ENTITY_KEYS = frozenset({"default", "state", "state_attributes", "range"})
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

_VERSION_RE = re.compile(r"^\d+(\.\d+){1,3}([._-]?(a|b|rc|dev|beta|alpha)\.?\d*)?$")
_HA_VERSION_RE = re.compile(r"^20\d\d\.(\d|1[0-2])(\.\d+)?([ab]\d+|\.dev\d+|b\d+)?$")
_DOMAIN_RE = re.compile(r"^[a-z0-9_]+$")
_HEX4_UPPER_RE = re.compile(r"^[0-9A-F]{4}$")
_ICON_RE = re.compile(r"^mdi:[a-z0-9]+(-[a-z0-9]+)*$")
_PLACEHOLDER_RE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_KEY_REF_RE = re.compile(r"\[%key:[^%]+%\]")
_TRANSLATION_KEY_RE = re.compile(r"^[a-z0-9_-]+$")
_REQUIREMENT_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?"
    r"(\s*(===|==|!=|~=|>=|<=|>|<)\s*[A-Za-z0-9.*+!_-]+(\s*,\s*(===|==|!=|~=|>=|<=|>|<)\s*[A-Za-z0-9.*+!_-]+)*)?"
    r"(\s*;.+)?$"
)


def _is_https_url(value: object) -> bool:
    return isinstance(value, str) and re.match(r"^https://[^\s/]+\.[^\s]+$", value) is not None


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


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
# manifest.json
# ------------------------------------------------------------------------------------------------
def check_manifest(manifest: object, *, directory_name: str | None = None) -> list[str]:
    """Return hassfest/HACS-style errors for a parsed manifest.json."""
    if not isinstance(manifest, dict):
        return ["manifest.json: must be a JSON object"]
    errors: list[str] = []
    err = errors.append
    err_prefix = "manifest.json"
    for key in MANIFEST_REQUIRED:
        if key not in manifest:
            err(f"{err_prefix}: required key '{key}' is missing")
    if "issue_tracker" not in manifest:
        err(f"{err_prefix}: 'issue_tracker' is missing (HACS requires it)")
    for key in manifest:
        if key not in MANIFEST_KNOWN:
            err(f"{err_prefix}: unknown key '{key}'")
    keys = list(manifest)
    expected_order = [k for k in ("domain", "name") if k in manifest] + sorted(
        k for k in keys if k not in ("domain", "name")
    )
    if keys != expected_order:
        err(
            f"{err_prefix}: keys must be ordered domain, name, then alphabetically: "
            f"expected {expected_order}"
        )

    domain = manifest.get("domain")
    if "domain" in manifest:
        if not isinstance(domain, str) or not _DOMAIN_RE.match(domain):
            err(f"{err_prefix}: 'domain' must be lower-case letters, digits and underscores")
        elif directory_name is not None and domain != directory_name:
            err(f"{err_prefix}: domain '{domain}' does not match its folder '{directory_name}'")
    if "name" in manifest and (not isinstance(manifest["name"], str) or not manifest["name"]):
        err(f"{err_prefix}: 'name' must be a non-empty string")
    if "codeowners" in manifest:
        owners = manifest["codeowners"]
        if not _is_str_list(owners) or not all(o.startswith("@") for o in owners):
            err(f"{err_prefix}: 'codeowners' must be a list of '@user' or '@org/team' names")
    for key in ("documentation", "issue_tracker"):
        if key in manifest and not _is_https_url(manifest[key]):
            err(f"{err_prefix}: '{key}' must be an https:// URL")
    if "iot_class" in manifest and manifest["iot_class"] not in IOT_CLASSES:
        err(f"{err_prefix}: 'iot_class' must be one of {sorted(IOT_CLASSES)}")
    if "integration_type" in manifest and manifest["integration_type"] not in INTEGRATION_TYPES:
        err(f"{err_prefix}: 'integration_type' must be one of {sorted(INTEGRATION_TYPES)}")
    if "quality_scale" in manifest and manifest["quality_scale"] not in QUALITY_SCALE_TIERS:
        err(f"{err_prefix}: 'quality_scale' must be one of {sorted(QUALITY_SCALE_TIERS)}")
    if "version" in manifest:
        version = manifest["version"]
        if not isinstance(version, str) or not _version_ok(version):
            err(f"{err_prefix}: 'version' {version!r} is not a valid version (e.g. '1.2.3')")
    for key in ("config_flow", "single_config_entry", "import_executor"):
        if key in manifest and not isinstance(manifest[key], bool):
            err(f"{err_prefix}: '{key}' must be true or false")
    for key in ("dependencies", "after_dependencies", "loggers", "mqtt"):
        if key in manifest and not (
            isinstance(manifest[key], list) and all(isinstance(i, str) for i in manifest[key])
        ):
            err(f"{err_prefix}: '{key}' must be a list of strings")
    for key in ("dependencies", "after_dependencies"):
        if isinstance(manifest.get(key), list) and domain in manifest[key]:
            err(f"{err_prefix}: '{key}' must not contain the integration itself")
    if "requirements" in manifest:
        reqs = manifest["requirements"]
        if not isinstance(reqs, list):
            err(f"{err_prefix}: 'requirements' must be a list of strings")
        else:
            for req in reqs:
                if not isinstance(req, str) or not _REQUIREMENT_RE.match(req.strip()):
                    err(f"{err_prefix}: requirement {req!r} is not a valid PEP 508 specifier")
    if "usb" in manifest:
        errors.extend(_check_usb(manifest["usb"]))
    return errors


def _check_usb(matchers: object) -> list[str]:
    if not isinstance(matchers, list):
        return ["manifest.json: 'usb' must be a list of matchers"]
    errors: list[str] = []
    for number, matcher in enumerate(matchers):
        where = f"manifest.json: usb[{number}]"
        if not isinstance(matcher, dict) or not matcher:
            errors.append(f"{where}: must be a non-empty object")
            continue
        for key, value in matcher.items():
            if key not in USB_MATCHER_KEYS:
                errors.append(f"{where}: unknown key '{key}'")
            elif not isinstance(value, str):
                errors.append(f"{where}: '{key}' must be a string")
            elif key in ("vid", "pid") and not _HEX4_UPPER_RE.match(value):
                errors.append(f"{where}: '{key}' must be 4 upper-case hex digits, got {value!r}")
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
# icons.json, services.yaml, quality_scale.yaml
# ------------------------------------------------------------------------------------------------
def _check_icon(value: object, where: str) -> list[str]:
    if isinstance(value, str) and _ICON_RE.match(value):
        return []
    return [f"icons.json: {where} must be an 'mdi:name' icon, got {value!r}"]


def check_icons(icons: object) -> list[str]:
    """Check the shape of icons.json."""
    if not isinstance(icons, dict):
        return ["icons.json: must be a JSON object"]
    errors: list[str] = []
    for key in icons:
        if key not in ICON_TOP_KEYS:
            errors.append(f"icons.json: unknown top-level key '{key}'")
    entity = icons.get("entity", {})
    if not isinstance(entity, dict):
        errors.append("icons.json: 'entity' must be an object")
        entity = {}
    for platform, keys in entity.items():
        if platform not in ENTITY_PLATFORMS:
            errors.append(f"icons.json: entity.{platform} is not an entity platform")
        if not isinstance(keys, dict):
            errors.append(f"icons.json: entity.{platform} must be an object")
            continue
        for key, spec in keys.items():
            where = f"entity.{platform}.{key}"
            if not _TRANSLATION_KEY_RE.match(str(key)):
                errors.append(f"icons.json: {where}: keys are lower-case snake_case")
            if not isinstance(spec, dict) or not spec:
                errors.append(f"icons.json: {where} must be an object with 'default'")
                continue
            for field in spec:
                if field not in ICON_ENTITY_KEYS:
                    errors.append(f"icons.json: {where}: unknown key '{field}'")
            if "default" not in spec:
                errors.append(f"icons.json: {where}: 'default' is required")
            else:
                errors.extend(_check_icon(spec["default"], f"{where}.default"))
            state = spec.get("state", {})
            if not isinstance(state, dict):
                errors.append(f"icons.json: {where}.state must be an object")
            else:
                for state_name, icon in state.items():
                    errors.extend(_check_icon(icon, f"{where}.state.{state_name}"))
    services = icons.get("services", {})
    if not isinstance(services, dict):
        errors.append("icons.json: 'services' must be an object")
    else:
        for service, spec in services.items():
            if isinstance(spec, str):
                errors.extend(_check_icon(spec, f"services.{service}"))
            elif isinstance(spec, dict) and "service" in spec:
                errors.extend(_check_icon(spec["service"], f"services.{service}.service"))
                for field in spec:
                    if field not in ("service", "sections"):
                        errors.append(f"icons.json: services.{service}: unknown key '{field}'")
            else:
                errors.append(f"icons.json: services.{service} must have a 'service' icon")
    return errors


def check_services(
    services: object, strings: Mapping[str, Any] | None, icons: Mapping[str, Any] | None
) -> list[str]:
    """Every action in services.yaml has a translated name/description (and fields)."""
    if services is None:
        services = {}
    if not isinstance(services, dict):
        return ["services.yaml: must be a mapping of action names"]
    errors: list[str] = []
    translated = (strings or {}).get("services", {})
    for service, spec in services.items():
        entry = translated.get(service) if isinstance(translated, dict) else None
        if strings is not None and (
            not isinstance(entry, dict) or not {"name", "description"} <= entry.keys()
        ):
            errors.append(f"strings.json: services.{service} needs 'name' and 'description'")
            entry = {}
        fields = (spec or {}).get("fields", {}) if isinstance(spec, dict) else {}
        for field in fields or {}:
            if isinstance(fields[field], dict) and "fields" in fields[field]:
                continue  # a section; its fields are listed inside it
            text = (entry or {}).get("fields", {}).get(field) if strings is not None else {}
            if strings is not None and (
                not isinstance(text, dict) or not {"name", "description"} <= text.keys()
            ):
                errors.append(
                    f"strings.json: services.{service}.fields.{field} needs 'name' and "
                    "'description'"
                )
        if icons is not None and service not in icons.get("services", {}):
            errors.append(f"icons.json: services.{service} has no icon")
    if isinstance(translated, dict):
        for service in translated:
            if service not in services:
                errors.append(f"strings.json: services.{service} is not in services.yaml")
    if icons is not None:
        for service in icons.get("services", {}) or {}:
            if service not in services:
                errors.append(f"icons.json: services.{service} is not in services.yaml")
    return errors


def check_quality_scale(data: object) -> list[str]:
    """Check quality_scale.yaml: known rules, valid statuses, comments for exemptions."""
    if not isinstance(data, dict) or set(data) != {"rules"} or not isinstance(data["rules"], dict):
        return ["quality_scale.yaml: must contain exactly one key, 'rules', mapping rule -> status"]
    errors: list[str] = []
    for rule, value in data["rules"].items():
        where = f"quality_scale.yaml: {rule}"
        if rule not in QUALITY_RULES:
            errors.append(f"{where}: unknown rule")
        if isinstance(value, str):
            status, comment = value, None
            extra: set[str] = set()
        elif isinstance(value, dict):
            status, comment = value.get("status"), value.get("comment")
            extra = set(value) - {"status", "comment"}
        else:
            errors.append(f"{where}: must be a status or a mapping with 'status'")
            continue
        if extra:
            errors.append(f"{where}: unknown keys {sorted(extra)}")
        if status not in QUALITY_STATUSES:
            errors.append(f"{where}: status must be one of {sorted(QUALITY_STATUSES)}")
        if comment is not None and (not isinstance(comment, str) or not comment.strip()):
            errors.append(f"{where}: 'comment' must be non-empty text")
        if status == "exempt" and not comment:
            errors.append(f"{where}: an exemption needs a 'comment' saying why")
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


def _load_yaml(path: Path, errors: list[str], root: Path) -> object | None:
    if yaml is None:
        print(f"note: PyYAML missing, {path.relative_to(root)} not checked", file=sys.stderr)
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        errors.append(f"{path.relative_to(root)}: cannot be read as YAML: {err}")
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
    if hacs_path.exists():
        hacs = _load_json(hacs_path, errors, root)
        if hacs is not None:
            errors.extend(check_hacs(hacs))

    for package in integrations:
        rel = package.relative_to(root)
        manifest = _load_json(package / "manifest.json", errors, root)
        if manifest is not None:
            errors.extend(
                f"{rel}/{e}" for e in check_manifest(manifest, directory_name=package.name)
            )

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

        icons_path = package / "icons.json"
        icons = _load_json(icons_path, errors, root) if icons_path.exists() else None
        if icons is not None:
            errors.extend(f"{rel}/{e}" for e in check_icons(icons))

        services_path = package / "services.yaml"
        if services_path.exists():
            services = _load_yaml(services_path, errors, root)
            reference = translations.get("en", strings)
            errors.extend(
                f"{rel}/{e}"
                for e in check_services(
                    services,
                    reference if isinstance(reference, dict) else None,
                    icons if isinstance(icons, dict) else None,
                )
            )

        quality_path = package / "quality_scale.yaml"
        if quality_path.exists():
            quality = _load_yaml(quality_path, errors, root)
            if quality is not None:
                errors.extend(f"{rel}/{e}" for e in check_quality_scale(quality))
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
    print("check_integration: manifest, hacs.json, translations, icons, services, quality scale OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
