"""Console link: the RS232 text shell (``pylon>``) over a serialx stream.

On open the link sends CR LF and looks for a prompt. A silent port gets the
documented wake-up (1200 baud, the CID2 0x82 frame, ~1 s, back to 115200, CR LF),
a bounded number of times; over a raw TCP gateway the baud cannot change, so the
frame is sent anyway and CR LF follows. Only allow-listed read-only commands are
ever sent; pager prompts are answered with CR (at most ``MAX_PAGES``, then one ``q``
and the command is given up; ``COMMAND_DEADLINE`` seconds per command in all). The
transcript in diagnostics has barcodes redacted (``redact_transcript``).

A poll reads ``pwr`` (one row per slot), then per present module ``pwr N`` (its event
words are the only place the console names a protection), ``bat N``, ``info N`` once,
``stat N``/``soh N`` on slow reads, and ``pwrsys``. A row or record that cannot be right
(a slot beyond ``MAX_CONSOLE_SLOT``, more cells than a module has) is left out and
counted (``skipped_records`` / ``decode_errors``); the rest of the poll stands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
import logging
import re
import time
from typing import Any, NoReturn, TypeVar

from ..errors import (
    CommandNotAllowedError,
    ConnectionLostError,
    LinkError,
    LinkTimeoutError,
    NoResponseError,
    ProtocolError,
    WakeUpError,
    WrongBaudError,
)
from ..model import Bank, Module, ModuleState, merge_banks, merge_modules
from ..protocol import console as codec
from .base import Backoff, LinkStats, ReadPlan, TrafficLog, printable, reconnect_pending
from .transport import Connection, can_change_baud, redact

_LOGGER = logging.getLogger(__name__)

# What one command's parser yields and its mapper takes (pwr detail, bat cells, info ...).
_Parsed = TypeVar("_Parsed")

#: Pages answered with CR before the pager is left; ``log`` on a full history is ~100 pages.
MAX_PAGES = 200
#: Longest one command may take in total, pager pages included (each page also has its
#: own ``command_timeout``). A full ``log`` is ~100 pages of ~2 KB: ~20 s at 115200 baud.
COMMAND_DEADLINE = 60.0
#: Attempts of the whole wake-up sequence before giving up.
WAKE_UP_ATTEMPTS = 3
#: CR LF sent (one per ``PROMPT_WAIT``) after each wake-up frame.
WAKE_UP_NEWLINES = 3
#: How long to wait for a prompt after CR LF.
PROMPT_WAIT = 1.0
#: Pause between the wake-up frame and the return to 115200 baud (the documented ~1 s).
WAKE_UP_PAUSE = 1.0
#: Bytes of a prompt search kept (a prompt is short; older text is irrelevant).
PROMPT_SCAN = 512
#: "Press [Enter] to be continued,other key to exit": any key but Enter leaves the listing.
PAGER_EXIT = b"q"
#: Distinct skip reasons logged per link (later ones are only counted).
MAX_REPORTED = 16


class ConsoleState(StrEnum):
    """What the console was last seen doing."""

    UNKNOWN = "unknown"
    PROMPT = "prompt"  # `pylon>`
    DEBUG_PROMPT = "debug_prompt"  # `pylon_debug>`
    OTHER_PROMPT = "other_prompt"  # e.g. `PYTES>`
    SILENT = "silent"
    WOKEN = "woken"  # a prompt appeared after the wake-up sequence
    FAILED = "failed"


def _state_for(prompt: str) -> ConsoleState:
    if prompt == "pylon>":
        return ConsoleState.PROMPT
    if prompt == "pylon_debug>":
        return ConsoleState.DEBUG_PROMPT
    return ConsoleState.OTHER_PROMPT


_READY = frozenset(
    {
        ConsoleState.PROMPT,
        ConsoleState.DEBUG_PROMPT,
        ConsoleState.OTHER_PROMPT,
        ConsoleState.WOKEN,
    }
)


class ConsoleLink:
    """A polled link to the master's RS232 console."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = codec.CONSOLE_BAUD,
        wake_up: bool = True,
        command_timeout: float = 3.0,
    ) -> None:
        """Configure the link; nothing is opened until ``open`` or ``read_bank``."""
        self.url = url
        self.baudrate = baudrate
        self.wake_up = wake_up
        self.command_timeout = max(0.1, float(command_timeout))
        self.stats = LinkStats()
        self.state = ConsoleState.UNKNOWN
        self.prompt: str | None = None
        self.unsupported: set[str] = set()
        # Received text only, so the transcript replays through ``split_transcript``.
        self._traffic = TrafficLog()
        self._sent = TrafficLog(maxlen=60)
        self._backoff = Backoff()
        self._conn: Connection | None = None
        self._framer = codec.ConsoleFramer()
        self._lock = asyncio.Lock()
        self._poll_lock = asyncio.Lock()
        self._closed = False
        self._ever_connected = False
        self._responses_since_connect = 0
        self._identity: dict[int, Module] = {}
        self._identity_tried: set[int] = set()
        self._woken_once = False
        self._ever_ready = False  # a prompt was seen once: silence later is a hung session
        self._overran = False  # a command hit COMMAND_DEADLINE during this poll: stop asking
        self._reported: set[str] = set()  # reasons for skipped records already logged

    # -- public API -------------------------------------------------------------

    async def open(self) -> None:
        """Connect, find the prompt (waking the console if needed)."""
        self._closed = False
        async with self._lock:
            await self._ensure_ready()

    async def close(self) -> None:
        """Close the port; safe to call more than once."""
        self._closed = True
        await self._disconnect()

    async def command(self, text: str) -> codec.ConsoleResponse:
        """Run one allow-listed command and return its framed response.

        Anything outside the allow-list raises ``CommandNotAllowedError`` before a
        byte is sent.
        """
        canonical = codec.validate_command(text)
        if self._closed:
            raise LinkError("the console link is closed")
        async with self._lock:
            await self._ensure_ready()
            return await self._run(canonical)

    async def read_bank(self, plan: ReadPlan) -> Bank:
        """Poll the bank once through ``pwr`` (and ``pwr N``/``bat``/``info``/``stat``/``pwrsys``)."""
        if self._closed:
            raise LinkError("the console link is closed")
        async with self._poll_lock:
            with self.stats.measure_poll():
                return await self._poll(plan)

    def diagnostics(self) -> dict[str, Any]:
        """Return settings, console state, counters and the recent transcript."""
        return {
            "link": "console",
            "url": redact(self.url),
            "baudrate": self.baudrate,
            "wake_up": self.wake_up,
            "command_timeout": self.command_timeout,
            "state": str(self.state),
            "prompt": self.prompt,
            "needed_wake_up": self._woken_once,
            "unsupported_commands": sorted(self.unsupported),
            "retry_in": round(self._backoff.remaining(), 1),
            "stats": self.stats.as_dict(),
            "sent": self._sent.snapshot(),
            "traffic_redacted": True,
            "traffic": self.traffic(),
        }

    def traffic(self, *, redacted: bool = True) -> list[str]:
        """Return the recent transcript (received text, in read chunks), oldest first.

        ``redacted`` (the default, and what ``diagnostics`` shows) replaces barcodes by
        ``*`` characters: see ``redact_transcript``.
        """
        lines = self._traffic.snapshot()
        return redact_transcript(lines) if redacted else lines

    # -- connection ---------------------------------------------------------------

    async def _connect(self, baudrate: int | None = None) -> Connection:
        if self._closed:
            raise LinkError("the console link is closed")
        if self._conn is not None and self._conn.is_open and baudrate is None:
            return self._conn
        await self._disconnect()
        if not self._backoff.ready():
            raise reconnect_pending(redact(self.url), self._backoff, self.stats)
        conn = Connection(self.url, baudrate or self.baudrate, self.stats)
        try:
            await conn.open()
        except LinkError as err:
            self._backoff.failed()
            self.stats.note_error(err)
            raise
        self._conn = conn
        self._framer.reset()
        if baudrate is None:
            if self._ever_connected:
                self.stats.reconnects += 1
            self._ever_connected = True
            self._responses_since_connect = 0
            self.stats.connected = True
        return conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self.stats.connected = False
        if self.state in _READY:
            self.state = ConsoleState.UNKNOWN
        if conn is not None:
            await conn.close()

    async def _lost(self, err: LinkError) -> None:
        if self._closed:
            return  # closed by us, not lost
        self.stats.connection_drops += 1
        self.stats.note_error(err)
        if self._responses_since_connect == 0:
            self._backoff.failed()
        await self._disconnect()

    async def _write(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            raise ConnectionLostError(f"{redact(self.url)}: not connected")
        try:
            await conn.write(data)
        except LinkError as err:
            await self._lost(err)
            raise
        self._sent.add(printable(data))

    async def _read(self, timeout: float) -> bytes:
        conn = self._conn
        if conn is None:
            raise ConnectionLostError(f"{redact(self.url)}: not connected")
        try:
            data = await conn.read(timeout)
        except LinkError as err:
            await self._lost(err)
            raise
        if data:
            self._traffic.add(printable(data))
        return data

    # -- prompt detection and wake-up ----------------------------------------------

    async def _ensure_ready(self) -> None:
        """Get connected and to a prompt, or raise a ``LinkError`` saying why not."""
        if self._conn is not None and self._conn.is_open and self.state in _READY:
            return
        await self._connect()
        garbage = False
        prompt, noise = await self._look_for_prompt()
        garbage |= noise
        if prompt is None and self._ever_ready:
            # A session that worked went quiet (a stuck gateway, a hung shell): a fresh
            # connection is the cheap cure; the wake-up sequence comes after it.
            await self._disconnect()
            await self._connect()
            prompt, noise = await self._look_for_prompt()
            garbage |= noise
        if prompt is None and self.wake_up:
            prompt, noise = await self._wake()
            garbage |= noise
        if prompt is None:
            self.state = ConsoleState.FAILED if self.wake_up else ConsoleState.SILENT
            error = self._silence_error(garbage)
            self.stats.note_error(error)
            # A silent battery is a failed attempt too: do not hammer it every poll.
            self._backoff.failed()
            await self._disconnect()
            self.state = ConsoleState.FAILED if self.wake_up else ConsoleState.SILENT
            raise error
        self._ever_ready = True
        self._backoff.succeeded()

    def _silence_error(self, garbage: bool) -> LinkError:
        where = f"{redact(self.url)} at {self.baudrate} baud"
        if garbage:
            return WrongBaudError(
                f"{where}: bytes arrive but no console prompt; check the baud rate (115200) "
                "and that this is the console port (not RS485/CAN)"
            )
        if self.wake_up:
            return WakeUpError(
                f"{where}: the console stayed silent after {WAKE_UP_ATTEMPTS} wake-up attempts; "
                "check the cable (RS232 levels, TX/RX crossed) and that the master is on"
            )
        return NoResponseError(
            f"{where}: the console is silent (enable wake-up for older firmware, check the cable)"
        )

    async def _look_for_prompt(self, tries: int = 2) -> tuple[str | None, bool]:
        """Send CR LF (``tries`` times) and wait for a prompt; also report non-prompt noise."""
        noise = False
        for _ in range(tries):
            self._framer.reset()
            await self._write(codec.WAKE_UP_NEWLINE)
            prompt, got = await self._wait_prompt(PROMPT_WAIT)
            if prompt is not None:
                return prompt, False
            noise |= got
        return None, noise

    async def _wait_prompt(self, timeout: float) -> tuple[str | None, bool]:
        """Read until a prompt shows up or ``timeout`` passes; (prompt, bytes seen)."""
        deadline = time.monotonic() + timeout
        tail = ""
        seen = False
        left_pager = False
        while (remaining := deadline - time.monotonic()) > 0:
            data = await self._read(remaining)
            if not data:
                break
            seen = True
            text = data.decode("latin-1")
            tail = (tail + text)[-PROMPT_SCAN:]
            prompt = codec.detect_prompt(tail)
            if prompt is None:
                try:
                    events = self._framer.feed(data)
                except ProtocolError:
                    self._framer.reset()
                    events = []
                for event in events:
                    if event.kind is codec.ConsoleEventKind.PAGER:
                        # A pager left open by an earlier session: leave it, once per wait
                        # (a peer repeating the pager text gets no stream of answers).
                        if not left_pager:
                            left_pager = True
                            await self._write(PAGER_EXIT)
                    elif event.prompt:
                        prompt = event.prompt
            if prompt is not None:
                self.prompt = prompt
                self.state = _state_for(prompt)
                self._framer.reset()
                return prompt, True
        return None, seen

    async def _wake(self) -> tuple[str | None, bool]:
        """Run the documented wake-up sequence, bounded; returns (prompt, noise seen)."""
        self.state = ConsoleState.SILENT
        noise = False
        for _ in range(WAKE_UP_ATTEMPTS):
            self.stats.wake_ups += 1
            if can_change_baud(self.url):
                await self._connect(codec.WAKE_UP_BAUD)
                await self._write(codec.WAKE_UP_FRAME)
                await asyncio.sleep(WAKE_UP_PAUSE)
                await self._disconnect()
                await self._connect()
            else:
                # A raw TCP gateway has a fixed baud: the frame may still reach a console
                # whose gateway runs at 1200, and costs nothing otherwise.
                await self._write(codec.WAKE_UP_FRAME)
                await asyncio.sleep(WAKE_UP_PAUSE)
            prompt, got = await self._look_for_prompt(WAKE_UP_NEWLINES)
            noise |= got
            if prompt is not None:
                self.state = ConsoleState.WOKEN
                self._woken_once = True
                return prompt, False
        return None, noise

    # -- commands -------------------------------------------------------------------

    async def _run(self, canonical: str) -> codec.ConsoleResponse:
        """Send one validated command and collect its response (bounded time and pages)."""
        self._framer.reset()
        await self._write(canonical.encode("ascii") + b"\r")
        pages = 0
        started = time.monotonic()
        # The per-page deadline is renewed by every pager prompt; the overall one never is.
        overall = started + max(COMMAND_DEADLINE, self.command_timeout)
        deadline = started + self.command_timeout
        while True:
            now = time.monotonic()
            if now >= overall:
                await self._give_up(canonical, pages, now - started)
            remaining = min(deadline, overall) - now
            data = await self._read(remaining) if remaining > 0 else b""
            if not data:
                if time.monotonic() >= overall:
                    await self._give_up(canonical, pages, time.monotonic() - started)
                self.stats.timeouts += 1
                self.state = ConsoleState.UNKNOWN  # re-detect before the next command
                raise LinkTimeoutError(
                    f"no complete answer to {canonical!r} within {self.command_timeout} s"
                )
            try:
                events = self._framer.feed(data)
            except ProtocolError:
                self.stats.decode_errors += 1
                self.state = ConsoleState.UNKNOWN
                raise
            for event in events:
                if event.kind is codec.ConsoleEventKind.PAGER:
                    pages += 1
                    if pages > MAX_PAGES:
                        await self._leave_pager(canonical)
                    await self._write(codec.PAGER_CONTINUE)
                    deadline = time.monotonic() + self.command_timeout
                elif event.kind is codec.ConsoleEventKind.RESPONSE and event.response:
                    response = event.response
                    echo = " ".join(response.command.split()).lower()
                    if echo and echo != canonical and not echo.endswith(canonical):
                        continue  # the tail of an earlier command
                    self.stats.frames += 1
                    self._responses_since_connect += 1
                    if response.prompt:
                        self.prompt = response.prompt
                        if self.state is not ConsoleState.WOKEN:
                            self.state = _state_for(response.prompt)
                    return response

    async def _leave_pager(self, canonical: str) -> NoReturn:
        """More than ``MAX_PAGES`` pages: one exit key, then the command is given up.

        Answering every further prompt would let a console (or a hostile gateway) that pages
        without end draw unbounded writes; the next command re-detects the prompt first.
        """
        self.stats.response_errors += 1
        self.state = ConsoleState.UNKNOWN
        await self._write(PAGER_EXIT)
        raise ProtocolError(
            f"the console paged {canonical!r} beyond {MAX_PAGES} pages; left the pager"
        )

    async def _give_up(self, canonical: str, pages: int, elapsed: float) -> NoReturn:
        """Leave the pager and raise: the console still talks after ``COMMAND_DEADLINE``."""
        self.stats.timeouts += 1
        self._overran = True
        self.state = ConsoleState.UNKNOWN  # re-detect (and drain) before the next command
        if pages:
            await self._write(PAGER_EXIT)
        limit = max(COMMAND_DEADLINE, self.command_timeout)
        raise LinkTimeoutError(
            f"the console was still answering {canonical!r} after {elapsed:.1f} s "
            f"({pages} pager page(s)); gave up at the {limit:g} s limit per command"
        )

    async def _checked(self, text: str, *, retry: bool = False) -> codec.ConsoleResponse | None:
        """Run a command; ``None`` if the firmware does not know it (remembered)."""
        if text.split(maxsplit=1)[0] in self.unsupported:
            return None
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                async with self._lock:
                    await self._ensure_ready()
                    response = await self._run(codec.validate_command(text))
            except (LinkTimeoutError, ConnectionLostError, ProtocolError):
                if attempt + 1 >= attempts or self._overran:
                    raise
                continue
            if response.unknown_command is not None:
                self.unsupported.add(text.split(maxsplit=1)[0])
                return None
            if not response.ok:
                self.stats.decode_errors += 1
                if attempt + 1 >= attempts:
                    raise ProtocolError(f"console answer to {text!r} incomplete")
                continue
            return response
        return None

    # -- polling --------------------------------------------------------------------

    async def _poll(self, plan: ReadPlan) -> Bank:
        self._overran = False
        response = await self._checked("pwr", retry=True)
        if response is None:
            raise ProtocolError("the console does not know 'pwr'")
        try:
            table = codec.parse_pwr(response.lines)
        except ProtocolError:
            self.stats.decode_errors += 1
            raise
        if table.skipped:
            slots = ", ".join(str(slot) for slot in table.skipped[:8])
            self._skip(
                len(table.skipped),
                f"console `pwr` rows for slot(s) {slots} left out: slots are 1 to "
                f"{codec.MAX_CONSOLE_SLOT}",
            )
        modules = codec.modules_from_pwr(table)
        present = [m for m in modules if m.state != ModuleState.ABSENT]
        if not present:
            raise NoResponseError("the console lists no present module")
        updated: list[Module] = []
        for module in present:
            slot = module.index
            if plan.alarms:
                # `Bat Events` / `Power Events` name the protections: the table cannot.
                module = await self._apply(
                    module, f"pwr {slot}", codec.parse_pwr_detail, codec.apply_pwr_detail
                )
            if plan.cells:
                module = await self._apply(module, f"bat {slot}", codec.parse_bat, codec.apply_bat)
            if plan.identity or slot not in self._identity_tried:
                self._identity_tried.add(slot)
                ident = await self._apply(
                    Module(index=slot, group=module.group),
                    f"info {slot}",
                    codec.parse_info,
                    codec.apply_info,
                )
                if ident.serial_number or ident.model or ident.firmware:
                    self._identity[slot] = ident
            if plan.statistics:
                module = await self._apply(
                    module, f"stat {slot}", codec.parse_stat, codec.apply_stat
                )
                module = await self._apply(module, f"soh {slot}", codec.parse_soh, codec.apply_soh)
            known = self._identity.get(slot)
            updated.append(merge_modules(known, module) if known is not None else module)
        bank = Bank(modules=tuple(updated))
        if plan.limits:
            response = await self._safe("pwrsys")
            if response is not None:
                try:
                    system = codec.bank_from_pwrsys(codec.parse_pwrsys(response.lines))
                except ProtocolError:
                    self.stats.decode_errors += 1
                else:
                    bank = merge_banks(bank, replace(system, modules=()))
        return replace(bank, module_count=len(bank.modules)).with_totals()

    async def _safe(self, text: str) -> codec.ConsoleResponse | None:
        """Run a secondary command: a failure leaves its part out of this poll."""
        try:
            return await self._checked(text)
        except CommandNotAllowedError as err:
            # Never sent; the poll goes on without this part.
            self._skip(1, f"console {text!r} not sent: {err}")
            return None
        except (LinkTimeoutError, ProtocolError) as err:
            if self._overran:
                raise  # a console that pages without end must not hold the link any longer
            self.stats.note_error(err)
            _LOGGER.debug("console %r failed: %s", text, err)
            return None

    async def _apply(
        self,
        module: Module,
        text: str,
        parse: Callable[[tuple[str, ...]], _Parsed],
        apply: Callable[[Module, _Parsed], Module],
    ) -> Module:
        response = await self._safe(text)
        if response is None:
            return module
        try:
            return apply(module, parse(response.lines))
        except ProtocolError as err:
            self.stats.decode_errors += 1
            self.stats.note_error(err)
            _LOGGER.debug("console %r: %s", text, err)
            return module

    def _skip(self, count: int, message: str) -> None:
        """Count records left out of a poll; log each distinct reason once per link."""
        self.stats.skipped_records += count
        self.stats.note_error(message)
        if message not in self._reported and len(self._reported) < MAX_REPORTED:
            self._reported.add(message)
            _LOGGER.warning("%s", message)


# -- barcode redaction of the transcript ----------------------------------------------

#: The value of an ``info`` field ``Barcode : HPTCR03171112590`` (any case or spacing).
_BARCODE_FIELD = re.compile(r"(barcode[ \t]*:[ \t]*)([!-~]+)", re.IGNORECASE)
#: Anything shaped like a Pylontech barcode: 16 upper-case letters and digits, both kinds,
#: standing alone (catches a value whose "Barcode :" label left the ring buffer).
_BARCODE_SHAPE = re.compile(
    r"(?<![A-Za-z0-9])(?=[A-Z0-9]{0,15}[A-Z])(?=[A-Z0-9]{0,15}[0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"
)


def _stars(match: re.Match[str]) -> str:
    return "*" * len(match[0])


def redact_transcript(chunks: list[str]) -> list[str]:
    """Transcript chunks with every barcode replaced by as many ``*``.

    The chunks are consecutive reads of one stream, so a field cut between two chunks is
    found in the joined text; replacements keep the length, so the chunks are cut back
    at the same places.
    """
    text = "".join(chunks)
    redacted = _BARCODE_FIELD.sub(lambda m: m[1] + "*" * len(m[2]), text)
    redacted = _BARCODE_SHAPE.sub(_stars, redacted)
    if redacted == text:
        return list(chunks)
    out: list[str] = []
    position = 0
    for chunk in chunks:
        out.append(redacted[position : position + len(chunk)])
        position += len(chunk)
    return out


__all__ = ["CommandNotAllowedError", "ConsoleLink", "ConsoleState"]
