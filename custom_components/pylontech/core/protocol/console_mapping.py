"""RS232 console: typed records to the bank model.

State words become ``ModuleState`` values (unknown words lower-cased), ``*.St``
columns become ``LimitState`` and, where ``Low``/``High`` appear, the matching
``Alarm``. Event names map to flags following the reading of the ``Protect ENA``
vocabulary in docs/protocol-notes.md §3.4 (B = battery cell, P = power/module; OV/UV =
protection level, HV/LV = alarm level; OT/UT and HT/LT likewise for
temperature); names without a documented meaning are kept as text in ``extra``.
"""

from __future__ import annotations

from dataclasses import replace

from ..model import (
    Alarm,
    Bank,
    LimitState,
    Module,
    ModuleState,
    Protection,
    cell_extremes,
)
from .console_parsers import (
    BatCell,
    DataRecord,
    EventField,
    InfoRecord,
    PwrDetail,
    PwrRow,
    PwrsysRecord,
    PwrTable,
    SohReport,
    StatRecord,
)

_STATES = {
    "charge": ModuleState.CHARGE,
    "charging": ModuleState.CHARGE,
    "dischg": ModuleState.DISCHARGE,
    "discharge": ModuleState.DISCHARGE,
    "discharging": ModuleState.DISCHARGE,
    "idle": ModuleState.IDLE,
    "sleep": ModuleState.SLEEP,
    "absent": ModuleState.ABSENT,
    "syserror": ModuleState.ERROR,
    "error": ModuleState.ERROR,
}

_LIMITS = {
    "normal": LimitState.NORMAL,
    "low": LimitState.LOW,
    "lower": LimitState.LOW,
    "under": LimitState.LOW,
    "high": LimitState.HIGH,
    "upper": LimitState.HIGH,
    "over": LimitState.HIGH,
    "error": LimitState.ERROR,
    "fault": LimitState.ERROR,
}

# Event and protection names (docs/protocol-notes.md §3.4); `COULFULL` is handled apart.
_NAMED_PROTECTIONS = {
    "BOV": Protection.CELL_OVER_VOLTAGE,
    "BUV": Protection.CELL_UNDER_VOLTAGE,
    "POV": Protection.MODULE_OVER_VOLTAGE,
    "PUV": Protection.MODULE_UNDER_VOLTAGE,
    "CBOT": Protection.CHARGE_OVER_TEMPERATURE,
    "CBUT": Protection.CHARGE_UNDER_TEMPERATURE,
    "DBOT": Protection.DISCHARGE_OVER_TEMPERATURE,
    "DBUT": Protection.DISCHARGE_UNDER_TEMPERATURE,
    "POT": Protection.OVER_TEMPERATURE,
    "PUT": Protection.UNDER_TEMPERATURE,
    "COC": Protection.CHARGE_OVER_CURRENT,
    "COC1": Protection.CHARGE_OVER_CURRENT,  # Pytes `Pwr Protect ENA`
    "COC2": Protection.CHARGE_OVER_CURRENT,
    "DOC": Protection.DISCHARGE_OVER_CURRENT,
    "DOC1": Protection.DISCHARGE_OVER_CURRENT,
    "DOC2": Protection.DISCHARGE_OVER_CURRENT,
    "SC": Protection.SHORT_CIRCUIT,
}
_NAMED_ALARMS = {
    "BHV": Alarm.CELL_HIGH_VOLTAGE,
    "BLV": Alarm.CELL_LOW_VOLTAGE,
    "PHV": Alarm.MODULE_HIGH_VOLTAGE,
    "PLV": Alarm.MODULE_LOW_VOLTAGE,
    "CBHT": Alarm.CHARGE_HIGH_TEMPERATURE,
    "CBLT": Alarm.CHARGE_LOW_TEMPERATURE,
    "DBHT": Alarm.DISCHARGE_HIGH_TEMPERATURE,
    "DBLT": Alarm.DISCHARGE_LOW_TEMPERATURE,
    "PHT": Alarm.HIGH_TEMPERATURE,
    "PLT": Alarm.LOW_TEMPERATURE,
}
FULLY_CHARGED_EVENT = "COULFULL"
# Pytes firmware lists the same families without the B/P prefix, split by field
# (`Bat Protect ENA : OV HV LV UV SLP OT HT LT UT`, `Pwr Protect ENA : OV HV ... SC`):
# the field an unprefixed name stands in says whether it is the cell or the module one.
_UNPREFIXED = frozenset({"OV", "HV", "LV", "UV", "OT", "HT", "LT", "UT"})
_UNPREFIXED_TEMPERATURE = {"OT": "POT", "UT": "PUT", "HT": "PHT", "LT": "PLT"}
#: ``stat`` SOH (and ``pwrsys`` System SOH) of 0 %: US2000C main firmware B68.2 prints 0
#: while its `Soh. Status` reads Normal. A module at 0 % health would not be in service,
#: so 0 means "not reported", never "worn out".
_SOH_NOT_REPORTED = 0.0


