"""RS485 responses to the bank model, and the inverse helpers the simulator serves through.

The mapping of each wire field to a model field is documented on the functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import contextlib
from dataclasses import fields, replace
from typing import Any

from ..errors import ProtocolError
from ..model import (
    Alarm,
    Bank,
    LimitState,
    Module,
    ModuleState,
    Protection,
    cell_extremes,
    merge_modules,
)
from .rs485_frame import module_position
from .rs485_responses import (
    STATUS1_PROTECTIONS,
    AlarmRecord,
    AlarmResponse,
    AnalogRecord,
    AnalogResponse,
    ManagementInfoResponse,
    ManufacturerInfoResponse,
    ProtocolVersionResponse,
    Response,
    SerialNumberResponse,
    SoftwareVersionResponse,
    SystemAnalogResponse,
    SystemParametersResponse,
)

# --------------------------------------------------------------------------- model mapping

MOSFET_SENSOR = 5  # 0-based: the 6th temperature (US5000) is the MOSFET sensor
_CELL_SENSORS = slice(1, 5)  # sensors 2-5 cover the cell groups


def module_from_analog(record: AnalogRecord, index: int, group: int = 0) -> Module:
    """Build a module from its 0x42 record.

    temperature = sensor 1 (BMS board); mosfet_temperature = 6th sensor when present;
    temperature_min/max = over the cell-group sensors 2-5; SOC = remaining / full * 100
    (None when full is 0); capacities in Ah; cell min/max from the cell voltages.
    """
    temps = record.temperatures
    cell_temps = temps[_CELL_SENSORS]
    low, high = cell_extremes(record.cell_voltages)
    full = record.full_capacity
    return Module(
        index=index,
        group=group,
        voltage=record.voltage,
        current=record.current,
        temperature=temps[0] if temps else None,
        temperatures=temps,
        temperature_min=min(cell_temps) if cell_temps else None,
        temperature_max=max(cell_temps) if cell_temps else None,
        mosfet_temperature=temps[MOSFET_SENSOR] if len(temps) > MOSFET_SENSOR else None,
        cell_voltages=record.cell_voltages,
        cell_voltage_min=low,
        cell_voltage_max=high,
        soc=round(100 * record.remaining_capacity / full, 1) if full > 0 else None,
        cycles=record.cycles,
        remaining_capacity=record.remaining_capacity,
        full_capacity=full,
    )


def response_positions(response: AnalogResponse | AlarmResponse) -> tuple[tuple[int, int], ...]:
    """``(index, group)`` of each record: ADR for single, 1..count in ADR's group for 0xFF."""
    try:
        index, group = module_position(response.adr) if response.adr >= 1 else (1, 0)
    except ValueError as err:  # wire data: only the ProtocolError family may escape
        raise ProtocolError(f"answer from {err}") from err
    if response.all_modules:
        return tuple((n + 1, group) for n in range(len(response.records)))
    if response.command >= 1:
        with contextlib.suppress(ValueError):
            index, group = module_position(response.command)
    return ((index, group),)


def modules_from_analog(response: AnalogResponse) -> tuple[Module, ...]:
    """All modules of a 0x42 response, placed by :func:`response_positions`."""
    return tuple(
        module_from_analog(record, index, group)
        for record, (index, group) in zip(
            response.records, response_positions(response), strict=True
        )
    )


_SEVERITY = {LimitState.NORMAL: 0, LimitState.LOW: 1, LimitState.HIGH: 2, LimitState.ERROR: 3}


def _worst(states: Iterable[LimitState]) -> LimitState:
    return max(states, key=_SEVERITY.__getitem__, default=LimitState.NORMAL)


