"""Which link carries which value and which flag: the one capability table.

Every value and every flag has, per link, one of three answers: the link carries it and it
is known now; the link carries it but it is not known now (unknown / unavailable); the link
cannot carry it. This module answers the third question once, for every link (and, for CAN,
per frame set): the Home Assistant side creates an entity only where some configured link
carries its value, marks it unavailable when every live link that could carry it is gone,
and README's "Which link gives which data" table is rendered from here (``scripts/link_table``).

Values are ``Bank``/``Module`` field names (``core/model.py``); a bank value a link derives
from its modules (``Bank.with_totals``) counts as carried. Flags are ``Protection``/``Alarm``
members. Each row lists what the codec really decodes today (the tests decode frames with
every bit set and check the flags found are in the row):

* CAN (PYLON LV CAN protocol V1.2, ``core/protocol/can.py``): 0x351 limits, 0x355 SOC/SOH,
  0x356 voltage/current/temperature, 0x35E manufacturer; frame set "v1.2" adds 0x359
  (protections, alarms, module count) and 0x35C (request flags); "v1.3" adds 0x35A
  (SMA/Victron alarm/warning pairs) and 0x35F (capacity). CAN has no per-module data.
* RS485 (Pylontech RS485 protocol V3.3, ``core/protocol/rs485_model.py``): 0x42 analog and
  0x44 alarm data per module, 0x92 limits and request flags, 0x51/0x93/0x96 identity.
* Console (RS232 shell, ``core/protocol/console_mapping.py``): ``pwr`` table per module,
  ``pwr N`` event words (protections) and capacity, ``bat N`` cells, ``info N`` identity, ``stat N`` SOH/cycles/counters, ``pwrsys`` stack
  values and limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from .model import Alarm, Protection

Flag = Protection | Alarm  # no `type` statement: the core runs on Python 3.11


class LinkKind(StrEnum):
    """The three links; values match the config entry's ``link`` key."""

    CAN = "can"
    RS485 = "rs485"
    CONSOLE = "console"


class CanFrameSet(StrEnum):
    """The two CAN broadcast frame sets (``core/protocol/can.py`` ``Firmware``)."""

    V1_2 = "v1.2"
    V1_3 = "v1.3"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkCapability:
    """What one link (one CAN frame set) can carry.

    ``bank_flags`` are flags the link reports for the whole bank; ``module_flags`` those it
    reports per module (a bank entity also shows every module's flags).
    """

    bank_values: frozenset[str] = frozenset()
    module_values: frozenset[str] = frozenset()
    bank_flags: frozenset[Flag] = frozenset()
    module_flags: frozenset[Flag] = frozenset()

    def __or__(self, other: LinkCapability) -> LinkCapability:
        """Return what either of two links carries."""
        return LinkCapability(
            bank_values=self.bank_values | other.bank_values,
            module_values=self.module_values | other.module_values,
            bank_flags=self.bank_flags | other.bank_flags,
            module_flags=self.module_flags | other.module_flags,
        )

    @property
    def all_bank_flags(self) -> frozenset[Flag]:
        """Flags a bank entity can show: the bank's own and every module's."""
        return self.bank_flags | self.module_flags

    def carries_bank(self, *names: str) -> bool:
        """Whether every one of ``names`` is a bank value this link carries."""
        return all(name in self.bank_values for name in names)

    def carries_module(self, *names: str) -> bool:
        """Whether every one of ``names`` is a module value this link carries."""
        return all(name in self.module_values for name in names)


NOTHING: Final = LinkCapability()

P, A = Protection, Alarm

# --- CAN -------------------------------------------------------------------------------

_CAN_COMMON_VALUES = frozenset(
    {
        # 0x351
        "charge_voltage_limit",
        "discharge_voltage_limit",
        "charge_current_limit",
        "discharge_current_limit",
        # 0x355
        "soc",
        "soh",
        # 0x356
        "voltage",
        "current",
        "temperature",
        # 0x35E
        "manufacturer",
    }
)

