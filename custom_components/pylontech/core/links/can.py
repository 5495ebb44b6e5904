"""CAN link: listens to the master's PYLON LV CAN broadcast through python-can.

The bus is created and shut down in an executor (python-can opens serial ports
and sockets synchronously). A ``can.Notifier`` thread receives frames and hands
them to the event loop with ``call_soon_threadsafe``; everything else runs on
the loop. ``on_update`` is called at most once per broadcast cycle, and only
when the bank changed. Nothing is ever sent except, when enabled, the
inverter keep-alive 0x305 (an allow-list of one id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import logging
import re
import time
from typing import Any
import urllib.parse

import can

from ..errors import (
    CanInterfaceError,
    CommandNotAllowedError,
    InvalidUrlError,
    NoResponseError,
    ProtocolError,
)
from ..model import Alarm, Bank, Protection
from ..protocol import can as codec
from .base import Backoff, LinkStats, ProbeResult, TrafficLog
from .transport import check_device, check_host, check_url, split_host_port

_LOGGER = logging.getLogger(__name__)

#: Interfaces this link knows how to configure; others get channel + bitrate.
SOCKETCAN, SLCAN, SOCKETCAND, VIRTUAL = "socketcan", "slcan", "socketcand", "virtual"
#: Quiet gap that ends a broadcast burst; the bank is published after it.
BURST_GAP = 0.25
#: Supervisor tick: stale check, reconnect, expiry.
TICK = 0.5
#: Receive timeout of the notifier thread (bounds how long ``stop`` waits for it).
NOTIFIER_TIMEOUT = 0.2
#: Stale for this many ``stale_after`` periods: reopen the bus (a gateway may have died).
REOPEN_AFTER_STALE = 3
#: Pylontech broadcasts ids 0x350..0x35F only (plus the 0x305 keep-alive we may send).
PYLON_FILTER = ({"can_id": 0x350, "can_mask": 0x7F0, "extended": False},)
#: The one id this link may transmit.
ALLOWED_TX_IDS = frozenset({codec.KEEPALIVE_ID})
KEEPALIVE_PERIOD = 1.0
#: A probe waits this long after the first frames so one whole cycle (~1 s) has arrived.
PROBE_CYCLE_WAIT = 1.2


_IFACE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,14}")


def _network_channel(channel: str) -> bool:
    scheme = urllib.parse.urlsplit(channel).scheme.lower()
    return scheme in ("socket", "tcp", "rfc2217")


class _Relay(can.Listener):
    """Runs in the notifier thread: pass frames to the loop, never block."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_frame: Callable[[int, bytes, bool], None],
        on_bus_error: Callable[[Exception], None],
    ) -> None:
        """Hand frames and bus errors to the link's callbacks, in ``loop``."""
        self._loop = loop
        self._on_frame = on_frame
        self._on_bus_error = on_bus_error
        self.notifier: can.Notifier | None = None

    def on_message_received(self, msg: can.Message) -> None:
        if msg.is_error_frame or msg.is_remote_frame:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us
            self._loop.call_soon_threadsafe(
                self._on_frame, msg.arbitration_id, bytes(msg.data), msg.is_extended_id
            )

    def on_error(self, exc: Exception) -> None:
        # Stop the notifier thread right here: a dead bus would raise on every recv.
        notifier = self.notifier
        if notifier is not None:
            notifier.stop(timeout=0)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_bus_error, exc)

    def stop(self) -> None:
        """Nothing to flush."""