def alarm_fields(record: AlarmRecord) -> dict[str, Any]:
    """Return the model fields of a 0x44 record (the documented mapping).

    * cell state LOW/HIGH -> ``CELL_UNDER_VOLTAGE``/``CELL_OVER_VOLTAGE`` (states "act as
      protections", docs/protocol-notes.md §1.7); ERROR -> ``Alarm.CELL_VOLTAGE_ERROR``;
    * temperature state LOW -> ``UNDER_TEMPERATURE``; HIGH -> ``OVER_TEMPERATURE`` (6th
      sensor: ``MOSFET_OVER_TEMPERATURE``); ERROR -> ``Alarm.TEMPERATURE_SENSOR_ERROR``;
    * module voltage LOW/HIGH -> ``MODULE_UNDER_VOLTAGE``/``MODULE_OVER_VOLTAGE``;
    * charge/discharge current HIGH -> ``CHARGE_OVER_CURRENT``/``DISCHARGE_OVER_CURRENT``
      (LOW has no documented meaning for a current and maps to nothing);
      voltage/current ERROR -> ``Alarm.GENERAL``;
    * Status 1 bits -> their protections; Status 4/5 cell bits -> ``CELL_VOLTAGE_ERROR``;
    * Status 2 -> charge/discharge MOSFET; Status 3 -> fully_charged and
      state charge/discharge/idle (effective current flags).

    ``current_state`` is the worse of the two current states; ``temperature_state`` the
    worst sensor state.
    """
    protections = set(record.status_protections)
    alarms: set[Alarm] = set()
    cells = set(record.cell_states)
    if LimitState.LOW in cells:
        protections.add(Protection.CELL_UNDER_VOLTAGE)
    if LimitState.HIGH in cells:
        protections.add(Protection.CELL_OVER_VOLTAGE)
    if LimitState.ERROR in cells or record.status4 or record.status5:
        alarms.add(Alarm.CELL_VOLTAGE_ERROR)
    for number, state in enumerate(record.temperature_states):
        if state is LimitState.LOW:
            protections.add(Protection.UNDER_TEMPERATURE)
        elif state is LimitState.HIGH:
            protections.add(
                Protection.MOSFET_OVER_TEMPERATURE
                if number == MOSFET_SENSOR
                else Protection.OVER_TEMPERATURE
            )
        elif state is LimitState.ERROR:
            alarms.add(Alarm.TEMPERATURE_SENSOR_ERROR)
    if record.voltage_state is LimitState.LOW:
        protections.add(Protection.MODULE_UNDER_VOLTAGE)
    elif record.voltage_state is LimitState.HIGH:
        protections.add(Protection.MODULE_OVER_VOLTAGE)
    if record.charge_current_state is LimitState.HIGH:
        protections.add(Protection.CHARGE_OVER_CURRENT)
    if record.discharge_current_state is LimitState.HIGH:
        protections.add(Protection.DISCHARGE_OVER_CURRENT)
    if LimitState.ERROR in (
        record.voltage_state,
        record.charge_current_state,
        record.discharge_current_state,
    ):
        alarms.add(Alarm.GENERAL)
    if record.charging:
        operating = ModuleState.CHARGE
    elif record.discharging:
        operating = ModuleState.DISCHARGE
    else:
        operating = ModuleState.IDLE
    return {
        "cell_voltage_states": record.cell_states,
        "temperature_states": record.temperature_states,
        "voltage_state": record.voltage_state,
        "current_state": _worst((record.charge_current_state, record.discharge_current_state)),
        "temperature_state": _worst(record.temperature_states),
        "charge_mosfet": record.charge_mosfet,
        "discharge_mosfet": record.discharge_mosfet,
        "fully_charged": record.fully_charged,
        "state": str(operating),
        "protections": frozenset(protections),
        "alarms": frozenset(alarms),
        "protections_read": True,
        "alarms_read": True,
    }


def apply_alarm(module: Module, record: AlarmRecord) -> Module:
    """Return ``module`` with the fields of a 0x44 record (see :func:`alarm_fields`)."""
    return replace(module, **alarm_fields(record))


def modules_from_alarm(response: AlarmResponse) -> tuple[Module, ...]:
    """Modules carrying only 0x44 fields, placed by :func:`response_positions`."""
    return tuple(
        apply_alarm(Module(index=index, group=group), record)
        for record, (index, group) in zip(
            response.records, response_positions(response), strict=True
        )
    )


def module_management_fields(response: ManagementInfoResponse) -> dict[str, Any]:
    """Return the fields of one module's 0x92: its four limits (DCL as a positive magnitude)."""
    return {
        "charge_voltage_limit": response.charge_voltage_limit,
        "discharge_voltage_limit": response.discharge_voltage_limit,
        "charge_current_limit": response.charge_current_limit,
        "discharge_current_limit": abs(response.discharge_current_limit),
    }


