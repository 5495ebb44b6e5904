"""Decode RS485 captures (one frame per line) for ``scripts/decode``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
import re
from typing import Any

from ..errors import ProtocolError
from ..model import LimitState
from .rs485_frame import (
    CID1_BATTERY,
    MAX_FRAME_LENGTH,
    READ_CODES,
    RTN_MEANINGS,
    WRITE_COMMANDS,
    Command,
    Frame,
    Request,
    check_response,
    parse_frame,
)
from .rs485_responses import (
    MANAGEMENT_LAYOUT,
    MANUFACTURER_LAYOUT,
    SOFTWARE_LAYOUT,
    SYSTEM_PARAMETERS_LAYOUT,
    Response,
    decode_alarm,
    decode_protocol_version,
    decode_response,
)

# --------------------------------------------------------------------------- captures

_RESPONSE_CODES = frozenset(RTN_MEANINGS)
_TEXT_FRAME = re.compile(r"~[0-9A-Fa-f]+")  # a frame written on a log line
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
    Command.GET_MANAGEMENT_INFO: (MANAGEMENT_LAYOUT.size,),
    Command.GET_SERIAL_NUMBER: (17,),
    Command.GET_SOFTWARE_VERSION: (SOFTWARE_LAYOUT.size,),
    Command.GET_MANUFACTURER_INFO: (MANUFACTURER_LAYOUT.size,),
    Command.GET_SYSTEM_PARAMETERS: (SYSTEM_PARAMETERS_LAYOUT.size,),
}


def _printable(data: bytes) -> bool:
    return all(0x20 <= b < 0x7F or b == 0 for b in data)


def _infer(frame: Frame) -> tuple[Command, Response] | None:
    """Return the only command whose layout fits the INFO exactly, or None."""
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
                alarm = decode_alarm(frame)
                if any(len(r.extra) > 1 for r in alarm.records):
                    continue
                response: Response = alarm
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
            # the command byte (+1 byte some hosts add, docs/protocol-notes.md §1.5).
            problem = None
            if frame.cid1 != CID1_BATTERY:
                problem = f"CID1 0x{frame.cid1:02X} is not Pylontech 0x46"
            elif frame.cid2 not in READ_CODES:
                what = WRITE_COMMANDS.get(frame.cid2, "unknown command")
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
    "MAX_CAPTURE_LINE",
    "CaptureEntry",
    "iter_capture",
]
