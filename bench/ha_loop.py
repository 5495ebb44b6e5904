"""Home Assistant event-loop cost per coordinator update, and state writes.

A pytest module (it needs PHACC's ``hass``), run explicitly by ``scripts/bench`` —
``python -m pytest bench/ha_loop.py`` — never part of the test suite (``testpaths`` is
``tests``).

Set-up: a 16-module US3000C bank on RS485 (simulator in its own thread, values frozen),
an entry with cell entities on and every entity of the entry enabled (also the ones
disabled by default). Figures go to ``.dev/bench/ha_loop.json`` (or
``PYLON_BENCH_OUT``). Then:

* loop CPU per update: ``time.thread_time()`` of the loop thread across
  ``coordinator.async_refresh()`` + ``async_block_till_done()`` (median of 10), which is
  the integration's work in the loop (link I/O handling, decode, model, coordinator,
  entity updates) — the simulator's CPU is in the other thread;
* state writes when nothing changed: ``state_changed`` + ``state_reported`` events over
  10 refreshes of an unchanged bank (target 0);
* state writes when one value changed: one module's cycle count bumped, one refresh.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import statistics
import time
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.const import (
    CONF_BAUDRATE,
    CONF_CELL_ENTITIES,
    CONF_DETAIL_INTERVAL,
    CONF_GROUP,
    CONF_LINK,
    CONF_SCAN_INTERVAL,
    CONF_URL,
    DOMAIN,
    LINK_RS485,
)

from .threaded_sim import ThreadedSimulator

MODULES = 16
# The chroot passes only whitelisted variables: by default write where scripts/bench reads.
RESULTS = Path(__file__).resolve().parent.parent / ".dev" / "bench"
REFRESHES = 10


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load the repository's integration."""


async def test_ha_loop_benchmark(hass: HomeAssistant, socket_enabled: None) -> None:
    """Measure; write the figures to ``PYLON_BENCH_OUT``."""
    with ThreadedSimulator(
        modules=MODULES,
        model="US3000C",
        tick=None,
        console_port=None,
        can_port=None,
        control_port=None,
    ) as threaded:
        figures = await _measure(hass, threaded)
    out = Path(os.environ.get("PYLON_BENCH_OUT") or RESULTS / "ha_loop.json")
    await hass.async_add_executor_job(_write, out, figures)


async def _measure(hass: HomeAssistant, threaded: ThreadedSimulator) -> dict[str, Any]:
    sim = threaded.sim
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Pylontech bench",
        data={CONF_LINK: LINK_RS485, CONF_URL: sim.rs485_url, CONF_BAUDRATE: 115200, CONF_GROUP: 0},
        options={CONF_CELL_ENTITIES: True, CONF_DETAIL_INTERVAL: 86400, CONF_SCAN_INTERVAL: 3600},
        unique_id=sim.bank.serial(1),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    for reg in er.async_entries_for_config_entry(registry, entry.entry_id):
        if reg.disabled_by is not None:
            registry.async_update_entity(reg.entity_id, disabled_by=None)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    entities = er.async_entries_for_config_entry(registry, entry.entry_id)
    enabled = sum(1 for reg in entities if reg.disabled_by is None)
    states = sum(1 for reg in entities if hass.states.get(reg.entity_id) is not None)
    coordinator = entry.runtime_data.coordinator

    writes: list[tuple[str, str]] = []  # (event type, entity id)

    @callback
    def count(event: Event[Any]) -> None:
        writes.append((event.event_type, event.data["entity_id"]))

    @callback
    def every(_data: Any) -> bool:
        return True

    unsubscribe = [
        hass.bus.async_listen(EVENT_STATE_CHANGED, count),
        hass.bus.async_listen(EVENT_STATE_REPORTED, count, event_filter=every),
    ]
    try:
        await coordinator.async_refresh()  # settle (first fast poll after the reload)
        await hass.async_block_till_done()
        cpu: list[float] = []
        wall: list[float] = []
        writes.clear()
        for _ in range(REFRESHES):
            cpu_start, wall_start = time.thread_time(), time.perf_counter()
            await coordinator.async_refresh()
            await hass.async_block_till_done()
            cpu.append(time.thread_time() - cpu_start)
            wall.append(time.perf_counter() - wall_start)
        unchanged = list(writes)
        assert coordinator.last_update_success

        def bump_cycles() -> None:
            sim.bank.modules[1].cycles += 1  # module 2: one value changes

        threaded.call(bump_cycles)
        writes.clear()
        cpu_start = time.thread_time()
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        changed_cpu = time.thread_time() - cpu_start
        changed = list(writes)
    finally:
        for remove in unsubscribe:
            remove()
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    return {
        "modules": MODULES,
        "entities_enabled": enabled,
        "entities_with_state": states,
        "loop_cpu_seconds_median": statistics.median(cpu),
        "loop_cpu_seconds_max": max(cpu),
        "update_wall_seconds_median": statistics.median(wall),
        "refreshes_unchanged": REFRESHES,
        "writes_unchanged": len(unchanged),
        "state_changed_unchanged": _of(unchanged, EVENT_STATE_CHANGED),
        "state_reported_unchanged": _of(unchanged, EVENT_STATE_REPORTED),
        "written_unchanged_sample": sorted({e for _, e in unchanged})[:12],
        "writes_one_change": len(changed),
        "state_changed_one_change": _of(changed, EVENT_STATE_CHANGED),
        "state_reported_one_change": _of(changed, EVENT_STATE_REPORTED),
        "changed_entities_one_change": sorted(
            {e for kind, e in changed if kind == EVENT_STATE_CHANGED}
        )[:12],
        "loop_cpu_seconds_one_change": changed_cpu,
    }


def _write(out: Path, figures: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1), encoding="utf-8")


def _of(writes: list[tuple[str, str]], kind: str) -> int:
    return sum(1 for event_type, _ in writes if event_type == kind)
