"""Run a ``BatterySimulator`` on its own event loop in a background thread.

For measurements of Home Assistant's event loop: with the simulator in another thread,
CPU time spent in the loop thread is the integration's (link, codec, coordinator,
entities), not the simulator's. ``stop()`` joins the thread, so nothing lingers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import concurrent.futures
import threading
from typing import Any


class ThreadedSimulator:
    """``with ThreadedSimulator(modules=16) as sim: sim.rs485_url ...``."""

    def __init__(self, **kwargs: Any) -> None:
        """``kwargs`` go to ``BatterySimulator``."""
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bench-sim", daemon=True
        )
        self.sim: Any = None

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` in the simulator's thread and return its result."""

        async def wrapper() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(10)

    def run(self, factory: Callable[[], Any]) -> Any:
        """Await ``factory()`` (a coroutine) in the simulator's loop; return its result."""
        return asyncio.run_coroutine_threadsafe(factory(), self._loop).result(30)

    @property
    def thread(self) -> threading.Thread:
        """The simulator's thread (to exclude it from CPU accounting)."""
        return self._thread

    def __enter__(self) -> ThreadedSimulator:
        from simulator import BatterySimulator

        self._thread.start()

        async def start() -> Any:
            return await BatterySimulator(**self._kwargs).start()

        self.sim = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sim is not None:
            future = asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop)
            try:
                future.result(10)
            except concurrent.futures.TimeoutError:
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