CAN_V1_2: Final = LinkCapability(
    bank_values=_CAN_COMMON_VALUES
    | {
        "module_count",  # 0x359 byte 4
        # 0x35C
        "charge_enabled",
        "discharge_enabled",
        "force_charge_1",
        "force_charge_2",
        "full_charge_request",
    },
    # 0x359 bytes 0-1 (protection) and 2-3 (alarm), PYLON LV CAN protocol V1.2.
    bank_flags=frozenset(
        {
            P.OVER_VOLTAGE,
            P.UNDER_VOLTAGE,
            P.OVER_TEMPERATURE,
            P.UNDER_TEMPERATURE,
            P.DISCHARGE_OVER_CURRENT,
            P.CHARGE_OVER_CURRENT,
            P.SYSTEM_ERROR,
            A.HIGH_VOLTAGE,
            A.LOW_VOLTAGE,
            A.HIGH_TEMPERATURE,
            A.LOW_TEMPERATURE,
            A.DISCHARGE_HIGH_CURRENT,
            A.CHARGE_HIGH_CURRENT,
            A.INTERNAL_COMMUNICATION_FAIL,
        }
    ),
)

CAN_V1_3: Final = LinkCapability(
    bank_values=_CAN_COMMON_VALUES | {"full_capacity"},  # 0x35F capacity
    # 0x35A SMA/Victron alarm (protection) and warning slots.
    bank_flags=frozenset(
        {
            P.GENERAL,
            P.OVER_VOLTAGE,
            P.UNDER_VOLTAGE,
            P.OVER_TEMPERATURE,
            P.UNDER_TEMPERATURE,
            P.CHARGE_OVER_TEMPERATURE,
            P.CHARGE_UNDER_TEMPERATURE,
            P.DISCHARGE_OVER_CURRENT,
            P.CHARGE_OVER_CURRENT,
            P.SYSTEM_ERROR,
            P.SHORT_CIRCUIT,
            A.CELL_IMBALANCE,
            A.GENERAL,
            A.HIGH_VOLTAGE,
            A.LOW_VOLTAGE,
            A.HIGH_TEMPERATURE,
            A.LOW_TEMPERATURE,
            A.CHARGE_HIGH_TEMPERATURE,
            A.CHARGE_LOW_TEMPERATURE,
            A.DISCHARGE_HIGH_CURRENT,
            A.CHARGE_HIGH_CURRENT,
            A.INTERNAL_COMMUNICATION_FAIL,
        }
    ),
)

CAN_FRAME_SETS: Final[Mapping[CanFrameSet, LinkCapability]] = MappingProxyType(
    {CanFrameSet.V1_2: CAN_V1_2, CanFrameSet.V1_3: CAN_V1_3}
)

# --- RS485 -----------------------------------------------------------------------------

