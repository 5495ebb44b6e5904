"""Pieces every link shares: the read plan, counters, probe results, backoff, traffic log."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
import math
import random
import time
from typing import Any, Protocol, runtime_checkable

from ..errors import LinkError, PylontechError
from ..model import Bank

#: Longest line kept in the traffic log; the largest RS485 frame (18 + 4095 chars) fits.
MAX_TRAFFIC_LINE = 8200
#: Lines kept in the traffic log (oldest dropped first).
TRAFFIC_LINES = 120
#: Characters kept in the traffic log in total (diagnostics stay small).
TRAFFIC_CHARS = 96 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadPlan:
    """What to read on one poll; the coordinator decides how often each part is due."""

    identity: bool = False  # serials, firmware, model (0x51/0x93/0x96 | info)
    cells: bool = True  # per-cell detail (0x42 has it anyway | bat N)
    alarms: bool = True  # 0x44 | state columns
    limits: bool = True  # 0x92 | pwrsys
    statistics: bool = False  # console stat/soh (cycles, counters, SOH)


@dataclass(slots=True)
class LinkStats:
    """Mutable counters of one link, shown in diagnostics."""

    connected: bool = False
    bytes_in: int = 0
    bytes_out: int = 0
    frames: int = 0
    checksum_errors: int = 0
    decode_errors: int = 0
    timeouts: int = 0
    reconnects: int = 0
    last_error: str | None = None
    # Beyond the common set: where the link spends its trouble.
    polls: int = 0
    failed_polls: int = 0
    requests: int = 0
    response_errors: int = 0
    dropped_bytes: int = 0
    foreign_bytes: int = 0
    foreign_frames: int = 0
    echo_frames: int = 0
    connection_drops: int = 0
    wake_ups: int = 0
    # Table rows or records left out of a poll (malformed, or beyond the supported counts).
    skipped_records: int = 0
    last_poll_seconds: float | None = None
    last_success: float | None = None  # wall-clock time.time() of the last good poll

    def as_dict(self) -> dict[str, Any]:
        """All counters as plain JSON-ready data."""
        return asdict(self)

    def note_error(self, error: BaseException | str) -> None:
        """Remember the latest error text (bounded, for diagnostics).

        A ``ReconnectPendingError`` is not a new cause: it quotes the stored one, so
        storing it would nest each wait inside the next ("last error: ... last error: ...").
        """
        if isinstance(error, ReconnectPendingError):
            return
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.last_error = root_cause(text)[:300]

    @contextmanager
    def measure_poll(self) -> Iterator[None]:
        """Count one poll, its duration, and its failure (the error is re-raised)."""
        started = time.monotonic()
        self.polls += 1
        try:
            yield
        except PylontechError as err:
            # Every error of the family, not only link and decode errors: a refused
            # command or a count beyond the bounds is a failed poll too.
            self.failed_polls += 1
            self.note_error(err)
            raise
        self.last_poll_seconds = round(time.monotonic() - started, 3)
        self.last_success = time.time()


#: How a reconnect wait quotes its cause; ``root_cause`` cuts texts at it.
_LAST_ERROR = " (last error: "


def root_cause(text: str) -> str:
    """Return an error text without a quoted earlier error (the cause is kept once, not nested)."""
    cut = text.find(_LAST_ERROR)
    return text if cut < 0 else text[:cut]


class ReconnectPendingError(LinkError):
    """A reconnect was asked for before the backoff allows it; ``cause`` is the root error."""

    def __init__(self, where: str, seconds: float, cause: str | None) -> None:
        """Say where, how long until the next attempt and the root cause (once)."""
        wait = max(1, math.ceil(seconds))
        text = f"{where}: reconnecting in {wait} s"
        super().__init__(text + (f"{_LAST_ERROR}{root_cause(cause)})" if cause else ""))
        self.cause = cause


def reconnect_pending(where: str, backoff: Backoff, stats: LinkStats) -> ReconnectPendingError:
    """Return the error for a connection attempt the backoff does not allow yet."""
    return ReconnectPendingError(where, backoff.remaining(), stats.last_error)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe found on a port: enough to name and set up a config entry."""

    serial_number: str | None
    model: str | None
    module_count: int


