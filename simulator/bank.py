"""A deterministic, evolving battery bank: the truth every simulated link serves.

``SimulatedBank`` keeps a small physical state per module (charge, core temperature, cell offsets,
counters) and advances it with ``step(dt)`` along a repeating charge/idle/discharge profile.
``snapshot()`` returns the truth as a model ``Bank``.

Values are quantised to what the wire formats can carry, so a link's decoded result can be
compared with the truth exactly where a link carries a value: cell and module voltages in mV,
currents in 0.1 A (RS485 resolution; the console prints the same value in mA), temperatures in
0.1 °C, capacities in mAh. Bank voltage is rounded to 0.01 V (CAN 0x356), bank SOC/SOH to whole
percent (CAN 0x355, console ``pwrsys``). Module SOC is remaining/full (RS485 computes the same);
the console prints it rounded to a whole percent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import itertools
import math
import random

from custom_components.pylontech.core.model import (
    Alarm,
    Bank,
    LimitState,
    Module,
    ModuleState,
    Protection,
)

from .faults import FaultInjector
from .models import ModelSpec, model_spec

# Protections that stop charging / discharging (SR48100H operation and maintenance manual,
# 3.4 Protection function: what the BMS does).
CHARGE_BLOCKING: frozenset[Protection] = frozenset(
    {
        Protection.OVER_VOLTAGE,
        Protection.CELL_OVER_VOLTAGE,
        Protection.MODULE_OVER_VOLTAGE,
        Protection.OVER_TEMPERATURE,
        Protection.CHARGE_OVER_TEMPERATURE,
        Protection.MOSFET_OVER_TEMPERATURE,
        Protection.UNDER_TEMPERATURE,
        Protection.CHARGE_UNDER_TEMPERATURE,
        Protection.CHARGE_OVER_CURRENT,
        Protection.SHORT_CIRCUIT,
        Protection.REVERSE_POLARITY,
        Protection.SENSOR_FAILURE,
        Protection.SYSTEM_ERROR,
    }
)
DISCHARGE_BLOCKING: frozenset[Protection] = frozenset(
    {
        Protection.UNDER_VOLTAGE,
        Protection.CELL_UNDER_VOLTAGE,
        Protection.MODULE_UNDER_VOLTAGE,
        Protection.OVER_TEMPERATURE,
        Protection.DISCHARGE_OVER_TEMPERATURE,
        Protection.MOSFET_OVER_TEMPERATURE,
        Protection.UNDER_TEMPERATURE,
        Protection.DISCHARGE_UNDER_TEMPERATURE,
        Protection.DISCHARGE_OVER_CURRENT,
        Protection.SHORT_CIRCUIT,
        Protection.REVERSE_POLARITY,
        Protection.SENSOR_FAILURE,
        Protection.SYSTEM_ERROR,
    }
)
_CELL_HIGH = frozenset({Protection.OVER_VOLTAGE, Protection.CELL_OVER_VOLTAGE})
_CELL_LOW = frozenset({Protection.UNDER_VOLTAGE, Protection.CELL_UNDER_VOLTAGE})
_TEMP_HIGH = frozenset(
    {
        Protection.OVER_TEMPERATURE,
        Protection.CHARGE_OVER_TEMPERATURE,
        Protection.DISCHARGE_OVER_TEMPERATURE,
    }
)
_TEMP_LOW = frozenset(
    {
        Protection.UNDER_TEMPERATURE,
        Protection.CHARGE_UNDER_TEMPERATURE,
        Protection.DISCHARGE_UNDER_TEMPERATURE,
    }
)
_MODULE_HIGH_FLAGS = frozenset(
    {
        Protection.OVER_VOLTAGE,
        Protection.MODULE_OVER_VOLTAGE,
        Alarm.HIGH_VOLTAGE,
        Alarm.MODULE_HIGH_VOLTAGE,
    }
)
_MODULE_LOW_FLAGS = frozenset(
    {
        Protection.UNDER_VOLTAGE,
        Protection.MODULE_UNDER_VOLTAGE,
        Alarm.LOW_VOLTAGE,
        Alarm.MODULE_LOW_VOLTAGE,
    }
)
_CURRENT_HIGH_FLAGS = frozenset(
    {
        Protection.CHARGE_OVER_CURRENT,
        Protection.DISCHARGE_OVER_CURRENT,
        Protection.SHORT_CIRCUIT,
        Alarm.CHARGE_HIGH_CURRENT,
        Alarm.DISCHARGE_HIGH_CURRENT,
    }
)
_TEMP_HIGH_FLAGS = _TEMP_HIGH | {
    Protection.MOSFET_OVER_TEMPERATURE,
    Alarm.HIGH_TEMPERATURE,
    Alarm.CHARGE_HIGH_TEMPERATURE,
    Alarm.DISCHARGE_HIGH_TEMPERATURE,
    Alarm.MOSFET_HIGH_TEMPERATURE,
}
_TEMP_LOW_FLAGS = _TEMP_LOW | {
    Alarm.LOW_TEMPERATURE,
    Alarm.CHARGE_LOW_TEMPERATURE,
    Alarm.DISCHARGE_LOW_TEMPERATURE,
}
# Console `stat` counters a protection trip increments (label, flags).
_TRIP_COUNTERS: tuple[tuple[str, frozenset[Protection]], ...] = (
    ("COC Times", frozenset({Protection.CHARGE_OVER_CURRENT})),
    ("DOC Times", frozenset({Protection.DISCHARGE_OVER_CURRENT})),
    ("SC Times", frozenset({Protection.SHORT_CIRCUIT})),
    ("Bat OV Times", frozenset({Protection.CELL_OVER_VOLTAGE, Protection.OVER_VOLTAGE})),
    ("Bat UV Times", frozenset({Protection.CELL_UNDER_VOLTAGE, Protection.UNDER_VOLTAGE})),
    ("Pwr OV Times", frozenset({Protection.MODULE_OVER_VOLTAGE})),
    ("Pwr UV Times", frozenset({Protection.MODULE_UNDER_VOLTAGE})),
    ("COT Times", frozenset({Protection.CHARGE_OVER_TEMPERATURE})),
    ("CUT Times", frozenset({Protection.CHARGE_UNDER_TEMPERATURE})),
    ("DOT Times", frozenset({Protection.DISCHARGE_OVER_TEMPERATURE})),
    ("DUT Times", frozenset({Protection.DISCHARGE_UNDER_TEMPERATURE})),
)

# LFP open-circuit voltage per cell against SOC (typical curve shape; flat middle).
_OCV_POINTS: tuple[tuple[float, float], ...] = (
    (0.0, 2.95),
    (5.0, 3.12),
    (10.0, 3.20),
    (20.0, 3.25),
    (40.0, 3.28),
    (60.0, 3.30),
    (80.0, 3.32),
    (90.0, 3.34),
    (95.0, 3.36),
    (100.0, 3.42),
)
_CELL_RESISTANCE_AH = 0.065  # ohm * Ah: 1.3 mOhm for a 50 Ah cell
_THERMAL_TAU = 600.0  # s, core temperature time constant
_HEATING_PER_C = 18.0  # K rise at 1 C steady state
_MAX_SUBSTEP = 5.0  # s
_SOC_PULL = 3.0  # current share change per % SOC difference
_MAX_SUBSTEPS = 200_000  # bounds step() work whatever dt is asked for
LOG_LENGTH = 64


def open_circuit_voltage(soc: float) -> float:
    """Cell rest voltage (V) at a SOC (%), linear between the curve points."""
    soc = min(100.0, max(0.0, soc))
    for (s0, v0), (s1, v1) in itertools.pairwise(_OCV_POINTS):
        if soc <= s1:
            return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
    return _OCV_POINTS[-1][1]


@dataclass(slots=True, kw_only=True)
class Limits:
    """Charge/discharge management values (RS485 0x92 per module, CAN 0x351 for the stack)."""

    charge_voltage: float
    discharge_voltage: float
    charge_current: float  # A, positive
    discharge_current: float  # A, positive magnitude
    charge_enabled: bool
    discharge_enabled: bool
    force_charge_1: bool
    force_charge_2: bool
    full_charge_request: bool


@dataclass(slots=True, kw_only=True)
class LogEntry:
    """One `log` record (newest first when printed)."""

    index: int
    time: datetime
    module_id: str
    code: str
    info: str


@dataclass(slots=True, kw_only=True)
class SimModule:
    """Mutable physical state of one module."""

    index: int
    spec: ModelSpec
    serial: str
    remaining_ah: float
    soh: float
    cycles: int
    weight: float  # share of the bank current (causes SOC drift between modules)
    cell_offsets: tuple[float, ...]  # V
    sensor_offsets: tuple[float, ...]  # K, per cell-group sensor
    ambient: float
    core_temperature: float
    clock_skew: int  # s, module RTC vs master
    current: float = 0.0  # A, quantised to 0.1
    discharged_ah: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    tripped: frozenset[Protection] = frozenset()

    @property
    def soc(self) -> float:
        """Remaining / full, in %."""
        return 100.0 * self.remaining_ah / self.spec.capacity_ah


def _barcode(prefix: str, rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(16 - len(prefix) - 1))
    return f"{prefix}{digits}{rng.choice('0123456789')}"[:16]


def _round1(value: float) -> float:
    return round(value + 0.0, 1) + 0.0  # +0.0 turns -0.0 into 0.0


class SimulatedBank:
    """N modules in one group, evolving deterministically from a seed."""

    def __init__(
        self,
        modules: int | Sequence[str] = 4,
        model: str = "US3000C",
        *,
        seed: int = 1,
        group: int = 0,
        start: datetime | None = None,
        profile_period: float = 1800.0,
        initial_soc: float | None = None,
    ) -> None:
        """Build a bank.

        ``modules`` is a count (all of ``model``) or a list of model names, master first.
        ``group`` is the RS485/DIP group (0 = single group). ``profile_period`` is the length of
        one charge/idle/discharge cycle in simulated seconds.
        """
        names = [model] * modules if isinstance(modules, int) else list(modules)
        if not 1 <= len(names) <= 32:
            raise ValueError("a bank has 1 to 32 modules")
        if not 0 <= group <= 15:
            raise ValueError("group must be 0..15")
        self.rng = random.Random(seed)
        self.seed = seed
        self.group = group
        self.profile_period = profile_period
        self.start = start or datetime(2026, 3, 14, 9, 26, 53)
        self.elapsed = 0.12 * profile_period  # start inside the charge phase
        self.faults = FaultInjector(self.set_soc)
        self.log: deque[LogEntry] = deque(maxlen=LOG_LENGTH)
        self._log_index = 0
        base_soc = initial_soc if initial_soc is not None else self.rng.uniform(35.0, 75.0)
        ambient = self.rng.uniform(20.0, 25.0)
        self.modules: list[SimModule] = []
        for number, name in enumerate(names, start=1):
            spec = model_spec(name)
            soc = min(99.0, max(1.0, base_soc + self.rng.uniform(-3.0, 3.0)))
            self.modules.append(
                SimModule(
                    index=number,
                    spec=spec,
                    serial=_barcode(spec.barcode_prefix, self.rng),
                    remaining_ah=spec.capacity_ah * soc / 100.0,
                    soh=float(self.rng.randint(96, 100)),
                    cycles=self.rng.randint(20, 400),
                    weight=1.0 + self.rng.uniform(-0.06, 0.06),
                    cell_offsets=tuple(self.rng.uniform(-0.004, 0.004) for _ in range(spec.cells)),
                    sensor_offsets=tuple(self.rng.uniform(-0.6, 0.6) for _ in range(4)),
                    ambient=ambient + self.rng.uniform(-0.5, 0.5),
                    core_temperature=ambient,
                    clock_skew=-self.rng.randint(0, 3),
                    counters=_initial_counters(self.rng),
                )
            )
        for sim in self.modules:
            sim.current = self._target_current(sim, noise=0.0)
            sim.core_temperature = self._equilibrium_temperature(sim)
        for number in range(5):
            self._add_log(
                1, "The device start charging." if number % 2 else "The device start discharging."
            )

    # -- time ------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The master's clock."""
        return self.start + timedelta(seconds=int(self.elapsed))

    def module_time(self, index: int) -> datetime:
        """A module's RTC (slaves run a few seconds behind the master, as in captures)."""
        sim = self._sim(index)
        return self.now + timedelta(seconds=sim.clock_skew if sim else 0)

    def step(self, dt: float) -> None:
        """Advance the simulation by ``dt`` seconds."""
        if dt <= 0:
            return
        substeps = min(_MAX_SUBSTEPS, max(1, math.ceil(dt / _MAX_SUBSTEP)))
        h = dt / substeps
        noise = [self.rng.gauss(0.0, 0.01) for _ in self.modules]
        before = {sim.index: sim.current for sim in self.modules}
        for _ in range(substeps):
            self.elapsed += h
            for sim, jitter in zip(self.modules, noise, strict=True):
                sim.current = self._target_current(sim, jitter)
                delta_ah = sim.current * h / 3600.0
                sim.remaining_ah = min(sim.spec.capacity_ah, max(0.0, sim.remaining_ah + delta_ah))
                if delta_ah < 0:
                    sim.discharged_ah -= delta_ah
                    if sim.discharged_ah >= sim.spec.capacity_ah:
                        sim.discharged_ah -= sim.spec.capacity_ah
                        sim.cycles += 1
                target = self._equilibrium_temperature(sim)
                sim.core_temperature += (target - sim.core_temperature) * min(1.0, h / _THERMAL_TAU)
        for sim in self.modules:
            old, new = before[sim.index], sim.current
            if old <= 0 < new:
                self._add_log(sim.index, "The device start charging.")
            elif old >= 0 > new:
                self._add_log(sim.index, "The device start discharging.")
        self._update_trips()

    def set_soc(self, percent: float, module: int | None = None) -> None:
        """Move the charge of one module (or all) to ``percent``."""
        percent = min(100.0, max(0.0, percent))
        for sim in self.modules:
            if module is None or sim.index == module:
                sim.remaining_ah = sim.spec.capacity_ah * percent / 100.0
                sim.current = self._target_current(sim, 0.0)

    # -- profile ---------------------------------------------------------------------------

    def _c_rate(self, sim: SimModule) -> float:
        phase = (self.elapsed % self.profile_period) / self.profile_period
        soc = sim.soc
        if phase < 0.35:
            rate = 0.25
            if soc >= 99.99:
                return 0.0
            if soc > 90.0:
                rate *= max(0.1, (100.0 - soc) / 10.0)
            return rate
        if 0.45 <= phase < 0.9:
            if soc <= 3.0:
                return 0.0
            return -0.18 * (1.0 + 0.25 * math.sin(2 * math.pi * phase * 7))
        return 0.0

    def _target_current(self, sim: SimModule, noise: float) -> float:
        if sim.index in self.faults.dropped:
            return 0.0
        rate = self._c_rate(sim)
        if rate == 0.0:
            return 0.0
        # Parallel modules share one bus voltage: the emptier module takes more of the charge
        # current and gives less of the discharge current, which bounds the SOC drift.
        pull = 1.0 + _SOC_PULL * math.copysign(1.0, rate) * (self._mean_soc() - sim.soc) / 100.0
        current = (rate + noise) * sim.spec.capacity_ah * sim.weight * max(0.2, pull)
        flags = self._protections(sim)
        if current > 0 and flags & CHARGE_BLOCKING:
            return 0.0
        if current < 0 and flags & DISCHARGE_BLOCKING:
            return 0.0
        return _round1(current)

    def _mean_soc(self) -> float:
        present = [s for s in self.modules if s.index not in self.faults.dropped]
        return sum(s.soc for s in present) / len(present) if present else 0.0

    def _equilibrium_temperature(self, sim: SimModule) -> float:
        return sim.ambient + _HEATING_PER_C * abs(sim.current) / sim.spec.capacity_ah

    # -- faults ----------------------------------------------------------------------------

    def _protections(self, sim: SimModule) -> frozenset[Protection]:
        return frozenset(self.faults.protections.get(sim.index, ()))

    def _alarms(self, sim: SimModule) -> frozenset[Alarm]:
        return frozenset(self.faults.alarms.get(sim.index, ()))

    def _update_trips(self) -> None:
        """Count new protection trips into the console `stat` counters."""
        for sim in self.modules:
            now = self._protections(sim)
            for label, flags in _TRIP_COUNTERS:
                if now & flags and not sim.tripped & flags:
                    sim.counters[label] = sim.counters.get(label, 0) + 1
            sim.tripped = now

    def _add_log(self, index: int, info: str) -> None:
        self._log_index += 1
        starts_charging = info.startswith("The device start charging")
        code = f"{0x2C00 + (self._log_index * 37) % 0x100:x}" if starts_charging else "0"
        self.log.appendleft(
            LogEntry(
                index=self._log_index,
                time=self.now,
                module_id="BMM",
                code=code,
                info=info,
            )
        )

    # -- queries ---------------------------------------------------------------------------

    def _sim(self, index: int) -> SimModule | None:
        if 1 <= index <= len(self.modules):
            return self.modules[index - 1]
        return None

    def spec(self, index: int) -> ModelSpec | None:
        """The model of the module at a slot, if the slot exists."""
        sim = self._sim(index)
        return sim.spec if sim else None

    def serial(self, index: int) -> str | None:
        """The barcode of the module at a slot."""
        sim = self._sim(index)
        return sim.serial if sim else None

    def is_present(self, index: int) -> bool:
        """True when the module exists and has not dropped out of the chain."""
        return self._sim(index) is not None and index not in self.faults.dropped

    def present_indexes(self) -> tuple[int, ...]:
        """Slots that answer, in order."""
        return tuple(sim.index for sim in self.modules if sim.index not in self.faults.dropped)

    @property
    def master(self) -> SimModule:
        """The module the cable is plugged into."""
        return self.modules[0]

    def counters(self, index: int) -> dict[str, int]:
        """Console `stat` counters of a module, by label (a copy)."""
        return dict(self.stat_counters(index))

    def stat_counters(self, index: int) -> tuple[tuple[str, int], ...]:
        """Every `stat` counter in print order (= ``Module.counters``; no SOH line on US2000B)."""
        sim = self._sim(index)
        if sim is None:
            return ()
        self._update_trips()
        values = dict(sim.counters)
        values |= {
            "CYCLE Times": sim.cycles,
            "SOH": int(sim.soh),
            "Pwr Percent": round(sim.soc),
            "Pwr Coulomb": round(sim.remaining_ah * 1000),
            "Dsg Cap": round(sim.discharged_ah * 1000),
        }
        return tuple(
            (label, values.get(label, 0))
            for label in STAT_LABELS
            if not (label == "SOH" and sim.spec.name == "US2000B")
        )

    def module_snapshot(self, index: int) -> Module | None:
        """The truth for one module, or None when absent."""
        sim = self._sim(index)
        if sim is None or index in self.faults.dropped:
            return None
        return self._module(sim)

    def module_limits(self, index: int) -> Limits | None:
        """RS485 0x92 values of one module (per-module recommendation)."""
        sim = self._sim(index)
        if sim is None or index in self.faults.dropped:
            return None
        return self._limits([sim])

    def system_limits(self) -> Limits:
        """Whole-stack values (CAN 0x351/0x35C, console `pwrsys` "system Recommend")."""
        present = [s for s in self.modules if s.index not in self.faults.dropped]
        return self._limits(present or [self.master])

    def _limits(self, sims: Iterable[SimModule]) -> Limits:
        group = list(sims)
        flags: set[Protection] = set()
        for sim in group:
            flags |= self._protections(sim)
        cells = group[0].spec.cells
        soc = sum(s.remaining_ah for s in group) / sum(s.spec.capacity_ah for s in group) * 100
        charge_ok = not flags & CHARGE_BLOCKING and soc < 99.5
        discharge_ok = not flags & DISCHARGE_BLOCKING and soc > 0.5
        recommended = sum(s.spec.recommended_current for s in group)
        return Limits(
            charge_voltage=round(3.55 * cells - (0.05 if cells == 15 else 0.0), 1),
            discharge_voltage=round(3.0 * cells, 1),
            charge_current=recommended if charge_ok else 0.0,
            discharge_current=recommended if discharge_ok else 0.0,
            charge_enabled=charge_ok,
            discharge_enabled=discharge_ok,
            force_charge_1=soc < 9.5,
            force_charge_2=soc < 13.5,
            full_charge_request=self.faults.full_charge_requested,
        )

    # -- the truth -------------------------------------------------------------------------

    def _temperatures(self, sim: SimModule) -> tuple[float, ...]:
        """Every sensor in RS485 wire order: BMS, cells 1-4, 5-8, 9-12, 13-end[, MOSFET]."""
        core = sim.core_temperature
        current = abs(sim.current)
        bms = 0.0 if sim.index in self.faults.bms_temperature_zero_modules else core + 2.0
        values = [bms] + [core + offset for offset in sim.sensor_offsets]
        if sim.spec.temperature_sensors >= 6:
            values.append(core + 0.5 + 0.08 * current)
        return tuple(_round1(v) for v in values)

    def mosfet_temperature(self, index: int) -> float | None:
        """Console MosTempr of a module (None where the model prints `-`)."""
        sim = self._sim(index)
        if sim is None or not sim.spec.has_mosfet_sensor:
            return None
        return _round1(sim.core_temperature + 0.5 + 0.08 * abs(sim.current))

    def _cells(self, sim: SimModule) -> tuple[float, ...]:
        base = open_circuit_voltage(sim.soc)
        drop = sim.current * _CELL_RESISTANCE_AH / sim.spec.capacity_ah
        values = [base + drop + offset for offset in sim.cell_offsets]
        imbalance = self.faults.imbalances.get(sim.index)
        if imbalance is not None and 1 <= imbalance.cell <= len(values):
            values[imbalance.cell - 1] += imbalance.millivolts / 1000.0
        return tuple(round(max(0.0, v), 3) for v in values)

    def _module(self, sim: SimModule) -> Module:
        spec = sim.spec
        protections = self._protections(sim)
        alarms = self._alarms(sim)
        flags = protections | alarms
        cells = self._cells(sim)
        temps = self._temperatures(sim)
        cell_temps = tuple(temps[1 + min(3, i // 4)] for i in range(spec.cells))
        low, high = min(cells), max(cells)
        cell_states = [LimitState.NORMAL] * len(cells)
        if protections & _CELL_HIGH:
            cell_states[cells.index(high)] = LimitState.HIGH
        if protections & _CELL_LOW:
            cell_states[cells.index(low)] = LimitState.LOW
        if Alarm.CELL_VOLTAGE_ERROR in alarms:
            cell_states[cells.index(high)] = LimitState.ERROR
        temp_states = [LimitState.NORMAL] * len(temps)
        groups = temps[1:5]
        if protections & _TEMP_HIGH:
            temp_states[1 + groups.index(max(groups))] = LimitState.HIGH
        if protections & _TEMP_LOW:
            temp_states[1 + groups.index(min(groups))] = LimitState.LOW
        if Protection.MOSFET_OVER_TEMPERATURE in protections:
            temp_states[5 if len(temps) > 5 else 0] = LimitState.HIGH
        if flags & {Alarm.TEMPERATURE_SENSOR_ERROR, Protection.SENSOR_FAILURE}:
            temp_states[1] = LimitState.ERROR
        current = sim.current
        if flags & {Protection.SYSTEM_ERROR, Protection.SENSOR_FAILURE}:
            state = ModuleState.ERROR
        elif current > 0:
            state = ModuleState.CHARGE
        elif current < 0:
            state = ModuleState.DISCHARGE
        else:
            state = ModuleState.IDLE
        soc = sim.soc
        remaining = round(sim.remaining_ah * 1000) / 1000.0
        balancing = tuple(current > 0 and soc > 90.0 and v > low + 0.010 for v in cells)
        return Module(
            index=sim.index,
            group=self.group,
            voltage=round(sum(cells), 3),
            current=current,
            temperature=temps[0],
            temperatures=temps,
            temperature_min=min(groups),
            temperature_max=max(groups),
            mosfet_temperature=self.mosfet_temperature(sim.index),
            cell_voltages=cells,
            cell_temperatures=cell_temps,
            cell_voltage_min=low,
            cell_voltage_max=high,
            cell_voltage_states=tuple(cell_states),
            temperature_states=tuple(temp_states),
            cells_balancing=balancing,
            soc=round(100.0 * remaining / spec.capacity_ah, 1),
            soh=sim.soh,
            cycles=sim.cycles,
            remaining_capacity=remaining,
            full_capacity=spec.capacity_ah,
            state=str(state),
            voltage_state=_limit_state(flags, _MODULE_HIGH_FLAGS, _MODULE_LOW_FLAGS),
            current_state=LimitState.HIGH if flags & _CURRENT_HIGH_FLAGS else LimitState.NORMAL,
            temperature_state=_limit_state(flags, _TEMP_HIGH_FLAGS, _TEMP_LOW_FLAGS),
            charge_mosfet=not protections & CHARGE_BLOCKING,
            discharge_mosfet=not protections & DISCHARGE_BLOCKING,
            fully_charged=soc >= 99.95,
            model=spec.name,
            manufacturer="Pylon",
            serial_number=sim.serial,
            firmware=firmware_text(spec),
            protections=protections,
            alarms=alarms,
            counters=self.stat_counters(sim.index),
        )

    def snapshot(self) -> Bank:
        """The whole bank as the model sees it (present modules only)."""
        self._update_trips()
        modules = tuple(self._module(s) for s in self.modules if s.index not in self.faults.dropped)
        limits = self.system_limits()
        protections: frozenset[Protection] = frozenset().union(*(m.protections for m in modules))
        alarms: frozenset[Alarm] = frozenset().union(*(m.alarms for m in modules))
        master = self.module_snapshot(1)
        if not modules:
            return Bank(module_count=0, protections=protections, alarms=alarms)
        remaining = round(sum(m.remaining_capacity or 0.0 for m in modules), 3)
        full = round(sum(m.full_capacity or 0.0 for m in modules), 3)
        cell_temps = [t for m in modules for t in m.temperatures[1:5]]
        return Bank(
            modules=modules,
            voltage=round(sum(m.voltage or 0.0 for m in modules) / len(modules), 2),
            current=_round1(sum(m.current or 0.0 for m in modules)),
            temperature=_round1(sum(cell_temps) / len(cell_temps)),
            soc=float(round(100.0 * remaining / full)),
            soh=float(round(sum(m.soh or 0.0 for m in modules) / len(modules))),
            remaining_capacity=remaining,
            full_capacity=full,
            charge_voltage_limit=limits.charge_voltage,
            discharge_voltage_limit=limits.discharge_voltage,
            charge_current_limit=limits.charge_current,
            discharge_current_limit=limits.discharge_current,
            charge_enabled=limits.charge_enabled,
            discharge_enabled=limits.discharge_enabled,
            force_charge_1=limits.force_charge_1,
            force_charge_2=limits.force_charge_2,
            full_charge_request=limits.full_charge_request,
            module_count=len(modules),
            cell_voltage_min=min(m.cell_voltage_min or 0.0 for m in modules),
            cell_voltage_max=max(m.cell_voltage_max or 0.0 for m in modules),
            manufacturer="Pylon",
            model=master.model if master else modules[0].model,
            serial_number=master.serial_number if master else None,
            firmware=master.firmware if master else None,
            protections=protections,
            alarms=alarms,
        )


def firmware_text(spec: ModelSpec) -> str:
    """The firmware string a module reports (RS485 0x51 / console ``Soft  version``)."""
    major, minor = spec.soft_version
    return f"{major}.{minor}"


def _limit_state(
    flags: frozenset[object], high: frozenset[object], low: frozenset[object]
) -> LimitState:
    if flags & high:
        return LimitState.HIGH
    if flags & low:
        return LimitState.LOW
    return LimitState.NORMAL


# `stat` labels in the order of the US5000 capture (CON-13).
STAT_LABELS: tuple[str, ...] = (
    "Data Items", "HisData Items", "Charge Cnt.", "Discharge Cnt.", "Charge Times",
    "Status Cnt.", "Idle Times", "COC Times", "COC2 Times", "DOC Times", "DOC2 Times",
    "COCA Times", "DOCA Times", "SC Times", "Bat OV Times", "Bat HV Times", "Bat LV Times",
    "Bat UV Times", "Bat SLP Times", "Pwr OV Times", "Pwr HV Times", "Pwr LV Times",
    "Pwr UV Times", "Pwr SLP Times", "COT Times", "CUT Times", "DOT Times", "DUT Times",
    "CHT Times", "CLT Times", "DHT Times", "DLT Times", "Shut Times", "Reset Times",
    "RV Times", "Input OV Times", "SOH Times", "BMICERR Times", "CYCLE Times", "SOH",
    "Pwr Percent", "Pwr Coulomb", "Dsg Cap", "HT@0.5C Cnt", "LT@0.5C Cnt", "HT Cnt",
    "LT Cnt", "LV Cnt", "LifeWarn Times", "LifeAlarm Times",
)  # fmt: skip


def _initial_counters(rng: random.Random) -> dict[str, int]:
    return {
        "Data Items": 1,
        "HisData Items": rng.randint(100, 2000),
        "Charge Cnt.": rng.randint(5, 50),
        "Status Cnt.": rng.randint(5, 50),
        "Charge Times": rng.randint(1000, 12000),
        "Idle Times": rng.randint(1000, 13000),
        "Reset Times": rng.randint(1, 20),
        "Shut Times": rng.randint(0, 3),
    }