class CanLink:
    """A listen-mostly link to the CAN broadcast of a Pylontech master."""

    def __init__(
        self,
        interface: str,
        channel: str,
        *,
        bitrate: int = 500000,
        listen_only: bool = True,
        keepalive: bool = False,
        on_update: Callable[[Bank], None],
        stale_after: float = 10.0,
        host: str | None = None,
        port: int | None = None,
        on_stale: Callable[[bool], None] | None = None,
    ) -> None:
        """Configure the link; ``start`` opens the bus.

        ``host``/``port`` are for ``socketcand``. ``keepalive`` needs a bus that may
        transmit, so it overrides ``listen_only`` on interfaces that have that mode.
        ``on_stale`` (optional) is told when the broadcast stops and resumes.
        """
        self.interface = interface
        self.channel = channel
        self.bitrate = bitrate
        self.listen_only = listen_only
        self.keepalive = keepalive
        self.stale_after = max(1.0, float(stale_after))
        self.host = host
        self.port = port
        self.stats = LinkStats()
        self.stale = True
        # The interface name candump would print (a URL channel has none).
        self._dump_name = channel if _IFACE_NAME.fullmatch(channel) else "can0"
        self._on_update = on_update
        self._on_stale = on_stale
        self._assembler = codec.CanBankAssembler()
        self._bank: Bank | None = None
        self._traffic = TrafficLog()
        self._backoff = Backoff()
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._burst_timer: asyncio.TimerHandle | None = None
        self._running = False
        self._ever_opened = False
        self._bus_failed = False
        self._last_frame = float("-inf")
        self._opened_at = 0.0
        self._dirty = False
        self._published_this_cycle = False
        self._foreign_frames = 0
        self._sent = 0
        self._update_calls = 0

    # -- public API -------------------------------------------------------------

    @property
    def bank(self) -> Bank | None:
        """The latest bank, or ``None`` before the first frame and while stale."""
        return None if self.stale else self._bank

    @property
    def cycles(self) -> int:
        """Whole broadcast cycles seen since the link started."""
        return self._assembler.cycles

    def assembled_bank(self) -> Bank | None:
        """Return the bank from every part held now, stale ones too, once one was published."""
        return self._assembler.bank() if self._bank is not None else None

    @property
    def firmware(self) -> codec.Firmware | None:
        """The frame set the battery broadcasts ("v1.2"/"v1.3"), once its frames arrived."""
        return self._assembler.firmware()

    @property
    def reported_flags(self) -> frozenset[Protection | Alarm] | None:
        """With the 0x35A frame set: the flags the BMS reports at all (slot not ``00``).

        ``None`` when every flag of the frame set is meaningful (0x359 bits) or no 0x35A
        has arrived yet; a flag outside a returned set is not observed by this BMS.
        """
        part = self._assembler.part(codec.SMA_ALARMS_ID)
        return part.reported_flags if isinstance(part, codec.CanSmaAlarms) else None

    async def start(self) -> None:
        """Open the bus and start listening; raises ``CanInterfaceError`` if it cannot open."""
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        self._check_settings()
        self._running = True
        try:
            await self._open_bus()
        except BaseException:
            self._running = False
            raise
        self._supervisor = self._loop.create_task(
            self._supervise(), name=f"pylontech can supervisor {self.channel}"
        )
        if self.keepalive:
            self._keepalive_task = self._loop.create_task(
                self._keepalive_loop(), name=f"pylontech can keepalive {self.channel}"
            )

    async def stop(self) -> None:
        """Stop every task, the notifier thread and the bus; safe to call twice."""
        self._running = False
        for task in (self._supervisor, self._keepalive_task):
            if task is not None:
                task.cancel()
        for task in (self._supervisor, self._keepalive_task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._supervisor = self._keepalive_task = None
        if self._burst_timer is not None:
            self._burst_timer.cancel()
            self._burst_timer = None
        await self._close_bus()

    def diagnostics(self) -> dict[str, Any]:
        """Return settings, broadcast state, part ages, counters and recent frames (candump -L)."""
        now = time.monotonic()
        ages = self._assembler.ages(now)
        return {
            "link": "can",
            "interface": self.interface,
            "channel": _redact_channel(self.channel),
            "bitrate": self.bitrate,
            "listen_only": self.listen_only,
            "keepalive": self.keepalive,
            "stale_after": self.stale_after,
            "stale": self.stale,
            "firmware": self._assembler.firmware(),
            "part_ages": {f"0x{k:03X}": round(v, 2) for k, v in sorted(ages.items())},
            "cycles": self._assembler.cycles,
            "unknown_ids": {f"0x{k:X}": v for k, v in self._assembler.unknown_ids.items()},
            # Frames refused (too short, counts beyond any bank, filler) are in
            # stats.decode_errors; values withheld from a decoded frame are tallied here.
            "implausible": dict(self._assembler.implausible),
            "last_implausible": self._assembler.last_implausible,
            "keepalives_sent": self._sent,
            "updates_published": self._update_calls,
            "retry_in": round(self._backoff.remaining(), 1),
            "stats": self.stats.as_dict(),
            "traffic": self._traffic.snapshot(),
        }

    # -- bus lifecycle --------------------------------------------------------------

    def _check_settings(self) -> None:
        """Refuse a malformed channel before any I/O (``InvalidUrlError``, ``PortNotFoundError``).

        An slcan channel is a serial device path or a gateway URL and gets the same checks
        as the serial links; socketcand's address must be a valid host and port.
        """
        if self.interface == SLCAN:
            check_url(self.channel)
            check_device(self.channel)
        self._bus_kwargs()

    def _bus_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"interface": self.interface, "channel": self.channel}
        listen_only = self.listen_only and not self.keepalive
        if self.interface == SLCAN:
            kwargs["bitrate"] = self.bitrate
            kwargs["listen_only"] = listen_only
            if _network_channel(self.channel):
                kwargs["sleep_after_open"] = 0.0  # no adapter to reset behind a socket
        elif self.interface == SOCKETCAND:
            channel, host, port = socketcand_target(self.channel, self.host, self.port)
            kwargs.update(channel=channel, host=host, port=port)
        elif self.interface not in (SOCKETCAN, VIRTUAL):
            kwargs["bitrate"] = self.bitrate
        kwargs["can_filters"] = [dict(f) for f in PYLON_FILTER]
        return kwargs

    def _create_bus(self) -> tuple[can.BusABC, can.Notifier, _Relay]:
        """Blocking: open the bus and start the notifier thread (runs in an executor)."""
        assert self._loop is not None
        bus = can.Bus(**self._bus_kwargs())
        relay = _Relay(self._loop, self._on_frame, self._on_bus_error)
        try:
            notifier = can.Notifier(bus, [relay], timeout=NOTIFIER_TIMEOUT)
        except BaseException:
            bus.shutdown()
            raise
        relay.notifier = notifier
        return bus, notifier, relay

    async def _open_bus(self) -> None:
        assert self._loop is not None
        try:
            bus, notifier, _relay = await self._loop.run_in_executor(None, self._create_bus)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._backoff.failed()
            error = _interface_error(exc, self.interface, self.channel)
            self.stats.note_error(error)
            raise error from exc
        if not self._running:  # stopped while opening
            await self._loop.run_in_executor(None, _shutdown, bus, notifier)
            return
        self._bus, self._notifier = bus, notifier
        self._bus_failed = False
        self._opened_at = time.monotonic()
        if self._ever_opened:
            self.stats.reconnects += 1
        self._ever_opened = True

    async def _close_bus(self) -> None:
        bus, notifier = self._bus, self._notifier
        self._bus = self._notifier = None
        self.stats.connected = False
        if bus is not None and self._loop is not None:
            await self._loop.run_in_executor(None, _shutdown, bus, notifier)

    def _on_bus_error(self, exc: Exception) -> None:
        """Handle the notifier thread dying (adapter unplugged, gateway closed)."""
        self.stats.connection_drops += 1
        self.stats.note_error(f"CAN bus error: {exc}")
        self._bus_failed = True
        self._set_stale(True)

    async def _supervise(self) -> None:
        """Every tick: reopen a failed bus (with backoff), expire old parts, track staleness."""
        while self._running:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            if self._bus_failed or self._bus is None:
                if self._bus is not None:
                    await self._close_bus()
                if self._backoff.ready(now):
                    try:
                        await self._open_bus()
                    except CanInterfaceError as err:
                        _LOGGER.debug("CAN reopen failed: %s", err)
                continue
            last = max(self._last_frame, self._opened_at)
            silent_for = now - last
            if silent_for > self.stale_after:
                self._set_stale(True)
                if silent_for > REOPEN_AFTER_STALE * self.stale_after and self._backoff.ready(now):
                    # A gateway that died silently: start over with a fresh connection.
                    self._backoff.failed(now)
                    await self._close_bus()
                    with contextlib.suppress(CanInterfaceError):
                        await self._open_bus()
            if self._assembler.expire(now, self.stale_after):
                self._bank = self._assembler.bank()

    def _set_stale(self, stale: bool) -> None:
        if stale == self.stale:
            return
        self.stale = stale
        self.stats.connected = not stale
        if stale:
            self.stats.timeouts += 1
            if self.stats.last_error is None or not self.stats.last_error.startswith("CAN bus"):
                self.stats.note_error(f"no CAN broadcast for {self.stale_after:.0f} s")
        if self._on_stale is not None:
            try:
                self._on_stale(stale)
            except Exception:
                _LOGGER.exception("on_stale callback failed")

    # -- receiving ------------------------------------------------------------------

    def _on_frame(self, can_id: int, data: bytes, extended: bool) -> None:
        """On the loop: feed one frame to the assembler; publish at most once per cycle."""
        if not self._running:
            return
        now = time.monotonic()
        self.stats.bytes_in += len(data)
        self._traffic.add(
            f"({time.time():.6f}) {self._dump_name} {can_id:03X}#{data.hex().upper()}"
        )
        if extended:
            self.stats.foreign_frames += 1
            return
        try:
            changed = self._assembler.update(can_id, data, now)
        except ProtocolError as err:
            self.stats.decode_errors += 1
            self.stats.note_error(err)
            return
        self.stats.frames += 1
        if can_id not in codec.BANK_IDS:
            self.stats.foreign_frames += 1
            return
        self._last_frame = now
        self._backoff.succeeded()
        self._set_stale(False)
        self.stats.last_success = time.time()
        if self._assembler.cycle_complete:
            # A new cycle began: anything still unpublished from the last one goes now.
            if self._dirty and not self._published_this_cycle:
                self._publish()
            self._published_this_cycle = False
        if changed:
            self._dirty = True
        if self._burst_timer is not None:
            self._burst_timer.cancel()
        assert self._loop is not None
        self._burst_timer = self._loop.call_later(BURST_GAP, self._burst_end)

    def _burst_end(self) -> None:
        self._burst_timer = None
        if self._dirty and not self._published_this_cycle and self._running:
            self._publish()
            self._published_this_cycle = True

    def _publish(self) -> None:
        self._dirty = False
        bank = self._assembler.bank()
        if bank == self._bank:
            return
        self._bank = bank
        self._update_calls += 1
        try:
            self._on_update(bank)
        except Exception:
            _LOGGER.exception("on_update callback failed")

    # -- sending (keep-alive only) ------------------------------------------------------

    def _send_blocking(self, can_id: int, data: bytes) -> None:
        if can_id not in ALLOWED_TX_IDS or data != codec.encode_keepalive():
            raise CommandNotAllowedError(f"CAN id 0x{can_id:X} is not on the send allow-list")
        bus = self._bus
        if bus is None:
            return
        bus.send(can.Message(arbitration_id=can_id, data=data, is_extended_id=False), timeout=0.5)

    async def send(self, can_id: int, data: bytes) -> None:
        """Transmit one frame; only the keep-alive (0x305, eight zero bytes) is allowed."""
        if can_id not in ALLOWED_TX_IDS or data != codec.encode_keepalive():
            raise CommandNotAllowedError(f"CAN id 0x{can_id:X} is not on the send allow-list")
        assert self._loop is not None
        await self._loop.run_in_executor(None, self._send_blocking, can_id, data)
        self._sent += 1
        self.stats.requests += 1
        self.stats.bytes_out += len(data)

    async def _keepalive_loop(self) -> None:
        while self._running:
            if self._bus is not None and not self._bus_failed:
                try:
                    await self.send(codec.KEEPALIVE_ID, codec.encode_keepalive())
                except (can.CanError, OSError, ValueError) as err:
                    self.stats.note_error(f"keep-alive not sent: {err}")
            await asyncio.sleep(KEEPALIVE_PERIOD)


