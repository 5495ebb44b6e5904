"""What the user sees is true: per-link availability, carried details, plausibility, two banks.

Every test here drives the simulated bank through Home Assistant and reads entity states,
device registry entries and repair issues, as a user would see them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
import logging
import struct
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.const import CONF_COMPANION, CONF_DETAIL_INTERVAL, DOMAIN
from custom_components.pylontech.coordinator import PylontechCoordinator, bank_device_identifier
from custom_components.pylontech.core.errors import PylontechError
from custom_components.pylontech.core.links import ConsoleLink, Rs485Link
from custom_components.pylontech.core.model import Bank, Protection
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .conftest import MODEL, can_data, console_data, rs485_data, setup_entry
from .entity_helpers import coordinator_of, entity_id, setup_link, unload, wait_for

LIMITS_ID = 0x351
STATE_ID = 0x355


def _state(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    state = hass.states.get(entity_id(hass, domain, unique_id))
    assert state is not None, unique_id
    return state.state


def _bank(entry: MockConfigEntry, key: str) -> str:
    return f"{entry.entry_id}_{key}"


def _module(entry: MockConfigEntry, simulator: BatterySimulator, index: int, key: str) -> str:
    return f"{entry.entry_id}_module_sn_{simulator.bank.serial(index)}_{key}"


async def _refresh(hass: HomeAssistant, coordinator: PylontechCoordinator) -> None:
    await coordinator.async_refresh()
    await hass.async_block_till_done()


# --- defect 3: a failing primary keeps the live CAN companion's values ---------------------


async def test_console_stall_keeps_can_values_live(
    hass: HomeAssistant, simulator: BatterySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Console stalled, CAN live: CAN's values stay, console-only ones go unavailable.

    Each link's connectivity entity tells the truth, also when CAN stalls as well, and
    everything comes back when the links do.
    """
    monkeypatch.setattr("custom_components.pylontech.coordinator.CAN_STALE_AFTER", 1.0)
    entry = await setup_link(hass, simulator, "console", **{CONF_COMPANION: can_data(simulator)})
    coordinator = coordinator_of(entry)
    assert isinstance(coordinator.link, ConsoleLink)
    coordinator.link.command_timeout = 0.3  # a stalled console fails fast in the test
    link = _bank(entry, "link")
    companion = _bank(entry, "companion_link")
    try:
        assert coordinator.can_link is not None
        await wait_for(lambda: coordinator.can_link.bank is not None)
        await _refresh(hass, coordinator)
        ccl = _bank(entry, "charge_current_limit")
        voltage = _bank(entry, "voltage")
        # Carried by the console only (pwrsys/pwr), not by CAN 0x351/0x355/0x356.
        highest_cell = _bank(entry, "cell_voltage_max")
        module_voltage = _module(entry, simulator, 2, "voltage")
        for unique_id in (ccl, voltage, highest_cell, module_voltage):
            assert _state(hass, "sensor", unique_id) not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
        assert _state(hass, "binary_sensor", link) == STATE_ON
        assert _state(hass, "binary_sensor", companion) == STATE_ON

        simulator.faults.inject_link_fault("console", LinkFault.STALL, seconds=5)
        await _refresh(hass, coordinator)
        assert not coordinator.primary_connected
        assert coordinator.last_update_success  # the companion still delivers
        assert _state(hass, "binary_sensor", link) == STATE_OFF
        assert _state(hass, "binary_sensor", companion) == STATE_ON
        can_bank = coordinator.can_link.bank
        assert can_bank is not None
        assert float(_state(hass, "sensor", ccl)) == pytest.approx(
            can_bank.charge_current_limit, abs=0.05
        )
        assert float(_state(hass, "sensor", voltage)) == pytest.approx(can_bank.voltage, abs=0.01)
        assert _state(hass, "sensor", highest_cell) == STATE_UNAVAILABLE
        assert _state(hass, "sensor", module_voltage) == STATE_UNAVAILABLE
        # A CAN-carried protection still reaches the bank's entity while the console is down.
        protection = _bank(entry, "protection_charge_over_current")
        assert _state(hass, "binary_sensor", protection) == STATE_OFF
        simulator.faults.inject_protection(Protection.CHARGE_OVER_CURRENT, module=1)
        await wait_for(lambda: _state(hass, "binary_sensor", protection) == STATE_ON)
        simulator.faults.clear_protection(Protection.CHARGE_OVER_CURRENT, module=1)

        # CAN stalls too: its connectivity entity says so and nothing stays "available".
        simulator.faults.inject_link_fault("can", LinkFault.STALL, count=1, seconds=4)
        await wait_for(lambda: _state(hass, "binary_sensor", companion) == STATE_OFF, timeout=6)
        assert _state(hass, "sensor", ccl) == STATE_UNAVAILABLE
        assert _state(hass, "sensor", voltage) == STATE_UNAVAILABLE
        assert _state(hass, "binary_sensor", link) == STATE_OFF

        simulator.faults.clear_link_fault("can")
        simulator.faults.clear_link_fault("console")
        await wait_for(lambda: _state(hass, "binary_sensor", companion) == STATE_ON, timeout=20)
        for _ in range(30):  # the console link's reconnect backoff
            await _refresh(hass, coordinator)
            if coordinator.primary_connected:
                break
            await asyncio.sleep(0.5)
        assert _state(hass, "binary_sensor", link) == STATE_ON
        assert _state(hass, "sensor", module_voltage) not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
        assert _state(hass, "sensor", highest_cell) not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
    finally:
        simulator.faults.clear_links()
        await unload(hass, entry)


