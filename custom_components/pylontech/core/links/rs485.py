"""RS485 link: polls a Pylontech bank with the ASCII-hex protocol over a serialx stream.

One request is on the wire at a time. A background task reads the stream,
cuts it into candidate frames with the codec's ``FrameSplitter`` and hands them
to the request that waits for them; bytes that arrive while nothing was asked
are foreign traffic (another master on the bus, or a late answer) and are
counted, and in polite mode they make the link hold back.

Discovery probes each address (the all-modules answer carries no addresses), and the
all-modules requests are used only while the known modules sit at 1..N without a gap.
The traffic in diagnostics has barcodes redacted (``redact_rs485_traffic``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
import logging
import re
import time
from typing import Any, TypeVar

from ..bounds import MAX_RS485_MODULES_PER_GROUP, check_group
from ..errors import (
    ChecksumError,
    ConnectionLostError,
    DialectError,
    ImplausibleValueError,
    LinkError,
    LinkTimeoutError,
    NoResponseError,
    ProtocolError,
    ResponseError,
    WrongBaudError,
)
from ..model import Bank, Module, merge_modules
from ..protocol import rs485 as codec
from .base import Backoff, LinkStats, ReadPlan, TrafficLog, printable, reconnect_pending
from .transport import Connection, redact

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Highest module count one RS485 group can address (core/bounds.py).
MAX_MODULES = MAX_RS485_MODULES_PER_GROUP
#: Polls between cheap re-discovery probes (one request past the last known module).
REDISCOVER_EVERY = 30
#: Frames queued between the reader task and the waiting request.
FRAME_QUEUE = 64
#: Polite mode: how long the bus must have been quiet before we talk.
POLITE_QUIET = 0.3
#: Polite mode: longest we hold back for foreign traffic before sending anyway.
POLITE_MAX_WAIT = 5.0
#: Polite mode: smallest gap between our requests.
POLITE_MIN_GAP = 0.05
#: Retries of one request after a corrupted answer (never after a timeout).
CORRUPT_RETRIES = 1
#: Discovery stops after this many consecutive addresses that do not answer.
DISCOVERY_GAP = 2
#: Highest module index an ADR reaches on its own: ADR = n + 0x10 * group keeps n (index + 1)
#: in the low nibble (docs/protocol-notes.md §1.5), so a 15th/16th module of a group is only
#: listed in the master's all-modules answer, after the first 14.
DIRECT_ADDRESS_LIMIT = 14

ALL_MODULES = 0xFF


class Rs485Link:
    """A polled RS485 link to one battery group (master plus its slaves)."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        group: int = 0,
        request_timeout: float = 1.0,
        polite: bool = False,
        min_gap: float = 0.0,
        max_modules: int = MAX_MODULES,
    ) -> None:
        """Configure the link; nothing is opened until ``open`` or ``read_bank``.

        A group outside ``bounds.RS485_GROUPS`` raises ``InvalidGroupError`` here, before
        anything is opened (a ``PylontechError``, and a ``ValueError`` for older callers).
        """
        self.url = url
        self.baudrate = baudrate
        self.group = check_group(group)
        self.request_timeout = max(0.05, float(request_timeout))
        self.polite = polite
        self.min_gap = max(0.0, float(min_gap))
        self.max_modules = max(1, min(int(max_modules), MAX_MODULES))
        self.stats = LinkStats()
        self._traffic = TrafficLog()
        self._backoff = Backoff()
        self._conn: Connection | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue(FRAME_QUEUE)
        self._splitter = codec.FrameSplitter()
        self._awaiting: bytes | None = None
        self._request_lock = asyncio.Lock()
        self._poll_lock = asyncio.Lock()
        self._closed = False
        self._ever_connected = False
        self._frames_since_connect = 0
        self._last_request_end = 0.0
        self._last_foreign = float("-inf")
        self._polite_delay = 0.0
        self._dropped_seen = 0
        self._lost_error: LinkError | None = None
        # Discovery and caches.
        self._modules: tuple[int, ...] | None = None
        self._all_modules: bool | None = None  # master answers 0xFF requests
        self._polls_since_discovery = 0
        self._identity: dict[int, Module] = {}
        # Modules counted by the all-modules answer that no ADR of their own reaches.
        self._bulk_only: frozenset[int] = frozenset()
        self._bank_identity: dict[str, Any] = {}
        self._limits_supported = True
        self._parameters_supported = True
        self._master_info: Any = None
        self._stack_identity: dict[str, Any] = {}
        # 0x61 (V3.5 system analog data): None = not asked yet, then whether it is answered.
        self._system_analog: bool | None = None
        self._system_analog_refused = False  # RTN error: the firmware does not know 0x61
        # Answers that decoded but were implausible or beyond the bounds, per command.
        self._rejected: dict[str, int] = {}

    # -- public API -------------------------------------------------------------

    @property
    def modules(self) -> tuple[int, ...]:
        """Module indexes known to the link (discovered, or seen since); empty before."""
        return self._modules or ()

    async def open(self) -> None:
        """Connect and discover the modules; raises ``LinkError`` subclasses."""
        self._closed = False
        async with self._poll_lock:
            await self._connect()
            await self._discover()

    async def close(self) -> None:
        """Stop the reader and close the port; safe to call more than once."""
        self._closed = True
        await self._disconnect()

    async def discover(self) -> tuple[int, ...]:
        """Find the module indexes that answer (1 = master), probing each address.

        Probing stops after ``DISCOVERY_GAP`` consecutive silent addresses, at
        ``max_modules``, or once as many modules answered as the master's all-modules
        answer holds. The result is cached for the polls; it is redone on a poll with
        ``ReadPlan(identity=True)`` and when the all-modules answer grows.
        """
        if self._closed:
            raise LinkError("the RS485 link is closed")
        async with self._poll_lock:
            return await self._discover()

    async def read_bank(self, plan: ReadPlan) -> Bank:
        """Poll the bank once; reconnects (with backoff) when needed."""
        if self._closed:
            raise LinkError("the RS485 link is closed")
        async with self._poll_lock:
            with self.stats.measure_poll():
                try:
                    return await self._poll(plan)
                except ConnectionLostError:
                    # A dropped gateway or a replugged adapter: one retry on a fresh connection.
                    return await self._poll(plan)

    def diagnostics(self) -> dict[str, Any]:
        """Return settings, discovery state, counters and the recent frames (one per line)."""
        return {
            "link": "rs485",
            "url": redact(self.url),
            "baudrate": self.baudrate,
            "group": self.group,
            "request_timeout": self.request_timeout,
            "polite": self.polite,
            "min_gap": self.min_gap,
            "max_modules": self.max_modules,
            "connected": self.stats.connected,
            "modules": list(self.modules),
            "all_modules_requests": self._all_modules,
            "limits_supported": self._limits_supported,
            "system_analog_supported": self._system_analog,
            "rejected_answers": dict(self._rejected),
            "retry_in": round(self._backoff.remaining(), 1),
            "stats": self.stats.as_dict(),
            "traffic_redacted": True,
            "traffic": self.traffic(),
        }

    def traffic(self, *, redacted: bool = True) -> list[str]:
        """Recent frames, oldest first, one per line (``scripts/decode`` replays them).

        ``redacted`` (the default, and what ``diagnostics`` shows) replaces every barcode
        by ``*`` characters: see ``redact_rs485_traffic``.
        """
        lines = self._traffic.snapshot()
        return redact_rs485_traffic(lines) if redacted else lines

    # -- connection ---------------------------------------------------------------

    async def _connect(self) -> None:
        if self._closed:
            raise LinkError("the RS485 link is closed")
        if self._conn is not None and self._conn.is_open:
            return
        await self._disconnect()
        if not self._backoff.ready():
            raise reconnect_pending(redact(self.url), self._backoff, self.stats)
        conn = Connection(self.url, self.baudrate, self.stats)
        try:
            await conn.open()
        except LinkError as err:
            self._backoff.failed()
            self.stats.note_error(err)
            raise
        self._conn = conn
        self._lost_error = None
        if self.polite:
            # Listen before talking: the first request waits for one quiet period.
            self._last_foreign = self._last_request_end = time.monotonic()
        self._splitter = codec.FrameSplitter()
        self._dropped_seen = 0
        self._frames = asyncio.Queue(FRAME_QUEUE)
        self._frames_since_connect = 0
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read_loop(conn), name=f"pylontech rs485 reader {redact(self.url)}"
        )
        if self._ever_connected:
            self.stats.reconnects += 1
        self._ever_connected = True
        self.stats.connected = True

    async def _disconnect(self) -> None:
        if self._awaiting is not None and self._reader_task is not None:
            # Wake a request that is waiting for an answer that can no longer come.
            self._lost_error = ConnectionLostError(f"{redact(self.url)}: link closed")
            if self._frames.full():
                self._frames.get_nowait()
            self._frames.put_nowait(None)
        task, self._reader_task = self._reader_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        self.stats.connected = False

    async def _connection_lost(self, err: LinkError) -> None:
        """Forget a dead connection; a gateway that drops at once counts as a failure."""
        if self._closed:
            return  # closed by us, not lost
        self.stats.connection_drops += 1
        self.stats.note_error(err)
        if self._frames_since_connect == 0:
            self._backoff.failed()
        await self._disconnect()

    async def _read_loop(self, conn: Connection) -> None:
        """Cut the stream into frames; hand them to the waiting request or count them."""
        try:
            while True:
                data = await conn.read(None)
                if self._awaiting is None:
                    self.stats.foreign_bytes += len(data)
                    self._last_foreign = time.monotonic()
                frames = self._splitter.feed(data)
                dropped = self._splitter.dropped_bytes
                if dropped != self._dropped_seen:
                    self.stats.dropped_bytes += max(0, dropped - self._dropped_seen)
                    self._dropped_seen = dropped
                for frame in frames:
                    if self._awaiting is None:
                        self.stats.foreign_frames += 1
                        self._traffic.add(printable(frame).rstrip("\r"))
                        continue
                    if self._frames.full():
                        self._frames.get_nowait()
                    self._frames.put_nowait(frame)
        except LinkError as err:
            self._lost_error = err
            if self._frames.full():
                self._frames.get_nowait()
            self._frames.put_nowait(None)

    # -- requests -----------------------------------------------------------------

    async def _pace(self) -> None:
        """Keep the minimum gap; in polite mode wait for a quiet bus (bounded).

        Foreign traffic since our last exchange doubles the quiet period asked for
        (0.25 s up to ``POLITE_MAX_WAIT / 2`` on top of ``POLITE_QUIET``); a quiet bus
        resets it.
        """
        gap = max(self.min_gap, POLITE_MIN_GAP if self.polite else 0.0)
        wait = self._last_request_end + gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if not self.polite:
            return
        if self._last_foreign > self._last_request_end:
            self._polite_delay = min(POLITE_MAX_WAIT / 2, max(0.25, self._polite_delay * 2))
        else:
            self._polite_delay = 0.0
        quiet = POLITE_QUIET + self._polite_delay
        give_up = time.monotonic() + POLITE_MAX_WAIT
        while (now := time.monotonic()) < give_up:
            since = now - self._last_foreign
            if since >= quiet:
                break
            await asyncio.sleep(min(quiet - since, give_up - now) + 0.001)

    async def _request(self, command: int, adr: int, info: int | None = None) -> Any:
        """Send one request and return the decoded frame of its answer."""
        raw = codec.encode_request(command, adr, info=info)
        async with self._request_lock:
            await self._connect()
            conn = self._conn
            assert conn is not None
            await self._pace()
            while not self._frames.empty():
                if self._frames.get_nowait() is None:  # the reader saw the connection end
                    err = self._lost_error or ConnectionLostError(f"{redact(self.url)}: lost")
                    await self._connection_lost(err)
                    raise err
            self._splitter.reset()  # a stale partial frame must not glue onto the answer
            self._awaiting = raw
            try:
                try:
                    await conn.write(raw)
                except LinkError as err:
                    await self._connection_lost(err)
                    raise
                self.stats.requests += 1
                self._traffic.add(raw.decode("ascii").rstrip("\r"))
                return await self._await_answer(raw, adr)
            finally:
                self._awaiting = None
                self._last_request_end = time.monotonic()

    async def _await_answer(self, raw: bytes, adr: int) -> Any:
        deadline = time.monotonic() + self.request_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stats.timeouts += 1
                raise LinkTimeoutError(
                    f"no answer to {raw.decode('ascii').rstrip()} within {self.request_timeout} s"
                )
            try:
                async with asyncio.timeout(remaining):
                    frame = await self._frames.get()
            except TimeoutError:
                continue
            if frame is None:
                err = self._lost_error or ConnectionLostError(f"{redact(self.url)}: lost")
                await self._connection_lost(err)
                raise err
            if frame == raw:
                self.stats.echo_frames += 1  # two-wire adapters hear themselves
                continue
            self._traffic.add(printable(frame).rstrip("\r"))
            try:
                decoded = codec.parse_frame(frame)
            except ChecksumError:
                self.stats.checksum_errors += 1
                raise
            except ProtocolError:
                self.stats.decode_errors += 1
                raise
            if decoded.adr != adr or decoded.cid2 in _REQUEST_CODES:
                # Another master's request, or an answer meant for someone else.
                self.stats.foreign_frames += 1
                continue
            self._frames_since_connect += 1
            self._backoff.succeeded()  # the connection demonstrably works
            try:
                codec.check_response(decoded)
            except ResponseError:
                self.stats.response_errors += 1
                raise
            self.stats.frames += 1
            return decoded

    async def _transact(
        self, command: int, adr: int, decode: Callable[[Any], _T], info: int | None = None
    ) -> _T:
        """Request and decode; retry once after a corrupted answer (checksum, garbage, cut).

        Timeouts are not retried (an absent module would cost twice), nor are RTN errors
        and look-alike dialects (asking again gives the same answer).
        """
        attempt = 0
        while True:
            try:
                frame = await self._request(command, adr, info)
                try:
                    return decode(frame)
                except ImplausibleValueError as err:
                    self._reject(command, adr, err)
                    raise
                except ProtocolError as err:
                    if not isinstance(err, (ResponseError, DialectError)):
                        self.stats.decode_errors += 1
                    raise
            except (ResponseError, DialectError, ImplausibleValueError):
                # Asking again gives the same answer: an RTN, another dialect, or values
                # no supported battery sends (reserved bits, counts beyond the bounds).
                raise
            except ProtocolError:
                if attempt >= CORRUPT_RETRIES:
                    raise
                attempt += 1

    def _reject(self, command: int, adr: int, err: ImplausibleValueError) -> None:
        """Count an answer that decoded but cannot be true; it is not published."""
        self.stats.decode_errors += 1
        self.stats.skipped_records += 1
        key = f"0x{command:02X}"
        self._rejected[key] = self._rejected.get(key, 0) + 1
        self.stats.note_error(f"ADR 0x{adr:02X} {key}: {err}")
        _LOGGER.debug("ADR 0x%02X %s answer rejected: %s", adr, key, err)

    # -- discovery ------------------------------------------------------------------

    def _adr(self, index: int) -> int:
        return codec.address(index, self.group)

    async def _analog(self, index: int) -> codec.AnalogResponse:
        adr = self._adr(index)
        return await self._transact(
            codec.Command.GET_ANALOG_VALUES, adr, _single(codec.decode_analog), adr
        )

    async def _analog_all(self) -> codec.AnalogResponse:
        return await self._transact(
            codec.Command.GET_ANALOG_VALUES, self._adr(1), _every(codec.decode_analog), ALL_MODULES
        )

    async def _discover(self) -> tuple[int, ...]:
        """Probe each address with 0x42; addresses come from the request, never from a count.

        The all-modules answer carries no addresses (only records in ADR order), so it
        alone cannot tell which module of a chain with a gap is which; here it only says
        how many modules to expect, which spares the silent probes behind the last one.
        """
        self._polls_since_discovery = 0
        errors_before = self._error_marks()
        expected = await self._count_all_modules()
        found: list[int] = []
        dialect: DialectError | None = None
        misses = 0
        for index in range(1, self.max_modules + 1):
            if expected is not None and len(found) >= expected:
                break  # everyone the master counts has answered
            try:
                await self._analog(index)
            except DialectError as err:
                dialect = err  # a look-alike protocol answered: say so, not "no answer"
                break
            except ImplausibleValueError:
                pass  # the module answered (its values are rejected, not its presence)
            except (LinkTimeoutError, ProtocolError):
                misses += 1
                if misses >= DISCOVERY_GAP:
                    break  # a gap this wide ends the chain
                continue
            found.append(index)
            misses = 0
        if not found:
            raise dialect or self._silence_error(errors_before)
        self._bulk_only = frozenset()
        if expected is not None and found == list(
            range(1, min(expected, DIRECT_ADDRESS_LIMIT) + 1)
        ):
            # The master counts more modules than answered at their own address: beyond the
            # nibble limit they exist only as the all-modules records after the 14th.
            beyond = range(DIRECT_ADDRESS_LIMIT + 1, expected + 1)
            found.extend(beyond)
            self._bulk_only = frozenset(beyond)
        self._modules = tuple(found)
        return self._modules

    async def _count_all_modules(self) -> int | None:
        """How many records the master's all-modules 0x42 holds (``None``: not supported)."""
        if self._all_modules is False:
            return None
        try:
            analog = await self._analog_all()
        except (ResponseError, DialectError) as err:
            _LOGGER.debug("all-modules 0x42 refused (%s); asking each address", err)
            self._all_modules = False
            return None
        except (LinkTimeoutError, ProtocolError) as err:
            _LOGGER.debug("all-modules 0x42 not answered (%s); asking each address", err)
            if self._all_modules is None:
                self._all_modules = False  # never worked: do not pay its timeout every poll
            return None
        if not analog.records:
            self._all_modules = False
            return None
        self._all_modules = True
        return min(len(analog.records), self.max_modules)

    def _slots(self) -> tuple[int, ...]:
        """Addresses a poll asks: the master up to the last known module, gaps included."""
        known = self._modules or ()
        return tuple(range(1, known[-1] + 1)) if known else ()

    def _contiguous(self) -> bool:
        """Tell whether the known modules sit at 1..N, so the all-modules records map onto them."""
        known = self._modules or ()
        return bool(known) and known == self._slots()

    def _error_marks(self) -> tuple[int, int, int]:
        s = self.stats
        return (s.dropped_bytes, s.checksum_errors, s.decode_errors)

    def _silence_error(self, before: tuple[int, int, int]) -> LinkError:
        after = self._error_marks()
        where = f"{redact(self.url)} at {self.baudrate} baud"
        if any(a > b for a, b in zip(after, before, strict=True)):
            return WrongBaudError(
                f"{where}: bytes arrive but never form a valid Pylontech frame; check the baud "
                "rate (115200, or 9600 with DIP switch 1 up) and the A/B wiring"
            )
        return NoResponseError(
            f"{where}: no answer from the master (ADR 0x{self._adr(1):02X}); check the cable "
            "(RS485 pins 7/8), the group DIP switches and that the battery is on"
        )

    # -- polling --------------------------------------------------------------------

    async def _poll(self, plan: ReadPlan) -> Bank:
        await self._connect()
        self._polls_since_discovery += 1
        if self._modules is None or plan.identity:
            await self._discover()
        elif self._polls_since_discovery >= REDISCOVER_EVERY and not (
            self._all_modules and self._contiguous()
        ):
            await self._probe_next()
        errors_before = self._error_marks()
        rejected_before = self.stats.skipped_records
        modules = await self._read_analog()
        if not modules:
            if self.stats.skipped_records > rejected_before and self.stats.last_error:
                # Modules answered, but with values no supported battery sends.
                raise ImplausibleValueError(
                    f"every module's answer was rejected ({self.stats.last_error})"
                )
            raise self._silence_error(errors_before)
        if plan.alarms:
            modules = await self._read_alarms(modules)
        if plan.identity or any(index not in self._identity for index in modules):
            await self._read_identity(modules, full=plan.identity)
        master = modules.get(1)
        reference = None if master is None else master.full_capacity
        ordered = tuple(self._with_identity(modules[index], reference) for index in sorted(modules))
        bank = Bank(modules=ordered)
        if plan.limits and self._limits_supported:
            bank = await self._read_limits(bank)
        if plan.statistics and self._parameters_supported:
            bank = await self._read_parameters(bank)
        if self._bank_identity:
            bank = replace(bank, **self._bank_identity)
        if self._system_analog is not False or (plan.identity and not self._system_analog_refused):
            bank = await self._read_system_analog(bank, plan)
        return replace(bank, module_count=len(bank.modules)).with_totals()

    async def _probe_next(self) -> None:
        """Cheap check for a module added behind the last known one."""
        self._polls_since_discovery = 0
        known = self._modules or ()
        nxt = (known[-1] if known else 0) + 1
        if nxt > self.max_modules:
            return
        try:
            await self._analog(nxt)
        except (LinkTimeoutError, ProtocolError):
            return
        await self._discover()

    async def _read_analog(self, *, rediscover: bool = True) -> dict[int, Module]:
        """0x42 of every slot: one all-modules request when the chain has no gap."""
        known = self._modules or ()
        if self._all_modules and self._contiguous():
            try:
                analog = await self._analog_all()
            except ResponseError:
                self._all_modules = False
            except (LinkTimeoutError, ProtocolError) as err:
                _LOGGER.debug("all-modules 0x42 failed (%s); asking each address", err)
            else:
                records = analog.records[: self.max_modules]
                if len(records) == len(known):
                    return {
                        index: codec.module_from_analog(record, index, self.group)
                        for index, record in zip(known, records, strict=True)
                    }
                if len(records) > len(known) and rediscover:
                    # More modules than before: which addresses only probes can tell.
                    await self._discover()
                    return await self._read_analog(rediscover=False)
                # Fewer records than modules: only per-address requests tell which one left.
        modules: dict[int, Module] = {}
        for index in self._slots():
            if index in self._bulk_only:
                continue  # no address of its own: only the all-modules answer lists it
            try:
                analog = await self._analog(index)
            except (LinkTimeoutError, ProtocolError) as err:
                _LOGGER.debug("module %s: no 0x42 answer (%s)", index, err)
                continue
            if analog.records:
                modules[index] = codec.module_from_analog(analog.records[0], index, self.group)
        if any(index not in known for index in modules):
            # A module in a gap answered again: known once more, at its own address.
            self._modules = tuple(sorted(set(known) | set(modules)))
        return modules

    async def _read_alarms(self, modules: dict[int, Module]) -> dict[int, Module]:
        indexes = tuple(sorted(modules))
        if self._all_modules and self._contiguous() and indexes == (self._modules or ()):
            try:
                alarms = await self._transact(
                    codec.Command.GET_ALARM_INFO,
                    self._adr(1),
                    _every(codec.decode_alarm),
                    ALL_MODULES,
                )
            except (LinkTimeoutError, ProtocolError) as err:
                _LOGGER.debug("all-modules 0x44 failed (%s); asking each address", err)
            else:
                if len(alarms.records) == len(indexes):
                    return {
                        index: codec.apply_alarm(modules[index], record)
                        for index, record in zip(indexes, alarms.records, strict=True)
                    }
        updated = dict(modules)
        for index in indexes:
            adr = self._adr(index)
            try:
                alarms = await self._transact(
                    codec.Command.GET_ALARM_INFO, adr, _single(codec.decode_alarm), adr
                )
            except (LinkTimeoutError, ProtocolError) as err:
                _LOGGER.debug("module %s: no 0x44 answer (%s)", index, err)
                continue
            if alarms.records:
                updated[index] = codec.apply_alarm(modules[index], alarms.records[0])
        return updated

    async def _read_limits(self, bank: Bank) -> Bank:
        """0x92 of every present module: module limits, and the bank's derived from them.

        0x92 answers for the module asked, so each module is asked at its own ADR, on every
        poll that reads limits: limits follow SOC, temperature and protections (a tripped
        module drops to 0 A at once), and one 0x92 exchange is about 60 bytes (a few ms at
        115200 baud, ~60 ms at 9600). The bank's limits come from
        ``codec.bank_limits_from_modules`` (sum of currents, most conservative voltages)
        and only when every present module answered; otherwise they stay unknown.
        """
        answers: dict[int, codec.ManagementInfoResponse] = {}
        modules = list(bank.modules)
        for number, module in enumerate(modules):
            if module.index in self._bulk_only:
                continue  # no ADR of its own: its limits cannot be asked
            adr = self._adr(module.index)
            try:
                answer = await self._transact(
                    codec.Command.GET_MANAGEMENT_INFO, adr, codec.decode_management_info, adr
                )
            except ResponseError:
                if module.index == 1:
                    self._limits_supported = False  # old firmware: CID2 invalid; stop asking
                    return bank
                continue
            except (LinkTimeoutError, ProtocolError) as err:
                _LOGGER.debug("module %s: no 0x92 answer (%s)", module.index, err)
                continue
            answers[module.index] = answer
            modules[number] = replace(module, **codec.module_management_fields(answer))
        present = [module.index for module in bank.modules]
        return replace(
            bank, modules=tuple(modules), **codec.bank_limits_from_modules(answers, present)
        )

    async def _read_system_analog(self, bank: Bank, plan: ReadPlan) -> Bank:
        """0x61 (V3.5 system analog data) of the master, where the firmware answers it.

        Asked once to find out: an RTN error (0x04 "CID2 invalid" from firmware without
        V3.5) means never again; silence before it ever answered stops it until the next
        identity read. Its units are not confirmed by any Pylontech capture (docs/protocol-notes.md
        D15), so its values are used only when they agree with the modules' own (voltage
        within 1 V of their mean, current within 20 % / 2 A of their sum, SOC within 5
        points): a firmware with other scales is then rejected and counted, never shown.
        """
        adr = self._adr(1)
        try:
            answer = await self._transact(
                codec.Command.GET_SYSTEM_ANALOG, adr, codec.decode_system_analog, adr
            )
        except (ResponseError, DialectError) as err:
            _LOGGER.debug("0x61 refused (%s); not asked again", err)
            self._system_analog = False
            self._system_analog_refused = True
            return bank
        except (LinkTimeoutError, ProtocolError) as err:
            _LOGGER.debug("0x61 not answered (%s)", err)
            if not self._system_analog:
                self._system_analog = False  # never worked: ask again on an identity read
            return bank
        self._system_analog = True
        reason = _system_analog_disagrees(answer, bank)
        if reason is not None:
            self._reject(codec.Command.GET_SYSTEM_ANALOG, adr, ImplausibleValueError(reason))
            return bank
        values = codec.system_analog_fields(answer)
        extra = values.pop("extra")
        known = {key for key, _ in extra}
        return replace(
            bank, extra=(*(kv for kv in bank.extra if kv[0] not in known), *extra), **values
        )

    async def _read_parameters(self, bank: Bank) -> Bank:
        """0x47 of the master: its configured limits, kept as bank ``extra`` text."""
        try:
            params = await self._transact(
                codec.Command.GET_SYSTEM_PARAMETERS, self._adr(1), codec.decode_system_parameters
            )
        except ResponseError:
            self._parameters_supported = False
            return bank
        except (LinkTimeoutError, ProtocolError) as err:
            _LOGGER.debug("0x47 failed: %s", err)
            return bank
        extra = tuple((f"parameter_{k}", v) for k, v in codec.system_parameters_extra(params))
        return replace(bank, extra=bank.extra + extra)

    async def _optional(
        self, command: int, adr: int, decode: Callable[[Any], _T], **kw: Any
    ) -> _T | None:
        try:
            return await self._transact(command, adr, decode, **kw)
        except (LinkTimeoutError, ProtocolError) as err:
            _LOGGER.debug("0x%02X to ADR 0x%02X failed: %s", command, adr, err)
            return None

    async def _read_identity(self, modules: dict[int, Module], *, full: bool) -> None:
        """0x4F/0x51 from the master, 0x93/0x96 per module (only new ones unless ``full``)."""
        master = self._adr(1)
        if full or not self._bank_identity:
            identity: dict[str, Any] = {}
            version = await self._optional(
                codec.Command.GET_PROTOCOL_VERSION, master, codec.decode_protocol_version
            )
            if version is not None:
                identity["protocol_version"] = version.text
            maker = await self._optional(
                codec.Command.GET_MANUFACTURER_INFO, master, codec.decode_manufacturer_info
            )
            if maker is not None:
                identity.update(codec.identity_fields(manufacturer_info=maker))
                identity.pop("firmware", None)  # the master module's firmware comes from 0x96
                self._master_info = maker
                # The master answers 0x51 for the stack: every module gets its model.
                self._stack_identity = codec.stack_identity_fields(maker)
            self._bank_identity = identity
        for index in sorted(modules):
            if not full and index in self._identity:
                continue
            if index in self._bulk_only:
                # 0x93/0x96 need the module's own ADR, which it does not have: no identity.
                self._identity[index] = Module(index=index, group=self.group)
                continue
            adr = self._adr(index)
            serial = await self._optional(
                codec.Command.GET_SERIAL_NUMBER, adr, codec.decode_serial_number, info=adr
            )
            software = await self._optional(
                codec.Command.GET_SOFTWARE_VERSION, adr, codec.decode_software_version, info=adr
            )
            maker = self._master_info if index == 1 else None
            self._identity[index] = codec.apply_identity(
                Module(index=index, group=self.group),
                manufacturer_info=maker,
                serial=serial,
                software=software,
            )

    def _with_identity(self, module: Module, master_capacity: float | None) -> Module:
        """Return the module with its 0x93/0x96 identity and the stack's 0x51 model/manufacturer.

        0x51 names the master's model for the whole stack; a module whose rated capacity
        (0x42 full capacity) differs from the master's is of another model in a mixed stack
        (US2000C 50 Ah, US3000C 74 Ah, US5000 100 Ah), so it gets the manufacturer only.
        """
        known = self._identity.get(module.index)
        if known is not None:
            module = merge_modules(known, module)
        stack = dict(self._stack_identity)
        if module.index != 1 and not codec.same_rating(module.full_capacity, master_capacity):
            stack.pop("model", None)
        missing = {k: v for k, v in stack.items() if getattr(module, k) is None}
        return replace(module, **missing) if missing else module


