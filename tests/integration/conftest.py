"""Fixtures for the Home Assistant tests: a simulated bank and config entries reading it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.const import (
    CAN_SLCAN,
    CONF_BAUDRATE,
    CONF_CAN_CHANNEL,
    CONF_CAN_INTERFACE,
    CONF_DETAIL_INTERVAL,
    CONF_GROUP,
    CONF_LINK,
    CONF_URL,
    DOMAIN,
    LINK_CAN,
    LINK_CONSOLE,
    LINK_RS485,
)
from simulator.simulator import BatterySimulator

MODULES = 3
MODEL = "US3000C"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the repository's custom integration in every test."""


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[BatterySimulator]:
    """A 3-module US3000C bank on RS485, console and CAN (SLCAN), values frozen.

    Real sockets on 127.0.0.1 (PHACC still refuses any other host).
    The clock does not tick (``tick=None``) so snapshots are deterministic; a test
    moves time with ``simulator.bank.step(dt)``. CAN broadcasts every 0.2 s.
    """
    sim = BatterySimulator(MODULES, MODEL, seed=7, tick=None, can_period=0.2, control_port=None)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def master_serial(sim: BatterySimulator) -> str:
    """The master's barcode: the unique id a probe reports."""
    serial = sim.bank.serial(1)
    assert serial
    return serial


def rs485_data(sim: BatterySimulator) -> dict[str, Any]:
    """Entry data for the simulator's RS485 port."""
    return {CONF_LINK: LINK_RS485, CONF_URL: sim.rs485_url, CONF_BAUDRATE: 115200, CONF_GROUP: 0}


def console_data(sim: BatterySimulator) -> dict[str, Any]:
    """Entry data for the simulator's console port."""
    return {CONF_LINK: LINK_CONSOLE, CONF_URL: sim.console_url, CONF_BAUDRATE: 115200}


def can_data(sim: BatterySimulator) -> dict[str, Any]:
    """Entry data for the simulator's SLCAN-over-TCP port."""
    return {CONF_LINK: LINK_CAN, CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: sim.can_channel}


@pytest.fixture
def mock_config_entry(simulator: BatterySimulator) -> MockConfigEntry:
    """An RS485 entry for the simulated bank (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"Pylontech {MODEL}",
        data=rs485_data(simulator),
        options={CONF_DETAIL_INTERVAL: 600},
        unique_id=master_serial(simulator),
        entry_id="01PYLONTECHRS485ENTRY00000",
    )


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add an entry and set it up; returns it loaded."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The RS485 entry, set up against the simulator; unloaded again afterwards."""
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    yield mock_config_entry
    if mock_config_entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()
