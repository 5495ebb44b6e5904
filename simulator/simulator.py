"""``BatterySimulator``: one bank served on RS485, console, CAN (SLCAN) and a control port."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from custom_components.pylontech.core.model import Bank

from .bank import SimulatedBank
from .can_server import CanServer
from .console_server import ConsoleServer
from .control import ControlServer
from .faults import FaultInjector
from .rs485_server import Rs485Server
from .server_base import HOST


@dataclass(frozen=True, slots=True)
class Ports:
    """The bound ports (0 = that server is not running)."""

    rs485: int
    console: int
    can: int
    control: int


class BatterySimulator:
    """A running simulated bank.

    >>> async with BatterySimulator(modules=4, model="US3000C") as sim:
    ...     sim.rs485_url  # socket://127.0.0.1:PORT
    """

    def __init__(
        self,
        modules: int | Sequence[str] = 4,
        model: str = "US3000C",
        *,
        seed: int = 1,
        group: int = 0,
        host: str = HOST,
        rs485_port: int | None = 0,
        console_port: int | None = 0,
        can_port: int | None = 0,
        control_port: int | None = 0,
        baud: int | None = None,
        console_baud: int | None = None,
        prompt: str = "pylon>",
        console_layout: str | None = None,
        can_firmware: str = "v1.2",
        can_period: float = 1.0,
        tick: float | None = 1.0,
        time_scale: float = 1.0,
        bank: SimulatedBank | None = None,
    ) -> None:
        """Configure; nothing listens until ``start``.

        A port of ``None`` leaves that server out; 0 picks an ephemeral port. ``baud`` paces
        RS485 writes like the serial line (``console_baud`` the console's); None = no delay.
        ``tick`` is how often (s) the bank advances by ``tick * time_scale`` simulated
        seconds; None freezes the values (``bank.step`` still works).
        """
        self.bank = bank or SimulatedBank(modules, model, seed=seed, group=group)
        self.tick = tick
        self.time_scale = time_scale
        self.rs485 = (
            Rs485Server(self.bank, host=host, port=rs485_port, baud=baud)
            if rs485_port is not None
            else None
        )
        self.console = (
            ConsoleServer(
                self.bank,
                host=host,
                port=console_port,
                baud=console_baud,
                prompt=prompt,
                layout=console_layout,
            )
            if console_port is not None
            else None
        )
        self.can = (
            CanServer(self.bank, host=host, port=can_port, period=can_period, firmware=can_firmware)
            if can_port is not None
            else None
        )
        self.control = (
            ControlServer(self.bank, host=host, port=control_port)
            if control_port is not None
            else None
        )
        self._ticker: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def servers(self) -> list[Any]:
        """The configured servers."""
        return [s for s in (self.rs485, self.console, self.can, self.control) if s is not None]

    async def start(self) -> BatterySimulator:
        """Bind every server and start the clock."""
        try:
            for server in self.servers:
                await server.start()
        except BaseException:
            await self.stop()
            raise
        if self.tick and self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_loop(), name="sim-clock")
        return self

    async def stop(self) -> None:
        """Stop the clock and every server; idempotent; leaves no task behind."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        for server in self.servers:
            await server.stop()

    async def __aenter__(self) -> BatterySimulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _tick_loop(self) -> None:
        assert self.tick
        while True:
            await asyncio.sleep(self.tick)
            self.bank.step(self.tick * self.time_scale)

    # -- conveniences ----------------------------------------------------------------------

    @property
    def faults(self) -> FaultInjector:
        """Fault injection (``sim.faults.inject_protection(...)`` ...)."""
        return self.bank.faults

    def snapshot(self) -> Bank:
        """The truth right now."""
        return self.bank.snapshot()

    @property
    def ports(self) -> Ports:
        """Bound ports (0 for a server left out)."""
        return Ports(
            rs485=self.rs485.port if self.rs485 else 0,
            console=self.console.port if self.console else 0,
            can=self.can.port if self.can else 0,
            control=self.control.port if self.control else 0,
        )

    @property
    def rs485_url(self) -> str:
        """``socket://127.0.0.1:PORT`` of the RS485 server."""
        assert self.rs485 is not None, "RS485 server not configured"
        return self.rs485.url

    @property
    def console_url(self) -> str:
        """``socket://127.0.0.1:PORT`` of the console server."""
        assert self.console is not None, "console server not configured"
        return self.console.url

    @property
    def can_channel(self) -> str:
        """python-can ``slcan`` channel: ``socket://127.0.0.1:PORT``."""
        assert self.can is not None, "CAN server not configured"
        return self.can.url
