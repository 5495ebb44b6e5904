"""Setup, unload, reload and not-ready handling against the simulated bank."""

from __future__ import annotations

import socket

from homeassistant.components.usb.consumers import async_get_serial_port_consumers
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech import async_remove_config_entry_device
from custom_components.pylontech.const import CONF_URL, DOMAIN, SERVICE_REFRESH_DETAILS
from custom_components.pylontech.coordinator import module_device_identifier
from simulator.simulator import BatterySimulator

from .conftest import MODEL, can_data, master_serial, setup_entry


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """The entry loads, reads the bank, registers its device, and unloads cleanly."""
    entry = init_integration
    coordinator = entry.runtime_data.coordinator
    truth = simulator.snapshot()
    bank = coordinator.data
    assert bank is not None
    assert len(bank.present_modules()) == len(truth.present_modules())
    assert coordinator.present_modules == {(0, 1), (0, 2), (0, 3)}
    assert bank.module(1).serial_number == master_serial(simulator)
    assert bank.module(2).voltage == truth.module(2).voltage

    device = dr.async_get(hass).async_get(entry.runtime_data.bank_device_id)
    assert device is not None
    assert device.serial_number == master_serial(simulator)
    assert device.manufacturer
    assert device.model == MODEL

    link = coordinator.link
    assert link is not None
    assert link.stats.connected
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert not link.stats.connected


async def test_reload(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """Reloading builds a fresh coordinator and closes the old link."""
    old = init_integration.runtime_data.coordinator
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data.coordinator is not old
    assert old.link is not None
    assert not old.link.stats.connected


async def test_not_ready_when_nothing_listens(hass: HomeAssistant, socket_enabled: None) -> None:
    """A gateway that refuses connections leaves the entry retrying, with links closed."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={
            "link": "rs485",
            CONF_URL: f"socket://127.0.0.1:{_closed_port()}",
            "baudrate": 115200,
            "group": 0,
        },
        unique_id="NOBODY",
    )
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_refresh_details_service(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """The action re-reads identity: the RS485 server sees the serial-number command again."""
    before = len(simulator.rs485.requests)
    await hass.services.async_call(
        DOMAIN,
        SERVICE_REFRESH_DETAILS,
        {ATTR_CONFIG_ENTRY_ID: init_integration.entry_id},
        blocking=True,
    )
    new = simulator.rs485.requests[before:]
    assert any(r.request is not None and r.request.command == 0x93 for r in new)


async def test_refresh_details_unknown_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An entry id that is not ours is refused with a validation error."""
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            SERVICE_REFRESH_DETAILS,
            {ATTR_CONFIG_ENTRY_ID: "not-an-entry"},
            blocking=True,
        )


def _module_device(hass: HomeAssistant, entry: MockConfigEntry, serial: str) -> dr.DeviceEntry:
    """The device the platforms registered for the module with this barcode."""
    for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id):
        if device.serial_number == serial:
            return device
    raise AssertionError(f"no device for module {serial}")


async def test_remove_module_device_only_when_gone(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """A module's device may be removed only after the module stopped answering."""
    entry = init_integration
    registry = dr.async_get(hass)
    serial = simulator.bank.serial(3)
    assert serial
    by_barcode = _module_device(hass, entry, serial)
    by_position = registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, module_device_identifier(entry, (0, 3)))},
    )
    bank_device = registry.async_get(entry.runtime_data.bank_device_id)
    assert bank_device is not None

    assert not await async_remove_config_entry_device(hass, entry, by_barcode)
    assert not await async_remove_config_entry_device(hass, entry, by_position)
    assert not await async_remove_config_entry_device(hass, entry, bank_device)
    simulator.faults.drop_module(3)
    await entry.runtime_data.coordinator.async_refresh()
    assert await async_remove_config_entry_device(hass, entry, by_barcode)
    assert await async_remove_config_entry_device(hass, entry, by_position)
    assert not await async_remove_config_entry_device(hass, entry, bank_device)


async def test_refresh_details_refused_for_can(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """CAN carries no identity or statistics: the action says so instead of pretending."""
    entry = await setup_entry(
        hass, MockConfigEntry(domain=DOMAIN, data=can_data(simulator), unique_id="can-svc")
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_REFRESH_DETAILS,
            {ATTR_CONFIG_ENTRY_ID: entry.entry_id},
            blocking=True,
        )
    assert err.value.translation_key == "no_details_over_can"
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _version_1_data(simulator: BatterySimulator, link: str) -> dict[str, object]:
    """Entry data as version 1 of the entry stored it (the port under "url")."""
    if link == "rs485":
        return {"link": "rs485", "url": simulator.rs485_url, "baudrate": 115200, "group": 0}
    if link == "console":
        return {"link": "console", "url": simulator.console_url, "baudrate": 115200}
    return {"link": "can", "can_interface": "slcan", "can_channel": simulator.can_channel}


@pytest.mark.parametrize("link", ["rs485", "console", "can"])
async def test_version_1_entry_is_migrated(
    hass: HomeAssistant, simulator: BatterySimulator, link: str
) -> None:
    """Today's entries load after the migration; a serial port moves to "device"."""
    old = _version_1_data(simulator, link)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Pylontech {MODEL}",
        data=old,
        options={"detail_interval": 600, "cell_entities": True},
        unique_id=f"migrate-{link}",
        version=1,
        minor_version=1,
    )
    await setup_entry(hass, entry)
    try:
        assert entry.state is ConfigEntryState.LOADED
        assert (entry.version, entry.minor_version) == (2, 1)
        expected = dict(old)
        if "url" in expected:
            expected["device"] = expected.pop("url")
        assert dict(entry.data) == expected
        assert dict(entry.options) == {"detail_interval": 600, "cell_entities": True}
        if link != "can":
            # Home Assistant's serial-port list now names the entry as the port's user.
            consumers = await async_get_serial_port_consumers(hass, [])
            users = consumers[expected["device"]]
            assert [consumer.config_entry_id for consumer in users] == [entry.entry_id]
    finally:
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()


async def test_entry_from_a_newer_release_is_not_touched(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A version this release does not know is refused, its data left as it is."""
    data = {"link": "rs485", "device": simulator.rs485_url, "baudrate": 115200, "group": 0}
    entry = MockConfigEntry(domain=DOMAIN, data=data, unique_id="from-the-future", version=3)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 3
    assert dict(entry.data) == data
