"""Property tests: hostile input raises only ProtocolError; encoders and decoders are symmetric."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.pylontech.core.bounds import (
    MAX_CELLS_PER_MODULE,
    MAX_TEMPERATURES_PER_MODULE,
)
from custom_components.pylontech.core.errors import ImplausibleValueError, ProtocolError
from custom_components.pylontech.core.model import LimitState
from custom_components.pylontech.core.protocol import rs485
from custom_components.pylontech.core.protocol.rs485 import (
    AlarmRecord,
    AlarmResponse,
    AnalogRecord,
    AnalogResponse,
    Command,
    FrameSplitter,
)

SETTINGS = settings(max_examples=200, deadline=None, database=None)
# Structured round trips generate nested lists: fewer examples keep the file under 5 s.
ROUND_TRIP = settings(max_examples=100, deadline=None, database=None)

REAL_FRAMES = (
    (
        b"~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21050BCD0B"
        b"AF0BAF0BAF0BAF0015C4E88AAC02C350004FE594\r"
    ),
    b"~20024600A04210020F000000000000000000000000000000050000000000000000000E00000000F108\r",
    b"~20024600B01402D002B79800FAFF06C0F92D\r",
    b"~200246000000FDB2\r",
    b"~20024600400C020203000605FB49\r",
)


def _valid_frame_with(info: bytes, cid2: int = 0) -> bytes:
    return rs485.encode_frame(0x20, 2, 0x46, cid2, info)


@SETTINGS
@given(st.binary(max_size=300))
def test_decode_frame_arbitrary_bytes(data: bytes) -> None:
    try:
        rs485.decode_frame(data)
    except ProtocolError:
        pass


@SETTINGS
@given(st.text(alphabet="~0123456789ABCDEFabcdef\r\n xZ", max_size=120))
def test_decode_frame_frame_like_text(text: str) -> None:
    for request in (False, True):
        try:
            rs485.decode_frame(text, request=request)
        except ProtocolError:
            pass


@SETTINGS
@given(st.sampled_from(REAL_FRAMES), st.integers(0, 10_000), st.integers(0, 255))
def test_corrupted_real_frames_never_crash(raw: bytes, position: int, value: int) -> None:
    data = bytearray(raw)
    data[position % len(data)] = value
    for command in Command:
        try:
            rs485.decode_response(command, bytes(data))
        except ProtocolError:
            pass


@SETTINGS
@given(
    st.binary(max_size=400), st.sampled_from(list(Command)), st.sampled_from([None, True, False])
)
def test_every_decoder_on_arbitrary_info(
    info: bytes, command: Command, all_modules: bool | None
) -> None:
    frame = rs485.decode_frame(_valid_frame_with(info))
    try:
        rs485.decode_response(command, frame, all_modules=all_modules)
    except ProtocolError:
        pass


@SETTINGS
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_splitter_arbitrary_chunks(chunks: list[bytes]) -> None:
    splitter = FrameSplitter()
    total = 0
    emitted = 0
    for chunk in chunks:
        total += len(chunk)
        for frame in splitter.feed(chunk):
            assert frame.startswith(b"~")
            assert frame.endswith(b"\r")
            assert frame.count(b"~") == 1
            assert frame.count(b"\r") == 1
            assert len(frame) <= rs485.MAX_FRAME_LENGTH
            emitted += len(frame)
            try:
                rs485.decode_frame(frame)
            except ProtocolError:
                pass
        assert splitter.pending <= rs485.MAX_FRAME_LENGTH
    # Every byte is either emitted, dropped or still pending.
    assert emitted + splitter.dropped_bytes + splitter.pending == total


@SETTINGS
@given(
    st.lists(st.sampled_from(REAL_FRAMES), min_size=1, max_size=6),
    st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"~", b"")), min_size=7, max_size=7),
    st.integers(1, 64),
)
def test_splitter_resyncs_after_garbage(
    frames: list[bytes], garbage: list[bytes], chunk: int
) -> None:
    # Garbage (without "~") between frames, then fed in arbitrary chunk sizes.
    stream = b"".join(g + f for g, f in zip(garbage, frames, strict=False)) + garbage[-1]
    splitter = FrameSplitter()
    out: list[bytes] = []
    for start in range(0, len(stream), chunk):
        out += splitter.feed(stream[start : start + chunk])
    decoded = []
    for frame in out:
        try:
            decoded.append(rs485.decode_frame(frame))
        except ProtocolError:
            pass
    assert decoded == [rs485.decode_frame(f) for f in frames]


# --------------------------------------------------------------------------- round trips

_volts = st.integers(0, 4500).map(lambda mv: mv / 1000)
_temps = st.integers(2731 - 400, 2731 + 900).map(lambda raw: (raw - 2731) / 10)
_states = st.sampled_from(list(LimitState))


@st.composite
def analog_records(draw: st.DrawFn) -> AnalogRecord:
    user_defined = draw(st.sampled_from([2, 4]))
    capacity = st.integers(0, 0xFFFF if user_defined == 2 else 0xFFFFFF).map(lambda m: m / 1000)
    return AnalogRecord(
        cell_voltages=tuple(draw(st.lists(_volts, min_size=1, max_size=MAX_CELLS_PER_MODULE))),
        temperatures=tuple(draw(st.lists(_temps, max_size=MAX_TEMPERATURES_PER_MODULE))),
        current=draw(st.integers(-32768, 32767)) / 10,
        voltage=draw(st.integers(0, 0xFFFF)) / 1000,
        remaining_capacity=draw(capacity),
        full_capacity=draw(capacity),
        cycles=draw(st.integers(0, 0xFFFF)),
        user_defined=user_defined,
    )


@st.composite
def alarm_records(draw: st.DrawFn, *, last: bool) -> AlarmRecord:
    extra = draw(st.binary(max_size=3) if last else st.sampled_from([b"", b"\x00"]))
    cells = tuple(draw(st.lists(_states, min_size=1, max_size=MAX_CELLS_PER_MODULE)))
    # Only what a working BMS can send: reserved bits clear, no contradictory pair, cell
    # error bits only for cells the record has (the others are tested to be refused).
    status1 = draw(st.integers(0, 255)) & ~rs485.STATUS1_RESERVED
    if status1 & 0x81 == 0x81:
        status1 &= ~0x01
    status3 = draw(st.integers(0, 255)) & ~rs485.STATUS3_RESERVED
    if status3 & 0xC0 == 0xC0:
        status3 &= ~0x40
    cell_bits = draw(st.integers(0, 0xFFFF)) & ((1 << len(cells)) - 1)
    return AlarmRecord(
        cell_states=cells,
        temperature_states=tuple(draw(st.lists(_states, max_size=MAX_TEMPERATURES_PER_MODULE))),
        charge_current_state=draw(_states),
        voltage_state=draw(_states),
        discharge_current_state=draw(_states),
        status1=status1,
        status2=draw(st.integers(0, 255)) & ~rs485.STATUS2_RESERVED,
        status3=status3,
        status4=cell_bits & 0xFF,
        status5=cell_bits >> 8,
        extra=extra,
    )


_adr = st.integers(2, 0x81)
_flag = st.integers(0, 255)


@ROUND_TRIP
@given(_adr, _flag, st.booleans(), st.lists(analog_records(), min_size=1, max_size=4))
def test_analog_round_trip(adr: int, flag: int, many: bool, records: list[AnalogRecord]) -> None:
    if not many:
        records = records[:1]
    response = AnalogResponse(
        adr=adr,
        info_flag=flag,
        command=len(records) if many else adr,
        all_modules=many,
        records=tuple(records),
    )
    raw = rs485.encode_response(response)
    assert rs485.decode_response(Command.GET_ANALOG_VALUES, raw, all_modules=many) == response
    assert (
        rs485.encode_response(rs485.decode_analog(rs485.decode_frame(raw), all_modules=many)) == raw
    )


@ROUND_TRIP
@given(_adr, _flag, st.booleans(), st.data())
def test_alarm_round_trip(adr: int, flag: int, many: bool, data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 4)) if many else 1
    records = [data.draw(alarm_records(last=n == count - 1)) for n in range(count)]
    response = AlarmResponse(
        adr=adr, info_flag=flag, command=count if many else adr, all_modules=many,
        records=tuple(records),
    )  # fmt: skip
    raw = rs485.encode_response(response)
    assert rs485.decode_response(Command.GET_ALARM_INFO, raw, all_modules=many) == response


_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


def _ascii(min_size: int, max_size: int, *, alphabet: str = _PRINTABLE) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


@ROUND_TRIP
@given(_adr, st.data())
def test_fixed_layout_round_trips(adr: int, data: st.DataObject) -> None:
    byte = st.integers(0, 255)
    responses: list[tuple[Command, rs485.Response]] = [
        (Command.GET_PROTOCOL_VERSION, rs485.ProtocolVersionResponse(adr=adr)),
        (
            Command.GET_MANUFACTURER_INFO,
            rs485.ManufacturerInfoResponse(
                adr=adr,
                device_name=data.draw(_ascii(0, 10)),
                software_version=(data.draw(byte), data.draw(byte)),
                manufacturer=data.draw(_ascii(0, 19)) + data.draw(_ascii(1, 1, alphabet="Pn9")),
            ),
        ),
        (
            Command.GET_SYSTEM_PARAMETERS,
            rs485.SystemParametersResponse(
                adr=adr,
                info_flag=data.draw(byte),
                cell_high_voltage=data.draw(_volts),
                cell_low_voltage=data.draw(_volts),
                cell_under_voltage=data.draw(_volts),
                charge_high_temperature=data.draw(_temps),
                charge_low_temperature=data.draw(_temps),
                charge_current_limit=data.draw(st.integers(-32768, 32767)) / 10,
                module_high_voltage=data.draw(st.integers(0, 0xFFFF)) / 1000,
                module_low_voltage=data.draw(st.integers(0, 0xFFFF)) / 1000,
                module_under_voltage=data.draw(st.integers(0, 0xFFFF)) / 1000,
                discharge_high_temperature=data.draw(_temps),
                discharge_low_temperature=data.draw(_temps),
                discharge_current_limit=data.draw(st.integers(-32768, 32767)) / 10,
            ),
        ),
        (
            Command.GET_MANAGEMENT_INFO,
            rs485.ManagementInfoResponse(
                adr=adr,
                command=data.draw(byte),
                charge_voltage_limit=data.draw(st.integers(0, 0xFFFF)) / 1000,
                discharge_voltage_limit=data.draw(st.integers(0, 0xFFFF)) / 1000,
                charge_current_limit=data.draw(st.integers(-32768, 32767)) / 10,
                discharge_current_limit=data.draw(st.integers(-32768, 32767)) / 10,
                status=data.draw(byte),
            ),
        ),
        (
            Command.GET_SERIAL_NUMBER,
            rs485.SerialNumberResponse(
                adr=adr,
                command=data.draw(byte),
                serial_number=data.draw(_ascii(1, 32)),
            ),
        ),
        (
            Command.GET_SOFTWARE_VERSION,
            rs485.SoftwareVersionResponse(
                adr=adr,
                command=data.draw(byte),
                manufacturer_version=(data.draw(byte), data.draw(byte)),
                mainline_version=(data.draw(byte), data.draw(byte), data.draw(byte)),
            ),
        ),
    ]
    for command, response in responses:
        raw = rs485.encode_response(response)
        assert rs485.decode_response(command, raw) == response


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=400))
def test_iter_capture_never_raises(text: str) -> None:
    for entry in rs485.iter_capture(text):
        assert entry.kind in {"request", "response", "error"}
        entry.to_dict()


@SETTINGS
@given(st.integers(-1000, 1000), st.integers(-1, 300), st.integers(-1, 300))
def test_encode_request_only_allow_list(command: int, adr: int, info: int) -> None:
    from custom_components.pylontech.core.errors import CommandNotAllowedError

    try:
        raw = rs485.encode_request(command, adr, info=info)
    except (CommandNotAllowedError, ValueError):
        return
    request = rs485.decode_request(raw)
    assert request.command in rs485.READ_COMMANDS
    assert len(request.info) <= 1


@given(
    st.integers(1, MAX_CELLS_PER_MODULE),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
)
def test_alarm_records_no_bms_can_send_are_refused(
    cells: int, status1: int, status2: int, status3: int, cell_bits: int
) -> None:
    """Reserved bits, contradictory pairs or errors of absent cells: never decoded."""
    record = AlarmRecord(
        cell_states=(LimitState.NORMAL,) * cells,
        temperature_states=(LimitState.NORMAL,) * 5,
        status1=status1,
        status2=status2,
        status3=status3,
        status4=cell_bits & 0xFF,
        status5=cell_bits >> 8,
    )
    impossible = (
        status1 & rs485.STATUS1_RESERVED
        or status1 & 0x81 == 0x81
        or status2 & rs485.STATUS2_RESERVED
        or status3 & rs485.STATUS3_RESERVED
        or status3 & 0xC0 == 0xC0
        or cell_bits >> cells
    )
    raw = rs485.encode_alarm_response(2, [record], all_modules=False)
    if impossible:
        with pytest.raises(ImplausibleValueError):
            rs485.decode_alarm(rs485.decode_frame(raw))
    else:
        assert rs485.decode_alarm(rs485.decode_frame(raw)).records == (record,)
