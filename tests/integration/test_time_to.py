"""Time to full and time to empty against the simulated bank.

(full - remaining) / charge current while charging, remaining / discharge current while
discharging, each current capped by the BMS's limit; unknown while idle or flowing the
other way, and beyond ``MAX_TIME_TO_HOURS``.
"""

from __future__ import annotations

from dataclasses import replace

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.core.faults.catalog import CHARGING_CURRENT_MIN_A
from custom_components.pylontech.core.model import Bank
from custom_components.pylontech.sensor import MAX_TIME_TO_HOURS, time_to_empty, time_to_full
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .entity_helpers import coordinator_of, entity_id, setup_link, unload

CHARGE_PHASE = 0.12  # fractions of the simulator's charge/idle/discharge profile
IDLE_PHASE = 0.4
DISCHARGE_PHASE = 0.5  # the discharge ripple is zero here: a steady 0.18 C


def _set(sim: BatterySimulator, soc: float, phase: float) -> None:
    """Every module at ``soc`` %, in a phase of the profile (currents follow at once)."""
    sim.bank.elapsed = phase * sim.bank.profile_period
    sim.bank.set_soc(soc)


def _ids(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[str, str]:
    return (
        entity_id(hass, "sensor", f"{entry.entry_id}_time_to_full"),
        entity_id(hass, "sensor", f"{entry.entry_id}_time_to_empty"),
    )


async def _poll(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await coordinator_of(entry).async_refresh()
    await hass.async_block_till_done()


async def test_charging(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Charging at 50 %: the missing charge over the charge current; no time to empty."""
    _set(simulator, 50.0, CHARGE_PHASE)
    entry = await setup_link(hass, simulator, "rs485")
    full_id, empty_id = _ids(hass, entry)
    try:
        bank = coordinator_of(entry).data
        assert bank.current is not None
        assert bank.current > CHARGING_CURRENT_MIN_A
        assert bank.charge_current_limit is not None
        assert bank.current < bank.charge_current_limit  # not capped here
        assert bank.full_capacity is not None
        assert bank.remaining_capacity is not None
        expected = (bank.full_capacity - bank.remaining_capacity) / bank.current * 60
        state = hass.states.get(full_id)
        assert int(state.state) == round(expected)
        # Three US3000C (222 Ah) half full, charged at 0.25 C: about two hours.
        assert 110 <= int(state.state) <= 130
        assert state.attributes["device_class"] == "duration"
        assert state.attributes["unit_of_measurement"] == UnitOfTime.MINUTES
        assert hass.states.get(empty_id).state == STATE_UNKNOWN
    finally:
        await unload(hass, entry)


async def test_discharging(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Discharging at 50 %: the remaining charge over the discharge current."""
    _set(simulator, 50.0, DISCHARGE_PHASE)
    entry = await setup_link(hass, simulator, "console")
    full_id, empty_id = _ids(hass, entry)
    try:
        bank = coordinator_of(entry).data
        assert bank.current is not None
        assert bank.current < -CHARGING_CURRENT_MIN_A
        assert bank.remaining_capacity is not None
        expected = bank.remaining_capacity / -bank.current * 60
        assert int(hass.states.get(empty_id).state) == round(expected)
        # 111 Ah left at 0.18 C (about 40 A): close to 2 h 47 min.
        assert 155 <= int(hass.states.get(empty_id).state) <= 180
        assert hass.states.get(full_id).state == STATE_UNKNOWN
    finally:
        await unload(hass, entry)


async def test_idle_is_unknown_and_link_loss_unavailable(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Idle: both unknown (the entities exist all the same); a dead link: unavailable."""
    _set(simulator, 50.0, IDLE_PHASE)
    entry = await setup_link(hass, simulator, "rs485")
    full_id, empty_id = _ids(hass, entry)
    try:
        assert coordinator_of(entry).data.current == 0
        assert hass.states.get(full_id).state == STATE_UNKNOWN
        assert hass.states.get(empty_id).state == STATE_UNKNOWN
        _set(simulator, 50.0, DISCHARGE_PHASE)
        await _poll(hass, entry)
        assert hass.states.get(empty_id).state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
        simulator.faults.inject_link_fault("rs485", LinkFault.DROP)
        await _poll(hass, entry)
        assert hass.states.get(full_id).state == STATE_UNAVAILABLE
        assert hass.states.get(empty_id).state == STATE_UNAVAILABLE
    finally:
        simulator.faults.clear_link_fault("rs485")
        await unload(hass, entry)


async def test_unknown_input_and_the_charge_limit(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A missing remaining capacity makes both unknown; a lower limit caps the current."""
    _set(simulator, 50.0, CHARGE_PHASE)
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    full_id, _ = _ids(hass, entry)
    try:
        bank = coordinator.data
        coordinator.async_set_updated_data(replace(bank, remaining_capacity=None))
        await hass.async_block_till_done()
        assert hass.states.get(full_id).state == STATE_UNKNOWN
        # The BMS lowers its charge current limit below the present current: the inverter
        # must follow, so the estimate runs at the limit.
        coordinator.async_set_updated_data(replace(bank, charge_current_limit=10.0))
        await hass.async_block_till_done()
        assert bank.full_capacity is not None
        assert bank.remaining_capacity is not None
        expected = (bank.full_capacity - bank.remaining_capacity) / 10.0 * 60
        assert int(hass.states.get(full_id).state) == round(expected)
        # A limit of zero: the BMS stops the charge, no time to full.
        coordinator.async_set_updated_data(replace(bank, charge_current_limit=0.0))
        await hass.async_block_till_done()
        assert hass.states.get(full_id).state == STATE_UNKNOWN
    finally:
        await unload(hass, entry)


async def test_not_on_can(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """CAN carries no remaining capacity: no time to full or empty on a CAN-only entry."""
    entry = await setup_link(hass, simulator, "can")
    try:
        keys = {
            e.unique_id.removeprefix(f"{entry.entry_id}_")
            for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        }
        assert "soc" in keys
        assert not keys & {"time_to_full", "time_to_empty"}
    finally:
        await unload(hass, entry)


def test_bounds() -> None:
    """Beyond the bound unknown; a bank past full while charging is at 0 minutes."""
    big = Bank(current=1.0, remaining_capacity=0.0, full_capacity=1000.0)
    assert MAX_TIME_TO_HOURS < 1000.0 / 1.0
    assert time_to_full(big) is None
    assert time_to_empty(replace(big, current=-1.0, remaining_capacity=1000.0)) is None
    over = Bank(current=20.0, remaining_capacity=101.0, full_capacity=100.0)
    assert time_to_full(over) == 0
    assert time_to_full(replace(over, current=CHARGING_CURRENT_MIN_A)) is None
    assert time_to_empty(replace(over, current=-CHARGING_CURRENT_MIN_A)) is None
    assert time_to_empty(replace(over, current=-50.0, discharge_current_limit=25.0)) == 240
