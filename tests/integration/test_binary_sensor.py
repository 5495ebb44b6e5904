"""Binary sensors against the simulated bank: flags, charge state, availability, link."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
import pytest
from syrupy.assertion import SnapshotAssertion

from custom_components.pylontech.binary_sensor import (
    FAMILIES_BY_KEY,
    FLAG_FAMILIES,
    covers,
    family_of,
)
from custom_components.pylontech.const import CONF_COMPANION
from custom_components.pylontech.core.capabilities import RS485
from custom_components.pylontech.core.model import Alarm, Protection
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .conftest import can_data
from .entity_helpers import (
    LINKS,
    assert_platform_snapshot,
    coordinator_of,
    entity_id,
    setup_link,
    unload,
    wait_for,
    with_ha_serializer,
)


@pytest.fixture
def ha_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots of registry entries and states without random ids and timestamps."""
    return with_ha_serializer(snapshot)


@pytest.mark.parametrize("link", LINKS)
async def test_binary_sensors(
    hass: HomeAssistant, simulator: BatterySimulator, ha_snapshot: SnapshotAssertion, link: str
) -> None:
    """Registry entries and states of every binary sensor, on each link."""
    entry = await setup_link(hass, simulator, link)
    try:
        assert_platform_snapshot(hass, entry, "binary_sensor", ha_snapshot)
    finally:
        await unload(hass, entry)


async def test_protection_on_a_module(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A protection turns on its family's entity on the module and on the bank, and off."""
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    prefix = entry.entry_id
    module_2 = f"{prefix}_module_sn_{simulator.bank.serial(2)}_protection_over_temperature"
    module_1 = f"{prefix}_module_sn_{simulator.bank.serial(1)}_protection_over_temperature"
    bank = f"{prefix}_protection_over_temperature"
    try:
        simulator.faults.inject_protection("charge_over_temperature", 2)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        for unique_id in (module_2, bank):
            state = hass.states.get(entity_id(hass, "binary_sensor", unique_id))
            assert state.state == STATE_ON
            # RS485 also marks the hot sensor's generic over-temperature state.
            assert "charge_over_temperature" in state.attributes["flags"]
            assert state.attributes["device_class"] == "safety"
        assert hass.states.get(entity_id(hass, "binary_sensor", module_1)).state == STATE_OFF
        simulator.faults.clear_protection("charge_over_temperature", 2)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        state = hass.states.get(entity_id(hass, "binary_sensor", bank))
        assert state.state == STATE_OFF
        assert state.attributes["flags"] == []
    finally:
        await unload(hass, entry)


async def test_can_flags_and_requests(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """CAN reports flags for the whole bank; the full-charge request follows 0x35C."""
    entry = await setup_link(hass, simulator, "can")
    alarm = entity_id(hass, "binary_sensor", f"{entry.entry_id}_alarm_high_temperature")
    request = entity_id(hass, "binary_sensor", f"{entry.entry_id}_full_charge_request")
    try:
        assert hass.states.get(alarm).attributes["device_class"] == "problem"
        simulator.faults.inject_alarm("high_temperature", 1)
        simulator.faults.full_charge_request()
        await wait_for(lambda: hass.states.get(alarm).state == STATE_ON)
        await wait_for(lambda: hass.states.get(request).state == STATE_ON)
        simulator.faults.clear_all()
        await wait_for(lambda: hass.states.get(alarm).state == STATE_OFF)
    finally:
        await unload(hass, entry)


async def test_module_dropout_and_link_loss(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A dropped module's entities go unavailable; a dead link turns the link sensor off."""
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    link = entity_id(hass, "binary_sensor", f"{entry.entry_id}_link")
    charging_3 = entity_id(
        hass, "binary_sensor", f"{entry.entry_id}_module_sn_{simulator.bank.serial(3)}_charging"
    )
    bank_charging = entity_id(hass, "binary_sensor", f"{entry.entry_id}_charging")
    try:
        assert hass.states.get(link).state == STATE_ON
        assert hass.states.get(link).attributes["device_class"] == "connectivity"
        simulator.faults.drop_module(3)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert hass.states.get(charging_3).state == STATE_UNAVAILABLE
        assert hass.states.get(bank_charging).state == STATE_ON
        simulator.faults.restore_module(3)

        simulator.faults.inject_link_fault("rs485", LinkFault.DROP)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert not coordinator.last_update_success
        assert hass.states.get(link).state == STATE_OFF
        assert hass.states.get(bank_charging).state == STATE_UNAVAILABLE
        simulator.faults.clear_link_fault("rs485")
        for _ in range(50):  # the link reconnects with a short back-off
            await coordinator.async_refresh()
            if coordinator.last_update_success:
                break
            await asyncio.sleep(0.1)
        await hass.async_block_till_done()
        assert hass.states.get(link).state == STATE_ON
        assert hass.states.get(charging_3).state != STATE_UNAVAILABLE
    finally:
        await unload(hass, entry)


async def test_unexpected_family_gets_an_entity(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A flag outside the link's known families still gets its entity when it shows up."""
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    unique_id = f"{entry.entry_id}_module_sn_{simulator.bank.serial(1)}_protection_short_circuit"
    try:
        assert not covers(RS485.module_flags, FAMILIES_BY_KEY["protection_short_circuit"])
        bank = coordinator.data
        master = replace(bank.modules[0], protections=frozenset({Protection.SHORT_CIRCUIT}))
        coordinator.async_set_updated_data(replace(bank, modules=(master, *bank.modules[1:])))
        await hass.async_block_till_done()
        assert hass.states.get(entity_id(hass, "binary_sensor", unique_id)).state == STATE_ON
    finally:
        await unload(hass, entry)


def test_every_flag_has_one_family() -> None:
    """Each Protection and Alarm member belongs to exactly one family of its kind."""
    for flag in (*Protection, *Alarm):
        family = family_of(flag)
        owners = [f for f in FLAG_FAMILIES if f.kind == family.kind and flag in f.members]
        assert owners == [family]


async def test_can_companion_adds_bank_flags(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """An RS485 entry with a CAN companion gets CAN's bank flags and a companion link sensor."""
    entry = await setup_link(hass, simulator, "rs485", **{CONF_COMPANION: can_data(simulator)})
    coordinator = coordinator_of(entry)
    companion = entity_id(hass, "binary_sensor", f"{entry.entry_id}_companion_link")
    try:
        assert coordinator.can_link is not None
        await wait_for(lambda: coordinator.can_link.bank is not None)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        # High-temperature warnings are a CAN family; RS485 alone has no entity for them,
        # and CAN's entity exists once its frame set (which flags it carries) is known.
        alarm = entity_id(hass, "binary_sensor", f"{entry.entry_id}_alarm_high_temperature")
        assert hass.states.get(companion).state == STATE_ON
        assert hass.states.get(alarm).state == STATE_OFF
        simulator.faults.inject_alarm("high_temperature", 2)
        await wait_for(lambda: hass.states.get(alarm).state == STATE_ON)
        assert hass.states.get(alarm).attributes["flags"] == ["high_temperature"]
    finally:
        await unload(hass, entry)
