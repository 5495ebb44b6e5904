"""RS485 codec against the reference vectors (docs/protocol-notes.md §1.2, §4.1, D2/D3)."""

from __future__ import annotations

import pytest

from custom_components.pylontech.core.errors import (
    ChecksumError,
    CommandNotAllowedError,
    DialectError,
    ProtocolError,
    ResponseError,
)
from custom_components.pylontech.core.model import (
    Alarm,
    Bank,
    LimitState,
    Module,
    ModuleState,
    Protection,
)
from custom_components.pylontech.core.protocol import rs485
from custom_components.pylontech.core.protocol.rs485 import (
    AlarmRecord,
    AlarmResponse,
    AnalogResponse,
    Command,
    FrameSplitter,
    ManagementInfoResponse,
    address,
    decode_frame,
    decode_response,
    encode_request,
    module_position,
)

# --------------------------------------------------------------------------- vectors (verbatim)

RS_42_A = (
    b"~20024600F07A11020F0D450D440D450D440D450D440D3E0D450D4A0D4A0D4B0D4A0D4A0D4A0D4A050BC30B"
    b"C30BC30BCD0BCD0000C725FFFF04FFFF000200CA58012110E1A2\r"
)
RS_42_B = (
    b"~20014600C06E11010F0D450D440D450D440D450D440D3E0D450D4A0D4A0D4B0D4A0D4A0D4A0D4A050BC30B"
    b"C30BC30BCD0BCD0000C725BF6802C3500002E553\r"
)
RS_42_C = (
    b"~20024600914211030F0CE70CE80CE60CE70CE80CE80CE80CE60CE50CE60CE80CE70CEA0CE50CE6050B910B"
    b"870B870B870B87FFE6C18982DC02C350001F0F0CE20CE60CE60CE10CE50CE70CE60CE30CE20CE50CE30CE90C"
    b"E70CE90CE9050B910B870B870B870B87FFE7C17082DC02C350001F0F0CE20CE50CE50CE20CE30CE30CE40CE5"
    b"0CE60CE60CE30CE40CE40CE60CE6050B910B7D0B7D0B7D0B7DFFE5C16082DC02C350001FB476\r"
)
RS_42_D = (
    b"~2002460061DC11040F0CFD0CFC0CFC0CFB0CFC0CFB0CFD0CFC0CFC0CFB0CFA0CFD0CFB0CFE0CFA050BE10BC"
    b"D0BCD0BCD0BCD0000C2C1FFFF04FFFF002F00EFEC0121100F0CEB0CEB0CEB0CEA0CEA0CEC0CEB0CEB0CE90CE"
    b"80CE60CE90CE90CEA0CE8050BE10BCD0BCD0BCD0BCDFFBCC1B2FFFF04FFFF002800F2D00121100F0CE80CE90"
    b"CEA0CEA0CEA0CE90CEA0CEA0CEB0CEC0CEB0CEB0CEB0CEA0CEA050BE10BC30BC30BC30BC3FFB7C1B8FFFF04F"
    b"FFF007100E7400121100F0CE90CEC0CEB0CEA0CEA0CEB0CE90CE80CEA0CEA0CEA0CEB0CEC0CEA0CEA050BD70"
    b"BC30BC30BC30BB9FFBBC1B9FFFF04FFFF006B00ED080121108D63\r"
)
RS_42_F = (
    b"~20024600D05E1002080D020D020D020D030D000D010D010D03050B7D0B690B690B690B73FFFA680EFFFF04"
    b"FFFF00000174E401B198E906\r"
)
RS_42_G = (
    b"~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21050BCD0B"
    b"AF0BAF0BAF0BAF0015C4E88AAC02C350004FE594\r"
)
RS_44_A = b"~20024600C04000020F000000000000000000000000000000050000000000000000000E800000F161\r"
RS_44_B = b"~20024600A04210020F000000000000000000000000000000050000000000000000000E00000000F108\r"
RS_92_A = b"~20024600B014026EF05AA0022BFDD5C0F915\r"
RS_92_B = b"~20024600B01402D002B79800FAFF06C0F92D\r"
RS_92_C = b"~20024600B01402D002AFC80172FE8EC0F91C\r"
RS_47_A = b"~20024600B032110E420BEA0B540D0D0A3D03FCD2F0B3B0ADD40D0D0A3DFC18F23D\r"
RS_47_B = b"~20024600B032100E420BEA0AF00D030A470384D2F0B3B0A7F80D030A47FC7CF27F\r"
RS_51_A = b"~20024600C0405553324B42504C000000020350796C6F6E2D2D2D2D2D2D2D2D2D2D2D2D2D2D2DEF98\r"
RS_51_B = b"~20024600C04055533230303043000000010750796C6F6E2D2D2D2D2D2D2D2D2D2D2D2D2D2D2DEFBD\r"
RS_51_C = b"~20024600C0405553324B42504C000000020450796C6F6E2D2D2D2D2D2D2D2D2D2D2D2D2D2D2DEF97\r"
RS_4F = b"~200246000000FDB2\r"
RS_93_A = b"~20024600C0220248505443523033313731313132353930F6D2\r"
RS_93_B = b"~20034600C0220348505442483032323430413031323335F6D5\r"
RS_96_A = b"~20024600400C020203000605FB49\r"

SPEC_CELLS_A = (3397, 3396, 3397, 3396, 3397, 3396, 3390, 3397, 3402, 3402, 3403, 3402, 3402)
SPEC_CELLS = tuple(mv / 1000 for mv in (*SPEC_CELLS_A, 3402, 3402))


def _volts(*millivolts: int) -> tuple[float, ...]:
    return tuple(mv / 1000 for mv in millivolts)


# --------------------------------------------------------------------------- frame layer


