"""Memory of a 96-module LV-Hub bank (6 groups × 16 modules) and of repeated polls.

The bank is built the way the RS485 link builds it: per group one 0xFF 0x42 answer
(16 US3000C records, user-defined 4, 15 cells, 5 temperatures) and one 0x44 answer are
decoded and mapped to ``Module``s, then merged into one ``Bank`` with totals.
``tracemalloc`` reports the bytes the finished ``Bank`` keeps alive, and the growth over
200 further decode+map cycles after a warm-up (must be ~0: nothing accumulates).
Runs in any venv (the core is loaded standalone).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
from typing import Any

from ._core import core_module
from .vectors import RS44_SINGLE, rs42_sixteen

GROUPS = range(1, 7)  # LV-Hub: up to six groups of 16 (group 0 = single-group bank)
CYCLES = 200


def _frames() -> list[tuple[bytes, bytes]]:
    rs485 = core_module("protocol.rs485")
    analog = rs485.decode_analog(rs485.decode_frame(rs42_sixteen()), all_modules=True)
    alarm_record = rs485.decode_alarm(rs485.decode_frame(RS44_SINGLE)).records[0]
    frames = []
    for group in GROUPS:
        adr = rs485.address(1, group)
        frames.append(
            (
                rs485.encode_analog_response(adr, analog.records, all_modules=True),
                rs485.encode_alarm_response(adr, [alarm_record] * 16, all_modules=True),
            )
        )
    return frames


def build_bank(frames: list[tuple[bytes, bytes]]) -> Any:
    """Decode and map every group's answers into one Bank."""
    rs485 = core_module("protocol.rs485")
    model = core_module("model")
    modules = []
    for analog_raw, alarm_raw in frames:
        analog = rs485.decode_analog(rs485.decode_frame(analog_raw), all_modules=True)
        alarms = rs485.decode_alarm(rs485.decode_frame(alarm_raw), all_modules=True)
        for module, record in zip(rs485.modules_from_analog(analog), alarms.records, strict=True):
            modules.append(rs485.apply_alarm(module, record))
    return model.Bank(modules=tuple(modules)).with_totals()


def measure() -> dict[str, Any]:
    """Retained size of the bank and growth across repeated polls."""
    frames = _frames()
    build_bank(frames)  # warm caches (struct formats, enum lookups)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    bank = build_bank(frames)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    modules = len(bank.modules)
    cells = sum(len(m.cell_voltages) for m in bank.modules)
    for _ in range(20):
        bank = build_bank(frames)
    gc.collect()
    steady = tracemalloc.get_traced_memory()[0]
    for _ in range(CYCLES):
        bank = build_bank(frames)
    gc.collect()
    growth = tracemalloc.get_traced_memory()[0] - steady
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    wire = sum(len(a) + len(b) for a, b in frames)
    return {
        "modules": modules,
        "cells": cells,
        "bank_bytes": retained,
        "bytes_per_module": retained / modules,
        "peak_bytes_during_decode": peak,
        "growth_bytes_after_cycles": growth,
        "cycles": CYCLES,
        "wire_bytes_per_poll": wire,
    }


def main() -> None:
    """``python -m bench.memory [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.parse_args()
    json.dump(measure(), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
