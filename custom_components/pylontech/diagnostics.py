"""Diagnostics: the entry's settings, the bank snapshot, link state and recent raw traffic.

Serial numbers and barcodes are redacted everywhere, including inside raw traffic
(plain text in console output, hex-encoded ASCII in RS485 frames). A redacted RS485
frame keeps its length and layout but no longer matches its checksum.
Gateway host names are redacted; local device paths are kept (they help support).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import CONF_CAN_HOST, CONF_COMPANION, CONF_URL
from .coordinator import PylontechConfigEntry, PylontechCoordinator, module_key_from_device
from .core.faults import active_fault_to_dict
from .core.model import Bank, bank_to_dict, module_to_dict
from .entity import is_barcode_module_device, module_key_for_device

TO_REDACT = {
    "serial_number",
    "serial",
    "barcode",
    "unique_id",
    "identifiers",
    "host",
    CONF_CAN_HOST,
}


def _redact_url(url: Any) -> Any:
    """Hide a gateway's host name; keep device paths as they are."""
    if not isinstance(url, str) or url.startswith("/"):
        return url
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{REDACTED}{port}"


def _secrets(bank: Bank | None, extra: Iterable[str | None]) -> list[str]:
    """Every serial-like string we know of, longest first, in plain and hex form."""
    values = {v for v in extra if v}
    if bank is not None:
        values.add(bank.serial_number or "")
        values.update(m.serial_number or "" for m in bank.modules)
    forms: set[str] = set()
    for value in values:
        value = value.strip()
        if len(value) < 4:  # too short to be a serial; replacing would shred the data
            continue
        raw = value.encode("ascii", "ignore")
        forms.update((value, raw.hex().upper(), raw.hex()))
    return sorted(forms, key=len, reverse=True)


def _scrub(data: Any, secrets: list[str]) -> Any:
    """Replace every known serial inside strings of a nested structure."""
    if not secrets:
        return data
    if isinstance(data, str):
        for secret in secrets:
            if secret in data:
                data = data.replace(secret, "*" * len(secret))
        return data
    if isinstance(data, dict):
        return {key: _scrub(value, secrets) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_scrub(value, secrets) for value in data]
    return data


def _entry_settings(entry: PylontechConfigEntry) -> dict[str, Any]:
    data = dict(entry.data)
    if CONF_URL in data:
        data[CONF_URL] = _redact_url(data[CONF_URL])
    options = dict(entry.options)
    companion = options.get(CONF_COMPANION)
    if isinstance(companion, dict):
        options[CONF_COMPANION] = dict(companion)
    return {"data": data, "options": options, "unique_id": entry.unique_id}


def _redact(
    data: dict[str, Any], coordinator: PylontechCoordinator, entry: PylontechConfigEntry
) -> dict[str, Any]:
    secrets = _secrets(coordinator.data, [entry.unique_id])
    redacted = async_redact_data(data, TO_REDACT)
    return _scrub(_redact_urls(redacted), secrets)


_URL_KEYS = frozenset({"url", "channel", "can_channel"})


def _redact_urls(data: Any) -> Any:
    """Gateway URLs anywhere (link settings) lose their host names."""
    if isinstance(data, dict):
        return {
            key: _redact_url(value) if key in _URL_KEYS else _redact_urls(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_redact_urls(value) for value in data]
    return data


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PylontechConfigEntry
) -> dict[str, Any]:
    """Everything support needs about one bank, with serials and hosts redacted."""
    coordinator = entry.runtime_data.coordinator
    data = {
        "entry": _entry_settings(entry),
        "coordinator": coordinator.diagnostics(),
        "snapshot": None if coordinator.data is None else bank_to_dict(coordinator.data),
        "active_faults": [active_fault_to_dict(f) for f in coordinator.active_faults],
    }
    return _redact(data, coordinator, entry)


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: PylontechConfigEntry, device: dr.DeviceEntry
) -> dict[str, Any]:
    """One module (or the bank device: the whole snapshot without link traffic)."""
    coordinator = entry.runtime_data.coordinator
    bank = coordinator.data
    barcode_device = is_barcode_module_device(entry, device)
    key = (
        module_key_for_device(entry, device, bank)
        if barcode_device
        else module_key_from_device(entry, device)
    )
    if key is None and barcode_device:
        data: dict[str, Any] = {"device": "module", "present": False, "module": None}
    elif key is None:
        data = {
            "device": "bank",
            "snapshot": None if bank is None else bank_to_dict(bank),
            "active_faults": [active_fault_to_dict(f) for f in coordinator.active_faults],
        }
    else:
        module = None if bank is None else bank.module(key[1], key[0])
        data = {
            "device": "module",
            "module_key": list(key),
            "present": key in coordinator.present_modules,
            "module": None if module is None else module_to_dict(module),
            "active_faults": [
                active_fault_to_dict(f) for f in coordinator.active_faults if f.module_key == key
            ],
        }
    return _redact(data, coordinator, entry)
