"""CAN frame-to-state latency and CPU per 1,000 frames, through the real ``CanLink``.

The simulator (own thread and loop) serves SLCAN over TCP; ``CanLink`` (python-can
``slcan`` interface, notifier thread, assembler on the loop) listens as in Home Assistant.

* latency: the simulator's bank is stepped (values change) and one broadcast cycle is
  written; the figure is the time from that write to ``on_update`` delivering the new
  ``Bank`` on the loop. The link deliberately publishes once per burst, after a quiet gap
  of ``BURST_GAP`` (0.25 s), so the latency is dominated by that gap by design;
  ``latency_minus_gap`` shows the processing part. Home Assistant then adds one
  coordinator update (see the event-loop figures).
* CPU: the simulator broadcasts every 20 ms for a few seconds; the CPU time of every
  thread of the process except the simulator's (loop, python-can notifier, executor)
  divided by the frames the link accepted, per 1,000 frames; also net of the idle CPU
  the same threads use without traffic (python-can's slcan receive polls its port).
Needs the ``test`` venv (python-can).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from typing import Any

from .threaded_sim import ThreadedSimulator

LATENCY_CYCLES = 12
CPU_SECONDS = 4.0
CPU_PERIOD = 0.02
IDLE_SECONDS = 2.0


def _cpu_of_threads(exclude: threading.Thread) -> float:
    total = 0.0
    for thread in threading.enumerate():
        if thread is exclude or thread.ident is None:
            continue
        try:
            total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except OSError, ValueError:  # a thread that just ended
            continue
    return total


async def measure() -> dict[str, Any]:
    """Both figures, for a 16-module bank on old (v1.2) firmware frames."""
    from custom_components.pylontech.core.links import CanLink
    from custom_components.pylontech.core.links.can import BURST_GAP

    loop = asyncio.get_running_loop()
    updates: asyncio.Queue[float] = asyncio.Queue()

    def on_update(_bank: Any) -> None:
        updates.put_nowait(time.perf_counter())

    with ThreadedSimulator(
        modules=16,
        model="US3000C",
        tick=None,
        rs485_port=None,
        console_port=None,
        control_port=None,
        can_period=3600.0,
    ) as threaded:
        sim = threaded.sim
        link = CanLink("slcan", sim.can_channel, on_update=on_update, stale_after=30.0)
        await link.start()
        try:
            await asyncio.sleep(0.5)  # python-can slcan set-up
            latencies: list[float] = []
            for cycle in range(LATENCY_CYCLES):
                threaded.call(lambda: sim.bank.step(5.0))
                sent = await loop.run_in_executor(None, _broadcast, threaded, sim)
                received = await asyncio.wait_for(updates.get(), 5.0)
                if cycle:  # the first cycle also pays for the initial assembly
                    latencies.append(received - sent)
                await asyncio.sleep(0.05)

            # Idle baseline: what the link's threads burn with no frames arriving.
            idle_before = _cpu_of_threads(threaded.thread)
            await asyncio.sleep(IDLE_SECONDS)
            idle_per_second = (_cpu_of_threads(threaded.thread) - idle_before) / IDLE_SECONDS

            frames_before = link.stats.frames
            cpu_before = _cpu_of_threads(threaded.thread)
            window_start = time.perf_counter()
            threaded.call(lambda: _set_period(sim, CPU_PERIOD))
            await asyncio.sleep(CPU_SECONDS)
            threaded.call(lambda: _set_period(sim, 3600.0))
            await asyncio.sleep(0.5)
            cpu = _cpu_of_threads(threaded.thread) - cpu_before
            window = time.perf_counter() - window_start
            frames = link.stats.frames - frames_before
        finally:
            await link.stop()
    return {
        "latency_median": statistics.median(latencies),
        "latency_max": max(latencies),
        "burst_gap": BURST_GAP,
        "latency_minus_gap": statistics.median(latencies) - BURST_GAP,
        "cpu_frames": frames,
        "cpu_seconds": cpu,
        "cpu_per_1000_frames": cpu / frames * 1000 if frames else None,
        "idle_cpu_per_second": idle_per_second,
        "cpu_per_1000_frames_net": (cpu - idle_per_second * window) / frames * 1000
        if frames
        else None,
    }


def _broadcast(threaded: ThreadedSimulator, sim: Any) -> float:
    threaded.run(sim.can.broadcast_once)
    return time.perf_counter()


def _set_period(sim: Any, period: float) -> None:
    """Restart the simulator's broadcast loop with a new period (runs in its loop)."""
    server = sim.can
    server.period = period
    if server._broadcaster is not None:
        server._broadcaster.cancel()
    server._broadcaster = asyncio.get_running_loop().create_task(server._broadcast_loop())


def main() -> None:
    """``python -m bench.can [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.parse_args()
    result = asyncio.run(measure())
    json.dump(result, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
