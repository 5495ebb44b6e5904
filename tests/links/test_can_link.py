"""CanLink end to end: python-can's slcan interface against the simulator's SLCAN-over-TCP bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import threading
import time
from typing import Any

import pytest

from custom_components.pylontech.core.errors import CanInterfaceError, CommandNotAllowedError
from custom_components.pylontech.core.links import CanLink, probe_can
from custom_components.pylontech.core.model import Bank, Protection
from custom_components.pylontech.core.protocol import can as codec

PERIOD = 0.2  # broadcast period of the simulated battery in these tests


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def notifier_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("Notifier")]


@pytest.mark.parametrize("firmware", ["v1.2", "v1.3"])
async def test_broadcast_becomes_a_bank(firmware: str, make_simulator: Any) -> None:
    async with make_simulator(
        modules=3, model="US3000C", can_period=PERIOD, can_firmware=firmware
    ) as sim:
        updates: list[Bank] = []
        link = CanLink("slcan", sim.can_channel, on_update=updates.append, stale_after=2.0)
        await link.start()
        try:
            await wait_for(lambda: len(updates) >= 1)
            cycles_before = sim.can.cycles
            await asyncio.sleep(6 * PERIOD)
            cycles = sim.can.cycles - cycles_before
            bank = link.bank
            assert bank is not None
            assert not link.stale
        finally:
            await link.stop()
        truth = sim.snapshot()
        assert bank.voltage == pytest.approx(truth.voltage, abs=0.01)
        assert bank.current == pytest.approx(truth.current, abs=0.1)
        assert bank.soc == pytest.approx(truth.soc, abs=1)
        assert bank.charge_voltage_limit == pytest.approx(truth.charge_voltage_limit, abs=0.1)
        assert bank.discharge_current_limit == pytest.approx(truth.discharge_current_limit, abs=0.1)
        assert bank.manufacturer == "PYLON"
        if firmware == "v1.2":
            assert bank.module_count == 3
            assert bank.charge_enabled is truth.charge_enabled
        else:
            assert bank.full_capacity == pytest.approx(truth.full_capacity, abs=1)
        # Values are frozen (tick=None): one update, none for the unchanged cycles after it.
        assert len(updates) == 1
        assert cycles >= 4
        assert link.stats.frames >= 6 * cycles
        assert not sim.can.received  # listen-only: nothing sent
        assert sim.can.commands[-1] == "C"  # the channel was closed on stop
        assert not notifier_threads()


async def test_at_most_one_update_per_cycle_while_values_move(make_simulator: Any) -> None:
    async with make_simulator(modules=2, can_period=PERIOD, tick=0.05, time_scale=60.0) as sim:
        updates: list[Bank] = []
        link = CanLink("slcan", sim.can_channel, on_update=updates.append)
        await link.start()
        try:
            await wait_for(lambda: len(updates) >= 1)
            start_cycles, start_updates = sim.can.cycles, len(updates)
            await asyncio.sleep(10 * PERIOD)
            cycles = sim.can.cycles - start_cycles
            published = len(updates) - start_updates
        finally:
            await link.stop()
        assert cycles >= 5
        assert 1 <= published <= cycles + 1
        assert updates[-1] != updates[0]


async def test_faults_reach_the_bank(make_simulator: Any) -> None:
    async with make_simulator(modules=2, can_period=PERIOD) as sim:
        updates: list[Bank] = []
        link = CanLink("slcan", sim.can_channel, on_update=updates.append)
        await link.start()
        try:
            await wait_for(lambda: len(updates) >= 1)
            sim.faults.inject_protection("charge_over_current", module=2)
            await wait_for(lambda: Protection.CHARGE_OVER_CURRENT in updates[-1].protections)
            sim.faults.clear_protection("charge_over_current", module=2)
            await wait_for(lambda: Protection.CHARGE_OVER_CURRENT not in updates[-1].protections)
            sim.faults.drop_module(2)
            await wait_for(lambda: updates[-1].module_count == 1)
        finally:
            await link.stop()


async def test_keepalive_is_the_only_frame_sent(make_simulator: Any) -> None:
    async with make_simulator(modules=1, can_period=PERIOD) as sim:
        link = CanLink("slcan", sim.can_channel, on_update=lambda bank: None, keepalive=True)
        await link.start()
        try:
            await wait_for(lambda: sim.can.keepalives >= 2, timeout=4.0)
            with pytest.raises(CommandNotAllowedError):
                await link.send(0x351, bytes(8))
            with pytest.raises(CommandNotAllowedError):
                await link.send(codec.KEEPALIVE_ID, b"\x01" + bytes(7))
        finally:
            await link.stop()
        assert sim.can.received
        for frame in sim.can.received:
            assert (frame.can_id, frame.data, frame.extended) == (0x305, bytes(8), False)
        assert link.diagnostics()["keepalives_sent"] >= 2


async def test_stale_when_the_broadcast_stops_then_resumes(make_simulator: Any) -> None:
    async with make_simulator(modules=1, can_period=PERIOD) as sim:
        stale_events: list[bool] = []
        link = CanLink(
            "slcan",
            sim.can_channel,
            on_update=lambda bank: None,
            stale_after=1.0,
            on_stale=stale_events.append,
        )
        await link.start()
        try:
            await wait_for(lambda: link.bank is not None)
            sim.faults.inject_link_fault("can", "stall", count=1, seconds=2.0)
            await wait_for(lambda: link.stale, timeout=4.0)
            assert link.bank is None
            assert not link.stats.connected
            await wait_for(lambda: not link.stale, timeout=4.0)
            assert link.bank is not None
        finally:
            await link.stop()
        assert stale_events == [False, True, False]
        assert link.stats.timeouts == 1


async def test_dropped_gateway_is_reopened(make_simulator: Any) -> None:
    async with make_simulator(modules=2, can_period=PERIOD) as sim:
        updates: list[Bank] = []
        link = CanLink("slcan", sim.can_channel, on_update=updates.append, stale_after=1.0)
        await link.start()
        try:
            await wait_for(lambda: link.bank is not None)
            sim.faults.inject_link_fault("can", "drop", count=1)
            await wait_for(lambda: link.stats.reconnects >= 1, timeout=8.0)
            await wait_for(lambda: link.bank is not None and not link.stale, timeout=5.0)
            assert sim.can.connections_total >= 2
        finally:
            await link.stop()
        assert len(notifier_threads()) == 0


@pytest.mark.parametrize("fault", ["garbage", "checksum", "truncate"])
async def test_corrupted_lines_do_not_stop_the_link(fault: str, make_simulator: Any) -> None:
    async with make_simulator(modules=2, can_period=PERIOD, tick=0.05, time_scale=60.0) as sim:
        updates: list[Bank] = []
        link = CanLink("slcan", sim.can_channel, on_update=updates.append, stale_after=2.0)
        await link.start()
        try:
            await wait_for(lambda: len(updates) >= 1)
            sim.faults.inject_link_fault("can", fault, count=2)
            await asyncio.sleep(3 * PERIOD)
            count = len(updates)
            await wait_for(lambda: len(updates) > count, timeout=3.0)
            assert not link.stale
        finally:
            await link.stop()


async def test_missing_interface_raises_a_clear_error(unused_port: int) -> None:
    link = CanLink("slcan", f"socket://127.0.0.1:{unused_port}", on_update=lambda bank: None)
    with pytest.raises(CanInterfaceError, match="CAN slcan"):
        await link.start()
    await link.stop()
    bogus = CanLink("no-such-interface", "x", on_update=lambda bank: None)
    with pytest.raises(CanInterfaceError):
        await bogus.start()
    assert not notifier_threads()


async def test_diagnostics_replay_as_candump(make_simulator: Any) -> None:
    async with make_simulator(modules=1, can_period=PERIOD) as sim:
        link = CanLink("slcan", sim.can_channel, on_update=lambda bank: None)
        await link.start()
        try:
            await wait_for(lambda: link.stats.frames >= 12)
            diagnostics = link.diagnostics()
        finally:
            await link.stop()
    assert diagnostics["firmware"] == "v1.2"
    assert "0x351" in diagnostics["part_ages"]
    records = [codec.parse_candump_line(line) for line in diagnostics["traffic"]]
    assert all(r is not None for r in records)
    assert {r.can_id for r in records if r is not None} >= {0x351, 0x355, 0x356, 0x359}


HEALTHY_SMARTBMS_35A = bytes.fromhex("AAAAAA02AAAAAA02")


async def test_a_healthy_foreign_bms_raises_no_flag(make_simulator: Any) -> None:
    """A working non-Pylontech BMS (0x35A all "10" = normal, DLC 8 and DLC 7): no flag."""
    async with make_simulator(modules=2, can_period=PERIOD, can_firmware="v1.3") as sim:
        sim.can.send_raw(codec.SMA_ALARMS_ID, HEALTHY_SMARTBMS_35A)
        updates: list[Bank] = []
        link = CanLink("slcan", sim.can_channel, on_update=updates.append)
        await link.start()
        try:
            await wait_for(lambda: link._assembler.part(codec.SMA_ALARMS_ID) is not None)
            await wait_for(lambda: len(updates) >= 1)
            assert updates[-1].protections == frozenset()
            assert updates[-1].alarms == frozenset()
            # The same BMS trips its low-voltage alarm, then sends the short 7-byte frame.
            sim.can.send_raw(codec.SMA_ALARMS_ID, bytes.fromhex("9AAAAA02AAAAAA"))
            await wait_for(lambda: Protection.UNDER_VOLTAGE in updates[-1].protections)
            assert updates[-1].alarms == frozenset()
            sim.can.send_raw(codec.SMA_ALARMS_ID, HEALTHY_SMARTBMS_35A[:7])
            await wait_for(lambda: not updates[-1].protections)
        finally:
            await link.stop()
        assert link.stats.decode_errors == 0


async def test_frames_beyond_any_bank_are_counted_not_published(make_simulator: Any) -> None:
    """255 modules and 0xFF status bytes in 0x359 are refused and counted; a 5.22 V bank
    voltage (0.1 V units) is withheld; everything else in the cycle stays live, and the
    true values return by themselves once the frames are right again."""
    async with make_simulator(modules=4, can_period=PERIOD) as sim:
        updates: list[Bank] = []
        link = CanLink("slcan", sim.can_channel, on_update=updates.append)
        await link.start()
        try:
            await wait_for(lambda: len(updates) >= 1 and updates[-1].module_count == 4)
            sim.can.send_raw(codec.PROTECTION_ID, bytes.fromhex("FFFFFFFFFF504E"))
            sim.can.send_raw(codec.MEASUREMENTS_ID, bytes.fromhex("0A02D3FEEB00"))
            await wait_for(lambda: link.stats.decode_errors >= 2)
            await wait_for(lambda: updates[-1].voltage is None)
            bank = updates[-1]
            assert bank.current == pytest.approx(-30.1)  # the frame's other values stay
            assert bank.module_count == 4  # the refused 0x359 did not replace the good one
            assert bank.protections == frozenset()
            diagnostics = link.diagnostics()
            assert diagnostics["implausible"]["voltage"] >= 1
            assert "5.22 V" in diagnostics["last_implausible"]
            assert "255 modules" in (link.stats.last_error or "")
            sim.can.send_raw(codec.PROTECTION_ID, bytes.fromhex("000000000A504E"))
            await wait_for(lambda: updates[-1].module_count == 10)  # 96 > 10: accepted
            sim.can.clear_raw()
            await wait_for(lambda: updates[-1].voltage is not None)
            await wait_for(lambda: updates[-1].module_count == 4)
        finally:
            await link.stop()
        truth = sim.snapshot()
        assert updates[-1].voltage == pytest.approx(truth.voltage, abs=0.01)


async def test_probe_can_names_no_model_and_sends_only_the_slcan_setup(
    make_simulator: Any,
) -> None:
    """The probe reports no model (CAN has none) and writes only the documented setup lines."""
    async with make_simulator(modules=4, can_period=PERIOD) as sim:
        result = await probe_can("slcan", sim.can_channel, timeout=3.0)
        commands = list(sim.can.commands)
    assert result.model is None
    assert result.module_count == 4
    assert not sim.can.received  # no frame transmitted
    # python-can 4.6's slcan open (close, 500 kbit/s, no FD rate, listen-only) and close:
    # exactly the lines docs/security.md lists.
    assert commands == ["C", "S6", "", "L", "L", "C"]
