"""Micro-benchmark timing: the best of several auto-ranged ``timeit`` runs.

The minimum over repeats is the figure least disturbed by the rest of the machine
(other processes, GC, frequency scaling); it is what the ratios are computed from.
"""

from __future__ import annotations

from collections.abc import Callable
import gc
import time
import timeit

REPEATS = 7
MIN_RUN_SECONDS = 0.05


def per_call_seconds(func: Callable[[], object], *, repeats: int = REPEATS) -> float:
    """Seconds per call of ``func`` (best of ``repeats`` runs of an auto-ranged loop)."""
    func()  # warm caches and lazily built structures once
    timer = timeit.Timer(func, timer=time.perf_counter)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= MIN_RUN_SECONDS or number >= 1 << 24:
            break
        number *= 2 if elapsed * 4 > MIN_RUN_SECONDS else 10
    gc_was_enabled = gc.isenabled()
    try:
        runs = timer.repeat(repeat=repeats, number=number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return min(runs) / number
