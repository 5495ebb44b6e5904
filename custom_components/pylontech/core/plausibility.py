"""Plausibility limits per quantity: a checksum-valid but absurd value is not published.

A frame can pass every checksum and still claim SOC 65535 %, a charge voltage limit of
6553.5 V (an unset 0xFFFF register) or 255 modules. :class:`PlausibilityFilter` checks
every quantity of a snapshot against the range a supported Pylontech low-voltage system
can physically show; a value outside it becomes ``None`` (its entity shows unknown), is
counted per quantity and is kept, with the link it came from, for diagnostics.

The ranges are deliberately wide (they catch nonsense, not a battery in trouble) and come
from the manuals and the protocol ranges:

* SOC and SOH are percentages: 0..100 (PYLON LV CAN protocol V1.2, 0x355; RS485 protocol
  V3.3, 0x42 capacities; console ``pwr``/``stat``).
* Pack voltage (bank, module, CVL, DVL): the 48 V modules have 15 LFP cells (US2000/US3000C
  user manuals, specifications: 44.5..53.5 V operating), the 51.2 V ones 16 (SR48100H
  operation manual, 2.x specifications); the 24 V UP2500 in captures has 8 cells (about
  22..29 V). 15..64 V covers 8 cells at 1.9 V up to 16 cells at 4.0 V, and rejects a
  0.1 V-unit misreading (5.22 V for 52.2 V) as well as 6553.5 V.
* Cell voltage: an LFP cell is protected below 2.5 V and above 3.65..3.8 V (SR48100H
  operation manual, 5.2 protection table); 1.0..4.5 V keeps a deeply discharged or
  over-charged cell visible and drops absent-sensor zeros and 0xFFFF.
* Temperature: the modules operate from -10 to 50 C and protect at about 60..65 C
  (US3000C user manual, specifications and protection table); -40..120 C is the range a
  BMS NTC can report, including a MOSFET running hot.
* Current and current limits: the largest supported module (US5000, SR48100H) is rated
  100 A continuous, 200 A peak for 15 s (US5000 product manual, specifications); 300 A
  per module, times the bank's module count (or the largest supported bank when the count
  is not known), bounds any real reading and rejects 3276.7 A (0x7FFF x 0.1 A).
* Capacity: 100 Ah is the largest module (US5000, SR48100H); 400 Ah per module bounds it.
* Module count: 1..``MAX_MODULES_TOTAL`` (``core/bounds.py``: six LV-Hub groups of 16).
* Cycles: LFP modules are rated 6000..8000 cycles (US5000 product manual); 0..20000 (over
  fifty years of daily cycles) rejects an unset 0xFFFF counter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
import math
from types import MappingProxyType
from typing import Any, Final

from .bounds import MAX_MODULES_TOTAL
from .model import Bank, Module

AMPS_PER_MODULE: Final = 300.0
AH_PER_MODULE: Final = 400.0


@dataclass(frozen=True, slots=True)
class Range:
    """The inclusive range of one quantity; ``per_module`` scales ``high`` by module count."""

    low: float
    high: float
    per_module: bool = False

    def bound(self, modules: int) -> tuple[float, float]:
        """Return the limits for a bank of ``modules`` modules (1 for a module's own values)."""
        if not self.per_module:
            return self.low, self.high
        scale = max(1, modules)
        low = self.low * scale if self.low < 0 else self.low
        return low, self.high * scale

    def accepts(self, value: float, modules: int = 1) -> bool:
        """Whether ``value`` is finite and inside the range."""
        low, high = self.bound(modules)
        return math.isfinite(value) and low <= value <= high


PERCENT: Final = Range(0.0, 100.0)
PACK_VOLTAGE: Final = Range(15.0, 64.0)
CELL_VOLTAGE: Final = Range(1.0, 4.5)
TEMPERATURE: Final = Range(-40.0, 120.0)
CURRENT: Final = Range(-AMPS_PER_MODULE, AMPS_PER_MODULE, per_module=True)
CURRENT_LIMIT: Final = Range(0.0, AMPS_PER_MODULE, per_module=True)
CAPACITY: Final = Range(0.0, AH_PER_MODULE, per_module=True)
MODULE_COUNT: Final = Range(1.0, float(MAX_MODULES_TOTAL))
CYCLES: Final = Range(0.0, 20_000.0)

#: Bank fields and their ranges (per-module ranges scale with the bank's module count).
BANK_RANGES: Final[Mapping[str, Range]] = MappingProxyType(
    {
        "voltage": PACK_VOLTAGE,
        "current": CURRENT,
        "temperature": TEMPERATURE,
        "soc": PERCENT,
        "soh": PERCENT,
        "remaining_capacity": CAPACITY,
        "full_capacity": CAPACITY,
        "charge_voltage_limit": PACK_VOLTAGE,
        "discharge_voltage_limit": PACK_VOLTAGE,
        "charge_current_limit": CURRENT_LIMIT,
        "discharge_current_limit": CURRENT_LIMIT,
        "module_count": MODULE_COUNT,
        "cell_voltage_min": CELL_VOLTAGE,
        "cell_voltage_max": CELL_VOLTAGE,
    }
)

#: Module fields and their ranges (a module's own: per-module ranges at scale 1).
MODULE_RANGES: Final[Mapping[str, Range]] = MappingProxyType(
    {
        "voltage": PACK_VOLTAGE,
        "current": CURRENT,
        "temperature": TEMPERATURE,
        "temperature_min": TEMPERATURE,
        "temperature_max": TEMPERATURE,
        "mosfet_temperature": TEMPERATURE,
        "cell_voltage_min": CELL_VOLTAGE,
        "cell_voltage_max": CELL_VOLTAGE,
        "soc": PERCENT,
        "soh": PERCENT,
        "cycles": CYCLES,
        "remaining_capacity": CAPACITY,
        "full_capacity": CAPACITY,
        # A module's own limits (RS485 0x92 answers per module).
        "charge_voltage_limit": PACK_VOLTAGE,
        "discharge_voltage_limit": PACK_VOLTAGE,
        "charge_current_limit": CURRENT_LIMIT,
        "discharge_current_limit": CURRENT_LIMIT,
    }
)

#: Per-module series: one implausible item drops the whole series (positions would shift).
MODULE_SERIES: Final[Mapping[str, Range]] = MappingProxyType(
    {
        "cell_voltages": CELL_VOLTAGE,
        "temperatures": TEMPERATURE,
        "cell_temperatures": TEMPERATURE,
    }
)

_MODULE_FIELDS: Final = frozenset(f.name for f in fields(Module))


@dataclass(frozen=True, slots=True)
class Rejection:
    """The latest implausible value of one quantity."""

    value: Any
    source: str
    low: float
    high: float


class PlausibilityFilter:
    """Drops implausible values from snapshots; counts and remembers what it dropped.

    ``check(bank, source)`` returns the bank with every implausible value set to ``None``
    (a series to ``()``); ``source`` ("can", "rs485", "console") goes to diagnostics.
    Quantities are named ``bank.<field>`` and ``module.<field>``.
    """

    def __init__(self) -> None:
        """Start with nothing rejected."""
        self.counts: Counter[str] = Counter()
        self.latest: dict[str, Rejection] = {}
        # Fields the latest check removed: (module key or None for the bank, field name).
        self.dropped: frozenset[tuple[tuple[int, int] | None, str]] = frozenset()
        self._dropping: set[tuple[tuple[int, int] | None, str]] = set()

    def _reject(self, name: str, value: Any, source: str, limits: tuple[float, float]) -> None:
        self.counts[name] += 1
        self.latest[name] = Rejection(value, source, limits[0], limits[1])

    def check(self, bank: Bank, source: str) -> Bank:
        """``bank`` with implausible values removed (the same object when all are fine)."""
        self._dropping = set()
        try:
            return self._check_bank(bank, source)
        finally:
            self.dropped = frozenset(self._dropping)

    def _check_bank(self, bank: Bank, source: str) -> Bank:
        updates: dict[str, Any] = {}
        count = bank.module_count
        if count is not None and not MODULE_COUNT.accepts(count):
            self._reject("bank.module_count", count, source, MODULE_COUNT.bound(1))
            self._dropping.add((None, "module_count"))
            updates["module_count"] = None
            count = None
        present = len(bank.present_modules())
        scale = count if count is not None else (present or MAX_MODULES_TOTAL)
        for name, limits in BANK_RANGES.items():
            if name == "module_count":
                continue
            value = getattr(bank, name)
            if value is not None and not limits.accepts(value, scale):
                self._reject(f"bank.{name}", value, source, limits.bound(scale))
                self._dropping.add((None, name))
                updates[name] = None
        modules = tuple(self._check_module(m, source) for m in bank.modules)
        if any(new is not old for new, old in zip(modules, bank.modules, strict=True)):
            updates["modules"] = modules
        return replace(bank, **updates) if updates else bank

    def _check_module(self, module: Module, source: str) -> Module:
        updates: dict[str, Any] = {}
        for name, limits in MODULE_RANGES.items():
            if name not in _MODULE_FIELDS:
                continue
            value = getattr(module, name)
            if value is not None and not limits.accepts(value):
                self._reject(f"module.{name}", value, source, limits.bound(1))
                self._dropping.add((module.key, name))
                updates[name] = None
        for name, limits in MODULE_SERIES.items():
            series = getattr(module, name)
            bad = [v for v in series if not limits.accepts(v)]
            if bad:
                self._reject(f"module.{name}", bad[0], source, limits.bound(1))
                self._dropping.add((module.key, name))
                updates[name] = ()
        return replace(module, **updates) if updates else module

    def diagnostics(self) -> dict[str, Any]:
        """Return counts and the latest rejected value per quantity, JSON-ready."""
        return {
            name: {
                "count": self.counts[name],
                "latest": rejection.value,
                "source": rejection.source,
                "range": [rejection.low, rejection.high],
            }
            for name, rejection in sorted(self.latest.items())
        }


__all__ = [
    "BANK_RANGES",
    "MODULE_RANGES",
    "MODULE_SERIES",
    "PlausibilityFilter",
    "Range",
    "Rejection",
]
