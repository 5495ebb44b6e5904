r"""RS232 console: read-only allow-list, wake-up constants and response framing.

The console is a text shell. A command is sent followed by CR; the battery echoes
it, prints ``@``, the payload, ``Command completed successfully``, ``$$`` and a
prompt (``pylon>``) without a trailing newline. Line endings are mixed
(``\r\r\n`` for table rows, ``\r\n\r`` before trailer lines), so lines are cut
at ``\n`` and every ``\r`` is dropped. Long outputs stop at a pager prompt that
the link answers with ``\r``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import re

from ..errors import CommandNotAllowedError, ProtocolError

# --- Wake-up (docs/protocol-notes.md §3.2) ----------------------------------------

#: Older firmware keeps the console port in 1200 bps ASCII-hex mode.
WAKE_UP_BAUD = 1200
#: CID2 0x82 frame, host address 1, INFO 85 20: switches the port to the text shell.
WAKE_UP_FRAME = b"~20014682C0048520FCC3\r"
#: Speed of the text console once awake (fixed on newer firmware).
CONSOLE_BAUD = 115200
#: Sent at ``CONSOLE_BAUD`` after the wake-up frame until a prompt appears.
WAKE_UP_NEWLINE = b"\r\n"
#: What the link sends to continue at the pager prompt.
PAGER_CONTINUE = b"\r"

#: Default bounds for one response: characters buffered and payload lines kept.
MAX_RESPONSE_CHARS = 256 * 1024
MAX_RESPONSE_LINES = 8192
#: A single line longer than this is garbage (the widest real table row is ~250).
MAX_LINE_CHARS = 4096
#: Only the end of the line before ``@`` is searched for the prompt and echo.
MAX_ECHO_CHARS = 256
#: Longest command text accepted by the allow-list.
MAX_COMMAND_CHARS = 32

SUCCESS_LINE = "Command completed successfully"
PAGER_TEXT = "Press [Enter] to be continued,other key to exit"

# --- Allow-list -----------------------------------------------------------------

_MODULE_ARGUMENT = r"(?: (?:[0-9]|[1-9][0-9]))"  # 0..99: slot numbers, never more
_ALLOWED = re.compile(
    r"(?:"
    rf"(?:pwr|bat|info|stat){_MODULE_ARGUMENT}?"
    rf"|soh{_MODULE_ARGUMENT}"
    r"|time|pwrsys|log|getpwr|ci|help"
    r"|data (?:event|history)"
    r")"
)
_PRINTABLE = re.compile(r"[ -~]*")


def validate_command(text: str) -> str:
    """Return the canonical form of a read-only console command, or refuse it.

    Accepted: ``pwr [N]``, ``bat [N]``, ``info [N]``, ``stat [N]``, ``soh N``, ``time``
    (without arguments: with them it sets the clock), ``pwrsys``, ``log``,
    ``data event``, ``data history``, ``getpwr``, ``ci`` and ``help``; ``N`` is 0..99.
    Runs of spaces are collapsed and case is folded. Anything else (``login``,
    ``config``, ``shut``, ``soccal``, ``time 2024 ...``, control characters, over-long
    text) raises ``CommandNotAllowedError``.
    """
    if not isinstance(text, str):
        raise CommandNotAllowedError("console command must be text")
    if len(text) > MAX_COMMAND_CHARS:
        raise CommandNotAllowedError(f"console command longer than {MAX_COMMAND_CHARS} chars")
    # Control characters (CR, LF, TAB, ESC, ...) could smuggle a second command.
    if _PRINTABLE.fullmatch(text) is None:
        raise CommandNotAllowedError("console command contains control characters")
    canonical = " ".join(text.split()).lower()
    if _ALLOWED.fullmatch(canonical) is None:
        raise CommandNotAllowedError(f"console command not read-only or unknown: {canonical!r}")
    return canonical


def encode_command(text: str) -> bytes:
    """Return the bytes to send for a validated read-only command (terminated by CR)."""
    return validate_command(text).encode("ascii") + b"\r"


# --- Prompts --------------------------------------------------------------------

# `pylon>`, `pylon_debug>`, `PYTES>`: a word and `>` alone at the start of a line.
_PROMPT_ONLY = re.compile(r"([A-Za-z][A-Za-z0-9_\-]{0,31}>)[ \t]*")
_PROMPT_START = re.compile(r"([A-Za-z][A-Za-z0-9_\-]{0,31}>)")
# Echo line: optional prompt, then the command text.
_ECHO = re.compile(r"(?:.*?([A-Za-z][A-Za-z0-9_\-]{0,31}>))?[ \t]*(.*?)[ \t]*")
_UNKNOWN = re.compile(r"Unknown command '(.{0,200})' - try 'help'")
# Pytes: "Invalid command or fail to excute." (sic) followed by a usage text.
_INVALID = re.compile(r"Invalid command\b", re.IGNORECASE)


def detect_prompt(text: str) -> str | None:
    r"""Return the console prompt (``"pylon>"``) that ``text`` ends with, or ``None``.

    The prompt must stand alone at the start of the last line (after ``\r``/``\n``)
    and may be followed only by spaces.
    """
    tail = text[-256:]
    cut = max(tail.rfind("\n"), tail.rfind("\r"))
    last = tail[cut + 1 :]
    match = _PROMPT_ONLY.fullmatch(last)
    return match.group(1) if match else None


# --- Framing --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleResponse:
    r"""One command's answer.

    ``lines`` is the payload between ``@`` and ``$$`` without the success line,
    with ``\r`` removed, surrounding spaces stripped and blank lines and pager
    prompts dropped. ``ok`` is true only if ``Command completed successfully``
    was seen; ``prompt`` is the prompt that followed (``""`` if none arrived);
    ``paged`` tells that at least one pager prompt was answered.
    """

    command: str
    lines: tuple[str, ...]
    ok: bool
    prompt: str
    paged: bool = False

    @property
    def unknown_command(self) -> str | None:
        """The word the battery did not know (``Unknown command 'x' - try 'help'``)."""
        for line in self.lines:
            match = _UNKNOWN.match(line)
            if match:
                return match.group(1)
        return None

    @property
    def failure(self) -> str | None:
        """The battery's refusal (unknown or invalid command), if the payload is one."""
        for line in self.lines[:3]:
            if _UNKNOWN.match(line) or _INVALID.match(line):
                return line
        return None

    @property
    def text(self) -> str:
        r"""The payload lines joined with ``\n``."""
        return "\n".join(self.lines)


