"""Benchmark inputs: the reference frames and captures (docs/protocol-notes.md §4).

RS485 frames are verbatim reference vectors; the 16-module 0x42 answer is built with the
project's own encoder from the four real US3000C records of RS-42-D (each repeated four
times with the module voltage nudged so records differ), because no public 16-module
capture exists. Its layout is the documented one and every peer decodes it (checked).
"""

from __future__ import annotations

from dataclasses import replace

from ._core import ROOT, core_module

# RS-42-G: US2000B-Plus, one module, user-defined 2.
RS42_SINGLE = (
    b"~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21"
    b"050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594\r"
)
# RS-42-D: four US3000C modules, 0xFF all-modules answer, user-defined 4.
RS42_FOUR = (
    b"~2002460061DC11040F0CFD0CFC0CFC0CFB0CFC0CFB0CFD0CFC0CFC0CFB0CFA0CFD0CFB0CFE0CFA"
    b"050BE10BCD0BCD0BCD0BCD0000C2C1FFFF04FFFF002F00EFEC0121100F0CEB0CEB0CEB0CEA0CEA"
    b"0CEC0CEB0CEB0CE90CE80CE60CE90CE90CEA0CE8050BE10BCD0BCD0BCD0BCDFFBCC1B2FFFF04FFFF"
    b"002800F2D00121100F0CE80CE90CEA0CEA0CEA0CE90CEA0CEA0CEB0CEC0CEB0CEB0CEB0CEA0CEA"
    b"050BE10BC30BC30BC30BC3FFB7C1B8FFFF04FFFF007100E7400121100F0CE90CEC0CEB0CEA0CEA"
    b"0CEB0CE90CE80CEA0CEA0CEA0CEB0CEC0CEA0CEA050BD70BC30BC30BC30BB9FFBBC1B9FFFF04FFFF"
    b"006B00ED080121108D63\r"
)
# RS-44-B: US2000C alarm answer, 33-byte INFO (newer firmware, trailing 0x00).
RS44_SINGLE = (
    b"~20024600A04210020F000000000000000000000000000000050000000000000000000E00000000F108\r"
)
# RS-92-B and RS-47-A (US2KBPL): management info and system parameters.
RS92_SINGLE = b"~20024600B01402D002B79800FAFF06C0F92D\r"
RS47_SINGLE = b"~20024600B032110E420BEA0B540D0D0A3D03FCD2F0B3B0ADD40D0D0A3DFC18F23D\r"

# CAN-A1..A6: one broadcast cycle of a real US5000 stack (old firmware).
CAN_CYCLE: tuple[tuple[int, bytes], ...] = (
    (0x351, bytes.fromhex("1402C012C012C201")),
    (0x355, bytes.fromhex("58005E00")),
    (0x356, bytes.fromhex("7A13F2FE6B01")),
    (0x359, bytes.fromhex("0000000006504E")),
    (0x35C, bytes.fromhex("C000")),
    (0x35E, bytes.fromhex("50594C4F4E202020")),
)

CAPTURES = ROOT / "tests" / "core" / "captures" / "console"
# CON-1 (`pwr`, 4 modules + 12 absent slots, layout B) and CON-7 (`bat 1`, 15 cells).
PWR_CAPTURE = "con01_pwr_us5000_stack.txt"
BAT_CAPTURE = "con07_bat1_us5000.txt"


def console_capture(name: str) -> bytes:
    """A console transcript as the raw bytes the battery sent."""
    return (CAPTURES / name).read_bytes()


def rs42_sixteen() -> bytes:
    """A 16-module 0xFF answer (US3000C records, user-defined 4), built by our encoder."""
    rs485 = core_module("protocol.rs485")
    four = rs485.decode_analog(rs485.decode_frame(RS42_FOUR), all_modules=True).records
    records = [
        replace(record, voltage=round(record.voltage + 0.001 * copy, 3))
        for copy in range(4)
        for record in four
    ]
    return rs485.encode_analog_response(0x02, records, all_modules=True, info_flag=0x11)


def rs42_per_module(frame_all: bytes) -> list[bytes]:
    """The same 16 records as 16 single-module answers (how a per-address poller reads them)."""
    rs485 = core_module("protocol.rs485")
    response = rs485.decode_analog(rs485.decode_frame(frame_all), all_modules=True)
    return [
        rs485.encode_analog_response(0x02 + number, [record], all_modules=False)
        for number, record in enumerate(response.records)
    ]


def rs485_inputs() -> dict[str, list[bytes]]:
    """Case name -> the frames one decode of that case handles."""
    sixteen = rs42_sixteen()
    return {
        "rs485_42_1": [RS42_SINGLE],
        "rs485_42_16": [sixteen],
        "rs485_42_16_single": rs42_per_module(sixteen),
        "rs485_44": [RS44_SINGLE],
        "rs485_92": [RS92_SINGLE],
        "rs485_47": [RS47_SINGLE],
    }
