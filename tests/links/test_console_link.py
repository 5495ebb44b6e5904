"""ConsoleLink end to end against the simulator's console (and small TCP peers)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from custom_components.pylontech.core.errors import (
    CommandNotAllowedError,
    LinkError,
    NoResponseError,
    ProtocolError,
    WakeUpError,
    WrongBaudError,
)
from custom_components.pylontech.core.links import ConsoleLink, ConsoleState, ReadPlan
from custom_components.pylontech.core.model import Alarm, Module, ModuleState, Protection
from custom_components.pylontech.core.protocol import console as codec
from simulator import ConsoleServer

FULL = ReadPlan(identity=True, cells=True, alarms=True, limits=True, statistics=True)


def assert_module_matches(got: Module, truth: Module) -> None:
    """What the console prints (mV, mA, m°C, %) equals the simulated truth."""
    assert got.index == truth.index
    assert got.voltage == pytest.approx(truth.voltage, abs=0.001)
    assert got.current == pytest.approx(truth.current, abs=0.001)
    assert got.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.001)
    assert got.soc == pytest.approx(truth.soc, abs=1.0)
    assert got.state == truth.state


def assert_allow_listed(server: ConsoleServer) -> None:
    """Every line the console received is an allow-listed read-only command."""
    assert server.commands
    for text in server.commands:
        assert codec.validate_command(text) == text


@pytest.mark.parametrize(
    ("models", "layout", "prompt", "state"),
    [
        (["US5000", "US2000C", "US2000C"], None, "pylon>", ConsoleState.PROMPT),
        (["US2000B", "US2000B"], "A", "pylon>", ConsoleState.PROMPT),
        (["US5000", "US5000", "US3000C"], "C", "pylon_debug>", ConsoleState.DEBUG_PROMPT),
        (["US3000C"] * 4, "B", "PYTES>", ConsoleState.OTHER_PROMPT),
    ],
)
async def test_full_poll_matches_the_truth(
    models: list[str], layout: str | None, prompt: str, state: ConsoleState, make_simulator: Any
) -> None:
    async with make_simulator(modules=models, console_layout=layout, prompt=prompt) as sim:
        link = ConsoleLink(sim.console_url, command_timeout=2.0)
        try:
            await link.open()
            assert link.state is state
            assert link.prompt == prompt
            bank = await link.read_bank(FULL)
        finally:
            await link.close()
        truth = sim.snapshot()
        assert len(bank.modules) == len(models)
        assert bank.module_count == len(models)
        for got, expected in zip(bank.modules, truth.modules, strict=True):
            assert_module_matches(got, expected)
            assert got.serial_number == expected.serial_number  # info N: Barcode
            assert got.model == expected.model
            assert got.cycles == expected.cycles  # stat N: CYCLE Times
            assert got.counters  # stat N counters
            assert len(got.cell_voltages) == sim.bank.spec(got.index).cells  # type: ignore[union-attr]
        # pwrsys: the stack's recommended limits, positive magnitudes
        assert bank.charge_voltage_limit == pytest.approx(truth.charge_voltage_limit, abs=0.01)
        assert bank.discharge_current_limit == pytest.approx(
            truth.discharge_current_limit, abs=0.01
        )
        assert bank.serial_number == truth.serial_number
        expected_commands = {"pwr", "pwrsys"} | {
            f"{verb} {n}"
            for verb in ("pwr", "bat", "info", "stat", "soh")
            for n in range(1, len(models) + 1)
        }
        assert set(sim.console.commands) == expected_commands
        assert_allow_listed(sim.console)
        assert link.stats.decode_errors == 0


async def test_plan_controls_the_commands(make_simulator: Any) -> None:
    async with make_simulator(modules=3, model="US2000C") as sim:
        link = ConsoleLink(sim.console_url)
        try:
            await link.read_bank(FULL)
            before = len(sim.console.commands)
            bank = await link.read_bank(ReadPlan(cells=False, limits=False, alarms=False))
            assert sim.console.commands[before:] == ["pwr"]
            # identity read on the first poll is kept
            assert all(m.serial_number for m in bank.modules)
            assert all(m.cell_voltages == () for m in bank.modules)
            before = len(sim.console.commands)
            await link.read_bank(ReadPlan(cells=False, limits=False))
            # the event words of `pwr N` are the alarm part of the plan
            assert sim.console.commands[before:] == ["pwr", "pwr 1", "pwr 2", "pwr 3"]
        finally:
            await link.close()


async def test_alarm_words_reach_the_model(make_simulator: Any) -> None:
    async with make_simulator(modules=2, model="US2000C") as sim:
        sim.faults.inject_protection("charge_over_current", module=2)
        sim.faults.inject_alarm("cell_low_voltage", module=1)
        link = ConsoleLink(sim.console_url)
        try:
            bank = await link.read_bank(ReadPlan())
        finally:
            await link.close()
        flags = set(bank.modules[0].alarms) | set(bank.modules[0].protections)
        flags |= set(bank.modules[1].alarms) | set(bank.modules[1].protections)
        assert flags & {Alarm.CELL_LOW_VOLTAGE, Alarm.LOW_VOLTAGE, Protection.CHARGE_OVER_CURRENT}


@pytest.mark.usefixtures("fast_console")
async def test_silent_console_is_woken(make_simulator: Any) -> None:
    async with make_simulator(modules=2, model="US2000B") as sim:
        sim.faults.inject_link_fault("console", "silent")
        link = ConsoleLink(sim.console_url)
        try:
            await link.open()
            assert link.state is ConsoleState.WOKEN
            assert link.prompt == "pylon>"
            assert sim.console.wake_ups == 1
            assert link.stats.wake_ups == 1
            bank = await link.read_bank(ReadPlan())
            assert len(bank.modules) == 2
        finally:
            await link.close()
        assert_allow_listed(sim.console)


@pytest.mark.usefixtures("fast_console")
async def test_silent_console_without_wake_up(make_simulator: Any) -> None:
    async with make_simulator(modules=1) as sim:
        sim.faults.inject_link_fault("console", "silent")
        link = ConsoleLink(sim.console_url, wake_up=False)
        try:
            with pytest.raises(NoResponseError, match="silent"):
                await link.open()
            assert link.state is ConsoleState.SILENT
            assert sim.console.wake_ups == 0
        finally:
            await link.close()


@pytest.mark.usefixtures("fast_console")
async def test_wake_up_gives_up_after_bounded_attempts(make_peer: Any) -> None:
    received = bytearray()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            received.extend(data)

    async with make_peer(deaf) as server:
        link = ConsoleLink(server.url)
        try:
            with pytest.raises(WakeUpError, match="wake-up"):
                await link.open()
            assert link.state is ConsoleState.FAILED
            assert bytes(received).count(codec.WAKE_UP_FRAME) == 3
            # The backoff keeps the next attempt from hammering the port.
            with pytest.raises(LinkError, match="reconnecting in"):
                await link.read_bank(ReadPlan())
        finally:
            await link.close()


@pytest.mark.usefixtures("fast_console")
async def test_noise_instead_of_a_prompt_reads_as_wrong_baud(make_peer: Any) -> None:
    async def noisy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            writer.write(bytes([0xF0, 0x80, 0xFE, 0x00]) * 8)

    async with make_peer(noisy) as server:
        link = ConsoleLink(server.url)
        try:
            with pytest.raises(WrongBaudError, match="baud"):
                await link.open()
        finally:
            await link.close()


@pytest.mark.parametrize("fault", ["garbage", "checksum", "truncate", "drop"])
@pytest.mark.usefixtures("fast_console")
async def test_transport_faults_recover(fault: str, make_simulator: Any) -> None:
    async with make_simulator(modules=3, model="US2000C") as sim:
        link = ConsoleLink(sim.console_url, command_timeout=0.5)
        try:
            await link.read_bank(FULL)
            sim.faults.inject_link_fault("console", fault, count=1)
            try:
                await link.read_bank(ReadPlan(limits=False))
            except LinkError:
                pass  # one failed poll is acceptable; the next must be clean
            bank = await link.read_bank(ReadPlan(limits=False))
            truth = sim.snapshot()
            for got, expected in zip(bank.modules, truth.modules, strict=True):
                assert_module_matches(got, expected)
            if fault == "drop":
                assert link.stats.connection_drops == 1
                assert link.stats.reconnects == 1
            if fault == "truncate":
                assert link.stats.timeouts >= 1
        finally:
            await link.close()
        assert_allow_listed(sim.console)


@pytest.mark.usefixtures("fast_console")
async def test_stall_then_recovery(make_simulator: Any) -> None:
    async with make_simulator(modules=2) as sim:
        link = ConsoleLink(sim.console_url, command_timeout=0.3)
        try:
            await link.open()
            sim.faults.inject_link_fault("console", "stall", count=1, seconds=0.4)
            bank = await link.read_bank(ReadPlan(cells=False, limits=False))
            assert len(bank.modules) == 2
            assert link.stats.timeouts >= 1
        finally:
            await link.close()


async def test_module_dropout(make_simulator: Any) -> None:
    async with make_simulator(modules=3) as sim:
        link = ConsoleLink(sim.console_url)
        try:
            await link.read_bank(ReadPlan())
            sim.faults.drop_module(2)
            bank = await link.read_bank(ReadPlan())
            assert [m.index for m in bank.modules] == [1, 3]
            assert all(m.state != ModuleState.ABSENT for m in bank.modules)
            assert "bat 2" not in sim.console.commands[-3:]
        finally:
            await link.close()


class NoPwrsysConsole(ConsoleServer):
    """Older firmware: ``pwrsys`` is an unknown command."""

    def payload(self, text: str) -> list[str] | None:
        if text.strip().lower() == "pwrsys":
            return None
        return super().payload(text)


async def test_unknown_command_is_remembered(make_simulator: Any) -> None:
    async with make_simulator(modules=2, console_port=None) as sim:
        server = NoPwrsysConsole(sim.bank)
        await server.start()
        link = ConsoleLink(server.url)
        try:
            first = await link.read_bank(ReadPlan())
            second = await link.read_bank(ReadPlan())
        finally:
            await link.close()
            await server.stop()
        assert server.commands.count("pwrsys") == 1
        assert "pwrsys" in link.diagnostics()["unsupported_commands"]
        assert first.charge_voltage_limit is None
        assert len(second.modules) == 2


async def test_commands_outside_the_allow_list_never_reach_the_wire(make_simulator: Any) -> None:
    async with make_simulator(modules=1) as sim:
        link = ConsoleLink(sim.console_url)
        try:
            await link.open()
            before = sim.console.bytes_in
            for text in ("shut", "config", "time 2024 1 1 0 0 0", "login", "pwr\r\nshut", "soccal"):
                with pytest.raises(CommandNotAllowedError):
                    await link.command(text)
            await asyncio.sleep(0.05)
            assert sim.console.bytes_in == before
            response = await link.command("pwr 1")
            assert response.ok
            assert response.command == "pwr 1"
        finally:
            await link.close()
        assert_allow_listed(sim.console)


async def test_pager_is_answered(make_simulator: Any) -> None:
    async with make_simulator(modules=1) as sim:
        link = ConsoleLink(sim.console_url)
        try:
            response = await link.command("log")
        finally:
            await link.close()
        assert response.ok
        assert response.paged
        assert sum(1 for line in response.lines if line.startswith("Index")) > 3


async def test_diagnostics_transcript_replays(make_simulator: Any) -> None:
    async with make_simulator(modules=2) as sim:
        link = ConsoleLink(sim.console_url)
        try:
            await link.read_bank(ReadPlan(cells=False))
            diagnostics = link.diagnostics()
        finally:
            await link.close()
    assert diagnostics["state"] == "prompt"
    responses = codec.split_transcript("".join(diagnostics["traffic"]))
    assert [r.command for r in responses if r.ok][:1] == ["pwr"]
    table = codec.parse_pwr(responses[0])
    assert len(table.rows) >= 2


async def test_close_during_a_command_ends_it_promptly(make_simulator: Any) -> None:
    async with make_simulator(modules=1) as sim:
        link = ConsoleLink(sim.console_url, command_timeout=3.0)
        await link.open()
        sim.faults.inject_link_fault("console", "stall", seconds=5.0)
        poll = asyncio.create_task(link.read_bank(ReadPlan()))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await link.close()
        with pytest.raises(LinkError):
            await poll
        assert time.monotonic() - started < 1.0
        assert link.stats.connection_drops == 0
        assert sim.console.connection_count <= 1


@pytest.mark.usefixtures("fast_console")
async def test_hung_session_is_replaced_without_a_wake_up(make_simulator: Any) -> None:
    """The shell hangs inside a command (a long stall): the next poll reconnects."""
    async with make_simulator(modules=2) as sim:
        link = ConsoleLink(sim.console_url, command_timeout=0.5)
        try:
            await link.read_bank(ReadPlan(cells=False, limits=False))
            sim.faults.inject_link_fault("console", "stall", seconds=30.0)
            with pytest.raises(LinkError):
                await link.read_bank(ReadPlan(cells=False, limits=False))
            sim.faults.clear_link_fault("console")
            started = time.monotonic()
            bank = await link.read_bank(ReadPlan(cells=False, limits=False))
            assert time.monotonic() - started < 2.0
            assert len(bank.modules) == 2
            assert link.stats.wake_ups == 0
            assert link.stats.reconnects >= 1
            assert link.state is ConsoleState.PROMPT
        finally:
            await link.close()


# -- What the console can tell, bad rows, SOH 0, the pager bound ---------------------------


async def test_event_words_name_protections_apart_from_warnings(make_simulator: Any) -> None:
    """Protections injected on module 2 come back as protections (from `pwr 2`), not "safe"."""
    async with make_simulator(modules=3, model="US3000C") as sim:
        sim.faults.inject_protection("cell_under_voltage", module=2)
        sim.faults.inject_protection("charge_over_current", module=2)
        sim.faults.inject_alarm("cell_high_voltage", module=3)
        link = ConsoleLink(sim.console_url)
        try:
            bank = await link.read_bank(ReadPlan())
        finally:
            await link.close()
        by_index = {m.index: m for m in bank.modules}
        assert by_index[2].protections == {
            Protection.CELL_UNDER_VOLTAGE,
            Protection.CHARGE_OVER_CURRENT,
        }
        assert by_index[1].protections == frozenset()
        # A warning stays a warning: BHV is named as one.
        assert by_index[3].protections == frozenset()
        assert Alarm.CELL_HIGH_VOLTAGE in by_index[3].alarms
        assert "pwr 2" in sim.console.commands


def _slot_row(sim: Any, slot: int) -> str:
    """A well-formed `pwr` row of module 1 printed under another slot number."""
    from dataclasses import replace

    from simulator import console_render as render

    module = sim.bank.module_snapshot(1)
    return render.pwr_row(replace(module, index=slot), sim.bank.module_time(1))


async def test_a_pwr_row_beyond_the_slots_is_skipped_and_counted(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Slot 100 cannot exist: the row is left out, counted and logged once; the poll goes on."""
    async with make_simulator(modules=2, model="US2000C") as sim:
        original = sim.console.payload

        def payload(text: str) -> list[str] | None:
            lines = original(text)
            if text == "pwr" and lines is not None:
                lines = [*lines, _slot_row(sim, 100)]
            return lines

        sim.console.payload = payload  # type: ignore[method-assign]
        link = ConsoleLink(sim.console_url)
        try:
            first = await link.read_bank(FULL)
            second = await link.read_bank(FULL)
        finally:
            await link.close()
        assert [m.index for m in first.modules] == [1, 2]
        assert [m.index for m in second.modules] == [1, 2]
        assert not any(cmd.endswith(" 100") for cmd in sim.console.commands)
        assert link.stats.skipped_records == 2  # one per poll
        assert link.stats.failed_polls == 0
        assert "100" in (link.stats.last_error or "")
        warnings = [r for r in caplog.records if "slot(s) 100" in r.getMessage()]
        assert len(warnings) == 1


