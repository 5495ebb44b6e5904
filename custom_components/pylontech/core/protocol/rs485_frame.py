"""RS485 frame layer and read-only requests (docs/protocol-notes.md §1.2-§1.5).

``~`` + ASCII hex (VER ADR CID1 CID2 LENGTH INFO CHKSUM) + CR. Pure code; decoding errors
are ``ProtocolError`` subclasses. Requests can only be built for the read commands of
:data:`READ_COMMANDS`.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from enum import IntEnum
import struct

from ..bounds import MAX_RS485_GROUP, MAX_RS485_MODULES_PER_GROUP, check_group
from ..errors import (
    ChecksumError,
    CommandNotAllowedError,
    DialectError,
    ProtocolError,
    ResponseError,
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

#: RTN codes (CID2 position of responses), docs/protocol-notes.md §1.3.
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
    """Return the 16-bit LENGTH field (LCHKSUM << 12 | LENID) for a LENID."""
    if not 0 <= lenid <= MAX_LENID:
        raise ValueError(f"LENID {lenid} out of range 0..{MAX_LENID}")
    return (lchksum(lenid) << 12) | lenid


def checksum(text: bytes) -> int:
    """CHKSUM over the ASCII characters VER..INFO: 16-bit two's complement of their sum."""
    return (-sum(text)) & 0xFFFF


# Documented state-changing commands, named in refusals. A frame this package builds carries
# a read command (request) or a return code (response) as CID2; 0x91 is both a return code
# and "set baud", so it is allowed only without INFO.
WRITE_COMMANDS: dict[int, str] = {
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
    if (cid2 not in READ_CODES and cid2 not in RTN_MEANINGS) or (cid2 == 0x91 and info):
        what = WRITE_COMMANDS.get(cid2, "not a read command or return code")
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
    # V3.5 "system analog data" of the whole stack (docs/protocol-notes.md §1.8); read-only.
    GET_SYSTEM_ANALOG = 0x61


#: The allow-list: the only commands ``encode_request`` will build.
READ_COMMANDS: frozenset[Command] = frozenset(Command)
#: The allow-list as plain CID2 integers.
READ_CODES = frozenset(int(c) for c in Command)
# Requests whose INFO is the module's command byte (ADR); the others carry no INFO.
_ADDRESSED = frozenset(
    {
        Command.GET_ANALOG_VALUES,
        Command.GET_ALARM_INFO,
        Command.GET_MANAGEMENT_INFO,
        Command.GET_SERIAL_NUMBER,
        Command.GET_SOFTWARE_VERSION,
        Command.GET_SYSTEM_ANALOG,
    }
)
#: Commands with an all-modules (INFO 0xFF) form.
ALL_MODULES_COMMANDS = frozenset({Command.GET_ANALOG_VALUES, Command.GET_ALARM_INFO})


def is_read_code(command: object) -> bool:
    """Tell whether ``command`` is a ``Command`` or an exact ``int`` in the allow-list."""
    # Exact ints only: no bools, floats or strings sneaking through int().
    return (type(command) is int and command in READ_CODES) or isinstance(command, Command)


MAX_GROUP = MAX_RS485_GROUP  # DIP 2-4 of the master (core/bounds.py)
MAX_INDEX = MAX_RS485_MODULES_PER_GROUP  # modules per group (core/bounds.py)


def address(index: int, group: int = 0) -> int:
    """RS485 ADR of a module: ``index + 1 + 0x10 * group`` (master index 1 -> ADR 2).

    A group outside ``bounds.RS485_GROUPS`` raises ``InvalidGroupError`` (a ``ValueError``
    and a ``PylontechError``); an index outside 1..16 raises ``ValueError``.
    """
    if not 1 <= index <= MAX_INDEX:
        raise ValueError(f"module index {index} out of range 1..{MAX_INDEX}")
    return index + 1 + 0x10 * check_group(group)


def module_position(adr: int) -> tuple[int, int]:
    """Inverse of :func:`address`: ``(index, group)`` of an ADR.

    ADR 1 (the RS232 console-port host address, notes §1.5) is the module itself: ``(1, 0)``.
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

    INFO is the ADR byte for 0x42/0x44/0x61/0x92/0x93/0x96 (``info=0xFF`` asks 0x42/0x44 for all
    modules; another byte is allowed, notes §1.5 and D6) and empty for 0x4F/0x51/0x47. Anything
    outside :data:`READ_COMMANDS` raises ``CommandNotAllowedError``: a write cannot be encoded.
    """
    if not is_read_code(command):
        code = command if isinstance(command, int) else -1
        what = WRITE_COMMANDS.get(code, "not in the read-only allow-list")
        raise CommandNotAllowedError(f"refusing to encode command {command!r} ({what})")
    command = Command(int(command))
    if not 0 <= adr <= 0xFF:
        raise ValueError(f"ADR {adr!r} is not a byte")
    if command in _ADDRESSED:
        byte = adr if info is None else info
        if not 0 <= byte <= 0xFF:
            raise ValueError(f"command byte {byte!r} is not a byte")
        if byte == ALL_MODULES and command not in ALL_MODULES_COMMANDS:
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
        return self.command in ALL_MODULES_COMMANDS and self.target == ALL_MODULES


def decode_request(raw: bytes | bytearray | memoryview | str) -> Request:
    """Decode a request frame. Unknown or write CID2 give ``command=None`` (answer RTN 0x04)."""
    frame = decode_frame(raw, request=True)
    command = Command(frame.cid2) if frame.cid2 in READ_CODES else None
    return Request(ver=frame.ver, adr=frame.adr, cid2=frame.cid2, info=frame.info, command=command)


__all__ = [
    "ALL_MODULES",
    "ALL_MODULES_COMMANDS",
    "CID1_BATTERY",
    "EOI",
    "MAX_FRAME_LENGTH",
    "MAX_GROUP",
    "MAX_INDEX",
    "MAX_INFO_BYTES",
    "MAX_LENID",
    "MIN_FRAME_LENGTH",
    "PYLONTECH_VER",
    "READ_CODES",
    "READ_COMMANDS",
    "RTN_MEANINGS",
    "SOI",
    "WRITE_COMMANDS",
    "Command",
    "Frame",
    "FrameSplitter",
    "Request",
    "address",
    "check_response",
    "checksum",
    "decode_frame",
    "decode_request",
    "encode_frame",
    "encode_request",
    "is_read_code",
    "lchksum",
    "length_field",
    "module_position",
    "parse_frame",
]
