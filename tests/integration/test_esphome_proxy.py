"""ESPHome serial proxies: the picker's esphome-hass:// ports, end to end against the simulator.

No ESPHome device runs here, so a stand-in for the scheme is registered with serialx the
way Home Assistant's esphome integration registers it (``register_uri_handler`` under
``esphome-hass://``, its own unique scheme, a higher weight than the usb integration's
not-ready stub). It forwards each proxy port to one of the simulator's TCP ports and
records the baud every connection was opened at and what was written at which baud.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
import errno
from typing import Any, override
from unittest.mock import patch

from homeassistant.components import usb
from homeassistant.components.usb.consumers import async_get_serial_port_consumers
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import serialx
from serialx.platforms.serial_socket import SocketSerial, SocketSerialTransport

from custom_components.pylontech.const import (
    CAN_SLCAN,
    CONF_BAUDRATE,
    CONF_GROUP,
    CONF_LINK,
    CONF_URL,
    DOMAIN,
    ENTRY_VERSION,
    LINK_CAN,
    LINK_CONSOLE,
    LINK_RS485,
)
from custom_components.pylontech.core.protocol.console import WAKE_UP_BAUD, WAKE_UP_FRAME
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .conftest import MODEL, master_serial, setup_entry
from .entity_helpers import entity_id, unload

ESPHOME_ENTRY = "01JESPHOMEPROXYENTRY000000"
RS485_PROXY = f"esphome-hass://esphome/{ESPHOME_ENTRY}?port_name=RS485"
CONSOLE_PROXY = f"esphome-hass://esphome/{ESPHOME_ENTRY}?port_name=Console"
#: The same adapter seen behind another ESPHome device after it was re-plugged there.
MOVED_PROXY = (
    "esphome-hass://esphome/01JOTHERPROXYENTRY00000000?port_udev_id=usb-1a86_USB_Serial-if00"
)


@dataclass
class StandInProxy:
    """What the stand-in forwards and what it saw."""

    ports: dict[str, str] = field(default_factory=dict)
    opened: list[tuple[str, int]] = field(default_factory=list)
    written: list[tuple[int, bytes]] = field(default_factory=list)


@pytest.fixture
def proxy() -> Iterator[StandInProxy]:
    """Register the stand-in ``esphome-hass://`` handler with serialx for one test."""
    record = StandInProxy()

    class StandInTransport(SocketSerialTransport):
        transport_name = "esphome-hass"
        _baud = 0

        @override
        async def _connect(self, *, path: str, baudrate: int, **kwargs: Any) -> None:  # type: ignore[override]
            record.opened.append((path, baudrate))
            self._baud = baudrate
            if path not in record.ports:
                # What the real proxy answers for a port it does not have.
                raise OSError(errno.ENOENT, f"no serial proxy port {path}")
            await super()._connect(path=record.ports[path], baudrate=baudrate, **kwargs)

        @override
        def write(self, data: bytes | bytearray | memoryview) -> None:
            record.written.append((self._baud, bytes(data)))
            super().write(data)

    unregister = serialx.register_uri_handler(
        scheme="esphome-hass://",
        unique_scheme="esphome-hass-pylontech-test://",
        sync_cls=SocketSerial,
        async_transport_cls=StandInTransport,
        weight=10,
    )
    try:
        yield record
    finally:
        unregister()


async def _serial_form(hass: HomeAssistant, link: str) -> str:
    """Walk the user flow to the link's serial-adapter form; returns the flow id."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": link}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": f"{link}_serial"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == f"{link}_serial"
    flow_id: str = result["flow_id"]
    return flow_id


async def test_rs485_over_a_serial_proxy_from_the_picker(
    hass: HomeAssistant, simulator: BatterySimulator, proxy: StandInProxy
) -> None:
    """The picker's esphome-hass:// port passes the form, is probed and the bank loads."""
    proxy.ports[RS485_PROXY] = simulator.rs485_url
    flow_id = await _serial_form(hass, LINK_RS485)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"device": RS485_PROXY, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_LINK: LINK_RS485,
        CONF_URL: RS485_PROXY,
        CONF_BAUDRATE: 115200,
        CONF_GROUP: 0,
    }
    entry = result["result"]
    await hass.async_block_till_done()
    try:
        assert entry.state is ConfigEntryState.LOADED
        assert entry.version == ENTRY_VERSION
        voltage = hass.states.get(entity_id(hass, "sensor", f"{entry.entry_id}_voltage"))
        assert voltage is not None
        assert voltage.state != STATE_UNAVAILABLE
        assert float(voltage.state) == pytest.approx(simulator.snapshot().voltage, abs=0.01)
        # Every connection (probe, then the entry's link) went through the proxy at 115200.
        assert proxy.opened
        assert set(proxy.opened) == {(RS485_PROXY, 115200)}

        # Home Assistant's serial-port list names the entry as the proxy port's user.
        consumers = await async_get_serial_port_consumers(hass, [])
        assert [c.config_entry_id for c in consumers[RS485_PROXY]] == [entry.entry_id]
        assert consumers[RS485_PROXY][0].active
    finally:
        await unload(hass, entry)


