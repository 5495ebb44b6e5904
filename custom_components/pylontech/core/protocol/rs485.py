"""Pylontech low-voltage RS485 protocol (V2.8/V3.3): frames, read commands, typed responses.

A frame is ``~`` + ASCII hex (VER ADR CID1 CID2 LENGTH INFO CHKSUM) + CR; see
``protocols.md`` §1.2. This module is pure: no I/O, no Home Assistant. Layers:

* frame layer: :func:`encode_frame`, :func:`parse_frame` (framing checks only),
  :func:`decode_frame` (framing + dialect/RTN checks), :class:`FrameSplitter` for streams;
* requests: :class:`Command`, :data:`READ_COMMANDS`, :func:`encode_request` (read-only by
  construction), :func:`decode_request` (for the simulator), :func:`address`;
* typed responses with decoders (``decode_*``) and symmetric encoders (``encode_*_response``);
* mapping to the bank model (``module_from_analog``, ``apply_alarm``, ``apply_management``,
  ``apply_identity``, ``bank_from_responses`` for a whole poll) and the inverse helpers the
  simulator serves through (``analog_record_from_module``, ``alarm_record_from_module``);
* :func:`iter_capture` for ``scripts/decode``.

Decoders raise only :class:`ProtocolError` subclasses, whatever the input.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, replace
from enum import IntEnum
from functools import lru_cache
import re
import struct
from typing import Any, TypeAlias

from ..errors import (
    ChecksumError,
    CommandNotAllowedError,
    DialectError,
    ProtocolError,
    ResponseError,
)
from ..model import (
    Alarm,
    Bank,
    LimitState,
    Module,
    ModuleState,
    Protection,
    cell_extremes,
    merge_modules,
)

# --------------------------------------------------------------------------- frame layer

SOI = 0x7E  # "~", sent raw
EOI = 0x0D  # CR, sent raw
PYLONTECH_VER = 0x20  # VER of every genuine Pylontech LV response
CID1_BATTERY = 0x46  # "battery data", the only CID1 Pylontech LV uses
MAX_LENID = 0xFFF  # 12-bit LENID: ASCII characters of INFO
MAX_INFO_BYTES = MAX_LENID // 2  # 2047 decoded bytes (LENID must be even)
MIN_FRAME_LENGTH = 18  # "~" + 12 header chars + 4 CHKSUM + CR, empty INFO
MAX_FRAME_LENGTH = MIN_FRAME_LENGTH + MAX_LENID
ALL_MODULES = 0xFF  # command-info byte of the 0x42/0x44 all-modules query

#: RTN codes (CID2 position of responses), protocols.md §1.3.
RTN_MEANINGS: dict[int, str] = {
    0x00: "normal",
    0x01: "VER error",
    0x02: "CHKSUM error",
    0x03: "LCHKSUM error",
    0x04: "CID2 invalid",
    0x05: "command format error",
    0x06: "invalid data",
    0x90: "ADR error",
    0x91: "internal communication error",
}

_HEADER = struct.Struct(">BBBBH")  # VER ADR CID1 CID2 LENGTH, after hex decoding
_TEXT_FRAME = re.compile(r"~[0-9A-Fa-f]+")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. In a response ``cid2`` is the return code (RTN)."""

    ver: int
    adr: int
    cid1: int
    cid2: int
    info: bytes = b""

    @property
    def rtn(self) -> int:
        """The return code of a response (the CID2 position)."""
        return self.cid2


def lchksum(lenid: int) -> int:
    """LCHKSUM of a LENID: the 4-bit two's complement of the sum of its three nibbles."""
    return (-((lenid & 0xF) + ((lenid >> 4) & 0xF) + ((lenid >> 8) & 0xF))) & 0xF


def length_field(lenid: int) -> int:
    """The 16-bit LENGTH field (LCHKSUM << 12 | LENID) for a LENID."""
    if not 0 <= lenid <= MAX_LENID:
        raise ValueError(f"LENID {lenid} out of range 0..{MAX_LENID}")
    return (lchksum(lenid) << 12) | lenid


def checksum(text: bytes) -> int:
    """CHKSUM over the ASCII characters VER..INFO: 16-bit two's complement of their sum."""
    return (-sum(text)) & 0xFFFF


# Documented state-changing commands, named in refusals. A frame this package builds carries
# a read command (request) or a return code (response) as CID2; 0x91 is both a return code
# and "set baud", so it is allowed only without INFO.
_WRITE_COMMANDS: dict[int, str] = {
    0x91: "set communication rate",
    0x94: "set charge/discharge management info",
    0x95: "turn off module",
    0x99: "control command (buzzer)",
}


def encode_frame(ver: int, adr: int, cid1: int, cid2: int, info: bytes = b"") -> bytes:
    """Build a frame (uppercase hex). ``cid2`` is a read command or a return code.

    Raises ``CommandNotAllowedError`` for anything that could be a write request (0x94,
    0x95, 0x99, 0x91 with INFO, any other CID2), ``ValueError`` for out-of-range fields.
    """
    for name, value in (("VER", ver), ("ADR", adr), ("CID1", cid1), ("CID2", cid2)):
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{name} {value!r} is not a byte")
    if (cid2 not in _READ_CODES and cid2 not in RTN_MEANINGS) or (cid2 == 0x91 and info):
        what = _WRITE_COMMANDS.get(cid2, "not a read command or return code")
        raise CommandNotAllowedError(f"refusing to encode CID2 0x{cid2:02X} ({what})")
    if len(info) > MAX_INFO_BYTES:
        raise ValueError(f"INFO of {len(info)} bytes exceeds {MAX_INFO_BYTES}")
    body = b"%02X%02X%02X%02X%04X" % (ver, adr, cid1, cid2, length_field(2 * len(info)))
    body += binascii.b2a_hex(bytes(info)).upper()
    return b"~" + body + b"%04X" % checksum(body) + b"\r"


def parse_frame(
    raw: bytes | bytearray | memoryview | str, *, verify_checksum: bool = True
) -> Frame:
    """Check framing only (SOI/EOI, hex, LENGTH/LCHKSUM, LENID vs INFO, CHKSUM).

    Lowercase hex is accepted; the checksum is verified over the characters as received
    (or, for a log that was lower-cased, over their uppercase form).
    """
    if isinstance(raw, str):
        try:
            data = raw.encode("ascii")
        except UnicodeEncodeError:
            raise ProtocolError("frame contains non-ASCII characters") from None
    else:
        data = bytes(raw)
    size = len(data)
    if size < MIN_FRAME_LENGTH:
        raise ProtocolError(f"frame too short: {size} bytes, need at least {MIN_FRAME_LENGTH}")
    if size > MAX_FRAME_LENGTH:
        raise ProtocolError(f"frame too long: {size} bytes, at most {MAX_FRAME_LENGTH}")
    if data[0] != SOI:
        raise ProtocolError(f"frame does not start with '~' (SOI) but 0x{data[0]:02X}")
    if data[-1] != EOI:
        raise ProtocolError(f"frame does not end with CR (EOI) but 0x{data[-1]:02X}")
    try:
        ver, adr, cid1, cid2, length = _HEADER.unpack(binascii.a2b_hex(data[1:13]))
    except binascii.Error:
        raise ProtocolError("frame header is not hex") from None
    lenid = length & 0xFFF
    if length >> 12 != lchksum(lenid):
        raise ChecksumError(
            f"LCHKSUM mismatch: LENGTH 0x{length:04X} carries 0x{length >> 12:X}, "
            f"LENID {lenid} needs 0x{lchksum(lenid):X}"
        )
    if lenid % 2:
        raise ProtocolError(f"LENID {lenid} is odd (INFO must be whole bytes)")
    if size != MIN_FRAME_LENGTH + lenid:
        raise ProtocolError(
            f"frame length {size} does not match LENID {lenid} (expected "
            f"{MIN_FRAME_LENGTH + lenid})"
        )
    try:
        info = binascii.a2b_hex(data[13 : 13 + lenid])
        (sent,) = struct.unpack(">H", binascii.a2b_hex(data[13 + lenid : -1]))
    except binascii.Error:
        raise ProtocolError("frame INFO or CHKSUM is not hex") from None
    if verify_checksum:
        body = data[1 : 13 + lenid]
        computed = checksum(body)
        if sent != computed and sent != checksum(body.upper()):
            raise ChecksumError(
                f"CHKSUM mismatch: frame carries {sent:04X}, computed {computed:04X}"
            )
    return Frame(ver, adr, cid1, cid2, info)


def check_response(frame: Frame) -> Frame:
    """Reject look-alike dialects (``DialectError``) and non-zero RTN (``ResponseError``)."""
    if frame.ver != PYLONTECH_VER or frame.cid1 != CID1_BATTERY:
        raise DialectError(
            f"not a Pylontech LV response: VER 0x{frame.ver:02X} CID1 0x{frame.cid1:02X} "
            f"(expected VER 0x{PYLONTECH_VER:02X} CID1 0x{CID1_BATTERY:02X}); a "
            "Pylontech-compatible BMS speaking another dialect?"
        )
    if frame.cid2 != 0:
        raise ResponseError(frame.cid2, RTN_MEANINGS.get(frame.cid2, "unknown return code"))
    return frame