async def test_more_cells_than_a_module_has_is_a_counted_protocol_error(
    make_simulator: Any,
) -> None:
    """A `bat 1` with 40 rows adds no cells (and no entities); the rest of the poll stands."""
    async with make_simulator(modules=1, model="US2000C") as sim:
        original = sim.console.payload

        def payload(text: str) -> list[str] | None:
            lines = original(text)
            if text == "bat 1" and lines:
                lines = [lines[0], *(lines[1:] * 3)[:40]]
            return lines

        sim.console.payload = payload  # type: ignore[method-assign]
        link = ConsoleLink(sim.console_url)
        try:
            # Without statistics: `soh 1` would supply the cell voltages instead.
            bank = await link.read_bank(ReadPlan(identity=True, cells=True))
        finally:
            await link.close()
        assert bank.modules[0].cell_voltages == ()
        assert bank.modules[0].serial_number == sim.bank.serial(1)
        assert link.stats.decode_errors == 1
        assert "cells" in (link.stats.last_error or "")


async def test_stat_soh_zero_is_not_reported(make_simulator: Any) -> None:
    """`SOH : 0` (US2000C B68.2 with its SOH status Normal) is no health value."""
    async with make_simulator(modules=2, model="US3000C") as sim:
        sim.bank.modules[1].soh = 0.0
        link = ConsoleLink(sim.console_url)
        try:
            bank = await link.read_bank(FULL)
        finally:
            await link.close()
        assert bank.modules[0].soh == sim.bank.modules[0].soh
        assert bank.modules[0].soh
        assert bank.modules[1].soh is None


