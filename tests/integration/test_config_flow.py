"""Config flow: every link and transport, every error and its recovery, discovery, reconfigure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import socket
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USB, SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import translation
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from homeassistant.setup import async_setup_component
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pylontech.config_flow import (
    InvalidUrlError,
    can_unique_id,
    gateway_url,
    validate_url,
)
from custom_components.pylontech.const import (
    CAN_SLCAN,
    CONF_CAN_CHANNEL,
    CONF_CAN_INTERFACE,
    CONF_CAN_KEEPALIVE,
    CONF_CELL_ENTITIES,
    CONF_COMPANION,
    CONF_DETAIL_INTERVAL,
    CONF_LINK,
    CONF_POLITE,
    CONF_SCAN_INTERVAL,
    CONF_URL,
    DOMAIN,
    LINK_CAN,
    LINK_CONSOLE,
    LINK_RS485,
    MAX_SCAN_INTERVAL,
    MIN_SCAN_INTERVAL,
)
from custom_components.pylontech.core import errors
from custom_components.pylontech.core.bounds import MAX_RS485_GROUP, MIN_RS485_GROUP
from custom_components.pylontech.core.protocol import rs485 as rs485_codec
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .conftest import MODEL, can_data, master_serial, rs485_data

MISSING_PORT = "/dev/serial/by-id/usb-pylontech-test-does-not-exist"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def _start(hass: HomeAssistant, menu: str, option: str | None = None) -> dict[str, Any]:
    """Open the user flow and walk the menus to a link form."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == [LINK_CAN, LINK_RS485, LINK_CONSOLE]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": menu}
    )
    if option is not None:
        assert result["type"] is FlowResultType.MENU
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": option}
        )
    assert result["type"] is FlowResultType.FORM
    return result


@pytest.fixture
async def silent_server(socket_enabled: None) -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says anything (a dead bus)."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(1024):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@pytest.fixture
async def dialect_server(socket_enabled: None) -> AsyncIterator[int]:
    """A TCP port answering every request with a well-formed frame of another dialect."""
    frame = rs485_codec.encode_frame(0x25, 0x02, 0x4A, 0x00, b"")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            if b"\r" in data:
                writer.write(frame)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


# --- happy paths ------------------------------------------------------------------------


