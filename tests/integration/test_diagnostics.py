"""Diagnostics: the snapshot, link state and traffic, with every serial redacted."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import paths

from custom_components.pylontech.const import (
    CONF_COMPANION,
    CONF_DETAIL_INTERVAL,
    CONF_URL,
    DOMAIN,
)
from custom_components.pylontech.coordinator import module_device_identifier
from custom_components.pylontech.core.model import Protection
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .conftest import can_data, rs485_data, setup_entry

_PORT = re.compile(r"\*\*REDACTED\*\*:\d+")


# Measured values follow the simulator's physics; the snapshot pins the shape, the names,
# the counts and the redaction, and the tests compare values with the coordinator's data.
def _measured(*, data: Any, path: Any) -> Any:
    """Floats, and the simulator's cycle counts, as their type."""
    if isinstance(data, float) or (
        path and path[-1][0] == "cycles" and isinstance(data, int) and data > 0
    ):
        return type(data)
    return data


def _serials(simulator: BatterySimulator) -> list[str]:
    serials = [simulator.bank.serial(i) for i in (1, 2, 3)]
    return [s for s in serials if s]


def _assert_no_serials(data: Any, simulator: BatterySimulator) -> None:
    text = json.dumps(data)
    for serial in _serials(simulator):
        assert serial not in text
        assert serial.encode().hex().upper() not in text


def _strings(data: Any) -> list[str]:
    """Every string in a JSON-like structure."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for value in data.values() for s in _strings(value)]
    if isinstance(data, list):
        return [s for value in data for s in _strings(value)]
    return []


def _stable(data: dict[str, Any]) -> dict[str, Any]:
    """Ephemeral simulator ports out of the redacted URLs."""
    return json.loads(_PORT.sub("**REDACTED**:PORT", json.dumps(data)))


async def test_entry_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    simulator: BatterySimulator,
    snapshot: SnapshotAssertion,
) -> None:
    """Settings, snapshot and faults are stable; link traffic is there, serials are not."""
    simulator.faults.inject_protection(Protection.CHARGE_OVER_CURRENT, module=2)
    await init_integration.runtime_data.coordinator.async_refresh()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    _assert_no_serials(diagnostics, simulator)
    assert diagnostics["entry"]["data"][CONF_URL].startswith("socket://**REDACTED**:")
    assert diagnostics["entry"]["unique_id"] == "**REDACTED**"
    link = diagnostics["coordinator"]["link"]
    assert link["stats"]["frames"] > 0
    assert link["traffic"], "recent raw frames for scripts/decode"
    assert any(f["key"] for f in diagnostics["active_faults"])
    modules = diagnostics["snapshot"]["modules"]
    assert [m["serial_number"] for m in modules] == ["**REDACTED**"] * 3

    coordinator = init_integration.runtime_data.coordinator
    assert diagnostics["snapshot"]["bank"]["voltage"] == coordinator.data.voltage
    assert diagnostics["snapshot"]["modules"][1]["cell_voltages"] == list(
        coordinator.data.module(2).cell_voltages
    )
    assert _stable(diagnostics) == snapshot(exclude=paths("coordinator.link"), matcher=_measured)


async def test_module_device_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    simulator: BatterySimulator,
    snapshot: SnapshotAssertion,
) -> None:
    """A module device (as the platforms registered it) shows that module only."""
    serial = simulator.bank.serial(2)
    device = next(
        d
        for d in dr.async_entries_for_config_entry(dr.async_get(hass), init_integration.entry_id)
        if d.serial_number == serial
    )
    diagnostics = await get_diagnostics_for_device(hass, hass_client, init_integration, device)
    _assert_no_serials(diagnostics, simulator)
    assert diagnostics["device"] == "module"
    assert diagnostics["module_key"] == [0, 2]
    assert diagnostics["present"] is True
    assert diagnostics["module"]["index"] == 2
    module = init_integration.runtime_data.coordinator.data.module(2)
    assert diagnostics["module"]["voltage"] == module.voltage
    assert diagnostics == snapshot(matcher=_measured)


async def test_position_device_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    simulator: BatterySimulator,
) -> None:
    """A module without a readable barcode is found by its position; the bank by its id."""
    registry = dr.async_get(hass)
    device = registry.async_get_or_create(
        config_entry_id=init_integration.entry_id,
        identifiers={(DOMAIN, module_device_identifier(init_integration, (0, 3)))},
    )
    diagnostics = await get_diagnostics_for_device(hass, hass_client, init_integration, device)
    assert diagnostics["module_key"] == [0, 3]
    assert diagnostics["module"]["index"] == 3
    bank_device = registry.async_get(init_integration.runtime_data.bank_device_id)
    assert bank_device is not None
    diagnostics = await get_diagnostics_for_device(hass, hass_client, init_integration, bank_device)
    assert diagnostics["device"] == "bank"
    assert len(diagnostics["snapshot"]["modules"]) == 3
    _assert_no_serials(diagnostics, simulator)


async def test_can_entry_diagnostics(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, simulator: BatterySimulator
) -> None:
    """A CAN entry shows its CAN link (frames as candump lines) with the gateway host hidden."""
    entry = await setup_entry(
        hass, MockConfigEntry(domain=DOMAIN, data=can_data(simulator), unique_id="can-diag")
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["entry"]["data"]["can_channel"].startswith("socket://**REDACTED**:")
    can_link = diagnostics["coordinator"]["can_link"]
    assert "127.0.0.1" not in json.dumps(diagnostics)
    assert can_link["traffic"]
    assert all(
        re.fullmatch(r"\(\d+\.\d+\) \w+ [0-9A-F]{3}#[0-9A-F]*", line)
        for line in can_link["traffic"]
    )
    assert diagnostics["snapshot"]["bank"]["charge_voltage_limit"] is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


GATEWAY = "battery-gw.home.example"


@pytest.fixture
def gateway_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """A host name for the simulator's address, as a LAN's DNS would give a gateway."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return resolve("127.0.0.1" if host == GATEWAY else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return GATEWAY


