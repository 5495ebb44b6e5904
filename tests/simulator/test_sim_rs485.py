"""RS485 server over real 127.0.0.1 sockets: frames decode to the truth, layouts match the
reference frames, routing, write refusal, request recording and injected faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from custom_components.pylontech.core.errors import ChecksumError, ResponseError
from custom_components.pylontech.core.model import Module, Protection
from custom_components.pylontech.core.protocol import rs485
from simulator import BatterySimulator
from simulator.pytest_plugin import SimulatorFactory

Command = rs485.Command


class Port:
    """A raw TCP client speaking to the simulator's RS485 server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, sim: BatterySimulator) -> Port:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ports.rs485)
        return cls(reader, writer)

    async def ask(self, frame: bytes, timeout: float = 1.0) -> bytes | None:
        """Send one frame; the answer up to CR, or None if nothing came in time."""
        self.writer.write(frame)
        await self.writer.drain()
        try:
            return await asyncio.wait_for(self.reader.readuntil(b"\r"), timeout)
        except TimeoutError:
            return None

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def raw_request(adr: int, cid2: int, info: bytes = b"", *, ver: int = 0x20) -> bytes:
    """Any request frame, including ones the codec refuses to build (writes)."""
    info_hex = info.hex().upper().encode()
    body = f"{ver:02X}{adr:02X}46{cid2:02X}{rs485.length_field(len(info_hex)):04X}".encode()
    body += info_hex
    return b"~" + body + f"{rs485.checksum(body):04X}".encode() + b"\r"


def length_of(frame: bytes) -> str:
    """The LENGTH field of a frame as text (e.g. ``61DC``)."""
    return frame[9:13].decode()


def assert_module_matches(decoded: Module, truth: Module) -> None:
    """Every value 0x42 carries equals the simulated truth."""
    assert decoded.voltage == pytest.approx(truth.voltage, abs=1e-9)
    assert decoded.current == truth.current
    assert decoded.cell_voltages == pytest.approx(truth.cell_voltages, abs=1e-9)
    assert decoded.temperatures == pytest.approx(truth.temperatures, abs=1e-9)
    assert decoded.temperature == truth.temperature
    assert decoded.remaining_capacity == pytest.approx(truth.remaining_capacity, abs=1e-9)
    assert decoded.full_capacity == truth.full_capacity
    assert decoded.cycles == truth.cycles
    assert decoded.soc == pytest.approx(truth.soc, abs=0.05)


async def test_all_modules_analog_decodes_to_truth(battery_simulator: BatterySimulator) -> None:
    """0x42 with INFO 0xFF: 4 x US3000C records, LENGTH 61DC as in RS-42-D, values = truth."""
    port = await Port.open(battery_simulator)
    try:
        raw = await port.ask(rs485.encode_request(Command.GET_ANALOG_VALUES, 2, info=0xFF))
    finally:
        await port.close()
    assert raw is not None
    assert length_of(raw) == "61DC"
    response = rs485.decode_response(Command.GET_ANALOG_VALUES, raw)
    assert response.command == 4
    truth = battery_simulator.snapshot()
    for number, record in enumerate(response.records, start=1):
        assert record.user_defined == 4
        decoded = rs485.module_from_analog(record, number)
        module = truth.module(number)
        assert module is not None
        assert_module_matches(decoded, module)


@pytest.mark.parametrize(
    ("model", "command", "length"),
    [
        ("US2000C", Command.GET_ANALOG_VALUES, "C06E"),  # RS-42-B/G: user-defined 2
        ("US2000B", Command.GET_ANALOG_VALUES, "C06E"),
        ("US3000C", Command.GET_ANALOG_VALUES, "F07A"),  # RS-42-A: user-defined 4
        ("US2000C", Command.GET_ALARM_INFO, "A042"),  # RS-44-B: 33 bytes
        ("US2000B", Command.GET_ALARM_INFO, "C040"),  # RS-44-A: 32 bytes
        ("US3000C", Command.GET_MANAGEMENT_INFO, "B014"),  # RS-92-*
        ("US3000C", Command.GET_SERIAL_NUMBER, "C022"),  # RS-93-*
        ("US3000C", Command.GET_SOFTWARE_VERSION, "400C"),  # RS-96-A
        ("US2000C", Command.GET_MANUFACTURER_INFO, "C040"),  # RS-51-*
        ("US3000C", Command.GET_SYSTEM_PARAMETERS, "B032"),  # RS-47-*
        ("US5000", Command.GET_PROTOCOL_VERSION, "0000"),  # RS-4F-*
    ],
)
async def test_layouts_match_reference_lengths(
    battery_simulator_factory: SimulatorFactory, model: str, command: Command, length: str
) -> None:
    """Each response has the reference frame's LENGTH for the same module type."""
    sim = await battery_simulator_factory(modules=2, model=model, console_port=None, can_port=None)
    port = await Port.open(sim)
    try:
        raw = await port.ask(rs485.encode_request(command, 2))
    finally:
        await port.close()
    assert raw is not None
    assert length_of(raw) == length
    rs485.decode_response(command, raw)  # checksum and layout verify


