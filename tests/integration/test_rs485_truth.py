"""What an RS485 entry shows is the simulated bank's truth: limits, identity, hostile answers.

Each test reads entity states and registry entries in Home Assistant against a simulator on
127.0.0.1; hostile firmware is played by replacing one answer's INFO with checksum-valid bytes
(``Rs485Server.raw_answers``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import struct

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.const import CONF_DETAIL_INTERVAL, DOMAIN
from custom_components.pylontech.core.model import Protection
from custom_components.pylontech.core.protocol import rs485
from simulator.simulator import BatterySimulator

from .conftest import master_serial, rs485_data, setup_entry
from .entity_helpers import coordinator_of, entity_id, unload

MODULES = 4


@pytest.fixture
async def bank4(socket_enabled: None) -> AsyncIterator[BatterySimulator]:
    """The issue's bank: 4 x US3000C, values frozen."""
    sim = BatterySimulator(MODULES, "US3000C", seed=7, tick=None, can_period=0.2, control_port=None)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def _setup(hass: HomeAssistant, sim: BatterySimulator) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Pylontech US3000C",
        data=rs485_data(sim),
        options={CONF_DETAIL_INTERVAL: 600},
        unique_id=master_serial(sim),
        entry_id="01PYLONTECHRS485TRUTH00000",
    )
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    return entry


def _float(hass: HomeAssistant, entity: str) -> float:
    state = hass.states.get(entity)
    assert state is not None, entity
    return float(state.state)