def decode_frame(
    raw: bytes | bytearray | memoryview | str,
    *,
    request: bool = False,
    verify_checksum: bool = True,
) -> Frame:
    """Decode a frame and check it is a genuine Pylontech one.

    Responses (default): VER must be 0x20 and CID1 0x46 (else ``DialectError``) and RTN 0
    (else ``ResponseError``). Requests (``request=True``): CID1 must be 0x46; VER is free
    (the battery ignores it). Framing faults raise ``ChecksumError``/``ProtocolError``.
    """
    frame = parse_frame(raw, verify_checksum=verify_checksum)
    if request:
        if frame.cid1 != CID1_BATTERY:
            raise DialectError(f"request CID1 0x{frame.cid1:02X} is not 0x{CID1_BATTERY:02X}")
        return frame
    return check_response(frame)


class FrameSplitter:
    """Cut a byte stream into candidate frames (``~`` ... CR), bounded.

    Bytes before ``~`` (0xFF idle bytes, stray CR/LF, partial frames) are dropped and
    counted in ``dropped_bytes``; a ``~`` restarts the candidate because it never occurs
    inside a frame. Pending data never exceeds ``max_frame`` bytes.
    """

    __slots__ = ("_buffer", "dropped_bytes", "frames", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME_LENGTH) -> None:
        """Create an empty splitter; ``max_frame`` bounds one candidate, CR included."""
        self._buffer = bytearray()
        self.max_frame = max_frame
        self.dropped_bytes = 0
        self.frames = 0

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the end of a frame."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget pending bytes (e.g. after a timeout); they count as dropped."""
        self.dropped_bytes += len(self._buffer)
        self._buffer.clear()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return the complete candidate frames, in order."""
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        while buffer:
            end = buffer.find(b"\r")
            scan_to = len(buffer) if end < 0 else end
            start = buffer.rfind(b"~", 0, scan_to)
            if start < 0:
                # No frame start before the next CR (or at all): all of it is noise.
                drop = len(buffer) if end < 0 else end + 1
                self.dropped_bytes += drop
                del buffer[:drop]
                continue
            if start:
                self.dropped_bytes += start
                del buffer[:start]
                end = -1 if end < 0 else end - start
            if end < 0:
                if len(buffer) >= self.max_frame:
                    # Longer than any frame and still no CR: discard and resync on the next "~".
                    self.dropped_bytes += len(buffer)
                    buffer.clear()
                break
            if end + 1 > self.max_frame:
                self.dropped_bytes += end + 1
            else:
                out.append(bytes(buffer[: end + 1]))
                self.frames += 1
            del buffer[: end + 1]
        return out


# --------------------------------------------------------------------------- requests


class Command(IntEnum):
    """Read-only commands (CID2 of a request) this package can send."""

    GET_ANALOG_VALUES = 0x42
    GET_ALARM_INFO = 0x44
    GET_SYSTEM_PARAMETERS = 0x47
    GET_PROTOCOL_VERSION = 0x4F
    GET_MANUFACTURER_INFO = 0x51
    GET_MANAGEMENT_INFO = 0x92
    GET_SERIAL_NUMBER = 0x93
    GET_SOFTWARE_VERSION = 0x96


#: The allow-list: the only commands ``encode_request`` will build.
READ_COMMANDS: frozenset[Command] = frozenset(Command)
_READ_CODES = frozenset(int(c) for c in Command)
# Requests whose INFO is the module's command byte (ADR); the others carry no INFO.
_ADDRESSED = frozenset(
    {
        Command.GET_ANALOG_VALUES,
        Command.GET_ALARM_INFO,
        Command.GET_MANAGEMENT_INFO,
        Command.GET_SERIAL_NUMBER,
        Command.GET_SOFTWARE_VERSION,
    }
)
_ALL_MODULES_OK = frozenset({Command.GET_ANALOG_VALUES, Command.GET_ALARM_INFO})


def _is_read_code(command: object) -> bool:
    # Exact ints only: no bools, floats or strings sneaking through int().
    return type(command) is int and command in _READ_CODES or isinstance(command, Command)


MAX_GROUP = 7  # DIP 2-4 of the master
MAX_INDEX = 16  # modules per group (US2000C/US3000C/US5000)


def address(index: int, group: int = 0) -> int:
    """RS485 ADR of a module: ``index + 1 + 0x10 * group`` (master index 1 -> ADR 2)."""
    if not 1 <= index <= MAX_INDEX:
        raise ValueError(f"module index {index} out of range 1..{MAX_INDEX}")
    if not 0 <= group <= MAX_GROUP:
        raise ValueError(f"group {group} out of range 0..{MAX_GROUP}")
    return index + 1 + 0x10 * group


def module_position(adr: int) -> tuple[int, int]:
    """Inverse of :func:`address`: ``(index, group)`` of an ADR.

    ADR 1 (the RS232 console-port host address, §1.5) is the module itself: ``(1, 0)``.
    """
    if adr == 1:
        return (1, 0)
    if not 2 <= adr <= address(MAX_INDEX, MAX_GROUP):
        raise ValueError(f"ADR 0x{adr:02X} is not a module address")
    group = (adr - 2) // 0x10
    return (adr - 1 - 0x10 * group, group)


def encode_request(
    command: Command | int,
    adr: int,
    *,
    info: int | None = None,
    ver: int = PYLONTECH_VER,
) -> bytes:
    """Build the documented request for a read command.

    INFO is the ADR byte for 0x42/0x44/0x92/0x93/0x96 (``info=0xFF`` asks 0x42/0x44 for all
    modules; another byte is allowed, §1.5 D6) and empty for 0x4F/0x51/0x47. Anything outside
    :data:`READ_COMMANDS` raises ``CommandNotAllowedError``: a write cannot be encoded.
    """
    if not _is_read_code(command):
        code = command if isinstance(command, int) else -1
        what = _WRITE_COMMANDS.get(code, "not in the read-only allow-list")
        raise CommandNotAllowedError(f"refusing to encode command {command!r} ({what})")
    command = Command(int(command))
    if not 0 <= adr <= 0xFF:
        raise ValueError(f"ADR {adr!r} is not a byte")
    if command in _ADDRESSED:
        byte = adr if info is None else info
        if not 0 <= byte <= 0xFF:
            raise ValueError(f"command byte {byte!r} is not a byte")
        if byte == ALL_MODULES and command not in _ALL_MODULES_OK:
            raise CommandNotAllowedError(f"{command.name} has no all-modules (0xFF) form")
        payload = bytes((byte,))
    else:
        if info is not None:
            raise CommandNotAllowedError(f"{command.name} carries no INFO")
        payload = b""
    return encode_frame(ver, adr, CID1_BATTERY, command, payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A decoded request (what the simulator receives)."""

    ver: int
    adr: int
    cid2: int
    info: bytes
    command: Command | None  # None: not a read command (write or unknown CID2)

    @property
    def target(self) -> int | None:
        """The command byte (module ADR or 0xFF), if the request carries one."""
        return self.info[0] if self.info else None

    @property
    def all_modules(self) -> bool:
        """True for the 0x42/0x44 all-modules form (INFO 0xFF)."""
        return self.command in _ALL_MODULES_OK and self.target == ALL_MODULES


def decode_request(raw: bytes | bytearray | memoryview | str) -> Request:
    """Decode a request frame. Unknown or write CID2 give ``command=None`` (answer RTN 0x04)."""
    frame = decode_frame(raw, request=True)
    command = Command(frame.cid2) if frame.cid2 in _READ_CODES else None
    return Request(ver=frame.ver, adr=frame.adr, cid2=frame.cid2, info=frame.info, command=command)


# --------------------------------------------------------------------------- value helpers

_KELVIN_OFFSET = 2731  # temperatures are 0.1 K with 273.1 K = 0 °C


def _celsius(raw: int) -> float:
    return (raw - _KELVIN_OFFSET) / 10


def _deci_kelvin(celsius: float) -> int:
    return round(celsius * 10) + _KELVIN_OFFSET


def _milli(value: float) -> int:
    return round(value * 1000)


def _deci(value: float) -> int:
    return round(value * 10)


@lru_cache(maxsize=64)
def _words(count: int, signed: bool) -> struct.Struct:
    return struct.Struct(f">{count}{'h' if signed else 'H'}")


def _need(info: bytes, offset: int, size: int, what: str) -> None:
    if offset + size > len(info):
        raise ProtocolError(
            f"INFO too short for {what}: needs {offset + size} bytes, has {len(info)}"
        )


def _ascii(data: bytes, pad: bytes) -> str:
    return data.rstrip(pad).decode("ascii", errors="replace")


def _version_text(parts: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in parts)


def _pack(fmt: struct.Struct, *values: int, what: str) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as err:
        raise ValueError(f"{what}: value out of range ({err})") from None


