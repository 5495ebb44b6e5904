"""The bank model: immutable, comparable snapshots that every link fills in.

Units are SI floats: volts, amperes, degrees Celsius, ampere-hours, percent.
A value a link does not carry is ``None`` (or an empty tuple/frozenset), never
zero, so "not reported" and "reported as 0" stay distinct all the way to the UI.

Flags are named members (``Protection``, ``Alarm``), never bit numbers: each
codec maps its own bits onto these names, and the fault rules read only names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any


class Protection(StrEnum):
    """A protection that has tripped: the BMS has stopped charging or discharging.

    Links differ in granularity. CAN 0x359 reports "cell or module over-voltage"
    as one bit (``OVER_VOLTAGE``); RS485 0x44 separates cell and module. Rules
    treat the generic and the specific members of a family alike.
    """

    OVER_VOLTAGE = "over_voltage"
    CELL_OVER_VOLTAGE = "cell_over_voltage"
    MODULE_OVER_VOLTAGE = "module_over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    CELL_UNDER_VOLTAGE = "cell_under_voltage"
    MODULE_UNDER_VOLTAGE = "module_under_voltage"
    OVER_TEMPERATURE = "over_temperature"
    CHARGE_OVER_TEMPERATURE = "charge_over_temperature"
    DISCHARGE_OVER_TEMPERATURE = "discharge_over_temperature"
    MOSFET_OVER_TEMPERATURE = "mosfet_over_temperature"
    UNDER_TEMPERATURE = "under_temperature"
    CHARGE_UNDER_TEMPERATURE = "charge_under_temperature"
    DISCHARGE_UNDER_TEMPERATURE = "discharge_under_temperature"
    CHARGE_OVER_CURRENT = "charge_over_current"
    DISCHARGE_OVER_CURRENT = "discharge_over_current"
    SHORT_CIRCUIT = "short_circuit"
    REVERSE_POLARITY = "reverse_polarity"
    SENSOR_FAILURE = "sensor_failure"
    SYSTEM_ERROR = "system_error"
    # CAN 0x35A (SMA/Victron) "general alarm": a protection the BMS does not name.
    GENERAL = "general_protection"


class Alarm(StrEnum):
    """A warning: a value is near its limit; the BMS still charges and discharges."""

    HIGH_VOLTAGE = "high_voltage"
    CELL_HIGH_VOLTAGE = "cell_high_voltage"
    MODULE_HIGH_VOLTAGE = "module_high_voltage"
    LOW_VOLTAGE = "low_voltage"
    CELL_LOW_VOLTAGE = "cell_low_voltage"
    MODULE_LOW_VOLTAGE = "module_low_voltage"
    HIGH_TEMPERATURE = "high_temperature"
    CHARGE_HIGH_TEMPERATURE = "charge_high_temperature"
    DISCHARGE_HIGH_TEMPERATURE = "discharge_high_temperature"
    MOSFET_HIGH_TEMPERATURE = "mosfet_high_temperature"
    LOW_TEMPERATURE = "low_temperature"
    CHARGE_LOW_TEMPERATURE = "charge_low_temperature"
    DISCHARGE_LOW_TEMPERATURE = "discharge_low_temperature"
    CHARGE_HIGH_CURRENT = "charge_high_current"
    DISCHARGE_HIGH_CURRENT = "discharge_high_current"
    CELL_IMBALANCE = "cell_imbalance"
    CELL_VOLTAGE_ERROR = "cell_voltage_error"
    TEMPERATURE_SENSOR_ERROR = "temperature_sensor_error"
    INTERNAL_COMMUNICATION_FAIL = "internal_communication_fail"
    GENERAL = "general_alarm"


class ModuleState(StrEnum):
    """Operating state words; console words outside this set are kept lower-cased."""

    CHARGE = "charge"
    DISCHARGE = "discharge"
    IDLE = "idle"
    SLEEP = "sleep"
    ERROR = "error"
    ABSENT = "absent"


class LimitState(StrEnum):
    """State of one measured value against its limits (RS485 0x44, console *.St columns)."""

    NORMAL = "normal"
    LOW = "low"
    HIGH = "high"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Module:
    """One battery module of a group. ``index`` 1 is the master.

    ``index`` is the console slot (``pwr`` row) or RS485 ADR - 1 within the group;
    ``group`` is the RS485/DIP group number (0 for a single group).
    """

    index: int
    group: int = 0
    voltage: float | None = None
    current: float | None = None  # + = charge
    temperature: float | None = None  # BMS board
    temperatures: tuple[float, ...] = ()  # every sensor, in wire order
    temperature_min: float | None = None
    temperature_max: float | None = None
    mosfet_temperature: float | None = None
    cell_voltages: tuple[float, ...] = ()
    cell_temperatures: tuple[float, ...] = ()  # console `bat`: sensor covering each cell
    cell_voltage_min: float | None = None
    cell_voltage_max: float | None = None
    cell_voltage_states: tuple[LimitState, ...] = ()
    temperature_states: tuple[LimitState, ...] = ()
    cells_balancing: tuple[bool, ...] = ()
    soc: float | None = None
    soh: float | None = None
    cycles: int | None = None
    remaining_capacity: float | None = None  # Ah
    full_capacity: float | None = None  # Ah
    # The module's own charge/discharge management limits (RS485 0x92 asked per module).
    charge_voltage_limit: float | None = None  # V
    discharge_voltage_limit: float | None = None  # V
    charge_current_limit: float | None = None  # A, positive
    discharge_current_limit: float | None = None  # A, positive magnitude
    state: str | None = None  # a ModuleState value, or a lower-cased unknown word
    voltage_state: LimitState | None = None
    current_state: LimitState | None = None
    temperature_state: LimitState | None = None
    charge_mosfet: bool | None = None
    discharge_mosfet: bool | None = None
    fully_charged: bool | None = None
    model: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None
    firmware: str | None = None
    protections: frozenset[Protection] = frozenset()
    alarms: frozenset[Alarm] = frozenset()
    # Whether this snapshot's protections / alarms come from a reading (RS485 0x44, console
    # `pwr N` events and `pwr` state columns): empty flags without one are unknown, not "off".
    protections_read: bool | None = None
    alarms_read: bool | None = None
    # Console counters (`stat`: "COC Times" ...) keyed by their label, as read.
    counters: tuple[tuple[str, int], ...] = ()
    # Fields a decoder did not know (new firmware columns), kept as text.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[int, int]:
        """Position of the module in the bank: (group, index)."""
        return (self.group, self.index)

    @property
    def cell_voltage_spread(self) -> float | None:
        """Highest minus lowest cell voltage, in V."""
        if self.cell_voltage_min is None or self.cell_voltage_max is None:
            return None
        return round(self.cell_voltage_max - self.cell_voltage_min, 4)

    @property
    def power(self) -> float | None:
        """Module power in W, + = charging."""
        if self.voltage is None or self.current is None:
            return None
        return round(self.voltage * self.current, 2)

    def counter(self, label: str) -> int | None:
        """Return a console counter by its label (``"COC Times"``), if read."""
        for name, value in self.counters:
            if name == label:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Bank:
    """A battery bank (one group, or several behind an LV-Hub) at one moment.

    Bank-level values come from the link that carries them (CAN broadcasts the
    whole stack; RS485 0x92 and console ``pwrsys`` too) or, where no link does,
    are derived from the modules by ``with_totals``.
    """

    modules: tuple[Module, ...] = ()
    voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    soc: float | None = None
    soh: float | None = None
    remaining_capacity: float | None = None  # Ah
    full_capacity: float | None = None  # Ah
    charge_voltage_limit: float | None = None
    discharge_voltage_limit: float | None = None
    charge_current_limit: float | None = None  # A, positive
    discharge_current_limit: float | None = None  # A, positive magnitude
    charge_enabled: bool | None = None
    discharge_enabled: bool | None = None
    force_charge_1: bool | None = None
    force_charge_2: bool | None = None
    full_charge_request: bool | None = None
    module_count: int | None = None
    cell_voltage_min: float | None = None
    cell_voltage_max: float | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None  # master barcode
    firmware: str | None = None
    protocol_version: str | None = None
    protections: frozenset[Protection] = frozenset()
    alarms: frozenset[Alarm] = frozenset()
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def power(self) -> float | None:
        """Bank power in W, + = charging."""
        if self.voltage is None or self.current is None:
            return None
        return round(self.voltage * self.current, 2)

    @property
    def cell_voltage_spread(self) -> float | None:
        """Highest minus lowest cell voltage across the bank, in V."""
        if self.cell_voltage_min is None or self.cell_voltage_max is None:
            return None
        return round(self.cell_voltage_max - self.cell_voltage_min, 4)

    def module(self, index: int, group: int = 0) -> Module | None:
        """Return the module at a position, if present."""
        for module in self.modules:
            if module.index == index and module.group == group:
                return module
        return None

    def present_modules(self) -> tuple[Module, ...]:
        """Modules that answered (``absent`` console slots left out)."""
        return tuple(m for m in self.modules if m.state != ModuleState.ABSENT)

    def with_totals(self) -> Bank:
        """Fill bank-level values the link did not carry from the present modules."""
        modules = self.present_modules()
        if not modules:
            return self
        updates: dict[str, Any] = {}

        def fill(name: str, value: Any) -> None:
            if getattr(self, name) is None and value is not None:
                updates[name] = value

        voltages = [m.voltage for m in modules if m.voltage is not None]
        currents = [m.current for m in modules if m.current is not None]
        temperatures = [m.temperature for m in modules if m.temperature is not None]
        # Parallel modules share the bus voltage; the mean hides one bad reading.
        fill("voltage", round(sum(voltages) / len(voltages), 3) if voltages else None)
        fill("current", round(sum(currents), 2) if len(currents) == len(modules) else None)
        fill(
            "temperature",
            round(sum(temperatures) / len(temperatures), 2) if temperatures else None,
        )
        remaining = [m.remaining_capacity for m in modules]
        full = [m.full_capacity for m in modules]
        if None not in remaining and None not in full:
            total_remaining = round(sum(remaining), 3)  # type: ignore[arg-type]
            total_full = round(sum(full), 3)  # type: ignore[arg-type]
            fill("remaining_capacity", total_remaining)
            fill("full_capacity", total_full)
            if total_full > 0:
                fill("soc", round(100 * total_remaining / total_full, 1))
        else:
            socs = [m.soc for m in modules if m.soc is not None]
            fill("soc", round(sum(socs) / len(socs), 1) if socs else None)
        sohs = [m.soh for m in modules if m.soh is not None]
        fill("soh", round(sum(sohs) / len(sohs), 1) if sohs else None)
        lows = [m.cell_voltage_min for m in modules if m.cell_voltage_min is not None]
        highs = [m.cell_voltage_max for m in modules if m.cell_voltage_max is not None]
        fill("cell_voltage_min", min(lows) if lows else None)
        fill("cell_voltage_max", max(highs) if highs else None)
        fill("module_count", len(modules))
        master = self.module(1)
        if master is not None:
            fill("serial_number", master.serial_number)
            fill("model", master.model)
            fill("firmware", master.firmware)
            fill("manufacturer", master.manufacturer)
        return replace(self, **updates) if updates else self


def cell_extremes(cells: Iterable[float]) -> tuple[float | None, float | None]:
    """Lowest and highest of a module's cell voltages (None, None when empty)."""
    values = tuple(cells)
    if not values:
        return None, None
    return min(values), max(values)


