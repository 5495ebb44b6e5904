"""Rules that find documented faults in bank snapshots.

``evaluate`` applies the stateless rules to one snapshot (used by ``scripts/decode``).
``FaultTracker`` keeps one bank's history between snapshots: it adds the rules that need
time (over-current lock, module-count drop, full-charge request, low SOC held), reports
which faults started and ended, and every protection/alarm flag that changed.

Rules read named flags only (``Protection``/``Alarm``): a codec's bits never reach this
module. The generic and specific members of a family count alike, so a CAN "cell or
module over-voltage" bit and an RS485 "cell over-voltage" bit both mean over-voltage.

Time is always the ``now`` argument (seconds, any monotonic origin); nothing here reads a
clock, and the state kept per bank is bounded by the number of modules, not by history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..model import Alarm, Bank, LimitState, Module, ModuleState, Protection
from .catalog import (
    BMS_ZERO_TEMPERATURE_CONTRADICTION_C,
    BMS_ZERO_TEMPERATURE_MIN_SENSORS,
    CELL_IMBALANCE_SPREAD_MV,
    CHARGING_CURRENT_MIN_A,
    COC_TIMES_COUNTER,
    DOC_TIMES_COUNTER,
    FAULTS,
    FULL_CHARGE_REQUEST_GRACE_S,
    LOW_SOC_THRESHOLD,
    LOW_SOC_WARNING_FRACTION,
    MODULE_COUNT_DEBOUNCE,
    OVER_CURRENT_CLEAN_PERIOD_S,
    OVER_CURRENT_LOCK_TRIPS,
    SOC_DIVERGENCE_POINTS,
    FaultDefinition,
    FaultKey,
    get_fault,
    max_modules_per_group,
    normalise_model,
    recharge_deadline_hours,
)

ModuleKey = tuple[int, int]
Flag = Protection | Alarm
Identity = tuple[FaultKey, ModuleKey | None]
# A flag at a place: (place, is_alarm, flag). The kind is part of it because StrEnum
# members compare as their text, and Protection.GENERAL == Alarm.GENERAL ("general").
_PlacedFlag = tuple[ModuleKey | None, bool, Flag]

UNKNOWN = "?"

# --- Flag -> fault tables -------------------------------------------------------------------

PROTECTION_FAULTS: Mapping[Protection, FaultKey] = MappingProxyType(
    {
        Protection.OVER_VOLTAGE: FaultKey.OVER_VOLTAGE,
        Protection.CELL_OVER_VOLTAGE: FaultKey.OVER_VOLTAGE,
        Protection.MODULE_OVER_VOLTAGE: FaultKey.OVER_VOLTAGE,
        Protection.UNDER_VOLTAGE: FaultKey.UNDER_VOLTAGE,
        Protection.CELL_UNDER_VOLTAGE: FaultKey.UNDER_VOLTAGE,
        Protection.MODULE_UNDER_VOLTAGE: FaultKey.UNDER_VOLTAGE,
        Protection.CHARGE_OVER_TEMPERATURE: FaultKey.CHARGE_OVER_TEMPERATURE,
        Protection.DISCHARGE_OVER_TEMPERATURE: FaultKey.DISCHARGE_OVER_TEMPERATURE,
        # SR48100H 3.4: CHTP/DHTP cover cell, environment and MOS temperature alike.
        Protection.OVER_TEMPERATURE: FaultKey.OVER_TEMPERATURE,
        Protection.MOSFET_OVER_TEMPERATURE: FaultKey.OVER_TEMPERATURE,
        Protection.UNDER_TEMPERATURE: FaultKey.UNDER_TEMPERATURE,
        Protection.CHARGE_UNDER_TEMPERATURE: FaultKey.CHARGE_UNDER_TEMPERATURE,
        Protection.DISCHARGE_UNDER_TEMPERATURE: FaultKey.DISCHARGE_UNDER_TEMPERATURE,
        Protection.CHARGE_OVER_CURRENT: FaultKey.CHARGE_OVER_CURRENT,
        Protection.DISCHARGE_OVER_CURRENT: FaultKey.DISCHARGE_OVER_CURRENT,
        Protection.SHORT_CIRCUIT: FaultKey.SHORT_CIRCUIT,
        Protection.REVERSE_POLARITY: FaultKey.REVERSE_POLARITY,
        Protection.SENSOR_FAILURE: FaultKey.SENSOR_FAILURE,
        Protection.SYSTEM_ERROR: FaultKey.SENSOR_FAILURE,
        Protection.GENERAL: FaultKey.GENERAL_PROTECTION,
    }
)

ALARM_FAULTS: Mapping[Alarm, FaultKey] = MappingProxyType(
    {
        Alarm.HIGH_VOLTAGE: FaultKey.HIGH_VOLTAGE_WARNING,
        Alarm.CELL_HIGH_VOLTAGE: FaultKey.HIGH_VOLTAGE_WARNING,
        Alarm.MODULE_HIGH_VOLTAGE: FaultKey.HIGH_VOLTAGE_WARNING,
        Alarm.LOW_VOLTAGE: FaultKey.LOW_VOLTAGE_WARNING,
        Alarm.CELL_LOW_VOLTAGE: FaultKey.LOW_VOLTAGE_WARNING,
        Alarm.MODULE_LOW_VOLTAGE: FaultKey.LOW_VOLTAGE_WARNING,
        Alarm.HIGH_TEMPERATURE: FaultKey.HIGH_TEMPERATURE_WARNING,
        Alarm.CHARGE_HIGH_TEMPERATURE: FaultKey.HIGH_TEMPERATURE_WARNING,
        Alarm.DISCHARGE_HIGH_TEMPERATURE: FaultKey.HIGH_TEMPERATURE_WARNING,
        Alarm.MOSFET_HIGH_TEMPERATURE: FaultKey.HIGH_TEMPERATURE_WARNING,
        Alarm.LOW_TEMPERATURE: FaultKey.LOW_TEMPERATURE_WARNING,
        Alarm.CHARGE_LOW_TEMPERATURE: FaultKey.LOW_TEMPERATURE_WARNING,
        Alarm.DISCHARGE_LOW_TEMPERATURE: FaultKey.LOW_TEMPERATURE_WARNING,
        Alarm.CHARGE_HIGH_CURRENT: FaultKey.HIGH_CURRENT_WARNING,
        Alarm.DISCHARGE_HIGH_CURRENT: FaultKey.HIGH_CURRENT_WARNING,
        Alarm.CELL_IMBALANCE: FaultKey.CELL_IMBALANCE,
        # RS485 0x44 status 4/5: a cell above 4.2 V or below 1 V is a failed cell or sensor.
        Alarm.CELL_VOLTAGE_ERROR: FaultKey.SENSOR_FAILURE,
        Alarm.TEMPERATURE_SENSOR_ERROR: FaultKey.SENSOR_FAILURE,
        Alarm.INTERNAL_COMMUNICATION_FAIL: FaultKey.INTERNAL_COMMUNICATION_FAIL,
        Alarm.GENERAL: FaultKey.GENERAL_WARNING,
    }
)

# A fault is left out when one of these, more specific or more serious, is active at the
# same place: the user gets one message per problem.
SUPERSEDED_BY: Mapping[FaultKey, tuple[FaultKey, ...]] = MappingProxyType(
    {
        FaultKey.OVER_TEMPERATURE: (
            FaultKey.CHARGE_OVER_TEMPERATURE,
            FaultKey.DISCHARGE_OVER_TEMPERATURE,
        ),
        FaultKey.UNDER_TEMPERATURE: (
            FaultKey.CHARGE_UNDER_TEMPERATURE,
            FaultKey.DISCHARGE_UNDER_TEMPERATURE,
        ),
        FaultKey.CHARGE_OVER_CURRENT: (FaultKey.CHARGE_OVER_CURRENT_LOCKED,),
        FaultKey.DISCHARGE_OVER_CURRENT: (FaultKey.DISCHARGE_OVER_CURRENT_LOCKED,),
        FaultKey.HIGH_VOLTAGE_WARNING: (FaultKey.OVER_VOLTAGE,),
        FaultKey.LOW_VOLTAGE_WARNING: (FaultKey.UNDER_VOLTAGE,),
        FaultKey.HIGH_TEMPERATURE_WARNING: (
            FaultKey.OVER_TEMPERATURE,
            FaultKey.CHARGE_OVER_TEMPERATURE,
            FaultKey.DISCHARGE_OVER_TEMPERATURE,
        ),
        FaultKey.LOW_TEMPERATURE_WARNING: (
            FaultKey.UNDER_TEMPERATURE,
            FaultKey.CHARGE_UNDER_TEMPERATURE,
            FaultKey.DISCHARGE_UNDER_TEMPERATURE,
        ),
        FaultKey.GENERAL_WARNING: (FaultKey.GENERAL_PROTECTION,),
        FaultKey.HIGH_CURRENT_WARNING: (
            FaultKey.CHARGE_OVER_CURRENT,
            FaultKey.DISCHARGE_OVER_CURRENT,
            FaultKey.CHARGE_OVER_CURRENT_LOCKED,
            FaultKey.DISCHARGE_OVER_CURRENT_LOCKED,
        ),
    }
)

# Words for the sensor-failure message ({detail}).
_FAILURE_DETAIL: Mapping[Flag, str] = MappingProxyType(
    {
        Protection.SENSOR_FAILURE: "sensor failure",
        Protection.SYSTEM_ERROR: "system error",
        Alarm.CELL_VOLTAGE_ERROR: "cell voltage error",
        Alarm.TEMPERATURE_SENSOR_ERROR: "temperature sensor error",
    }
)

_CATALOG_ORDER: Mapping[str, int] = MappingProxyType({f.key: i for i, f in enumerate(FAULTS)})


# --- Results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveFault:
    """A documented fault found in a snapshot, at a module or (``module_key`` None) the bank.

    ``placeholders`` carries the numbers its message needs: always ``location``,
    ``module`` and ``group``, plus the names in ``definition.placeholders``.
    Two active faults are the same fault when their ``identity`` is equal; the hash
    follows the identity, so active faults can go into sets.
    """

    definition: FaultDefinition
    module_key: ModuleKey | None
    placeholders: dict[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        """Hash by identity (placeholders are a dict); equal faults share an identity."""
        return hash(self.identity)

    @property
    def key(self) -> FaultKey:
        """The fault's key (also its Home Assistant translation key)."""
        return self.definition.key

    @property
    def identity(self) -> Identity:
        """``(key, module_key)``: raise and clear repair issues by this."""
        return (self.definition.key, self.module_key)

    @property
    def message(self) -> str:
        """One English line: title, place and meaning with the numbers filled in."""
        definition = self.definition
        where = self.placeholders.get("location", "bank")
        return f"{definition.title} ({where}): {render_text(definition.meaning, self.placeholders)}"

    @property
    def issue_id(self) -> str:
        """A stable id for a Home Assistant repair issue of this fault at this place."""
        if self.module_key is None:
            return f"{self.definition.key}_bank"
        group, index = self.module_key
        return f"{self.definition.key}_g{group}_m{index}"


