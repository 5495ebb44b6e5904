"""CAN server: a real python-can ``slcan`` bus over ``socket://`` receives the broadcast, which
decodes to the simulated truth; keep-alives are recorded; faults reach the frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
import time

import can as pycan
import pytest

from custom_components.pylontech.core.model import Alarm, Bank, Protection
from custom_components.pylontech.core.protocol import can
from simulator import BatterySimulator
from simulator.pytest_plugin import SimulatorFactory


@asynccontextmanager
async def slcan_bus(sim: BatterySimulator, **kwargs: object) -> AsyncIterator[pycan.BusABC]:
    """python-can's slcan interface on the simulator, created and shut down off the loop."""
    loop = asyncio.get_running_loop()
    bus = await loop.run_in_executor(
        None,
        lambda: pycan.Bus(
            interface="slcan",
            channel=sim.can_channel,
            bitrate=500000,
            sleep_after_open=0,
            **kwargs,
        ),
    )
    try:
        yield bus
    finally:
        await loop.run_in_executor(None, bus.shutdown)


async def receive_cycle(
    bus: pycan.BusABC, cycles: int = 2, timeout: float = 5.0
) -> tuple[Bank, set[int]]:
    """Feed received frames to the codec's assembler until ``cycles`` cycles completed."""
    loop = asyncio.get_running_loop()
    assembler = can.CanBankAssembler()
    ids: set[int] = set()
    complete = 0
    deadline = time.monotonic() + timeout
    while complete < cycles:
        assert time.monotonic() < deadline, "no complete broadcast cycle"
        message = await loop.run_in_executor(None, bus.recv, 0.5)
        if message is None:
            continue
        assembler.update(message.arbitration_id, bytes(message.data), message.timestamp)
        ids.add(message.arbitration_id)
        if assembler.cycle_complete:
            complete += 1
    return assembler.bank(), ids


def assert_bank_matches(read: Bank, truth: Bank) -> None:
    """Every value the CAN frames carry equals the truth."""
    assert read.voltage == pytest.approx(truth.voltage)
    assert read.current == pytest.approx(truth.current)
    assert read.temperature == pytest.approx(truth.temperature)
    assert read.soc == truth.soc
    assert read.soh == truth.soh
    assert read.charge_voltage_limit == pytest.approx(truth.charge_voltage_limit)
    assert read.discharge_voltage_limit == pytest.approx(truth.discharge_voltage_limit)
    assert read.charge_current_limit == pytest.approx(truth.charge_current_limit)
    assert read.discharge_current_limit == pytest.approx(truth.discharge_current_limit)


async def test_python_can_slcan_receives_the_truth(battery_simulator: BatterySimulator) -> None:
    """v1.2 frame set: 0x351 0x355 0x356 0x359 0x35C 0x35E decode to the simulated bank."""
    sim = battery_simulator
    async with slcan_bus(sim) as bus:
        read, ids = await receive_cycle(bus)
    truth = sim.snapshot()
    assert ids == {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E}
    assert_bank_matches(read, truth)
    assert read.module_count == 4
    assert read.charge_enabled is True
    assert read.discharge_enabled is True
    assert read.manufacturer == "PYLON"
    assert sim.can is not None
    setup = sim.can.commands
    assert "S6" in setup
    assert "O" in setup or "L" in setup
    assert setup[-1] == "C"


async def test_v13_frame_set(battery_simulator_factory: SimulatorFactory) -> None:
    """The newer firmware option sends 0x35A/0x35F instead of 0x359/0x35C."""
    sim = await battery_simulator_factory(modules=2, model="US5000", can_firmware="v1.3")
    async with slcan_bus(sim, listen_only=True) as bus:
        read, ids = await receive_cycle(bus)
    assert ids == {0x351, 0x355, 0x356, 0x35A, 0x35E, 0x35F}
    assert_bank_matches(read, sim.snapshot())


async def test_keepalive_recorded_and_state_unchanged(battery_simulator: BatterySimulator) -> None:
    """Frames sent to the battery (0x305 keep-alive, anything else) are recorded, not obeyed."""
    sim = battery_simulator
    before = sim.snapshot()
    async with slcan_bus(sim) as bus:
        loop = asyncio.get_running_loop()
        keepalive = pycan.Message(
            arbitration_id=can.KEEPALIVE_ID, data=can.encode_keepalive(), is_extended_id=False
        )
        other = pycan.Message(arbitration_id=0x351, data=bytes(8), is_extended_id=False)
        for message in (keepalive, keepalive, other):
            await loop.run_in_executor(None, bus.send, message)
        for _ in range(100):  # up to 2 s for the three lines to be parsed
            if sim.can is not None and len(sim.can.received) >= 3:
                break
            await asyncio.sleep(0.02)
    assert sim.can is not None
    assert sim.can.keepalives == 2
    assert [(f.can_id, f.data) for f in sim.can.received] == [
        (0x305, bytes(8)), (0x305, bytes(8)), (0x351, bytes(8)),
    ]  # fmt: skip
    assert sim.snapshot() == before


async def test_faults_reach_the_can_frames(battery_simulator: BatterySimulator) -> None:
    """A protection sets 0x359 bits and stops charging; a dropped module lowers the count."""
    sim = battery_simulator
    sim.faults.inject_protection(Protection.CHARGE_OVER_CURRENT, module=2)
    sim.faults.drop_module(4)
    sim.faults.full_charge_request()
    sim.faults.inject_alarm(Alarm.DISCHARGE_HIGH_CURRENT, module=1)
    async with slcan_bus(sim) as bus:
        read, _ids = await receive_cycle(bus)
    assert Protection.CHARGE_OVER_CURRENT in read.protections
    assert read.module_count == 3
    assert read.charge_enabled is False
    assert read.charge_current_limit == 0.0
    assert read.full_charge_request is True
    assert Alarm.DISCHARGE_HIGH_CURRENT in read.alarms