@runtime_checkable
class PollingLink(Protocol):
    """A link the coordinator polls: ``Rs485Link`` and ``ConsoleLink``."""

    stats: LinkStats

    async def open(self) -> None:
        """Connect and check the battery answers; raises ``LinkError`` subclasses."""

    async def close(self) -> None:
        """Disconnect; idempotent; cancels everything the link started."""

    async def read_bank(self, plan: ReadPlan) -> Bank:
        """One full poll; reconnects by itself (with backoff) when the connection dropped."""

    def diagnostics(self) -> dict[str, Any]:
        """State, settings, counters and recent raw traffic."""


@dataclass(slots=True)
class Backoff:
    """Capped exponential backoff with jitter: 1 s, 2 s, 4 s ... up to ``maximum``.

    ``ready()`` tells whether the next attempt may start; ``failed()`` pushes the
    next attempt out; ``succeeded()`` resets. The first attempt after a success is
    immediate, so one dropped connection costs no waiting.
    """

    initial: float = 1.0
    maximum: float = 60.0
    jitter: float = 0.2
    failures: int = 0
    next_attempt: float = 0.0  # time.monotonic()

    def ready(self, now: float | None = None) -> bool:
        """Tell whether an attempt may be made now."""
        return (time.monotonic() if now is None else now) >= self.next_attempt

    def remaining(self, now: float | None = None) -> float:
        """Seconds until the next attempt is allowed (0 when ready)."""
        return max(0.0, self.next_attempt - (time.monotonic() if now is None else now))

    def delay(self) -> float:
        """Return the delay the current failure count asks for, without jitter."""
        if self.failures <= 0:
            return 0.0
        return min(self.maximum, self.initial * 2.0 ** min(self.failures - 1, 30))

    def failed(self, now: float | None = None) -> float:
        """Record a failed attempt; returns the delay before the next one."""
        self.failures += 1
        delay = self.delay()
        delay *= 1.0 + random.uniform(-self.jitter, self.jitter)
        self.next_attempt = (time.monotonic() if now is None else now) + delay
        return delay

    def succeeded(self) -> None:
        """Reset after a successful attempt."""
        self.failures = 0
        self.next_attempt = 0.0


@dataclass(slots=True)
class TrafficLog:
    """Bounded ring buffer of recent raw traffic as text lines.

    Lines are stored in the form ``scripts/decode`` reads for the link's protocol
    (RS485: one frame per line; console: the transcript; CAN: candump ``-L``).
    """

    maxlen: int = TRAFFIC_LINES
    max_chars: int = TRAFFIC_CHARS
    lines: deque[str] = field(default_factory=deque)
    chars: int = 0

    def add(self, line: str) -> None:
        """Append one line (truncated to a bound), dropping the oldest beyond the bounds."""
        if len(line) > MAX_TRAFFIC_LINE:
            line = line[:MAX_TRAFFIC_LINE] + "…"
        self.lines.append(line)
        self.chars += len(line)
        while len(self.lines) > 1 and (
            len(self.lines) > self.maxlen or self.chars > self.max_chars
        ):
            self.chars -= len(self.lines.popleft())

    def snapshot(self) -> list[str]:
        """Return the lines, oldest first."""
        return list(self.lines)

    def clear(self) -> None:
        """Forget everything."""
        self.lines.clear()
        self.chars = 0


def printable(data: bytes) -> str:
    r"""Return bytes as text for the traffic log: ASCII kept, everything else as ``\xNN``."""
    return data.decode("ascii", "backslashreplace").translate(_CONTROL_ESCAPES)


_CONTROL_ESCAPES = {
    code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F) if code not in (0x0A, 0x0D, 0x09)
}