def _bank_sensor(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    return entity_id(hass, "sensor", f"{entry.entry_id}_{key}")


def _module_entity(
    hass: HomeAssistant, entry: MockConfigEntry, sim: BatterySimulator, index: int, key: str
) -> str:
    domain = "binary_sensor" if key.startswith(("protection_", "alarm_")) else "sensor"
    return entity_id(hass, domain, f"{entry.entry_id}_module_sn_{sim.bank.serial(index)}_{key}")


async def _refresh(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await coordinator_of(entry).async_refresh()
    await hass.async_block_till_done()


def _info(frame: bytes) -> bytes:
    return rs485.parse_frame(frame).info


async def test_bank_limits_are_the_banks_and_module_limits_the_modules(
    hass: HomeAssistant, bank4: BatterySimulator
) -> None:
    """Defect 1: 4 x US3000C shows the bank's 148 A, and 37 A on each module."""
    entry = await _setup(hass, bank4)
    try:
        system = bank4.bank.system_limits()
        assert system.charge_current == 4 * bank4.bank.module_limits(1).charge_current  # type: ignore[union-attr]
        assert (
            _float(hass, _bank_sensor(hass, entry, "charge_current_limit")) == system.charge_current
        )
        assert (
            _float(hass, _bank_sensor(hass, entry, "discharge_current_limit"))
            == system.discharge_current
        )
        assert (
            _float(hass, _bank_sensor(hass, entry, "charge_voltage_limit")) == system.charge_voltage
        )
        assert (
            _float(hass, _bank_sensor(hass, entry, "discharge_voltage_limit"))
            == system.discharge_voltage
        )
        for index in range(1, MODULES + 1):
            own = bank4.bank.module_limits(index)
            assert own is not None
            for key, value in (
                ("charge_current_limit", own.charge_current),
                ("discharge_current_limit", own.discharge_current),
                ("charge_voltage_limit", own.charge_voltage),
                ("discharge_voltage_limit", own.discharge_voltage),
            ):
                assert _float(hass, _module_entity(hass, entry, bank4, index, key)) == value

        # A module in over-voltage protection stops the bank charging, as CAN says.
        bank4.faults.inject_protection(Protection.MODULE_OVER_VOLTAGE, module=2)
        await _refresh(hass, entry)
        system = bank4.bank.system_limits()
        assert system.charge_current == 0.0
        assert _float(hass, _bank_sensor(hass, entry, "charge_current_limit")) == 0.0
        assert _float(hass, _module_entity(hass, entry, bank4, 2, "charge_current_limit")) == 0.0
        module_1 = bank4.bank.module_limits(1)
        assert module_1 is not None
        assert (
            _float(hass, _module_entity(hass, entry, bank4, 1, "charge_current_limit"))
            == module_1.charge_current
        )
        assert (
            _float(hass, _bank_sensor(hass, entry, "discharge_current_limit"))
            == system.discharge_current
        )
    finally:
        await unload(hass, entry)


async def test_every_module_device_has_the_stacks_model(
    hass: HomeAssistant, bank4: BatterySimulator
) -> None:
    """Defect 13: modules 2..n get the stack's model and one manufacturer text."""
    entry = await _setup(hass, bank4)
    try:
        devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        spec = bank4.bank.master.spec
        firmware = ".".join(map(str, spec.manufacturer_version))
        modules = [d for d in devices if d.via_device_id is not None]
        assert len(modules) == MODULES
        assert {(d.model, d.manufacturer) for d in modules} == {(spec.device_name, "Pylontech")}
        (bank_device,) = [d for d in devices if d.via_device_id is None]
        assert (bank_device.model, bank_device.manufacturer) == (spec.device_name, "Pylontech")
        assert bank_device.sw_version == firmware
        assert bank_device.model != firmware
    finally:
        await unload(hass, entry)


def _analog_info(cells: int, temperatures: int, adr: int) -> bytes:
    """A checksum-valid single-module 0x42 INFO with the given counts."""
    return (
        bytes((0x11, adr, cells))
        + struct.pack(f">{cells}H", *([3300] * cells))
        + bytes((temperatures,))
        + struct.pack(f">{temperatures}H", *([2981] * temperatures))
        + struct.pack(">hHHBHH", 0, 49500, 37000, 2, 50000, 10)
    )


async def test_a_record_with_200_cells_creates_no_entities(
    hass: HomeAssistant, bank4: BatterySimulator
) -> None:
    """Defect 8: 200 cells and 100 temperatures are a protocol error, never entities."""
    entry = await _setup(hass, bank4)
    registry = er.async_get(hass)
    try:
        before = {e.entity_id for e in er.async_entries_for_config_entry(registry, entry.entry_id)}
        voltage_2 = _module_entity(hass, entry, bank4, 2, "voltage")
        # Module 2 (ADR 3) answers its own 0x42 with 200 cells; the master's all-modules
        # answer says the same about it, so the link has to ask each module.
        bogus = _analog_info(200, 100, 3)
        records = []
        for index in range(1, MODULES + 1):
            module = bank4.bank.module_snapshot(index)
            assert module is not None
            record = rs485.analog_record_from_module(module, user_defined=4)
            one = _info(rs485.encode_analog_response(2, [record], all_modules=True))
            records.append(bogus[2:] if index == 2 else one[2:])
        bank4.rs485.raw_answers[(0x42, 0xFF)] = bytes((0x11, MODULES)) + b"".join(records)  # type: ignore[union-attr]
        bank4.rs485.raw_answers[(0x42, 0x03)] = bogus  # type: ignore[union-attr]
        link = coordinator_of(entry).link
        assert link is not None
        skipped = link.stats.skipped_records
        await _refresh(hass, entry)

        after = {e.entity_id for e in er.async_entries_for_config_entry(registry, entry.entry_id)}
        assert after == before
        assert link.stats.skipped_records > skipped
        assert "200 cells" in (link.stats.last_error or "")
        assert hass.states.get(voltage_2).state in (STATE_UNAVAILABLE, STATE_UNKNOWN)
        truth_1 = bank4.bank.module_snapshot(1)
        assert truth_1 is not None
        assert _float(hass, _module_entity(hass, entry, bank4, 1, "voltage")) == round(
            truth_1.voltage or 0.0, 2
        )

        # The firmware behaves again: module 2 is back by itself.
        bank4.rs485.raw_answers.clear()  # type: ignore[union-attr]
        await _refresh(hass, entry)
        truth_2 = bank4.bank.module_snapshot(2)
        assert truth_2 is not None
        assert _float(hass, voltage_2) == round(truth_2.voltage or 0.0, 2)
    finally:
        await unload(hass, entry)


async def test_status_bytes_0xff_light_no_protection(
    hass: HomeAssistant, bank4: BatterySimulator
) -> None:
    """Defect 9: a 0x44 whose Status bytes are all 0xFF is not published, and is counted."""
    entry = await _setup(hass, bank4)
    try:
        modules = [bank4.bank.module_snapshot(i) for i in range(1, MODULES + 1)]
        records = [rs485.alarm_record_from_module(m) for m in modules if m is not None]
        hostile = rs485.AlarmRecord(
            cell_states=records[1].cell_states,
            temperature_states=records[1].temperature_states,
            status1=0xFF,
            status2=0xFF,
            status3=0xFF,
            status4=0xFF,
            status5=0xFF,
        )
        records[1] = hostile
        bank4.rs485.raw_answers[(0x44, 0xFF)] = _info(  # type: ignore[union-attr]
            rs485.encode_alarm_response(2, records, all_modules=True)
        )
        bank4.rs485.raw_answers[(0x44, 0x03)] = _info(  # type: ignore[union-attr]
            rs485.encode_alarm_response(3, [hostile], all_modules=False)
        )
        link = coordinator_of(entry).link
        assert link is not None
        skipped = link.stats.skipped_records
        await _refresh(hass, entry)

        assert link.stats.skipped_records > skipped
        assert "0x44" in link.diagnostics()["rejected_answers"]
        for key in (
            "protection_under_voltage",
            "protection_over_voltage",
            "protection_charge_over_current",
            "protection_discharge_over_current",
            "protection_over_temperature",
        ):
            state = hass.states.get(_module_entity(hass, entry, bank4, 2, key))
            assert state is not None
            # Not read this poll: unknown, never "off" ("Safe").
            assert state.state == STATE_UNKNOWN, key
            healthy = hass.states.get(_module_entity(hass, entry, bank4, 1, key))
            assert healthy is not None
            assert healthy.state == "off", key
        bank_protection = hass.states.get(
            entity_id(hass, "binary_sensor", f"{entry.entry_id}_protection_under_voltage")
        )
        assert bank_protection is not None
        # One module's protections are unknown, so the bank's cannot be "Safe" either.
        assert bank_protection.state == STATE_UNKNOWN

        bank4.rs485.raw_answers.clear()  # type: ignore[union-attr]
        await _refresh(hass, entry)
        recovered = hass.states.get(
            _module_entity(hass, entry, bank4, 2, "protection_under_voltage")
        )
        assert recovered is not None
        assert recovered.state == "off"
    finally:
        await unload(hass, entry)


async def test_system_analog_data_feeds_the_bank(
    hass: HomeAssistant, bank4: BatterySimulator
) -> None:
    """Defect 16: a master answering 0x61 gives the bank its SOH and stack values."""
    bank4.rs485.system_analog = True  # type: ignore[union-attr]
    entry = await _setup(hass, bank4)
    try:
        truth = bank4.snapshot()
        assert truth.soh is not None
        assert _float(hass, _bank_sensor(hass, entry, "soh")) == truth.soh
        assert _float(hass, _bank_sensor(hass, entry, "soc")) == truth.soc
        assert _float(hass, _bank_sensor(hass, entry, "voltage")) == round(truth.voltage or 0, 2)
    finally:
        await unload(hass, entry)


async def test_a_master_refusing_system_analog_data_is_asked_once(
    hass: HomeAssistant, bank4: BatterySimulator
) -> None:
    """Defect 16: RTN 0x04 to 0x61 (V3.3 firmware) means it is never asked again."""
    bank4.rs485.system_analog = False  # type: ignore[union-attr]
    entry = await _setup(hass, bank4)
    try:
        await _refresh(hass, entry)
        await _refresh(hass, entry)
        asked = [
            r
            for r in bank4.rs485.requests  # type: ignore[union-attr]
            if r.request is not None and r.request.cid2 == 0x61
        ]
        assert len(asked) == 1
        soh = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_soh")
        if soh is not None:  # an entity for a value the link may carry: never a made-up one
            state = hass.states.get(soh)
            assert state is not None
            assert state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN)
    finally:
        await unload(hass, entry)