async def test_rs485_network(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """RS485 through a TCP gateway: probed, titled by model, unique id = master barcode."""
    result = await _start(hass, LINK_RS485, "rs485_network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "host": "127.0.0.1",
            "port": _port(simulator.rs485_url),
            "transport": "tcp",
            "baudrate": "115200",
            "group": 0,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Pylontech {MODEL}"
    assert result["result"].unique_id == master_serial(simulator)
    assert result["data"] == {
        CONF_LINK: LINK_RS485,
        CONF_URL: f"socket://127.0.0.1:{_port(simulator.rs485_url)}",
        "baudrate": 115200,
        "group": 0,
    }


async def test_rs485_serial_port_field_accepts_gateway_url(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """The serial-port field also takes a socket:// URL (what ser2net users type)."""
    result = await _start(hass, LINK_RS485, "rs485_serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": simulator.rs485_url, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == simulator.rs485_url


async def test_console_network(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Console through a gateway: same bank, same unique id as over RS485."""
    result = await _start(hass, LINK_CONSOLE, "console_network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "127.0.0.1", "port": _port(simulator.console_url), "transport": "tcp"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == master_serial(simulator)
    assert result["data"][CONF_LINK] == LINK_CONSOLE
    assert result["data"]["baudrate"] == 115200


async def test_console_serial(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Console through the serial-port field."""
    result = await _start(hass, LINK_CONSOLE, "console_serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": simulator.console_url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == simulator.console_url


async def test_can_slcan(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """CAN through an SLCAN adapter: no barcode on CAN, so the id names the bus."""
    result = await _start(hass, LINK_CAN)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: simulator.can_channel},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == can_data(simulator)
    assert result["result"].unique_id == can_unique_id(can_data(simulator))
    assert "CAN" in result["title"]


# --- errors and recovery -----------------------------------------------------------------


async def test_port_not_found_then_success(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A device path that does not exist says so; the right port then succeeds."""
    result = await _start(hass, LINK_RS485, "rs485_serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": MISSING_PORT, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "port_not_found"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": simulator.rs485_url, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_permission_denied_then_success(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A port the process may not open (stands in for a physical tty owned by dialout)."""
    result = await _start(hass, LINK_RS485, "rs485_serial")
    with patch(
        "custom_components.pylontech.config_flow.probe_rs485",
        side_effect=errors.PortPermissionError("permission denied: /dev/ttyUSB0"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"device": "/dev/ttyUSB0", "baudrate": "115200", "group": 0}
        )
    assert result["errors"] == {"base": "permission_denied"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": simulator.rs485_url, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_gateway_refuses_then_success(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Nothing listening on the gateway port: cannot connect, with the reason shown."""
    result = await _start(hass, LINK_RS485, "rs485_network")
    form = {"host": "127.0.0.1", "transport": "tcp", "baudrate": "115200", "group": 0}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "port": _closed_port()}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["error"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "port": _port(simulator.rs485_url)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_no_answer_then_success(
    hass: HomeAssistant, simulator: BatterySimulator, silent_server: int
) -> None:
    """The port opens but no battery answers: check wiring/DIP/baud."""
    result = await _start(hass, LINK_RS485, "rs485_network")
    form = {"host": "127.0.0.1", "transport": "tcp", "baudrate": "115200", "group": 0}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "port": silent_server}
    )
    assert result["errors"] == {"base": "no_answer"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "port": _port(simulator.rs485_url)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_wrong_baud_then_success(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Answers that look like a mis-clocked UART: wrong baud rate."""
    simulator.faults.inject_link_fault("rs485", LinkFault.WRONG_BAUD)
    result = await _start(hass, LINK_RS485, "rs485_serial")
    form = {"device": simulator.rs485_url, "baudrate": "9600", "group": 0}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "wrong_baud"}
    simulator.faults.clear_link_fault("rs485")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "baudrate": "115200"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["baudrate"] == 115200


async def test_console_wake_up_failed_then_success(
    hass: HomeAssistant, simulator: BatterySimulator, silent_server: int
) -> None:
    """A console that never shows a prompt, even after the wake-up frame."""
    result = await _start(hass, LINK_CONSOLE, "console_network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"host": "127.0.0.1", "port": silent_server, "transport": "tcp"}
    )
    assert result["errors"] == {"base": "wake_up_failed"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "127.0.0.1", "port": _port(simulator.console_url), "transport": "tcp"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_sleeping_console_is_woken(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A console that stays silent until the documented wake-up frame still gets set up."""
    simulator.faults.inject_link_fault("console", LinkFault.SILENT)
    result = await _start(hass, LINK_CONSOLE, "console_network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "127.0.0.1", "port": _port(simulator.console_url), "transport": "tcp"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert simulator.faults.link_fault("console", LinkFault.SILENT) is None


async def test_not_pylontech_then_success(
    hass: HomeAssistant, simulator: BatterySimulator, dialect_server: int
) -> None:
    """A well-formed answer in another vendor's dialect is named as such."""
    result = await _start(hass, LINK_RS485, "rs485_network")
    form = {"host": "127.0.0.1", "transport": "tcp", "baudrate": "115200", "group": 0}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "port": dialect_server}
    )
    assert result["errors"] == {"base": "not_pylontech"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "port": _port(simulator.rs485_url)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    "device",
    [
        "/dev/../etc/passwd",
        "/dev/ttyUSB0; rm -rf /",
        "http://127.0.0.1:80",
        "socket://127.0.0.1",
        "socket://user:pw@127.0.0.1:5000",
        "socket://127.0.0.1:5000/path?x=1",
        "ttyUSB0",
    ],
)
async def test_invalid_port_rejected(hass: HomeAssistant, device: str) -> None:
    """Paths outside /dev, shell tricks and foreign URL schemes never reach a transport."""
    result = await _start(hass, LINK_RS485, "rs485_serial")
    with patch("custom_components.pylontech.config_flow.probe_rs485") as probe:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"device": device, "baudrate": "115200", "group": 0}
        )
    assert result["errors"] == {"base": "invalid_url"}
    probe.assert_not_called()


def test_validate_url_canonical_forms() -> None:
    """Accepted forms come back canonical; hosts are validated."""
    assert validate_url(" /dev/ttyUSB0 ") == "/dev/ttyUSB0"
    assert validate_url("TCP://LocalHost:4001") == "tcp://localhost:4001"
    assert validate_url("rfc2217://[::1]:2217") == "rfc2217://[::1]:2217"
    for bad in ("socket://bad_host!:1", "socket://127.0.0.1:0", "socket://127.0.0.1:70000"):
        with pytest.raises(InvalidUrlError):
            validate_url(bad)


async def test_unexpected_error_then_success(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A bug in a probe shows "unknown" instead of crashing the flow."""
    result = await _start(hass, LINK_RS485, "rs485_serial")
    form = {"device": simulator.rs485_url, "baudrate": "115200", "group": 0}
    with patch(
        "custom_components.pylontech.config_flow.probe_rs485", side_effect=RuntimeError("boom")
    ):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "unknown"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_duplicate_bank_aborts(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """The same bank (same master barcode) over another link is refused."""
    MockConfigEntry(
        domain=DOMAIN, data=rs485_data(simulator), unique_id=master_serial(simulator)
    ).add_to_hass(hass)
    result = await _start(hass, LINK_CONSOLE, "console_serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": simulator.console_url}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


# --- USB discovery -------------------------------------------------------------------------


def _usb(device: str, vid: str, pid: str) -> UsbServiceInfo:
    return UsbServiceInfo(
        device=device,
        vid=vid,
        pid=pid,
        serial_number="A50285BI",
        manufacturer="FTDI",
        description="FT232R USB UART",
    )


async def test_usb_serial_adapter(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A USB-serial adapter: the stable by-id path is stored; the user says it is RS485."""
    # The physical port: its /dev/serial/by-id name leads to the simulator's socket.
    with patch(
        "custom_components.pylontech.config_flow.usb.get_serial_by_id",
        return_value=simulator.rs485_url,
    ) as by_id:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USB}, data=_usb("/dev/ttyUSB0", "0403", "6001")
        )
    by_id.assert_called_once_with("/dev/ttyUSB0")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "usb_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LINK: LINK_RS485, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == simulator.rs485_url
    assert result["result"].unique_id == master_serial(simulator)


async def test_usb_slcan_adapter(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A CANable in slcan mode becomes a CAN entry on that port without questions."""
    with patch(
        "custom_components.pylontech.config_flow.usb.get_serial_by_id",
        return_value=simulator.can_channel,
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USB}, data=_usb("/dev/ttyACM0", "16d0", "117e")
        )
    assert result["step_id"] == "usb_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == can_data(simulator)


async def test_usb_already_configured_port(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """An adapter whose port an entry already uses is not offered again."""
    MockConfigEntry(
        domain=DOMAIN, data=rs485_data(simulator), unique_id=master_serial(simulator)
    ).add_to_hass(hass)
    with patch(
        "custom_components.pylontech.config_flow.usb.get_serial_by_id",
        return_value=simulator.rs485_url,
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USB}, data=_usb("/dev/ttyUSB0", "0403", "6001")
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_usb_error_then_success(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Picking the wrong battery port on a discovered adapter shows an error, then works."""
    with patch(
        "custom_components.pylontech.config_flow.usb.get_serial_by_id",
        return_value=simulator.rs485_url,
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USB}, data=_usb("/dev/ttyUSB0", "1a86", "7523")
        )
    simulator.faults.inject_link_fault("rs485", LinkFault.WRONG_BAUD)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LINK: LINK_RS485, "baudrate": "9600", "group": 0}
    )
    assert result["errors"] == {"base": "wrong_baud"}
    simulator.faults.clear_link_fault("rs485")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_LINK: LINK_RS485, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


# --- reconfigure ------------------------------------------------------------------------------


async def test_reconfigure_same_bank(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Moving the same bank to another gateway port updates the entry."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={**rs485_data(simulator), CONF_URL: "socket://127.0.0.1:1"},
        unique_id=master_serial(simulator),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rs485_serial"}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": simulator.rs485_url, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == simulator.rs485_url
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_other_bank_aborts(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A port that leads to a different bank (other barcode) is refused."""
    entry = MockConfigEntry(domain=DOMAIN, data=rs485_data(simulator), unique_id="PPTBH0100000000")
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rs485_serial"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": simulator.rs485_url, "baudrate": "115200", "group": 0}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"
    assert entry.data[CONF_URL] == simulator.rs485_url  # unchanged


async def test_reconfigure_can_moves_bus(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A CAN-only entry follows its bus to a new channel; its derived id follows too."""
    old = {**can_data(simulator), CONF_CAN_CHANNEL: "socket://127.0.0.1:1"}
    entry = MockConfigEntry(domain=DOMAIN, data=old, unique_id=can_unique_id(old))
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == LINK_CAN
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: simulator.can_channel},
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == can_unique_id(can_data(simulator))
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


# --- options ----------------------------------------------------------------------------------


async def test_options_without_companion(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Intervals and switches are saved and the entry reloads with them."""
    entry = init_integration
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    options = {
        CONF_SCAN_INTERVAL: 5,
        CONF_DETAIL_INTERVAL: 300,
        CONF_CELL_ENTITIES: False,
        CONF_POLITE: True,
        CONF_CAN_KEEPALIVE: False,
        CONF_COMPANION: "none",
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {**options, CONF_COMPANION: None}
    coordinator = entry.runtime_data.coordinator
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 5
    assert coordinator.read_cells is False


async def test_options_with_can_companion(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: BatterySimulator
) -> None:
    """A CAN companion is probed (bad channel first) and then merged into the bank."""
    entry = init_integration
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_SCAN_INTERVAL: 10,
            CONF_DETAIL_INTERVAL: 600,
            CONF_CELL_ENTITIES: True,
            CONF_POLITE: False,
            CONF_CAN_KEEPALIVE: False,
            CONF_COMPANION: LINK_CAN,
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "companion"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: "not a channel"}
    )
    assert result["errors"] == {"base": "invalid_url"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: simulator.can_channel},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    companion = entry.options[CONF_COMPANION]
    assert companion[CONF_CAN_CHANNEL] == simulator.can_channel
    coordinator = entry.runtime_data.coordinator
    assert coordinator.can_link is not None


async def test_usb_gs_usb_adapter_interface_missing(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """A candleLight adapter is set up as socketcan; a missing interface is reported."""
    with patch(
        "custom_components.pylontech.config_flow.usb.get_serial_by_id",
        return_value="/dev/bus/usb/001/004",
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": SOURCE_USB},
            data=_usb("/dev/bus/usb/001/004", "1d50", "606f"),
        )
    assert result["step_id"] == "usb_confirm"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAN_CHANNEL: "pylontest9"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "can_interface"}


async def test_options_for_can_entry(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A CAN entry is not polled: its options are only the keep-alive."""
    entry = MockConfigEntry(
        domain=DOMAIN, data=can_data(simulator), unique_id=can_unique_id(can_data(simulator))
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    fields = {str(key) for key in result["data_schema"].schema}
    assert fields == {CONF_CAN_KEEPALIVE}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CAN_KEEPALIVE: True}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    assert coordinator.can_link is not None
    assert coordinator.can_link.keepalive is True
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_socketcand_needs_a_reachable_daemon(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """socketcand without a host is refused before any I/O; a dead daemon is reported."""
    result = await _start(hass, LINK_CAN)
    form = {CONF_CAN_INTERFACE: "socketcand", CONF_CAN_CHANNEL: "can0"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"base": "invalid_url"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "can_host": "127.0.0.1", "can_port": _closed_port()}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"]["base"] in {"can_interface", "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: simulator.can_channel},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_reconfigure_console_to_gateway(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A console entry can move from a serial port to a network gateway (same bank)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_LINK: LINK_CONSOLE, CONF_URL: "/dev/ttyUSB7", "baudrate": 115200},
        unique_id=master_serial(simulator),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["console_serial", "console_network"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "console_network"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "127.0.0.1", "port": _port(simulator.console_url), "transport": "tcp"},
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == simulator.console_url
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


# --- what the frontend submits: retry after a failure, ranges, ports of another kind ---------


def _shown_values(result: dict[str, Any]) -> dict[str, Any]:
    """What a form submits when the user changes nothing: suggested values, then defaults."""
    values: dict[str, Any] = {}
    for marker in result["data_schema"].schema:
        suggested = (marker.description or {}).get("suggested_value")
        if suggested is not None:
            values[str(marker)] = suggested
        elif not isinstance(marker.default, type(probatio.UNDEFINED)):
            values[str(marker)] = marker.default()
    return values


def _frontend_initial(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The frontend's first form data from the serialized schema (computeInitialHaFormData).

    Order matters and is the frontend's: suggested value, default, then for a required
    field a plain ``type`` before any selector (an ``integer`` type starts at 0).
    """
    data: dict[str, Any] = {}
    for field in fields:
        name = field["name"]
        suggested = (field.get("description") or {}).get("suggested_value")
        if suggested is not None:
            data[name] = suggested
        elif "default" in field:
            data[name] = field["default"]
        elif not field.get("required"):
            continue
        elif field.get("type") == "integer":
            data[name] = field.get("valueMin", 0)
        elif field.get("type") == "string":
            data[name] = ""
        elif "number" in field.get("selector", {}):
            data[name] = field["selector"]["number"].get("min", 0)
        elif "select" in field.get("selector", {}):
            data[name] = field["selector"]["select"]["options"][0]
        else:
            data[name] = ""
    return data


async def _error_text(hass: HomeAssistant, result: dict[str, Any], field: str) -> str:
    """The English message a form shows for one field's error, placeholders filled."""
    texts = await translation.async_get_translations(hass, "en", "config", [DOMAIN])
    key = result["errors"][field]
    template = texts[f"component.{DOMAIN}.config.error.{key}"]
    return template.format(**result["description_placeholders"])


async def _rest_flow(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> tuple[Any, str, dict[str, Any]]:
    """Open the user flow through the REST API the frontend uses; returns the first form."""
    # The integration's dependencies too: nothing may register routes once the client runs.
    for component in ("config", "usb"):
        assert await async_setup_component(hass, component, {})
    client = await hass_client()
    resp = await client.post("/api/config/config_entries/flow", json={"handler": DOMAIN})
    assert resp.status == 200, await resp.text()
    flow_id = (await resp.json())["flow_id"]
    for step in (LINK_RS485, "rs485_network"):
        resp = await client.post(
            f"/api/config/config_entries/flow/{flow_id}", json={"next_step_id": step}
        )
        assert resp.status == 200, await resp.text()
    return client, flow_id, await resp.json()


async def test_rest_retry_after_failed_attempt(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, simulator: BatterySimulator
) -> None:
    """Through the REST API: wrong port, then the re-shown form with the right port works.

    The frontend submits every field of the re-shown form as it was pre-filled; each
    must pass the form's own schema (a baud rate pre-filled as 115200 instead of
    "115200" failed with "expected str" on every later submit).
    """
    client, flow_id, form = await _rest_flow(hass, hass_client)
    initial = _frontend_initial(form["data_schema"])
    assert initial["port"] != 0  # a required port box starts at its minimum, not 0
    assert initial["port"] == 1
    resp = await client.post(
        f"/api/config/config_entries/flow/{flow_id}",
        json={**initial, "host": "127.0.0.1", "port": _closed_port()},
    )
    assert resp.status == 200, await resp.text()
    form = await resp.json()
    assert form["errors"] == {"base": "cannot_connect"}
    resubmit = _frontend_initial(form["data_schema"])
    assert resubmit["host"] == "127.0.0.1"
    resp = await client.post(
        f"/api/config/config_entries/flow/{flow_id}",
        json={**resubmit, "port": _port(simulator.rs485_url)},
    )
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["type"] == "create_entry"
    entry = hass.config_entries.async_get_entry(done["result"]["entry_id"])
    assert entry is not None
    assert entry.data[CONF_URL] == simulator.rs485_url
    assert entry.data["baudrate"] == 115200


async def test_rest_port_out_of_range_is_a_translated_integer_error(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, simulator: BatterySimulator
) -> None:
    """A port beyond 65535 is a field error in words with whole numbers, not a 400."""
    client, flow_id, form = await _rest_flow(hass, hass_client)
    base = {**_frontend_initial(form["data_schema"]), "host": "127.0.0.1"}
    resp = await client.post(
        f"/api/config/config_entries/flow/{flow_id}", json={**base, "port": 70000}
    )
    assert resp.status == 200, await resp.text()
    form = await resp.json()
    assert form["errors"] == {"port": "port_range"}
    text = await _error_text(hass, form, "port")
    assert "65535" in text
    assert "." not in text.rstrip(".")  # "1 to 65535", never "1.0" or "65535.0"
    resp = await client.post(
        f"/api/config/config_entries/flow/{flow_id}",
        json={**_frontend_initial(form["data_schema"]), "port": _port(simulator.rs485_url)},
    )
    assert (await resp.json())["type"] == "create_entry"


async def test_group_outside_the_dip_switch_range(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Group 9 cannot be set on a master: a translated field error, nothing probed."""
    result = await _start(hass, LINK_RS485, "rs485_serial")
    form = {"device": simulator.rs485_url, "baudrate": "115200"}
    with patch("custom_components.pylontech.config_flow.probe_rs485") as probe:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**form, "group": 9}
        )
    probe.assert_not_called()
    assert result["errors"] == {"group": "group_range"}
    text = await _error_text(hass, result, "group")
    assert f"{MIN_RS485_GROUP} to {MAX_RS485_GROUP}" in text
    assert "group" not in _shown_values(result) or _shown_values(result)["group"] != 9
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**_shown_values(result), "group": 0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["group"] == 0


@pytest.mark.parametrize(
    ("menu", "step", "port_of", "error"),
    [
        (LINK_RS485, "rs485_network", "console_url", "port_is_console"),
        (LINK_RS485, "rs485_network", "can_channel", "port_is_can"),
        (LINK_CONSOLE, "console_network", "rs485_url", "port_is_rs485"),
    ],
)
async def test_another_battery_port_is_named(
    hass: HomeAssistant,
    simulator: BatterySimulator,
    menu: str,
    step: str,
    port_of: str,
    error: str,
) -> None:
    """The console (or CAN) port entered where RS485 was asked for says which port it is."""
    result = await _start(hass, menu, step)
    right = simulator.rs485_url if menu == LINK_RS485 else simulator.console_url
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            **_shown_values(result),
            "host": "127.0.0.1",
            "port": _port(getattr(simulator, port_of)),
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**_shown_values(result), "port": _port(right)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.fixture
async def dropping_server(socket_enabled: None) -> AsyncIterator[int]:
    """A gateway that accepts a connection and closes it at once (a crashed ser2net)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_dropping_gateway_error_has_no_reconnect_text(
    hass: HomeAssistant, simulator: BatterySimulator, dropping_server: int
) -> None:
    """The form quotes the cause, not the link's reconnect schedule."""
    result = await _start(hass, LINK_RS485, "rs485_network")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**_shown_values(result), "host": "127.0.0.1", "port": dropping_server},
    )
    assert result["errors"] == {"base": "cannot_connect"}
    error = result["description_placeholders"]["error"]
    assert "connection" in error  # the cause: the gateway dropped the connection
    assert "reconnecting" not in error
    assert "last error" not in error
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**_shown_values(result), "port": _port(simulator.rs485_url)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_reconfigure_retry_after_failed_attempt(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Reconfigure pre-fills the entry, fails on its dead port, then takes the new one."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={**rs485_data(simulator), CONF_URL: f"socket://127.0.0.1:{_closed_port()}"},
        unique_id=master_serial(simulator),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rs485_network"}
    )
    shown = _shown_values(result)
    assert shown["host"] == "127.0.0.1"
    assert shown["baudrate"] == "115200"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], shown)
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**_shown_values(result), "port": _port(simulator.rs485_url)}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == simulator.rs485_url
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_usb_retry_after_failed_attempt(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """The discovered adapter's form, re-shown after an error, submits as shown."""
    with patch(
        "custom_components.pylontech.config_flow.usb.get_serial_by_id",
        return_value=simulator.rs485_url,
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USB}, data=_usb("/dev/ttyUSB0", "1a86", "7523")
        )
    simulator.faults.inject_link_fault("rs485", LinkFault.WRONG_BAUD)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**_shown_values(result), CONF_LINK: LINK_RS485}
    )
    assert result["errors"] == {"base": "wrong_baud"}
    simulator.faults.clear_link_fault("rs485")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _shown_values(result)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_options_retry_after_range_error(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An interval out of range is a translated field error; the re-shown form then saves."""
    entry = init_integration
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**_shown_values(result), CONF_SCAN_INTERVAL: 1}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_SCAN_INTERVAL: "scan_interval_range"}
    texts = await translation.async_get_translations(hass, "en", "options", [DOMAIN])
    text = texts[f"component.{DOMAIN}.options.error.scan_interval_range"].format(
        **result["description_placeholders"]
    )
    assert f"{MIN_SCAN_INTERVAL} to {MAX_SCAN_INTERVAL}" in text
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**_shown_values(result), CONF_SCAN_INTERVAL: 7}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_SCAN_INTERVAL] == 7


async def test_entry_with_impossible_group_fails_clearly_and_is_reconfigured(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """An entry stored with group 9: a translated setup error, then fixed by reconfiguring.

    The reconfigure form does not offer the impossible group back.
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={**rs485_data(simulator), "group": 9},
        unique_id=master_serial(simulator),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # Not loaded, with the reason in words (whether it retries is the setup's choice).
    assert entry.state in {ConfigEntryState.SETUP_ERROR, ConfigEntryState.SETUP_RETRY}
    assert entry.error_reason_translation_key == "invalid_link_settings"
    assert entry.reason is not None
    assert "group 9" in entry.reason

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "rs485_serial"}
    )
    shown = _shown_values(result)
    assert shown["device"] == simulator.rs485_url
    assert shown["group"] == 0
    result = await hass.config_entries.flow.async_configure(result["flow_id"], shown)
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["group"] == 0
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def test_form_and_links_share_one_port_rule() -> None:
    """The form stores what the links open: proxies kept verbatim, never as an slcan channel."""
    proxy = "esphome-hass://esphome/01JESPHOMEPROXYENTRY000000?port_name=RS485"
    assert validate_url(f" {proxy} ") == proxy
    with pytest.raises(InvalidUrlError):
        validate_url(proxy, serial_proxy=False)
    with pytest.raises(InvalidUrlError):
        validate_url("esphome://192.168.1.50:6053/?port_name=RS485")


def test_gateway_url_with_an_ipv6_literal() -> None:
    """A bare IPv6 address typed as the gateway host becomes a bracketed URL host."""
    assert gateway_url("tcp", "fd00::1", 4001) == "socket://[fd00::1]:4001"
    assert gateway_url("rfc2217", "[FD00:0::1]", 2217) == "rfc2217://[fd00::1]:2217"
