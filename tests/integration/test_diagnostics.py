"""Diagnostics: the snapshot, link state and traffic, with every serial redacted."""

from __future__ import annotations

import json
import re
from typing import Any

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
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from simulator.simulator import BatterySimulator

_PORT = re.compile(r"\*\*REDACTED\*\*:\d+")


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

    assert _stable(diagnostics) == snapshot(exclude=paths("coordinator.link"))


async def test_module_device_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    simulator: BatterySimulator,
    snapshot: SnapshotAssertion,
) -> None:
    """A module device shows that module only."""
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=init_integration.entry_id,
        identifiers={(DOMAIN, module_device_identifier(init_integration, (0, 2)))},
    )
    diagnostics = await get_diagnostics_for_device(hass, hass_client, init_integration, device)
    _assert_no_serials(diagnostics, simulator)
    assert diagnostics["device"] == "module"
    assert diagnostics["module_key"] == [0, 2]
    assert diagnostics["present"] is True
    assert diagnostics["module"]["index"] == 2
    assert diagnostics == snapshot
