"""Diagnostics: the entry's settings, the bank snapshot, link state and recent raw traffic.

Serial numbers and barcodes are redacted everywhere, including inside raw traffic
(plain text in console output, hex-encoded ASCII in RS485 frames). A redacted RS485
frame keeps its length and layout but no longer matches its checksum.
Gateway hosts are redacted everywhere too, error texts included (``core/redact.py``
has the rules); local device paths are kept (they help support).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .const import CONF_CAN_CHANNEL, CONF_CAN_HOST, CONF_COMPANION, CONF_URL
from .coordinator import (
    PylontechConfigEntry,
    PylontechCoordinator,
    module_key_from_device,
)
from .core.faults import active_fault_to_dict
from .core.model import bank_to_dict, module_to_dict
from .core.redact import hosts_of, redact, secret_forms
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


def _configured_hosts(entry: PylontechConfigEntry) -> set[str]:
    """Every gateway host the entry names (its link and its CAN companion)."""
    settings: list[Mapping[str, Any]] = [entry.data]
    companion = entry.options.get(CONF_COMPANION)
    if isinstance(companion, Mapping):
        settings.append(companion)
    return hosts_of(
        value
        for setting in settings
        for key in (CONF_URL, CONF_CAN_CHANNEL, CONF_CAN_HOST)
        if isinstance(value := setting.get(key), str)
    )


def _entry_settings(entry: PylontechConfigEntry) -> dict[str, Any]:
    return {"data": dict(entry.data), "options": dict(entry.options), "unique_id": entry.unique_id}


def _redact(
    data: dict[str, Any], coordinator: PylontechCoordinator, entry: PylontechConfigEntry
) -> dict[str, Any]:
    bank = coordinator.data
    serials = [entry.unique_id]
    if bank is not None:
        serials.append(bank.serial_number)
        serials.extend(m.serial_number for m in bank.modules)
    redacted = async_redact_data(data, TO_REDACT)
    result: dict[str, Any] = redact(
        redacted, hosts=_configured_hosts(entry), secrets=secret_forms(serials)
    )
    return result


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
