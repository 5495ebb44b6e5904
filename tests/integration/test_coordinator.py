"""The coordinator against the simulated bank: plans, dropout, recovery, CAN push, faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.const import CONF_COMPANION, CONF_DETAIL_INTERVAL, DOMAIN
from custom_components.pylontech.coordinator import (
    PylontechCoordinator,
    carry_details,
    merge_companion,
    remember_details,
)
from custom_components.pylontech.core.faults import FaultUpdate
from custom_components.pylontech.core.model import Bank, Module, Protection
from custom_components.pylontech.core.protocol.rs485 import Command
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .conftest import can_data, console_data, master_serial, rs485_data, setup_entry


def _commands(simulator: BatterySimulator, since: int) -> set[int]:
    assert simulator.rs485 is not None
    return {
        r.request.command
        for r in simulator.rs485.requests[since:]
        if r.request is not None and r.request.command is not None
    }


async def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition the event loop will make true (CAN pushes arrive on their own)."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_fast_polls_keep_identity(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """Identity is read on the first poll only; later fast polls keep the serials."""
    coordinator: PylontechCoordinator = init_integration.runtime_data.coordinator
    assert simulator.rs485 is not None
    before = len(simulator.rs485.requests)
    simulator.bank.step(30)
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    sent = _commands(simulator, before)
    assert Command.GET_SERIAL_NUMBER not in sent
    bank = coordinator.data
    truth = simulator.snapshot()
    for module in bank.present_modules():
        assert module.serial_number == simulator.bank.serial(module.index)
        assert module.voltage == truth.module(module.index).voltage
    assert bank.serial_number == master_serial(simulator)


async def test_module_dropout_marks_only_that_module(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """A module that stops answering is unavailable alone, and comes back."""
    coordinator: PylontechCoordinator = init_integration.runtime_data.coordinator
    simulator.faults.drop_module(3)
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert coordinator.present_modules == {(0, 1), (0, 2)}
    assert not coordinator.module_available((0, 3))
    assert coordinator.module_available((0, 1))
    assert coordinator.module_available((0, 2))
    assert (0, 3) in coordinator.known_modules
    simulator.faults.restore_module(3)
    await coordinator.async_refresh()
    assert coordinator.module_available((0, 3))


async def test_recovers_after_stall_and_drop(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """A stalled bus fails the poll (translated error); a dropped connection heals."""
    coordinator: PylontechCoordinator = init_integration.runtime_data.coordinator
    simulator.faults.inject_link_fault("rs485", LinkFault.STALL, seconds=2)
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    assert not coordinator.module_available((0, 1))
    assert getattr(coordinator.last_exception, "translation_key", None) == "read_failed"
    simulator.faults.clear_link_fault("rs485")
    simulator.faults.inject_link_fault("rs485", LinkFault.DROP, count=1)
    for _ in range(20):
        await asyncio.sleep(1)  # the stall's end, then the link's reconnect backoff
        await coordinator.async_refresh()
        if coordinator.last_update_success:
            break
    assert coordinator.last_update_success
    assert coordinator.present_modules == {(0, 1), (0, 2), (0, 3)}


async def test_fault_listener_sees_protection(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """A tripped protection reaches fault listeners as a flag change and an active fault."""
    coordinator: PylontechCoordinator = init_integration.runtime_data.coordinator
    updates: list[FaultUpdate] = []
    remove = coordinator.async_add_fault_listener(updates.append)
    simulator.faults.inject_protection(Protection.CHARGE_OVER_CURRENT, module=2)
    await coordinator.async_refresh()
    assert updates
    started = [c for c in updates[-1].flag_changes if c.active]
    assert any(c.module_key == (0, 2) and c.flag is Protection.CHARGE_OVER_CURRENT for c in started)
    assert any(f.module_key == (0, 2) for f in coordinator.active_faults)
    simulator.faults.clear_protection(Protection.CHARGE_OVER_CURRENT, module=2)
    await coordinator.async_refresh()
    ended = [c for c in updates[-1].flag_changes if not c.active]
    assert any(c.flag is Protection.CHARGE_OVER_CURRENT for c in ended)
    remove()
    count = len(updates)
    await coordinator.async_refresh()
    assert len(updates) == count


async def test_can_only_entry_pushes(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A CAN entry gets its first bank from the broadcast and follows changes by push."""
    entry = await setup_entry(
        hass,
        MockConfigEntry(domain=DOMAIN, data=can_data(simulator), unique_id="can-test"),
    )
    assert entry.state is ConfigEntryState.LOADED
    coordinator: PylontechCoordinator = entry.runtime_data.coordinator
    assert coordinator.link is None
    first = coordinator.data
    assert first.voltage is not None
    assert first.soc is not None
    assert first.charge_voltage_limit is not None
    simulator.faults.inject_protection(Protection.DISCHARGE_OVER_CURRENT, module=1)
    await _wait_for(lambda: Protection.DISCHARGE_OVER_CURRENT in coordinator.data.protections)
    assert coordinator.last_update_success
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_can_companion_is_merged(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """RS485 modules plus the CAN companion's limits in one bank."""
    entry = await setup_entry(
        hass,
        MockConfigEntry(
            domain=DOMAIN,
            data=rs485_data(simulator),
            options={CONF_DETAIL_INTERVAL: 600, CONF_COMPANION: can_data(simulator)},
            unique_id=master_serial(simulator),
        ),
    )
    coordinator: PylontechCoordinator = entry.runtime_data.coordinator
    assert coordinator.can_link is not None
    await _wait_for(lambda: coordinator.can_link.bank is not None)
    await coordinator.async_refresh()
    bank = coordinator.data
    assert len(bank.present_modules()) == 3
    assert bank.charge_voltage_limit is not None
    assert bank.charge_current_limit is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def test_detail_carry_and_merge_rules() -> None:
    """Identity is carried only to modules present now; flags from both links are unioned."""
    slow = Bank(
        serial_number="M1",
        modules=(
            Module(index=1, serial_number="M1", firmware="1.0", voltage=50.0),
            Module(index=2, serial_number="M2", voltage=50.1),
        ),
    )
    remembered = remember_details(None, slow)
    assert remembered.module(1).voltage is None  # only identity/statistics are kept
    fast = Bank(modules=(Module(index=1, voltage=51.0),))
    carried = carry_details(fast, remembered)
    assert carried.serial_number == "M1"
    assert carried.module(1).serial_number == "M1"
    assert carried.module(1).voltage == 51.0
    assert carried.module(2) is None  # a module missing from the poll stays missing
    can = Bank(
        charge_voltage_limit=53.2,
        protections=frozenset({Protection.OVER_VOLTAGE}),
        modules=(Module(index=9),),
    )
    merged = merge_companion(
        Bank(protections=frozenset({Protection.SHORT_CIRCUIT}), modules=fast.modules), can
    )
    assert merged.charge_voltage_limit == 53.2
    assert merged.protections == {Protection.OVER_VOLTAGE, Protection.SHORT_CIRCUIT}
    assert [m.index for m in merged.modules] == [1]


async def test_can_broadcast_stall_and_resume(
    hass: HomeAssistant, simulator: BatterySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A silent CAN bus makes the bank unavailable; the next broadcast brings it back."""
    monkeypatch.setattr("custom_components.pylontech.coordinator.CAN_STALE_AFTER", 1.0)
    entry = await setup_entry(
        hass, MockConfigEntry(domain=DOMAIN, data=can_data(simulator), unique_id="can-stall")
    )
    coordinator: PylontechCoordinator = entry.runtime_data.coordinator
    assert coordinator.last_update_success
    simulator.faults.inject_link_fault("can", LinkFault.STALL, count=1, seconds=3)
    await _wait_for(lambda: not coordinator.last_update_success, timeout=6)
    assert getattr(coordinator.last_exception, "translation_key", None) == "can_silent"
    await _wait_for(lambda: coordinator.last_update_success, timeout=8)
    assert coordinator.data.voltage is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_console_entry_reads_details_only_on_slow_polls(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Over the console, identity (`info`) is read at setup, not on every fast poll."""
    entry = await setup_entry(
        hass,
        MockConfigEntry(
            domain=DOMAIN,
            data=console_data(simulator),
            options={CONF_DETAIL_INTERVAL: 600},
            unique_id=master_serial(simulator),
        ),
    )
    assert entry.state is ConfigEntryState.LOADED
    coordinator: PylontechCoordinator = entry.runtime_data.coordinator
    assert simulator.console is not None
    assert any(c.startswith("info") for c in simulator.console.commands)
    assert coordinator.present_modules == {(0, 1), (0, 2), (0, 3)}
    before = len(simulator.console.commands)
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    fast = simulator.console.commands[before:]
    assert fast
    assert not any(c.startswith(("info", "stat", "soh")) for c in fast)
    for module in coordinator.data.present_modules():
        assert module.serial_number == simulator.bank.serial(module.index)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("link", ["rs485", "console"])
async def test_new_module_gets_identity(
    hass: HomeAssistant, simulator: BatterySimulator, link: str
) -> None:
    """A module that joins after setup has its serial read within the next polls."""
    simulator.faults.drop_module(3)
    data = rs485_data(simulator) if link == "rs485" else console_data(simulator)
    entry = await setup_entry(
        hass,
        MockConfigEntry(
            domain=DOMAIN,
            data=data,
            options={CONF_DETAIL_INTERVAL: 3600},
            unique_id=master_serial(simulator),
        ),
    )
    coordinator: PylontechCoordinator = entry.runtime_data.coordinator
    assert coordinator.present_modules == {(0, 1), (0, 2)}
    simulator.faults.restore_module(3)
    await coordinator.async_refresh()
    await coordinator.async_refresh()
    module = coordinator.data.module(3)
    assert module is not None
    assert module.serial_number == simulator.bank.serial(3)
    assert (0, 3) in coordinator.present_modules
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_companion_unavailable_does_not_block_setup(
    hass: HomeAssistant,
    simulator: BatterySimulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CAN companion whose interface is missing is skipped (and retried); RS485 still works."""
    monkeypatch.setattr("custom_components.pylontech.coordinator.COMPANION_RETRY_INTERVAL", 0.0)
    companion = {"link": "can", "can_interface": "socketcan", "can_channel": "pylontest9"}
    entry = await setup_entry(
        hass,
        MockConfigEntry(
            domain=DOMAIN,
            data=rs485_data(simulator),
            options={CONF_DETAIL_INTERVAL: 600, CONF_COMPANION: companion},
            unique_id=master_serial(simulator),
        ),
    )
    assert entry.state is ConfigEntryState.LOADED
    coordinator: PylontechCoordinator = entry.runtime_data.coordinator
    assert coordinator.present_modules == {(0, 1), (0, 2), (0, 3)}
    assert "CAN companion link delivers no data" in caplog.text
    assert coordinator.can_link is not None
    assert coordinator.can_link.bank is None
    caplog.set_level(logging.DEBUG, logger="custom_components.pylontech")
    await coordinator.async_refresh()  # retries the companion, which still fails
    assert coordinator.last_update_success
    assert "CAN companion still unavailable" in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_failing_fault_listener_does_not_break_polling(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in a fault listener is logged; the poll and the other listeners go on."""
    coordinator: PylontechCoordinator = init_integration.runtime_data.coordinator
    seen: list[FaultUpdate] = []

    def broken(update: FaultUpdate) -> None:
        raise RuntimeError("listener bug")

    coordinator.async_add_fault_listener(broken)
    coordinator.async_add_fault_listener(seen.append)
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert seen
    assert "a fault listener failed" in caplog.text