RS485: Final = LinkCapability(
    bank_values=frozenset(
        {
            # derived from every present module's 0x92 (rs485_model.bank_limits_from_modules)
            "charge_voltage_limit",
            "discharge_voltage_limit",
            "charge_current_limit",
            "discharge_current_limit",
            "charge_enabled",
            "discharge_enabled",
            "force_charge_1",
            "force_charge_2",
            "full_charge_request",
            # 0x4F / 0x51 of the master
            "protocol_version",
            "manufacturer",
            "model",
            # 0x61 (V3.5 system analog data), only where the master answers it
            "soh",
            # derived from the modules (Bank.with_totals)
            "voltage",
            "current",
            "temperature",
            "soc",
            "remaining_capacity",
            "full_capacity",
            "cell_voltage_min",
            "cell_voltage_max",
            "module_count",
            "serial_number",
            "firmware",
        }
    ),
    module_values=frozenset(
        {
            # 0x42
            "voltage",
            "current",
            "temperature",
            "temperatures",
            "temperature_min",
            "temperature_max",
            "mosfet_temperature",
            "cell_voltages",
            "cell_voltage_min",
            "cell_voltage_max",
            "soc",
            "cycles",
            "remaining_capacity",
            "full_capacity",
            # 0x44
            "cell_voltage_states",
            "temperature_states",
            "voltage_state",
            "current_state",
            "temperature_state",
            "charge_mosfet",
            "discharge_mosfet",
            "fully_charged",
            "state",
            # 0x51 (master) / 0x93 / 0x96
            "manufacturer",
            "model",
            "serial_number",
            "firmware",
            # 0x92 answered per module
            "charge_voltage_limit",
            "discharge_voltage_limit",
            "charge_current_limit",
            "discharge_current_limit",
        }
    ),
    # 0x44 value states and Status 1..5 (rs485_model.alarm_fields).
    module_flags=frozenset(
        {
            P.CELL_OVER_VOLTAGE,
            P.CELL_UNDER_VOLTAGE,
            P.MODULE_OVER_VOLTAGE,
            P.MODULE_UNDER_VOLTAGE,
            P.OVER_TEMPERATURE,
            P.UNDER_TEMPERATURE,
            P.MOSFET_OVER_TEMPERATURE,
            P.CHARGE_OVER_TEMPERATURE,
            P.DISCHARGE_OVER_TEMPERATURE,
            P.CHARGE_OVER_CURRENT,
            P.DISCHARGE_OVER_CURRENT,
            A.CELL_VOLTAGE_ERROR,
            A.TEMPERATURE_SENSOR_ERROR,
            A.GENERAL,
        }
    ),
)

# --- console ---------------------------------------------------------------------------

CONSOLE: Final = LinkCapability(
    bank_values=frozenset(
        {
            # pwrsys (and, where a firmware lacks it, derived from the modules)
            "voltage",
            "current",
            "temperature",
            "soc",
            "soh",
            "remaining_capacity",
            "full_capacity",
            "charge_voltage_limit",
            "discharge_voltage_limit",
            "charge_current_limit",
            "discharge_current_limit",
            "module_count",
            "cell_voltage_min",
            "cell_voltage_max",
            # the master's `info`
            "manufacturer",
            "model",
            "serial_number",
            "firmware",
        }
    ),
    module_values=frozenset(
        {
            # pwr
            "voltage",
            "current",
            "temperature",
            "temperature_min",
            "temperature_max",
            "mosfet_temperature",
            "cell_voltage_min",
            "cell_voltage_max",
            "soc",
            "state",
            "voltage_state",
            "current_state",
            "temperature_state",
            # pwr N (Total Coulomb, Coulomb, Coul. Status / COULFULL)
            "full_capacity",
            "remaining_capacity",
            "fully_charged",
            # bat N
            "cell_voltages",
            "cell_temperatures",
            "cell_voltage_states",
            "cells_balancing",
            # info N
            "manufacturer",
            "model",
            "serial_number",
            "firmware",
            # stat N
            "soh",
            "cycles",
            "counters",
        }
    ),
    # Protections only from what names them: the `pwr N` event words (`Bat Events` /
    # `Power Events`: BOV BUV POV PUV CBOT CBUT DBOT DBUT POT PUT COC DOC SC, the `Protect
    # ENA` vocabulary), a non-zero `System Fault` and the SysError state. The pwr/bat state
    # columns say only Low/High, which the BMS prints for a warning and a protection alike,
    # so they are warnings here. Nothing names reverse polarity, a MOSFET over-temperature
    # protection or a general protection: no entity for those on the console.
    module_flags=frozenset(
        {
            P.CELL_OVER_VOLTAGE,
            P.CELL_UNDER_VOLTAGE,
            P.MODULE_OVER_VOLTAGE,
            P.MODULE_UNDER_VOLTAGE,
            P.OVER_TEMPERATURE,
            P.UNDER_TEMPERATURE,
            P.CHARGE_OVER_TEMPERATURE,
            P.CHARGE_UNDER_TEMPERATURE,
            P.DISCHARGE_OVER_TEMPERATURE,
            P.DISCHARGE_UNDER_TEMPERATURE,
            P.CHARGE_OVER_CURRENT,
            P.DISCHARGE_OVER_CURRENT,
            P.SHORT_CIRCUIT,
            P.SYSTEM_ERROR,
            A.MODULE_HIGH_VOLTAGE,
            A.MODULE_LOW_VOLTAGE,
            A.CELL_HIGH_VOLTAGE,
            A.CELL_LOW_VOLTAGE,
            A.HIGH_TEMPERATURE,
            A.LOW_TEMPERATURE,
            A.CHARGE_HIGH_TEMPERATURE,
            A.CHARGE_LOW_TEMPERATURE,
            A.DISCHARGE_HIGH_TEMPERATURE,
            A.DISCHARGE_LOW_TEMPERATURE,
            A.MOSFET_HIGH_TEMPERATURE,
            A.CHARGE_HIGH_CURRENT,
            A.DISCHARGE_HIGH_CURRENT,
            A.GENERAL,
        }
    ),
)

