"""Security-review follow-ups: console deadline, device and URL checks, socketcand port,
RS485 discovery across a gap, barcode redaction of the raw traffic in diagnostics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import os
import sys
import time
import tty
from typing import Any

import pytest

from custom_components.pylontech.core.capture import decode_capture
from custom_components.pylontech.core.errors import (
    InvalidUrlError,
    LinkTimeoutError,
    PortNotFoundError,
    PortPermissionError,
)
from custom_components.pylontech.core.links import (
    CanLink,
    ConsoleLink,
    ReadPlan,
    Rs485Link,
    console as console_link,
)
from custom_components.pylontech.core.links.base import LinkStats
from custom_components.pylontech.core.links.can import socketcand_target
from custom_components.pylontech.core.links.console import redact_transcript
from custom_components.pylontech.core.links.rs485 import redact_rs485_traffic
from custom_components.pylontech.core.links.transport import (
    Connection,
    check_device,
    check_url,
    parse_port,
)
from custom_components.pylontech.core.protocol import console as codec, rs485
from simulator import ConsoleServer, Rs485Server, SimulatedBank, console_render as render

# -- 1. console: an overall deadline per command ---------------------------------------------


class PagingConsole:
    """A console peer whose ``paged`` commands page without end (one page per CR).

    Everything else is answered by the simulator's shell. Records every byte it got and
    counts the pages it sent.
    """

    def __init__(self, paged: Callable[[str], bool], page_delay: float = 0.1) -> None:
        self.shell = ConsoleServer(SimulatedBank(2, "US2000C", seed=5))
        self.paged = paged
        self.page_delay = page_delay
        self.pages = 0
        self.received = bytearray()
        self.commands: list[str] = []
        self.quit_after_pages: int | None = None
        self.quit = asyncio.Event()

    def _page(self, first: str | None) -> bytes:
        self.pages += 1
        rows = self.shell.payload("bat 1") or []
        head = f"{first}\n\r@{render.ROW_END}" if first is not None else "\r\n"
        body = render.ROW_END.join(rows[:2])
        return (head + body + render.ROW_END + render.PAGER_PROMPT).encode()

    def _listing_end(self) -> bytes:
        sep = render.TRAILER_SEPARATOR
        return f"{sep}{render.SUCCESS}{sep}$${sep}{self.shell.prompt}".encode()

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = bytearray()
        paging = False
        while data := await reader.read(256):
            self.received += data
            for byte in data:
                if paging:
                    if byte == 0x0D:
                        await asyncio.sleep(self.page_delay)
                        writer.write(self._page(None))
                    elif byte != 0x0A:  # "other key to exit"
                        paging = False
                        self.quit_after_pages = self.pages
                        self.quit.set()
                        writer.write(self._listing_end())
                    continue
                if byte not in (0x0D, 0x0A):
                    line.append(byte)
                    continue
                text = line.decode("latin-1").strip()
                line.clear()
                if not text:
                    if byte == 0x0D:
                        writer.write(f"\n\r{self.shell.prompt}".encode())
                    continue
                self.commands.append(text)
                if self.paged(text):
                    paging = True
                    writer.write(self._page(text))
                else:
                    writer.write(self.shell.respond(text))
            await writer.drain()


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch, fast_console: None) -> float:
    monkeypatch.setattr(console_link, "COMMAND_DEADLINE", 1.5)
    return 1.5


async def test_a_console_that_pages_without_end_is_cut_at_the_deadline(
    make_peer: Any, short_deadline: float
) -> None:
    console = PagingConsole(lambda text: text == "log")
    async with make_peer(console.handler) as server:
        link = ConsoleLink(server.url, command_timeout=0.5, wake_up=False)
        try:
            await link.open()
            started = time.monotonic()
            async with asyncio.timeout(10):  # without the overall deadline: 200 pages
                with pytest.raises(LinkTimeoutError, match=r"still answering 'log' after") as err:
                    await link.command("log")
            elapsed = time.monotonic() - started
            assert "pager page(s)" in str(err.value)
            assert "1.5 s limit" in str(err.value)
            # The per-page timeout (0.5 s) was renewed page after page; the overall one held.
            assert short_deadline <= elapsed < short_deadline + 2.0
            assert console.pages > short_deadline / 0.5
            # The listing was left with "other key" and the link works again.
            async with asyncio.timeout(2):
                await console.quit.wait()
            assert console.received.rstrip(b"\r\n").endswith(b"q")
            response = await link.command("pwr")
            assert response.ok
            assert link.stats.timeouts == 1
        finally:
            await link.close()
    # Only the allow-listed command, CR, CR LF and "q" went out.
    for text in bytes(console.received).replace(b"\n", b"\r").split(b"\r"):
        if text.strip() and text != b"q":
            codec.validate_command(text.decode())


async def test_a_poll_stops_at_a_command_that_pages_without_end(
    make_peer: Any, short_deadline: float
) -> None:
    console = PagingConsole(lambda text: text == "bat 1")
    async with make_peer(console.handler) as server:
        link = ConsoleLink(server.url, command_timeout=0.5, wake_up=False)
        try:
            started = time.monotonic()
            async with asyncio.timeout(10):
                with pytest.raises(LinkTimeoutError, match="still answering 'bat 1'"):
                    await link.read_bank(ReadPlan(cells=True, alarms=False))
            assert time.monotonic() - started < short_deadline + 2.0
            # Nothing more was asked in that poll: not "bat 2", not "info", not "pwrsys".
            assert console.commands == ["pwr", "bat 1"]
            assert link.stats.failed_polls == 1
            # The next poll (without cells) works on the same link.
            bank = await link.read_bank(ReadPlan(cells=False, limits=False))
            assert [m.index for m in bank.modules] == [1, 2]
        finally:
            await link.close()


# -- 2. transport: device paths and URLs -----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "socket://127.0.0.1:0",
        "socket://127.0.0.1:65536",
        "socket://127.0.0.1:\uff15\uff10\uff10\uff10",  # full-width digits
        "socket://127.0.0.1:\u00b2",  # superscript two
        "socket://127.0.0.1:+80",
        "socket://127.0.0.1: 80",
        "socket://127.0.0.1:80/path",
        "socket://127.0.0.1:80?timeout=1",
        "socket://127.0.0.1:80#x",
        "socket://user:pw@127.0.0.1:80",
        "socket://exa mple:80",
        "socket://h\u00e9llo:80",
        "socket://[::1:80",
        "socket://[zz::1]:80",
        "esphome://127.0.0.1:6053",
        "file:///dev/ttyUSB0",
        "/dev/../etc/passwd",
        "/dev/serial/../../etc/passwd",
        "/dev//ttyUSB0",
        "//dev/ttyUSB0",
        "/dev/ttyUSB0/",
        "/dev/./ttyUSB0",
        "dev/ttyUSB0",
        "ttyUSB0",
        "/dev/tty\x00USB0",
        "/dev/tty USB0",
        "/dev/tty;reboot",
        "/dev/ttyUSB0\x7f",
    ],
)
def test_bad_ports_and_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrlError):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "socket://127.0.0.1:1",
        "tcp://gateway.local:65535",
        "rfc2217://[::1]:4000",
        "SOCKET://10.0.0.5:8899",
        "/dev/ttyUSB0",
        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K5X2B-if00-port0",
        "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0",
    ],
)
def test_good_ports_and_urls_pass(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize("text", ["1", "502", "65535"])
def test_port_numbers(text: str) -> None:
    assert parse_port(text) == int(text)


@pytest.mark.parametrize("text", ["0", "65536", "", "-1", "80 ", "\u0665", "\u00b2", "1_0"])
def test_bad_port_numbers(text: str) -> None:
    with pytest.raises(InvalidUrlError):
        parse_port(text)


@pytest.fixture
def pty_path() -> Any:
    """A real character device (a pseudo-terminal); nothing answers on it."""
    try:
        master, slave = os.openpty()
    except OSError as err:
        pytest.skip(f"no pseudo-terminals here: {err}")
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_a_character_device_and_a_symlink_to_it_pass(pty_path: str, tmp_path: Any) -> None:
    check_device(pty_path)
    by_id = tmp_path / "usb-Prolific_PL2303-if00-port0"
    by_id.symlink_to(pty_path)
    check_device(str(by_id))


async def test_a_link_polls_through_a_symlink_to_its_device(tmp_path: Any) -> None:
    """/dev/serial/by-id/... style: the symlink is followed to the tty and used."""
    server = Rs485Server(SimulatedBank(2, "US2000C", seed=6))
    splitter = rs485.FrameSplitter()
    master, slave = os.openpty()
    tty.setraw(slave)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(master, 4096)
        except OSError:
            return
        answer = b"".join(a for raw in splitter.feed(data) if (a := server.answer(raw)))
        if answer:
            os.write(master, answer)

    loop.add_reader(master, readable)
    link_path = tmp_path / "usb-FTDI_FT232R_USB_UART_A10K5X2B-if00-port0"
    link_path.symlink_to(os.ttyname(slave))
    link = Rs485Link(str(link_path), request_timeout=0.5)
    try:
        bank = await link.read_bank(ReadPlan())
    finally:
        await link.close()
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)
    assert [m.index for m in bank.modules] == [1, 2]


def _fifo(tmp_path: Any) -> str:
    path = str(tmp_path / "ttyFIFO")
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: str(tmp / "ttyUSB0"), "a regular file"),
        (str, "a directory"),
        (_fifo, "a FIFO"),
        (lambda tmp: "/dev/null", "a memory device"),
    ],
)
async def test_anything_but_a_character_device_is_refused_before_opening(
    make: Callable[[Any], str], kind: str, tmp_path: Any
) -> None:
    (tmp_path / "ttyUSB0").write_bytes(b"keep me")
    path = make(tmp_path)
    if kind == "a memory device" and not sys.platform.startswith("linux"):
        pytest.skip("device majors are Linux's")
    link = Rs485Link(path, request_timeout=0.2)
    try:
        with pytest.raises(InvalidUrlError, match=f"not a serial device \\({kind}"):
            await link.read_bank(ReadPlan())
    finally:
        await link.close()
    assert (tmp_path / "ttyUSB0").read_bytes() == b"keep me"  # never opened, never written
    # A symlink to it is refused just the same.
    alias = tmp_path / "alias"
    alias.symlink_to(path)
    with pytest.raises(InvalidUrlError, match="not a serial device"):
        await Connection(str(alias), 115200, LinkStats()).open()


async def test_a_dangling_symlink_is_port_not_found(tmp_path: Any) -> None:
    alias = tmp_path / "usb-gone-if00-port0"
    alias.symlink_to(tmp_path / "ttyUSB7")
    with pytest.raises(PortNotFoundError, match="port not found"):
        await Connection(str(alias), 115200, LinkStats()).open()


def test_a_path_that_cannot_be_looked_at_is_permission_denied(tmp_path: Any) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may look everywhere")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(PortPermissionError, match="permission denied"):
            check_device(str(locked / "ttyUSB0"))
    finally:
        locked.chmod(0o700)


# -- 3. CAN socketcand address ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("can0@127.0.0.1:29537", ("can0", "127.0.0.1", 29537)),
        ("vcan1@gateway.local", ("vcan1", "gateway.local", 29536)),
        ("can0@[::1]:1", ("can0", "::1", 1)),
    ],
)
def test_socketcand_address(channel: str, expected: tuple[str, str, int]) -> None:
    assert socketcand_target(channel, None, None) == expected


@pytest.mark.parametrize(
    "channel",
    [
        "can0@127.0.0.1:\u00b2",
        "can0@127.0.0.1:\uff11\uff12",
        "can0@127.0.0.1:0",
        "can0@127.0.0.1:65536",
        "can0@127.0.0.1:",
        "can0@:29536",
        "can0@bad host:29536",
        "can 0@127.0.0.1:29536",
    ],
)
async def test_bad_socketcand_address_is_refused_before_opening(channel: str) -> None:
    with pytest.raises(InvalidUrlError):
        socketcand_target(channel, None, None)
    link = CanLink("socketcand", channel, on_update=lambda bank: None)
    try:
        with pytest.raises(InvalidUrlError):
            await link.start()
        assert link.stats.connected is False
    finally:
        await link.stop()


async def test_socketcand_connects_to_the_parsed_port(make_peer: Any) -> None:
    """A minimal socketcand peer: the handshake arrives on the port the channel names."""
    seen: list[str] = []

    async def socketcand(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"< hi >")
        await writer.drain()
        for _ in range(2):
            seen.append((await reader.read(256)).decode())
            writer.write(b"< ok >")
            await writer.drain()
        await reader.read(256)  # until the link closes

    async with make_peer(socketcand) as server:
        link = CanLink("socketcand", f"can0@127.0.0.1:{server.port}", on_update=lambda b: None)
        try:
            await link.start()
        finally:
            await link.stop()
    assert seen == ["< open can0 >", "< rawmode >"]


# -- 4. RS485 discovery across a gap ---------------------------------------------------------


async def test_a_gap_at_first_discovery_keeps_every_module_at_its_address(
    make_simulator: Any,
) -> None:
    async with make_simulator(modules=4, model="US3000C") as sim:
        sim.bank.set_soc(30.0, 1)
        sim.bank.set_soc(55.0, 3)
        sim.bank.set_soc(80.0, 4)
        sim.faults.drop_module(2)
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            assert await link.discover() == (1, 3, 4)
            bank = await link.read_bank(ReadPlan(identity=True))
            assert [m.index for m in bank.modules] == [1, 3, 4]
            truth = {m.index: m for m in sim.snapshot().modules}
            for module in bank.modules:
                expected = truth[module.index]
                assert module.serial_number == sim.bank.serial(module.index)
                assert module.voltage == pytest.approx(expected.voltage, abs=0.001)
                assert module.cell_voltages == pytest.approx(expected.cell_voltages, abs=0.001)
                assert module.soc == pytest.approx(expected.soc, abs=0.6)
            assert [round(m.soc or 0) for m in bank.modules] == [30, 55, 80]
            # With a gap the 0xFF records cannot be placed: per address, gap included.
            before = len(sim.rs485.requests)
            await link.read_bank(ReadPlan(alarms=False, limits=False))
            asked = [
                (r.request.command, r.request.adr)
                for r in sim.rs485.requests[before:]
                if r.request is not None
            ]
            assert asked == [(rs485.Command.GET_ANALOG_VALUES, adr) for adr in (2, 3, 4, 5)]

            sim.faults.restore_module(2)
            bank = await link.read_bank(ReadPlan())
            assert [m.index for m in bank.modules] == [1, 2, 3, 4]
            back = bank.module(2)
            assert back is not None
            assert back.serial_number == sim.bank.serial(2)
            assert back.voltage == pytest.approx(sim.snapshot().modules[1].voltage, abs=0.001)
            assert link.modules == (1, 2, 3, 4)
            # No gap any more: the next poll uses the all-modules form again.
            before = len(sim.rs485.requests)
            await link.read_bank(ReadPlan(alarms=False, limits=False))
            asked = [
                (r.request.command, r.request.target)
                for r in sim.rs485.requests[before:]
                if r.request is not None
            ]
            assert asked == [(rs485.Command.GET_ANALOG_VALUES, 0xFF)]
        finally:
            await link.close()


async def test_discovery_is_bounded_by_two_silent_addresses(make_simulator: Any) -> None:
    async with make_simulator(modules=6, model="US2000C") as sim:
        for index in (2, 4, 5):
            sim.faults.drop_module(index)
        link = Rs485Link(sim.rs485_url, request_timeout=0.2, max_modules=16)
        try:
            # 1 answers, 2 is a one-address gap, 3 answers, 4 and 5 end the chain: 6 unseen.
            assert await link.discover() == (1, 3)
            probed = [
                r.request.adr
                for r in sim.rs485.requests
                if r.request is not None and r.request.target != 0xFF
            ]
            assert probed == [0x02, 0x03, 0x04, 0x05, 0x06]
        finally:
            await link.close()


async def test_a_full_chain_is_discovered_without_silent_probes(make_simulator: Any) -> None:
    """The master's all-modules count ends discovery: no timeouts behind the last module."""
    async with make_simulator(modules=3, model="US2000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            assert await link.discover() == (1, 2, 3)
            assert link.stats.timeouts == 0
            assert link.diagnostics()["all_modules_requests"] is True
        finally:
            await link.close()


# -- 5. barcode redaction of the raw traffic ---------------------------------------------------


async def test_rs485_traffic_is_redacted_by_pattern_and_still_replays(
    make_simulator: Any,
) -> None:
    async with make_simulator(modules=3, model="US3000C") as sim:
        link = Rs485Link(sim.rs485_url, request_timeout=0.3)
        try:
            await link.read_bank(ReadPlan(identity=True))
            sim.faults.drop_module(3)  # its barcode stays in the ring, the bank forgets it
            bank = await link.read_bank(ReadPlan(identity=True))
            assert [m.index for m in bank.modules] == [1, 2]
            diagnostics = link.diagnostics()
            raw = link.traffic(redacted=False)
        finally:
            await link.close()
    serials = [sim.bank.serial(i) for i in (1, 2, 3)]
    raw_text = "\n".join(raw)
    assert all(s.encode().hex().upper() in raw_text for s in serials)
    assert diagnostics["traffic_redacted"] is True
    text = "\n".join(diagnostics["traffic"])
    for serial in serials:
        assert serial.encode().hex().upper() not in text
        assert serial not in text
    assert (b"*" * 16).hex().upper() in text
    assert len(diagnostics["traffic"]) == len(raw)
    # The redacted capture still decodes: checksums were recomputed, barcodes are stars.
    entries = list(rs485.iter_capture(text))
    # The only error: the US3000C's RTN 0x04 to the one 0x61 probe (no V3.5 firmware).
    assert [e.error for e in entries if e.error] == ["battery returned RTN 0x04 (CID2 invalid)"]
    barcodes = [
        e.response.serial_number
        for e in entries
        if e.command is rs485.Command.GET_SERIAL_NUMBER and e.response is not None
    ]
    assert len(barcodes) >= 5
    assert set(barcodes) == {"*" * 16}
    errors = decode_capture("rs485", text).errors
    assert [e.partition(": ")[2] for e in errors] == ["battery returned RTN 0x04 (CID2 invalid)"]


def test_rs485_redaction_of_a_serial_answer_without_the_documented_length() -> None:
    """After a 0x93 request, an answer of another length is scrubbed too (printable bytes)."""
    request = rs485.encode_request(rs485.Command.GET_SERIAL_NUMBER, 0x02, info=0x02)
    info = b"\x02" + b"PPTAH0123456789XYZ\x00\x00"  # 21 bytes, NUL-padded
    answer = rs485.encode_frame(0x20, 0x02, 0x46, 0x00, info)
    lines = [request.decode().rstrip("\r"), answer.decode().rstrip("\r")]
    redacted = redact_rs485_traffic(lines)
    assert redacted[0] == lines[0]
    assert b"PPTAH".hex().upper() not in redacted[1]
    frame = rs485.parse_frame(redacted[1] + "\r")
    assert frame.info == b"\x02" + b"*" * 18 + b"\x00\x00"
    # A 0x42 answer is left alone, whatever its bytes.
    analog = rs485.encode_frame(0x20, 0x02, 0x46, 0x00, b"\x00\x02" + b"A" * 15)
    assert redact_rs485_traffic([analog.decode().rstrip("\r")]) == [analog.decode().rstrip("\r")]


async def test_console_traffic_is_redacted_by_pattern(make_simulator: Any) -> None:
    async with make_simulator(modules=2, model="US3000C") as sim:
        link = ConsoleLink(sim.console_url)
        try:
            await link.read_bank(ReadPlan(identity=True, cells=False))
            diagnostics = link.diagnostics()
            raw = link.traffic(redacted=False)
        finally:
            await link.close()
    serials = [sim.bank.serial(i) for i in (1, 2)]
    assert all(s in "".join(raw) for s in serials)
    text = "".join(diagnostics["traffic"])
    assert not any(s in text for s in serials)
    assert text.count("Barcode") >= 2
    assert len(text) == len("".join(raw))


def test_console_redaction_across_chunks_and_without_the_label() -> None:
    chunks = ["Device address : 1\r\nBarc", "ode      : HPTC", "R03171112590\r\n", "pylon>"]
    redacted = redact_transcript(chunks)
    assert [len(c) for c in redacted] == [len(c) for c in chunks]
    assert "HPTCR" not in "".join(redacted)
    assert "".join(redacted).count("*") == 16
    # The label already left the ring: the value alone is recognised by its shape.
    assert redact_transcript(["R0317\r\n", " H222003C32220459  \r\n"]) == [
        "R0317\r\n",
        " " + "*" * 16 + "  \r\n",
    ]
    # Ordinary console words and numbers are left alone.
    rows = ["1     49950  -1200  20000  Dischg  Normal  2023-01-01 10:00:00\r\n"]
    assert redact_transcript(rows) == rows