@dataclass(frozen=True, slots=True)
class FlagChange:
    """A protection or alarm that started (``active``) or ended, on a module or the bank."""

    module_key: ModuleKey | None
    flag: Flag
    active: bool


@dataclass(frozen=True, slots=True)
class FaultUpdate:
    """What one snapshot changed: the active faults, and what started, ended or changed.

    ``ended`` holds each ended fault as it was last active; ``updated`` holds faults that
    stayed active but whose placeholders changed (refresh their repair issues).
    """

    active: tuple[ActiveFault, ...]
    started: tuple[ActiveFault, ...] = ()
    ended: tuple[ActiveFault, ...] = ()
    updated: tuple[ActiveFault, ...] = ()
    flag_changes: tuple[FlagChange, ...] = ()

    @property
    def has_changes(self) -> bool:
        """Whether anything started, ended, changed, or any flag moved."""
        return bool(self.started or self.ended or self.updated or self.flag_changes)


class _KeepUnknown(dict[str, str]):
    """Leaves a ``{name}`` without a value as it is instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render_text(text: str, placeholders: Mapping[str, str]) -> str:
    """Fill a definition's ``{name}`` placeholders into its text (unknown ones kept)."""
    try:
        return text.format_map(_KeepUnknown(placeholders))
    except (ValueError, IndexError, AttributeError):  # a stray brace: show the text as is
        return text