async def test_identity_limits_and_version(battery_simulator: BatterySimulator) -> None:
    """0x51/0x93/0x96/0x92/0x4F carry the model, barcodes, firmware and per-module limits."""
    sim = battery_simulator
    port = await Port.open(sim)
    try:
        maker = rs485.decode_response(
            Command.GET_MANUFACTURER_INFO,
            await port.ask(rs485.encode_request(Command.GET_MANUFACTURER_INFO, 2)),  # type: ignore[arg-type]
        )
        serial = rs485.decode_response(
            Command.GET_SERIAL_NUMBER,
            await port.ask(rs485.encode_request(Command.GET_SERIAL_NUMBER, rs485.address(4))),  # type: ignore[arg-type]
        )
        software = rs485.decode_response(
            Command.GET_SOFTWARE_VERSION,
            await port.ask(rs485.encode_request(Command.GET_SOFTWARE_VERSION, 2)),  # type: ignore[arg-type]
        )
        limits = rs485.decode_response(
            Command.GET_MANAGEMENT_INFO,
            await port.ask(rs485.encode_request(Command.GET_MANAGEMENT_INFO, 2)),  # type: ignore[arg-type]
        )
        version = await port.ask(rs485.encode_frame(0x00, 2, 0x46, 0x4F, b""))  # VER 00 probe
    finally:
        await port.close()
    truth = sim.snapshot()
    identity = rs485.identity_fields(manufacturer_info=maker, serial=serial, software=software)
    assert identity["model"] == truth.model == "US3000C"
    assert identity["manufacturer"] == "Pylontech"  # the wire's "Pylon", spelled out
    assert identity["firmware"] == truth.firmware
    assert identity["serial_number"] == truth.modules[3].serial_number
    expected = sim.bank.module_limits(1)
    assert expected is not None
    fields = rs485.management_fields(limits)
    assert fields["charge_voltage_limit"] == expected.charge_voltage
    assert fields["charge_current_limit"] == expected.charge_current == 37.0
    assert fields["discharge_current_limit"] == 37.0
    assert fields["charge_enabled"] is True
    assert version == b"~200246000000FDB2\r"  # RS-4F-A/B verbatim


async def test_routing_group_absent_and_dropped(
    battery_simulator_factory: SimulatorFactory,
) -> None:
    """Group 2 answers at ADR 0x22..; other groups, absent and dropped modules stay silent."""
    sim = await battery_simulator_factory(modules=3, model="US2000C", group=2)
    port = await Port.open(sim)
    try:
        ask = Command.GET_SERIAL_NUMBER
        assert await port.ask(rs485.encode_request(ask, 0x22)) is not None
        assert await port.ask(rs485.encode_request(ask, 0x24)) is not None
        assert await port.ask(rs485.encode_request(ask, 0x02), timeout=0.2) is None
        assert await port.ask(rs485.encode_request(ask, 0x25), timeout=0.2) is None  # slot 4
        sim.faults.drop_module(2)
        assert await port.ask(rs485.encode_request(ask, 0x23), timeout=0.2) is None
        raw = await port.ask(rs485.encode_request(Command.GET_ANALOG_VALUES, 0x22, info=0xFF))
        assert raw is not None
        response = rs485.decode_response(Command.GET_ANALOG_VALUES, raw)
        assert response.command == 2
        assert len(response.records) == 2
        sim.faults.restore_module(2)
        assert await port.ask(rs485.encode_request(ask, 0x23)) is not None
    finally:
        await port.close()