_STATE_FROM_BYTE: dict[int, LimitState] = {
    0x00: LimitState.NORMAL,
    0x01: LimitState.LOW,
    0x02: LimitState.HIGH,
    0xF0: LimitState.ERROR,
}
_STATE_TO_BYTE: dict[LimitState, int] = {v: k for k, v in _STATE_FROM_BYTE.items()}


def _state(byte: int) -> LimitState:
    # Undocumented (user-defined) state bytes are treated as errors: something is off.
    return _STATE_FROM_BYTE.get(byte, LimitState.ERROR)


# --------------------------------------------------------------------------- typed responses


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolVersionResponse:
    """0x4F: the protocol version is the response's VER byte (0x20 -> "2.0")."""

    adr: int
    version: int = PYLONTECH_VER

    @property
    def text(self) -> str:
        """Version as "major.minor" from the VER nibbles."""
        return f"{self.version >> 4}.{self.version & 0xF}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManufacturerInfoResponse:
    """0x51: device name, software version (major, minor) and manufacturer."""

    adr: int
    device_name: str
    software_version: tuple[int, int]
    manufacturer: str

    @property
    def software_version_text(self) -> str:
        """ "2.3" style."""
        return _version_text(self.software_version)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalogRecord:
    """One module's 0x42 record in SI units (V, A, °C, Ah).

    ``user_defined`` is the wire's item count: 2 (16-bit capacities) or 4 (the 16-bit
    capacity fields hold 0xFFFF placeholders and 24-bit capacities follow).
    """

    cell_voltages: tuple[float, ...]
    temperatures: tuple[float, ...]  # wire order: BMS, cells 1-4, 5-8, 9-12, 13-16, [MOSFET]
    current: float  # + = charge
    voltage: float
    remaining_capacity: float
    full_capacity: float
    cycles: int
    user_defined: int = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalogResponse:
    """0x42: INFOFLAG, command byte (ADR, or module count for 0xFF) and the records."""

    adr: int
    info_flag: int
    command: int
    all_modules: bool
    records: tuple[AnalogRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmRecord:
    """One module's 0x44 record: limit states and the five status bytes (raw).

    ``extra`` keeps undocumented bytes after Status 5 (newer firmware sends one 0x00).
    """

    cell_states: tuple[LimitState, ...]
    temperature_states: tuple[LimitState, ...]
    charge_current_state: LimitState = LimitState.NORMAL
    voltage_state: LimitState = LimitState.NORMAL
    discharge_current_state: LimitState = LimitState.NORMAL
    status1: int = 0
    status2: int = 0
    status3: int = 0
    status4: int = 0
    status5: int = 0
    extra: bytes = b""

    @property
    def status_protections(self) -> frozenset[Protection]:
        """Protections named by Status 1."""
        return frozenset(p for bit, p in _STATUS1_BITS if self.status1 & bit)

    @property
    def precharge_mosfet(self) -> bool:
        """Status 2 bit 0 (reserved by the spec)."""
        return bool(self.status2 & 0x01)

    @property
    def charge_mosfet(self) -> bool:
        """Status 2 bit 1: charge MOSFET on."""
        return bool(self.status2 & 0x02)

    @property
    def discharge_mosfet(self) -> bool:
        """Status 2 bit 2: discharge MOSFET on."""
        return bool(self.status2 & 0x04)

    @property
    def using_battery_power(self) -> bool:
        """Status 2 bit 3: the module runs on its own power."""
        return bool(self.status2 & 0x08)

    @property
    def charging(self) -> bool:
        """Status 3 bit 7: effective charge current (> 0.1 A)."""
        return bool(self.status3 & 0x80)

    @property
    def discharging(self) -> bool:
        """Status 3 bit 6: effective discharge current (< -0.1 A)."""
        return bool(self.status3 & 0x40)

    @property
    def heater_on(self) -> bool:
        """Status 3 bit 5 (reserved)."""
        return bool(self.status3 & 0x20)

    @property
    def fully_charged(self) -> bool:
        """Status 3 bit 3: SOC 100 %."""
        return bool(self.status3 & 0x08)

    @property
    def buzzer_on(self) -> bool:
        """Status 3 bit 0."""
        return bool(self.status3 & 0x01)

    @property
    def cell_errors(self) -> tuple[int, ...]:
        """1-based cells flagged by Status 4 (cells 1-8) and Status 5 (cells 9-16)."""
        bits = self.status4 | (self.status5 << 8)
        return tuple(k + 1 for k in range(16) if bits >> k & 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmResponse:
    """0x44: DATAFLAG, command byte (ADR, or module count for 0xFF) and the records."""

    adr: int
    info_flag: int
    command: int
    all_modules: bool
    records: tuple[AlarmRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemParametersResponse:
    """0x47: the module's limit settings, SI units, currents with their wire sign."""

    adr: int
    info_flag: int
    cell_high_voltage: float
    cell_low_voltage: float
    cell_under_voltage: float
    charge_high_temperature: float
    charge_low_temperature: float
    charge_current_limit: float
    module_high_voltage: float
    module_low_voltage: float
    module_under_voltage: float
    discharge_high_temperature: float
    discharge_low_temperature: float
    discharge_current_limit: float  # sent negative


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagementInfoResponse:
    """0x92: recommended limits (V, A; DCL with its wire sign, i.e. negative) and flags."""

    adr: int
    command: int
    charge_voltage_limit: float
    discharge_voltage_limit: float
    charge_current_limit: float
    discharge_current_limit: float
    status: int

    @property
    def charge_enabled(self) -> bool:
        """Bit 7: charge enable (0 = request stop charge)."""
        return bool(self.status & 0x80)

    @property
    def discharge_enabled(self) -> bool:
        """Bit 6: discharge enable."""
        return bool(self.status & 0x40)

    @property
    def force_charge_1(self) -> bool:
        """Bit 5: charge immediately I."""
        return bool(self.status & 0x20)

    @property
    def force_charge_2(self) -> bool:
        """Bit 4: charge immediately II."""
        return bool(self.status & 0x10)

    @property
    def full_charge_request(self) -> bool:
        """Bit 3: full-charge request (SOC not above 97 % within 30 days)."""
        return bool(self.status & 0x08)


def management_status(
    *,
    charge_enabled: bool = True,
    discharge_enabled: bool = True,
    force_charge_1: bool = False,
    force_charge_2: bool = False,
    full_charge_request: bool = False,
) -> int:
    """The 0x92 status byte for named flags."""
    return (
        0x80 * charge_enabled
        | 0x40 * discharge_enabled
        | 0x20 * force_charge_1
        | 0x10 * force_charge_2
        | 0x08 * full_charge_request
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialNumberResponse:
    """0x93: the module's serial number (console "Barcode")."""

    adr: int
    command: int
    serial_number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftwareVersionResponse:
    """0x96: manufacturer version (2 parts) and main-line version (3 parts)."""

    adr: int
    command: int
    manufacturer_version: tuple[int, int]
    mainline_version: tuple[int, int, int]

    @property
    def manufacturer_version_text(self) -> str:
        """ "2.3" style."""
        return _version_text(self.manufacturer_version)

    @property
    def mainline_version_text(self) -> str:
        """ "0.6.5" style."""
        return _version_text(self.mainline_version)


Response: TypeAlias = (
    ProtocolVersionResponse
    | ManufacturerInfoResponse
    | AnalogResponse
    | AlarmResponse
    | SystemParametersResponse
    | ManagementInfoResponse
    | SerialNumberResponse
    | SoftwareVersionResponse
)

# --------------------------------------------------------------------------- decoders

_MANUFACTURER = struct.Struct(">10sBB20s")
_SYSTEM_PARAMETERS = struct.Struct(">BHHhhhhHHHhhh")
_MANAGEMENT = struct.Struct(">BHHhhB")
_SOFTWARE = struct.Struct(">B2B3B")
_ANALOG_TAIL = struct.Struct(">hHHBHH")  # current, voltage, rem1, user-defined, total1, cycles
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")

_STATUS1_BITS: tuple[tuple[int, Protection], ...] = (
    (0x80, Protection.MODULE_UNDER_VOLTAGE),
    (0x40, Protection.CHARGE_OVER_TEMPERATURE),
    (0x20, Protection.DISCHARGE_OVER_TEMPERATURE),
    (0x10, Protection.DISCHARGE_OVER_CURRENT),
    (0x04, Protection.CHARGE_OVER_CURRENT),
    (0x02, Protection.CELL_UNDER_VOLTAGE),
    (0x01, Protection.MODULE_OVER_VOLTAGE),
)


def _frame_of(frame: Frame | bytes | str) -> Frame:
    if isinstance(frame, Frame):
        return check_response(frame)
    return decode_frame(frame)


def decode_protocol_version(frame: Frame) -> ProtocolVersionResponse:
    """0x4F: no INFO; the version is the VER byte."""
    frame = _frame_of(frame)
    return ProtocolVersionResponse(adr=frame.adr, version=frame.ver)


def decode_manufacturer_info(frame: Frame) -> ManufacturerInfoResponse:
    """0x51: 10-byte name (NUL padded), 2 version bytes, 20-byte manufacturer ("-" padded)."""
    frame = _frame_of(frame)
    _need(frame.info, 0, _MANUFACTURER.size, "0x51 manufacturer info")
    name, major, minor, maker = _MANUFACTURER.unpack_from(frame.info)
    return ManufacturerInfoResponse(
        adr=frame.adr,
        device_name=_ascii(name, b"\x00 "),
        software_version=(major, minor),
        manufacturer=_ascii(maker, b"\x00 -"),
    )


def _analog_record(info: bytes, offset: int) -> tuple[AnalogRecord, int]:
    _need(info, offset, 1, "0x42 cell count")
    cells = info[offset]
    offset += 1
    _need(info, offset, 2 * cells + 1, f"0x42 {cells} cell voltages")
    cell_mv = _words(cells, True).unpack_from(info, offset)
    offset += 2 * cells
    sensors = info[offset]
    offset += 1
    _need(info, offset, 2 * sensors + _ANALOG_TAIL.size, f"0x42 {sensors} temperatures and values")
    temps = _words(sensors, True).unpack_from(info, offset)
    offset += 2 * sensors
    current, voltage, remaining, user_defined, full, cycles = _ANALOG_TAIL.unpack_from(info, offset)
    offset += _ANALOG_TAIL.size
    if user_defined == 4:
        _need(info, offset, 6, "0x42 24-bit capacities")
        remaining = int.from_bytes(info[offset : offset + 3], "big")
        full = int.from_bytes(info[offset + 3 : offset + 6], "big")
        offset += 6
    elif user_defined != 2:
        raise ProtocolError(f"0x42 user-defined item count {user_defined} (expected 2 or 4)")
    record = AnalogRecord(
        cell_voltages=tuple(mv / 1000 for mv in cell_mv),
        temperatures=tuple(_celsius(t) for t in temps),
        current=current / 10,
        voltage=voltage / 1000,
        remaining_capacity=remaining / 1000,
        full_capacity=full / 1000,
        cycles=cycles,
        user_defined=user_defined,
    )
    return record, offset


def _records(
    info: bytes,
    parse: Callable[[bytes, int], tuple[Any, int]],
    count: int,
    *,
    separator_zero: bool = False,
) -> tuple[tuple[Any, ...], int]:
    offset = 2
    records = []
    for number in range(count):
        record, offset = parse(info, offset)
        # Newer 0x44 firmware ends each record with a 0x00; a record never starts with
        # 0 cells, so a 0x00 where the next record should start is that trailer.
        if separator_zero and number + 1 < count and offset < len(info) and info[offset] == 0:
            record = replace(record, extra=b"\x00")
            offset += 1
        records.append(record)
    return tuple(records), offset


def _multi(
    frame: Frame,
    parse: Callable[[bytes, int], tuple[Any, int]],
    all_modules: bool | None,
    what: str,
    *,
    tolerate_trailing: bool,
) -> tuple[int, int, bool, tuple[Any, ...], int]:
    info = frame.info
    _need(info, 0, 2, f"{what} header")
    flag, command = info[0], info[1]
    separator = what == "0x44"
    if all_modules is None:
        all_modules = False
        # Infer: a module count whose records fill the INFO exactly means the 0xFF form.
        # Command 1 at ADR 1 (RS232 host address) is the single form either way.
        if command and (command != frame.adr or command > 1):
            try:
                records, end = _records(info, parse, command, separator_zero=separator)
            except ProtocolError:
                pass
            else:
                if end == len(info) or (tolerate_trailing and end == len(info) - 1):
                    return flag, command, True, records, end
    count = command if all_modules else 1
    if all_modules and count == 0:
        return flag, command, True, (), 2
    records, end = _records(info, parse, count, separator_zero=separator)
    if end != len(info) and not tolerate_trailing:
        raise ProtocolError(f"{what}: {len(info) - end} unexpected bytes after the records")
    return flag, command, all_modules, records, end


def decode_analog(frame: Frame, *, all_modules: bool | None = None) -> AnalogResponse:
    """0x42: per-record counts (cells, temperatures, user-defined 2/4) drive the layout.

    ``all_modules`` tells whether the request was the 0xFF form; ``None`` infers it from the
    INFO shape. Bytes after the last record are an error (layouts are fully counted).
    """
    frame = _frame_of(frame)
    flag, command, many, records, _ = _multi(
        frame, _analog_record, all_modules, "0x42", tolerate_trailing=False
    )
    return AnalogResponse(
        adr=frame.adr, info_flag=flag, command=command, all_modules=many, records=records
    )


def _alarm_record(info: bytes, offset: int) -> tuple[AlarmRecord, int]:
    _need(info, offset, 1, "0x44 cell count")
    cells = info[offset]
    offset += 1
    _need(info, offset, cells + 1, f"0x44 {cells} cell states")
    cell_states = tuple(_state(b) for b in info[offset : offset + cells])
    offset += cells
    sensors = info[offset]
    offset += 1
    _need(info, offset, sensors + 8, f"0x44 {sensors} temperature states and status")
    temp_states = tuple(_state(b) for b in info[offset : offset + sensors])
    offset += sensors
    charge, volt, discharge, s1, s2, s3, s4, s5 = info[offset : offset + 8]
    record = AlarmRecord(
        cell_states=cell_states,
        temperature_states=temp_states,
        charge_current_state=_state(charge),
        voltage_state=_state(volt),
        discharge_current_state=_state(discharge),
        status1=s1,
        status2=s2,
        status3=s3,
        status4=s4,
        status5=s5,
    )
    return record, offset + 8


def decode_alarm(frame: Frame, *, all_modules: bool | None = None) -> AlarmResponse:
    """0x44: states and Status 1-5, read positionally; trailing bytes kept in ``extra``."""
    frame = _frame_of(frame)
    flag, command, many, records, end = _multi(
        frame, _alarm_record, all_modules, "0x44", tolerate_trailing=True
    )
    if records and end < len(frame.info):
        records = (*records[:-1], replace(records[-1], extra=frame.info[end:]))
    return AlarmResponse(
        adr=frame.adr, info_flag=flag, command=command, all_modules=many, records=records
    )


def decode_system_parameters(frame: Frame) -> SystemParametersResponse:
    """0x47: INFOFLAG + 12 fixed-point values."""
    frame = _frame_of(frame)
    _need(frame.info, 0, _SYSTEM_PARAMETERS.size, "0x47 system parameters")
    v = _SYSTEM_PARAMETERS.unpack_from(frame.info)
    return SystemParametersResponse(
        adr=frame.adr,
        info_flag=v[0],
        cell_high_voltage=v[1] / 1000,
        cell_low_voltage=v[2] / 1000,
        cell_under_voltage=v[3] / 1000,
        charge_high_temperature=_celsius(v[4]),
        charge_low_temperature=_celsius(v[5]),
        charge_current_limit=v[6] / 10,
        module_high_voltage=v[7] / 1000,
        module_low_voltage=v[8] / 1000,
        module_under_voltage=v[9] / 1000,
        discharge_high_temperature=_celsius(v[10]),
        discharge_low_temperature=_celsius(v[11]),
        discharge_current_limit=v[12] / 10,
    )


def decode_management_info(frame: Frame) -> ManagementInfoResponse:
    """0x92: command byte, CVL, DVL (mV), CCL, DCL (0.1 A, DCL negative), status byte."""
    frame = _frame_of(frame)
    _need(frame.info, 0, _MANAGEMENT.size, "0x92 management info")
    command, cvl, dvl, ccl, dcl, status = _MANAGEMENT.unpack_from(frame.info)
    return ManagementInfoResponse(
        adr=frame.adr,
        command=command,
        charge_voltage_limit=cvl / 1000,
        discharge_voltage_limit=dvl / 1000,
        charge_current_limit=ccl / 10,
        discharge_current_limit=dcl / 10,
        status=status,
    )


def decode_serial_number(frame: Frame) -> SerialNumberResponse:
    """0x93: command byte + ASCII serial (16 bytes documented; NULs/spaces stripped)."""
    frame = _frame_of(frame)
    _need(frame.info, 0, 2, "0x93 serial number")
    serial = frame.info[1:].replace(b"\x00", b" ").strip(b" ")
    return SerialNumberResponse(
        adr=frame.adr,
        command=frame.info[0],
        serial_number=serial.decode("ascii", errors="replace"),
    )


def decode_software_version(frame: Frame) -> SoftwareVersionResponse:
    """0x96: command byte, manufacturer version (2 bytes), main-line version (3 bytes)."""
    frame = _frame_of(frame)
    _need(frame.info, 0, _SOFTWARE.size, "0x96 software version")
    command, m1, m2, l1, l2, l3 = _SOFTWARE.unpack_from(frame.info)
    return SoftwareVersionResponse(
        adr=frame.adr,
        command=command,
        manufacturer_version=(m1, m2),
        mainline_version=(l1, l2, l3),
    )


DECODERS: dict[Command, Callable[[Frame], Any]] = {
    Command.GET_PROTOCOL_VERSION: decode_protocol_version,
    Command.GET_MANUFACTURER_INFO: decode_manufacturer_info,
    Command.GET_ANALOG_VALUES: decode_analog,
    Command.GET_ALARM_INFO: decode_alarm,
    Command.GET_SYSTEM_PARAMETERS: decode_system_parameters,
    Command.GET_MANAGEMENT_INFO: decode_management_info,
    Command.GET_SERIAL_NUMBER: decode_serial_number,
    Command.GET_SOFTWARE_VERSION: decode_software_version,
}


def decode_response(
    command: Command | int,
    raw: bytes | bytearray | memoryview | str | Frame,
    *,
    all_modules: bool | None = None,
) -> Response:
    """Decode a raw response (or a ``Frame``) to the typed response of ``command``."""
    if not _is_read_code(command):
        raise ProtocolError(f"no decoder for CID2 {command!r}")
    cmd = Command(int(command))
    frame = check_response(raw) if isinstance(raw, Frame) else decode_frame(raw)
    if cmd in _ALL_MODULES_OK:
        decoder: Callable[..., Response] = DECODERS[cmd]
        return decoder(frame, all_modules=all_modules)
    return DECODERS[cmd](frame)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- encoders


def _response(adr: int, info: bytes, *, ver: int = PYLONTECH_VER) -> bytes:
    return encode_frame(ver, adr, CID1_BATTERY, 0x00, info)


def encode_error_response(adr: int, rtn: int) -> bytes:
    """A response carrying a non-zero return code (e.g. 0x04 "CID2 invalid")."""
    if rtn == 0 or rtn not in RTN_MEANINGS:
        raise ValueError(f"0x{rtn:02X} is not an error return code")
    return encode_frame(PYLONTECH_VER, adr, CID1_BATTERY, rtn, b"")


def encode_protocol_version_response(adr: int, *, version: int = PYLONTECH_VER) -> bytes:
    """0x4F response: empty INFO, VER = version."""
    return _response(adr, b"", ver=version)


def _fixed_ascii(text: str, size: int, pad: bytes, what: str) -> bytes:
    data = text.encode("ascii")
    if len(data) > size:
        raise ValueError(f"{what} {text!r} longer than {size} characters")
    return data.ljust(size, pad)


def encode_manufacturer_info_response(
    adr: int, *, device_name: str, software_version: tuple[int, int], manufacturer: str
) -> bytes:
    """0x51 response: name NUL-padded to 10, version bytes, manufacturer "-"-padded to 20."""
    info = _pack(
        _MANUFACTURER,
        _fixed_ascii(device_name, 10, b"\x00", "device name"),  # type: ignore[arg-type]
        *software_version,
        _fixed_ascii(manufacturer, 20, b"-", "manufacturer"),  # type: ignore[arg-type]
        what="0x51",
    )
    return _response(adr, info)


def _analog_record_bytes(record: AnalogRecord) -> bytes:
    cells = len(record.cell_voltages)
    sensors = len(record.temperatures)
    if cells > 0xFF or sensors > 0xFF:
        raise ValueError("too many cells or temperatures for one record")
    remaining = _milli(record.remaining_capacity)
    full = _milli(record.full_capacity)
    if record.user_defined == 4:
        rem1 = full1 = 0xFFFF
    elif record.user_defined == 2:
        rem1, full1 = remaining, full
    else:
        raise ValueError(f"user_defined must be 2 or 4, not {record.user_defined}")
    parts = [
        bytes((cells,)),
        _pack(_words(cells, True), *(_milli(v) for v in record.cell_voltages), what="cells"),
        bytes((sensors,)),
        _pack(_words(sensors, True), *(_deci_kelvin(t) for t in record.temperatures), what="temps"),
        _pack(
            _ANALOG_TAIL,
            _deci(record.current),
            _milli(record.voltage),
            rem1,
            record.user_defined,
            full1,
            record.cycles,
            what="0x42 values",
        ),
    ]
    if record.user_defined == 4:
        if not (0 <= remaining < 1 << 24 and 0 <= full < 1 << 24):
            raise ValueError("capacity out of 24-bit range")
        parts.append(remaining.to_bytes(3, "big") + full.to_bytes(3, "big"))
    return b"".join(parts)


def encode_analog_response(
    adr: int,
    records: Iterable[AnalogRecord],
    *,
    all_modules: bool,
    info_flag: int = 0x11,
    command: int | None = None,
) -> bytes:
    """0x42 response. ``command`` defaults to the ADR (single) or the record count (0xFF)."""
    records = tuple(records)
    if not all_modules and len(records) != 1:
        raise ValueError("a single-module 0x42 response carries exactly one record")
    if command is None:
        command = len(records) if all_modules else adr
    body = b"".join(_analog_record_bytes(r) for r in records)
    return _response(adr, bytes((info_flag, command)) + body)


def _alarm_record_bytes(record: AlarmRecord) -> bytes:
    cells = len(record.cell_states)
    sensors = len(record.temperature_states)
    if cells > 0xFF or sensors > 0xFF:
        raise ValueError("too many cells or temperatures for one record")
    return (
        bytes((cells, *(_STATE_TO_BYTE[s] for s in record.cell_states)))
        + bytes((sensors, *(_STATE_TO_BYTE[s] for s in record.temperature_states)))
        + bytes(
            (
                _STATE_TO_BYTE[record.charge_current_state],
                _STATE_TO_BYTE[record.voltage_state],
                _STATE_TO_BYTE[record.discharge_current_state],
                record.status1,
                record.status2,
                record.status3,
                record.status4,
                record.status5,
            )
        )
        + record.extra
    )


def encode_alarm_response(
    adr: int,
    records: Iterable[AlarmRecord],
    *,
    all_modules: bool,
    info_flag: int = 0x10,
    command: int | None = None,
) -> bytes:
    """0x44 response; each record's ``extra`` bytes follow its Status 5."""
    records = tuple(records)
    if not all_modules and len(records) != 1:
        raise ValueError("a single-module 0x44 response carries exactly one record")
    if command is None:
        command = len(records) if all_modules else adr
    body = b"".join(_alarm_record_bytes(r) for r in records)
    return _response(adr, bytes((info_flag, command)) + body)


def encode_system_parameters_response(adr: int, params: SystemParametersResponse) -> bytes:
    """0x47 response from a ``SystemParametersResponse`` (its ``adr`` is ignored)."""
    p = params
    info = _pack(
        _SYSTEM_PARAMETERS,
        p.info_flag,
        _milli(p.cell_high_voltage),
        _milli(p.cell_low_voltage),
        _milli(p.cell_under_voltage),
        _deci_kelvin(p.charge_high_temperature),
        _deci_kelvin(p.charge_low_temperature),
        _deci(p.charge_current_limit),
        _milli(p.module_high_voltage),
        _milli(p.module_low_voltage),
        _milli(p.module_under_voltage),
        _deci_kelvin(p.discharge_high_temperature),
        _deci_kelvin(p.discharge_low_temperature),
        _deci(p.discharge_current_limit),
        what="0x47",
    )
    return _response(adr, info)


def encode_management_info_response(
    adr: int,
    *,
    charge_voltage_limit: float,
    discharge_voltage_limit: float,
    charge_current_limit: float,
    discharge_current_limit: float,
    status: int,
    command: int | None = None,
) -> bytes:
    """0x92 response. ``discharge_current_limit`` is sent as given (negative on the wire)."""
    info = _pack(
        _MANAGEMENT,
        adr if command is None else command,
        _milli(charge_voltage_limit),
        _milli(discharge_voltage_limit),
        _deci(charge_current_limit),
        _deci(discharge_current_limit),
        status,
        what="0x92",
    )
    return _response(adr, info)


def encode_serial_number_response(
    adr: int, serial_number: str, *, command: int | None = None
) -> bytes:
    """0x93 response: command byte + serial, padded with NULs to 16 characters."""
    data = serial_number.encode("ascii").ljust(16, b"\x00")
    return _response(adr, bytes((adr if command is None else command,)) + data)


def encode_software_version_response(
    adr: int,
    *,
    manufacturer_version: tuple[int, int],
    mainline_version: tuple[int, int, int],
    command: int | None = None,
) -> bytes:
    """0x96 response: command byte, 2 manufacturer-version bytes, 3 main-line bytes."""
    info = _pack(
        _SOFTWARE,
        adr if command is None else command,
        *manufacturer_version,
        *mainline_version,
        what="0x96",
    )
    return _response(adr, info)


def encode_response(response: Response) -> bytes:
    """Encode any typed response (``decode_response(cmd, encode_response(r)) == r``)."""
    r = response
    if isinstance(r, ProtocolVersionResponse):
        return encode_protocol_version_response(r.adr, version=r.version)
    if isinstance(r, ManufacturerInfoResponse):
        return encode_manufacturer_info_response(
            r.adr,
            device_name=r.device_name,
            software_version=r.software_version,
            manufacturer=r.manufacturer,
        )
    if isinstance(r, AnalogResponse):
        return encode_analog_response(
            r.adr, r.records, all_modules=r.all_modules, info_flag=r.info_flag, command=r.command
        )
    if isinstance(r, AlarmResponse):
        return encode_alarm_response(
            r.adr, r.records, all_modules=r.all_modules, info_flag=r.info_flag, command=r.command
        )
    if isinstance(r, SystemParametersResponse):
        return encode_system_parameters_response(r.adr, r)
    if isinstance(r, ManagementInfoResponse):
        return encode_management_info_response(
            r.adr,
            charge_voltage_limit=r.charge_voltage_limit,
            discharge_voltage_limit=r.discharge_voltage_limit,
            charge_current_limit=r.charge_current_limit,
            discharge_current_limit=r.discharge_current_limit,
            status=r.status,
            command=r.command,
        )
    if isinstance(r, SerialNumberResponse):
        return encode_serial_number_response(r.adr, r.serial_number, command=r.command)
    if isinstance(r, SoftwareVersionResponse):
        return encode_software_version_response(
            r.adr,
            manufacturer_version=r.manufacturer_version,
            mainline_version=r.mainline_version,
            command=r.command,
        )
    raise TypeError(f"not an RS485 response: {type(response).__name__}")


# --------------------------------------------------------------------------- model mapping

MOSFET_SENSOR = 5  # 0-based: the 6th temperature (US5000) is the MOSFET sensor
_CELL_SENSORS = slice(1, 5)  # sensors 2-5 cover the cell groups


def module_from_analog(record: AnalogRecord, index: int, group: int = 0) -> Module:
    """A module from its 0x42 record.

    temperature = sensor 1 (BMS board); mosfet_temperature = 6th sensor when present;
    temperature_min/max = over the cell-group sensors 2-5; SOC = remaining / full * 100
    (None when full is 0); capacities in Ah; cell min/max from the cell voltages.
    """
    temps = record.temperatures
    cell_temps = temps[_CELL_SENSORS]
    low, high = cell_extremes(record.cell_voltages)
    full = record.full_capacity
    return Module(
        index=index,
        group=group,
        voltage=record.voltage,
        current=record.current,
        temperature=temps[0] if temps else None,
        temperatures=temps,
        temperature_min=min(cell_temps) if cell_temps else None,
        temperature_max=max(cell_temps) if cell_temps else None,
        mosfet_temperature=temps[MOSFET_SENSOR] if len(temps) > MOSFET_SENSOR else None,
        cell_voltages=record.cell_voltages,
        cell_voltage_min=low,
        cell_voltage_max=high,
        soc=round(100 * record.remaining_capacity / full, 1) if full > 0 else None,
        cycles=record.cycles,
        remaining_capacity=record.remaining_capacity,
        full_capacity=full,
    )


def response_positions(response: AnalogResponse | AlarmResponse) -> tuple[tuple[int, int], ...]:
    """``(index, group)`` of each record: ADR for single, 1..count in ADR's group for 0xFF."""
    index, group = module_position(response.adr) if response.adr >= 1 else (1, 0)
    if response.all_modules:
        return tuple((n + 1, group) for n in range(len(response.records)))
    if response.command >= 1:
        try:
            index, group = module_position(response.command)
        except ValueError:
            pass
    return ((index, group),)


def modules_from_analog(response: AnalogResponse) -> tuple[Module, ...]:
    """All modules of a 0x42 response, placed by :func:`response_positions`."""
    return tuple(
        module_from_analog(record, index, group)
        for record, (index, group) in zip(
            response.records, response_positions(response), strict=True
        )
    )


_SEVERITY = {LimitState.NORMAL: 0, LimitState.LOW: 1, LimitState.HIGH: 2, LimitState.ERROR: 3}


def _worst(states: Iterable[LimitState]) -> LimitState:
    return max(states, key=_SEVERITY.__getitem__, default=LimitState.NORMAL)


def alarm_fields(record: AlarmRecord) -> dict[str, Any]:
    """Model fields from a 0x44 record (the documented mapping):

    * cell state LOW/HIGH -> ``CELL_UNDER_VOLTAGE``/``CELL_OVER_VOLTAGE`` (states "act as
      protections", §1.7); ERROR -> ``Alarm.CELL_VOLTAGE_ERROR``;
    * temperature state LOW -> ``UNDER_TEMPERATURE``; HIGH -> ``OVER_TEMPERATURE`` (6th
      sensor: ``MOSFET_OVER_TEMPERATURE``); ERROR -> ``Alarm.TEMPERATURE_SENSOR_ERROR``;
    * module voltage LOW/HIGH -> ``MODULE_UNDER_VOLTAGE``/``MODULE_OVER_VOLTAGE``;
    * charge/discharge current HIGH -> ``CHARGE_OVER_CURRENT``/``DISCHARGE_OVER_CURRENT``
      (LOW has no documented meaning for a current and maps to nothing);
      voltage/current ERROR -> ``Alarm.GENERAL``;
    * Status 1 bits -> their protections; Status 4/5 cell bits -> ``CELL_VOLTAGE_ERROR``;
    * Status 2 -> charge/discharge MOSFET; Status 3 -> fully_charged and
      state charge/discharge/idle (effective current flags).

    ``current_state`` is the worse of the two current states; ``temperature_state`` the
    worst sensor state.
    """
    protections = set(record.status_protections)
    alarms: set[Alarm] = set()
    cells = set(record.cell_states)
    if LimitState.LOW in cells:
        protections.add(Protection.CELL_UNDER_VOLTAGE)
    if LimitState.HIGH in cells:
        protections.add(Protection.CELL_OVER_VOLTAGE)
    if LimitState.ERROR in cells or record.status4 or record.status5:
        alarms.add(Alarm.CELL_VOLTAGE_ERROR)
    for number, state in enumerate(record.temperature_states):
        if state is LimitState.LOW:
            protections.add(Protection.UNDER_TEMPERATURE)
        elif state is LimitState.HIGH:
            protections.add(
                Protection.MOSFET_OVER_TEMPERATURE
                if number == MOSFET_SENSOR
                else Protection.OVER_TEMPERATURE
            )
        elif state is LimitState.ERROR:
            alarms.add(Alarm.TEMPERATURE_SENSOR_ERROR)
    if record.voltage_state is LimitState.LOW:
        protections.add(Protection.MODULE_UNDER_VOLTAGE)
    elif record.voltage_state is LimitState.HIGH:
        protections.add(Protection.MODULE_OVER_VOLTAGE)
    if record.charge_current_state is LimitState.HIGH:
        protections.add(Protection.CHARGE_OVER_CURRENT)
    if record.discharge_current_state is LimitState.HIGH:
        protections.add(Protection.DISCHARGE_OVER_CURRENT)
    if LimitState.ERROR in (
        record.voltage_state,
        record.charge_current_state,
        record.discharge_current_state,
    ):
        alarms.add(Alarm.GENERAL)
    if record.charging:
        state = ModuleState.CHARGE
    elif record.discharging:
        state = ModuleState.DISCHARGE
    else:
        state = ModuleState.IDLE
    return {
        "cell_voltage_states": record.cell_states,
        "temperature_states": record.temperature_states,
        "voltage_state": record.voltage_state,
        "current_state": _worst((record.charge_current_state, record.discharge_current_state)),
        "temperature_state": _worst(record.temperature_states),
        "charge_mosfet": record.charge_mosfet,
        "discharge_mosfet": record.discharge_mosfet,
        "fully_charged": record.fully_charged,
        "state": str(state),
        "protections": frozenset(protections),
        "alarms": frozenset(alarms),
    }


def apply_alarm(module: Module, record: AlarmRecord) -> Module:
    """``module`` with the fields of a 0x44 record (see :func:`alarm_fields`)."""
    return replace(module, **alarm_fields(record))


def modules_from_alarm(response: AlarmResponse) -> tuple[Module, ...]:
    """Modules carrying only 0x44 fields, placed by :func:`response_positions`."""
    return tuple(
        apply_alarm(Module(index=index, group=group), record)
        for record, (index, group) in zip(
            response.records, response_positions(response), strict=True
        )
    )


def management_fields(response: ManagementInfoResponse) -> dict[str, Any]:
    """Bank fields from 0x92: limits (DCL as a positive magnitude) and request flags."""
    return {
        "charge_voltage_limit": response.charge_voltage_limit,
        "discharge_voltage_limit": response.discharge_voltage_limit,
        "charge_current_limit": response.charge_current_limit,
        "discharge_current_limit": abs(response.discharge_current_limit),
        "charge_enabled": response.charge_enabled,
        "discharge_enabled": response.discharge_enabled,
        "force_charge_1": response.force_charge_1,
        "force_charge_2": response.force_charge_2,
        "full_charge_request": response.full_charge_request,
    }


def apply_management(bank: Bank, response: ManagementInfoResponse) -> Bank:
    """``bank`` with the 0x92 limits and flags."""
    return replace(bank, **management_fields(response))


def identity_fields(
    *,
    manufacturer_info: ManufacturerInfoResponse | None = None,
    serial: SerialNumberResponse | None = None,
    software: SoftwareVersionResponse | None = None,
) -> dict[str, Any]:
    """Identity fields (valid for ``Module`` and ``Bank``) from 0x51/0x93/0x96.

    model = 0x51 device name; manufacturer = 0x51 manufacturer; serial_number = 0x93;
    firmware = 0x96 manufacturer version ("2.3"), else 0x51 software version. The 0x96
    main-line version goes to ``extra`` as ``("mainline_version", "0.6.5")`` by
    :func:`apply_identity`.
    """
    out: dict[str, Any] = {}
    if manufacturer_info is not None:
        if manufacturer_info.device_name:
            out["model"] = manufacturer_info.device_name
        if manufacturer_info.manufacturer:
            out["manufacturer"] = manufacturer_info.manufacturer
        out["firmware"] = manufacturer_info.software_version_text
    if serial is not None and serial.serial_number:
        out["serial_number"] = serial.serial_number
    if software is not None:
        out["firmware"] = software.manufacturer_version_text
    return out


def apply_identity(
    target: Any,
    *,
    manufacturer_info: ManufacturerInfoResponse | None = None,
    serial: SerialNumberResponse | None = None,
    software: SoftwareVersionResponse | None = None,
) -> Any:
    """``target`` (a ``Module`` or ``Bank``) with identity fields set (see :func:`identity_fields`)."""
    updates = identity_fields(manufacturer_info=manufacturer_info, serial=serial, software=software)
    if software is not None:
        extra = tuple(kv for kv in target.extra if kv[0] != "mainline_version")
        updates["extra"] = (*extra, ("mainline_version", software.mainline_version_text))
    return replace(target, **updates)


def system_parameters_extra(response: SystemParametersResponse) -> tuple[tuple[str, str], ...]:
    """0x47 limits as ``extra`` text pairs (the model has no fields for module settings)."""
    return tuple(
        (f.name, f"{getattr(response, f.name):g}")
        for f in fields(response)
        if f.name not in ("adr", "info_flag")
    )


def _identity_position(response: SerialNumberResponse | SoftwareVersionResponse) -> tuple[int, int]:
    # The command byte names the module (ADR); fall back to the frame's ADR.
    for adr in (response.command, response.adr):
        try:
            return module_position(adr)
        except ValueError:
            continue
    return (1, 0)


def bank_from_responses(responses: Iterable[Response], *, totals: bool = True) -> Bank:
    """Merge the typed responses of one poll into a ``Bank``.

    0x42 builds modules; 0x44 adds states/flags; 0x93/0x96 add module identity (placed by
    their command byte); 0x51 gives bank model/manufacturer/firmware; 0x4F the protocol
    version; 0x92 the bank limits and flags; 0x47 is kept in each module's ``extra`` only
    when that module is present. ``totals`` fills bank values from the modules
    (:meth:`Bank.with_totals`).
    """
    modules: dict[tuple[int, int], Module] = {}
    bank: dict[str, Any] = {}
    later: list[Response] = []

    def at(key: tuple[int, int]) -> Module:
        return modules.get(key) or Module(index=key[1], group=key[0])

    for response in responses:
        if isinstance(response, AnalogResponse):
            for module in modules_from_analog(response):
                known = modules.get(module.key)
                modules[module.key] = module if known is None else merge_modules(known, module)
        elif isinstance(response, AlarmResponse):
            positions = response_positions(response)
            for record, (index, group) in zip(response.records, positions, strict=True):
                modules[(group, index)] = apply_alarm(at((group, index)), record)
        elif isinstance(response, ManagementInfoResponse):
            bank.update(management_fields(response))
        elif isinstance(response, ManufacturerInfoResponse):
            bank.update(identity_fields(manufacturer_info=response))
        elif isinstance(response, ProtocolVersionResponse):
            bank["protocol_version"] = response.text
        else:
            later.append(response)
    for response in later:  # identity and settings attach to modules read above
        if isinstance(response, SerialNumberResponse):
            index, group = _identity_position(response)
            modules[(group, index)] = apply_identity(at((group, index)), serial=response)
        elif isinstance(response, SoftwareVersionResponse):
            index, group = _identity_position(response)
            modules[(group, index)] = apply_identity(at((group, index)), software=response)
        elif isinstance(response, SystemParametersResponse):
            try:
                index, group = module_position(response.adr)
            except ValueError:
                continue
            if (group, index) in modules:
                module = modules[(group, index)]
                extra = dict(module.extra)
                extra.update(system_parameters_extra(response))
                modules[(group, index)] = replace(module, extra=tuple(extra.items()))
    result = Bank(modules=tuple(modules[key] for key in sorted(modules)), **bank)
    return result.with_totals() if totals else result


# Inverse helpers: the simulator serves its model through these.


def analog_record_from_module(module: Module, *, user_defined: int | None = None) -> AnalogRecord:
    """A 0x42 record from a module's values (the simulator's view of a module).

    ``user_defined`` defaults to 4 when the full capacity exceeds 65.535 Ah, else 2.
    Missing values are sent as 0.
    """
    full = module.full_capacity or 0.0
    remaining = module.remaining_capacity or 0.0
    if user_defined is None:
        user_defined = 4 if max(_milli(full), _milli(remaining)) > 0xFFFF else 2
    return AnalogRecord(
        cell_voltages=module.cell_voltages,
        temperatures=module.temperatures,
        current=module.current or 0.0,
        voltage=module.voltage or 0.0,
        remaining_capacity=remaining,
        full_capacity=full,
        cycles=module.cycles or 0,
        user_defined=user_defined,
    )


def _mark(states: list[LimitState], position: int, state: LimitState) -> None:
    if states and state not in states:
        states[min(position, len(states) - 1)] = state


def alarm_record_from_module(module: Module, *, extra: bytes = b"") -> AlarmRecord:
    """A 0x44 record that :func:`alarm_fields` maps back to the module's flags.

    Representable: the Status 1 protections, CELL_OVER_VOLTAGE (highest cell HIGH),
    OVER/UNDER_TEMPERATURE (a cell-group sensor HIGH/LOW; CHARGE_/DISCHARGE_UNDER_TEMPERATURE
    map to UNDER_TEMPERATURE), MOSFET_OVER_TEMPERATURE (6th sensor HIGH), the error alarms.
    Others (short circuit, reverse polarity ...) have no 0x44 encoding and are dropped.
    """
    protections = module.protections
    alarms = module.alarms
    cell_count = len(module.cell_voltages)
    cells = list(module.cell_voltage_states)
    if len(cells) != cell_count:
        cells = [LimitState.NORMAL] * cell_count
    if Protection.CELL_OVER_VOLTAGE in protections and cells:
        _mark(cells, module.cell_voltages.index(max(module.cell_voltages)), LimitState.HIGH)
    sensors = len(module.temperatures)
    temps = list(module.temperature_states)
    if len(temps) != sensors:
        temps = [LimitState.NORMAL] * sensors
    cell_sensor = 1 if sensors > 1 else 0
    if Protection.OVER_TEMPERATURE in protections:
        _mark(temps, cell_sensor, LimitState.HIGH)
    if protections & {
        Protection.UNDER_TEMPERATURE,
        Protection.CHARGE_UNDER_TEMPERATURE,
        Protection.DISCHARGE_UNDER_TEMPERATURE,
    }:
        _mark(temps, cell_sensor, LimitState.LOW)
    if Protection.MOSFET_OVER_TEMPERATURE in protections and sensors > MOSFET_SENSOR:
        temps[MOSFET_SENSOR] = LimitState.HIGH
    if Alarm.TEMPERATURE_SENSOR_ERROR in alarms:
        _mark(temps, 0, LimitState.ERROR)
    status1 = 0
    for bit, protection in _STATUS1_BITS:
        if protection in protections:
            status1 |= bit
    # CAN-style generic members: the module-level bit is the closest 0x44 encoding.
    if Protection.OVER_VOLTAGE in protections:
        status1 |= 0x01
    if Protection.UNDER_VOLTAGE in protections:
        status1 |= 0x80
    cell_bits = 0
    for number, state in enumerate(cells[:16]):
        if state is LimitState.ERROR:
            cell_bits |= 1 << number
    if Alarm.CELL_VOLTAGE_ERROR in alarms and not cell_bits:
        cell_bits = 1
    current = module.current or 0.0
    status2 = (
        0x08
        | (0x04 if module.discharge_mosfet is not False else 0)
        | (0x02 if module.charge_mosfet is not False else 0)
    )
    status3 = (0x80 if current > 0.1 else 0) | (0x40 if current < -0.1 else 0)
    if module.fully_charged:
        status3 |= 0x08
    charge_state = discharge_state = LimitState.NORMAL
    if module.current_state is not None and module.current_state is not LimitState.HIGH:
        if current >= 0:
            charge_state = module.current_state
        else:
            discharge_state = module.current_state
    voltage_state = module.voltage_state or LimitState.NORMAL
    if voltage_state is LimitState.HIGH and Protection.MODULE_OVER_VOLTAGE not in protections:
        voltage_state = LimitState.NORMAL
    if voltage_state is LimitState.LOW and Protection.MODULE_UNDER_VOLTAGE not in protections:
        voltage_state = LimitState.NORMAL
    return AlarmRecord(
        cell_states=tuple(cells),
        temperature_states=tuple(temps),
        charge_current_state=charge_state,
        voltage_state=voltage_state,
        discharge_current_state=discharge_state,
        status1=status1,
        status2=status2,
        status3=status3,
        status4=cell_bits & 0xFF,
        status5=cell_bits >> 8,
        extra=extra,
    )


# --------------------------------------------------------------------------- captures

_RESPONSE_CODES = frozenset(RTN_MEANINGS)
MAX_CAPTURE_LINE = 2 * MAX_FRAME_LENGTH  # longer lines are reported, not scanned


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureEntry:
    """One line of a capture: a request, a decoded response, or an error."""

    line: int  # 1-based
    kind: str  # "request" | "response" | "error"
    text: str  # the frame text found on the line (or the line, for errors)
    frame: Frame | None = None
    command: Command | None = None
    request: Request | None = None
    response: Response | None = None
    error: str | None = None
    inferred: bool = False  # command inferred from the INFO shape (no request seen)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``scripts/decode``."""
        data: dict[str, Any] = {"line": self.line, "kind": self.kind, "text": self.text}
        if self.command is not None:
            data["command"] = f"0x{int(self.command):02X}"
            data["command_name"] = self.command.name.lower()
        if self.frame is not None:
            data["adr"] = self.frame.adr
        if self.request is not None:
            data["target"] = self.request.target
        if self.response is not None:
            data["response"] = _plain(self.response)
        if self.inferred:
            data["inferred"] = True
        if self.error is not None:
            data["error"] = self.error
        return data


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, LimitState):
        return str(value)
    return value


# Decoders tried, strictly, when a response has no preceding request.
_INFER_ORDER = (
    Command.GET_MANAGEMENT_INFO,
    Command.GET_SERIAL_NUMBER,
    Command.GET_SOFTWARE_VERSION,
    Command.GET_MANUFACTURER_INFO,
    Command.GET_SYSTEM_PARAMETERS,
    Command.GET_ANALOG_VALUES,
    Command.GET_ALARM_INFO,
)
_EXACT_SIZES = {
    Command.GET_MANAGEMENT_INFO: (_MANAGEMENT.size,),
    Command.GET_SERIAL_NUMBER: (17,),
    Command.GET_SOFTWARE_VERSION: (_SOFTWARE.size,),
    Command.GET_MANUFACTURER_INFO: (_MANUFACTURER.size,),
    Command.GET_SYSTEM_PARAMETERS: (_SYSTEM_PARAMETERS.size,),
}


def _printable(data: bytes) -> bool:
    return all(0x20 <= b < 0x7F or b == 0 for b in data)


def _infer(frame: Frame) -> tuple[Command, Response] | None:
    """The only command whose layout fits the INFO exactly, or None."""
    if not frame.info:
        return Command.GET_PROTOCOL_VERSION, decode_protocol_version(frame)
    matches: list[tuple[Command, Response]] = []
    for command in _INFER_ORDER:
        sizes = _EXACT_SIZES.get(command)
        if sizes is not None and len(frame.info) not in sizes:
            continue
        if command is Command.GET_SERIAL_NUMBER and not _printable(frame.info[1:]):
            continue
        if command is Command.GET_MANUFACTURER_INFO and not _printable(
            frame.info[:10] + frame.info[12:]
        ):
            continue
        try:
            if command is Command.GET_ALARM_INFO:
                response: Response = decode_alarm(frame)
                if any(len(r.extra) > 1 for r in response.records):
                    continue
            else:
                response = decode_response(command, frame)
        except ProtocolError:
            continue
        matches.append((command, response))
    return matches[0] if len(matches) == 1 else None


def iter_capture(text: str) -> Iterator[CaptureEntry]:
    """Decode a capture: one frame per line, requests and responses mixed.

    A frame is the first ``~`` + hex run on a line (annotations around it are ignored).
    Blank lines and ``#`` comments are skipped. A response is decoded as the command of
    the preceding request; without one, the command is inferred from the INFO shape when
    exactly one layout fits, else an error entry says so. Bad lines give error entries
    and decoding continues.
    """
    pending: Request | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(stripped) > MAX_CAPTURE_LINE:
            yield CaptureEntry(line=number, kind="error", text=stripped[:80], error="line too long")
            continue
        match = _TEXT_FRAME.search(stripped)
        if match is None:
            pending = None
            yield CaptureEntry(line=number, kind="error", text=stripped, error="no frame on line")
            continue
        frame_text = match.group(0)
        try:
            frame = parse_frame(frame_text + "\r")
        except ProtocolError as err:
            pending = None  # most likely the (damaged) answer to the pending request
            yield CaptureEntry(line=number, kind="error", text=frame_text, error=str(err))
            continue
        if frame.cid2 not in _RESPONSE_CODES:
            # Not a return code, so a request: CID1 0x46, a read command, INFO of at most
            # the command byte (+1 byte some hosts add, §1.5).
            problem = None
            if frame.cid1 != CID1_BATTERY:
                problem = f"CID1 0x{frame.cid1:02X} is not Pylontech 0x46"
            elif frame.cid2 not in _READ_CODES:
                what = _WRITE_COMMANDS.get(frame.cid2, "unknown command")
                problem = f"CID2 0x{frame.cid2:02X} is not a read command ({what})"
            elif len(frame.info) > 2:
                problem = f"{len(frame.info)} INFO bytes is not a request layout"
            if problem is not None:
                pending = None
                yield CaptureEntry(
                    line=number, kind="error", text=frame_text, frame=frame, error=problem
                )
                continue
            pending = Request(
                ver=frame.ver,
                adr=frame.adr,
                cid2=frame.cid2,
                info=frame.info,
                command=Command(frame.cid2),
            )
            yield CaptureEntry(
                line=number,
                kind="request",
                text=frame_text,
                frame=frame,
                command=pending.command,
                request=pending,
            )
            continue
        # Pair with the preceding request when it went to this address.
        paired = pending is not None and pending.adr == frame.adr
        command = pending.command if paired and pending is not None else None
        all_modules = pending.all_modules if paired and pending is not None else None
        pending = None
        try:
            check_response(frame)
            if command is None:
                inferred = _infer(frame)
                if inferred is None:
                    yield CaptureEntry(
                        line=number,
                        kind="error",
                        text=frame_text,
                        frame=frame,
                        error="response without a request and an ambiguous INFO layout",
                    )
                    continue
                command, response = inferred
                yield CaptureEntry(
                    line=number,
                    kind="response",
                    text=frame_text,
                    frame=frame,
                    command=command,
                    response=response,
                    inferred=True,
                )
                continue
            response = decode_response(command, frame, all_modules=all_modules)
        except ProtocolError as err:
            yield CaptureEntry(
                line=number,
                kind="error",
                text=frame_text,
                frame=frame,
                command=command,
                error=str(err),
            )
            continue
        yield CaptureEntry(
            line=number,
            kind="response",
            text=frame_text,
            frame=frame,
            command=command,
            response=response,
        )


__all__ = [
    "ALL_MODULES",
    "CID1_BATTERY",
    "DECODERS",
    "MAX_FRAME_LENGTH",
    "MIN_FRAME_LENGTH",
    "PYLONTECH_VER",
    "READ_COMMANDS",
    "RTN_MEANINGS",
    "AlarmRecord",
    "AlarmResponse",
    "AnalogRecord",
    "AnalogResponse",
    "CaptureEntry",
    "Command",
    "Frame",
    "FrameSplitter",
    "ManagementInfoResponse",
    "ManufacturerInfoResponse",
    "ProtocolVersionResponse",
    "Request",
    "Response",
    "SerialNumberResponse",
    "SoftwareVersionResponse",
    "SystemParametersResponse",
    "address",
    "alarm_fields",
    "alarm_record_from_module",
    "analog_record_from_module",
    "apply_alarm",
    "apply_identity",
    "apply_management",
    "bank_from_responses",
    "check_response",
    "checksum",
    "decode_alarm",
    "decode_analog",
    "decode_frame",
    "decode_management_info",
    "decode_manufacturer_info",
    "decode_protocol_version",
    "decode_request",
    "decode_response",
    "decode_serial_number",
    "decode_software_version",
    "decode_system_parameters",
    "encode_alarm_response",
    "encode_analog_response",
    "encode_error_response",
    "encode_frame",
    "encode_management_info_response",
    "encode_manufacturer_info_response",
    "encode_protocol_version_response",
    "encode_request",
    "encode_response",
    "encode_serial_number_response",
    "encode_software_version_response",
    "encode_system_parameters_response",
    "identity_fields",
    "iter_capture",
    "lchksum",
    "length_field",
    "management_fields",
    "management_status",
    "module_from_analog",
    "module_position",
    "modules_from_alarm",
    "modules_from_analog",
    "parse_frame",
    "response_positions",
    "system_parameters_extra",
]
