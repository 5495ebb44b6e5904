"""Helpers for the link tests: simulators on 127.0.0.1 and small purpose-built TCP peers.

Every test starts what it needs and stops it before it returns, so the Home Assistant
harness finds no lingering task, timer, thread or socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from typing import Any

import pytest

from custom_components.pylontech.core.links import console as console_link
from simulator import BatterySimulator


@contextlib.asynccontextmanager
async def simulator(**kwargs: Any) -> AsyncIterator[BatterySimulator]:
    """A running simulator with frozen values (``tick=None``) unless told otherwise."""
    kwargs.setdefault("tick", None)
    kwargs.setdefault("seed", 7)
    sim = BatterySimulator(**kwargs)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


class PeerServer:
    """A bare TCP server whose per-connection behaviour a test supplies."""

    def __init__(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            await self._handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            self._tasks.discard(task)

    async def start(self, port: int = 0) -> PeerServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)


@contextlib.asynccontextmanager
async def peer(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[PeerServer]:
    """A running ``PeerServer``."""
    server = await PeerServer(handler).start()
    try:
        yield server
    finally:
        await server.stop()


async def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Links talk over real sockets; the harness still limits connections to 127.0.0.1."""


@pytest.fixture
def fast_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorten the console's prompt and wake-up waits (the sequence stays the same)."""
    monkeypatch.setattr(console_link, "PROMPT_WAIT", 0.3)
    monkeypatch.setattr(console_link, "WAKE_UP_PAUSE", 0.1)


# Tests reach the helpers through fixtures (test modules are not a package).


@pytest.fixture
def make_simulator() -> Callable[..., contextlib.AbstractAsyncContextManager[BatterySimulator]]:
    """``async with make_simulator(modules=4, ...) as sim``."""
    return simulator


@pytest.fixture
def make_peer() -> Callable[..., contextlib.AbstractAsyncContextManager[PeerServer]]:
    """``async with make_peer(handler) as server``."""
    return peer


@pytest.fixture
async def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    return await free_port()