async def test_writes_refused_recorded_and_harmless(battery_simulator: BatterySimulator) -> None:
    """0x94/0x95/0x99 and unknown CID2 get RTN 0x04, change nothing, and are recorded."""
    sim = battery_simulator
    before = sim.snapshot()
    port = await Port.open(sim)
    try:
        for cid2, info in ((0x94, bytes.fromhex("02CFD0AFC80172FE8E")), (0x95, b"\x02"),
                           (0x99, b"\x0c"), (0x91, b"\x03"), (0x10, b"")):  # fmt: skip
            raw = await port.ask(raw_request(2, cid2, info))
            assert raw is not None
            with pytest.raises(ResponseError) as caught:
                rs485.decode_frame(raw)
            assert caught.value.code == 0x04
        bad = bytearray(rs485.encode_request(Command.GET_SERIAL_NUMBER, 2))
        bad[-2:-1] = b"0" if bad[-2:-1] != b"0" else b"1"
        raw = await port.ask(bytes(bad))
        assert raw is not None
        with pytest.raises(ResponseError) as caught:
            rs485.decode_frame(raw)
        assert caught.value.code == 0x02
    finally:
        await port.close()
    assert sim.snapshot() == before
    assert sim.rs485 is not None
    recorded = sim.rs485.requests
    assert [r.request.cid2 for r in recorded if r.request] == [0x94, 0x95, 0x99, 0x91, 0x10]
    assert recorded[-1].request is None
    assert recorded[-1].error
    assert all(r.raw.startswith(b"~") for r in recorded)


async def test_alarm_info_reflects_injected_faults(battery_simulator: BatterySimulator) -> None:
    """0x44 shows COC in Status 1, a HIGH cell for cell over-voltage; 0x92 the request flags."""
    sim = battery_simulator
    sim.faults.inject_protection(Protection.CHARGE_OVER_CURRENT, module=2)
    sim.faults.inject_protection(Protection.CELL_OVER_VOLTAGE, module=3)
    sim.faults.full_charge_request()
    port = await Port.open(sim)
    try:
        raw = await port.ask(rs485.encode_request(Command.GET_ALARM_INFO, 2, info=0xFF))
        management = await port.ask(rs485.encode_request(Command.GET_MANAGEMENT_INFO, 3))
    finally:
        await port.close()
    assert raw is not None
    assert management is not None
    modules = rs485.modules_from_alarm(rs485.decode_response(Command.GET_ALARM_INFO, raw))
    by_index = {m.index: m for m in modules}
    assert Protection.CHARGE_OVER_CURRENT in by_index[2].protections
    assert by_index[2].charge_mosfet is False
    assert Protection.CELL_OVER_VOLTAGE in by_index[3].protections
    assert not by_index[1].protections
    assert not by_index[4].protections
    fields = rs485.management_fields(rs485.decode_response(Command.GET_MANAGEMENT_INFO, management))
    assert fields["full_charge_request"] is True
    assert fields["charge_enabled"] is False  # module 3 cannot charge (cell over-voltage)


async def test_transport_faults(battery_simulator: BatterySimulator) -> None:
    """Checksum, garbage, truncation, wrong baud, stall and drop each look as on a real line."""
    sim = battery_simulator
    request = rs485.encode_request(Command.GET_SERIAL_NUMBER, 2)
    port = await Port.open(sim)
    try:
        sim.faults.inject_link_fault("rs485", "checksum", count=1)
        raw = await port.ask(request)
        assert raw is not None
        with pytest.raises(ChecksumError):
            rs485.decode_frame(raw)
        assert rs485.decode_frame(await port.ask(request))  # type: ignore[arg-type]

        sim.faults.inject_link_fault("rs485", "garbage", count=1)
        port.writer.write(request)
        chunk = await asyncio.wait_for(port.reader.readuntil(b"\r"), 1.0)
        splitter = rs485.FrameSplitter()
        frames = splitter.feed(chunk)
        assert splitter.dropped_bytes >= 8
        assert len(frames) == 1
        rs485.decode_frame(frames[0])

        sim.faults.inject_link_fault("rs485", "truncate", count=1)
        port.writer.write(request)
        await asyncio.sleep(0.2)
        partial = await asyncio.wait_for(port.reader.read(4096), 1.0)
        assert partial.startswith(b"~")
        assert not partial.endswith(b"\r")

        sim.faults.inject_link_fault("rs485", "wrong_baud")
        port.writer.write(request)
        await asyncio.sleep(0.2)
        noise = await asyncio.wait_for(port.reader.read(4096), 1.0)
        assert noise
        assert b"~" not in noise
        assert b"\r" not in noise
        sim.faults.clear_link_fault("rs485", "wrong_baud")

        sim.faults.inject_link_fault("rs485", "stall", count=1, seconds=0.4)
        assert await port.ask(request, timeout=0.25) is None
        await asyncio.sleep(0.25)
        assert await port.ask(request) is not None
    finally:
        await port.close()

    port = await Port.open(sim)
    sim.faults.inject_link_fault("rs485", "drop", count=1)
    port.writer.write(request)
    assert await asyncio.wait_for(port.reader.read(100), 1.0) == b""
    await port.close()
    port = await Port.open(sim)  # the server still accepts new connections
    try:
        assert await port.ask(request) is not None
    finally:
        await port.close()