def active_fault_to_dict(fault: ActiveFault) -> dict[str, Any]:
    """Return an active fault as JSON-ready data (the shape ``scripts/decode`` prints)."""
    definition = fault.definition
    return {
        "key": str(definition.key),
        "code": definition.code,
        "title": definition.title,
        "severity": str(definition.severity),
        "family": str(definition.family),
        "module": list(fault.module_key) if fault.module_key is not None else None,
        "placeholders": dict(fault.placeholders),
        "message": fault.message,
        "repair": definition.repair,
    }


# --- Helpers --------------------------------------------------------------------------------


def _number(value: float) -> str:
    """Format a number as a message shows it: no trailing ``.0``."""
    return f"{value:.1f}".removesuffix(".0")


def _module_label(key: ModuleKey) -> str:
    group, index = key
    return str(index) if group == 0 else f"{group}-{index}"


def _location(key: ModuleKey | None) -> dict[str, str]:
    if key is None:
        return {"location": "bank", "module": "", "group": ""}
    group, index = key
    where = f"module {index}" if group == 0 else f"module {index} of group {group}"
    return {"location": where, "module": str(index), "group": str(group)}


def _fault(key: FaultKey, module_key: ModuleKey | None, **values: str) -> ActiveFault:
    definition = get_fault(key)
    placeholders = _location(module_key)
    placeholders.update(values)
    for name in definition.placeholders:
        placeholders.setdefault(name, UNKNOWN)
    return ActiveFault(definition, module_key, placeholders)