def bank_limits_from_modules(
    answers: Mapping[Any, ManagementInfoResponse], present: Iterable[Any]
) -> dict[str, Any]:
    """Bank limits and flags from the 0x92 answers of the present modules.

    0x92 answers for the module asked (the command byte is its ADR), so the master's answer
    is one module's limits: a 4 x US3000C bank answers 37 A per module, while the bank takes
    148 A (what CAN 0x351 and the console's ``pwrsys`` "system Recommend" carry). The bank's
    values are therefore derived, and only when every present module answered (a partial
    sum would understate the bank, and a missing module may be the one asking to stop):

    * charge/discharge enabled: every module allows it; one module asking to stop stops the
      bank (the stack-wide request the master's CAN 0x35C sends);
    * current limits: modules in parallel share the current, so the bank takes the sum of
      their limits; 0 while the bank is not enabled in that direction;
    * voltage limits: the bank shares one bus voltage, so the most conservative module
      decides: the lowest charge voltage limit, the highest discharge voltage limit;
    * force-charge and full-charge requests: any module asking.

    Returns ``{}`` when a present module has no answer (the bank limits are then unknown).
    """
    indexes = tuple(present)
    if not indexes or any(index not in answers for index in indexes):
        return {}
    limits = [answers[index] for index in indexes]
    charge = all(r.charge_enabled for r in limits)
    discharge = all(r.discharge_enabled for r in limits)
    return {
        "charge_voltage_limit": min(r.charge_voltage_limit for r in limits),
        "discharge_voltage_limit": max(r.discharge_voltage_limit for r in limits),
        "charge_current_limit": (
            round(sum(r.charge_current_limit for r in limits), 1) if charge else 0.0
        ),
        "discharge_current_limit": (
            round(sum(abs(r.discharge_current_limit) for r in limits), 1) if discharge else 0.0
        ),
        "charge_enabled": charge,
        "discharge_enabled": discharge,
        "force_charge_1": any(r.force_charge_1 for r in limits),
        "force_charge_2": any(r.force_charge_2 for r in limits),
        "full_charge_request": any(r.full_charge_request for r in limits),
    }


def management_fields(response: ManagementInfoResponse) -> dict[str, Any]:
    """Bank fields from one 0x92 answer (a one-module bank): limits and request flags.

    For a bank of several modules use :func:`bank_limits_from_modules`: one answer is one
    module's limits.
    """
    return {
        "charge_voltage_limit": response.charge_voltage_limit,
        "discharge_voltage_limit": response.discharge_voltage_limit,
        "charge_current_limit": response.charge_current_limit,
        "discharge_current_limit": abs(response.discharge_current_limit),
        "charge_enabled": response.charge_enabled,
        "discharge_enabled": response.discharge_enabled,
        "force_charge_1": response.force_charge_1,
        "force_charge_2": response.force_charge_2,
        "full_charge_request": response.full_charge_request,
    }


def apply_management(bank: Bank, response: ManagementInfoResponse) -> Bank:
    """``bank`` with the 0x92 limits and flags of its only module."""
    return replace(bank, **management_fields(response))


def system_analog_fields(response: SystemAnalogResponse) -> dict[str, Any]:
    """Bank fields from a 0x61 stack summary.

    voltage, current, SOC, SOH (average), cell voltage extremes and temperature (the
    average cell temperature: the battery temperature CAN 0x356 reports for the stack); the
    cycle counts and the lowest SOH, which the bank model has no field for, go to ``extra``
    as text.
    """
    r = response
    return {
        "voltage": r.voltage,
        "current": r.current,
        "soc": float(r.soc),
        "soh": float(r.soh_average),
        "cell_voltage_min": r.cell_voltage_min,
        "cell_voltage_max": r.cell_voltage_max,
        "temperature": r.cell_temperature_average,
        "extra": (
            ("system_cycles_average", str(r.cycles_average)),
            ("system_cycles_max", str(r.cycles_max)),
            ("system_soh_min", str(r.soh_min)),
        ),
    }


# 0x51's manufacturer field is 20 bytes; Pylontech firmware fills it with "Pylon" (captures
# RS-51-*: ``Pylon---------------``), the company the console and CAN name "Pylontech".
_MANUFACTURER_NAMES = {"PYLON": "Pylontech"}