# --- the table ---------------------------------------------------------------------------

#: Every link's row; CAN's is what either frame set carries (use :func:`capability` with
#: the frame set once it is known).
CAPABILITIES: Final[Mapping[LinkKind, LinkCapability]] = MappingProxyType(
    {
        LinkKind.CAN: CAN_V1_2 | CAN_V1_3,
        LinkKind.RS485: RS485,
        LinkKind.CONSOLE: CONSOLE,
    }
)


def capability(link: str, frame_set: str | None = None) -> LinkCapability:
    """Return the row of a link; for CAN the row of its frame set when known.

    An unknown link kind (a newer entry seen by older code) carries nothing.
    """
    try:
        kind = LinkKind(link)
    except ValueError:
        return NOTHING
    if kind is LinkKind.CAN and frame_set is not None:
        try:
            return CAN_FRAME_SETS[CanFrameSet(frame_set)]
        except ValueError:
            return CAPABILITIES[kind]
    return CAPABILITIES[kind]


def combined(capabilities: Iterable[LinkCapability]) -> LinkCapability:
    """Return what any of several links carries."""
    result = NOTHING
    for item in capabilities:
        result |= item
    return result


# --- README's "Which link gives which data" --------------------------------------------

#: Rows of the value table: (label, "bank" or "module", ((field, short label), ...)). A cell
#: is ✓ when the link carries every field of the row, else the short labels it carries.
TABLE_ROWS: Final[tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]] = (
    (
        "Bank voltage, current (and power), temperature",
        "bank",
        (("voltage", "voltage"), ("current", "current"), ("temperature", "temperature")),
    ),
    ("Bank state of charge", "bank", (("soc", "SOC"),)),
    ("Bank state of health", "bank", (("soh", "SOH"),)),
    (
        "Bank charge/discharge voltage and current limits (CVL, DVL, CCL, DCL)",
        "bank",
        (
            ("charge_voltage_limit", "CVL"),
            ("discharge_voltage_limit", "DVL"),
            ("charge_current_limit", "CCL"),
            ("discharge_current_limit", "DCL"),
        ),
    ),
    (
        "Charging/discharging allowed, force charge I/II, full-charge request",
        "bank",
        (
            ("charge_enabled", "charging allowed"),
            ("discharge_enabled", "discharging allowed"),
            ("force_charge_1", "force charge I"),
            ("force_charge_2", "force charge II"),
            ("full_charge_request", "full-charge request"),
        ),
    ),
    (
        "Bank remaining and full capacity (stored energy, energy capacity)",
        "bank",
        (("remaining_capacity", "remaining"), ("full_capacity", "full")),
    ),
    ("Module count", "bank", (("module_count", "count"),)),
    (
        "Bank lowest/highest cell voltage (and spread)",
        "bank",
        (("cell_voltage_min", "lowest"), ("cell_voltage_max", "highest")),
    ),
    (
        "Bank manufacturer, model, serial number (master barcode), firmware",
        "bank",
        (
            ("manufacturer", "manufacturer"),
            ("model", "model"),
            ("serial_number", "serial"),
            ("firmware", "firmware"),
        ),
    ),
    (
        "Per module: voltage, current (and power), SOC, temperature, state",
        "module",
        (
            ("voltage", "voltage"),
            ("current", "current"),
            ("soc", "SOC"),
            ("temperature", "temperature"),
            ("state", "state"),
        ),
    ),
    (
        "Per module: lowest/highest temperature, MOSFET temperature",
        "module",
        (
            ("temperature_min", "lowest"),
            ("temperature_max", "highest"),
            ("mosfet_temperature", "MOSFET"),
        ),
    ),
    (
        "Per module: cell voltages (and lowest/highest/spread)",
        "module",
        (
            ("cell_voltages", "cells"),
            ("cell_voltage_min", "lowest"),
            ("cell_voltage_max", "highest"),
        ),
    ),
    (
        "Per module: temperature sensors, temperature per cell",
        "module",
        (("temperatures", "sensors"), ("cell_temperatures", "per cell")),
    ),
    (
        "Per module: remaining and full capacity (stored energy, energy capacity)",
        "module",
        (("remaining_capacity", "remaining"), ("full_capacity", "full")),
    ),
    ("Per module: state of health, cycles", "module", (("soh", "SOH"), ("cycles", "cycles"))),
    (
        "Per module: charge/discharge MOSFET, fully charged",
        "module",
        (
            ("charge_mosfet", "charge MOSFET"),
            ("discharge_mosfet", "discharge MOSFET"),
            ("fully_charged", "fully charged"),
        ),
    ),
    (
        "Per module: charge/discharge voltage and current limits",
        "module",
        (
            ("charge_voltage_limit", "CVL"),
            ("discharge_voltage_limit", "DVL"),
            ("charge_current_limit", "CCL"),
            ("discharge_current_limit", "DCL"),
        ),
    ),
    (
        "Per module: manufacturer, model, serial number (barcode), firmware",
        "module",
        (
            ("manufacturer", "manufacturer"),
            ("model", "model"),
            ("serial_number", "serial"),
            ("firmware", "firmware"),
        ),
    ),
)

