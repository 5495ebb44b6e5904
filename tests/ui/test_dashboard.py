"""The shipped dashboard (dashboards/pylontech.yaml) against real entries on the simulator.

For each link the header of the dashboard file names the rows to delete; these tests set the
link up against the simulator, as scripts/develop does, and check that exactly those rows
reference entities that do not exist, and that the "Status" card's template lists an injected
protection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
import re
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.template import Template
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import yaml

from custom_components.pylontech.const import (
    CAN_SLCAN,
    CONF_BAUDRATE,
    CONF_CAN_CHANNEL,
    CONF_CAN_INTERFACE,
    CONF_COMPANION,
    CONF_DETAIL_INTERVAL,
    CONF_GROUP,
    CONF_LINK,
    CONF_URL,
    DOMAIN,
    LINK_CAN,
    LINK_CONSOLE,
    LINK_RS485,
)
from custom_components.pylontech.core.model import Protection
from simulator.simulator import BatterySimulator

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "pylontech.yaml"
MODULES = 4  # the dashboard's module rows
ENTITY_ID = re.compile(r"^(?:sensor|binary_sensor)\.[a-z0-9_]+$")

# What the dashboard file's header tells the owner of each kind of bank to delete.
CONSOLE_ONLY_MISSING = {
    "binary_sensor.pylontech_bank_charging_allowed",
    "binary_sensor.pylontech_bank_discharging_allowed",
    "binary_sensor.pylontech_bank_full_charge_requested",
}
CAN_ONLY_MISSING = {"sensor.pylontech_bank_stored_energy"} | {
    f"sensor.module_{n}_{key}"
    for n in range(1, MODULES + 1)
    for key in ("state_of_charge", "temperature", "cell_voltage_spread", "state")
}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the repository's custom integration."""


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[BatterySimulator]:
    """A 4-module US3000C bank, values frozen, CAN broadcasting every 0.2 s."""
    sim = BatterySimulator(MODULES, "US3000C", seed=3, tick=None, can_period=0.2, control_port=None)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def dashboard() -> dict[str, Any]:
    """The dashboard file as Lovelace reads it."""
    return yaml.safe_load(DASHBOARD.read_text(encoding="utf-8"))


def referenced_entities(node: Any) -> set[str]:
    """Every ``entity:`` value anywhere in the dashboard."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "entity" and isinstance(value, str):
                found.add(value)
            else:
                found |= referenced_entities(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced_entities(item)
    return found


def status_template() -> str:
    """The markdown content of the "Status" card."""
    for section in dashboard()["views"][0]["sections"]:
        for card in section["cards"]:
            if card.get("type") == "markdown":
                return str(card["content"])
    raise AssertionError("no markdown card in the dashboard")


def entry_for(link: str, sim: BatterySimulator) -> MockConfigEntry:
    """An entry as dev/seed_config.py writes it, titled like the dashboard expects."""
    can = {CONF_LINK: LINK_CAN, CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: sim.can_channel}
    options: dict[str, Any] = {CONF_DETAIL_INTERVAL: 600}
    if link == "rs485":
        data: dict[str, Any] = {
            CONF_LINK: LINK_RS485,
            CONF_URL: sim.rs485_url,
            CONF_BAUDRATE: 115200,
            CONF_GROUP: 0,
        }
    elif link == "can":
        data = can
    else:
        data = {CONF_LINK: LINK_CONSOLE, CONF_URL: sim.console_url, CONF_BAUDRATE: 115200}
        if link == "console+can":
            options[CONF_COMPANION] = can
    return MockConfigEntry(
        domain=DOMAIN, title="Pylontech bank", data=data, options=options, unique_id=link
    )


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up the entry; it must load."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def tear_down(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload, so no link task outlives the test."""
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def test_dashboard_is_one_sections_view_of_known_entities() -> None:
    """The file parses; every referenced id is an entity id the integration names."""
    data = dashboard()
    (view,) = data["views"]
    assert view["type"] == "sections"
    assert view["path"] == "bank"
    entities = referenced_entities(data)
    assert len(entities) > 30
    bad = [e for e in entities if not ENTITY_ID.match(e)]
    assert not bad
    assert all(e.split(".", 1)[1].startswith(("pylontech_bank_", "module_")) for e in entities)


@pytest.mark.parametrize(
    ("link", "missing"),
    [
        ("rs485", set()),
        ("console+can", set()),
        ("console", CONSOLE_ONLY_MISSING),
        ("can", CAN_ONLY_MISSING),
    ],
)
async def test_dashboard_entities_exist_per_link(
    hass: HomeAssistant, simulator: BatterySimulator, link: str, missing: set[str]
) -> None:
    """Exactly the rows the header says to delete are the ones without an entity."""
    entry = entry_for(link, simulator)
    await set_up(hass, entry)
    try:
        registry = er.async_get(hass)
        wanted = referenced_entities(dashboard())
        # A CAN companion's entities appear with its first complete broadcast cycle.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            entries = er.async_entries_for_config_entry(registry, entry.entry_id)
            absent = wanted - {e.entity_id for e in entries}
            if absent == missing or loop.time() > deadline:
                break
            await asyncio.sleep(0.2)
            await hass.async_block_till_done()
        assert absent == missing
    finally:
        await tear_down(hass, entry)


async def test_status_card_lists_an_injected_protection(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """The Status card is clear on a healthy bank and names a module's protection."""
    entry = entry_for("rs485", simulator)
    await set_up(hass, entry)
    try:
        template = Template(status_template(), hass)
        assert "No protection or warning is active" in template.async_render()

        simulator.faults.inject_protection(Protection.CHARGE_OVER_CURRENT, 2)
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
        assert (
            hass.states.get("binary_sensor.module_2_charge_over_current_protection").state == "on"
        )

        rendered = template.async_render()
        assert "No protection or warning is active" not in rendered
        assert "Module 2 Charge over-current protection" in rendered
        assert "(/config/repairs)" in rendered

        simulator.faults.clear_all()
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
        assert "No protection or warning is active" in template.async_render()
    finally:
        await tear_down(hass, entry)
