"""Fault-injection soak: the integration against the simulator, bounded.

Two config entries (RS485 and console) read one simulated 4-module bank. For
``PYLON_SOAK`` seconds (default 90; 0 skips) random episodes are played, alternating the
links: a fault is injected, the coordinator polls once, the fault is cleared, it polls
once more. Each poll is one ``async_refresh`` after a gap a little longer than the
link's first reconnect backoff (still shorter than the 2 s minimum scan interval).

Asserted for every episode:
* link faults that make the link unreadable (drop, stall, wrong baud, corrupted or
  truncated answers) turn every entity of the entry unavailable at the **first** poll
  during the fault (only the diagnostic link-connectivity sensor stays, reading off);
  noise before answers (garbage) is read through, nothing goes unavailable;
* a module dropout turns exactly that module's entities unavailable, the rest stay;
* the **first** poll after the fault ends makes everything available again.
And for the whole run: no log record at ERROR carries an exception (expected
"Error fetching ..." lines from ``UpdateFailed`` are counted, not failures), and no growth
in asyncio tasks, open file descriptors or memory allocated by the integration's code
between a third of the way in and the end of the soak. The figures are printed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
import gc
import logging
import os
import random
import time
import tracemalloc
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
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
    LINK_CONSOLE,
    LINK_RS485,
)
from custom_components.pylontech.coordinator import module_key_from_device
from simulator.simulator import BatterySimulator

SOAK_SECONDS = float(os.environ.get("PYLON_SOAK", "90"))
MODULES = 4
#: Longer than the first reconnect backoff (1 s + 20 % jitter), shorter than HA's minimum
#: scan interval (2 s): "within one poll" is checked at a pace a user could configure.
POLL_GAP = 1.3
#: (fault, entities expected unavailable during it) per link.
LINK_FAULTS: dict[str, tuple[tuple[str, bool], ...]] = {
    "rs485": (
        ("drop", True),
        ("stall", True),
        ("wrong_baud", True),
        ("checksum", True),
        ("truncate", True),
        ("garbage", False),
    ),
    "console": (
        ("drop", True),
        ("stall", True),
        ("truncate", True),
        ("garbage", False),
    ),
}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load the repository's integration."""


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _integration_snapshot() -> tracemalloc.Snapshot:
    """Allocations made by the integration's code (and its coordinator base class).

    The links' raw-traffic rings for diagnostics (``links/base.py``) are left out: they fill
    up to a fixed bound (``TRAFFIC_LINES``/``TRAFFIC_CHARS``) during the run by design. A
    leak of one snapshot per poll (~10 KB) would still exceed the threshold below.
    """
    return (
        tracemalloc.take_snapshot()
        .filter_traces(
            (
                tracemalloc.Filter(True, "*/custom_components/pylontech/*"),
                tracemalloc.Filter(True, "*/homeassistant/helpers/update_coordinator.py"),
            )
        )
        .filter_traces(
            (
                tracemalloc.Filter(False, "*/core/links/base.py"),
                # The in-process simulator decodes with the same codecs and keeps its last
                # 10,000 requests (bounded): its allocations are not the integration's.
                tracemalloc.Filter(False, "*/simulator/*", all_frames=True),
            )
        )
    )


