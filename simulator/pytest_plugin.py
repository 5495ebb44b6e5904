"""pytest fixtures: a running simulator on ephemeral 127.0.0.1 ports, torn down cleanly.

Registered by ``tests/conftest.py`` (``pytest_plugins = ["simulator.pytest_plugin"]``).

* ``battery_simulator`` - 4 x US3000C, seed 1, every server, values frozen (``tick=None``) so
  a link's reading can be compared with ``battery_simulator.snapshot()``; CAN broadcasts
  every 0.2 s. Advance time explicitly with ``battery_simulator.bank.step(seconds)``.
* ``battery_simulator_factory`` - ``await factory(modules=..., model=..., **options)`` for any
  other configuration (same keyword arguments as ``BatterySimulator``); every simulator it
  made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from .simulator import BatterySimulator

FIXTURE_DEFAULTS: dict[str, Any] = {"tick": None, "can_period": 0.2}

SimulatorFactory = Callable[..., Awaitable[BatterySimulator]]


@pytest_asyncio.fixture
async def battery_simulator_factory(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SimulatorFactory]:
    """Start simulators on demand; all are stopped when the test ends.

    Under pytest-socket (Home Assistant's test harness) this enables sockets for the test;
    the harness still refuses every host but 127.0.0.1.
    """
    try:
        request.getfixturevalue("socket_enabled")
    except pytest.FixtureLookupError:
        pass  # plain pytest: sockets are not restricted
    started: list[BatterySimulator] = []

    async def factory(*args: Any, **kwargs: Any) -> BatterySimulator:
        options = FIXTURE_DEFAULTS | kwargs
        simulator = BatterySimulator(*args, **options)
        await simulator.start()
        started.append(simulator)
        return simulator

    try:
        yield factory
    finally:
        for simulator in reversed(started):
            await simulator.stop()


@pytest_asyncio.fixture
async def battery_simulator(
    battery_simulator_factory: SimulatorFactory,
) -> BatterySimulator:
    """A running 4 x US3000C bank (seed 1) with RS485, console, CAN and control servers."""
    return await battery_simulator_factory(modules=4, model="US3000C", seed=1)