def _shutdown(bus: can.BusABC, notifier: can.Notifier | None) -> None:
    """Blocking: stop the notifier thread, then release the bus."""
    if notifier is not None:
        notifier.stop(timeout=NOTIFIER_TIMEOUT * 10)
    try:
        bus.shutdown()
    except Exception:
        _LOGGER.debug("CAN bus shutdown failed", exc_info=True)


#: socketcand's default TCP port.
SOCKETCAND_PORT = 29536


def socketcand_target(
    channel: str, host: str | None, port: int | None
) -> tuple[str, str | None, int]:
    """Channel, host and port for socketcand; ``channel@host:port`` is split here.

    The port must be ASCII digits 1..65535 (``isdigit`` would let ``²`` through to
    ``int``); a bad host or port raises ``InvalidUrlError``.
    """
    if host is None and "@" in channel:
        channel, _, address = channel.partition("@")
        if ":" in address:
            host, port = split_host_port(address)
        else:
            host = check_host(address)
    elif host is not None:
        host = check_host(host)
    if port is None:
        port = SOCKETCAND_PORT
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidUrlError(f"socketcand port {port!r}: use a number from 1 to 65535")
    if not _IFACE_NAME.fullmatch(channel):
        raise InvalidUrlError(f"socketcand channel {channel!r}: use an interface name like can0")
    return channel, host, port