def test_checksum_examples() -> None:
    # Notes §1.2: sum of "20024642E00202" is 0x02CD -> FD33.
    assert sum(b"20024642E00202") == 0x02CD
    assert rs485.checksum(b"20024642E00202") == 0xFD33
    # D2: the spec's worked example; the right answer is FC71, not the printed FC72.
    assert sum(b"1203400456ABCEFE") == 0x038F
    assert rs485.checksum(b"1203400456ABCEFE") == 0xFC71
    # Notes §1.2: LENID 18 -> LENGTH D012, LENID 0 -> 0000, and the listed LENGTH values.
    assert rs485.length_field(0x12) == 0xD012
    assert rs485.length_field(0) == 0x0000
    for lenid, length in {
        2: 0xE002, 4: 0xC004, 0x14: 0xB014, 0x32: 0xB032, 0x40: 0xC040, 0x42: 0xA042,
        0x5E: 0xD05E, 0x6E: 0xC06E, 0x7A: 0xF07A, 0x7E: 0xB07E, 0xD8: 0xB0D8, 0xF0: 0x10F0,
        0x142: 0x9142, 0x1DC: 0x61DC,
    }.items():  # fmt: skip
        assert rs485.length_field(lenid) == length


def test_spec_analog_example_has_a_bad_checksum_but_a_good_payload() -> None:
    # D3: RS-42-A prints CHKSUM E1A2; the recomputed value is E27A.
    with pytest.raises(ChecksumError, match=r"E1A2.*E27A"):
        decode_frame(RS_42_A)
    fixed = RS_42_A[:-5] + b"E27A\r"
    response = decode_response(Command.GET_ANALOG_VALUES, fixed)
    assert isinstance(response, AnalogResponse)
    assert response.info_flag == 0x11
    assert response.command == 2
    assert not response.all_modules
    (record,) = response.records
    assert record.cell_voltages == SPEC_CELLS
    assert record.temperatures == (28.0, 28.0, 28.0, 29.0, 29.0)
    assert record.current == 0.0
    assert record.voltage == 50.981
    assert record.user_defined == 4
    assert record.remaining_capacity == 51.8
    assert record.full_capacity == 74.0
    assert record.cycles == 2
    # The unchecked payload decodes the same way.
    frame = decode_frame(RS_42_A, verify_checksum=False)
    assert rs485.decode_analog(frame) == response
    # And the encoder reproduces the corrected frame byte for byte.
    assert rs485.encode_response(response) == fixed


def test_frame_fields_and_request_vectors() -> None:
    frame = decode_frame(b"~20024642E00202FD33\r", request=True)
    assert (frame.ver, frame.adr, frame.cid1, frame.cid2, frame.info) == (
        0x20,
        2,
        0x46,
        0x42,
        b"\x02",
    )
    for raw in (
        b"~20024642E002FFFD09\r",
        b"~20034642E00203FD31\r",
        b"~200A4644E0020AFD13\r",
        b"~200A4692E0020AFD10\r",
        b"~0002464F0000FD9A\r",
        b"~20014682C0048520FCC3\r",
        b"~2002464FC0048520FCB2\r",
        b"~20024644C0040201FCD0\r",
        b"~20024647C0040000FCD0\r",
    ):
        decoded = decode_frame(raw, request=True)
        if decoded.cid2 == 0x82:  # the console wake-up frame: undocumented, never built here
            with pytest.raises(CommandNotAllowedError):
                rs485.encode_frame(*_fields(decoded))
        else:
            assert rs485.encode_frame(*_fields(decoded)) == raw


def _fields(frame: rs485.Frame) -> tuple[int, int, int, int, bytes]:
    return (frame.ver, frame.adr, frame.cid1, frame.cid2, frame.info)


