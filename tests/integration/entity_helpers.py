"""Shared helpers for the entity, repairs and event tests: entries per link, snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.pylontech.const import CONF_DETAIL_INTERVAL, DOMAIN
from custom_components.pylontech.coordinator import PylontechCoordinator
from simulator.simulator import BatterySimulator

from .conftest import MODEL, can_data, console_data, master_serial, rs485_data, setup_entry

LINKS = ("rs485", "console", "can")


def with_ha_serializer(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Syrupy with Home Assistant's serializer (random ids and timestamps left out)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


def link_entry(simulator: BatterySimulator, link: str, **options: Any) -> MockConfigEntry:
    """An entry reading the simulated bank over ``link``, with a fixed entry id per link."""
    data = {"rs485": rs485_data, "console": console_data, "can": can_data}[link](simulator)
    unique_id = f"can-test-{link}" if link == "can" else master_serial(simulator)
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"Pylontech {MODEL}",
        data=data,
        options={CONF_DETAIL_INTERVAL: 600, **options},
        unique_id=unique_id,
        entry_id=f"01PYLONTECH{link.upper()}ENTRY".ljust(26, "0"),
    )


async def setup_link(
    hass: HomeAssistant, simulator: BatterySimulator, link: str, **options: Any
) -> MockConfigEntry:
    """Set up an entry for ``link``; asserts it loaded."""
    entry = await setup_entry(hass, link_entry(simulator, link, **options))
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload an entry if it is loaded (tests must leave no link running)."""
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


def coordinator_of(entry: MockConfigEntry) -> PylontechCoordinator:
    """The entry's coordinator."""
    return entry.runtime_data.coordinator


def entries_of(hass: HomeAssistant, entry: MockConfigEntry, domain: str) -> list[er.RegistryEntry]:
    """The entry's registry entries of one platform, sorted by entity id."""
    registry = er.async_get(hass)
    found = [
        e for e in er.async_entries_for_config_entry(registry, entry.entry_id) if e.domain == domain
    ]
    return sorted(found, key=lambda e: e.entity_id)


def assert_platform_snapshot(
    hass: HomeAssistant, entry: MockConfigEntry, domain: str, snapshot: SnapshotAssertion
) -> None:
    """Every registry entry of a platform, and the state of every enabled one, match."""
    entries = entries_of(hass, entry, domain)
    assert entries
    for entity in entries:
        assert entity == snapshot(name=f"{entity.entity_id}-entry")
        state = hass.states.get(entity.entity_id)
        if entity.disabled_by is None:
            assert state is not None, entity.entity_id
            assert state == snapshot(name=f"{entity.entity_id}-state")
        else:
            assert state is None


def entity_id(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    """The entity id registered for a unique id (asserts it exists)."""
    found = er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the loop run until ``predicate()`` holds (CAN pushes arrive on their own)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - state changes in HA, no event to await
            await asyncio.sleep(0.05)