async def test_failing_gateway_leaves_no_host_in_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: BatterySimulator,
    gateway_name: str,
) -> None:
    """A gateway that drops the link: its host is in error texts, never in the diagnostics.

    The RS485 gateway is named by host name, the CAN companion by IP address; both links'
    errors (stats, last exception, reconnect state) must lose the host but keep the port.
    """
    rs485_port = int(simulator.rs485_url.rsplit(":", 1)[1])
    entry = await setup_entry(
        hass,
        MockConfigEntry(
            domain=DOMAIN,
            data={**rs485_data(simulator), CONF_URL: f"socket://{gateway_name}:{rs485_port}"},
            options={CONF_DETAIL_INTERVAL: 600, CONF_COMPANION: can_data(simulator)},
            unique_id=simulator.bank.serial(1),
        ),
    )
    coordinator = entry.runtime_data.coordinator
    simulator.faults.inject_link_fault("rs485", LinkFault.DROP)
    await coordinator.async_refresh()
    await coordinator.async_refresh()  # the second attempt meets the reconnect backoff
    link_error = coordinator.link.stats.last_error
    assert link_error is not None
    assert gateway_name in link_error  # the raw error names the gateway ...

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    for host in (gateway_name, "home.example", "127.0.0.1"):
        assert host not in text  # ... the diagnostics never do
    stats = diagnostics["coordinator"]["link"]["stats"]
    assert stats["last_error"].count("**REDACTED**") >= 1
    assert str(rs485_port) in stats["last_error"]  # the port helps support and stays
    errors = [line for line in _strings(diagnostics) if "connection" in line]
    assert errors
    assert all("**REDACTED**" in line for line in errors)
    assert diagnostics["entry"]["options"][CONF_COMPANION]["can_channel"].startswith(
        "socket://**REDACTED**:"
    )
    _assert_no_serials(diagnostics, simulator)
    simulator.faults.clear_link_fault("rs485")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
