"""CAN bus of the master battery as an SLCAN (Lawicel ASCII) device over TCP.

python-can's ``slcan`` interface reaches it with ``channel="socket://127.0.0.1:PORT"`` (through
pyserial's ``serial_for_url``). On open python-can sends ``C``, the bit-rate command (``S6`` for
500 kbit/s), an empty line (no data bit rate) and ``O`` (or ``L`` for listen-only); on shutdown
``C``. Each command is answered with CR (OK) or BEL (error), ``V``/``N`` with version/serial.

While a client's channel is open the battery broadcasts the frame set of ``encode_bank`` once
per ``period`` (v1.2: 0x351 0x355 0x356 0x359 0x35C 0x35E; v1.3: 0x351 0x355 0x356 0x35A 0x35E
0x35F) as ``tIIILDD..`` lines. Frames sent to it (``t``/``T`` lines, e.g. the 0x305 keep-alive)
are recorded in ``received`` and answered ``z``/``Z`` like an adapter; it never changes state.

Arbitrary frames (what a foreign or broken BMS sends) go out with ``send_raw(id, data)`` or the
control line ``can raw 359 AAAAAA02AAAAAA02``: each cycle then carries that frame in place of
the simulator's own frame of the id (or after the cycle's frames), until ``clear_raw``;
``data=None`` (``can raw 356 omit``) leaves the id out.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field, replace
import time

from custom_components.pylontech.core.protocol import can

from .bank import SimulatedBank
from .faults import LinkFault
from .server_base import READ_CHUNK, SimServer

OK = b"\r"
ERROR = b"\a"
MAX_LINE = 64  # longest legal SLCAN line is 'T' + 8 + 1 + 16 = 26 characters
_BITRATE_COMMANDS = frozenset(f"S{n}" for n in range(10))
MAX_WRITE_BUFFER = 64 * 1024  # a client that stops reading loses broadcasts, not memory


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """A frame a client transmitted on the simulated bus."""

    time: float
    can_id: int
    data: bytes
    extended: bool = False


@dataclass(slots=True)
class _Session:
    writer: asyncio.StreamWriter
    open: bool = False
    listen_only: bool = False
    bitrate: str | None = None
    lines: list[str] = field(default_factory=list)


def slcan_line(can_id: int, data: bytes) -> bytes:
    """A standard-frame SLCAN line: ``t`` + 3 hex id + DLC + data hex + CR."""
    return f"t{can_id:03X}{len(data)}{data.hex().upper()}\r".encode()


class CanServer(SimServer):
    """SLCAN over TCP: setup commands, periodic broadcast, recorded inbound frames."""

    link = "can"

    def __init__(
        self,
        bank: SimulatedBank,
        *,
        period: float = 1.0,
        firmware: str = "v1.2",
        **kwargs: object,
    ) -> None:
        """``period`` between broadcast cycles (s); ``firmware`` ``"v1.2"`` or ``"v1.3"``."""
        super().__init__(bank, **kwargs)  # type: ignore[arg-type]
        if firmware not in ("v1.2", "v1.3"):
            raise ValueError("firmware must be 'v1.2' or 'v1.3'")
        self.period = period
        self.firmware = firmware
        self._sessions: dict[asyncio.StreamWriter, _Session] = {}
        self._broadcaster: asyncio.Task[None] | None = None
        self._paused_until = 0.0
        self.cycles = 0
        self.commands: list[str] = []

    @property
    def received(self) -> list[ReceivedFrame]:
        """Every frame clients transmitted (bounded)."""
        return list(self.recorded)

    @property
    def keepalives(self) -> int:
        """How many 0x305 keep-alive frames arrived."""
        return sum(1 for f in self.recorded if f.can_id == can.KEEPALIVE_ID)

    async def start(self) -> None:
        """Listen and start the broadcast loop."""
        await super().start()
        if self._broadcaster is None:
            self._broadcaster = asyncio.create_task(self._broadcast_loop(), name="sim-can-tx")

    async def stop(self) -> None:
        """Stop broadcasting, then close everything."""
        task, self._broadcaster = self._broadcaster, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()

    def frames(self) -> list[tuple[int, bytes]]:
        """One broadcast cycle of the current truth."""
        bank = replace(self.bank.snapshot(), manufacturer="PYLON")
        return can.encode_bank(bank, firmware=self.firmware)  # type: ignore[arg-type]

    def send_raw(self, can_id: int, data: bytes | None, *, count: int | None = None) -> None:
        """Broadcast ``data`` as frame ``can_id`` in each cycle (``count`` cycles, None = until
        ``clear_raw``), replacing the simulator's own frame of that id; ``None`` omits the id.
        """
        self.bank.faults.send_raw_can(can_id, data, count=count)

    def clear_raw(self, can_id: int | None = None) -> None:
        """Back to the simulator's own frame for ``can_id`` (None: for every id)."""
        self.bank.faults.clear_raw_can(can_id)

    def cycle_frames(self) -> list[tuple[int, bytes]]:
        """The frames of the next broadcast: the truth with the raw frames applied."""
        raw = self.bank.faults.take_raw_can()
        frames: list[tuple[int, bytes]] = []
        for can_id, data in self.frames():
            replacement = raw.pop(can_id) if can_id in raw else data
            if replacement is not None:
                frames.append((can_id, replacement))
        frames.extend((can_id, data) for can_id, data in raw.items() if data is not None)
        return frames

    async def broadcast_once(self) -> None:
        """Send one cycle to every open channel (applies the CAN link faults)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._paused_until:
            return
        stall = self.stall_seconds()
        if stall is not None:
            self._paused_until = loop.time() + stall
            return
        if self.take_fault(LinkFault.DROP):
            self.disconnect_all()
            return
        listening = any(s.open and not s.writer.is_closing() for s in self._sessions.values())
        # Counted raw frames are spent only on a cycle somebody hears.
        frames = self.cycle_frames() if listening else self.frames()
        payload = b"".join(slcan_line(i, d) for i, d in frames)
        if self.take_fault(LinkFault.CHECKSUM):
            # No checksum on SLCAN: a corrupted line (bad hex) is the closest equivalent.
            payload = payload.replace(b"t35", b"tZ5", 1)
        if self.take_fault(LinkFault.TRUNCATE):
            payload = payload[: len(payload) // 2]
        if self.take_fault(LinkFault.GARBAGE):
            payload = self.garbage(self.rng.randint(4, 20)) + b"\r" + payload
        self.cycles += 1
        for session in list(self._sessions.values()):
            writer = session.writer
            if not session.open or writer.is_closing():
                continue
            if writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                continue
            writer.write(payload)
            self.bytes_out += len(payload)

    async def _broadcast_loop(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.broadcast_once()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle the Lawicel command stream of one client."""
        session = _Session(writer)
        self._sessions[writer] = session
        buffer = bytearray()
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    return
                self.bytes_in += len(data)
                for byte in data:
                    if byte == 0x0D:
                        reply = self._line(session, buffer.decode("latin-1"))
                        buffer.clear()
                        writer.write(reply)
                        self.bytes_out += len(reply)
                    elif len(buffer) < MAX_LINE:
                        buffer.append(byte)
                await writer.drain()
        finally:
            self._sessions.pop(writer, None)

    def _line(self, session: _Session, line: str) -> bytes:
        """Answer one SLCAN command line."""
        line = line.strip("\n")
        if len(self.commands) < 1000:
            self.commands.append(line)
        if not line:
            return OK
        head = line[0]
        if line in _BITRATE_COMMANDS or (head == "s" and len(line) == 5):
            if session.open:
                return ERROR
            session.bitrate = line
            return OK
        if line in ("O", "L"):
            session.open = True
            session.listen_only = line == "L"
            return OK
        if line == "C":
            session.open = False
            return OK
        if line == "V":
            return b"V1013\r"
        if line == "v":
            return b"vSIM\r"
        if line == "N":
            return b"NPYSM\r"
        if line == "F":
            return b"F00\r"
        if head in "ZMmXWQ" or line.startswith("Y"):
            return OK
        if head in "tT":
            return self._transmit(session, line)
        return ERROR

    def _transmit(self, session: _Session, line: str) -> bytes:
        extended = line[0] == "T"
        id_len = 8 if extended else 3
        try:
            can_id = int(line[1 : 1 + id_len], 16)
            dlc = int(line[1 + id_len])
            data = bytes.fromhex(line[2 + id_len : 2 + id_len + 2 * dlc])
        except (ValueError, IndexError):
            return ERROR
        if dlc > 8 or len(data) != dlc:
            return ERROR
        self.recorded.append(ReceivedFrame(time.monotonic(), can_id, data, extended))
        if not session.open or session.listen_only:
            return ERROR  # an adapter in listen-only / closed state refuses to transmit
        return b"Z\r" if extended else b"z\r"
