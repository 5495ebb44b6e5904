"""Replay a capture of any link into one bank snapshot, collecting errors.

Used by ``scripts/decode`` (bug reports, regression captures) and by tests:
the same codecs and model mapping the links use, fed from text instead of a
port. A frame that fails its checksum or a block that cannot be parsed becomes
an entry in ``errors`` and decoding goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from .errors import ProtocolError
from .faults import active_fault_to_dict, evaluate

__all__ = ["MAX_CAPTURE_CHARS", "CaptureResult", "ProtocolError", "decode_capture"]
from .model import Bank, Module, bank_to_dict, merge_banks
from .protocol import can, console, rs485

LinkKind = Literal["rs485", "can", "console"]
LINKS: tuple[LinkKind, ...] = ("rs485", "can", "console")

# A bug-report capture is small; refuse what would take unbounded time to replay.
MAX_CAPTURE_CHARS = 16 * 1024 * 1024
MAX_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class CaptureResult:
    """What a capture says about the bank, and what could not be read."""

    bank: Bank
    errors: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{"bank": {...}, "modules": [...], "errors": [...], "faults": [...]}``."""
        data = bank_to_dict(self.bank)
        data["errors"] = list(self.errors)
        # What the documented fault rules make of this one snapshot (no history).
        data["faults"] = [active_fault_to_dict(fault) for fault in evaluate(self.bank)]
        return data


class _Errors(list[str]):
    def add(self, where: str, err: Exception) -> None:
        if len(self) < MAX_ERRORS:
            self.append(f"{where}: {err}")


def decode_can_capture(text: str) -> CaptureResult:
    """Candump ``-L`` or default-format text."""
    result = can.decode_capture(text)
    errors = [f"line {e.line_number}: {e.reason}" for e in result.errors]
    return CaptureResult(bank=result.bank, errors=tuple(errors))


def _update_module(bank: Bank, index: int, change: Callable[[Module], Module]) -> Bank:
    module = bank.module(index) or Module(index=index)
    changed = change(module)
    others = tuple(m for m in bank.modules if m.key != changed.key)
    return replace(bank, modules=tuple(sorted((*others, changed), key=lambda m: m.key)))


def _module_number(command: str) -> int:
    words = command.split()
    # isdecimal, not isdigit: "²" is a digit that int() refuses (fuzz finding).
    return int(words[1]) if len(words) == 2 and words[1].isdecimal() else 1


def apply_console_record(bank: Bank, command: str, record: object) -> Bank:
    """Fold one parsed console response into the bank (module N from ``cmd N``)."""
    index = _module_number(command)
    if isinstance(record, console.PwrTable):
        return merge_banks(bank, console.bank_from_pwr(record))
    if isinstance(record, console.PwrsysRecord):
        return merge_banks(bank, console.bank_from_pwrsys(record))
    if isinstance(record, console.PwrDetail):
        return _update_module(bank, index, lambda m: console.apply_pwr_detail(m, record))
    if isinstance(record, tuple) and record and isinstance(record[0], console.BatCell):
        return _update_module(bank, index, lambda m: console.apply_bat(m, record))
    if isinstance(record, console.InfoRecord):
        return _update_module(bank, index, lambda m: console.apply_info(m, record))
    if isinstance(record, console.StatRecord):
        return _update_module(bank, index, lambda m: console.apply_stat(m, record))
    if isinstance(record, console.SohReport):
        return _update_module(bank, index, lambda m: console.apply_soh(m, record))
    # time, log, data, ci, getpwr: read fine, but they carry no live bank values.
    return bank


def decode_console_capture(text: str) -> CaptureResult:
    """Decode a console transcript as captured (echo, ``@``, payload, ``$$``, prompt)."""
    errors = _Errors()
    bank = Bank()
    responses = console.split_transcript(text, max_chars=MAX_CAPTURE_CHARS)
    # A success line outside every framed response means its start marker (`@`) was lost
    # (line noise, another product's shell): say so instead of dropping it silently.
    completed = sum(
        1 for line in text.splitlines() if line.replace("\r", "").strip() == console.SUCCESS_LINE
    )
    unframed = completed - sum(1 for response in responses if response.ok)
    if unframed > 0:
        errors.add("transcript", ProtocolError(f"{unframed} response(s) without a '@' start"))
    elif not responses and text.strip():
        # A pasted table without its echo and `@` line: nothing can be attributed.
        errors.add("transcript", ProtocolError("no console response (echo, '@' ... '$$') found"))
    cut_mid_line = not text.endswith(("\n", "\r"))
    for number, response in enumerate(responses, start=1):
        if not response.command:
            continue
        if not response.ok and response.failure is None:
            # The capture stops inside this response: keep what it has, but say so, and
            # drop a last line that was cut mid-way (a number cut short reads as valid).
            errors.add(repr(response.command), ProtocolError("response incomplete (cut short)"))
            if cut_mid_line and number == len(responses) and response.lines:
                response = replace(response, lines=response.lines[:-1])
        try:
            record = console.decode_response(response)
            bank = apply_console_record(bank, response.command, record)
        except ProtocolError as err:
            errors.add(repr(response.command), err)
    return CaptureResult(bank=bank.with_totals(), errors=tuple(errors))


def decode_rs485_capture(text: str) -> CaptureResult:
    """RS485 frames, one per line; requests and responses may be mixed."""
    errors = _Errors()
    responses: list[rs485.Response] = []
    for entry in rs485.iter_capture(text):
        if entry.kind == "error":
            errors.add(f"line {entry.line}", ProtocolError(entry.error or "unreadable"))
        elif entry.response is not None:
            if isinstance(entry.response, (rs485.AnalogResponse, rs485.AlarmResponse)):
                try:  # a record must be placeable (ADR of a module) to join the bank
                    rs485.response_positions(entry.response)
                except ProtocolError as err:
                    errors.add(f"line {entry.line}", err)
                    continue
            responses.append(entry.response)
    return CaptureResult(bank=rs485.bank_from_responses(responses), errors=tuple(errors))


_DECODERS: dict[LinkKind, Callable[[str], CaptureResult]] = {
    "rs485": decode_rs485_capture,
    "can": decode_can_capture,
    "console": decode_console_capture,
}


def decode_capture(link: LinkKind, text: str) -> CaptureResult:
    """Replay ``text`` captured on ``link``; raises ``ProtocolError`` only if it is too large."""
    if len(text) > MAX_CAPTURE_CHARS:
        raise ProtocolError(f"capture larger than {MAX_CAPTURE_CHARS} characters")
    return _DECODERS[link](text)