def test_lowercase_hex_accepted_uppercase_emitted() -> None:
    lower = RS_92_B.decode().lower().encode()
    assert decode_frame(lower) == decode_frame(RS_92_B)
    assert rs485.encode_frame(0x20, 2, 0x46, 0x42, b"\x02") == b"~20024642E00202FD33\r"


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"", ProtocolError, "too short"),
        (b"20024642E00202FD33\r~", ProtocolError, "SOI"),
        (b"~20024642E00202FD33\n", ProtocolError, "EOI"),
        (b"~20024642E00202FD34\r", ChecksumError, "CHKSUM"),
        (b"~20024642F00202FD33\r", ChecksumError, "LCHKSUM"),
        (b"~2002464ZE00202FD33\r", ProtocolError, "not hex"),
        (b"~20024642E00402FD33\r", ProtocolError, "LENID"),
        (b"~20024642F0010FD33\r", ProtocolError, "odd"),
        (b"~20024642E002 2FD33\r", ProtocolError, "not hex"),
        (b"~20024642E00202FD3\xff\r", ProtocolError, "not hex"),
        (b"~" + b"0" * 5000 + b"\r", ProtocolError, "too long"),
    ],
)
def test_malformed_frames(raw: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_frame(raw, request=True)


def test_return_codes_raise_response_error() -> None:
    for code, meaning in rs485.RTN_MEANINGS.items():
        if code == 0:
            continue
        raw = rs485.encode_error_response(2, code)
        with pytest.raises(ResponseError) as info:
            decode_frame(raw)
        assert info.value.code == code
        assert info.value.meaning == meaning
        assert isinstance(info.value, ProtocolError)
    with pytest.raises(ResponseError, match="0x04"):
        decode_response(Command.GET_ANALOG_VALUES, rs485.encode_error_response(2, 0x04))


def test_look_alike_dialects_are_rejected() -> None:
    # Notes §1.9: Shoto request ~22014A42E00201FD28, PACE VER 0x25.
    with pytest.raises(DialectError, match="CID1 0x4A"):
        decode_frame(b"~22014A42E00201FD28\r", request=True)
    shoto_like = rs485.encode_frame(0x22, 1, 0x4A, 0x00, b"\x11\x01")
    with pytest.raises(DialectError, match="VER 0x22 CID1 0x4A"):
        decode_frame(shoto_like)
    pace_like = rs485.encode_frame(0x25, 1, 0x46, 0x00, b"")
    with pytest.raises(DialectError, match="VER 0x25"):
        decode_response(Command.GET_PROTOCOL_VERSION, pace_like)
    # A framing-valid look-alike still parses at the frame layer.
    assert rs485.parse_frame(pace_like).ver == 0x25


# --------------------------------------------------------------------------- splitter


def test_splitter_drops_garbage_and_splits() -> None:
    splitter = FrameSplitter()
    stream = b"\xff\xff\r\n~2002460" + b"\r\n" + RS_4F + b"\n\xff" + RS_92_B[:10]
    assert splitter.feed(stream) == [b"~2002460\r", RS_4F]
    assert splitter.feed(RS_92_B[10:] + RS_93_A) == [RS_92_B, RS_93_A]
    assert splitter.dropped_bytes == 4 + 1 + 2
    assert splitter.pending == 0


def test_splitter_resyncs_on_new_soi_and_bounds_buffer() -> None:
    splitter = FrameSplitter()
    # A truncated frame followed by a complete one: the partial is dropped.
    assert splitter.feed(b"~20024600B0" + RS_92_C) == [RS_92_C]
    assert splitter.dropped_bytes == 11
    # A never-ending candidate is discarded once longer than any frame.
    splitter = FrameSplitter()
    for _ in range(10):
        assert splitter.feed(b"~" + b"A" * 999) == []
        assert splitter.pending <= rs485.MAX_FRAME_LENGTH
    assert splitter.feed(b"A" * 5000) == []
    assert splitter.pending <= rs485.MAX_FRAME_LENGTH
    assert splitter.feed(b"\r" + RS_4F) == [RS_4F]
    # Byte-by-byte feeding gives the same frames.
    splitter = FrameSplitter()
    out: list[bytes] = []
    for byte in RS_42_C + RS_44_B:
        out += splitter.feed(bytes((byte,)))
    assert out == [RS_42_C, RS_44_B]
    assert splitter.frames == 2


# --------------------------------------------------------------------------- requests


def test_encode_request_documented_forms() -> None:
    assert encode_request(Command.GET_ANALOG_VALUES, 2) == b"~20024642E00202FD33\r"
    assert encode_request(0x42, 2, info=0xFF) == b"~20024642E002FFFD09\r"
    assert encode_request(Command.GET_ANALOG_VALUES, 3) == b"~20034642E00203FD31\r"
    assert encode_request(Command.GET_ALARM_INFO, 2) == b"~20024644E00202FD31\r"
    assert encode_request(Command.GET_ALARM_INFO, 0x0A) == b"~200A4644E0020AFD13\r"
    assert encode_request(Command.GET_MANAGEMENT_INFO, 2) == b"~20024692E00202FD2E\r"
    assert encode_request(Command.GET_MANAGEMENT_INFO, 0x0A) == b"~200A4692E0020AFD10\r"
    assert encode_request(Command.GET_SERIAL_NUMBER, 2) == b"~20024693E00202FD2D\r"
    assert encode_request(Command.GET_SERIAL_NUMBER, 3) == b"~20034693E00203FD2B\r"
    assert encode_request(Command.GET_SOFTWARE_VERSION, 2) == b"~20024696E00202FD2A\r"
    assert encode_request(Command.GET_SYSTEM_PARAMETERS, 2) == b"~200246470000FDA7\r"
    assert encode_request(Command.GET_MANUFACTURER_INFO, 2) == b"~200246510000FDAC\r"
    assert encode_request(Command.GET_PROTOCOL_VERSION, 2) == b"~2002464F0000FD98\r"
    assert encode_request(Command.GET_PROTOCOL_VERSION, 1) == b"~2001464F0000FD99\r"
    assert encode_request(Command.GET_PROTOCOL_VERSION, 2, ver=0) == b"~0002464F0000FD9A\r"
    assert encode_request(Command.GET_ANALOG_VALUES, 1) == b"~20014642E00201FD35\r"


@pytest.mark.parametrize("command", [0x94, 0x95, 0x99, 0x91, 0x90, 0x82, 0x60, 0x62, 0x00, 0x300])
def test_write_and_unknown_commands_are_refused(command: int) -> None:
    with pytest.raises(CommandNotAllowedError):
        encode_request(command, 2)
    with pytest.raises(CommandNotAllowedError):
        encode_request(command, 2, info=2)


def test_no_route_to_a_write_frame() -> None:
    for cid2 in (0x94, 0x95, 0x99, 0x82, 0xA0):
        with pytest.raises(CommandNotAllowedError):
            rs485.encode_frame(0x20, 2, 0x46, cid2, b"\x02")
    # 0x91 is a return code when empty, "set baud" when it carries INFO.
    assert decode_frame(rs485.encode_frame(0x20, 2, 0x46, 0x91), request=True).cid2 == 0x91
    with pytest.raises(CommandNotAllowedError):
        rs485.encode_frame(0x20, 2, 0x46, 0x91, b"\x03")
    # Malformed read requests are refused too.
    with pytest.raises(CommandNotAllowedError):
        encode_request(Command.GET_MANAGEMENT_INFO, 2, info=0xFF)
    with pytest.raises(CommandNotAllowedError):
        encode_request(Command.GET_MANUFACTURER_INFO, 2, info=2)
    with pytest.raises(CommandNotAllowedError):
        encode_request(True, 2)  # type: ignore[arg-type]
    assert frozenset(Command) == rs485.READ_COMMANDS
    # 0x61 (V3.5 system analog data) is a read; 0x60/0x62/0x63 are not needed and not allowed.
    assert {int(c) for c in Command} == {0x4F, 0x51, 0x42, 0x44, 0x47, 0x61, 0x92, 0x93, 0x96}


def test_decode_request() -> None:
    request = rs485.decode_request(b"~20024642E002FFFD09\r")
    assert request.command is Command.GET_ANALOG_VALUES
    assert request.all_modules
    assert request.target == 0xFF
    assert rs485.decode_request(b"~20014682C0048520FCC3\r").command is None
    assert not rs485.decode_request(b"~20024644E00202FD31\r").all_modules


def test_addressing() -> None:
    assert address(1) == 2
    assert address(2) == 3
    assert address(6, 3) == 0x37  # notes §1.5: group 3, slave 6 -> n = 7 -> 0x37
    assert address(1, 1) == 0x12
    for group in range(8):
        for index in range(1, 17):
            assert module_position(address(index, group)) == (index, group)
    assert module_position(1) == (1, 0)
    for bad in ((0, 0), (17, 0), (1, 8), (1, -1)):
        with pytest.raises(ValueError):
            address(*bad)
    with pytest.raises(ValueError):
        module_position(0)


# --------------------------------------------------------------------------- responses


def test_rs_42_b_spec_v28() -> None:
    response = decode_response(Command.GET_ANALOG_VALUES, RS_42_B)
    assert isinstance(response, AnalogResponse)
    assert (response.adr, response.info_flag, response.command) == (1, 0x11, 1)
    assert not response.all_modules
    (record,) = response.records
    assert record.cell_voltages == SPEC_CELLS
    assert record.temperatures == (28.0, 28.0, 28.0, 29.0, 29.0)
    assert (record.current, record.voltage) == (0.0, 50.981)
    assert (record.remaining_capacity, record.user_defined, record.full_capacity) == (49.0, 2, 50.0)
    assert record.cycles == 2
    assert rs485.encode_response(response) == RS_42_B


def test_rs_42_c_all_modules_us2000() -> None:
    response = decode_response(Command.GET_ANALOG_VALUES, RS_42_C, all_modules=True)
    assert isinstance(response, AnalogResponse)
    assert response.info_flag == 0x11
    assert response.command == 3
    assert response.all_modules
    cells = [
        _volts(3303, 3304, 3302, 3303, 3304, 3304, 3304, 3302, 3301, 3302, 3304, 3303, 3306,
               3301, 3302),
        _volts(3298, 3302, 3302, 3297, 3301, 3303, 3302, 3299, 3298, 3301, 3299, 3305, 3303,
               3305, 3305),
        _volts(3298, 3301, 3301, 3298, 3299, 3299, 3300, 3301, 3302, 3302, 3299, 3300, 3300,
               3302, 3302),
    ]  # fmt: skip
    temps = [(23.0, 22.0, 22.0, 22.0, 22.0)] * 2 + [(23.0, 21.0, 21.0, 21.0, 21.0)]
    currents = [-2.6, -2.5, -2.7]
    voltages = [49.545, 49.52, 49.504]
    for record, c, t, i, v in zip(response.records, cells, temps, currents, voltages, strict=True):
        assert record.cell_voltages == c
        assert record.temperatures == t
        assert (record.current, record.voltage) == (i, v)
        assert (record.remaining_capacity, record.full_capacity) == (33.5, 50.0)
        assert (record.user_defined, record.cycles) == (2, 31)
    # Inferred without the request too, and re-encoded byte for byte.
    assert decode_response(Command.GET_ANALOG_VALUES, RS_42_C) == response
    assert rs485.encode_analog_response(2, response.records, all_modules=True) == RS_42_C
    modules = rs485.modules_from_analog(response)
    assert [m.key for m in modules] == [(0, 1), (0, 2), (0, 3)]
    assert modules[0].soc == 67.0
    assert modules[0].cycles == 31


def test_rs_42_d_all_modules_us3000() -> None:
    response = decode_response(Command.GET_ANALOG_VALUES, RS_42_D, all_modules=True)
    assert isinstance(response, AnalogResponse)
    assert response.command == 4
    assert len(response.records) == 4
    first = response.records[0]
    assert first.cell_voltages == _volts(
        3325, 3324, 3324, 3323, 3324, 3323, 3325, 3324, 3324, 3323, 3322, 3325, 3323, 3326, 3322
    )
    assert first.temperatures == (31.0, 29.0, 29.0, 29.0, 29.0)
    expected = [  # current, voltage, cycles, remaining
        (0.0, 49.857, 47, 61.42),
        (-6.8, 49.586, 40, 62.16),
        (-7.3, 49.592, 113, 59.2),
        (-6.9, 49.593, 107, 60.68),
    ]
    for record, (i, v, n, rem) in zip(response.records, expected, strict=True):
        assert (record.current, record.voltage, record.cycles) == (i, v, n)
        assert (record.remaining_capacity, record.full_capacity) == (rem, 74.0)
        assert record.user_defined == 4
    assert response.records[3].temperatures == (30.0, 28.0, 28.0, 28.0, 27.0)
    assert response.records[1].cell_voltages[-1] == 3.304
    assert rs485.encode_response(response) == RS_42_D
    assert decode_response(0x42, RS_42_D).all_modules


def test_rs_42_f_up2500_eight_cells() -> None:
    response = decode_response(Command.GET_ANALOG_VALUES, RS_42_F)
    assert isinstance(response, AnalogResponse)
    assert response.info_flag == 0x10
    assert response.command == 2
    (record,) = response.records
    assert record.cell_voltages == _volts(3330, 3330, 3330, 3331, 3328, 3329, 3329, 3331)
    assert record.temperatures == (21.0, 19.0, 19.0, 19.0, 20.0)
    assert (record.current, record.voltage, record.cycles) == (-0.6, 26.638, 0)
    assert (record.remaining_capacity, record.full_capacity) == (95.46, 111.0)
    assert rs485.encode_response(response) == RS_42_F


def test_rs_42_g_us2kbpl_model_mapping() -> None:
    response = decode_response(Command.GET_ANALOG_VALUES, RS_42_G)
    assert isinstance(response, AnalogResponse)
    assert response.info_flag == 0x00
    assert response.command == 2
    (record,) = response.records
    assert record.cell_voltages == _volts(
        3359, 3360, 3360, 3360, 3360, 3360, 3361, 3360, 3360, 3361, 3362, 3360, 3362, 3362, 3361
    )
    assert record.temperatures == (29.0, 26.0, 26.0, 26.0, 26.0)
    assert (record.current, record.voltage) == (2.1, 50.408)
    assert (record.remaining_capacity, record.full_capacity, record.cycles) == (35.5, 50.0, 79)
    assert rs485.encode_analog_response(2, [record], all_modules=False, info_flag=0) == RS_42_G
    (module,) = rs485.modules_from_analog(response)
    assert module == Module(
        index=1,
        voltage=50.408,
        current=2.1,
        temperature=29.0,
        temperatures=(29.0, 26.0, 26.0, 26.0, 26.0),
        temperature_min=26.0,
        temperature_max=26.0,
        cell_voltages=record.cell_voltages,
        cell_voltage_min=3.359,
        cell_voltage_max=3.362,
        soc=71.0,
        cycles=79,
        remaining_capacity=35.5,
        full_capacity=50.0,
    )
    assert module.mosfet_temperature is None  # five sensors: no MOSFET reading


def test_six_sensors_give_mosfet_temperature_and_groups_place_modules() -> None:
    record = rs485.AnalogRecord(
        cell_voltages=(3.3,) * 15,
        temperatures=(30.0, 25.0, 26.0, 27.0, 24.0, 41.5),
        current=-10.5,
        voltage=49.5,
        remaining_capacity=50.0,
        full_capacity=100.0,
        cycles=12,
        user_defined=4,
    )
    raw = rs485.encode_analog_response(address(3, 1), [record], all_modules=False)
    response = decode_response(Command.GET_ANALOG_VALUES, raw)
    assert isinstance(response, AnalogResponse)
    (module,) = rs485.modules_from_analog(response)
    assert module.key == (1, 3)
    assert module.mosfet_temperature == 41.5
    assert module.temperature == 30.0
    assert (module.temperature_min, module.temperature_max) == (24.0, 27.0)
    assert module.soc == 50.0


def test_rs_44_a_32_byte_layout() -> None:
    response = decode_response(Command.GET_ALARM_INFO, RS_44_A)
    assert isinstance(response, AlarmResponse)
    assert (response.info_flag, response.command, response.all_modules) == (0x00, 2, False)
    (record,) = response.records
    assert record.cell_states == (LimitState.NORMAL,) * 15
    assert record.temperature_states == (LimitState.NORMAL,) * 5
    assert record.charge_current_state is LimitState.NORMAL
    assert record.voltage_state is LimitState.NORMAL
    assert record.discharge_current_state is LimitState.NORMAL
    statuses = (record.status1, record.status2, record.status3, record.status4, record.status5)
    assert statuses == (0x00, 0x0E, 0x80, 0x00, 0x00)
    assert record.extra == b""
    assert record.charge_mosfet
    assert record.discharge_mosfet
    assert record.using_battery_power
    assert record.charging
    assert not record.discharging
    assert not record.fully_charged
    assert rs485.encode_alarm_response(2, [record], all_modules=False, info_flag=0) == RS_44_A
    module = rs485.apply_alarm(Module(index=1), record)
    assert module.protections == frozenset()
    assert module.alarms == frozenset()
    assert module.state == ModuleState.CHARGE
    assert module.charge_mosfet is True
    assert module.discharge_mosfet is True
    assert module.fully_charged is False
    assert module.voltage_state is LimitState.NORMAL
    assert module.current_state is LimitState.NORMAL
    assert module.temperature_state is LimitState.NORMAL


def test_rs_44_b_33_byte_layout_tolerates_trailing_byte() -> None:
    response = decode_response(Command.GET_ALARM_INFO, RS_44_B)
    assert isinstance(response, AlarmResponse)
    assert (response.info_flag, response.command) == (0x10, 2)
    (record,) = response.records
    statuses = (record.status1, record.status2, record.status3, record.status4, record.status5)
    assert statuses == (0x00, 0x0E, 0x00, 0x00, 0x00)
    assert record.extra == b"\x00"
    assert rs485.encode_response(response) == RS_44_B
    assert rs485.apply_alarm(Module(index=1), record).state == ModuleState.IDLE


def test_alarm_states_and_status_bits_map_to_named_flags() -> None:
    record = AlarmRecord(
        cell_states=(LimitState.NORMAL, LimitState.HIGH) + (LimitState.NORMAL,) * 12
        + (LimitState.LOW, LimitState.ERROR),
        temperature_states=(LimitState.NORMAL, LimitState.HIGH, LimitState.NORMAL,
                            LimitState.LOW, LimitState.ERROR, LimitState.HIGH),
        charge_current_state=LimitState.HIGH,
        voltage_state=LimitState.LOW,
        discharge_current_state=LimitState.HIGH,
        status1=0xF6,  # every protection bit but module over-voltage (contradicts UV)
        status2=0x08,
        status3=0x49,
        status4=0x01,
        status5=0x80,
    )  # fmt: skip
    raw = rs485.encode_alarm_response(2, [record], all_modules=False)
    (decoded,) = rs485.decode_alarm(decode_frame(raw)).records
    assert decoded == record
    assert decoded.cell_errors == (1, 16)
    assert decoded.status_protections == {
        Protection.MODULE_UNDER_VOLTAGE,
        Protection.CHARGE_OVER_TEMPERATURE,
        Protection.DISCHARGE_OVER_TEMPERATURE,
        Protection.DISCHARGE_OVER_CURRENT,
        Protection.CHARGE_OVER_CURRENT,
        Protection.CELL_UNDER_VOLTAGE,
    }
    fields = rs485.alarm_fields(decoded)
    assert fields["protections"] == decoded.status_protections | {
        Protection.CELL_OVER_VOLTAGE,
        Protection.OVER_TEMPERATURE,
        Protection.UNDER_TEMPERATURE,
        Protection.MOSFET_OVER_TEMPERATURE,
    }
    assert fields["alarms"] == {Alarm.CELL_VOLTAGE_ERROR, Alarm.TEMPERATURE_SENSOR_ERROR}
    assert fields["charge_mosfet"] is False
    assert fields["discharge_mosfet"] is False
    assert fields["fully_charged"] is True
    assert fields["state"] == "discharge"
    assert fields["current_state"] is LimitState.HIGH
    assert fields["temperature_state"] is LimitState.ERROR
    assert decoded.buzzer_on
    assert not decoded.heater_on


def test_undocumented_state_byte_is_an_error_state() -> None:
    info = bytes([0x10, 2, 1, 0x07, 1, 0x00, 0, 0, 0, 0, 0x0E, 0, 0, 0])
    raw = rs485.encode_frame(0x20, 2, 0x46, 0, info)
    (record,) = rs485.decode_alarm(decode_frame(raw)).records
    assert record.cell_states == (LimitState.ERROR,)


def test_alarm_all_modules_with_per_record_trailer() -> None:
    one = AlarmRecord(
        cell_states=(LimitState.NORMAL,) * 15,
        temperature_states=(LimitState.NORMAL,) * 5,
        status2=0x0E,
        extra=b"\x00",
    )
    two = replace_state = AlarmRecord(
        cell_states=(LimitState.NORMAL,) * 15, temperature_states=(LimitState.NORMAL,) * 6,
        status1=0x04, status2=0x0C, extra=b"\x00")  # fmt: skip
    raw = rs485.encode_alarm_response(2, [one, two], all_modules=True)
    response = decode_response(Command.GET_ALARM_INFO, raw)
    assert isinstance(response, AlarmResponse)
    assert response.all_modules
    assert response.records == (one, replace_state)
    modules = rs485.modules_from_alarm(response)
    assert [m.key for m in modules] == [(0, 1), (0, 2)]
    assert modules[1].protections == {Protection.CHARGE_OVER_CURRENT}
    assert modules[1].charge_mosfet is False


def test_rs_92_vectors_and_bank_mapping() -> None:
    expected = {
        RS_92_A: (28.4, 23.2, 55.5, -55.5),
        RS_92_B: (53.25, 47.0, 25.0, -25.0),
        RS_92_C: (53.25, 45.0, 37.0, -37.0),
    }
    for raw, (cvl, dvl, ccl, dcl) in expected.items():
        response = decode_response(Command.GET_MANAGEMENT_INFO, raw)
        assert isinstance(response, ManagementInfoResponse)
        assert response.command == 2
        assert response.status == 0xC0
        assert (response.charge_voltage_limit, response.discharge_voltage_limit) == (cvl, dvl)
        assert (response.charge_current_limit, response.discharge_current_limit) == (ccl, dcl)
        assert response.charge_enabled
        assert response.discharge_enabled
        assert not (response.force_charge_1)
        assert not (response.force_charge_2)
        assert not response.full_charge_request
        assert rs485.encode_response(response) == raw
        bank = rs485.apply_management(Bank(), response)
        assert bank.discharge_current_limit == -dcl  # positive magnitude in the model
        assert bank.charge_current_limit == ccl
        assert bank.charge_voltage_limit == cvl
        assert bank.charge_enabled is True
        assert bank.full_charge_request is False
    status = rs485.management_status(charge_enabled=False, force_charge_1=True,
                                     force_charge_2=True, full_charge_request=True)  # fmt: skip
    assert status == 0x78
    raw = rs485.encode_management_info_response(
        2, charge_voltage_limit=53.25, discharge_voltage_limit=47.0, charge_current_limit=0.0,
        discharge_current_limit=-100.0, status=status,
    )  # fmt: skip
    bank = rs485.apply_management(Bank(), rs485.decode_management_info(decode_frame(raw)))
    assert (bank.charge_enabled, bank.discharge_enabled) == (False, True)
    assert bank.force_charge_1
    assert bank.force_charge_2
    assert bank.full_charge_request
    assert bank.charge_current_limit == 0.0
    assert bank.discharge_current_limit == 100.0


def test_rs_47_vectors() -> None:
    a = decode_response(Command.GET_SYSTEM_PARAMETERS, RS_47_A)
    assert isinstance(a, rs485.SystemParametersResponse)
    assert a.info_flag == 0x11
    assert (a.cell_high_voltage, a.cell_low_voltage, a.cell_under_voltage) == (3.65, 3.05, 2.9)
    assert (a.charge_high_temperature, a.charge_low_temperature) == (61.0, -11.0)
    assert a.charge_current_limit == 102.0
    assert (a.module_high_voltage, a.module_low_voltage, a.module_under_voltage) == (
        54.0, 46.0, 44.5,
    )  # fmt: skip
    assert (a.discharge_high_temperature, a.discharge_low_temperature) == (61.0, -11.0)
    assert a.discharge_current_limit == -100.0
    assert rs485.encode_response(a) == RS_47_A
    b = decode_response(Command.GET_SYSTEM_PARAMETERS, RS_47_B)
    assert isinstance(b, rs485.SystemParametersResponse)
    assert b.info_flag == 0x10
    assert b.cell_under_voltage == 2.8
    assert (b.charge_high_temperature, b.charge_low_temperature) == (60.0, -10.0)
    assert (b.charge_current_limit, b.discharge_current_limit) == (90.0, -90.0)
    assert b.module_under_voltage == 43.0
    assert rs485.encode_response(b) == RS_47_B
    assert ("charge_current_limit", "90") in rs485.system_parameters_extra(b)


@pytest.mark.parametrize(
    ("raw", "name", "version"),
    [(RS_51_A, "US2KBPL", (2, 3)), (RS_51_B, "US2000C", (1, 7)), (RS_51_C, "US2KBPL", (2, 4))],
)
def test_rs_51_vectors(raw: bytes, name: str, version: tuple[int, int]) -> None:
    info = decode_response(Command.GET_MANUFACTURER_INFO, raw)
    assert isinstance(info, rs485.ManufacturerInfoResponse)
    assert (info.device_name, info.software_version, info.manufacturer) == (name, version, "Pylon")
    assert info.software_version_text == f"{version[0]}.{version[1]}"
    assert rs485.encode_response(info) == raw


def test_rs_4f_vectors() -> None:
    version = decode_response(Command.GET_PROTOCOL_VERSION, RS_4F)
    assert isinstance(version, rs485.ProtocolVersionResponse)
    assert version.version == 0x20
    assert version.text == "2.0"
    assert version.adr == 2
    assert rs485.encode_protocol_version_response(2) == RS_4F


def test_rs_93_and_rs_96_vectors_and_identity() -> None:
    a = decode_response(Command.GET_SERIAL_NUMBER, RS_93_A)
    b = decode_response(Command.GET_SERIAL_NUMBER, RS_93_B)
    assert isinstance(a, rs485.SerialNumberResponse)
    assert isinstance(b, rs485.SerialNumberResponse)
    assert (a.command, a.serial_number) == (2, "HPTCR03171112590")
    assert (b.adr, b.command, b.serial_number) == (3, 3, "HPTBH02240A01235")
    assert rs485.encode_response(a) == RS_93_A
    assert rs485.encode_response(b) == RS_93_B
    padded = rs485.encode_frame(0x20, 2, 0x46, 0, b"\x02H222003C3222 \x00\x00\x00")
    assert rs485.decode_serial_number(decode_frame(padded)).serial_number == "H222003C3222"
    sw = decode_response(Command.GET_SOFTWARE_VERSION, RS_96_A)
    assert isinstance(sw, rs485.SoftwareVersionResponse)
    assert sw.command == 2
    assert sw.manufacturer_version_text == "2.3"
    assert sw.mainline_version_text == "0.6.5"
    assert rs485.encode_response(sw) == RS_96_A
    maker = decode_response(Command.GET_MANUFACTURER_INFO, RS_51_A)
    assert isinstance(maker, rs485.ManufacturerInfoResponse)
    module = rs485.apply_identity(Module(index=1), manufacturer_info=maker, serial=a, software=sw)
    assert (module.model, module.manufacturer, module.serial_number) == (
        "US2KBPL", "Pylontech", "HPTCR03171112590",
    )  # fmt: skip
    assert module.firmware == "2.3"
    assert ("mainline_version", "0.6.5") in module.extra
    bank = rs485.apply_identity(Bank(), manufacturer_info=maker)
    assert (bank.model, bank.firmware) == ("US2KBPL", "2.3")


@pytest.mark.parametrize(
    ("command", "info"),
    [
        (Command.GET_MANAGEMENT_INFO, b"\x02\xd0\x02\xb7\x98\x00\xfa\xff\x06"),
        (Command.GET_SERIAL_NUMBER, b"\x02"),
        (Command.GET_SOFTWARE_VERSION, b"\x02\x02\x03\x00\x06"),
        (Command.GET_MANUFACTURER_INFO, b"US2KBPL\x00\x00\x00\x02"),
        (Command.GET_SYSTEM_PARAMETERS, b"\x11" + b"\x00" * 23),
        (Command.GET_ANALOG_VALUES, b"\x11\x02\x0f" + b"\x0d\x00" * 14),
        (Command.GET_ANALOG_VALUES, b"\x11\x02\x01\x0d\x00\x00" + b"\x00" * 9),
        (Command.GET_ALARM_INFO, b"\x00\x02\x0f" + b"\x00" * 20),
        (Command.GET_ANALOG_VALUES, b"\x11"),
    ],
)
def test_short_info_raises_protocol_error(command: Command, info: bytes) -> None:
    raw = rs485.encode_frame(0x20, 2, 0x46, 0, info)
    with pytest.raises(ProtocolError, match="too short"):
        decode_response(command, raw)


def test_analog_layout_errors() -> None:
    bad_user_defined = bytearray(decode_frame(RS_42_G).info)
    bad_user_defined[2 + 1 + 30 + 1 + 10 + 6] = 3
    raw = rs485.encode_frame(0x20, 2, 0x46, 0, bytes(bad_user_defined))
    with pytest.raises(ProtocolError, match="user-defined item count 3"):
        decode_response(Command.GET_ANALOG_VALUES, raw)
    raw = rs485.encode_frame(0x20, 2, 0x46, 0, decode_frame(RS_42_G).info + b"\x00")
    with pytest.raises(ProtocolError, match="unexpected bytes"):
        decode_response(Command.GET_ANALOG_VALUES, raw, all_modules=False)
    with pytest.raises(ProtocolError, match="no decoder"):
        decode_response(0x94, RS_4F)


def test_inverse_helpers_round_trip_through_the_wire() -> None:
    module = Module(
        index=2,
        voltage=49.8,
        current=-12.3,
        temperatures=(30.0, 25.0, 25.0, 26.0, 25.0, 35.0),
        cell_voltages=(3.32,) * 14 + (3.35,),
        remaining_capacity=80.5,
        full_capacity=100.0,
        cycles=7,
        charge_mosfet=False,
        discharge_mosfet=True,
        protections=frozenset(
            {Protection.CELL_OVER_VOLTAGE, Protection.CHARGE_OVER_CURRENT,
             Protection.MOSFET_OVER_TEMPERATURE, Protection.UNDER_TEMPERATURE}
        ),
        alarms=frozenset({Alarm.CELL_VOLTAGE_ERROR}),
    )  # fmt: skip
    analog = rs485.analog_record_from_module(module)
    assert analog.user_defined == 4
    alarm = rs485.alarm_record_from_module(module)
    raw_a = rs485.encode_analog_response(3, [analog], all_modules=False)
    raw_b = rs485.encode_alarm_response(3, [alarm], all_modules=False)
    (back,) = rs485.modules_from_analog(rs485.decode_analog(decode_frame(raw_a)))
    back = rs485.apply_alarm(back, rs485.decode_alarm(decode_frame(raw_b)).records[0])
    assert back.key == (0, 2)
    assert (back.voltage, back.current, back.cycles) == (49.8, -12.3, 7)
    assert back.protections == module.protections
    assert back.alarms == module.alarms
    assert back.charge_mosfet is False
    assert back.discharge_mosfet is True
    assert back.state == ModuleState.DISCHARGE


# --------------------------------------------------------------------------- captures


def test_iter_capture_pairs_requests_and_continues_after_bad_lines() -> None:
    text = "\n".join(
        [
            "# T42 log",
            "~20024642C0040202FCD1\\r",
            RS_42_G.decode().strip(),
            "TX ~20024642E002FFFD09",
            "RX " + RS_42_C.decode().strip(),
            "",
            "~20024692E00202FD2E",
            "~20024600B014026EF05AA0022BFDD5C0F916",  # damaged checksum
            RS_93_A.decode(),  # no request: inferred from its shape
            "garbage without a frame",
            "~20024694E00202FD2C",  # a write request in a log
            RS_96_A.decode(),  # no request
            RS_44_B.decode(),  # no request: 0x44 shape
            RS_4F.decode(),  # empty INFO: 0x4F
            rs485.encode_error_response(2, 0x04).decode(),
            "~22014A42E00201FD28",
            RS_51_B.decode(),
        ]
    )
    entries = list(rs485.iter_capture(text))
    kinds = [(e.line, e.kind, e.command) for e in entries]
    assert kinds == [
        (2, "request", Command.GET_ANALOG_VALUES),
        (3, "response", Command.GET_ANALOG_VALUES),
        (4, "request", Command.GET_ANALOG_VALUES),
        (5, "response", Command.GET_ANALOG_VALUES),
        (7, "request", Command.GET_MANAGEMENT_INFO),
        (8, "error", None),
        (9, "response", Command.GET_SERIAL_NUMBER),
        (10, "error", None),
        (11, "error", None),
        (12, "response", Command.GET_SOFTWARE_VERSION),
        (13, "response", Command.GET_ALARM_INFO),
        (14, "response", Command.GET_PROTOCOL_VERSION),
        (15, "error", None),
        (16, "error", None),
        (17, "response", Command.GET_MANUFACTURER_INFO),
    ]
    assert isinstance(entries[3].response, AnalogResponse)
    assert entries[3].response.all_modules
    assert "CHKSUM" in (entries[5].error or "")
    assert entries[6].inferred
    assert "0x94" in (entries[8].error or "")
    assert "0x04" in (entries[12].error or "")
    assert "CID1 0x4A" in (entries[13].error or "")
    as_dict = entries[1].to_dict()
    assert as_dict["command"] == "0x42"
    assert as_dict["response"]["records"][0]["cycles"] == 79


def test_bank_from_one_poll() -> None:
    raws = [
        (Command.GET_PROTOCOL_VERSION, RS_4F, None),
        (Command.GET_MANUFACTURER_INFO, RS_51_A, None),
        (Command.GET_ANALOG_VALUES, RS_42_C, True),
        (Command.GET_ALARM_INFO, RS_44_A, False),
        (Command.GET_MANAGEMENT_INFO, RS_92_B, None),
        (Command.GET_SERIAL_NUMBER, RS_93_A, None),
        (Command.GET_SERIAL_NUMBER, RS_93_B, None),
        (Command.GET_SOFTWARE_VERSION, RS_96_A, None),
        (Command.GET_SYSTEM_PARAMETERS, RS_47_A, None),
    ]
    responses = [decode_response(c, raw, all_modules=many) for c, raw, many in raws]
    bank = rs485.bank_from_responses(responses)
    assert [m.key for m in bank.modules] == [(0, 1), (0, 2), (0, 3)]
    master, second, third = bank.modules
    assert master.serial_number == "HPTCR03171112590"
    assert second.serial_number == "HPTBH02240A01235"
    assert third.serial_number is None
    assert master.firmware == "2.3"
    assert master.state == ModuleState.CHARGE
    assert second.state is None  # no 0x44 for module 2
    assert ("charge_current_limit", "102") in master.extra
    assert bank.protocol_version == "2.0"
    # 0x51's "Pylon" is Pylontech's short form; every module of the stack gets the model.
    assert (bank.model, bank.manufacturer, bank.firmware) == ("US2KBPL", "Pylontech", "2.3")
    assert {(m.model, m.manufacturer) for m in bank.modules} == {("US2KBPL", "Pylontech")}
    assert bank.serial_number == "HPTCR03171112590"  # filled from the master by with_totals
    # The master's 0x92 is its own limits; with modules 2 and 3 unasked the bank's are unknown.
    assert (master.charge_current_limit, master.discharge_current_limit) == (25.0, 25.0)
    assert second.charge_current_limit is None
    assert bank.charge_current_limit is bank.discharge_current_limit is None
    assert bank.module_count == 3
    assert bank.current == -7.8
    assert bank.remaining_capacity == 100.5
    assert bank.full_capacity == 150.0
    assert bank.soc == 67.0
    assert bank.cell_voltage_min == 3.297
    assert bank.cell_voltage_max == 3.306
    raw_bank = rs485.bank_from_responses(responses, totals=False)
    assert raw_bank.voltage is None
    assert raw_bank.module_count is None


@pytest.mark.parametrize("command", [66.0, "0x42", "B", None, Command])
def test_non_integer_commands_are_refused(command: object) -> None:
    with pytest.raises(CommandNotAllowedError):
        encode_request(command, 2)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        decode_response(command, RS_4F)  # type: ignore[arg-type]
