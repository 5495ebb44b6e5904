"""A TCP proxy that makes the host→battery direction take serial wire time too.

The simulator paces what it sends (its answers) like a UART at the chosen baud, but reads
requests as fast as TCP delivers them. On a real half-duplex RS485/RS232 line the request
also occupies the wire: this proxy delays every chunk the link sends by its serial time
(10 bits per byte, 8N1) before forwarding it, and counts the bytes in both directions, so
a measured poll can be compared with the pure wire time of everything exchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

HOST = "127.0.0.1"


def wire_seconds(size: int, baud: int) -> float:
    """Serial time of ``size`` bytes at ``baud`` (1 start + 8 data + 1 stop bit)."""
    return size * 10.0 / baud


class SerialLineProxy:
    """``socket://127.0.0.1:PORT`` in front of a simulator port, pacing the upstream."""

    def __init__(self, target_port: int, baud: int) -> None:
        """Forward to ``127.0.0.1:target_port``; pace link→battery bytes at ``baud``."""
        self.target_port = target_port
        self.baud = baud
        self.bytes_up = 0
        self.bytes_down = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """The URL a link should open."""
        assert self._server is not None
        return f"socket://{HOST}:{self._server.sockets[0].getsockname()[1]}"

    def reset_counters(self) -> None:
        """Zero the byte counters (between polls)."""
        self.bytes_up = self.bytes_down = 0

    async def __aenter__(self) -> SerialLineProxy:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, paced=True),
                self._pump(up_reader, writer, paced=False),
            )
        except ConnectionError, asyncio.CancelledError:
            pass
        finally:
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, paced: bool
    ) -> None:
        while data := await reader.read(65536):
            if paced:
                self.bytes_up += len(data)
                await asyncio.sleep(wire_seconds(len(data), self.baud))
            else:
                self.bytes_down += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()
