"""``pylontech_event`` on the bus for every protection/alarm that starts or ends."""

from __future__ import annotations

from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.pylontech.const import DOMAIN
from custom_components.pylontech.issues import EVENT_PYLONTECH, EVENT_PYLONTECH_FAULT
from simulator.simulator import BatterySimulator

from .entity_helpers import coordinator_of, setup_link, unload, wait_for


def _module_device_id(hass: HomeAssistant, entry_id: str, serial: str) -> str:
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"{entry_id}_module_sn_{serial}"), entry_id
    )
    assert device is not None
    return device.id


async def test_module_flag_start_and_end(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A module protection fires an event naming the module's device, then its end."""
    events: list[Event] = []
    hass.bus.async_listen(EVENT_PYLONTECH, events.append)
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    try:
        assert events == []  # a healthy bank: nothing started
        simulator.faults.inject_protection("discharge_over_current", 2)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        device_id = _module_device_id(hass, entry.entry_id, simulator.bank.serial(2))
        assert [e.data for e in events] == [
            {
                "device_id": device_id,
                "config_entry_id": entry.entry_id,
                "module": 2,
                "group": 0,
                "flag": "discharge_over_current",
                "kind": "protection",
                "active": True,
            }
        ]
        events.clear()
        await coordinator.async_refresh()  # unchanged: no event
        await hass.async_block_till_done()
        assert events == []
        simulator.faults.clear_protection("discharge_over_current", 2)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert [(e.data["flag"], e.data["active"], e.data["module"]) for e in events] == [
            ("discharge_over_current", False, 2)
        ]
    finally:
        await unload(hass, entry)


async def test_flags_active_at_setup_fire_once(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A flag already active when the entry loads is reported as started, once."""
    simulator.faults.inject_alarm("cell_voltage_error", 3)
    events: list[Event] = []
    hass.bus.async_listen(EVENT_PYLONTECH, events.append)
    entry = await setup_link(hass, simulator, "rs485")
    try:
        assert [(e.data["flag"], e.data["kind"], e.data["active"]) for e in events] == [
            ("cell_voltage_error", "alarm", True)
        ]
        device_id = _module_device_id(hass, entry.entry_id, simulator.bank.serial(3))
        assert events[0].data["device_id"] == device_id
    finally:
        await unload(hass, entry)


async def test_bank_flag_over_can(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """CAN flags belong to the bank: the event names the bank's device and no module."""
    events: list[Event] = []
    hass.bus.async_listen(EVENT_PYLONTECH, events.append)
    entry = await setup_link(hass, simulator, "can")
    try:
        simulator.faults.inject_alarm("low_temperature", 1)
        await wait_for(lambda: any(e.data["active"] for e in events))
        data = events[0].data
        assert data["device_id"] == entry.runtime_data.bank_device_id
        assert data["module"] is None
        assert data["group"] is None
        assert (data["flag"], data["kind"]) == ("low_temperature", "alarm")
        simulator.faults.clear_alarm("low_temperature", 1)
        await wait_for(lambda: any(not e.data["active"] for e in events))
    finally:
        await unload(hass, entry)


async def test_fault_events(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A documented fault fires ``pylontech_fault`` when it starts and when it ends."""
    faults: list[Event] = []
    hass.bus.async_listen(EVENT_PYLONTECH_FAULT, faults.append)
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    try:
        simulator.faults.cell_imbalance(2, 150.0)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        device_id = _module_device_id(hass, entry.entry_id, simulator.bank.serial(2))
        assert [e.data for e in faults] == [
            {
                "device_id": device_id,
                "config_entry_id": entry.entry_id,
                "module": 2,
                "group": 0,
                "fault": "cell_imbalance",
                "severity": "warning",
                "active": True,
            }
        ]
        simulator.faults.cell_imbalance(2, 0.0)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert [(e.data["fault"], e.data["active"]) for e in faults[1:]] == [
            ("cell_imbalance", False)
        ]
    finally:
        await unload(hass, entry)
