"""The battery-low binary sensors against the simulated bank, and core's battery triggers.

Low SOC (the catalog's ``LOW_SOC_THRESHOLD``), the force-charge requests, under-voltage
protections and low-voltage warnings each turn the bank's sensor on; a module's follows
its own SOC and flags. Unknown, not "off", while none of the inputs is known.
"""

from __future__ import annotations

from dataclasses import replace

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from custom_components.pylontech.const import CONF_COMPANION
from custom_components.pylontech.core.faults.catalog import LOW_SOC_THRESHOLD
from custom_components.pylontech.core.links import ConsoleLink
from custom_components.pylontech.core.model import Alarm
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .conftest import can_data
from .entity_helpers import coordinator_of, entity_id, setup_link, unload, wait_for

CHARGE_PHASE = 0.12  # fractions of the simulator's charge/idle/discharge profile
DISCHARGE_PHASE = 0.5


def _bank_id(hass: HomeAssistant, entry_id: str) -> str:
    return entity_id(hass, "binary_sensor", f"{entry_id}_battery_low")


def _module_id(hass: HomeAssistant, entry_id: str, sim: BatterySimulator, index: int) -> str:
    serial = sim.bank.serial(index)
    return entity_id(hass, "binary_sensor", f"{entry_id}_module_sn_{serial}_battery_low")


def _set(sim: BatterySimulator, soc: float, phase: float = DISCHARGE_PHASE) -> None:
    """Every module at ``soc`` %, in a phase of the profile (currents follow at once)."""
    sim.bank.elapsed = phase * sim.bank.profile_period
    sim.bank.set_soc(soc)


