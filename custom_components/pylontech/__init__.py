"""The Pylontech integration: low-voltage battery banks over CAN, RS485 or the console."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import probatio

from homeassistant.const import ATTR_CONFIG_ENTRY_ID, Platform
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import (
    ConfigEntryNotReady,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.service import async_get_config_entry
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_LINK,
    CONF_URL,
    CONF_URL_V1,
    DOMAIN,
    ENTRY_VERSION,
    LINK_CAN,
    SERVICE_REFRESH_DETAILS,
)
from .coordinator import (
    PylontechConfigEntry,
    PylontechCoordinator,
    PylontechRuntimeData,
    bank_device_identifier,
    module_key_from_device,
)
from .core.errors import PylontechError
from .entity import bank_device_fields, is_barcode_module_device, module_key_for_device
from .issues import async_update_issues

if TYPE_CHECKING:
    from .core.faults import FaultUpdate
    from .core.model import Bank

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]

_LOGGER = logging.getLogger(__name__)

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

REFRESH_DETAILS_SCHEMA = probatio.Schema({probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions (once, not per entry)."""

    async def _refresh_details(call: ServiceCall) -> None:
        entry: PylontechConfigEntry = async_get_config_entry(
            hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
        )
        coordinator = entry.runtime_data.coordinator
        if coordinator.link is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_details_over_can",
                translation_placeholders={"title": entry.title},
            )
        await coordinator.async_refresh_details()
        if not coordinator.last_update_success:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="refresh_failed",
                translation_placeholders={"title": entry.title},
            )

    hass.services.async_register(
        DOMAIN, SERVICE_REFRESH_DETAILS, _refresh_details, schema=REFRESH_DETAILS_SCHEMA
    )
    return True


def _bank_device(bank: Bank, entry: PylontechConfigEntry) -> dict[str, str | None]:
    """Return the bank device's texts, cleaned like a module's; CAN names no model."""
    fields = bank_device_fields(entry, bank)
    if fields["model"] is None and entry.data[CONF_LINK] == LINK_CAN:
        fields["model"] = "Battery bank (CAN)"
    return fields


async def async_migrate_entry(hass: HomeAssistant, entry: PylontechConfigEntry) -> bool:
    """Bring an entry's data to ``ENTRY_VERSION``; refuse one a newer release wrote."""
    if entry.version > ENTRY_VERSION:
        return False
    if entry.version == 1:
        # Version 2 keeps the port under the key Home Assistant's port-usage attribution
        # reads, so the serial-port list shows which entry holds the adapter or proxy.
        data = dict(entry.data)
        if CONF_URL_V1 in data:
            data[CONF_URL] = data.pop(CONF_URL_V1)
        hass.config_entries.async_update_entry(entry, data=data, version=2, minor_version=1)
    return True


@callback
def _async_follow_moved_port(hass: HomeAssistant, entry: PylontechConfigEntry) -> None:
    """Point a serial entry at its adapter's new port when Home Assistant saw it move.

    A ``/dev/serial/by-id`` path or an ESPHome proxy URL names the device behind it;
    re-plugged elsewhere (another proxy, a new by-id name) the usb integration finds
    it again. ``async_find_moved_serial_port`` exists from Home Assistant 2026.11 on;
    older cores keep the configured port.
    """
    # Imported here, not at module level: the usb integration pulls in hassio, whose client
    # library Home Assistant installs only when it loads them, and tools import this package.
    from homeassistant.components import usb  # noqa: PLC0415

    find_moved = getattr(usb, "async_find_moved_serial_port", None)
    port = entry.data.get(CONF_URL)
    if find_moved is None or entry.data[CONF_LINK] == LINK_CAN or not isinstance(port, str):
        return
    moved = find_moved(hass, port)
    if not isinstance(moved, str) or moved == port:
        return
    _LOGGER.info("%s: the serial adapter moved from %s to %s", entry.title, port, moved)
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_URL: moved})


async def async_setup_entry(hass: HomeAssistant, entry: PylontechConfigEntry) -> bool:
    """Open the link, read the bank once, register its device and set up platforms."""
    _async_follow_moved_port(hass, entry)
    try:
        coordinator = PylontechCoordinator(hass, entry)
    except (PylontechError, ValueError) as err:
        # A setting the link refuses (e.g. an RS485 group no battery can have): the entry
        # page shows why and the entry retries with backoff, so a reconfigure (or an
        # update that accepts the setting) brings it up; not-ready logs no traceback.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="invalid_link_settings",
            translation_placeholders={"error": str(err)},
        ) from err
    try:
        await coordinator.async_config_entry_first_refresh()
    except ConfigEntryNotReady:
        await coordinator.async_shutdown_links()
        raise
    texts = _bank_device(coordinator.data, entry)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, bank_device_identifier(entry))},
        name=entry.title,
        manufacturer=texts["manufacturer"],
        model=texts["model"],
        serial_number=texts["serial_number"],
        sw_version=texts["sw_version"],
    )
    entry.runtime_data = PylontechRuntimeData(coordinator=coordinator, bank_device_id=device.id)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms: module devices exist, so flag events can name them.
    _async_register_fault_handlers(hass, entry, coordinator)
    return True


@callback
def _async_register_fault_handlers(
    hass: HomeAssistant, entry: PylontechConfigEntry, coordinator: PylontechCoordinator
) -> None:
    """Hand every fault update to the repairs/events code (``issues.py``)."""

    @callback
    def _on_faults(update: FaultUpdate) -> None:
        async_update_issues(hass, entry, update)

    entry.async_on_unload(coordinator.async_add_fault_listener(_on_faults))
    if coordinator.fault_update is not None:
        _on_faults(coordinator.fault_update)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: PylontechConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a module device once that module no longer answers."""
    coordinator = entry.runtime_data.coordinator
    if is_barcode_module_device(entry, device):
        return module_key_for_device(entry, device, coordinator.data) is None
    key = module_key_from_device(entry, device)
    if key is None:
        return False  # the bank device goes with the entry
    return key not in coordinator.present_modules


async def async_unload_entry(hass: HomeAssistant, entry: PylontechConfigEntry) -> bool:
    """Unload platforms; the coordinator's shutdown (registered on unload) closes the links."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.coordinator.async_shutdown_links()
    return unloaded
