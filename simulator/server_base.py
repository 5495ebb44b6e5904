"""Shared TCP server plumbing: ephemeral ports, connection tracking, clean shutdown, wire time."""

from __future__ import annotations

import asyncio
from collections import deque
import contextlib
import logging
import random
from typing import Any

from .bank import SimulatedBank
from .faults import LinkFault

_LOGGER = logging.getLogger(__name__)

HOST = "127.0.0.1"
READ_CHUNK = 4096
MAX_RECORDS = 10_000  # recorded requests/commands/frames kept per server
_GARBAGE = bytes(b for b in range(256) if b not in (0x7E, 0x0D, 0x0A)) + b"\xff\xff\x00\x00"


def serial_time(size: int, baud: int | None) -> float:
    """Seconds a UART needs for ``size`` bytes at ``baud`` (10 bits per byte: 8N1)."""
    return 0.0 if not baud else size * 10.0 / baud


class SimServer:
    """A TCP server on 127.0.0.1 bound to one link of a ``SimulatedBank``."""

    link = "base"

    def __init__(
        self,
        bank: SimulatedBank,
        *,
        host: str = HOST,
        port: int = 0,
        baud: int | None = None,
    ) -> None:
        """``port`` 0 = ephemeral; ``baud`` paces writes like a serial line (None = no delay)."""
        self.bank = bank
        self.host = host
        self._requested_port = port
        self.baud = baud
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections_total = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.rng = random.Random(bank.seed * 7919 + len(self.link))
        self.recorded: deque[Any] = deque(maxlen=MAX_RECORDS)

    @property
    def port(self) -> int:
        """The bound port (after ``start``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError(f"{self.link} server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``socket://127.0.0.1:PORT`` for serialx / pyserial / python-can."""
        return f"socket://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._server is not None

    @property
    def connection_count(self) -> int:
        """Clients connected right now."""
        return len(self._writers)

    async def start(self) -> None:
        """Bind and listen."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._handle, self.host, self._requested_port)

    async def stop(self) -> None:
        """Close the listener and every connection; wait for the handlers to end."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.disconnect_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    def disconnect_all(self) -> None:
        """Drop every client connection (a gateway restart)."""
        for writer in list(self._writers):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        self.connections_total += 1
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:  # a simulator bug must not kill the server loop
            _LOGGER.exception("%s simulator connection failed", self.link)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if task is not None:
                self._tasks.discard(task)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Talk to one client (subclasses)."""
        raise NotImplementedError

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Write ``data``, taking as long as the serial line would."""
        if not data or writer.is_closing():
            return
        delay = serial_time(len(data), self.baud)
        if delay:
            await asyncio.sleep(delay)
        writer.write(data)
        self.bytes_out += len(data)
        await writer.drain()

    def garbage(self, size: int) -> bytes:
        """Noise bytes that never contain a frame start or line end."""
        return bytes(self.rng.choice(_GARBAGE) for _ in range(max(1, size)))

    def take_fault(self, fault: LinkFault) -> bool:
        """Consume one count of a transport fault on this link."""
        return self.bank.faults.take_link_fault(self.link, fault) is not None

    def stall_seconds(self) -> float | None:
        """If a stall is injected, consume it and return its length."""
        active = self.bank.faults.take_link_fault(self.link, LinkFault.STALL)
        return active.seconds if active is not None else None