async def _poll(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await coordinator_of(entry).async_refresh()
    await hass.async_block_till_done()


async def test_normal_then_low_soc(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """At 50 % everything is normal; at or below the low-SOC threshold all say low."""
    _set(simulator, 50.0)
    entry = await setup_link(hass, simulator, "rs485")
    bank = _bank_id(hass, entry.entry_id)
    modules = [_module_id(hass, entry.entry_id, simulator, i) for i in (1, 2, 3)]
    try:
        for entity in (bank, *modules):
            state = hass.states.get(entity)
            assert state.state == STATE_OFF, entity
            assert state.attributes["device_class"] == "battery"
            assert state.attributes["reasons"] == []
        _set(simulator, LOW_SOC_THRESHOLD - 1)
        await _poll(hass, entry)
        state = hass.states.get(bank)
        assert state.state == STATE_ON
        # The BMS asks for a charge well before: both force-charge requests are on too.
        assert state.attributes["reasons"] == ["low_soc", "force_charge_1", "force_charge_2"]
        for entity in modules:
            state = hass.states.get(entity)
            assert state.state == STATE_ON
            assert state.attributes["reasons"] == ["low_soc"]
        _set(simulator, 60.0, CHARGE_PHASE)
        await _poll(hass, entry)
        assert hass.states.get(bank).state == STATE_OFF
    finally:
        await unload(hass, entry)


async def test_force_charge_request_alone(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Above the low-SOC threshold the BMS's force-charge request alone makes the bank low."""
    _set(simulator, 12.0)  # the simulator's BMS requests force charge II below 13.5 %
    entry = await setup_link(hass, simulator, "rs485")
    try:
        state = hass.states.get(_bank_id(hass, entry.entry_id))
        assert state.state == STATE_ON
        assert state.attributes["reasons"] == ["force_charge_2"]
        # Modules have no request of their own: their SOC is not low.
        assert hass.states.get(_module_id(hass, entry.entry_id, simulator, 1)).state == STATE_OFF
    finally:
        await unload(hass, entry)


async def test_under_voltage_protection(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """An RS485 cell under-voltage protection on module 2: that module and the bank."""
    _set(simulator, 50.0)
    entry = await setup_link(hass, simulator, "rs485")
    bank = _bank_id(hass, entry.entry_id)
    module_2 = _module_id(hass, entry.entry_id, simulator, 2)
    try:
        simulator.faults.inject_protection("cell_under_voltage", 2)
        await _poll(hass, entry)
        for entity in (bank, module_2):
            state = hass.states.get(entity)
            assert state.state == STATE_ON
            assert "cell_under_voltage" in state.attributes["reasons"]
        assert hass.states.get(_module_id(hass, entry.entry_id, simulator, 1)).state == STATE_OFF
        simulator.faults.clear_protection("cell_under_voltage", 2)
        await _poll(hass, entry)
        assert hass.states.get(bank).state == STATE_OFF
        assert hass.states.get(module_2).state == STATE_OFF
    finally:
        await unload(hass, entry)


async def test_low_voltage_warning_on_the_console(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """The console reports a low cell voltage warning per module: that module and the bank."""
    _set(simulator, 50.0)
    entry = await setup_link(hass, simulator, "console")
    bank = _bank_id(hass, entry.entry_id)
    module_3 = _module_id(hass, entry.entry_id, simulator, 3)
    try:
        assert hass.states.get(bank).state == STATE_OFF
        simulator.faults.inject_alarm("cell_low_voltage", 3)
        await _poll(hass, entry)
        for entity in (bank, module_3):
            state = hass.states.get(entity)
            assert state.state == STATE_ON, entity
            assert "cell_low_voltage" in state.attributes["reasons"]
        assert hass.states.get(_module_id(hass, entry.entry_id, simulator, 2)).state == STATE_OFF
    finally:
        await unload(hass, entry)


async def test_low_voltage_warning_on_can(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """CAN has no modules: one bank entity, following the 0x359 low-voltage warning."""
    _set(simulator, 50.0)
    entry = await setup_link(hass, simulator, "can")
    bank = _bank_id(hass, entry.entry_id)
    try:
        battery_low = [
            e.entity_id
            for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
            if e.unique_id.endswith("_battery_low")
        ]
        assert battery_low == [bank]
        assert hass.states.get(bank).state == STATE_OFF
        simulator.faults.inject_alarm("low_voltage", 1)
        await wait_for(lambda: hass.states.get(bank).state == STATE_ON)
        assert hass.states.get(bank).attributes["reasons"] == ["low_voltage"]
    finally:
        await unload(hass, entry)


async def test_unknown_while_no_input_is_known(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """No SOC, no request and no flag reading: unknown, never "off"; a link loss: unavailable."""
    _set(simulator, 50.0)
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    bank_entity = _bank_id(hass, entry.entry_id)
    module_1 = _module_id(hass, entry.entry_id, simulator, 1)
    try:
        bank = coordinator.data
        blind = tuple(
            replace(m, soc=None, protections_read=None, alarms_read=None) for m in bank.modules
        )
        coordinator.async_set_updated_data(
            replace(bank, soc=None, force_charge_1=None, force_charge_2=None, modules=blind)
        )
        await hass.async_block_till_done()
        assert hass.states.get(bank_entity).state == STATE_UNKNOWN
        assert hass.states.get(module_1).state == STATE_UNKNOWN
        # A flag that is on still says low without any reading.
        master = replace(blind[0], alarms=frozenset({Alarm.MODULE_LOW_VOLTAGE}))
        coordinator.async_set_updated_data(replace(bank, soc=None, modules=(master, *blind[1:])))
        await hass.async_block_till_done()
        assert hass.states.get(module_1).state == STATE_ON

        simulator.faults.inject_link_fault("rs485", LinkFault.DROP)
        await _poll(hass, entry)
        assert hass.states.get(bank_entity).state == STATE_UNAVAILABLE
        assert hass.states.get(module_1).state == STATE_UNAVAILABLE
    finally:
        simulator.faults.clear_link_fault("rs485")
        await unload(hass, entry)


async def test_console_stall_keeps_the_can_companion_reading(
    hass: HomeAssistant, simulator: BatterySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Console stalled, CAN live: the bank's sensor follows CAN's values and flags alone.

    The modules' sensors go unavailable, and their last-read flags no longer count: the
    bank's reasons are CAN's own.
    """
    monkeypatch.setattr("custom_components.pylontech.coordinator.CAN_STALE_AFTER", 1.0)
    _set(simulator, 50.0)
    entry = await setup_link(hass, simulator, "console", **{CONF_COMPANION: can_data(simulator)})
    coordinator = coordinator_of(entry)
    assert isinstance(coordinator.link, ConsoleLink)
    coordinator.link.command_timeout = 0.3  # a stalled console fails fast in the test
    bank = _bank_id(hass, entry.entry_id)
    module_2 = _module_id(hass, entry.entry_id, simulator, 2)
    try:
        assert coordinator.can_link is not None
        await wait_for(lambda: coordinator.can_link.bank is not None)
        simulator.faults.inject_alarm("cell_low_voltage", 2)
        await _poll(hass, entry)
        assert hass.states.get(bank).attributes["reasons"] == ["cell_low_voltage"]

        simulator.faults.inject_link_fault("console", LinkFault.STALL, seconds=5)
        await _poll(hass, entry)
        assert not coordinator.primary_connected
        assert hass.states.get(module_2).state == STATE_UNAVAILABLE
        # CAN 0x359's generic low-voltage bit still says low; the console's last-read
        # cell warning is no longer counted.
        assert hass.states.get(bank).state == STATE_ON
        assert hass.states.get(bank).attributes["reasons"] == ["low_voltage"]
        simulator.faults.clear_alarm("cell_low_voltage", 2)
        await wait_for(lambda: hass.states.get(bank).state == STATE_OFF)
        _set(simulator, 12.0)  # force charge II, broadcast in CAN 0x35C
        await wait_for(lambda: hass.states.get(bank).state == STATE_ON)
        assert hass.states.get(bank).attributes["reasons"] == ["force_charge_2"]
    finally:
        simulator.faults.clear_links()
        await unload(hass, entry)


@pytest.fixture
def calls(hass: HomeAssistant) -> list[ServiceCall]:
    """Calls of the ``test.automation`` action."""
    return async_mock_service(hass, "test", "automation")


async def test_battery_triggers_and_conditions(
    hass: HomeAssistant, simulator: BatterySimulator, calls: list[ServiceCall]
) -> None:
    """Core's battery.became_low / no_longer_low and is_low accept the bank's sensor."""
    _set(simulator, 50.0)
    entry = await setup_link(hass, simulator, "rs485")
    bank = _bank_id(hass, entry.entry_id)
    target = {"entity_id": bank}
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "triggers": {"trigger": "battery.became_low", "target": target},
                    "conditions": {"condition": "battery.is_low", "target": target},
                    "actions": {"action": "test.automation", "data": {"event": "low"}},
                },
                {
                    "triggers": {"trigger": "battery.no_longer_low", "target": target},
                    "actions": {"action": "test.automation", "data": {"event": "normal"}},
                },
            ]
        },
    )
    await hass.async_block_till_done()
    try:
        _set(simulator, LOW_SOC_THRESHOLD)
        await _poll(hass, entry)
        assert [call.data["event"] for call in calls] == ["low"]
        _set(simulator, 60.0, CHARGE_PHASE)
        await _poll(hass, entry)
        assert [call.data["event"] for call in calls] == ["low", "normal"]
    finally:
        await unload(hass, entry)