async def test_pager_answers_are_bounded(make_peer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of pager prompts gets at most MAX_PAGES Enters and one exit key, then an error."""
    from custom_components.pylontech.core.links import console as console_link
    from simulator import console_render as render

    monkeypatch.setattr(console_link, "MAX_PAGES", 5)
    received = bytearray()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = bytearray()
        while data := await reader.read(256):
            received.extend(data)
            for byte in data:
                if byte not in (0x0D, 0x0A):
                    line.append(byte)
                    continue
                text = line.decode()
                line.clear()
                if text == "log":
                    burst = ("\r\n" + render.PAGER_PROMPT) * 60
                    writer.write(f"log\n\r@\r\r\n Index   : 1{burst}".encode())
                elif not text:
                    writer.write(b"\n\rpylon>")
                await writer.drain()

    async with make_peer(handler) as server:
        link = ConsoleLink(server.url, wake_up=False, command_timeout=1.0)
        try:
            await link.open()
            received.clear()
            with pytest.raises(ProtocolError, match="beyond 5 pages"):
                await link.command("log")
            await asyncio.sleep(0.2)  # anything the link would still send arrives
        finally:
            await link.close()
    assert received.count(b"q") == 1
    assert received.count(b"\r") <= 5 + 1  # five Enters and the command's CR
    assert link.stats.response_errors == 1