async def test_console_wake_up_switches_the_proxy_to_1200_baud(
    hass: HomeAssistant, simulator: BatterySimulator, proxy: StandInProxy
) -> None:
    """A sleeping console behind a proxy gets the wake-up frame at 1200 baud, then 115200."""
    proxy.ports[CONSOLE_PROXY] = simulator.console_url
    simulator.faults.inject_link_fault("console", LinkFault.SILENT)
    flow_id = await _serial_form(hass, LINK_CONSOLE)
    result = await hass.config_entries.flow.async_configure(flow_id, {"device": CONSOLE_PROXY})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == CONSOLE_PROXY
    await hass.async_block_till_done()
    await unload(hass, result["result"])

    assert simulator.faults.link_fault("console", LinkFault.SILENT) is None
    bauds = [baud for _, baud in proxy.opened]
    assert WAKE_UP_BAUD in bauds
    woken_at = bauds.index(WAKE_UP_BAUD)
    assert bauds[woken_at + 1] == 115200  # reopened at the console's baud right after
    assert (WAKE_UP_BAUD, WAKE_UP_FRAME) in proxy.written
    assert all(WAKE_UP_FRAME not in data for baud, data in proxy.written if baud != WAKE_UP_BAUD)


@pytest.mark.parametrize(
    "device",
    [
        f"esphome-hass://esphome/{ESPHOME_ENTRY}",  # names no port
        f"esphome-hass://esphome/{ESPHOME_ENTRY}?port_name=RS485&noise_psk=c2VjcmV0",
        f"esphome-hass://esphome/../{ESPHOME_ENTRY}?port_name=RS485",
        "esphome://192.168.1.50:6053/?port_name=RS485",
    ],
)
async def test_malformed_proxy_port_is_refused(
    hass: HomeAssistant, proxy: StandInProxy, device: str
) -> None:
    """A proxy URL Home Assistant would not build never reaches serialx."""
    flow_id = await _serial_form(hass, LINK_RS485)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"device": device, "baudrate": "115200", "group": 0}
    )
    assert result["errors"] == {"base": "invalid_url"}
    assert proxy.opened == []


async def test_slcan_channel_cannot_be_a_proxy(hass: HomeAssistant, proxy: StandInProxy) -> None:
    """python-can's slcan opens its channel with pyserial, which has no esphome-hass://."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": LINK_CAN}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"can_interface": CAN_SLCAN, "can_channel": RS485_PROXY}
    )
    assert result["errors"] == {"base": "invalid_url"}
    assert proxy.opened == []


def _proxy_entry(simulator: BatterySimulator, port: str) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"Pylontech {MODEL}",
        data={CONF_LINK: LINK_RS485, CONF_URL: port, CONF_BAUDRATE: 115200, CONF_GROUP: 0},
        unique_id=master_serial(simulator),
        version=ENTRY_VERSION,
    )


async def test_moved_adapter_is_followed(
    hass: HomeAssistant, simulator: BatterySimulator, proxy: StandInProxy
) -> None:
    """Home Assistant 2026.11 names the adapter's new port: the entry moves there and loads."""
    proxy.ports[MOVED_PROXY] = simulator.rs485_url
    calls: list[str] = []

    def find_moved(_hass: HomeAssistant, device_path: str) -> str | None:
        calls.append(device_path)
        return MOVED_PROXY if device_path == RS485_PROXY else None

    with patch.object(usb, "async_find_moved_serial_port", find_moved, create=True):
        entry = await setup_entry(hass, _proxy_entry(simulator, RS485_PROXY))
    try:
        assert calls == [RS485_PROXY]
        assert entry.state is ConfigEntryState.LOADED
        assert entry.data[CONF_URL] == MOVED_PROXY
        assert (RS485_PROXY, 115200) not in proxy.opened
    finally:
        await unload(hass, entry)


async def test_port_stays_without_the_moved_port_lookup(
    hass: HomeAssistant,
    simulator: BatterySimulator,
    proxy: StandInProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Home Assistant 2026.10 has no lookup: the configured port is kept and retried."""
    monkeypatch.delattr(usb, "async_find_moved_serial_port", raising=False)
    proxy.ports[MOVED_PROXY] = simulator.rs485_url
    entry = await setup_entry(hass, _proxy_entry(simulator, RS485_PROXY))
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.data[CONF_URL] == RS485_PROXY
    assert proxy.opened[0] == (RS485_PROXY, 115200)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_unmoved_port_is_left_alone(
    hass: HomeAssistant, simulator: BatterySimulator, proxy: StandInProxy
) -> None:
    """A lookup that finds nothing (the port is present, or ambiguous) changes nothing."""
    proxy.ports[RS485_PROXY] = simulator.rs485_url
    with patch.object(usb, "async_find_moved_serial_port", return_value=None, create=True):
        entry = await setup_entry(hass, _proxy_entry(simulator, RS485_PROXY))
    try:
        assert entry.state is ConfigEntryState.LOADED
        assert entry.data[CONF_URL] == RS485_PROXY
    finally:
        await unload(hass, entry)


async def test_reconfigure_moves_a_gateway_entry_to_a_proxy(
    hass: HomeAssistant, simulator: BatterySimulator, proxy: StandInProxy
) -> None:
    """Reconfigure takes the proxy port; the form then shows it as the serial port."""
    proxy.ports[RS485_PROXY] = simulator.rs485_url
    entry = _proxy_entry(simulator, "socket://127.0.0.1:1")
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rs485_serial"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": RS485_PROXY, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == RS485_PROXY
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rs485_serial"}
    )
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested["device"] == RS485_PROXY
    hass.config_entries.flow.async_abort(result["flow_id"])
    await unload(hass, entry)