class ConsoleEventKind(StrEnum):
    """What the framer saw."""

    PROMPT = "prompt"  # the shell is idle and waits for a command
    PAGER = "pager"  # the link must send PAGER_CONTINUE
    RESPONSE = "response"  # a response is complete


@dataclass(frozen=True, slots=True)
class ConsoleEvent:
    """One framer event; ``response`` is set for ``RESPONSE``, ``prompt`` for ``PROMPT``."""

    kind: ConsoleEventKind
    prompt: str | None = None
    response: ConsoleResponse | None = None


class _State(StrEnum):
    IDLE = "idle"
    PAYLOAD = "payload"
    TRAILER = "trailer"  # `$$` seen, waiting for the prompt


class ConsoleFramer:
    """Incremental console framer: feed it bytes, get events.

    Garbage before the echo is ignored; the echo is the last non-blank line
    before ``@``. Feeding a stream byte by byte yields the same events as feeding
    it at once. Memory is bounded: a response larger than ``max_chars`` or with
    more than ``max_lines`` lines, or a single line longer than ``MAX_LINE_CHARS``
    inside a response, resets the framer and raises ``ProtocolError``.
    """

    __slots__ = (
        "_candidate",
        "_chars",
        "_command",
        "_lines",
        "_max_chars",
        "_max_lines",
        "_ok",
        "_paged",
        "_pending",
        "_prompt",
        "_prompt_reported",
        "_state",
    )

    def __init__(
        self, *, max_chars: int = MAX_RESPONSE_CHARS, max_lines: int = MAX_RESPONSE_LINES
    ) -> None:
        """Create an idle framer with the given bounds."""
        self._max_chars = max_chars
        self._max_lines = max_lines
        self._pending = ""
        self._prompt_reported = False
        self._reset_response()

    def _reset_response(self) -> None:
        self._state = _State.IDLE
        self._candidate = ""
        self._command = ""
        self._prompt = ""
        self._lines: list[str] = []
        self._chars = 0
        self._ok = False
        self._paged = False

    def reset(self) -> None:
        """Forget everything buffered (after a reconnect or a timeout)."""
        self._pending = ""
        self._prompt_reported = False
        self._reset_response()

    @property
    def busy(self) -> bool:
        """True while a response has started (``@`` seen) and not yet ended."""
        return self._state is not _State.IDLE

    def feed(self, data: bytes) -> list[ConsoleEvent]:
        """Consume received bytes; return the events they complete, in order."""
        # latin-1 maps every byte to one character: decoding never fails.
        return self.feed_text(data.decode("latin-1"))

    def feed_text(self, text: str) -> list[ConsoleEvent]:
        """Like ``feed`` for already decoded text."""
        events: list[ConsoleEvent] = []
        pending = self._pending + text
        start = 0
        while True:
            newline = pending.find("\n", start)
            if newline < 0:
                break
            line = pending[start:newline]
            start = newline + 1
            if len(line) > MAX_LINE_CHARS:
                self._line_too_long()
                continue
            self._on_line(line, events)
        self._pending = pending[start:]
        if self._pending:
            self._on_partial(self._pending, events)
        return events

    def finish(self) -> list[ConsoleEvent]:
        """End of input (a whole transcript): flush what is buffered.

        A final line without newline is processed; a response still open is
        emitted as it stands (``ok`` only if its success line was seen).
        """
        events: list[ConsoleEvent] = []
        if self._pending:
            line, self._pending = self._pending, ""
            self._on_line(line, events)
        if self._state is not _State.IDLE:
            self._emit(events, self._prompt_if_known())
        self._prompt_reported = False
        return events

    # -- internals ------------------------------------------------------------------

    def _prompt_if_known(self) -> str:
        return self._prompt if self._state is _State.TRAILER else ""

    def _line_too_long(self) -> None:
        busy = self._state is not _State.IDLE
        self.reset()
        if busy:
            raise ProtocolError(f"console line longer than {MAX_LINE_CHARS} characters")

    def _on_partial(self, partial: str, events: list[ConsoleEvent]) -> None:
        """Handle text after the last newline: a prompt, or a pager prompt."""
        if len(partial) > MAX_LINE_CHARS:
            self._line_too_long()
            return
        if PAGER_TEXT in partial:
            # One pager event per phrase, however the stream was cut.
            while PAGER_TEXT in partial:
                before, _, partial = partial.partition(PAGER_TEXT)
                self._on_line(before, events)
                self._on_pager(events)
                partial = partial.lstrip(" \r")
            self._pending = partial
            return
        cleaned = partial.replace("\r", "")
        match = _PROMPT_ONLY.fullmatch(cleaned)
        if match is None or self._prompt_reported or self._state is _State.PAYLOAD:
            return  # inside a payload a word and '>' is text, not a prompt
        prompt = match.group(1)
        self._prompt_reported = True
        if self._state is _State.TRAILER:
            self._emit(events, prompt)
        events.append(ConsoleEvent(ConsoleEventKind.PROMPT, prompt=prompt))

    def _on_pager(self, events: list[ConsoleEvent]) -> None:
        if self._state is not _State.IDLE:
            self._paged = True
        events.append(ConsoleEvent(ConsoleEventKind.PAGER))

    def _on_line(self, raw: str, events: list[ConsoleEvent]) -> None:
        reported = self._prompt_reported
        self._prompt_reported = False
        line = raw.replace("\r", "").strip()
        if PAGER_TEXT in line:
            before, _, after = line.partition(PAGER_TEXT)
            if before.strip():
                self._on_line(before, events)
            self._on_pager(events)
            if after.strip():
                self._on_line(after, events)
            return
        if not line:
            return
        state = self._state
        if state is _State.IDLE:
            self._on_idle_line(line, reported, events)
        elif state is _State.PAYLOAD:
            self._on_payload_line(line)
        else:  # TRAILER: the prompt may arrive glued to the next echo
            match = _PROMPT_START.match(line)
            prompt = match.group(1) if match else ""
            self._emit(events, prompt)
            if prompt and not reported:
                events.append(ConsoleEvent(ConsoleEventKind.PROMPT, prompt=prompt))
            self._on_idle_line(line, True, events)

    def _on_idle_line(self, line: str, reported: bool, events: list[ConsoleEvent]) -> None:
        if line == "@":
            self._start_payload()
            return
        prompt_only = _PROMPT_ONLY.fullmatch(line)
        if prompt_only is not None:
            if not reported:
                events.append(ConsoleEvent(ConsoleEventKind.PROMPT, prompt=prompt_only.group(1)))
            self._candidate = line[-MAX_ECHO_CHARS:]
            return
        if not reported:
            start = _PROMPT_START.match(line)
            if start is not None:
                events.append(ConsoleEvent(ConsoleEventKind.PROMPT, prompt=start.group(1)))
        if line.endswith("@") and line[:-1].strip():
            # Echo and '@' on one line (some bridges drop the CR/LF between them).
            self._candidate = line[:-1][-MAX_ECHO_CHARS:]
            self._start_payload()
            return
        self._candidate = line[-MAX_ECHO_CHARS:]

    def _start_payload(self) -> None:
        match = _ECHO.fullmatch(self._candidate)
        prompt, command = ("", "") if match is None else (match.group(1) or "", match.group(2))
        # An empty Enter leaves prompts glued together ("pylon>pylon>bat 1"): keep the last.
        while (again := _PROMPT_START.match(command)) is not None:
            prompt, command = again.group(1), command[again.end() :].lstrip(" \t")
        self._reset_response()
        self._state = _State.PAYLOAD
        self._command = command
        self._prompt = prompt

    def _on_payload_line(self, line: str) -> None:
        if line == "$$":
            self._state = _State.TRAILER
            return
        if line == SUCCESS_LINE:
            self._ok = True
            return
        self._chars += len(line) + 1
        self._lines.append(line)
        if self._chars > self._max_chars or len(self._lines) > self._max_lines:
            self.reset()
            raise ProtocolError(
                f"console response exceeds {self._max_chars} chars or {self._max_lines} lines"
            )

    def _emit(self, events: list[ConsoleEvent], prompt: str) -> None:
        response = ConsoleResponse(
            command=self._command,
            lines=tuple(self._lines),
            ok=self._ok,
            prompt=prompt,
            paged=self._paged,
        )
        self._reset_response()
        events.append(ConsoleEvent(ConsoleEventKind.RESPONSE, response=response))


def split_transcript(
    text: str | bytes, *, max_chars: int = 4 * 1024 * 1024
) -> list[ConsoleResponse]:
    """Cut a whole captured console transcript into its responses.

    Accepts text or raw bytes with any mix of line endings. A trailing response
    without ``$$``/prompt (a capture cut at a pager prompt) is returned too.
    Raises ``ProtocolError`` if the transcript is larger than ``max_chars``.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if len(text) > max_chars:
        raise ProtocolError(f"console transcript larger than {max_chars} characters")
    framer = ConsoleFramer()
    events = framer.feed_text(text)
    events.extend(framer.finish())
    return [event.response for event in events if event.response is not None]