def _master_model(bank: Bank, group: int = 0) -> str | None:
    master = bank.module(1, group)
    if master is not None and master.model:
        return master.model
    return bank.model


def _is_charging(bank: Bank, modules: Iterable[Module]) -> bool:
    if bank.current is not None and bank.current > CHARGING_CURRENT_MIN_A:
        return True
    return any(m.state == ModuleState.CHARGE for m in modules)


# --- Stateless rules ------------------------------------------------------------------------


def _flag_faults(
    flags: Iterable[Flag], module_key: ModuleKey | None, model: str | None
) -> list[ActiveFault]:
    """Faults named by a set of protection/alarm flags at one place."""
    keys: dict[FaultKey, list[Flag]] = {}
    for flag in flags:
        key = PROTECTION_FAULTS.get(flag) if isinstance(flag, Protection) else None
        if key is None and isinstance(flag, Alarm):
            key = ALARM_FAULTS.get(flag)
        if key is not None:
            keys.setdefault(key, []).append(flag)
    found = []
    for key, causes in keys.items():
        values: dict[str, str] = {}
        if key is FaultKey.SENSOR_FAILURE:
            values["detail"] = ", ".join(sorted({_FAILURE_DETAIL.get(f, str(f)) for f in causes}))
        elif key is FaultKey.UNDER_VOLTAGE:
            values["deadline_hours"] = _number(recharge_deadline_hours(model))
        elif key is FaultKey.CELL_IMBALANCE:
            values["limit_mv"] = str(CELL_IMBALANCE_SPREAD_MV)
        found.append(_fault(key, module_key, **values))
    return found


def _state_failures(module: Module) -> list[str]:
    """Failure details read from a module's state words (console SysError, 0xF0 states)."""
    details = []
    if module.state == ModuleState.ERROR:
        details.append("system error")
    if LimitState.ERROR in module.cell_voltage_states:
        details.append("cell voltage error")
    if module.temperature_state == LimitState.ERROR or LimitState.ERROR in (
        module.temperature_states
    ):
        details.append("temperature sensor error")
    return details


def _cell_spread_mv(
    low: float | None, high: float | None, cells: tuple[float, ...]
) -> tuple[int, int, int] | None:
    """(spread, min, max) in whole mV, from the extremes or else the cell list."""
    if (low is None or high is None) and len(cells) >= 2:
        low, high = min(cells), max(cells)
    if low is None or high is None:
        return None
    low_mv, high_mv = round(low * 1000), round(high * 1000)
    return high_mv - low_mv, low_mv, high_mv


