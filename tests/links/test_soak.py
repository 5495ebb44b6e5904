"""Bounded soak: all three links against one simulator under random faults.

Runs ``PYLON_SOAK`` seconds (default 150; 0 skips). At the end every link must read the
truth again, and nothing may be left behind: no task, no notifier thread, no open
connection, and no steady memory growth inside the link and codec code.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import tracemalloc
from typing import Any

import pytest

from custom_components.pylontech.core.errors import LinkError, ProtocolError
from custom_components.pylontech.core.links import CanLink, ConsoleLink, ReadPlan, Rs485Link
from custom_components.pylontech.core.model import Bank

SOAK_SECONDS = float(os.environ.get("PYLON_SOAK", "150"))
MODULES = 4

RS485_FAULTS = ("checksum", "garbage", "truncate", "stall", "drop", "wrong_baud")
CONSOLE_FAULTS = ("checksum", "garbage", "truncate", "stall", "drop")
CAN_FAULTS = ("checksum", "garbage", "truncate", "stall", "drop")
PLANS = (
    ReadPlan(),
    ReadPlan(identity=True),
    ReadPlan(cells=False, limits=False),
    ReadPlan(statistics=True, cells=False),
)


def _memory(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _watched(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    """Memory the links and codecs hold on their own behalf.

    The simulator decodes requests with the same codecs and keeps the last 10,000 of them
    for the allow-list checks: those allocations carry a simulator frame and are left out.
    """
    return snapshot.filter_traces(
        (
            tracemalloc.Filter(True, "*/pylontech/core/links/*"),
            tracemalloc.Filter(True, "*/pylontech/core/protocol/*"),
            tracemalloc.Filter(False, "*/simulator/*", all_frames=True),
        )
    )


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.skipif(SOAK_SECONDS <= 0, reason="PYLON_SOAK=0")
@pytest.mark.usefixtures("fast_console")
async def test_soak_with_random_faults(make_simulator: Any) -> None:
    rng = random.Random(20261121)
    tasks_before = set(asyncio.all_tasks())
    async with make_simulator(
        modules=MODULES, model="US3000C", can_period=0.25, tick=0.2, time_scale=20.0
    ) as sim:
        updates: list[Bank] = []
        rs485 = Rs485Link(sim.rs485_url, request_timeout=0.25)
        console = ConsoleLink(sim.console_url, command_timeout=0.6)
        can_link = CanLink(
            "slcan",
            sim.can_channel,
            on_update=lambda bank: updates.append(bank) if len(updates) < 10 else None,
            keepalive=True,
            stale_after=1.5,
        )
        outcomes = {"rs485_ok": 0, "rs485_err": 0, "console_ok": 0, "console_err": 0}

        async def poll(link: Rs485Link | ConsoleLink, name: str) -> None:
            try:
                await link.read_bank(rng.choice(PLANS))
            except (LinkError, ProtocolError):
                outcomes[f"{name}_err"] += 1
                # Skip the backoff wait: the soak wants many attempts, not realistic pacing.
                link._backoff.next_attempt = 0.0
            else:
                outcomes[f"{name}_ok"] += 1

        await can_link.start()
        tracemalloc.start(5)
        started = time.monotonic()
        warm_until = started + min(10.0, SOAK_SECONDS * 0.2)
        baseline: tracemalloc.Snapshot | None = None
        try:
            while time.monotonic() - started < SOAK_SECONDS:
                roll = rng.random()
                if roll < 0.25:
                    sim.faults.inject_link_fault(
                        "rs485", rng.choice(RS485_FAULTS), count=1, seconds=0.4
                    )
                elif roll < 0.45:
                    sim.faults.inject_link_fault(
                        "console", rng.choice(CONSOLE_FAULTS), count=1, seconds=0.4
                    )
                elif roll < 0.55:
                    sim.faults.inject_link_fault(
                        "can", rng.choice(CAN_FAULTS), count=1, seconds=0.4
                    )
                elif roll < 0.62:
                    sim.faults.drop_module(rng.randint(2, MODULES))
                elif roll < 0.70:
                    sim.faults.clear_all()
                await asyncio.gather(poll(rs485, "rs485"), poll(console, "console"))
                if baseline is None and time.monotonic() > warm_until:
                    baseline = _watched(tracemalloc.take_snapshot())
            end = _watched(tracemalloc.take_snapshot())

            # Healthy again: every link reads the truth.
            sim.faults.clear_all()
            await asyncio.sleep(0.5)  # let a stall or a paused broadcast run out
            rs485._backoff.next_attempt = console._backoff.next_attempt = 0.0
            got_rs485 = await rs485.read_bank(ReadPlan(identity=True))
            got_console = await console.read_bank(ReadPlan())
            truth = sim.snapshot()
            await asyncio.sleep(1.0)
            assert can_link.bank is not None
        finally:
            tracemalloc.stop()
            await rs485.close()
            await console.close()
            await can_link.stop()

        assert [m.index for m in got_rs485.modules] == list(range(1, MODULES + 1))
        assert [m.index for m in got_console.modules] == list(range(1, MODULES + 1))
        for module, expected in zip(got_rs485.modules, truth.modules, strict=True):
            assert module.serial_number == expected.serial_number
            assert len(module.cell_voltages) == 15
        assert can_link.stats.frames > 0
        assert outcomes["rs485_ok"] > outcomes["rs485_err"]
        assert outcomes["console_ok"] > outcomes["console_err"]
        # Faults were really played and survived.
        assert rs485.stats.checksum_errors + rs485.stats.timeouts + rs485.stats.reconnects > 0
        assert console.stats.timeouts + console.stats.reconnects > 0
        # Bounded state: ring buffers and counters only; no steady growth.
        assert baseline is not None
        growth = _memory(end) - _memory(baseline)
        assert growth < 256 * 1024, f"link/codec memory grew by {growth} bytes"
        assert len(rs485.diagnostics()["traffic"]) <= 120
        assert len(console.diagnostics()["traffic"]) <= 120
        await asyncio.sleep(0.1)
        assert sim.rs485.connection_count == 0
        assert sim.console.connection_count == 0
        assert sim.can.connection_count == 0
    assert set(asyncio.all_tasks()) - tasks_before <= {asyncio.current_task()}
    assert not [t for t in threading.enumerate() if t.name.startswith("Notifier")]
