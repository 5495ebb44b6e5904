"""The console link in Home Assistant: what the user sees is what the battery said.

Each test drives a console entry against the simulated bank and reads entity states, the way
a user sees them: injected protections are on (never "Safe"), a protection the console cannot
name has no entity, a bad `pwr` row costs nothing but itself, an unreported SOH is no 0 %,
and a reconnect wait names its cause once.
"""

from __future__ import annotations

from dataclasses import replace
import logging

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.pylontech.binary_sensor import FAMILIES_BY_KEY, KIND_PROTECTION, family_of
from custom_components.pylontech.const import DOMAIN
from custom_components.pylontech.core.links import ConsoleLink
from simulator import console_render as render
from simulator.faults import LinkFault
from simulator.simulator import BatterySimulator

from .entity_helpers import coordinator_of, entity_id, entries_of, setup_link, unload


def _module_prefix(entry_id: str, simulator: BatterySimulator, index: int) -> str:
    return f"{entry_id}_module_sn_{simulator.bank.serial(index)}_"


async def _refresh(hass: HomeAssistant, entry: object) -> None:
    await coordinator_of(entry).async_refresh()  # type: ignore[arg-type]
    await hass.async_block_till_done()


async def test_injected_module_protections_are_on_never_safe(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Under-voltage and charge over-current on module 2: both on; nothing on shows "Safe"."""
    entry = await setup_link(hass, simulator, "console")
    registry = er.async_get(hass)
    module_2 = _module_prefix(entry.entry_id, simulator, 2)
    module_1 = _module_prefix(entry.entry_id, simulator, 1)
    try:
        simulator.faults.inject_protection("under_voltage", 2)
        simulator.faults.inject_protection("charge_over_current", 2)
        await _refresh(hass, entry)
        for family in ("protection_under_voltage", "protection_charge_over_current"):
            for unique_id in (module_2 + family, f"{entry.entry_id}_{family}"):
                state = hass.states.get(entity_id(hass, "binary_sensor", unique_id))
                assert state is not None
                assert state.state == STATE_ON, unique_id
            healthy = hass.states.get(entity_id(hass, "binary_sensor", module_1 + family))
            assert healthy.state == STATE_OFF
        # Every protection family the truth has active on module 2 is on wherever it exists.
        truth = simulator.bank.module_snapshot(2)
        assert truth is not None
        active = {family_of(flag).key for flag in truth.protections}
        for item in entries_of(hass, entry, "binary_sensor"):
            key = item.unique_id.removeprefix(module_2)
            if item.unique_id.startswith(module_2) and key in active:
                assert hass.states.get(item.entity_id).state == STATE_ON, key
        # What the console cannot name gets no per-module entity, not a "Safe" one.
        for family in ("protection_reverse_polarity", "protection_general"):
            assert FAMILIES_BY_KEY[family].kind == KIND_PROTECTION
            assert registry.async_get_entity_id("binary_sensor", DOMAIN, module_2 + family) is None

        simulator.faults.clear_all()
        await _refresh(hass, entry)
        for family in ("protection_under_voltage", "protection_charge_over_current"):
            state = hass.states.get(entity_id(hass, "binary_sensor", module_2 + family))
            assert state.state == STATE_OFF
    finally:
        await unload(hass, entry)


@pytest.fixture
def slot_100(simulator: BatterySimulator) -> None:
    """The simulated console prints one more `pwr` row, for slot 100 (no such module)."""
    console = simulator.console
    assert console is not None
    original = console.payload

    def payload(text: str) -> list[str] | None:
        lines = original(text)
        if text == "pwr" and lines is not None:
            master = simulator.bank.module_snapshot(1)
            assert master is not None
            row = render.pwr_row(replace(master, index=100), simulator.bank.module_time(1))
            lines = [*lines, row]
        return lines

    console.payload = payload  # type: ignore[method-assign]


@pytest.mark.usefixtures("slot_100")
async def test_a_pwr_row_beyond_the_slots_costs_only_itself(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Slot 100: the entry loads, every real module is there, the row is counted, polls go on."""
    entry = await setup_link(hass, simulator, "console")
    try:
        coordinator = coordinator_of(entry)
        assert coordinator.last_update_success
        await _refresh(hass, entry)
        assert coordinator.last_update_success
        assert sorted(m.index for m in coordinator.data.modules) == [1, 2, 3]
        devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        assert len(devices) == 1 + 3  # the bank and its three modules, no "module 100"
        for index in (1, 2, 3):
            soc = hass.states.get(
                entity_id(hass, "sensor", _module_prefix(entry.entry_id, simulator, index) + "soc")
            )
            assert soc.state == str(round(simulator.bank.module_snapshot(index).soc))  # type: ignore[union-attr]
        link = coordinator.link
        assert isinstance(link, ConsoleLink)
        stats = coordinator.diagnostics()["link"]["stats"]
        assert stats["skipped_records"] >= 2  # counted on every poll
        assert stats["failed_polls"] == 0
        assert not any(cmd.endswith(" 100") for cmd in simulator.console.commands)  # type: ignore[union-attr]
    finally:
        await unload(hass, entry)


async def test_soh_zero_is_unknown_not_zero_percent(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A `stat` SOH of 0 (US2000C B68.2, SOH status Normal) is not shown as 0 % health."""
    simulator.bank.modules[1].soh = 0.0
    entry = await setup_link(hass, simulator, "console")
    registry = er.async_get(hass)
    try:
        first = entity_id(hass, "sensor", _module_prefix(entry.entry_id, simulator, 1) + "soh")
        assert hass.states.get(first).state == str(int(simulator.bank.modules[0].soh))
        second = registry.async_get_entity_id(
            "sensor", DOMAIN, _module_prefix(entry.entry_id, simulator, 2) + "soh"
        )
        if second is not None:
            assert hass.states.get(second).state == STATE_UNKNOWN
    finally:
        await unload(hass, entry)


async def test_reconnect_waits_name_their_cause_once(
    hass: HomeAssistant, simulator: BatterySimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The console drops every command: the errors the user can read never nest."""
    caplog.set_level(logging.DEBUG, logger="custom_components.pylontech")
    entry = await setup_link(hass, simulator, "console")
    coordinator = coordinator_of(entry)
    try:
        simulator.faults.inject_link_fault("console", LinkFault.DROP)
        errors: list[str] = []
        for _ in range(4):
            await _refresh(hass, entry)
            errors.append(coordinator.diagnostics()["primary_error"] or "")
        assert not coordinator.last_update_success
        diagnostics = coordinator.diagnostics()
        texts = [
            *errors,
            diagnostics["link"]["stats"]["last_error"] or "",
            *(record.getMessage() for record in caplog.records),
        ]
        # The later polls meet the backoff: their error is the wait, with the cause once.
        assert any("reconnecting in" in text for text in errors)
        assert "ConnectionLostError" in diagnostics["link"]["stats"]["last_error"]
        for text in texts:
            assert text.count("last error") <= 1, text
            assert text.count("reconnecting in") <= 1, text
    finally:
        simulator.faults.clear_link_fault("console")
        await unload(hass, entry)
