"""Which battery port answers where the probed one did not: console, RS485 or CAN."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from custom_components.pylontech.core.errors import LinkError, WrongPortError
from custom_components.pylontech.core.links import probe as probe_module
from custom_components.pylontech.core.links.probe import (
    PORT_CAN,
    PORT_CONSOLE,
    PORT_RS485,
    classify,
    identify_port,
    probe_console,
    probe_rs485,
)
from custom_components.pylontech.core.protocol import rs485 as rs485_codec


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\r\n\r\npylon>", PORT_CONSOLE),
        (b"V\r\nUnknown command 'V' - try 'help'\r\npylon_debug>  ", PORT_CONSOLE),
        (rs485_codec.encode_frame(0x20, 0x02, 0x46, 0x00, b""), PORT_RS485),
        (b"\rV1013\r", PORT_CAN),
        (b"t3518E802E803E8031E02\rt3554640064000000\r", PORT_CAN),
        (b"V\r", None),  # a two-wire adapter echoing the question is no answer
        (b"\xff\xfe\x00garbage\r\n", None),
        (b"", None),
    ],
)
def test_classify(data: bytes, expected: str | None) -> None:
    """A prompt line, a checksum-valid frame, SLCAN lines; noise and echoes say nothing."""
    assert classify(data) == expected


def test_classify_refuses_a_frame_with_a_bad_checksum() -> None:
    frame = bytearray(rs485_codec.encode_frame(0x20, 0x02, 0x46, 0x00, b""))
    frame[-2] = ord("0") if frame[-2] != ord("0") else ord("1")
    assert classify(bytes(frame)) is None


@pytest.fixture
def fast_sniff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe_module, "SNIFF_LISTEN", 0.05)
    monkeypatch.setattr(probe_module, "SNIFF_ANSWER", 0.3)


@pytest.mark.usefixtures("fast_sniff")
async def test_identify_port_on_each_simulated_port(make_simulator: Any) -> None:
    """Each of the simulator's ports is recognised by what it answers."""
    async with make_simulator(modules=2) as sim:
        assert await identify_port(sim.console_url, 115200, probed=PORT_RS485) == PORT_CONSOLE
        assert await identify_port(sim.can_channel, 115200, probed=PORT_RS485) == PORT_CAN
        assert await identify_port(sim.rs485_url, 115200, probed=PORT_CONSOLE) == PORT_RS485
        # The kind that was probed is not "another port".
        assert await identify_port(sim.console_url, 115200, probed=PORT_CONSOLE) is None
        await asyncio.sleep(0.05)
        assert sim.console.connection_count == 0  # every sniff closed its connection


@pytest.mark.usefixtures("fast_sniff")
async def test_identify_port_says_nothing_about_silence(make_peer: Any, unused_port: int) -> None:
    """A silent peer or a refused connection identifies nothing and raises nothing."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass

    async with make_peer(silent) as server:
        assert await identify_port(server.url, 115200, probed=PORT_RS485) is None
    assert await identify_port(f"socket://127.0.0.1:{unused_port}", 115200, probed="rs485") is None


@pytest.mark.usefixtures("fast_sniff")
async def test_probes_name_the_port_they_found(make_simulator: Any) -> None:
    """RS485 on the console port, RS485 on the CAN port: the error says which port it is."""
    async with make_simulator(modules=1) as sim:
        with pytest.raises(WrongPortError) as console:
            await probe_rs485(sim.console_url, 115200, timeout=0.3)
        with pytest.raises(WrongPortError) as can:
            await probe_rs485(sim.can_channel, 115200, timeout=0.3)
    assert console.value.found == PORT_CONSOLE
    assert "console" in str(console.value)
    assert can.value.found == PORT_CAN


@pytest.mark.usefixtures("fast_sniff", "fast_console")
async def test_console_probe_on_the_rs485_port(make_simulator: Any) -> None:
    async with make_simulator(modules=1) as sim:
        with pytest.raises(WrongPortError) as rs485:
            await probe_console(sim.rs485_url, wake_up=False)
    assert rs485.value.found == PORT_RS485


async def test_probe_reports_the_cause_not_the_reconnect_wait(make_peer: Any) -> None:
    """A gateway that drops every connection: the probe's error is the drop itself."""

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with make_peer(drop) as server:
        with pytest.raises(LinkError) as caught:
            await probe_rs485(server.url, 115200, timeout=0.3)
    assert "reconnecting" not in str(caught.value)
    assert "last error" not in str(caught.value)