def manufacturer_name(text: str) -> str:
    """Return the manufacturer 0x51 names, with Pylontech's short form spelled out."""
    return _MANUFACTURER_NAMES.get(text.strip().upper(), text)


#: Rated capacities of one model agree within this fraction (0x42 reports the rated value:
#: 50 Ah US2000, 74 Ah US3000C, 100 Ah US5000 in the captures and manuals).
SAME_RATING_TOLERANCE = 0.1


def same_rating(capacity: float | None, reference: float | None) -> bool:
    """Tell whether two modules' rated (full) capacities say they are the same model."""
    if capacity is None or reference is None or reference <= 0:
        return False
    return abs(capacity - reference) <= SAME_RATING_TOLERANCE * reference


def stack_identity_fields(manufacturer_info: ManufacturerInfoResponse) -> dict[str, Any]:
    """Model and manufacturer every module of the stack gets from the master's 0x51.

    The master answers 0x51 for the stack (docs/protocol-notes.md §1.5: ADR 2 and ADR 3 gave
    the same record), and no other RS485 command names a module's model.
    """
    out: dict[str, Any] = {}
    if manufacturer_info.device_name:
        out["model"] = manufacturer_info.device_name
    if manufacturer_info.manufacturer:
        out["manufacturer"] = manufacturer_name(manufacturer_info.manufacturer)
    return out


def identity_fields(
    *,
    manufacturer_info: ManufacturerInfoResponse | None = None,
    serial: SerialNumberResponse | None = None,
    software: SoftwareVersionResponse | None = None,
) -> dict[str, Any]:
    """Identity fields (valid for ``Module`` and ``Bank``) from 0x51/0x93/0x96.

    model = 0x51 device name; manufacturer = 0x51 manufacturer ("Pylon" spelled out as
    "Pylontech", :func:`manufacturer_name`); serial_number = 0x93;
    firmware = 0x96 manufacturer version ("2.3"), else 0x51 software version. The 0x96
    main-line version goes to ``extra`` as ``("mainline_version", "0.6.5")`` by
    :func:`apply_identity`.
    """
    out: dict[str, Any] = {}
    if manufacturer_info is not None:
        out.update(stack_identity_fields(manufacturer_info))
        out["firmware"] = manufacturer_info.software_version_text
    if serial is not None and serial.serial_number:
        out["serial_number"] = serial.serial_number
    if software is not None:
        out["firmware"] = software.manufacturer_version_text
    return out


def apply_identity(
    target: Any,
    *,
    manufacturer_info: ManufacturerInfoResponse | None = None,
    serial: SerialNumberResponse | None = None,
    software: SoftwareVersionResponse | None = None,
) -> Any:
    """``target`` (a ``Module`` or ``Bank``) with identity fields set (see :func:`identity_fields`)."""
    updates = identity_fields(manufacturer_info=manufacturer_info, serial=serial, software=software)
    if software is not None:
        extra = tuple(kv for kv in target.extra if kv[0] != "mainline_version")
        updates["extra"] = (*extra, ("mainline_version", software.mainline_version_text))
    return replace(target, **updates)


def system_parameters_extra(response: SystemParametersResponse) -> tuple[tuple[str, str], ...]:
    """0x47 limits as ``extra`` text pairs (the model has no fields for module settings)."""
    return tuple(
        (f.name, f"{getattr(response, f.name):g}")
        for f in fields(response)
        if f.name not in ("adr", "info_flag")
    )


def _identity_position(
    response: SerialNumberResponse | SoftwareVersionResponse | ManagementInfoResponse,
) -> tuple[int, int]:
    # The command byte names the module (ADR); fall back to the frame's ADR.
    for adr in (response.command, response.adr):
        try:
            return module_position(adr)
        except ValueError:
            continue
    return (1, 0)