def _imbalance_fault(
    module_key: ModuleKey | None, spread: tuple[int, int, int] | None, flagged: bool
) -> ActiveFault | None:
    if spread is not None and spread[0] >= CELL_IMBALANCE_SPREAD_MV:
        flagged = True
    if not flagged:
        return None
    values = {"limit_mv": str(CELL_IMBALANCE_SPREAD_MV)}
    if spread is not None:
        values.update(
            spread_mv=str(spread[0]), cell_min_mv=str(spread[1]), cell_max_mv=str(spread[2])
        )
    return _fault(FaultKey.CELL_IMBALANCE, module_key, **values)


def _bms_temperature_zero(module: Module) -> bool:
    if module.temperature is None or module.temperature != 0.0:
        return False
    readings = [*module.temperatures, *module.cell_temperatures]
    readings += [
        t
        for t in (module.temperature_min, module.temperature_max, module.mosfet_temperature)
        if t is not None
    ]
    if not module.temperatures:
        readings.append(module.temperature)
    if any(abs(t) >= BMS_ZERO_TEMPERATURE_CONTRADICTION_C for t in readings):
        return True
    return len(readings) >= BMS_ZERO_TEMPERATURE_MIN_SENSORS and all(t == 0.0 for t in readings)


def _module_faults(bank: Bank, module: Module) -> list[ActiveFault]:
    key = module.key
    model = module.model or _master_model(bank, module.group)
    flags: tuple[Flag, ...] = (*module.protections, *module.alarms)
    found = [
        fault
        for fault in _flag_faults(flags, key, model)
        if fault.key is not FaultKey.CELL_IMBALANCE
    ]
    failures = _state_failures(module)
    if failures:
        existing = next((f for f in found if f.key is FaultKey.SENSOR_FAILURE), None)
        details = set(failures)
        if existing is not None:
            found.remove(existing)
            details.update(existing.placeholders["detail"].split(", "))
        found.append(_fault(FaultKey.SENSOR_FAILURE, key, detail=", ".join(sorted(details))))
    spread = _cell_spread_mv(module.cell_voltage_min, module.cell_voltage_max, module.cell_voltages)
    imbalance = _imbalance_fault(key, spread, Alarm.CELL_IMBALANCE in module.alarms)
    if imbalance is not None:
        found.append(imbalance)
    if _bms_temperature_zero(module):
        found.append(_fault(FaultKey.BMS_TEMPERATURE_ZERO, key))
    return found


def _bank_faults(bank: Bank, modules: tuple[Module, ...]) -> list[ActiveFault]:
    model = _master_model(bank)
    flags: tuple[Flag, ...] = (*bank.protections, *bank.alarms)
    found = [
        fault
        for fault in _flag_faults(flags, None, model)
        if fault.key is not FaultKey.CELL_IMBALANCE
    ]
    # Bank-wide extremes (console pwrsys) stand in only when no module carries its cells:
    # across modules they would mostly show SOC differences, not imbalance.
    has_cells = any(
        m.cell_voltages or (m.cell_voltage_min is not None and m.cell_voltage_max is not None)
        for m in modules
    )
    spread = (
        None if has_cells else _cell_spread_mv(bank.cell_voltage_min, bank.cell_voltage_max, ())
    )
    imbalance = _imbalance_fault(None, spread, Alarm.CELL_IMBALANCE in bank.alarms)
    if imbalance is not None:
        found.append(imbalance)

    with_soc = [(m.soc, m.key) for m in modules if m.soc is not None]
    if len(with_soc) >= 2:
        soc_min, module_min = min(with_soc)
        soc_max, module_max = max(with_soc)
        if soc_max - soc_min >= SOC_DIVERGENCE_POINTS:
            found.append(
                _fault(
                    FaultKey.SOC_DIVERGENCE,
                    None,
                    soc_min=_number(soc_min),
                    soc_max=_number(soc_max),
                    module_min=_module_label(module_min),
                    module_max=_module_label(module_max),
                    spread=_number(soc_max - soc_min),
                )
            )

    models: dict[str, str] = {}
    for module in modules:
        normal = normalise_model(module.model)
        if normal is not None and module.model is not None:
            models.setdefault(normal, module.model.replace("\x00", "").strip())
    if len(models) >= 2:
        found.append(_fault(FaultKey.MIXED_MODELS, None, models=", ".join(models.values())))

    groups: dict[int, int] = {}
    for module in modules:
        groups[module.group] = groups.get(module.group, 0) + 1
    for group in sorted(groups):
        group_model = _master_model(bank, group)
        limit = max_modules_per_group(group_model)
        if limit is not None and groups[group] > limit:
            found.append(
                _fault(
                    FaultKey.TOO_MANY_MODULES,
                    None,
                    count=str(groups[group]),
                    limit=str(limit),
                    model=(group_model or "").replace("\x00", "").strip(),
                    group=str(group),
                )
            )
            break  # one message per bank; it names the first group over its limit
    return found