def module_state(word: str | None) -> str | None:
    """Name a module state the way the model does.

    ``Charge`` -> ``charge``, ``Dischg`` -> ``discharge``, ``SysError`` -> ``error``;
    other words lower-cased; ``None`` stays ``None``.
    """
    if word is None:
        return None
    lowered = word.strip().lower()
    if not lowered or lowered == "-":
        return None
    known = _STATES.get(lowered)
    return str(known) if known is not None else lowered


def reported_soh(value: float | None) -> float | None:
    """Return a console SOH, or ``None`` where the firmware prints 0 for "not reported"."""
    if value is None or value == _SOH_NOT_REPORTED:
        return None
    return value


def qualify_events(field: EventField | None, prefix: str) -> EventField | None:
    """``Bat Events`` (prefix ``B``) / ``Power Events`` (``P``) with unprefixed names qualified.

    ``OV`` in a `Bat Events` field is ``BOV`` (cell over-voltage), in `Power Events` ``POV``
    (module); temperatures carry no charge/discharge part, so they become the generic
    ``POT``/``PUT``/``PHT``/``PLT``. Prefixed names are kept.
    """
    if field is None or not any(name.upper() in _UNPREFIXED for name in field.names):
        return field
    names: list[str] = []
    for name in field.names:
        upper = name.upper()
        if upper in _UNPREFIXED_TEMPERATURE:
            names.append(_UNPREFIXED_TEMPERATURE[upper])
        elif upper in _UNPREFIXED:
            names.append(prefix + upper)
        else:
            names.append(name)
    return replace(field, names=tuple(names))


def limit_state(word: str | None) -> LimitState | None:
    """``Normal``/``Low``/``High`` (and close synonyms) as ``LimitState``; else ``None``."""
    if word is None:
        return None
    return _LIMITS.get(word.strip().lower())


def event_flags(
    *fields: EventField | None,
) -> tuple[frozenset[Protection], frozenset[Alarm], bool, tuple[str, ...]]:
    """Return the flags event fields name: (protections, alarms, fully_charged, unknown names).

    A non-zero code without any name is reported as its raw text among the unknowns.
    """
    protections: set[Protection] = set()
    alarms: set[Alarm] = set()
    unknown: list[str] = []
    full = False
    for field in fields:
        if field is None:
            continue
        for name in field.names:
            upper = name.upper()
            if upper == FULLY_CHARGED_EVENT:
                full = True
            elif upper in _NAMED_PROTECTIONS:
                protections.add(_NAMED_PROTECTIONS[upper])
            elif upper in _NAMED_ALARMS:
                alarms.add(_NAMED_ALARMS[upper])
            else:
                unknown.append(name)
        if field.code and not field.names:
            unknown.append(field.raw)
    return frozenset(protections), frozenset(alarms), full, tuple(unknown)