async def test_can_stall_makes_only_can_values_unavailable(
    hass: HomeAssistant, simulator: BatterySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RS485 live, CAN stalled: values only CAN carries are unavailable, not unknown."""
    monkeypatch.setattr("custom_components.pylontech.coordinator.CAN_STALE_AFTER", 1.0)
    entry = await setup_link(hass, simulator, "rs485", **{CONF_COMPANION: can_data(simulator)})
    coordinator = coordinator_of(entry)
    try:
        assert coordinator.can_link is not None
        await wait_for(lambda: coordinator.can_link.bank is not None)
        await _refresh(hass, coordinator)
        # Temperature warnings for the bank: CAN 0x359 carries them, RS485 0x44 does not.
        warning = _bank(entry, "alarm_high_temperature")
        voltage = _bank(entry, "voltage")
        assert _state(hass, "binary_sensor", warning) == STATE_OFF
        simulator.faults.inject_link_fault("can", LinkFault.STALL, count=1, seconds=4)
        companion = _bank(entry, "companion_link")
        await wait_for(lambda: _state(hass, "binary_sensor", companion) == STATE_OFF, timeout=6)
        await _refresh(hass, coordinator)
        assert _state(hass, "binary_sensor", warning) == STATE_UNAVAILABLE
        assert _state(hass, "sensor", voltage) not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
        assert _state(hass, "binary_sensor", _bank(entry, "link")) == STATE_ON
    finally:
        simulator.faults.clear_links()
        await unload(hass, entry)


# --- defect 2: console cycles stay known between slow reads ----------------------------------


async def test_console_cycles_stay_known_between_slow_reads(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """`stat` cycles, read on slow polls only, stay the simulator's value on fast polls."""
    entry = await setup_link(hass, simulator, "console")
    coordinator = coordinator_of(entry)
    try:
        for slow in range(2):
            truth = simulator.snapshot()
            for _ in range(3):  # fast polls between the slow reads
                await _refresh(hass, coordinator)
                for index in (1, 2, 3):
                    expected = truth.module(index).cycles
                    assert expected is not None
                    state = _state(hass, "sensor", _module(entry, simulator, index, "cycles"))
                    assert state == str(expected), (slow, index)
            await coordinator.async_refresh_details()
            await hass.async_block_till_done()
    finally:
        await unload(hass, entry)


# --- defect 9: implausible values are not published ------------------------------------------


async def test_implausible_can_values_are_not_published(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """SOC 65535 % and CVL 6553.5 V from checksum-valid CAN frames: unknown, counted."""
    entry = await setup_link(hass, simulator, "can")
    coordinator = coordinator_of(entry)
    soc = _bank(entry, "soc")
    cvl = _bank(entry, "charge_voltage_limit")
    try:
        assert _state(hass, "sensor", soc) not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
        simulator.faults.send_raw_can(STATE_ID, struct.pack("<HH", 0xFFFF, 100))
        simulator.faults.send_raw_can(LIMITS_ID, struct.pack("<HhhH", 0xFFFF, 740, 740, 450))
        await wait_for(lambda: _state(hass, "sensor", soc) == STATE_UNKNOWN)
        await wait_for(lambda: _state(hass, "sensor", cvl) == STATE_UNKNOWN)
        assert _state(hass, "sensor", _bank(entry, "charge_current_limit")) == "74.0"
        rejected = coordinator.diagnostics()["implausible_values"]
        assert rejected["bank.soc"]["count"] >= 1
        assert rejected["bank.soc"]["latest"] == 65535
        assert rejected["bank.charge_voltage_limit"]["latest"] == pytest.approx(6553.5)
        assert rejected["bank.soc"]["source"] == "can"
        simulator.faults.clear_raw_can()
        await wait_for(lambda: _state(hass, "sensor", soc) not in (STATE_UNKNOWN,), timeout=5)
    finally:
        simulator.faults.clear_raw_can()
        await unload(hass, entry)


async def test_implausible_rs485_values_are_counted_in_diagnostics(
    hass: HomeAssistant, simulator: BatterySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module voltage of 6553.5 V and 255 modules: unknown, counted, in diagnostics."""
    original = Rs485Link.read_bank

    async def absurd(self: Rs485Link, plan: Any) -> Bank:
        bank = await original(self, plan)
        master = replace(bank.modules[0], voltage=6553.5, cycles=65535)
        return replace(bank, module_count=255, modules=(master, *bank.modules[1:]))

    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    try:
        voltage = _module(entry, simulator, 1, "voltage")
        assert _state(hass, "sensor", voltage) not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
        monkeypatch.setattr(Rs485Link, "read_bank", absurd)
        await _refresh(hass, coordinator)
        assert _state(hass, "sensor", voltage) == STATE_UNKNOWN
        assert _state(hass, "sensor", _module(entry, simulator, 1, "cycles")) == STATE_UNKNOWN
        assert _state(hass, "sensor", _bank(entry, "module_count")) == STATE_UNKNOWN
        assert _state(hass, "sensor", _module(entry, simulator, 2, "voltage")) not in (
            STATE_UNAVAILABLE,
            STATE_UNKNOWN,
        )
        await _refresh(hass, coordinator)
        rejected = coordinator.diagnostics()["implausible_values"]
        assert rejected["module.voltage"]["count"] == 2
        assert rejected["module.voltage"]["latest"] == 6553.5
        assert rejected["module.voltage"]["source"] == "rs485"
        assert rejected["bank.module_count"]["latest"] == 255
    finally:
        monkeypatch.setattr(Rs485Link, "read_bank", original)
        await unload(hass, entry)


async def test_bank_device_text_is_cleaned(
    hass: HomeAssistant, simulator: BatterySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model name of ten U+FFFD and a NUL-padded serial are not shown on the bank device."""
    original = Rs485Link.read_bank

    async def garbled(self: Rs485Link, plan: Any) -> Bank:
        bank = await original(self, plan)
        return replace(
            bank,
            model="\ufffd" * 10,
            manufacturer="\x00\x01\ufffd",
            serial_number=f"{bank.serial_number}\x00\x00",
            firmware=" \ufffd2.8\x7f ",
        )

    monkeypatch.setattr(Rs485Link, "read_bank", garbled)
    entry = await setup_link(hass, simulator, "rs485")
    try:
        device = dr.async_get(hass).async_get_device_by_identifier(
            (DOMAIN, bank_device_identifier(entry)), entry.entry_id
        )
        assert device is not None
        assert device.model is None
        assert device.manufacturer == "Pylontech"
        assert device.serial_number == simulator.bank.serial(1)
        assert device.sw_version == "2.8"
    finally:
        await unload(hass, entry)


# --- defect 12: a second bank does not collide with the first -------------------------------


@pytest.fixture
async def second_simulator(socket_enabled: None) -> AsyncIterator[BatterySimulator]:
    """Another 3-module bank with its own serials."""
    sim = BatterySimulator(3, MODEL, seed=11, tick=None, can_period=0.2, control_port=None)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def test_second_bank_is_named_apart(
    hass: HomeAssistant, simulator: BatterySimulator, second_simulator: BatterySimulator
) -> None:
    """Two banks: module devices carry their bank's name, entity ids never get ``_2``,
    and a repair issue says which bank it concerns."""
    assert simulator.bank.serial(1) != second_simulator.bank.serial(1)
    garage = MockConfigEntry(
        domain=DOMAIN,
        title="Garage",
        data=rs485_data(simulator),
        options={CONF_DETAIL_INTERVAL: 600},
        unique_id=simulator.bank.serial(1),
    )
    cellar = MockConfigEntry(
        domain=DOMAIN,
        title="Cellar",
        data=console_data(second_simulator),
        options={CONF_DETAIL_INTERVAL: 600},
        unique_id=second_simulator.bank.serial(1),
    )
    garage.add_to_hass(hass)
    cellar.add_to_hass(hass)
    try:
        assert await hass.config_entries.async_setup(garage.entry_id)  # sets up both
        await hass.async_block_till_done()
        assert garage.state is cellar.state is ConfigEntryState.LOADED
        devices = dr.async_get(hass)
        for entry, sim, title in (
            (garage, simulator, "Garage"),
            (cellar, second_simulator, "Cellar"),
        ):
            names = sorted(
                d.name or ""
                for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
                if d.via_device_id is not None
            )
            assert names == [f"{title} module {n}" for n in (1, 2, 3)]
            voltage = entity_id(hass, "sensor", _module(entry, sim, 1, "voltage"))
            assert voltage == f"sensor.{title.lower()}_module_1_voltage"
        registry = er.async_get(hass)
        for entry, prefix in ((garage, "garage_module_"), (cellar, "cellar_module_")):
            module_devices = {
                d.id
                for d in dr.async_entries_for_config_entry(devices, entry.entry_id)
                if d.via_device_id is not None
            }
            object_ids = [
                e.entity_id.split(".", 1)[1]
                for e in er.async_entries_for_config_entry(registry, entry.entry_id)
                if e.device_id in module_devices
            ]
            assert object_ids
            # Named after their bank: nothing needed a "_2" to be told apart.
            assert all(object_id.startswith(prefix) for object_id in object_ids)

        simulator.faults.inject_protection("cell_under_voltage", 2)
        await coordinator_of(garage).async_refresh()
        await hass.async_block_till_done()
        issues = [
            issue
            for (domain, ident), issue in ir.async_get(hass).issues.items()
            if domain == DOMAIN and ident.startswith(garage.entry_id)
        ]
        assert issues
        assert all(i.translation_placeholders["bank"] == "Garage" for i in issues)
    finally:
        simulator.faults.clear_all()
        for entry in (garage, cellar):
            await unload(hass, entry)


# --- defect 6 (part): no traceback at shutdown after a failed setup ------------------------


async def test_link_refused_at_construction_fails_cleanly(
    hass: HomeAssistant,
    simulator: BatterySimulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A link that refuses its settings: a clear reason on the entry, no traceback at all."""

    def refuse(*args: Any, **kwargs: Any) -> Rs485Link:
        raise PylontechError("RS485 group 9 is not allowed")

    monkeypatch.setattr("custom_components.pylontech.coordinator.create_polling_link", refuse)
    entry = await setup_entry(
        hass,
        MockConfigEntry(domain=DOMAIN, title="Bad", data=rs485_data(simulator), unique_id="bad"),
    )
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert "group 9" in (entry.reason or "")
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in loud if r.exc_info], [r.getMessage() for r in loud]
    assert "AttributeError" not in caplog.text
