"""What a CAN entry shows when the bus carries frames of a foreign or broken BMS.

The simulator broadcasts such frames as given (``sim.can.send_raw``); every check is on the
entity states Home Assistant shows, against the simulator's truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.core.protocol import can as codec
from simulator.simulator import BatterySimulator

from .conftest import MODEL, MODULES
from .entity_helpers import coordinator_of, entity_id, entries_of, setup_link, unload, wait_for

HEALTHY_SMARTBMS_35A = bytes.fromhex("AAAAAA02AAAAAA02")  # a working SmartBMS, Victron bus
FLAG_CLASSES = ("safety", "problem")


@pytest.fixture
async def v13_simulator(socket_enabled: None) -> AsyncIterator[BatterySimulator]:
    """The conftest bank, broadcasting the newer frame set (0x35A/0x35F)."""
    sim = BatterySimulator(
        MODULES, MODEL, seed=7, tick=None, can_period=0.2, control_port=None, can_firmware="v1.3"
    )
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def flag_states(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """entity id -> state of every protection and warning entity of the entry."""
    found: dict[str, str] = {}
    for registry_entry in entries_of(hass, entry, "binary_sensor"):
        state = hass.states.get(registry_entry.entity_id)
        if state is not None and state.attributes.get("device_class") in FLAG_CLASSES:
            found[registry_entry.entity_id] = state.state
    return found


def state_of(hass: HomeAssistant, entity: str) -> str:
    state = hass.states.get(entity)
    assert state is not None, entity
    return state.state


def sensor_state(hass: HomeAssistant, entry_id: str, key: str) -> str:
    state = hass.states.get(entity_id(hass, "sensor", f"{entry_id}_{key}"))
    assert state is not None
    return state.state


async def test_a_healthy_foreign_bms_shows_no_protection_or_warning(
    hass: HomeAssistant, v13_simulator: BatterySimulator
) -> None:
    """0x35A ``AA AA AA 02 AA AA AA 02`` (every slot "normal") turns no entity on; the one
    slot the BMS then reports active turns exactly its entity on; the 7-byte frame is read."""
    sim = v13_simulator
    assert sim.can is not None
    sim.can.send_raw(codec.SMA_ALARMS_ID, HEALTHY_SMARTBMS_35A)
    entry = await setup_link(hass, sim, "can")
    under_voltage = entity_id(hass, "binary_sensor", f"{entry.entry_id}_protection_under_voltage")
    try:
        await wait_for(lambda: state_of(hass, under_voltage) == STATE_OFF)
        states = flag_states(hass, entry)
        assert len(states) >= 11  # the frame set's protection and warning families exist
        assert [e for e, s in states.items() if s == STATE_ON] == []
        assert all(s == STATE_OFF for s in states.values()), states
        # The BMS trips its low-voltage alarm (slot 2 -> "01"), in the short 7-byte frame.
        sim.can.send_raw(codec.SMA_ALARMS_ID, bytes.fromhex("9AAAAA02AAAAAA"))
        await wait_for(lambda: state_of(hass, under_voltage) == STATE_ON)
        states = flag_states(hass, entry)
        assert [e for e, s in states.items() if s == STATE_ON] == [under_voltage]
        sim.can.send_raw(codec.SMA_ALARMS_ID, HEALTHY_SMARTBMS_35A[:7])
        await wait_for(lambda: state_of(hass, under_voltage) == STATE_OFF)
    finally:
        await unload(hass, entry)


async def test_frames_beyond_any_bank_are_never_shown(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """0x359 with 255 modules and every status bit set, and a 0x356 bank voltage in 0.1 V
    units (5.22 V): the module count stays the bank's, no protection turns on, the voltage
    (and the power from it) is not shown; the true values return once the frames are right."""
    sim = simulator
    assert sim.can is not None
    entry = await setup_link(hass, sim, "can")
    truth = sim.snapshot()
    try:
        await wait_for(lambda: sensor_state(hass, entry.entry_id, "module_count") == str(MODULES))
        await wait_for(
            lambda: (
                float(sensor_state(hass, entry.entry_id, "voltage"))
                == pytest.approx(truth.voltage, abs=0.01)
            )
        )
        sim.can.send_raw(codec.PROTECTION_ID, bytes.fromhex("FFFFFFFFFF504E"))
        sim.can.send_raw(codec.MEASUREMENTS_ID, bytes.fromhex("0A02D3FEEB00"))
        await wait_for(
            lambda: (
                sensor_state(hass, entry.entry_id, "voltage") in (STATE_UNKNOWN, STATE_UNAVAILABLE)
            )
        )
        await asyncio.sleep(1.0)  # five more broadcast cycles of the bad frames
        await hass.async_block_till_done()
        assert sensor_state(hass, entry.entry_id, "module_count") == str(MODULES)
        assert sensor_state(hass, entry.entry_id, "power") in (STATE_UNKNOWN, STATE_UNAVAILABLE)
        assert float(sensor_state(hass, entry.entry_id, "current")) == pytest.approx(-30.1)
        states = flag_states(hass, entry)
        assert states
        assert [e for e, s in states.items() if s == STATE_ON] == []
        link = coordinator_of(entry).can_link
        assert link is not None
        assert link.stats.decode_errors >= 1
        assert link.diagnostics()["implausible"]["voltage"] >= 1
        sim.can.clear_raw()
        await wait_for(
            lambda: (
                sensor_state(hass, entry.entry_id, "voltage")
                not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
            )
        )
        assert float(sensor_state(hass, entry.entry_id, "voltage")) == pytest.approx(
            truth.voltage, abs=0.01
        )
    finally:
        await unload(hass, entry)
