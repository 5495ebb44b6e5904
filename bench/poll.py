"""A full poll of a 1-, 4- and 16-module bank against the simulator honouring wire time.

RS485 at 9600 and 115200 baud and the console at 115200: the simulator paces its answers
like the UART would, ``SerialLineProxy`` paces the requests, and the figure reported is
the poll's wall time divided by the pure wire time of every byte exchanged (the physical
limit of a half-duplex line). The poll is ``ReadPlan()`` (the coordinator's every-cycle
plan: analog values with cells, alarms, limits), after one warm-up poll (discovery).
Needs the ``test`` venv (serialx, the simulator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from .serial_line import SerialLineProxy, wire_seconds

POLLS = 3
CASES: tuple[tuple[str, int, int], ...] = (
    ("rs485", 1, 9600),
    ("rs485", 4, 9600),
    ("rs485", 16, 9600),
    ("rs485", 1, 115200),
    ("rs485", 4, 115200),
    ("rs485", 16, 115200),
    ("console", 1, 115200),
    ("console", 4, 115200),
    ("console", 16, 115200),
)


async def measure(link_kind: str, modules: int, baud: int, polls: int = POLLS) -> dict[str, Any]:
    """Median poll time, bytes and wire time for one case."""
    from custom_components.pylontech.core.links import ConsoleLink, ReadPlan, Rs485Link
    from simulator import BatterySimulator

    rs485 = link_kind == "rs485"
    sim = BatterySimulator(
        modules=modules,
        model="US3000C",
        rs485_port=0 if rs485 else None,
        console_port=None if rs485 else 0,
        can_port=None,
        control_port=None,
        baud=baud if rs485 else None,
        console_baud=None if rs485 else baud,
        tick=None,  # frozen values: every poll exchanges the same bytes
    )
    async with sim:
        port = sim.ports.rs485 if rs485 else sim.ports.console
        async with SerialLineProxy(port, baud) as line:
            link: Any = (
                Rs485Link(line.url, baudrate=baud, request_timeout=5.0)
                if rs485
                else ConsoleLink(line.url, baudrate=baud, wake_up=False, command_timeout=30.0)
            )
            try:
                await link.open()
                plan = ReadPlan()
                bank = await link.read_bank(plan)  # warm-up: discovery, prompt detection
                samples: list[tuple[float, int]] = []
                for _ in range(polls):
                    line.reset_counters()
                    start = time.perf_counter()
                    bank = await link.read_bank(plan)
                    elapsed = time.perf_counter() - start
                    samples.append((elapsed, line.bytes_up + line.bytes_down))
            finally:
                await link.close()
    samples.sort()
    elapsed, exchanged = samples[len(samples) // 2]
    present = len(bank.present_modules())
    return {
        "link": link_kind,
        "modules": modules,
        "baud": baud,
        "poll_seconds": elapsed,
        "bytes": exchanged,
        "wire_seconds": wire_seconds(exchanged, baud),
        "modules_read": present,
    }


async def run_all(cases: tuple[tuple[str, int, int], ...] = CASES) -> dict[str, Any]:
    """Every case; a failing case is reported, not fatal."""
    polls: list[dict[str, Any]] = []
    for link_kind, modules, baud in cases:
        try:
            polls.append(await measure(link_kind, modules, baud))
        except Exception as err:  # report what broke and go on with the other cases
            polls.append(
                {
                    "link": link_kind,
                    "modules": modules,
                    "baud": baud,
                    "error": f"{type(err).__name__}: {err}",
                }
            )
    return {"polls": polls}


def main() -> None:
    """``python -m bench.poll [--json] [--quick]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="115200 baud cases only")
    args = parser.parse_args()
    cases = tuple(c for c in CASES if c[2] != 9600) if args.quick else CASES
    result = asyncio.run(run_all(cases))
    if args.json:
        json.dump(result, sys.stdout, indent=1)
    else:
        from .report import poll_table

        print(poll_table(result))


if __name__ == "__main__":
    main()
