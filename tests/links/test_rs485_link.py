"""Rs485Link end to end against the simulator (and small TCP peers) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
from typing import Any

import pytest

from custom_components.pylontech.core.bounds import InvalidGroupError
from custom_components.pylontech.core.errors import (
    ConnectionLostError,
    DialectError,
    GatewayUnreachableError,
    ImplausibleValueError,
    LinkError,
    NoResponseError,
    PylontechError,
    WrongBaudError,
)
from custom_components.pylontech.core.links import ReadPlan, Rs485Link
from custom_components.pylontech.core.model import Bank, Module, Protection
from custom_components.pylontech.core.protocol import rs485
from simulator import BatterySimulator, Rs485Server

FULL = ReadPlan(identity=True, cells=True, alarms=True, limits=True, statistics=True)


def assert_module_matches(got: Module, truth: Module) -> None:
    """Everything RS485 carries equals the simulated truth."""
    assert got.index == truth.index
    assert got.voltage == pytest.approx(truth.voltage, abs=0.001)
    assert got.current == pytest.approx(truth.current, abs=0.1)
    assert got.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.001)
    assert got.temperatures == pytest.approx(truth.temperatures, abs=0.1)
    assert got.remaining_capacity == pytest.approx(truth.remaining_capacity, abs=0.001)
    assert got.full_capacity == pytest.approx(truth.full_capacity, abs=0.001)
    assert got.cycles == truth.cycles
    assert got.soc == pytest.approx(truth.soc, abs=0.6)
    assert got.protections == truth.protections


def assert_allow_listed(server: Rs485Server) -> None:
    """Every byte the battery received was a well-formed, read-only request."""
    assert server.requests, "nothing was sent"
    for record in server.requests:
        assert record.error is None, record
        assert record.request is not None
        assert record.request.command in rs485.READ_COMMANDS
        assert record.raw == rs485.encode_request(
            record.request.command,
            record.request.adr,
            info=record.request.info[0] if record.request.info else None,
        )


async def test_full_poll_of_a_mixed_bank_matches_the_truth(make_simulator: Any) -> None:
    async with make_simulator(modules=["US5000", "US2000C", "US3000C", "US2000B"]) as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.5)
        try:
            await link.open()
            assert link.modules == (1, 2, 3, 4)
            bank = await link.read_bank(FULL)
        finally:
            await link.close()
        truth = sim.snapshot()
        assert len(bank.modules) == 4
        assert bank.module_count == 4
        for got, expected in zip(bank.modules, truth.modules, strict=True):
            assert_module_matches(got, expected)
            assert got.serial_number == expected.serial_number
        # identity: 0x51 from the master, 0x96 firmware per module, 0x4F version
        assert bank.model == "US5000"
        assert bank.manufacturer == "Pylontech"  # 0x51's "Pylon", spelled out
        assert bank.protocol_version == "2.0"
        assert bank.serial_number == truth.modules[0].serial_number
        assert bank.modules[0].mosfet_temperature is not None  # 6th sensor of the US5000
        assert bank.modules[1].mosfet_temperature is None
        for module in bank.modules:
            spec = sim.bank.spec(module.index)
            assert spec is not None
            assert module.firmware == ".".join(map(str, spec.manufacturer_version))
        # 0x92 of every module: its own limits (DCL as a positive magnitude) on the module,
        # the bank's the sum of the currents and the most conservative voltages.
        per_module = [sim.bank.module_limits(m.index) for m in bank.modules]
        assert None not in per_module
        for module, limits in zip(bank.modules, per_module, strict=True):
            assert limits is not None
            assert module.charge_current_limit == pytest.approx(limits.charge_current)
            assert module.discharge_current_limit == pytest.approx(limits.discharge_current)
            assert module.charge_voltage_limit == pytest.approx(limits.charge_voltage)
        system = sim.bank.system_limits()
        assert bank.charge_current_limit == pytest.approx(system.charge_current)
        assert bank.discharge_current_limit == pytest.approx(system.discharge_current)
        assert bank.discharge_current_limit > 0
        assert bank.charge_voltage_limit == min(lim.charge_voltage for lim in per_module if lim)
        assert bank.charge_enabled is system.charge_enabled
        # 0x51 names the master's model: modules of another rating (mixed stack) stay unknown
        assert [m.model for m in bank.modules] == ["US5000", None, None, None]
        assert {m.manufacturer for m in bank.modules} == {"Pylontech"}
        assert bank.voltage == pytest.approx(truth.voltage, abs=0.01)
        assert bank.cell_voltage_min == pytest.approx(truth.cell_voltage_min, abs=0.001)
        # statistics: the master's 0x47 settings as extra text
        extra = dict(bank.extra)
        assert float(extra["parameter_cell_high_voltage"]) == pytest.approx(3.65)
        assert link.stats.checksum_errors == link.stats.timeouts == 0
        assert_allow_listed(sim.rs485)


async def test_all_modules_requests_keep_a_poll_short(make_simulator: Any) -> None:
    async with make_simulator(modules=8, model="US3000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.5)
        try:
            await link.read_bank(FULL)
            before = len(sim.rs485.requests)
            bank = await link.read_bank(ReadPlan())
        finally:
            await link.close()
        sent = [r.request for r in sim.rs485.requests[before:]]
        # 0x42 and 0x44 for all modules at once, then 0x92 of each module (it answers for
        # the module asked); 0x61 was refused (RTN 0x04) on the first poll and is not asked.
        assert [(r.command, r.target) for r in sent if r is not None] == [
            (rs485.Command.GET_ANALOG_VALUES, 0xFF),
            (rs485.Command.GET_ALARM_INFO, 0xFF),
            *((rs485.Command.GET_MANAGEMENT_INFO, adr) for adr in range(2, 10)),
        ]
        assert bank.charge_current_limit == sim.bank.system_limits().charge_current
        assert [m.index for m in bank.modules] == list(range(1, 9))
        # identity read once is kept on later polls
        assert all(m.serial_number for m in bank.modules)


class NoAllModulesServer(Rs485Server):
    """A master whose firmware refuses the 0xFF form (RTN 0x04), as some older ones do."""

    def answer(self, raw: bytes, *, now: float = 0.0) -> bytes | None:
        response = super().answer(raw, now=now)
        record = self.requests[-1]
        if record.request is not None and record.request.all_modules:
            return rs485.encode_error_response(record.request.adr, 0x04)
        return response


async def test_sixteen_modules_beyond_the_address_nibble(make_simulator: Any) -> None:
    """Modules 15 and 16 of a group have no ADR of their own (docs/protocol-notes.md §1.5).

    The master's all-modules answer still lists them after the 14th: the link reads all
    16, matches them to the truth, and later polls pay no timeouts for their addresses.
    """
    async with make_simulator(modules=16, model="US3000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.open()
            assert link.modules == tuple(range(1, 17))
            bank = await link.read_bank(FULL)
            timeouts = link.stats.timeouts
            again = await link.read_bank(ReadPlan())
            assert link.stats.timeouts == timeouts
        finally:
            await link.close()
        truth = sim.snapshot()
        assert bank.module_count == 16
        for got, expected in zip(again.modules, truth.modules, strict=True):
            assert_module_matches(got, expected)
        # 0x93 needs the module's own ADR: the two beyond the nibble stay without a barcode.
        assert [m.serial_number is not None for m in bank.modules] == [True] * 14 + [False] * 2


async def test_per_address_fallback_and_discovery_stops_after_two_silent_addresses() -> None:
    sim = BatterySimulator(modules=5, model="US2000C", tick=None, seed=3, rs485_port=None)
    server = NoAllModulesServer(sim.bank)
    await sim.start()
    await server.start()
    link = Rs485Link(server.url, request_timeout=0.3, max_modules=16)
    try:
        assert await link.discover() == (1, 2, 3, 4, 5)
        bank = await link.read_bank(ReadPlan(identity=True))
        assert [m.index for m in bank.modules] == [1, 2, 3, 4, 5]
        truth = sim.snapshot()
        for got, expected in zip(bank.modules, truth.modules, strict=True):
            assert_module_matches(got, expected)
        # Discovery asked ADR 2..8 (modules 6 and 7 are the two silent addresses that end
        # the chain) and nothing beyond.
        probed = {
            r.request.adr
            for r in server.requests
            if r.request and r.request.command is rs485.Command.GET_ANALOG_VALUES
        }
        assert probed == {2, 3, 4, 5, 6, 7, 8}
        assert link.diagnostics()["all_modules_requests"] is False
    finally:
        await link.close()
        await server.stop()
        await sim.stop()


async def test_group_addressing(make_simulator: Any) -> None:
    async with make_simulator(modules=3, model="US2000C", group=2) as sim:
        link = Rs485Link(sim.rs485_url, group=2, request_timeout=0.3)
        wrong = Rs485Link(sim.rs485_url, group=0, request_timeout=0.2, max_modules=2)
        try:
            bank = await link.read_bank(ReadPlan(identity=True))
            assert [(m.group, m.index) for m in bank.modules] == [(2, 1), (2, 2), (2, 3)]
            adrs = {r.request.adr for r in sim.rs485.requests if r.request}
            assert adrs <= {0x22, 0x23, 0x24, 0x25}
            with pytest.raises(NoResponseError, match="ADR 0x02"):
                await wrong.open()
        finally:
            await link.close()
            await wrong.close()


async def test_module_dropout_and_return(make_simulator: Any) -> None:
    async with make_simulator(modules=4, model="US3000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.read_bank(FULL)
            sim.faults.drop_module(3)
            bank = await link.read_bank(ReadPlan())
            assert [m.index for m in bank.modules] == [1, 2, 4]
            assert bank.module_count == 3
            truth = {m.index: m for m in sim.snapshot().modules}
            for module in bank.modules:
                assert_module_matches(module, truth[module.index])
            sim.faults.restore_module(3)
            bank = await link.read_bank(ReadPlan())
            assert [m.index for m in bank.modules] == [1, 2, 3, 4]
            returned = bank.module(3)
            assert returned is not None
            assert returned.serial_number == sim.bank.serial(3)
        finally:
            await link.close()


async def test_a_module_joining_is_found(make_simulator: Any) -> None:
    async with make_simulator(modules=4, model="US2000C") as sim:
        sim.faults.drop_module(4)
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            bank = await link.read_bank(ReadPlan(identity=True))
            assert [m.index for m in bank.modules] == [1, 2, 3]
            sim.faults.restore_module(4)
            bank = await link.read_bank(ReadPlan())
            assert [m.index for m in bank.modules] == [1, 2, 3, 4]
            assert link.modules == (1, 2, 3, 4)
            # its identity is read on the poll that found it
            joined = bank.module(4)
            assert joined is not None
            assert joined.serial_number == sim.bank.serial(4)
        finally:
            await link.close()


async def test_master_silent_raises_no_response(make_simulator: Any) -> None:
    async with make_simulator(modules=2) as sim:
        sim.faults.drop_module(1)
        sim.faults.drop_module(2)
        link = Rs485Link(sim.rs485_url, request_timeout=0.2, max_modules=3)
        try:
            with pytest.raises(NoResponseError, match="no answer from the master"):
                await link.read_bank(ReadPlan())
        finally:
            await link.close()


@pytest.mark.parametrize("fault", ["checksum", "garbage", "truncate"])
async def test_corrupted_answers_are_retried_or_skipped(fault: str, make_simulator: Any) -> None:
    async with make_simulator(modules=3, model="US2000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.read_bank(FULL)
            sim.faults.inject_link_fault("rs485", fault, count=1)
            bank = await link.read_bank(ReadPlan())
            truth = sim.snapshot()
            assert [m.index for m in bank.modules] == [1, 2, 3]
            for got, expected in zip(bank.modules, truth.modules, strict=True):
                assert_module_matches(got, expected)
            stats = link.stats
            if fault == "checksum":
                assert stats.checksum_errors == 1
            elif fault == "garbage":
                assert stats.dropped_bytes >= 8
            else:
                assert stats.timeouts == 1
            # the next poll is clean
            before = (stats.checksum_errors, stats.timeouts)
            await link.read_bank(ReadPlan())
            assert (stats.checksum_errors, stats.timeouts) == before
        finally:
            await link.close()


async def test_stall_then_recovery(make_simulator: Any) -> None:
    async with make_simulator(modules=2, model="US2000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.2)
        try:
            await link.read_bank(FULL)
            sim.faults.inject_link_fault("rs485", "stall", count=1, seconds=0.5)
            with pytest.raises(LinkError):
                # Every request of this poll falls in the stall window.
                await link.read_bank(ReadPlan())
            assert link.stats.timeouts >= 1
            await asyncio.sleep(0.5)
            bank = await link.read_bank(ReadPlan())
            assert len(bank.modules) == 2
        finally:
            await link.close()


async def test_connection_drop_reconnects_within_the_poll(make_simulator: Any) -> None:
    async with make_simulator(modules=3) as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.read_bank(FULL)
            sim.faults.inject_link_fault("rs485", "drop", count=1)
            bank = await link.read_bank(ReadPlan())
            assert len(bank.modules) == 3
            assert link.stats.connection_drops == 1
            assert link.stats.reconnects == 1
            assert sim.rs485.connections_total == 2
            assert link.stats.connected
        finally:
            await link.close()
        assert not link.stats.connected


async def test_gateway_down_backs_off_then_recovers(make_simulator: Any, unused_port: Any) -> None:
    port = unused_port
    link = Rs485Link(f"socket://127.0.0.1:{port}", request_timeout=0.3)
    try:
        with pytest.raises(GatewayUnreachableError, match="connection refused"):
            await link.read_bank(ReadPlan())
        # Within the backoff window no connection is attempted at all.
        with pytest.raises(LinkError, match="reconnecting in"):
            await link.read_bank(ReadPlan())
        assert link.stats.failed_polls == 2
        async with make_simulator(modules=2, rs485_port=port) as sim:
            link._backoff.next_attempt = 0.0  # skip the remaining wait
            bank = await link.read_bank(ReadPlan())
            assert len(bank.modules) == 2
            assert sim.rs485.connections_total == 1
            # a gateway restart is a dropped connection: the next poll reconnects
            sim.rs485.disconnect_all()
            await asyncio.sleep(0.05)
            bank = await link.read_bank(ReadPlan())
            assert len(bank.modules) == 2
            assert link.stats.reconnects == 1  # the first connection is not a reconnect
    finally:
        await link.close()


async def test_wrong_baud_is_reported_and_recovers(make_simulator: Any) -> None:
    async with make_simulator(modules=2) as sim:
        sim.faults.inject_link_fault("rs485", "wrong_baud")
        fresh = Rs485Link(sim.rs485_url, request_timeout=0.2, max_modules=2)
        try:
            with pytest.raises(WrongBaudError, match="baud"):
                await fresh.open()
        finally:
            await fresh.close()
        sim.faults.clear_link_fault("rs485")
        link = Rs485Link(sim.rs485_url, request_timeout=0.2)
        try:
            await link.read_bank(ReadPlan())
            sim.faults.inject_link_fault("rs485", "wrong_baud")
            with pytest.raises(WrongBaudError):
                await link.read_bank(ReadPlan())
            sim.faults.clear_link_fault("rs485")
            bank = await link.read_bank(ReadPlan())
            assert len(bank.modules) == 2
        finally:
            await link.close()


async def test_protection_reaches_the_module(make_simulator: Any) -> None:
    async with make_simulator(modules=3) as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            sim.faults.inject_protection("charge_over_current", module=2)
            bank = await link.read_bank(FULL)
        finally:
            await link.close()
        assert Protection.CHARGE_OVER_CURRENT in bank.modules[1].protections
        assert not bank.modules[0].protections


async def test_min_gap_between_requests(make_simulator: Any) -> None:
    async with make_simulator(modules=2) as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3, min_gap=0.05)
        try:
            await link.read_bank(FULL)
        finally:
            await link.close()
        times = [r.time for r in sim.rs485.requests]
        assert len(times) >= 6
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.045


# -- small purpose-built peers ---------------------------------------------------------------


async def test_echo_and_foreign_frames_are_ignored(make_simulator: Any, make_peer: Any) -> None:
    """A two-wire adapter echoes our request; a foreign answer to another ADR precedes ours."""
    async with make_simulator(modules=2, rs485_port=None) as sim:
        server = Rs485Server(sim.bank)

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            splitter = rs485.FrameSplitter()
            while data := await reader.read(4096):
                for raw in splitter.feed(data):
                    answer = server.answer(raw)
                    writer.write(raw)  # the echo
                    writer.write(rs485.encode_serial_number_response(0x09, "FOREIGN000000000"))
                    if answer is not None:
                        writer.write(answer)

        async with make_peer(handler) as gateway:
            link = Rs485Link(gateway.url, request_timeout=0.3)
            try:
                bank = await link.read_bank(ReadPlan(identity=True))
            finally:
                await link.close()
        assert [m.index for m in bank.modules] == [1, 2]
        assert link.stats.echo_frames >= 4
        assert link.stats.foreign_frames >= 4
        assert bank.modules[0].serial_number == sim.snapshot().modules[0].serial_number


async def test_polite_mode_waits_for_a_quiet_bus(make_simulator: Any, make_peer: Any) -> None:
    """Another master keeps talking for a while: polite mode holds back until it stops."""
    async with make_simulator(modules=1, rs485_port=None) as sim:
        server = Rs485Server(sim.bank)
        chatter_until = 0.0
        request_times: list[float] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal chatter_until

            async def chatter() -> None:
                foreign = rs485.encode_request(rs485.Command.GET_ANALOG_VALUES, 0x05)
                while time.monotonic() < chatter_until:
                    writer.write(foreign)
                    await asyncio.sleep(0.05)

            chatter_until = time.monotonic() + 0.6
            task = asyncio.create_task(chatter())
            try:
                splitter = rs485.FrameSplitter()
                while data := await reader.read(4096):
                    for raw in splitter.feed(data):
                        request_times.append(time.monotonic())
                        answer = server.answer(raw)
                        if answer is not None:
                            writer.write(answer)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        async with make_peer(handler) as gateway:
            link = Rs485Link(gateway.url, request_timeout=0.5, polite=True)
            try:
                await link._connect()
                started = time.monotonic()
                bank = await link.read_bank(ReadPlan(alarms=False, limits=False))
            finally:
                await link.close()
        assert len(bank.modules) == 1
        # The first request waited until the chatter ended (plus the quiet period).
        assert request_times[0] >= chatter_until
        assert request_times[0] - started >= 0.5
        # Once the bus is quiet the remaining requests follow at once.
        assert request_times[-1] - request_times[0] < 0.5
        assert link.stats.foreign_bytes > 0
        assert link.stats.foreign_frames >= 5


async def test_endless_noise_is_bounded_and_reported(make_peer: Any) -> None:
    """A port that streams noise without frame ends: memory stays bounded, error is clear."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        noise = bytes(range(0x20, 0x7E)) * 200  # printable, no '~', no CR
        while not writer.is_closing():
            writer.write(noise)
            await writer.drain()
            await asyncio.sleep(0.01)

    async with make_peer(handler) as noisy:
        link = Rs485Link(noisy.url, request_timeout=0.2, max_modules=2)
        try:
            with pytest.raises(WrongBaudError):
                await link.open()
            assert link._splitter.pending <= rs485.MAX_FRAME_LENGTH
            assert link.stats.dropped_bytes > 10_000
        finally:
            await link.close()