async def test_stall_and_drop(battery_simulator: BatterySimulator) -> None:
    """A stall pauses the broadcast; a drop closes the TCP connection."""
    sim = battery_simulator
    assert sim.can is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ports.can)
    try:
        writer.write(b"C\rS6\r\rO\r")
        assert await asyncio.wait_for(reader.readexactly(4), 1.0) == b"\r\r\r\r"
        line = await asyncio.wait_for(reader.readuntil(b"\r"), 1.0)
        assert line.startswith(b"t35")
        assert line.endswith(b"\r")
        sim.faults.inject_link_fault("can", "stall", count=1, seconds=0.7)
        await asyncio.sleep(0.3)
        reader._buffer.clear()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(100), 0.3)
        assert await asyncio.wait_for(reader.readuntil(b"\r"), 1.5)
        sim.faults.inject_link_fault("can", "drop", count=1)
        async with asyncio.timeout(2.0):
            while await reader.read(4096):
                pass
    finally:
        writer.close()
        await writer.wait_closed()


async def receive_ids(
    bus: pycan.BusABC, cycles: int = 2, timeout: float = 5.0
) -> list[dict[int, bytes]]:
    """Frames of ``cycles`` whole broadcast cycles (a cycle starts at 0x351), id -> data."""
    loop = asyncio.get_running_loop()
    seen: list[dict[int, bytes]] = []
    deadline = time.monotonic() + timeout
    current: dict[int, bytes] | None = None
    while len(seen) < cycles:
        assert time.monotonic() < deadline, "no complete broadcast cycle"
        message = await loop.run_in_executor(None, bus.recv, 0.5)
        if message is None:
            continue
        if message.arbitration_id == can.LIMITS_ID:
            if current is not None:
                seen.append(current)
            current = {}
        if current is not None:
            current[message.arbitration_id] = bytes(message.data)
    return seen


async def test_raw_frames_replace_add_and_omit(battery_simulator: BatterySimulator) -> None:
    """``send_raw`` puts a frame on the bus as given: in place of the simulator's own frame of
    that id, added when the id is not in the set, left out with ``None``; ``clear_raw`` ends it."""
    sim = battery_simulator
    assert sim.can is not None
    healthy = bytes.fromhex("AAAAAA02AAAAAA02")
    seven = bytes.fromhex("AAAAAA02AAAAAA")
    sim.can.send_raw(0x359, healthy)
    sim.can.send_raw(0x35A, seven)
    sim.can.send_raw(0x356, None)
    async with slcan_bus(sim, listen_only=True) as bus:
        cycles = await receive_ids(bus)
        for cycle in cycles:
            assert cycle[0x359] == healthy
            assert cycle[0x35A] == seven
            assert 0x356 not in cycle
            assert cycle[0x351] == dict(sim.can.frames())[0x351]
        sim.can.clear_raw()
        await asyncio.sleep(2 * sim.can.period)
        after = (await receive_ids(bus))[-1]
    truth = dict(sim.can.frames())
    assert after == truth


async def test_raw_frame_count_spends_only_heard_cycles(
    battery_simulator: BatterySimulator,
) -> None:
    """``count=1`` survives cycles nobody listens to and is then sent in exactly one cycle."""
    sim = battery_simulator
    assert sim.can is not None
    sim.can.send_raw(0x355, bytes.fromhex("FFFF6400"), count=1)
    await asyncio.sleep(3 * sim.can.period)  # cycles with no open channel
    assert 0x355 in sim.faults.raw_can
    async with slcan_bus(sim, listen_only=True) as bus:
        cycles = await receive_ids(bus, cycles=3)
    raw = [c[0x355] for c in cycles if c[0x355] == bytes.fromhex("FFFF6400")]
    assert len(raw) == 1
    assert cycles[-1][0x355] == dict(sim.can.frames())[0x355]
    assert sim.faults.raw_can == {}


async def test_raw_frames_from_the_control_port(battery_simulator: BatterySimulator) -> None:
    """``can raw ID HEX`` / ``omit`` / ``off`` on the control port; bad lines get ``error:``."""
    sim = battery_simulator
    assert sim.can is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ports.control)

    async def say(line: str) -> str:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 2.0)).decode().strip()

    try:
        assert await say("can raw 359 AAAAAA02AAAAAA02") == "ok can raw 359 AAAAAA02AAAAAA02"
        assert await say("can raw 0x35e omit count=2") == "ok can raw 35E omit count=2"
        async with slcan_bus(sim, listen_only=True) as bus:
            cycle = (await receive_ids(bus, cycles=1))[0]
        assert cycle[0x359] == bytes.fromhex("AAAAAA02AAAAAA02")
        assert 0x35E not in cycle
        for bad in ("can raw 800 00", "can raw 359 00112233445566778899", "can raw 359 zz", "can"):
            assert (await say(bad)).startswith("error:"), bad
        assert await say("can raw 359 off") == "ok can raw 359 off"
        assert 0x359 not in sim.faults.raw_can
        assert (await say("can raw 351 -")).startswith("ok")
        assert sim.faults.raw_can[0x351].data == b""
        assert await say("clear all") == "ok cleared all"
        assert sim.faults.raw_can == {}
    finally:
        writer.close()
        await writer.wait_closed()
