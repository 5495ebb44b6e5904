"""Transport error translation, backoff, traffic log bounds, and the config-flow probes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import errno
import random
import socket
from typing import Any, ClassVar, override

import pytest
import serialx
from serialx.platforms.serial_socket import SocketSerial, SocketSerialTransport

from custom_components.pylontech.core.errors import (
    ConnectionLostError,
    GatewayUnreachableError,
    InvalidUrlError,
    LinkError,
    NoResponseError,
    PortBusyError,
    PortNotFoundError,
    PortPermissionError,
    WrongBaudError,
)
from custom_components.pylontech.core.links import (
    ProbeResult,
    probe_can,
    probe_console,
    probe_rs485,
)
from custom_components.pylontech.core.links.base import (
    MAX_TRAFFIC_LINE,
    Backoff,
    LinkStats,
    TrafficLog,
)
from custom_components.pylontech.core.links.transport import (
    Connection,
    can_change_baud,
    canonical_url,
    check_url,
    link_error_from,
    redact,
)

# -- transport -----------------------------------------------------------------------------


async def test_missing_device_is_port_not_found() -> None:
    conn = Connection("/dev/ttyPYLONTECH_NOPE0", 115200, LinkStats())
    with pytest.raises(PortNotFoundError, match="port not found"):
        await conn.open()


async def test_unreadable_device_is_permission_denied(tmp_path: Any) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root opens every file")
    # A directory this user may not search: the device behind it cannot even be looked at.
    locked = tmp_path / "serial"
    locked.mkdir()
    locked.chmod(0)
    conn = Connection(str(locked / "ttyFAKE"), 115200, LinkStats())
    try:
        with pytest.raises(PortPermissionError, match="permission denied"):
            await conn.open()
    finally:
        locked.chmod(0o700)


async def test_refused_gateway(unused_port: int) -> None:
    conn = Connection(f"socket://127.0.0.1:{unused_port}", 115200, LinkStats())
    with pytest.raises(GatewayUnreachableError, match="connection refused"):
        await conn.open()


@pytest.mark.parametrize(
    "url",
    [
        "",
        "socket://127.0.0.1",
        "socket://:5000",
        "bogus://x",
        "loop://",
        "/dev/tty\nUSB0",
        "x" * 600,
    ],
)
def test_malformed_urls_are_refused_before_io(url: str) -> None:
    with pytest.raises(InvalidUrlError):
        check_url(url)


@pytest.mark.parametrize(
    ("error", "expected", "text"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file"), PortNotFoundError, "port not found"),
        (OSError(errno.ENODEV, "No such device"), PortNotFoundError, "port not found"),
        (PermissionError(errno.EACCES, "Permission denied"), PortPermissionError, "dialout"),
        (OSError(errno.EBUSY, "Device busy"), PortBusyError, "busy"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), GatewayUnreachableError, "refused"),
        (TimeoutError(), GatewayUnreachableError, "did not accept"),
        (socket.gaierror(-2, "Name or service not known"), GatewayUnreachableError, "host name"),
        (OSError(errno.EHOSTUNREACH, "No route"), GatewayUnreachableError, "unreachable"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), ConnectionLostError, "lost"),
        (serialx.SerialException("device reports readiness but no data"), LinkError, "serial"),
        (ValueError("Invalid socket URI"), InvalidUrlError, "Invalid"),
    ],
)
def test_every_transport_failure_becomes_a_link_error(
    error: BaseException, expected: type[LinkError], text: str
) -> None:
    translated = link_error_from(error, "socket://127.0.0.1:4000")
    assert type(translated) is expected
    assert text in str(translated)
    assert "127.0.0.1:4000" in str(translated)


def test_redact_hides_credentials() -> None:
    assert redact("rfc2217://user:secret@10.0.0.5:4000") == "rfc2217://10.0.0.5:4000"
    assert redact("/dev/ttyUSB0") == "/dev/ttyUSB0"


async def test_connection_counts_bytes_and_reports_a_peer_close(make_peer: Any) -> None:
    async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()

    async with make_peer(echo_once) as server:
        stats = LinkStats()
        conn = Connection(server.url, 115200, stats)
        await conn.open()
        try:
            await conn.write(b"hello")
            assert await conn.read(1.0) == b"hello"
            with pytest.raises(ConnectionLostError, match="closed by the peer"):
                await conn.read(1.0)
            assert not conn.is_open
            with pytest.raises(ConnectionLostError):
                await conn.write(b"x")
        finally:
            await conn.close()
            await conn.close()
        assert (stats.bytes_in, stats.bytes_out) == (5, 5)


async def test_read_timeout_returns_nothing(make_peer: Any) -> None:
    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)

    async with make_peer(quiet) as server:
        conn = Connection(server.url, 115200, LinkStats())
        await conn.open()
        try:
            assert await conn.read(0.05) == b""
            assert conn.is_open
        finally:
            await conn.close()


# -- backoff and the traffic log -----------------------------------------------------------------


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    random.seed(4)
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=0.2)
    assert backoff.ready(0.0)
    delays = [backoff.failed(now=0.0) for _ in range(10)]
    for number, delay in enumerate(delays):
        nominal = min(60.0, 2.0**number)
        assert nominal * 0.8 <= delay <= nominal * 1.2
    assert max(delays) <= 72.0
    assert not backoff.ready(1.0)
    assert backoff.remaining(0.0) == pytest.approx(delays[-1])
    backoff.succeeded()
    assert backoff.ready(0.0)
    assert backoff.delay() == 0.0


def test_traffic_log_is_bounded() -> None:
    log = TrafficLog(maxlen=5)
    for number in range(50):
        log.add(f"line {number}")
    assert log.snapshot() == [f"line {n}" for n in range(45, 50)]
    log.add("x" * (MAX_TRAFFIC_LINE * 3))
    assert len(log.snapshot()[-1]) <= MAX_TRAFFIC_LINE + 1
    small = TrafficLog(maxlen=1000, max_chars=100)
    for number in range(100):
        small.add(f"{number:09d}")
    assert small.chars == sum(map(len, small.snapshot())) <= 100
    assert small.snapshot()[-1] == "000000099"


def test_stats_as_dict_is_json_ready() -> None:
    import json

    stats = LinkStats()
    stats.note_error(ValueError("x" * 1000))
    data = stats.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert len(data["last_error"]) <= 300
    assert {
        "connected",
        "bytes_in",
        "bytes_out",
        "frames",
        "checksum_errors",
        "decode_errors",
    } <= set(data)


# -- probes ------------------------------------------------------------------------------------


async def test_probe_rs485(make_simulator: Any) -> None:
    async with make_simulator(modules=3, model="US3000C") as sim:
        result = await probe_rs485(sim.rs485_url, 115200)
        await asyncio.sleep(0.05)
        assert sim.rs485.connection_count == 0
    assert isinstance(result, ProbeResult)
    assert result.module_count == 3
    assert result.model == "US3000C"
    assert result.serial_number == sim.bank.serial(1)


async def test_probe_rs485_failures(make_simulator: Any, unused_port: int) -> None:
    with pytest.raises(GatewayUnreachableError):
        await probe_rs485(f"socket://127.0.0.1:{unused_port}", 115200)
    async with make_simulator(modules=1) as sim:
        sim.faults.inject_link_fault("rs485", "wrong_baud")
        with pytest.raises(WrongBaudError):
            await probe_rs485(sim.rs485_url, 9600, timeout=0.2)
        sim.faults.clear_link_fault("rs485")
        with pytest.raises(NoResponseError):
            await probe_rs485(sim.rs485_url, 115200, group=3, timeout=0.2)


async def test_probe_console(make_simulator: Any) -> None:
    async with make_simulator(modules=2, model="US5000") as sim:
        result = await probe_console(sim.console_url)
    assert result.module_count == 2
    assert result.model == "US5000"
    assert result.serial_number == sim.bank.serial(1)


@pytest.mark.usefixtures("fast_console")
async def test_probe_console_on_an_rs485_port_fails_clearly(make_simulator: Any) -> None:
    async with make_simulator(modules=1) as sim:
        with pytest.raises(LinkError):
            await probe_console(sim.rs485_url, wake_up=False)


async def test_probe_can(make_simulator: Any) -> None:
    async with make_simulator(modules=4, can_period=0.2) as sim:
        result = await probe_can("slcan", sim.can_channel, timeout=3.0)
    assert result.model is None  # the broadcast names the manufacturer, not the model
    assert result.module_count == 4


async def test_probe_can_silent_bus(make_simulator: Any) -> None:
    async with make_simulator(modules=1, can_period=30.0) as sim:
        with pytest.raises(NoResponseError, match="no Pylontech broadcast"):
            await probe_can("slcan", sim.can_channel, timeout=0.5)


# -- ESPHome serial proxies ----------------------------------------------------------------

PROXY_URL = "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_name=RS485"


@pytest.mark.parametrize(
    "url",
    [
        PROXY_URL,
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_udev_id=usb-1a86_USB_Single_Serial_5434012345-if00",
        "ESPHOME-HASS://esphome/0123456789abcdef0123456789abcdef?port_usb_vid=6790&port_usb_pid=21972",
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_product=USB+Single+Serial",
    ],
)
def test_serial_proxy_urls_pass_where_serialx_opens_them(url: str) -> None:
    check_url(url, serial_proxy=True)
    assert canonical_url(f"  {url} ") == url  # the picker's spelling is kept exactly
    assert can_change_baud(url)
    with pytest.raises(InvalidUrlError, match="not an slcan"):
        check_url(url)  # python-can's slcan opens with pyserial, which has no such scheme


@pytest.mark.parametrize(
    "url",
    [
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A",  # names no port
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_name=",
        "esphome-hass://esphome/?port_name=RS485",  # no entry id
        "esphome-hass://esphome/../x?port_name=RS485",
        "esphome-hass://esphome/01JESPHOME/extra?port_name=RS485",
        "esphome-hass://user:pw@esphome/01JESPHOMEENTRY0000000000A?port_name=RS485",
        "esphome-hass://esphome:6053/01JESPHOMEENTRY0000000000A?port_name=RS485",
        "esphome-hass:///01JESPHOMEENTRY0000000000A?port_name=RS485",
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_name=RS485#x",
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_name=RS485&noise_psk=abc",
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_name=%00",
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?Port-Name=RS485",
        "esphome-hass://esphome/01JESPHOMEENTRY0000000000A?port_name",
        "esphome://192.168.1.50:6053/?port_name=RS485&noise_psk=abc",  # key in the URL
    ],
)
def test_malformed_serial_proxy_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrlError):
        check_url(url, serial_proxy=True)


def test_canonical_url_is_the_form_rule_for_gateways_and_paths() -> None:
    assert canonical_url(" /dev/ttyUSB0 ") == "/dev/ttyUSB0"
    assert canonical_url("TCP://LocalHost:4001/") == "tcp://localhost:4001"
    assert canonical_url("rfc2217://[0:0::1]:2217") == "rfc2217://[::1]:2217"
    with pytest.raises(InvalidUrlError):
        canonical_url("/dev/../etc/passwd")


class _StandInProxyTransport(SocketSerialTransport):
    """``esphome-hass://`` as a test registers it: every port forwards to one TCP peer."""

    target = ""
    opened: ClassVar[list[tuple[str, int]]] = []

    @override
    async def _connect(self, *, path: str, baudrate: int, **kwargs: Any) -> None:  # type: ignore[override]
        self.opened.append((path, baudrate))
        await super()._connect(path=self.target, baudrate=baudrate, **kwargs)


@pytest.fixture
def stand_in_proxy() -> Iterator[type[_StandInProxyTransport]]:
    """Register the stand-in with serialx the way Home Assistant's esphome integration does."""
    _StandInProxyTransport.opened = []
    unregister = serialx.register_uri_handler(
        scheme="esphome-hass://",
        unique_scheme="esphome-hass-pylontech-test://",
        sync_cls=SocketSerial,
        async_transport_cls=_StandInProxyTransport,
        weight=10,
    )
    try:
        yield _StandInProxyTransport
    finally:
        unregister()


async def test_serial_proxy_is_opened_through_serialx(
    make_simulator: Any, stand_in_proxy: type[_StandInProxyTransport]
) -> None:
    async with make_simulator(modules=2) as sim:
        stand_in_proxy.target = sim.rs485_url
        result = await probe_rs485(PROXY_URL, 115200)
    assert result.module_count == 2
    assert stand_in_proxy.opened[0] == (PROXY_URL, 115200)


def test_serial_proxy_failures_name_the_proxy() -> None:
    error = link_error_from(TimeoutError(), PROXY_URL)
    assert type(error) is GatewayUnreachableError
    assert "esphome-hass://esphome/" in str(error)