def _stateless(bank: Bank) -> list[ActiveFault]:
    """Every stateless rule over a snapshot whose totals are already filled."""
    modules = bank.present_modules()
    found = _bank_faults(bank, modules)
    for module in modules:
        found.extend(_module_faults(bank, module))
    return found


def _finalise(found: Iterable[ActiveFault]) -> tuple[ActiveFault, ...]:
    """Drop superseded and duplicate faults; order by place, then catalog order."""
    by_identity: dict[Identity, ActiveFault] = {}
    for fault in found:
        by_identity.setdefault(fault.identity, fault)
    present = set(by_identity)
    keys_on_modules = {key for key, module_key in present if module_key is not None}
    kept = []
    for (key, module_key), fault in by_identity.items():
        if any((stronger, module_key) in present for stronger in SUPERSEDED_BY.get(key, ())):
            continue
        # A module already says it; the same flag at bank level (CAN) adds nothing.
        if module_key is None and key in keys_on_modules:
            continue
        kept.append(fault)
    kept.sort(key=_sort_key)
    return tuple(kept)


def _sort_key(fault: ActiveFault) -> tuple[int, ModuleKey, int]:
    place = (0, 0) if fault.module_key is None else fault.module_key
    return (0 if fault.module_key is None else 1, place, _CATALOG_ORDER[fault.key])


def evaluate(bank: Bank) -> tuple[ActiveFault, ...]:
    """Return the documented faults one snapshot shows on its own (no history needed)."""
    return _finalise(_stateless(bank.with_totals()))


# --- History --------------------------------------------------------------------------------


@dataclass(slots=True)
class _TripRun:
    """Over-current trips at one place that count as consecutive."""

    count: int = 0
    last_seen: float = 0.0  # last trip start, or last snapshot with the protection on
    flag_active: bool = False


_OVER_CURRENT: tuple[tuple[Protection, str, FaultKey], ...] = (
    (Protection.CHARGE_OVER_CURRENT, COC_TIMES_COUNTER, FaultKey.CHARGE_OVER_CURRENT_LOCKED),
    (Protection.DISCHARGE_OVER_CURRENT, DOC_TIMES_COUNTER, FaultKey.DISCHARGE_OVER_CURRENT_LOCKED),
)


def _scope_sort(scope: ModuleKey | None) -> tuple[int, ModuleKey]:
    return (0, (0, 0)) if scope is None else (1, scope)


def _flag_sort(change: FlagChange) -> tuple[bool, tuple[int, ModuleKey], int, str]:
    return (
        change.active,
        _scope_sort(change.module_key),
        0 if isinstance(change.flag, Protection) else 1,
        str(change.flag),
    )