def _is_unset(value: Any) -> bool:
    # Empty tuples and frozensets mean "not reported", like None.
    return value is None or value in ((), frozenset())


def merge_modules(base: Module, overlay: Module) -> Module:
    """Field-wise merge: ``overlay``'s values win where it has one."""
    updates = {
        f.name: getattr(overlay, f.name)
        for f in fields(Module)
        if not _is_unset(getattr(overlay, f.name))
    }
    return replace(base, **updates)


def merge_banks(base: Bank, overlay: Bank) -> Bank:
    """Merge two readings of one bank: the one merge every link and the coordinator use.

    ``overlay``'s values win where it has one (a CAN companion's limits over an RS485
    poll, ``pwrsys`` over the ``pwr`` totals); protections and alarms are unions, since
    a flag either reading reports is real; modules are matched by position and merged
    field by field; modules only one side knows are kept (pass an overlay without
    modules to keep module presence with ``base``).
    """
    updates = {
        f.name: getattr(overlay, f.name)
        for f in fields(Bank)
        if f.name not in ("modules", "protections", "alarms")
        and not _is_unset(getattr(overlay, f.name))
    }
    updates["protections"] = base.protections | overlay.protections
    updates["alarms"] = base.alarms | overlay.alarms
    merged: dict[tuple[int, int], Module] = {m.key: m for m in base.modules}
    for module in overlay.modules:
        known = merged.get(module.key)
        merged[module.key] = module if known is None else merge_modules(known, module)
    updates["modules"] = tuple(merged[key] for key in sorted(merged))
    return replace(base, **updates)


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(str(v) for v in value)
    if isinstance(value, tuple):
        if value and isinstance(value[0], tuple):
            return {str(k): v for k, v in value}
        return [_plain(v) for v in value]
    if isinstance(value, StrEnum):
        return str(value)
    return value


def module_to_dict(module: Module) -> dict[str, Any]:
    """Return a module as JSON-ready data (the shape ``scripts/decode`` prints)."""
    data = {f.name: _plain(getattr(module, f.name)) for f in fields(Module)}
    data["cell_voltage_spread"] = module.cell_voltage_spread
    data["power"] = module.power
    return data


def bank_to_dict(bank: Bank) -> dict[str, Any]:
    """``{"bank": {...}, "modules": [...]}``, JSON-ready."""
    data = {f.name: _plain(getattr(bank, f.name)) for f in fields(Bank) if f.name != "modules"}
    data["power"] = bank.power
    data["cell_voltage_spread"] = bank.cell_voltage_spread
    return {"bank": data, "modules": [module_to_dict(m) for m in bank.modules]}


__all__ = [
    "Alarm",
    "Bank",
    "LimitState",
    "Module",
    "ModuleState",
    "Protection",
    "bank_to_dict",
    "cell_extremes",
    "merge_banks",
    "merge_modules",
    "module_to_dict",
]