def _state_alarms(
    *,
    voltage: str | None = None,
    cell_voltage: str | None = None,
    current: str | None = None,
    current_value: float | None = None,
    temperature: str | None = None,
    cell_temperature: str | None = None,
    mosfet_temperature: str | None = None,
    system_alarm: str | None = None,
) -> frozenset[Alarm]:
    """Alarms implied by ``Low``/``High`` in the state columns."""
    alarms: set[Alarm] = set()
    pairs = (
        (voltage, Alarm.MODULE_LOW_VOLTAGE, Alarm.MODULE_HIGH_VOLTAGE),
        (cell_voltage, Alarm.CELL_LOW_VOLTAGE, Alarm.CELL_HIGH_VOLTAGE),
        (temperature, Alarm.LOW_TEMPERATURE, Alarm.HIGH_TEMPERATURE),
        (cell_temperature, Alarm.LOW_TEMPERATURE, Alarm.HIGH_TEMPERATURE),
        (mosfet_temperature, None, Alarm.MOSFET_HIGH_TEMPERATURE),
    )
    for word, low, high in pairs:
        state = limit_state(word)
        if state is LimitState.LOW and low is not None:
            alarms.add(low)
        elif state is LimitState.HIGH:
            alarms.add(high)
    if limit_state(current) is LimitState.HIGH:
        discharging = current_value is not None and current_value < 0
        alarms.add(Alarm.DISCHARGE_HIGH_CURRENT if discharging else Alarm.CHARGE_HIGH_CURRENT)
    system = limit_state(system_alarm)
    if system_alarm is not None and system is not LimitState.NORMAL:
        alarms.add(Alarm.GENERAL)
    return frozenset(alarms)


def _extra(row: PwrRow) -> tuple[tuple[str, str], ...]:
    """Keep printed values the model has no field for as text (Time, B.V.St, ...)."""
    kept: list[tuple[str, str]] = []
    if row.time is not None:
        kept.append(("time", row.time.isoformat(sep=" ")))
    for name, value in (
        ("cell_voltage_state", row.cell_voltage_state),
        ("cell_temperature_state", row.cell_temperature_state),
        ("mosfet_temperature_state", row.mosfet_temperature_state),
        ("system_alarm_state", row.system_alarm_state),
        ("temperature_low_id", row.temperature_low_id),
        ("temperature_high_id", row.temperature_high_id),
        ("cell_voltage_low_id", row.cell_voltage_low_id),
        ("cell_voltage_high_id", row.cell_voltage_high_id),
    ):
        if value is not None:
            kept.append((name, str(value)))
    return tuple(kept) + row.extra


def module_from_pwr_row(row: PwrRow, *, group: int = 0) -> Module:
    """One ``pwr`` row as a ``Module`` (absent slots carry only their state)."""
    if row.absent:
        return Module(index=row.index, group=group, state=str(ModuleState.ABSENT))
    state = module_state(row.state)
    alarms = _state_alarms(
        voltage=row.voltage_state,
        cell_voltage=row.cell_voltage_state,
        current=row.current_state,
        current_value=row.current,
        temperature=row.temperature_state,
        cell_temperature=row.cell_temperature_state,
        mosfet_temperature=row.mosfet_temperature_state,
        system_alarm=row.system_alarm_state,
    )
    protections = (
        frozenset({Protection.SYSTEM_ERROR}) if state == ModuleState.ERROR else frozenset()
    )
    return Module(
        index=row.index,
        group=group,
        voltage=row.voltage,
        current=row.current,
        temperature=row.temperature,
        temperature_min=row.temperature_low,
        temperature_max=row.temperature_high,
        mosfet_temperature=row.mosfet_temperature,
        cell_voltage_min=row.cell_voltage_low,
        cell_voltage_max=row.cell_voltage_high,
        soc=row.soc,
        state=state,
        voltage_state=limit_state(row.voltage_state),
        current_state=limit_state(row.current_state),
        temperature_state=limit_state(row.temperature_state),
        serial_number=row.barcode,
        model=row.device_type,
        alarms=alarms,
        protections=protections,
        # The state columns are warnings; protections need the `pwr N` events.
        alarms_read=True,
        extra=_extra(row),
    )


def modules_from_pwr(table: PwrTable, *, group: int = 0) -> tuple[Module, ...]:
    """Every ``pwr`` slot as a ``Module`` (absent slots included, state ``absent``)."""
    return tuple(module_from_pwr_row(row, group=group) for row in table.rows)


def bank_from_pwr(table: PwrTable, *, group: int = 0) -> Bank:
    """Build a bank from a ``pwr`` table alone (totals derived from the modules)."""
    return Bank(modules=modules_from_pwr(table, group=group)).with_totals()