#: 0x61 agreement with the modules' own values (see ``Rs485Link._read_system_analog``).
SYSTEM_ANALOG_VOLTAGE_TOLERANCE = 1.0  # V
SYSTEM_ANALOG_CURRENT_TOLERANCE = (2.0, 0.2)  # A, or this fraction of the modules' sum
SYSTEM_ANALOG_SOC_TOLERANCE = 5.0  # points


def _system_analog_disagrees(answer: codec.SystemAnalogResponse, bank: Bank) -> str | None:
    """Why a 0x61 answer contradicts the modules read in the same poll, if it does."""
    modules = bank.modules
    voltages = [m.voltage for m in modules if m.voltage is not None]
    if voltages:
        mean = sum(voltages) / len(voltages)
        if abs(answer.voltage - mean) > SYSTEM_ANALOG_VOLTAGE_TOLERANCE:
            return f"0x61 voltage {answer.voltage} V, the modules read {mean:.2f} V"
    currents = [m.current for m in modules if m.current is not None]
    if currents and len(currents) == len(modules):
        total = sum(currents)
        absolute, fraction = SYSTEM_ANALOG_CURRENT_TOLERANCE
        if abs(answer.current - total) > max(absolute, fraction * abs(total)):
            return f"0x61 current {answer.current} A, the modules read {total:.1f} A"
    socs = [m.soc for m in modules if m.soc is not None]
    if socs:
        mean_soc = sum(socs) / len(socs)
        if abs(answer.soc - mean_soc) > SYSTEM_ANALOG_SOC_TOLERANCE:
            return f"0x61 SOC {answer.soc} %, the modules read {mean_soc:.0f} %"
    return None


