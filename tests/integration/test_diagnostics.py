"""Diagnostics: the snapshot, link state and traffic, with every serial redacted."""

from __future__ import annotations

import json
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import paths

from custom_components.pylontech.const import DOMAIN
from custom_components.pylontech.coordinator import module_device_identifier
from custom_components.pylontech.core.model import Protection
from simulator.simulator import BatterySimulator

from .conftest import can_data, setup_entry

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
    assert diagnostics["entry"]["data"]["url"].startswith("socket://**REDACTED**:")
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