def bank_from_responses(responses: Iterable[Response], *, totals: bool = True) -> Bank:
    """Merge the typed responses of one poll into a ``Bank``.

    0x42 builds modules; 0x44 adds states/flags; 0x93/0x96 add module identity (placed by
    their command byte); 0x51 gives bank model/manufacturer/firmware and every module the
    stack's model and manufacturer; 0x4F the protocol version; 0x92 each module's limits
    (placed by its command byte) and, when every module answered, the bank limits and flags
    (:func:`bank_limits_from_modules`); 0x61 the bank values it carries; 0x47 is kept in
    each module's ``extra`` only when that module is present. ``totals`` fills bank values
    from the modules (:meth:`Bank.with_totals`).
    """
    modules: dict[tuple[int, int], Module] = {}
    bank: dict[str, Any] = {}
    later: list[Response] = []
    limits: dict[tuple[int, int], ManagementInfoResponse] = {}
    stack: dict[str, Any] = {}

    def at(key: tuple[int, int]) -> Module:
        return modules.get(key) or Module(index=key[1], group=key[0])

    for response in responses:
        if isinstance(response, AnalogResponse):
            for module in modules_from_analog(response):
                known = modules.get(module.key)
                modules[module.key] = module if known is None else merge_modules(known, module)
        elif isinstance(response, AlarmResponse):
            positions = response_positions(response)
            for record, (index, group) in zip(response.records, positions, strict=True):
                modules[(group, index)] = apply_alarm(at((group, index)), record)
        elif isinstance(response, ManagementInfoResponse):
            index, group = _identity_position(response)
            limits[(group, index)] = response
        elif isinstance(response, ManufacturerInfoResponse):
            bank.update(identity_fields(manufacturer_info=response))
            stack = stack_identity_fields(response)
        elif isinstance(response, SystemAnalogResponse):
            fields_61 = system_analog_fields(response)
            bank["extra"] = (*bank.get("extra", ()), *fields_61.pop("extra"))
            bank.update(fields_61)
        elif isinstance(response, ProtocolVersionResponse):
            bank["protocol_version"] = response.text
        else:
            later.append(response)
    for response in later:  # identity and settings attach to modules read above
        if isinstance(response, SerialNumberResponse):
            index, group = _identity_position(response)
            modules[(group, index)] = apply_identity(at((group, index)), serial=response)
        elif isinstance(response, SoftwareVersionResponse):
            index, group = _identity_position(response)
            modules[(group, index)] = apply_identity(at((group, index)), software=response)
        elif isinstance(response, SystemParametersResponse):
            try:
                index, group = module_position(response.adr)
            except ValueError:
                continue
            if (group, index) in modules:
                module = modules[(group, index)]
                extra = dict(module.extra)
                extra.update(system_parameters_extra(response))
                modules[(group, index)] = replace(module, extra=tuple(extra.items()))
    for key, answer in limits.items():
        modules[key] = replace(at(key), **module_management_fields(answer))
    if stack:
        for key, module in modules.items():
            master = modules.get((key[0], 1))
            reference = None if master is None else master.full_capacity
            updates = dict(stack)
            if key[1] != 1 and not same_rating(module.full_capacity, reference):
                updates.pop("model", None)  # another model in a mixed stack: unknown
            modules[key] = replace(module, **updates)
    bank.update(bank_limits_from_modules(limits, modules))
    result = Bank(modules=tuple(modules[key] for key in sorted(modules)), **bank)
    return result.with_totals() if totals else result


# Inverse helpers: the simulator serves its model through these.


def analog_record_from_module(module: Module, *, user_defined: int | None = None) -> AnalogRecord:
    """Build a 0x42 record from a module's values (the simulator's view of a module).

    ``user_defined`` defaults to 4 when the full capacity exceeds 65.535 Ah, else 2.
    Missing values are sent as 0.
    """
    full = module.full_capacity or 0.0
    remaining = module.remaining_capacity or 0.0
    if user_defined is None:
        user_defined = 4 if max(round(full * 1000), round(remaining * 1000)) > 0xFFFF else 2
    return AnalogRecord(
        cell_voltages=module.cell_voltages,
        temperatures=module.temperatures,
        current=module.current or 0.0,
        voltage=module.voltage or 0.0,
        remaining_capacity=remaining,
        full_capacity=full,
        cycles=module.cycles or 0,
        user_defined=user_defined,
    )


def _mark(states: list[LimitState], position: int, state: LimitState) -> None:
    if states and state not in states:
        states[min(position, len(states) - 1)] = state