def apply_pwr_detail(module: Module, detail: PwrDetail) -> Module:
    """Add ``pwr N`` values: measurements, capacity, states and event flags.

    The event fields are where the console names protections (`BUV`, `COC`, ...) apart
    from warnings (`BLV`, `BHV`, ...): the ``*.St`` columns only say Low/High, which the
    BMS prints for a warning and a protection alike, so they map to alarms.
    """
    protections, alarms, full, unknown = event_flags(
        qualify_events(detail.bat_events, "B"),
        qualify_events(detail.power_events, "P"),
        detail.system_fault,
    )
    if detail.system_fault is not None and detail.system_fault.code:
        protections |= {Protection.SYSTEM_ERROR}
    alarms |= _state_alarms(
        voltage=detail.voltage_state,
        current=detail.current_state,
        current_value=detail.current,
        temperature=detail.temperature_state,
    )
    coulomb = (detail.coulomb_state or "").lower()
    fully_charged = True if full or coulomb == "full" else module.fully_charged
    if fully_charged is None and detail.power_events is not None:
        fully_charged = False
    remaining = None
    if detail.total_capacity is not None and detail.soc is not None:
        remaining = round(detail.total_capacity * detail.soc / 100, 3)
    extra = list(module.extra)
    extra += [("event", name) for name in unknown]
    for name, value in (
        ("coulomb_state", detail.coulomb_state),
        ("soh_state", detail.soh_state),
        ("heater_state", detail.heater_state),
        ("charge_times", detail.charge_times),
    ):
        if value is not None:
            extra.append((name, str(value)))
    extra += list(detail.extra)
    return replace(
        module,
        voltage=detail.voltage if detail.voltage is not None else module.voltage,
        current=detail.current if detail.current is not None else module.current,
        temperature=detail.temperature if detail.temperature is not None else module.temperature,
        soc=detail.soc if detail.soc is not None else module.soc,
        full_capacity=detail.total_capacity
        if detail.total_capacity is not None
        else module.full_capacity,
        remaining_capacity=remaining if remaining is not None else module.remaining_capacity,
        state=module_state(detail.state) or module.state,
        voltage_state=limit_state(detail.voltage_state) or module.voltage_state,
        current_state=limit_state(detail.current_state) or module.current_state,
        temperature_state=limit_state(detail.temperature_state) or module.temperature_state,
        # `info` stays the source of identity; Pytes `pwr N` fills it when `info` was not read.
        serial_number=module.serial_number or detail.barcode,
        model=module.model or detail.device_type,
        firmware=module.firmware or detail.firmware_version,
        fully_charged=fully_charged,
        protections=module.protections | protections,
        alarms=module.alarms | alarms,
        protections_read=True
        if detail.bat_events is not None or detail.power_events is not None
        else module.protections_read,
        alarms_read=True,
        extra=tuple(extra),
    )


def apply_bat(module: Module, cells: tuple[BatCell, ...]) -> Module:
    """Add ``bat N`` cells: voltages, temperatures, per-cell states, balancing."""
    if not cells:
        return module
    voltages = tuple(c.voltage for c in cells if c.voltage is not None)
    temperatures = tuple(c.temperature for c in cells if c.temperature is not None)
    states = tuple(limit_state(c.voltage_state) for c in cells)
    low, high = cell_extremes(voltages)
    alarms = set(module.alarms)
    if LimitState.LOW in states:
        alarms.add(Alarm.CELL_LOW_VOLTAGE)
    if LimitState.HIGH in states:
        alarms.add(Alarm.CELL_HIGH_VOLTAGE)
    balancing = tuple(c.balancing for c in cells)
    return replace(
        module,
        cell_voltages=voltages if len(voltages) == len(cells) else module.cell_voltages,
        cell_temperatures=temperatures
        if len(temperatures) == len(cells)
        else module.cell_temperatures,
        cell_voltage_min=low if low is not None else module.cell_voltage_min,
        cell_voltage_max=high if high is not None else module.cell_voltage_max,
        cell_voltage_states=tuple(s for s in states if s is not None)
        if None not in states
        else module.cell_voltage_states,
        cells_balancing=tuple(b for b in balancing if b is not None)
        if None not in balancing
        else module.cells_balancing,
        alarms=frozenset(alarms),
    )