class FaultTracker:
    """Finds a bank's faults over time; one tracker per bank.

    Call ``update`` with every new snapshot and the time it was taken. The tracker
    adds the history rules to the stateless ones and reports what changed.

    The snapshot is the truth for flags: a module missing from it ends its flags.
    A snapshot without a module count keeps the module-count state as it was; one
    without ``full_charge_request`` or SOC restarts those clocks. The over-current
    lock stays active until the protection has been clear for
    ``OVER_CURRENT_CLEAN_PERIOD_S`` (the BMS needs a manual reset; this shows it).
    """

    def __init__(self, *, expected_module_count: int | None = None) -> None:
        """Start empty; ``expected_module_count`` restores a module count known earlier."""
        self._flags: frozenset[_PlacedFlag] = frozenset()
        self._active: dict[Identity, ActiveFault] = {}
        self._runs: dict[tuple[ModuleKey | None, Protection], _TripRun] = {}
        self._counters: dict[tuple[ModuleKey, str], int] = {}
        self._highest_count: int | None = expected_module_count
        self._last_count: int | None = None
        self._expected_modules: frozenset[ModuleKey] = frozenset()
        self._low_count_streak = 0
        self._count_fault: ActiveFault | None = None
        self._full_charge_since: float | None = None
        self._low_soc_since: float | None = None

    @property
    def active(self) -> tuple[ActiveFault, ...]:
        """The faults active after the last update."""
        return tuple(sorted(self._active.values(), key=_sort_key))

    @property
    def highest_module_count(self) -> int | None:
        """The highest module count seen (store it to restore with ``expected_module_count``)."""
        return self._highest_count

    def accept_module_count(self, count: int | None = None) -> None:
        """Take ``count`` (default: the latest count seen) as the bank's size from now on.

        For a module removed on purpose: the module-count fault ends at the next update.
        """
        self._highest_count = count if count is not None else self._last_count
        self._low_count_streak = 0
        self._count_fault = None

    def update(self, bank: Bank, now: float) -> FaultUpdate:
        """Evaluate a new snapshot taken at ``now`` (seconds) and report what changed."""
        snapshot = bank.with_totals()
        modules = snapshot.present_modules()

        flags = self._current_flags(snapshot, modules)
        flag_changes = tuple(
            sorted(
                [FlagChange(scope, flag, False) for scope, _, flag in self._flags - flags]
                + [FlagChange(scope, flag, True) for scope, _, flag in flags - self._flags],
                key=_flag_sort,
            )
        )
        previous_flags, self._flags = self._flags, flags

        found = _stateless(snapshot)
        found.extend(self._over_current(modules, previous_flags, flags, now))
        count_fault = self._module_count(snapshot, modules)
        if count_fault is not None:
            found.append(count_fault)
        found.extend(self._full_charge(snapshot, now))
        found.extend(self._low_soc(snapshot, modules, now))

        active = _finalise(found)
        current = {fault.identity: fault for fault in active}
        started = tuple(f for f in active if f.identity not in self._active)
        updated = tuple(
            f
            for f in active
            if f.identity in self._active
            and self._active[f.identity].placeholders != f.placeholders
        )
        ended = tuple(
            sorted(
                (f for identity, f in self._active.items() if identity not in current),
                key=_sort_key,
            )
        )
        self._active = current
        return FaultUpdate(
            active=active, started=started, ended=ended, updated=updated, flag_changes=flag_changes
        )

    # -- flags

    @staticmethod
    def _current_flags(bank: Bank, modules: tuple[Module, ...]) -> frozenset[_PlacedFlag]:
        flags: set[_PlacedFlag] = set()
        for place, protections, alarms in (
            (None, bank.protections, bank.alarms),
            *((m.key, m.protections, m.alarms) for m in modules),
        ):
            flags.update((place, False, flag) for flag in protections)
            flags.update((place, True, flag) for flag in alarms)
        return frozenset(flags)

    # -- over-current lock

    def _over_current(
        self,
        modules: tuple[Module, ...],
        previous: frozenset[_PlacedFlag],
        flags: frozenset[_PlacedFlag],
        now: float,
    ) -> list[ActiveFault]:
        found = []
        present = {module.key: module for module in modules}
        for protection, counter, locked_key in _OVER_CURRENT:
            scopes: set[ModuleKey | None] = {s for s, _, f in flags if f is protection}
            scopes.update(s for s, p in self._runs if p is protection)
            deltas: dict[ModuleKey, int] = {}
            for key, module in present.items():
                value = module.counter(counter)
                if value is None:
                    continue
                before = self._counters.get((key, counter))
                self._counters[(key, counter)] = value
                # First reading, or a counter cleared on the battery: only a baseline.
                if before is not None and value > before:
                    deltas[key] = min(value - before, OVER_CURRENT_LOCK_TRIPS)
                    scopes.add(key)
            for scope in sorted(scopes, key=_scope_sort):
                on = (scope, False, protection) in flags
                started = on and (scope, False, protection) not in previous
                counted = deltas.get(scope, 0) if scope is not None else 0
                trips = max(1 if started else 0, counted)
                run = self._runs.get((scope, protection))
                if run is None:
                    run = self._runs[(scope, protection)] = _TripRun()
                if not run.flag_active and now - run.last_seen >= OVER_CURRENT_CLEAN_PERIOD_S:
                    run.count = 0  # a clean period ends the run of consecutive trips
                if trips:
                    run.count += trips
                if trips or on:
                    run.last_seen = now
                run.flag_active = on
                if run.count == 0 and not on:
                    del self._runs[(scope, protection)]
                    continue
                if run.count >= OVER_CURRENT_LOCK_TRIPS:
                    found.append(_fault(locked_key, scope, trips=str(run.count)))
        # Counters of modules that left the snapshot would only grow the state.
        for key_label in [k for k in self._counters if k[0] not in present]:
            del self._counters[key_label]
        return found

    # -- module count

    def _module_count(self, bank: Bank, modules: tuple[Module, ...]) -> ActiveFault | None:
        count = bank.module_count
        if count is None:
            return self._count_fault  # nothing reported: keep what we knew
        self._last_count = count
        keys = frozenset(module.key for module in modules)
        if self._highest_count is None or count > self._highest_count:
            self._highest_count = count
            self._expected_modules = keys
        if count >= self._highest_count:
            if count == self._highest_count and keys:
                self._expected_modules = keys
            self._low_count_streak = 0
            self._count_fault = None
            return None
        self._low_count_streak = min(self._low_count_streak + 1, MODULE_COUNT_DEBOUNCE)
        if self._low_count_streak < MODULE_COUNT_DEBOUNCE:
            return self._count_fault
        missing = sorted(self._expected_modules - keys) if keys else []
        self._count_fault = _fault(
            FaultKey.MODULE_COUNT_DROPPED,
            None,
            count=str(count),
            expected=str(self._highest_count),
            missing=", ".join(_module_label(k) for k in missing) if missing else UNKNOWN,
        )
        return self._count_fault

    # -- full-charge request

    def _full_charge(self, bank: Bank, now: float) -> list[ActiveFault]:
        if not bank.full_charge_request:
            self._full_charge_since = None
            return []
        if self._full_charge_since is None:
            self._full_charge_since = now
        pending = now - self._full_charge_since
        if pending < FULL_CHARGE_REQUEST_GRACE_S:
            return []
        return [_fault(FaultKey.FULL_CHARGE_REQUEST_PENDING, None, hours=f"{pending // 3600:.0f}")]

    # -- low SOC held

    def _low_soc(self, bank: Bank, modules: tuple[Module, ...], now: float) -> list[ActiveFault]:
        soc = bank.soc
        if soc is None or soc > LOW_SOC_THRESHOLD or _is_charging(bank, modules):
            self._low_soc_since = None
            return []
        if self._low_soc_since is None:
            self._low_soc_since = now
        held = now - self._low_soc_since
        deadline_hours = recharge_deadline_hours(_master_model(bank))
        if held < deadline_hours * 3600 * LOW_SOC_WARNING_FRACTION:
            return []
        return [
            _fault(
                FaultKey.LOW_SOC_HELD,
                None,
                soc=_number(soc),
                threshold=_number(LOW_SOC_THRESHOLD),
                hours=f"{held // 3600:.0f}",
                deadline_hours=_number(deadline_hours),
            )
        ]


__all__ = [
    "ALARM_FAULTS",
    "PROTECTION_FAULTS",
    "SUPERSEDED_BY",
    "UNKNOWN",
    "ActiveFault",
    "FaultTracker",
    "FaultUpdate",
    "Flag",
    "FlagChange",
    "ModuleKey",
    "active_fault_to_dict",
    "evaluate",
    "render_text",
]