def _redact_channel(channel: str) -> str:
    parts = urllib.parse.urlsplit(channel)
    if parts.password or parts.username:
        return channel.replace(parts.netloc, parts.hostname or "")
    return channel


def _interface_error(exc: BaseException, interface: str, channel: str) -> CanInterfaceError:
    where = f"CAN {interface} {_redact_channel(channel)}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, can.CanInterfaceNotImplementedError) or (
        isinstance(exc, ValueError) and "interface" in text.lower()
    ):
        return CanInterfaceError(f"{where}: interface not available ({text})")
    if isinstance(exc, FileNotFoundError) or "No such device" in text or "not found" in text:
        return CanInterfaceError(f"{where}: interface not found ({text})")
    if isinstance(exc, PermissionError):
        return CanInterfaceError(f"{where}: permission denied ({text})")
    if isinstance(exc, ConnectionRefusedError) or "refused" in text.lower():
        return CanInterfaceError(f"{where}: connection refused ({text})")
    return CanInterfaceError(f"{where}: cannot open ({text})")


async def probe_can(
    interface: str,
    channel: str,
    bitrate: int = 500000,
    timeout: float = 3.0,
    **kwargs: Any,
) -> ProbeResult:
    """Listen for a Pylontech broadcast for up to ``timeout`` seconds.

    Listen-only, but opening an ``slcan`` channel writes the adapter's setup lines
    (``C``, the bit rate ``S6``, an empty line, then ``L``; ``C`` again on close): call it
    only for a port the user chose for CAN, never to find out what some other port is.
    """
    updated = asyncio.Event()
    link = CanLink(
        interface,
        channel,
        bitrate=bitrate,
        listen_only=True,
        on_update=lambda bank: updated.set(),
        stale_after=max(timeout, 1.0),
        **kwargs,
    )
    await link.start()
    try:
        deadline = time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                await updated.wait()
                # A probe that started mid-cycle has only part of the frame set: wait for
                # one whole broadcast cycle (module count, flags) while time allows.
                if link.cycles < 1:
                    await asyncio.sleep(
                        max(0.0, min(PROBE_CYCLE_WAIT, deadline - time.monotonic()))
                    )
        except TimeoutError:
            pass
        bank = link.assembled_bank()
        if bank is None:
            raise NoResponseError(
                f"CAN {interface} {_redact_channel(channel)}: no Pylontech broadcast within "
                f"{timeout:.0f} s (check wiring, 500 kbit/s, termination, the master's CAN port)"
            )
        return ProbeResult(
            serial_number=None,
            model=None,  # the broadcast names the manufacturer (0x35E), never the model
            module_count=bank.module_count or 0,
        )
    finally:
        await link.stop()