def _single(decode: Callable[..., _T]) -> Callable[[Any], _T]:
    return lambda frame: decode(frame, all_modules=False)


def _every(decode: Callable[..., _T]) -> Callable[[Any], _T]:
    return lambda frame: decode(frame, all_modules=True)


#: CID2 values of our read commands: a frame carrying one is a request, not an answer.
_REQUEST_CODES = frozenset(int(command) for command in codec.Command)


# -- barcode redaction of the traffic log ------------------------------------------------

#: A frame's head: SOI, VER, ADR, CID1, CID2 and LENGTH (LCHKSUM nibble + LENID).
_FRAME_HEAD = re.compile(r"~[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})[0-9A-Fa-f]([0-9A-Fa-f]{3})")
#: INFO length (hex characters) of the documented 0x93 answer: command byte + 16 ASCII.
_SERIAL_LENID = 2 * 17
_HEAD_CHARS = 13
_STAR_HEX = b"*".hex().upper()


def redact_rs485_traffic(lines: list[str]) -> list[str]:
    """Traffic lines with every barcode replaced by ``*`` (hex ``2A``), by pattern.

    Redacted: the INFO of any answer (CID2 0x00) shaped like a 0x93 answer (LENID 0x22,
    16 printable ASCII bytes after the command byte), and the printable bytes of any
    answer that follows a 0x93 request (other firmware may pad differently). Known
    values need not be known: a module that left the bank is covered too. A complete
    frame whose checksum was right gets a recomputed checksum, so it still replays.
    """
    out: list[str] = []
    after_serial_request = False
    for line in lines:
        head = _FRAME_HEAD.match(line)
        if head is None:
            out.append(line)
            continue
        cid2, lenid = int(head[1], 16), int(head[2], 16)
        if cid2 == codec.Command.GET_SERIAL_NUMBER:
            after_serial_request = True  # our request (or another master's)
            out.append(line)
            continue
        if cid2 == 0 and (lenid == _SERIAL_LENID or after_serial_request):
            line = _redact_serial_answer(line, lenid, strict=not after_serial_request)
        after_serial_request = False
        out.append(line)
    return out


def _redact_serial_answer(line: str, lenid: int, *, strict: bool) -> str:
    info_end = min(_HEAD_CHARS + lenid, len(line))
    info = line[_HEAD_CHARS:info_end]
    try:
        raw = bytes.fromhex(info)
    except ValueError:
        raw = b""
    if len(raw) < 2 or len(raw) * 2 != len(info):
        return line
    value = raw[1:]
    printable_bytes = [0x20 <= byte < 0x7F for byte in value]
    if strict and (len(value) != 16 or not all(printable_bytes)):
        return line  # not a barcode: a 17-byte INFO of something else
    if not any(printable_bytes):
        return line
    masked = "".join(
        _STAR_HEX if keep else f"{byte:02X}"
        for byte, keep in zip(value, printable_bytes, strict=True)
    )
    redacted = line[: _HEAD_CHARS + 2] + masked + line[info_end:]
    complete = len(line) == _HEAD_CHARS + lenid + 4
    if complete:
        body, check = line[1:-4], line[-4:]
        try:
            valid = int(check, 16) == codec.checksum(body.upper().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            valid = False
        if valid:
            new_body = redacted[1:-4]
            redacted = f"~{new_body}{codec.checksum(new_body.upper().encode('ascii')):04X}"
    return redacted
