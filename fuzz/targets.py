"""Fuzz targets: hostile bytes into every decoder; only ``ProtocolError`` may escape.

``build(package)`` returns ``{name: target}`` against the core package imported as
``package`` (``custom_components.pylontech.core`` in the test suite, ``pylontech_core``
when loaded standalone for atheris). A target returns normally for any input the code
handles correctly (decoded, or refused with a ``ProtocolError`` subclass); anything
else — ``IndexError``, ``struct.error``, ``ValueError``, ``UnicodeDecodeError``, a
``ProtocolError`` from the wrong layer is fine — is a finding and propagates as is, so
the fuzzer records the crashing input.

Inputs are bytes; targets that take text decode them as latin-1 (every byte is a
character, like the links do), so the fuzzer explores control characters too.
"""

from __future__ import annotations

from collections.abc import Callable
import importlib
from typing import Any

Target = Callable[[bytes], None]

#: Bound every single input so one target call stays cheap (the codecs bound their own
#: buffers far above this; the point is breadth, not size).
MAX_INPUT = 8192


def build(package: str) -> dict[str, Target]:
    """Every fuzz target against the core imported as ``package``."""
    errors = importlib.import_module(f"{package}.errors")
    rs485 = importlib.import_module(f"{package}.protocol.rs485")
    can = importlib.import_module(f"{package}.protocol.can")
    console = importlib.import_module(f"{package}.protocol.console")
    capture = importlib.import_module(f"{package}.capture")
    protocol_error: type[Exception] = errors.ProtocolError
    not_allowed: type[Exception] = errors.CommandNotAllowedError

    def guarded(func: Callable[[bytes], Any]) -> Target:
        def target(data: bytes) -> None:
            data = data[:MAX_INPUT]
            try:
                func(data)
            except protocol_error:
                pass

        target.__name__ = func.__name__
        target.__doc__ = func.__doc__
        return target

    @guarded
    def rs485_frame(data: bytes) -> None:
        """One frame: framing checks, then every read command's decoder on it."""
        frame = rs485.parse_frame(data, verify_checksum=False)
        for command in rs485.READ_COMMANDS:
            for many in (None, True, False):
                try:
                    response = rs485.decode_response(command, frame, all_modules=many)
                except protocol_error:
                    continue
                # what the link does next: map to the model
                if isinstance(response, rs485.AnalogResponse):
                    rs485.modules_from_analog(response)
                elif isinstance(response, rs485.AlarmResponse):
                    rs485.modules_from_alarm(response)
                if command not in rs485.ALL_MODULES_COMMANDS:
                    break

    @guarded
    def rs485_frame_checked(data: bytes) -> None:
        """The raw path a link takes: ``decode_frame`` with checksum, then 0x42/0x44."""
        frame = rs485.decode_frame(data)
        rs485.decode_analog(frame)
        rs485.decode_alarm(frame)

    @guarded
    def rs485_request(data: bytes) -> None:
        """What the simulator parses from a client."""
        rs485.decode_request(data)

    @guarded
    def rs485_splitter(data: bytes) -> None:
        """Stream split at arbitrary chunk boundaries; bounded buffer."""
        splitter = rs485.FrameSplitter()
        step = 1 + (data[0] % 64) if data else 1
        for start in range(0, len(data), step):
            for frame in splitter.feed(data[start : start + step]):
                if not frame.startswith(b"~"):
                    raise AssertionError(f"splitter returned {frame[:20]!r}")
        if splitter.pending > rs485.MAX_FRAME_LENGTH:
            raise AssertionError(f"splitter holds {splitter.pending} bytes")

    @guarded
    def rs485_capture(data: bytes) -> None:
        """``scripts/decode`` on an RS485 capture."""
        capture.decode_capture("rs485", data.decode("latin-1"))

    @guarded
    def can_frame(data: bytes) -> None:
        """(id, up to 8 data bytes) records into the decoder and the bank assembler."""
        assembler = can.CanBankAssembler(max_age=5.0)
        now = 0.0
        offset = 0
        while offset + 3 <= len(data):
            can_id = int.from_bytes(data[offset : offset + 2], "big") & 0x7FF
            size = data[offset + 2] % 9
            payload = data[offset + 3 : offset + 3 + size]
            offset += 3 + size
            can.decode_frame(can_id, payload)
            now += 0.1
            try:
                assembler.update(can_id, payload, now)
            except protocol_error:
                pass
            assembler.bank()
            assembler.expire(now)

    @guarded
    def can_capture(data: bytes) -> None:
        """candump text lines (``-L`` and default formats)."""
        text = data.decode("latin-1")
        for line in text.splitlines():
            try:
                can.parse_candump_line(line)
            except protocol_error:
                pass
        capture.decode_capture("can", text)

    @guarded
    def console_stream(data: bytes) -> None:
        """Bytes from the console port into the framer, then every parser on each response."""
        framer = console.ConsoleFramer(max_chars=64 * 1024, max_lines=2000)
        step = 1 + (data[0] % 97) if data else 1
        events: list[Any] = []
        for start in range(0, len(data), step):
            try:
                events.extend(framer.feed(data[start : start + step]))
            except protocol_error:
                pass
        events.extend(framer.finish())
        for event in events:
            response = event.response
            if response is None:
                continue
            for parse in PARSERS:
                try:
                    getattr(console, parse)(response)
                except protocol_error:
                    pass

    @guarded
    def console_text(data: bytes) -> None:
        """Payload text straight into every parser and its model mapping."""
        text = data.decode("latin-1")
        for parse in PARSERS:
            try:
                record = getattr(console, parse)(text)
            except protocol_error:
                continue
            capture.apply_console_record(capture.Bank(), f"{parse[6:]} 1", record)

    @guarded
    def console_capture(data: bytes) -> None:
        """``scripts/decode`` on a console transcript."""
        capture.decode_capture("console", data.decode("latin-1"))

    def console_command(data: bytes) -> None:
        """The allow-list: refuse or return a canonical command that is itself allowed."""
        text = data[:256].decode("latin-1")
        try:
            canonical = console.validate_command(text)
        except not_allowed:
            return
        if console.validate_command(canonical) != canonical:
            raise AssertionError(f"allow-list not idempotent for {text!r}")
        encoded = console.encode_command(canonical)
        if any(b < 0x20 for b in encoded[:-1]) or not encoded.endswith(b"\r"):
            raise AssertionError(f"control character would be sent: {encoded!r}")

    return {
        "rs485_frame": rs485_frame,
        "rs485_frame_checked": rs485_frame_checked,
        "rs485_request": rs485_request,
        "rs485_splitter": rs485_splitter,
        "rs485_capture": rs485_capture,
        "can_frame": can_frame,
        "can_capture": can_capture,
        "console_stream": console_stream,
        "console_text": console_text,
        "console_capture": console_capture,
        "console_command": console_command,
    }


PARSERS = (
    "parse_pwr",
    "parse_pwr_detail",
    "parse_bat",
    "parse_info",
    "parse_stat",
    "parse_soh",
    "parse_time",
    "parse_pwrsys",
    "parse_log",
    "parse_data",
    "parse_getpwr",
    "parse_ci",
)