async def test_wire_time_at_baud(battery_simulator_factory: SimulatorFactory) -> None:
    """At 9600 baud a 4-module 0x42 answer (494 bytes) takes at least its serial time."""
    sim = await battery_simulator_factory(modules=4, model="US3000C", baud=9600)
    port = await Port.open(sim)
    try:
        started = time.monotonic()
        raw = await port.ask(rs485.encode_request(Command.GET_ANALOG_VALUES, 2, info=0xFF), 3.0)
        elapsed = time.monotonic() - started
    finally:
        await port.close()
    assert raw is not None
    assert len(raw) == 494
    assert elapsed >= 494 * 10 / 9600 * 0.95


def test_0x61_is_served_where_the_model_answers_it() -> None:
    """US5000 answers 0x61 with the truth; V3.3 models refuse it (RTN 0x04)."""
    from simulator.bank import SimulatedBank
    from simulator.rs485_server import Rs485Server

    request = rs485.encode_request(rs485.Command.GET_SYSTEM_ANALOG, 2)
    bank = SimulatedBank(3, "US5000", seed=3)
    server = Rs485Server(bank)
    answer = rs485.decode_response(rs485.Command.GET_SYSTEM_ANALOG, server.answer(request))
    assert isinstance(answer, rs485.SystemAnalogResponse)
    truth = bank.snapshot()
    assert answer.voltage == pytest.approx(truth.voltage, abs=0.001)
    assert answer.current == pytest.approx(truth.current, abs=0.01)
    assert answer.soh_min == min(round(m.soh or 0) for m in truth.modules)
    assert answer.cycles_max == max(m.cycles or 0 for m in truth.modules)
    assert answer.cell_voltage_max == max(m.cell_voltage_max or 0 for m in truth.modules)
    assert answer.cell_voltage_max_id >> 8 in (1, 2, 3)  # module number in the high byte
    # Slaves do not answer for the stack; a US3000C master refuses the command.
    slave = rs485.encode_request(rs485.Command.GET_SYSTEM_ANALOG, 3)
    with pytest.raises(ResponseError):
        rs485.decode_frame(server.answer(slave) or b"")
    server = Rs485Server(SimulatedBank(2, "US3000C", seed=3))
    with pytest.raises(ResponseError, match="0x04"):
        rs485.decode_frame(server.answer(request) or b"")
    server.system_analog = True  # the override
    assert rs485.decode_frame(server.answer(request) or b"").rtn == 0


def test_raw_answers_replace_one_request_info() -> None:
    from simulator.bank import SimulatedBank
    from simulator.rs485_server import Rs485Server

    server = Rs485Server(SimulatedBank(2, "US3000C", seed=3))
    server.raw_answers[(0x92, 0x03)] = b"\x03hostile"
    frame = rs485.decode_frame(server.answer(rs485.encode_request(0x92, 3)) or b"")
    assert (frame.adr, frame.info) == (3, b"\x03hostile")
    # Other requests are untouched.
    master = rs485.decode_response(0x92, server.answer(rs485.encode_request(0x92, 2)) or b"")
    assert isinstance(master, rs485.ManagementInfoResponse)