async def test_reader_error_surfaces_as_connection_lost(make_peer: Any) -> None:
    """The battery side closes right after the request: a LinkError, never a hang."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)

    async with make_peer(handler) as closing:
        link = Rs485Link(closing.url, request_timeout=1.0)
        try:
            started = time.monotonic()
            with pytest.raises(LinkError) as info:
                await link.read_bank(ReadPlan())
            assert time.monotonic() - started < 0.9
            assert isinstance(info.value, (ConnectionLostError, LinkError))
        finally:
            await link.close()


async def test_diagnostics_traffic_replays_through_the_decoder(make_simulator: Any) -> None:
    async with make_simulator(modules=2) as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.read_bank(FULL)
            diagnostics = link.diagnostics()
        finally:
            await link.close()
    assert diagnostics["link"] == "rs485"
    assert diagnostics["modules"] == [1, 2]
    assert diagnostics["stats"]["frames"] > 0
    lines = diagnostics["traffic"]
    assert 0 < len(lines) <= 120
    entries = list(rs485.iter_capture("\n".join(lines)))
    assert entries
    # The only error is the US3000C's RTN 0x04 to the one 0x61 probe (no V3.5 firmware).
    errors = [e for e in entries if getattr(e, "error", None)]
    assert [e.error for e in errors] == ["battery returned RTN 0x04 (CID2 invalid)"]


async def test_close_is_idempotent_and_leaves_nothing_running(make_simulator: Any) -> None:
    async with make_simulator(modules=1) as sim:
        link = Rs485Link(sim.rs485_url)
        await link.read_bank(ReadPlan())
        tasks = {t.get_name() for t in asyncio.all_tasks()}
        assert any(name.startswith("pylontech rs485 reader") for name in tasks)
        await link.close()
        await link.close()
        tasks = {t.get_name() for t in asyncio.all_tasks()}
        assert not any(name.startswith("pylontech rs485 reader") for name in tasks)
        with pytest.raises(LinkError, match="closed"):
            await link.read_bank(ReadPlan())
        await asyncio.sleep(0.05)
        assert sim.rs485.connection_count == 0


def test_read_plan_defaults() -> None:
    plan = ReadPlan()
    assert (plan.identity, plan.cells, plan.alarms, plan.limits, plan.statistics) == (
        False,
        True,
        True,
        True,
        False,
    )
    assert isinstance(Bank(), Bank)


async def test_close_during_a_poll_ends_it_promptly(make_simulator: Any) -> None:
    async with make_simulator(modules=2) as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=3.0)
        await link.read_bank(ReadPlan())
        sim.faults.inject_link_fault("rs485", "stall", seconds=5.0)
        poll = asyncio.create_task(link.read_bank(ReadPlan()))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await link.close()
        with pytest.raises(LinkError):
            await poll
        assert time.monotonic() - started < 1.0
        assert link.stats.connection_drops == 0
        assert not link.stats.connected


async def test_repeated_drop_episodes_do_not_accumulate_backoff(make_simulator: Any) -> None:
    """Each episode of a dropping gateway costs one short backoff, not an ever longer one."""
    async with make_simulator(modules=2) as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.read_bank(ReadPlan())
            for _ in range(4):
                sim.faults.inject_link_fault("rs485", "drop")
                with pytest.raises(LinkError):
                    await link.read_bank(ReadPlan())
                sim.faults.clear_link_fault("rs485")
                assert link._backoff.remaining() <= 1.2 * link._backoff.initial
                link._backoff.next_attempt = 0.0  # the coordinator's next poll comes later
                bank = await link.read_bank(ReadPlan())
                assert len(bank.modules) == 2
        finally:
            await link.close()


async def test_look_alike_bms_is_named_as_such(make_peer: Any) -> None:
    """A PACE/Seplos-style BMS answers with VER 0x25: a DialectError, not "no answer"."""

    async def pace(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = rs485.FrameSplitter()
        while data := await reader.read(4096):
            for raw in splitter.feed(data):
                adr = rs485.parse_frame(raw).adr
                writer.write(rs485.encode_frame(0x25, adr, 0x46, 0x00, b"\x00\x01"))

    async with make_peer(pace) as bms:
        link = Rs485Link(bms.url, request_timeout=0.3)
        try:
            with pytest.raises(DialectError, match="not a Pylontech"):
                await link.open()
        finally:
            await link.close()


# -- Groups, bounds, per-module limits, 0x61 ------------------------------------------


@pytest.mark.parametrize("group", [8, 9, 15, -1])
def test_a_group_no_dip_switch_can_set_is_a_clear_library_error(group: int) -> None:
    """Defect 6: not a crash deep in the codec, a PylontechError naming the allowed range."""
    with pytest.raises(InvalidGroupError, match="0 to 7") as info:
        Rs485Link("socket://127.0.0.1:1", group=group)
    assert isinstance(info.value, PylontechError)


async def test_the_highest_group_reads_its_bank(make_simulator: Any) -> None:
    async with make_simulator(modules=3, model="US3000C", group=7) as sim:
        link = Rs485Link(sim.rs485_url, group=7, request_timeout=0.5)
        try:
            bank = await link.read_bank(FULL)
        finally:
            await link.close()
        assert [m.key for m in bank.modules] == [(7, 1), (7, 2), (7, 3)]
        assert bank.charge_current_limit == sim.bank.system_limits().charge_current
        assert {r.request.adr for r in sim.rs485.requests if r.request} <= {0x72, 0x73, 0x74}


async def test_a_bank_answering_only_impossible_counts_fails_the_poll_clearly(
    make_simulator: Any,
) -> None:
    """Defect 8: every module claims 200 cells: the poll fails with that reason, counted."""
    async with make_simulator(modules=2, model="US3000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.read_bank(FULL)
            info = bytes((0x11, 2, 200)) + bytes(400) + bytes((5,)) + bytes(10) + bytes(11)
            for target in (0x02, 0x03, 0xFF):
                sim.rs485.raw_answers[(0x42, target)] = bytes((0x11, target)) + info[2:]
            with pytest.raises(ImplausibleValueError, match="200 cells"):
                await link.read_bank(ReadPlan())
        finally:
            await link.close()
        assert link.stats.failed_polls == 1
        assert link.stats.skipped_records >= 2
        assert link.diagnostics()["rejected_answers"]["0x42"] >= 2


async def test_0x61_is_used_only_where_it_agrees_with_the_modules(make_simulator: Any) -> None:
    """Defect 16: a master answering 0x61 feeds the bank; other units are rejected."""
    async with make_simulator(modules=3, model="US5000") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.5)
        try:
            bank = await link.read_bank(FULL)
            truth = sim.snapshot()
            assert bank.soh == truth.soh
            assert bank.voltage == pytest.approx(truth.voltage, abs=0.01)
            assert dict(bank.extra)["system_cycles_max"] == str(
                max(m.cycles or 0 for m in truth.modules)
            )
            # A firmware sending the bank voltage in 0.1 V units (5.0 V): not shown.
            good = rs485.parse_frame(sim.rs485.answer(rs485.encode_request(0x61, 2))).info
            sim.rs485.raw_answers[(0x61, 0x02)] = struct.pack(">H", 5000) + good[2:]
            bank = await link.read_bank(ReadPlan())
        finally:
            await link.close()
        assert bank.voltage == pytest.approx(truth.voltage, abs=0.01)
        assert link.diagnostics()["rejected_answers"] == {"0x61": 1}
        assert "0x61 voltage 5.0 V" in (link.stats.last_error or "")