def _size(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


class Watched:
    """One entry's entities, grouped by module."""

    def __init__(self, hass: HomeAssistant, entry: MockConfigEntry, sim: BatterySimulator) -> None:
        """Collect the entry's entity ids (link-connectivity sensor kept apart)."""
        # Module devices are identified by barcode once known, by position before.
        barcodes = {sim.bank.serial(n): (0, n) for n in range(1, MODULES + 1)}
        self.hass = hass
        self.entry = entry
        entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        devices = dr.async_get(hass)
        self.by_module: dict[tuple[int, int] | None, list[str]] = {}
        self.connectivity: list[str] = []
        for reg in entities:
            if reg.disabled_by is not None:
                continue
            if reg.original_device_class == "connectivity":
                self.connectivity.append(reg.entity_id)
                continue
            device = devices.async_get(reg.device_id) if reg.device_id else None
            key = _module_of(entry, device, barcodes) if device else None
            self.by_module.setdefault(key, []).append(reg.entity_id)
        assert sum(len(ids) for ids in self.by_module.values()) > 20 * MODULES

    def unavailable(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` that are unavailable now."""
        states = self.hass.states
        return [i for i in ids if (s := states.get(i)) is None or s.state == STATE_UNAVAILABLE]

    def all_ids(self) -> list[str]:
        """Every watched entity (not the connectivity sensor)."""
        return [i for ids in self.by_module.values() for i in ids]


def _module_of(
    entry: MockConfigEntry, device: dr.DeviceEntry, barcodes: dict[str | None, tuple[int, int]]
) -> tuple[int, int] | None:
    if (key := module_key_from_device(entry, device)) is not None:
        return key
    for domain, identifier in device.identifiers:
        if domain == DOMAIN:
            for barcode, position in barcodes.items():
                if barcode and identifier.endswith(barcode):
                    return position
    return None


async def _poll(hass: HomeAssistant, entry: MockConfigEntry) -> float:
    await asyncio.sleep(POLL_GAP)
    started = time.perf_counter()
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    return time.perf_counter() - started


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.skipif(SOAK_SECONDS <= 0, reason="PYLON_SOAK=0")
async def test_integration_soak_with_random_faults(
    hass: HomeAssistant, socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Random faults for a bounded time; availability follows within one poll."""
    caplog.set_level(logging.WARNING)
    rng = random.Random(7_2026)
    sim = BatterySimulator(MODULES, "US3000C", seed=11, tick=None, can_port=None, control_port=None)
    await sim.start()
    entries: dict[str, MockConfigEntry] = {}
    try:
        for link, data in (
            (LINK_RS485, {CONF_URL: sim.rs485_url, CONF_BAUDRATE: 115200, CONF_GROUP: 0}),
            (LINK_CONSOLE, {CONF_URL: sim.console_url, CONF_BAUDRATE: 115200}),
        ):
            entry = MockConfigEntry(
                domain=DOMAIN,
                title=f"Soak {link}",
                data={CONF_LINK: link, **data},
                options={
                    CONF_SCAN_INTERVAL: 3600,  # the test drives every poll itself
                    CONF_DETAIL_INTERVAL: 86400,
                    CONF_CELL_ENTITIES: True,
                },
                unique_id=f"soak-{link}",
            )
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            assert entry.state is ConfigEntryState.LOADED
            entries[link] = entry
        watched = {link: Watched(hass, entry, sim) for link, entry in entries.items()}

        # Warm-up: one clean episode per link so caches and registries are built.
        for link, entry in entries.items():
            await _poll(hass, entry)
            assert not watched[link].unavailable(watched[link].all_ids())
        tracemalloc.start(5)
        episodes: Counter[str] = Counter()
        poll_times: list[float] = []
        started = time.monotonic()
        deadline = started + SOAK_SECONDS
        # Resources are compared from a third into the soak (every code path has run by
        # then, lazily created things exist) to the end.
        baseline: dict[str, Any] | None = None
        number = 0
        while time.monotonic() < deadline:
            if baseline is None and time.monotonic() - started >= SOAK_SECONDS / 3:
                gc.collect()
                baseline = {
                    "tasks": sorted(t.get_name() for t in asyncio.all_tasks()),
                    "fds": _open_fds(),
                    "memory": _integration_snapshot(),
                }
            link = ("rs485", "console")[number % 2]
            number += 1
            entry, watch = entries[link], watched[link]
            if rng.random() < 0.3:
                module = rng.randint(2, MODULES)
                sim.faults.drop_module(module)
                poll_times.append(await _poll(hass, entry))
                gone = watch.by_module.get((0, module), [])
                assert gone, f"no entities for module {module}"
                assert watch.unavailable(gone) == gone, f"{link}: module {module} still shown"
                others = [
                    i for key, ids in watch.by_module.items() if key != (0, module) for i in ids
                ]
                assert not watch.unavailable(others), f"{link}: dropout of {module} spread"
                sim.faults.restore_module(module)
                episodes[f"{link} module dropout"] += 1
            else:
                fault, fatal = rng.choice(LINK_FAULTS[link])
                sim.faults.inject_link_fault(link, fault, seconds=30.0)
                poll_times.append(await _poll(hass, entry))
                down = watch.unavailable(watch.all_ids())
                if fatal:
                    assert down == watch.all_ids(), (
                        f"{link} {fault}: {len(watch.all_ids()) - len(down)} entities "
                        "still available during the fault"
                    )
                else:
                    assert not down, f"{link} {fault}: {len(down)} entities went unavailable"
                sim.faults.clear_link_fault(link, fault)
                episodes[f"{link} {fault}"] += 1
            poll_times.append(await _poll(hass, entry))
            still = watch.unavailable(watch.all_ids())
            assert not still, f"{link}: {len(still)} entities not back one poll after the fault"

        gc.collect()
        tasks_after = sorted(t.get_name() for t in asyncio.all_tasks())
        fds_after = _open_fds()
        memory_after = _integration_snapshot()
        tracemalloc.stop()
        assert baseline is not None, "soak too short for a baseline"
    finally:
        for entry in entries.values():
            if entry.state is ConfigEntryState.LOADED:
                await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        await sim.stop()

    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    unexpected = [r for r in caplog.records if "Unexpected error" in r.getMessage()]
    expected_errors = sum(1 for r in caplog.records if r.levelno >= logging.ERROR)
    figures: dict[str, Any] = {
        "seconds": SOAK_SECONDS,
        "episodes": dict(sorted(episodes.items())),
        "polls": len(poll_times),
        "poll_seconds_max": round(max(poll_times), 3),
        "error_lines": expected_errors,
        "tracebacks": len(tracebacks),
        "tasks": (len(baseline["tasks"]), len(tasks_after)),
        "fds": (baseline["fds"], fds_after),
        "integration_memory_bytes": (_size(baseline["memory"]), _size(memory_after)),
        "top_growth": [
            f"{stat.traceback[0].filename.rsplit('/', 2)[-1]}:{stat.traceback[0].lineno}"
            f" {stat.size_diff:+d}"
            for stat in memory_after.compare_to(baseline["memory"], "lineno")[:5]
        ],
    }
    print("soak figures:", figures)
    assert sum(episodes.values()) >= 4
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert not unexpected, [r.getMessage() for r in unexpected]
    assert len(tasks_after) <= len(baseline["tasks"]), (baseline["tasks"], tasks_after)
    assert fds_after <= baseline["fds"], figures
    # bounded ring buffers may still be filling; steady growth would be far larger
    assert _size(memory_after) - _size(baseline["memory"]) < 256 * 1024, figures