def apply_info(module: Module, info: InfoRecord) -> Module:
    """Add identity: model = Device name, serial = Barcode, firmware = Main Soft version."""
    firmware = info.main_soft_version or info.soft_version
    extra = list(module.extra)
    for name, value in (
        ("soft_version", info.soft_version),
        ("board_version", info.board_version),
        ("board", info.board),
        ("boot_version", info.boot_version),
        ("comm_version", info.comm_version),
        ("release_date", info.release_date),
        ("specification", info.specification),
        ("cell_count", info.cell_count),
    ):
        if value is not None:
            extra.append((name, str(value)))
    return replace(
        module,
        model=info.device_name or module.model,
        manufacturer=info.manufacturer or module.manufacturer,
        serial_number=info.barcode or module.serial_number,
        firmware=firmware or module.firmware,
        extra=tuple(extra) + info.extra,
    )


def apply_stat(module: Module, stat: StatRecord) -> Module:
    """Add ``stat`` counters (by label), SOH and cycles (``CYCLE Times``); SOH 0 is unreported."""
    soh = reported_soh(stat.soh)
    return replace(
        module,
        counters=stat.counters or module.counters,
        soh=soh if soh is not None else module.soh,
        cycles=stat.cycles if stat.cycles is not None else module.cycles,
    )


def apply_soh(module: Module, report: SohReport) -> Module:
    """Add ``soh N`` cell voltages where ``bat`` did not provide them."""
    voltages = tuple(c.voltage for c in report.cells if c.voltage is not None)
    if module.cell_voltages or len(voltages) != len(report.cells) or not voltages:
        return module
    low, high = cell_extremes(voltages)
    return replace(module, cell_voltages=voltages, cell_voltage_min=low, cell_voltage_max=high)


def module_from_data(record: DataRecord, *, index: int = 1, group: int = 0) -> Module:
    """Map a ``data event``/``data history`` record to a module snapshot (for diagnostics)."""
    protections, alarms, full, unknown = event_flags(
        qualify_events(record.bat_events, "B"),
        qualify_events(record.power_events, "P"),
        record.system_fault,
    )
    state = module_state(record.state)
    if state == ModuleState.ERROR or (record.system_fault and record.system_fault.code):
        protections |= {Protection.SYSTEM_ERROR}
    module = Module(
        index=index,
        group=group,
        voltage=record.voltage,
        current=record.current,
        temperature=record.temperature,
        soc=record.soc,
        full_capacity=record.total_capacity,
        state=state,
        voltage_state=limit_state(record.voltage_state),
        current_state=limit_state(record.current_state),
        temperature_state=limit_state(record.temperature_state),
        fully_charged=True if full else None,
        protections=protections,
        alarms=alarms
        | _state_alarms(
            voltage=record.voltage_state,
            current=record.current_state,
            current_value=record.current,
            temperature=record.temperature_state,
        ),
        extra=tuple(("event", name) for name in unknown) + record.extra,
    )
    return apply_bat(module, record.cells)


def bank_from_pwrsys(record: PwrsysRecord) -> Bank:
    """Stack values from ``pwrsys``: limits (CVL/DVL/CCL/DCL positive), SOC/SOH, counts."""

    def magnitude(value: float | None) -> float | None:
        return abs(value) if value is not None else None

    extra: list[tuple[str, str]] = []
    for name, value in (
        ("status", record.status),
        ("total_count", record.total_count),
        ("sleep_count", record.sleep_count),
        ("cell_voltage_avg", record.cell_voltage_avg),
        ("temperature_min", record.temperature_min),
        ("temperature_max", record.temperature_max),
    ):
        if value is not None:
            extra.append((name, str(value)))
    return Bank(
        voltage=record.voltage,
        current=record.current,
        temperature=record.temperature_avg,
        soc=record.soc,
        soh=reported_soh(record.soh),
        remaining_capacity=record.remaining_capacity,
        full_capacity=record.full_capacity,
        charge_voltage_limit=record.system_charge_voltage
        if record.system_charge_voltage is not None
        else record.charge_voltage,
        discharge_voltage_limit=record.system_discharge_voltage
        if record.system_discharge_voltage is not None
        else record.discharge_voltage,
        charge_current_limit=magnitude(record.system_charge_current),
        discharge_current_limit=magnitude(record.system_discharge_current),
        module_count=record.present_count,
        cell_voltage_min=record.cell_voltage_min,
        cell_voltage_max=record.cell_voltage_max,
        extra=tuple(extra) + record.extra,
    )
