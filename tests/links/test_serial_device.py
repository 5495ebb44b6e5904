"""Links on a real tty device: a pseudo-terminal stands in for the USB adapter.

The battery side reads the pty master and sees the baud rate the link set on the
slave (termios), so the console wake-up's switch to 1200 baud and back is checked
on the wire, not assumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import contextlib
import os
import termios
import tty
from typing import Any

import pytest

from custom_components.pylontech.core.errors import PortBusyError, PortNotFoundError
from custom_components.pylontech.core.links import (
    ConsoleLink,
    ConsoleState,
    ReadPlan,
    Rs485Link,
    console as console_link,
)
from custom_components.pylontech.core.links.base import LinkStats
from custom_components.pylontech.core.links.transport import Connection
from custom_components.pylontech.core.protocol import console as codec, rs485
from simulator import ConsoleServer, Rs485Server, SimulatedBank


@contextlib.contextmanager
def pty_device(on_data: Callable[[bytes, int], bytes | None]) -> Iterator[str]:
    """A pty whose master side calls ``on_data(bytes, baud)`` and writes back its answer."""
    try:
        master, slave = os.openpty()
    except OSError as err:  # a sandbox without /dev/pts
        pytest.skip(f"no pseudo-terminals here: {err}")
    tty.setraw(slave)  # no echo, no line discipline: a plain byte pipe like a UART
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(master, 4096)
        except OSError:
            return
        answer = on_data(data, termios.tcgetattr(slave)[4])
        if answer:
            os.write(master, answer)

    loop.add_reader(master, readable)
    try:
        yield os.ttyname(slave)
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


async def test_console_wake_up_switches_the_device_to_1200_baud_and_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console_link, "PROMPT_WAIT", 0.3)
    monkeypatch.setattr(console_link, "WAKE_UP_PAUSE", 0.2)
    shell = ConsoleServer(SimulatedBank(2, "US2000B", seed=5))
    seen: list[tuple[bytes, int]] = []
    state = {"awake": False, "buffer": b""}

    def battery(data: bytes, baud: int) -> bytes | None:
        seen.append((data, baud))
        if not state["awake"]:
            # Old firmware: protocol mode at 1200 baud until the wake-up frame.
            state["buffer"] = (state["buffer"] + data)[-64:]
            if baud == termios.B1200 and codec.WAKE_UP_FRAME in state["buffer"]:
                state["awake"] = True
            return None
        if baud != termios.B115200:
            return None
        text = data.decode("latin-1").strip()
        if not text:
            return b"\r\n\rpylon>"
        return shell.respond(text)

    with pty_device(battery) as path:
        link = ConsoleLink(path, command_timeout=1.0)
        try:
            await link.open()
            assert link.state is ConsoleState.WOKEN
            bank = await link.read_bank(ReadPlan(cells=False, limits=False))
        finally:
            await link.close()
    assert len(bank.modules) == 2
    frames = [baud for data, baud in seen if codec.WAKE_UP_FRAME in data]
    assert frames == [termios.B1200]
    assert any(baud == termios.B115200 and data == codec.WAKE_UP_NEWLINE for data, baud in seen)
    # Nothing but newlines, the wake-up frame and allow-listed commands went out.
    for data, _ in seen:
        text = data.decode("latin-1").strip()
        if text and data != codec.WAKE_UP_FRAME:
            codec.validate_command(text)


async def test_rs485_poll_over_a_device_path() -> None:
    server = Rs485Server(SimulatedBank(3, "US2000C", seed=6))
    splitter = rs485.FrameSplitter()
    bauds: set[int] = set()

    def battery(data: bytes, baud: int) -> bytes | None:
        bauds.add(baud)
        return b"".join(a for raw in splitter.feed(data) if (a := server.answer(raw)))

    with pty_device(battery) as path:
        link = Rs485Link(path, baudrate=9600, request_timeout=0.5)
        try:
            bank = await link.read_bank(ReadPlan(identity=True))
        finally:
            await link.close()
    assert [m.index for m in bank.modules] == [1, 2, 3]
    assert bank.serial_number == server.bank.serial(1)
    assert bauds == {termios.B9600}
    assert all(r.request is not None for r in server.requests)


async def test_unplugged_adapter(tmp_path: Any) -> None:
    link = Rs485Link(str(tmp_path / "ttyUSB9"))
    try:
        with pytest.raises(PortNotFoundError, match="port not found"):
            await link.read_bank(ReadPlan())
    finally:
        await link.close()


async def test_port_held_by_another_program_is_busy() -> None:
    with pty_device(lambda data, baud: None) as path:
        holder = Connection(path, 115200, LinkStats())
        await holder.open()
        try:
            second = Connection(path, 115200, LinkStats())
            with pytest.raises(PortBusyError, match="busy"):
                await second.open()
        finally:
            await holder.close()
