"""The notify blueprint (blueprints/automation/pylontech/notify_on_fault.yaml) in a real
automation: Home Assistant validates and instantiates it, ``pylontech_event`` drives it, and
its inputs filter what becomes a notification.
"""

from __future__ import annotations

from pathlib import Path
import shutil
from typing import Any

from homeassistant.components.automation import DOMAIN as AUTOMATION_DOMAIN
from homeassistant.components.blueprint import models, schemas
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.pylontech.const import DOMAIN

BLUEPRINT = (
    Path(__file__).resolve().parents[2]
    / "blueprints"
    / "automation"
    / "pylontech"
    / "notify_on_fault.yaml"
)
EVENT = "pylontech_event"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Keep the same loader set-up as the other Home Assistant tests."""


def event(device_id: str | None, entry_id: str, **changes: Any) -> dict[str, Any]:
    """Event data as the integration fires it (issues.py)."""
    data: dict[str, Any] = {
        "device_id": device_id,
        "config_entry_id": entry_id,
        "module": 2,
        "group": 0,
        "flag": "charge_over_current",
        "kind": "protection",
        "active": True,
    }
    data.update(changes)
    return data


async def notifications(hass_ws_client: WebSocketGenerator, hass: HomeAssistant) -> list[dict]:
    """The persistent notifications, through the websocket API the frontend uses."""
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "persistent_notification/get"})
    reply = await client.receive_json()
    assert reply["success"]
    return list(reply["result"])


async def set_up_automation(hass: HomeAssistant, tmp_path: Path, inputs: dict[str, Any]) -> None:
    """The blueprint in a config dir of its own, used by one automation."""
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "pylontech"
    target.mkdir(parents=True)
    shutil.copyfile(BLUEPRINT, target / BLUEPRINT.name)
    assert await async_setup_component(hass, "persistent_notification", {})
    config = {
        AUTOMATION_DOMAIN: [
            {
                "id": "pylontech_notify",
                "alias": "Battery protection or alarm",
                "use_blueprint": {"path": "pylontech/notify_on_fault.yaml", "input": inputs},
            }
        ]
    }
    assert await async_setup_component(hass, AUTOMATION_DOMAIN, config)
    await hass.async_block_till_done()
    assert hass.states.get("automation.battery_protection_or_alarm").state == "on"


def test_blueprint_passes_home_assistants_schema() -> None:
    """Home Assistant's own blueprint model accepts it as an automation blueprint."""
    blueprint = models.Blueprint(
        load_yaml_dict(str(BLUEPRINT)),
        expected_domain=AUTOMATION_DOMAIN,
        schema=schemas.BLUEPRINT_SCHEMA,
    )
    assert blueprint.name.startswith("Pylontech")
    assert set(blueprint.inputs) == {"bank", "include_alarms", "notify_cleared", "notify_action"}


async def test_defaults_notify_start_and_end_of_protections_and_alarms(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, tmp_path: Path
) -> None:
    """With the defaults every start and end becomes a notification naming the device."""
    await set_up_automation(hass, tmp_path, {})
    entry = MockConfigEntry(domain=DOMAIN, title="Pylontech bank")
    entry.add_to_hass(hass)
    module = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "module-2")}, name="Module 2"
    )

    hass.bus.async_fire(EVENT, event(module.id, entry.entry_id))
    await hass.async_block_till_done()
    (started,) = await notifications(hass_ws_client, hass)
    assert started["title"] == "Battery protection: charge over current"
    assert started["message"].startswith("Module 2: charge over current protection started")

    hass.bus.async_fire(EVENT, event(module.id, entry.entry_id, kind="alarm", flag="high_voltage"))
    hass.bus.async_fire(EVENT, event(module.id, entry.entry_id, active=False))
    await hass.async_block_till_done()
    titles = {n["title"] for n in await notifications(hass_ws_client, hass)}
    assert "Battery alarm: high voltage" in titles
    assert "Battery protection cleared: charge over current" in titles


async def test_inputs_filter_alarms_endings_and_other_banks(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, tmp_path: Path
) -> None:
    """Protections only, no 'cleared' notices, one bank: everything else stays quiet."""
    mine = MockConfigEntry(domain=DOMAIN, title="Pylontech bank")
    mine.add_to_hass(hass)
    await set_up_automation(
        hass,
        tmp_path,
        {"bank": mine.entry_id, "include_alarms": False, "notify_cleared": False},
    )

    hass.bus.async_fire(EVENT, event(None, mine.entry_id, kind="alarm", flag="high_voltage"))
    hass.bus.async_fire(EVENT, event(None, mine.entry_id, active=False))
    hass.bus.async_fire(EVENT, event(None, "another-bank"))
    await hass.async_block_till_done()
    assert await notifications(hass_ws_client, hass) == []

    hass.bus.async_fire(EVENT, event(None, mine.entry_id, flag="short_circuit"))
    await hass.async_block_till_done()
    (only,) = await notifications(hass_ws_client, hass)
    assert only["title"] == "Battery protection: short circuit"
    assert only["message"].startswith("Battery bank: short circuit protection started")