_TABLE_COLUMNS: Final = (
    ("CAN v1.2", CAN_V1_2),
    ("CAN v1.3", CAN_V1_3),
    ("RS485", RS485),
    ("Console", CONSOLE),
)


def _cell(carried: frozenset[str], wanted: tuple[tuple[str, str], ...]) -> str:
    have = [label for name, label in wanted if name in carried]
    if len(have) == len(wanted):
        return "✓"
    return ", ".join(have)


def _flag_cell(row: LinkCapability, flag: Flag) -> str:
    places = [
        place
        for place, flags in (("bank", row.bank_flags), ("module", row.module_flags))
        if flag in flags
    ]
    return ", ".join(places)


def render_link_table() -> str:
    """README's "Which link gives which data" tables (values, then flags), as Markdown."""
    header = "| Data | " + " | ".join(name for name, _ in _TABLE_COLUMNS) + " |"
    rule = "|---|" + ":-:|" * len(_TABLE_COLUMNS)
    lines = [header, rule]
    for label, level, wanted in TABLE_ROWS:
        cells = [
            _cell(row.bank_values if level == "bank" else row.module_values, wanted)
            for _, row in _TABLE_COLUMNS
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "Protections (the BMS stopped charging or discharging) and warnings each link can"
            " observe, for the whole bank or per module; a flag no configured link observes has"
            " no entity:"
        ),
        "",
        "| Flag | " + " | ".join(name for name, _ in _TABLE_COLUMNS) + " |",
        rule,
    ]
    for kind, members in (("protection", tuple(Protection)), ("warning", tuple(Alarm))):
        for flag in members:
            cells = [_flag_cell(row, flag) for _, row in _TABLE_COLUMNS]
            if any(cells):
                lines.append(f"| {kind}: `{flag}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "CAN_FRAME_SETS",
    "CAN_V1_2",
    "CAN_V1_3",
    "CAPABILITIES",
    "CONSOLE",
    "NOTHING",
    "RS485",
    "TABLE_ROWS",
    "CanFrameSet",
    "Flag",
    "LinkCapability",
    "LinkKind",
    "capability",
    "combined",
    "render_link_table",
]