def alarm_record_from_module(module: Module, *, extra: bytes = b"") -> AlarmRecord:
    """Build a 0x44 record that :func:`alarm_fields` maps back to the module's flags.

    Representable: the Status 1 protections, CELL_OVER_VOLTAGE (highest cell HIGH),
    OVER/UNDER_TEMPERATURE (a cell-group sensor HIGH/LOW; CHARGE_/DISCHARGE_UNDER_TEMPERATURE
    map to UNDER_TEMPERATURE), MOSFET_OVER_TEMPERATURE (6th sensor HIGH), the error alarms.
    Others (short circuit, reverse polarity ...) have no 0x44 encoding and are dropped.
    """
    protections = module.protections
    alarms = module.alarms
    cell_count = len(module.cell_voltages)
    cells = list(module.cell_voltage_states)
    if len(cells) != cell_count:
        cells = [LimitState.NORMAL] * cell_count
    if Protection.CELL_OVER_VOLTAGE in protections and cells:
        _mark(cells, module.cell_voltages.index(max(module.cell_voltages)), LimitState.HIGH)
    sensors = len(module.temperatures)
    temps = list(module.temperature_states)
    if len(temps) != sensors:
        temps = [LimitState.NORMAL] * sensors
    cell_sensor = 1 if sensors > 1 else 0
    if Protection.OVER_TEMPERATURE in protections:
        _mark(temps, cell_sensor, LimitState.HIGH)
    if protections & {
        Protection.UNDER_TEMPERATURE,
        Protection.CHARGE_UNDER_TEMPERATURE,
        Protection.DISCHARGE_UNDER_TEMPERATURE,
    }:
        _mark(temps, cell_sensor, LimitState.LOW)
    if Protection.MOSFET_OVER_TEMPERATURE in protections and sensors > MOSFET_SENSOR:
        temps[MOSFET_SENSOR] = LimitState.HIGH
    if Alarm.TEMPERATURE_SENSOR_ERROR in alarms:
        _mark(temps, 0, LimitState.ERROR)
    status1 = 0
    for bit, protection in STATUS1_PROTECTIONS:
        if protection in protections:
            status1 |= bit
    # CAN-style generic members: the module-level bit is the closest 0x44 encoding.
    if Protection.OVER_VOLTAGE in protections:
        status1 |= 0x01
    if Protection.UNDER_VOLTAGE in protections:
        status1 |= 0x80
    cell_bits = 0
    for number, state in enumerate(cells[:16]):
        if state is LimitState.ERROR:
            cell_bits |= 1 << number
    if Alarm.CELL_VOLTAGE_ERROR in alarms and not cell_bits:
        cell_bits = 1
    current = module.current or 0.0
    status2 = (
        0x08
        | (0x04 if module.discharge_mosfet is not False else 0)
        | (0x02 if module.charge_mosfet is not False else 0)
    )
    status3 = (0x80 if current > 0.1 else 0) | (0x40 if current < -0.1 else 0)
    if module.fully_charged:
        status3 |= 0x08
    charge_state = discharge_state = LimitState.NORMAL
    if module.current_state is not None and module.current_state is not LimitState.HIGH:
        if current >= 0:
            charge_state = module.current_state
        else:
            discharge_state = module.current_state
    voltage_state = module.voltage_state or LimitState.NORMAL
    if voltage_state is LimitState.HIGH and Protection.MODULE_OVER_VOLTAGE not in protections:
        voltage_state = LimitState.NORMAL
    if voltage_state is LimitState.LOW and Protection.MODULE_UNDER_VOLTAGE not in protections:
        voltage_state = LimitState.NORMAL
    return AlarmRecord(
        cell_states=tuple(cells),
        temperature_states=tuple(temps),
        charge_current_state=charge_state,
        voltage_state=voltage_state,
        discharge_current_state=discharge_state,
        status1=status1,
        status2=status2,
        status3=status3,
        status4=cell_bits & 0xFF,
        status5=cell_bits >> 8,
        extra=extra,
    )


__all__ = [
    "MOSFET_SENSOR",
    "alarm_fields",
    "alarm_record_from_module",
    "analog_record_from_module",
    "apply_alarm",
    "apply_identity",
    "apply_management",
    "bank_from_responses",
    "bank_limits_from_modules",
    "identity_fields",
    "management_fields",
    "manufacturer_name",
    "module_from_analog",
    "module_management_fields",
    "modules_from_alarm",
    "modules_from_analog",
    "response_positions",
    "same_rating",
    "stack_identity_fields",
    "system_analog_fields",
    "system_parameters_extra",
]
