"""RS232 console codec: the public face of the framing, parser and mapping modules.

Those are ``console_framing``, ``console_parsers`` and ``console_mapping``.

Import from here: ``validate_command``/``encode_command`` (read-only allow-list),
``ConsoleFramer``/``split_transcript`` (bytes to ``ConsoleResponse``), the parsers
(``parse_pwr`` ... ``parse_ci``), ``decode_response`` (dispatch by command) and the
model mappings (``modules_from_pwr``, ``apply_bat``, ``apply_info``, ``apply_stat``,
``bank_from_pwrsys`` ...), plus the wake-up constants.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ProtocolError
from .console_framing import (
    CONSOLE_BAUD,
    MAX_RESPONSE_CHARS,
    MAX_RESPONSE_LINES,
    PAGER_CONTINUE,
    PAGER_TEXT,
    SUCCESS_LINE,
    WAKE_UP_BAUD,
    WAKE_UP_FRAME,
    WAKE_UP_NEWLINE,
    ConsoleEvent,
    ConsoleEventKind,
    ConsoleFramer,
    ConsoleResponse,
    detect_prompt,
    encode_command,
    split_transcript,
    validate_command,
)
from .console_mapping import (
    apply_bat,
    apply_info,
    apply_pwr_detail,
    apply_soh,
    apply_stat,
    bank_from_pwr,
    bank_from_pwrsys,
    event_flags,
    limit_state,
    module_from_data,
    module_from_pwr_row,
    module_state,
    modules_from_pwr,
)
from .console_parsers import (
    MAX_CONSOLE_SLOT,
    BatCell,
    CiRecord,
    DataRecord,
    EventField,
    GetpwrCell,
    GetpwrRecord,
    InfoRecord,
    LogEntry,
    PwrDetail,
    PwrRow,
    PwrsysRecord,
    PwrTable,
    SohCell,
    SohReport,
    StatRecord,
    TimeRecord,
    parse_bat,
    parse_ci,
    parse_data,
    parse_event_field,
    parse_getpwr,
    parse_info,
    parse_log,
    parse_pwr,
    parse_pwr_detail,
    parse_pwrsys,
    parse_soh,
    parse_stat,
    parse_time,
)

_PARSERS: dict[str, Callable[[ConsoleResponse], object]] = {
    "pwr": parse_pwr,
    "pwr N": parse_pwr_detail,
    "bat": parse_bat,
    "bat N": parse_bat,
    "info": parse_info,
    "info N": parse_info,
    "stat": parse_stat,
    "stat N": parse_stat,
    "soh N": parse_soh,
    "time": parse_time,
    "pwrsys": parse_pwrsys,
    "log": parse_log,
    "data event": parse_data,
    "data history": parse_data,
    "getpwr": parse_getpwr,
    "ci": parse_ci,
}


def command_kind(command: str) -> str:
    """``"pwr 3"`` -> ``"pwr N"``, ``"pwr"`` -> ``"pwr"``: the parser key of a command."""
    words = command.split()
    if len(words) == 2 and words[1].isdigit():
        return f"{words[0].lower()} N"
    return " ".join(word.lower() for word in words)


def decode_response(response: ConsoleResponse) -> object:
    """Parse a response with the parser for its (echoed) command.

    Raises ``ProtocolError`` when the battery refused the command (unknown or
    invalid) or the command has no parser (``help``).
    """
    failure = response.failure
    if failure is not None:
        raise ProtocolError(f"battery refused {response.command!r}: {failure}")
    parser = _PARSERS.get(command_kind(response.command))
    if parser is None:
        raise ProtocolError(f"no console parser for {response.command!r}")
    return parser(response)


__all__ = [
    "CONSOLE_BAUD",
    "MAX_CONSOLE_SLOT",
    "MAX_RESPONSE_CHARS",
    "MAX_RESPONSE_LINES",
    "PAGER_CONTINUE",
    "PAGER_TEXT",
    "SUCCESS_LINE",
    "WAKE_UP_BAUD",
    "WAKE_UP_FRAME",
    "WAKE_UP_NEWLINE",
    "BatCell",
    "CiRecord",
    "ConsoleEvent",
    "ConsoleEventKind",
    "ConsoleFramer",
    "ConsoleResponse",
    "DataRecord",
    "EventField",
    "GetpwrCell",
    "GetpwrRecord",
    "InfoRecord",
    "LogEntry",
    "PwrDetail",
    "PwrRow",
    "PwrTable",
    "PwrsysRecord",
    "SohCell",
    "SohReport",
    "StatRecord",
    "TimeRecord",
    "apply_bat",
    "apply_info",
    "apply_pwr_detail",
    "apply_soh",
    "apply_stat",
    "bank_from_pwr",
    "bank_from_pwrsys",
    "command_kind",
    "decode_response",
    "detect_prompt",
    "encode_command",
    "event_flags",
    "limit_state",
    "module_from_data",
    "module_from_pwr_row",
    "module_state",
    "modules_from_pwr",
    "parse_bat",
    "parse_ci",
    "parse_data",
    "parse_event_field",
    "parse_getpwr",
    "parse_info",
    "parse_log",
    "parse_pwr",
    "parse_pwr_detail",
    "parse_pwrsys",
    "parse_soh",
    "parse_stat",
    "parse_time",
    "split_transcript",
    "validate_command",
]
