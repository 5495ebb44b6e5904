"""The documented faults: what each one means, what the BMS does, how to fix it.

Every definition is written from the battery manuals (Pylontech US2000 user manual, SR48100H
operation and maintenance manual, BAT/50002 manual, the guide "How to Wire Pylontech
Batteries in Parallel" and the article "Pylontech US2000C / US3000C / US5000 Faults") and
the public protocol documents; ``sources`` names the document and section each one comes
from. The thresholds the rules use live here too, each with a comment naming its source, or
saying that the manuals give none and why the chosen value is reasonable.

``FaultDefinition.key`` doubles as the Home Assistant translation and repair
issue key, so keys are stable snake_case and never reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

# --- Thresholds -----------------------------------------------------------------------------

# Cell imbalance: the manuals name the warning (SR48100H manual 3.3.3.4 note, FAQ Q2; the
# US2000C/US3000C/US5000 faults article, cell imbalance) but give no number. LFP cells sit on a
# flat plateau (about 3.2-3.35 V over most of the charge), and healthy modules in the reference
# captures show 0-3 mV between their lowest and highest cell; 100 mV is far outside that and
# well inside what a worn module shows.
CELL_IMBALANCE_SPREAD_MV = 100

# SOC divergence between modules: the parallel wiring guide asks for modules matched "within
# ~2 %" before connecting and "about the same SOC" after 24-48 h. In operation modules of different
# age drift a few points (the mixed-stack capture CON-1 shows 35-40 %), so 10 points is above
# normal drift and below one front-panel SOC LED step (16.6 %, US2000 manual), which is the
# difference the guide's visual check would reveal.
SOC_DIVERGENCE_POINTS = 10.0

# Module-count drop: consecutive snapshots with fewer modules than the highest count seen
# before the fault is raised. The manuals give no debounce; three polls keeps one missed
# answer (a slave that is slow to reply once) from raising a repair.
MODULE_COUNT_DEBOUNCE = 3

# BMS temperature reading 0: the parallel wiring guide says 0 from the BMS is the symptom of a
# wrong RS485 baud rate, and that a commissioned bank reads 20-45 °C. A real sensor can read
# 0.0 °C in a cold room, so a 0.0 reading only counts when another sensor of the same module is at
# least this far away from 0 °C (the readings then contradict each other), or when every
# reported sensor reads exactly 0.0 (no real set of sensors does that).
BMS_ZERO_TEMPERATURE_CONTRADICTION_C = 5.0
BMS_ZERO_TEMPERATURE_MIN_SENSORS = 3

# Over-current lock: SR48100H 3.4 says COCP/DOCP lock "after three consecutive times".
OVER_CURRENT_LOCK_TRIPS = 3
# What "consecutive" means is not documented. Trips count as one run unless the protection
# stayed clear for this long; it is many times the few-second to one-minute auto-release
# delay the BMS applies, so a run the BMS would count is not missed.
OVER_CURRENT_CLEAN_PERIOD_S = 15 * 60.0
# Console `stat` counters read for over-current trips (docs/protocol-notes.md §3.5 `stat`).
COC_TIMES_COUNTER = "COC Times"
DOC_TIMES_COUNTER = "DOC Times"

# Full-charge request (CAN 0x35C bit 3: SOC never above 97 % in 30 days; the inverter is
# expected to charge from the grid). SR48100H FAQ Q1/Q5 ask for a full charge monthly. The
# inverter gets one day to act before the user is told.
FULL_CHARGE_REQUEST_GRACE_S = 24 * 3600.0

# Low SOC held: the US2000 manual (1 Safety precautions, reminder 3) and the BAT/50002 manual
# (01 Safety precautions) require a recharge within 12 h after a full discharge; the SR48100H
# manual (3.4 caution) within 24 h when over-discharged. "Fully discharged" is taken as SOC at
# or below 5 %: the SR48100H inverter settings (SR48100H manual 5.6) put the low-SOC cut-off at
# 4 %, so a bank at 5 % or less has reached the end of its usable charge. The warning comes at
# half the documented window so the user still has time to act before the limit.
LOW_SOC_THRESHOLD = 5.0
RECHARGE_DEADLINE_HOURS = 12.0
RECHARGE_DEADLINE_HOURS_SR48100H = 24.0
LOW_SOC_WARNING_FRACTION = 0.5

# A bank counts as charging above this current: each BMS reports current only above 0.5 A
# (SR48100H FAQ Q4).
CHARGING_CURRENT_MIN_A = 0.5

# Modules allowed in one group, from the manuals' parallel limits.
MAX_MODULES_PER_GROUP: Mapping[str, int] = MappingProxyType(
    {
        "US2000": 8,  # US2000 manual 2.3 ADD switch: 1 master + 7 slaves per group
        "US2000C": 16,  # parallel wiring guide, DIP switches and LV-Hub
        "US3000C": 16,  # parallel wiring guide
        "US5000": 16,  # parallel wiring guide; faults article
        "SR48100H": 32,  # SR48100H manual 3.3.2 Parameters
        "BAT/50002": 15,  # BAT/50002 manual 4.5 Parallel use
    }
)

# Device names as the batteries report them, mapped to the model families above.
_MODEL_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "US2000": "US2000",
        "US2000B": "US2000",
        "US2000BPLUS": "US2000",
        "US2000PLUS": "US2000",
        "US2KBPL": "US2000",  # RS485 0x4F / console name of the US2000B-Plus
        "US2000C": "US2000C",
        "US3000C": "US3000C",
        "US5000": "US5000",
        "SR48100H": "SR48100H",
        "RSR51100A": "SR48100H",  # the SR48100H's type designation RS-R51100A
        "BAT/50002": "BAT/50002",
        "BAT50002": "BAT/50002",
    }
)


def normalise_model(model: str | None) -> str | None:
    """Return a reported device name in a comparable form: upper case, no spaces, dashes, NULs."""
    if model is None:
        return None
    text = model.replace("\x00", "").replace(" ", "").replace("-", "").replace("_", "")
    text = text.upper()
    return text or None


def model_family(model: str | None) -> str | None:
    """Return the model family of ``MAX_MODULES_PER_GROUP`` a device name belongs to, if known."""
    normal = normalise_model(model)
    if normal is None:
        return None
    return _MODEL_ALIASES.get(normal)


def max_modules_per_group(model: str | None) -> int | None:
    """How many modules one group of this model may hold (None when the model is unknown)."""
    family = model_family(model)
    return None if family is None else MAX_MODULES_PER_GROUP[family]


def recharge_deadline_hours(model: str | None) -> float:
    """Hours within which a fully discharged module of this model must be recharged."""
    if model_family(model) == "SR48100H":
        return RECHARGE_DEADLINE_HOURS_SR48100H
    return RECHARGE_DEADLINE_HOURS


# --- Definitions ----------------------------------------------------------------------------


class Severity(StrEnum):
    """How serious a fault is; maps onto Home Assistant's repair-issue severities."""

    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class FaultFamily(StrEnum):
    """The area a fault belongs to (for grouping in the UI and in diagnostics)."""

    VOLTAGE = "voltage"
    TEMPERATURE = "temperature"
    CURRENT = "current"
    HARDWARE = "hardware"
    COMMUNICATION = "communication"
    BALANCE = "balance"
    CONFIGURATION = "configuration"
    MAINTENANCE = "maintenance"


class FaultKey(StrEnum):
    """Keys of the documented faults (also Home Assistant translation and issue keys)."""

    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    CHARGE_OVER_TEMPERATURE = "charge_over_temperature"
    DISCHARGE_OVER_TEMPERATURE = "discharge_over_temperature"
    OVER_TEMPERATURE = "over_temperature"
    CHARGE_UNDER_TEMPERATURE = "charge_under_temperature"
    DISCHARGE_UNDER_TEMPERATURE = "discharge_under_temperature"
    UNDER_TEMPERATURE = "under_temperature"
    CHARGE_OVER_CURRENT = "charge_over_current"
    DISCHARGE_OVER_CURRENT = "discharge_over_current"
    CHARGE_OVER_CURRENT_LOCKED = "charge_over_current_locked"
    DISCHARGE_OVER_CURRENT_LOCKED = "discharge_over_current_locked"
    SHORT_CIRCUIT = "short_circuit"
    REVERSE_POLARITY = "reverse_polarity"
    SENSOR_FAILURE = "sensor_failure"
    INTERNAL_COMMUNICATION_FAIL = "internal_communication_fail"
    HIGH_VOLTAGE_WARNING = "high_voltage_warning"
    LOW_VOLTAGE_WARNING = "low_voltage_warning"
    HIGH_TEMPERATURE_WARNING = "high_temperature_warning"
    LOW_TEMPERATURE_WARNING = "low_temperature_warning"
    HIGH_CURRENT_WARNING = "high_current_warning"
    GENERAL_PROTECTION = "general_protection"
    GENERAL_WARNING = "general_warning"
    CELL_IMBALANCE = "cell_imbalance"
    SOC_DIVERGENCE = "soc_divergence"
    MODULE_COUNT_DROPPED = "module_count_dropped"
    BMS_TEMPERATURE_ZERO = "bms_temperature_zero"
    MIXED_MODELS = "mixed_models"
    TOO_MANY_MODULES = "too_many_modules"
    FULL_CHARGE_REQUEST_PENDING = "full_charge_request_pending"
    LOW_SOC_HELD = "low_soc_held"


# Placeholders every fault carries: where it is. ``location`` is "bank" or "module N"
# (with the group when there is more than one); ``module`` and ``group`` are numbers or "".
LOCATION_PLACEHOLDERS: tuple[str, ...] = ("location", "module", "group")


@dataclass(frozen=True, slots=True, kw_only=True)
class FixFlow:
    """The confirmation the repair of a fault asks for, when Home Assistant can fix it.

    A fixable repair opens its fix flow instead of showing a description, so the flow's
    confirm step carries the fault's explanation followed by ``confirm``: what confirming
    does, and when not to.
    """

    title: str
    confirm: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultDefinition:
    """One documented fault: what it means, what the BMS does, and how to fix it.

    ``placeholders`` names the values an active fault always carries for its
    message (besides ``LOCATION_PLACEHOLDERS``); a value that is not known is "?".
    ``fix`` is set for the faults a repair can resolve from Home Assistant.
    """

    key: FaultKey
    code: str
    title: str
    family: FaultFamily
    severity: Severity
    meaning: str
    bms_action: str
    recovery: str
    fix_steps: tuple[str, ...]
    sources: tuple[str, ...]
    repair: bool
    placeholders: tuple[str, ...] = ()
    fix: FixFlow | None = None


# Source names used below (document and section): the manuals by title, the public protocol
# documents, and the project's protocol notes.
_US2000 = "Pylontech US2000 user manual"
_SR48100H = "SR48100H operation and maintenance manual"
_BAT50002 = "BAT/50002 manual"
_GUIDE = "How to Wire Pylontech Batteries in Parallel"
_ARTICLE = "Pylontech US2000C / US3000C / US5000 Faults"
_US2000_FUNCTIONS = f"{_US2000}, BMS functions and LED table"
_US2000_SAFETY = f"{_US2000}, 1 Safety precautions, reminder 3"
_US2000_PARALLEL = f"{_US2000}, 2.3 ADD switch: 1 master + 7 slaves per group"
_US2000_MIX = f"{_US2000}, 1.1 Warning: different battery types prohibited"
_SR48100H_PROTECTION = f"{_SR48100H}, 3.4 Protection function"
_SR48100H_LED = f"{_SR48100H}, 3.3.3.4 RUN/ALM/SOC LED table"
_SR48100H_TROUBLE = f"{_SR48100H}, 5.8 Troubleshooting"
_SR48100H_FAQ = f"{_SR48100H}, 5.8 FAQ"
_SR48100H_PARAMS = f"{_SR48100H}, 3.3.2 Parameters: max parallel 32"
_SR48100H_SAFETY = f"{_SR48100H}, 2.1 Safety precautions: do not mix kinds or types"
_SR48100H_COMMISSION = f"{_SR48100H}, 5.6 Commissioning, inverter settings"
_BAT50002_TROUBLE = f"{_BAT50002}, 5.1 Troubleshooting"
_BAT50002_SAFETY = f"{_BAT50002}, 01 Safety precautions"
_BAT50002_PARALLEL = f"{_BAT50002}, 4.5 Parallel use: up to 15 modules"
_BAT50002_LED = f"{_BAT50002}, 4.4.4 Indicators"
_GUIDE_MISTAKES = f"{_GUIDE}, Common Wiring Mistakes and Their Symptoms"
_GUIDE_COMMISSION = f"{_GUIDE}, Commissioning Verification Checklist"
_GUIDE_SOC = f"{_GUIDE}, SOC matching"
_GUIDE_GROUP = f"{_GUIDE}, DIP switches and LV-Hub: 16 modules per group"
_ARTICLE_IMBALANCE = f"{_ARTICLE}, Check for cell imbalance in older modules"
_ARTICLE_ISOLATE = f"{_ARTICLE}, Isolate the faulty module to restore the rest of the stack"
_ARTICLE_MIX = f"{_ARTICLE}, FAQ: do not mix US3000C with US5000"
_REF_CAN_35C = "PYLON LV CAN protocol V1.2, 0x35C bit 3: full-charge request"
_REF_CAN_359 = "PYLON LV CAN protocol V1.2, 0x359 protection and alarm bits"
_REF_RS485_44 = "Pylontech RS485 protocol V3.3, 0x44 alarm info: status 4/5 cell errors"
_REF_STAT = "docs/protocol-notes.md §3.5: console stat counters COC/DOC Times"

FAULTS: tuple[FaultDefinition, ...] = (
    FaultDefinition(
        key=FaultKey.OVER_VOLTAGE,
        code="COVP/POVP",
        title="Over-voltage protection",
        family=FaultFamily.VOLTAGE,
        severity=Severity.ERROR,
        meaning="A cell or the whole pack has reached its charge-end voltage limit.",
        bms_action="The BMS stops charging; discharging still works.",
        recovery=(
            "Clears by itself once cell and pack voltage are back in range, or as soon as "
            "the bank delivers real discharge current."
        ),
        fix_steps=(
            (
                "Check that the inverter's charge voltage does not exceed the battery's limit "
                "(SR48100H: absorption 56.0 V, float 54.6 V)."
            ),
            (
                "Make sure the inverter follows the charge voltage limit the battery sends "
                "over CAN or RS485."
            ),
            (
                "On new batteries that are not yet balanced, lower the charge voltage to "
                "54.6 V and let them float."
            ),
            "If charging stays blocked, discharge the bank a little.",
        ),
        sources=(
            _SR48100H_PROTECTION,
            _SR48100H_COMMISSION,
            _SR48100H_FAQ,
            _BAT50002_TROUBLE,
            _BAT50002_LED,
        ),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.UNDER_VOLTAGE,
        code="CUVP/PUVP",
        title="Under-voltage protection",
        family=FaultFamily.VOLTAGE,
        severity=Severity.ERROR,
        meaning="A cell or the whole pack has fallen to its discharge-end voltage limit.",
        bms_action="The BMS stops discharging; charging still works.",
        recovery=(
            "Clears by itself once every cell is back in range, or as soon as charge "
            "current flows. Recharge promptly: left discharged, the module drops into a "
            "low-power mode and over-discharge can damage it. Recharge within "
            "{deadline_hours} h (12 h after a full discharge for US2000 and BAT/50002, "
            "24 h for the SR48100H)."
        ),
        fix_steps=(
            "Charge the bank now from PV, the grid or a generator.",
            (
                "Check the inverter's low-voltage cut-off (SR48100H: 48.0 V) and low-SOC "
                "cut-off (4 %) so the bank is not run flat again."
            ),
            (
                "If the module stays off, press RESET (or the start/wake-up button) and "
                "charge it with 54-57.6 V."
            ),
        ),
        sources=(
            _SR48100H_PROTECTION,
            _SR48100H_TROUBLE,
            _SR48100H_COMMISSION,
            _US2000_SAFETY,
            _BAT50002_SAFETY,
            _BAT50002_TROUBLE,
        ),
        repair=True,
        placeholders=("deadline_hours",),
    ),
    FaultDefinition(
        key=FaultKey.CHARGE_OVER_TEMPERATURE,
        code="CHTP",
        title="Charge over-temperature protection",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.ERROR,
        meaning=(
            "A cell, ambient or MOSFET temperature is above the range allowed for "
            "charging (US2000: 50 °C, SR48100H: 50 °C, BAT/50002: 45 °C)."
        ),
        bms_action="The BMS stops charging.",
        recovery="Clears by itself when the temperature falls.",
        fix_steps=(
            "Stop the system for a while and let the battery cool down.",
            (
                "Check that the installation site stays within the operating temperature "
                "range and is out of direct sun and away from heat sources."
            ),
            "Avoid continuous full charging and discharging.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_TROUBLE, _BAT50002_TROUBLE, _US2000_FUNCTIONS),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.DISCHARGE_OVER_TEMPERATURE,
        code="DHTP",
        title="Discharge over-temperature protection",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.ERROR,
        meaning=(
            "A cell, ambient or MOSFET temperature is above the range allowed for "
            "discharging (50 °C on every documented model)."
        ),
        bms_action="The BMS stops discharging.",
        recovery="Clears by itself when the temperature falls.",
        fix_steps=(
            "Stop the system for a while and let the battery cool down.",
            "Check the installation site temperature and ventilation.",
            "Reduce sustained high discharge currents.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_TROUBLE, _BAT50002_TROUBLE),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.OVER_TEMPERATURE,
        code="CHTP/DHTP",
        title="Over-temperature protection",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.ERROR,
        meaning=(
            "A cell, ambient or MOSFET temperature is above its allowed range; the link "
            "does not say whether charging or discharging is affected."
        ),
        bms_action="The BMS stops charging, discharging or both.",
        recovery="Clears by itself when the temperature falls.",
        fix_steps=(
            "Stop the system for a while and let the battery cool down.",
            "Check the installation site temperature and ventilation.",
            "Avoid continuous full charging and discharging.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_LED, _SR48100H_TROUBLE, _REF_CAN_359),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.CHARGE_UNDER_TEMPERATURE,
        code="CLTP",
        title="Charge under-temperature protection",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.ERROR,
        meaning=(
            "A cell or ambient temperature is below the range allowed for charging "
            "(US2000 and BAT/50002: 0 °C, SR48100H: -10 °C)."
        ),
        bms_action="The BMS stops charging.",
        recovery="Clears by itself when the temperature rises.",
        fix_steps=(
            "Let the battery warm up before charging.",
            "Move the bank to a place that stays within the charging temperature range.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_TROUBLE, _BAT50002_TROUBLE, _US2000_FUNCTIONS),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.DISCHARGE_UNDER_TEMPERATURE,
        code="DLTP",
        title="Discharge under-temperature protection",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.ERROR,
        meaning=(
            "A cell or ambient temperature is below the range allowed for discharging "
            "(US2000: -10 °C, SR48100H and BAT/50002: -20 °C)."
        ),
        bms_action="The BMS stops discharging.",
        recovery="Clears by itself when the temperature rises.",
        fix_steps=(
            "Let the battery warm up.",
            "Move the bank to a place that stays within the operating temperature range.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_TROUBLE, _BAT50002_TROUBLE),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.UNDER_TEMPERATURE,
        code="CLTP/DLTP",
        title="Under-temperature protection",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.ERROR,
        meaning=(
            "A cell or ambient temperature is below its allowed range; the link does not "
            "say whether charging or discharging is affected."
        ),
        bms_action="The BMS stops charging, discharging or both.",
        recovery="Clears by itself when the temperature rises.",
        fix_steps=(
            "Let the battery warm up.",
            "Move the bank to a place that stays within the operating temperature range.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_LED, _SR48100H_TROUBLE, _REF_CAN_359),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.CHARGE_OVER_CURRENT,
        code="COCP",
        title="Charge over-current protection",
        family=FaultFamily.CURRENT,
        severity=Severity.ERROR,
        meaning="The charge current went above the BMS protection value.",
        bms_action="The BMS stops charging.",
        recovery=(
            "Clears by itself after the BMS delay time. After three consecutive trips the "
            "protection locks and needs manual intervention."
        ),
        fix_steps=(
            (
                "Check the inverter's charge current limit: no more than the per-module "
                "maximum times the module count (SR48100H: 70 A x N, US2000: 50 A x N), and "
                "make sure it follows the limit the battery sends."
            ),
            (
                "When adding a module, match its SOC to the bank (within about 2 %) before "
                "connecting it."
            ),
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_COMMISSION, _GUIDE_MISTAKES, _GUIDE_SOC),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.DISCHARGE_OVER_CURRENT,
        code="DOCP",
        title="Discharge over-current protection",
        family=FaultFamily.CURRENT,
        severity=Severity.ERROR,
        meaning="The discharge current went above the BMS protection value.",
        bms_action="The BMS stops discharging.",
        recovery=(
            "Clears by itself after the BMS delay time. After three consecutive trips the "
            "protection locks and needs manual intervention."
        ),
        fix_steps=(
            (
                "Reduce the load or the inverter's discharge current limit to the per-module "
                "maximum times the module count (SR48100H: 100 A x N, US2000: 50 A x N)."
            ),
            (
                "Start the bank before powering the inverter, so its capacitors do not draw "
                "an inrush current without pre-charge."
            ),
            "When adding a module, match its SOC to the bank before connecting it.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_COMMISSION, _BAT50002_TROUBLE, _GUIDE_MISTAKES),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.CHARGE_OVER_CURRENT_LOCKED,
        code="COCP",
        title="Charge over-current protection locked",
        family=FaultFamily.CURRENT,
        severity=Severity.CRITICAL,
        meaning=(
            "Charge over-current protection tripped {trips} times in a row; after three "
            "consecutive trips the BMS locks the protection."
        ),
        bms_action="The BMS keeps charging blocked until someone intervenes.",
        recovery="Does not clear by itself: manual intervention is required.",
        fix_steps=(
            (
                "Find the cause first: lower the inverter's charge current limit and check it "
                "follows the limit the battery sends."
            ),
            "Then restart the module (power switch, or hold RESET) to release the lock.",
            "If the protection locks again, turn the module off and contact the supplier.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_TROUBLE, _REF_STAT),
        repair=True,
        placeholders=("trips",),
    ),
    FaultDefinition(
        key=FaultKey.DISCHARGE_OVER_CURRENT_LOCKED,
        code="DOCP",
        title="Discharge over-current protection locked",
        family=FaultFamily.CURRENT,
        severity=Severity.CRITICAL,
        meaning=(
            "Discharge over-current protection tripped {trips} times in a row; after three "
            "consecutive trips the BMS locks the protection."
        ),
        bms_action="The BMS keeps discharging blocked until someone intervenes.",
        recovery="Does not clear by itself: manual intervention is required.",
        fix_steps=(
            (
                "Find the cause first: reduce the load or the inverter's discharge current "
                "limit, and check for a start-up inrush (inverter powered before the bank)."
            ),
            "Then restart the module (power switch, or hold RESET) to release the lock.",
            "If the protection locks again, turn the module off and contact the supplier.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_TROUBLE, _GUIDE_MISTAKES, _REF_STAT),
        repair=True,
        placeholders=("trips",),
    ),
    FaultDefinition(
        key=FaultKey.SHORT_CIRCUIT,
        code="SCP",
        title="Short-circuit protection",
        family=FaultFamily.HARDWARE,
        severity=Severity.CRITICAL,
        meaning="The BMS detected a short circuit on the power terminals.",
        bms_action="The BMS stops charging and discharging.",
        recovery="Released by charging the module.",
        fix_steps=(
            (
                "Switch off the inverter and the DC breaker, then find and remove the short "
                "(cables, terminals, the inverter's DC input)."
            ),
            "Charge the module to release the protection.",
            "If it does not release, turn the module off and contact the supplier.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_LED, _SR48100H_TROUBLE, _BAT50002_LED),
        repair=True,
    ),
    FaultDefinition(
        key=FaultKey.REVERSE_POLARITY,
        code="Reversed polarity",
        title="Reversed polarity",
        family=FaultFamily.HARDWARE,
        severity=Severity.CRITICAL,
        meaning="The power cables are connected the wrong way round.",
        bms_action="The BMS stops charging and discharging.",
        recovery="Needs a manual reset: press RESET once the wiring is corrected.",
        fix_steps=(
            (
                "Switch everything off and correct the power cables (positive to positive, "
                "negative to negative)."
            ),
            "Press RESET on the module to release the protection.",
        ),
        sources=(_SR48100H_PROTECTION, _SR48100H_LED, _SR48100H_TROUBLE, _BAT50002_LED),
        repair=True,
    ),
    FaultDefinition(
        key=FaultKey.SENSOR_FAILURE,
        code="Sensor failure / system error",
        title="Sensor failure or system error",
        family=FaultFamily.HARDWARE,
        severity=Severity.CRITICAL,
        meaning=(
            "A temperature, voltage or current sensor or another part of the BMS has "
            "failed ({detail})."
        ),
        bms_action="The BMS enters failure mode: no charging and no discharging.",
        recovery="Does not clear by itself: manual intervention is required.",
        fix_steps=(
            "Restart the module (power switch, or hold RESET 6 s).",
            (
                "If the failure stays, turn that module off, isolate it from the bank, update "
                "the module count on the inverter and contact the supplier."
            ),
        ),
        sources=(
            _SR48100H_PROTECTION,
            _SR48100H_LED,
            _ARTICLE_ISOLATE,
            _REF_RS485_44,
            _REF_CAN_359,
        ),
        repair=True,
        placeholders=("detail",),
    ),
    FaultDefinition(
        key=FaultKey.INTERNAL_COMMUNICATION_FAIL,
        code="Communication fail",
        title="Internal communication failure",
        family=FaultFamily.COMMUNICATION,
        severity=Severity.WARNING,
        meaning="The modules of the bank lost communication with each other.",
        bms_action="The bank keeps running, but without coordination between modules.",
        recovery="Clears when the link between the modules works again.",
        fix_steps=(
            (
                "Check the link cables between the modules: straight-through RJ45, firmly "
                "seated, none damaged."
            ),
            "Check the DIP switch settings on every module.",
            "Check that only the master's CAN or RS485 port goes to the inverter.",
        ),
        sources=(_SR48100H_TROUBLE, _GUIDE_MISTAKES, _REF_CAN_359),
        repair=True,
    ),
    FaultDefinition(
        key=FaultKey.HIGH_VOLTAGE_WARNING,
        code="Warning: high voltage",
        title="High voltage warning",
        family=FaultFamily.VOLTAGE,
        severity=Severity.WARNING,
        meaning="A cell or the pack is near its charge-end voltage limit.",
        bms_action="Warning only: the BMS still charges and discharges.",
        recovery="Clears by itself when the voltage falls back.",
        fix_steps=(
            (
                "On new batteries that are not yet balanced, lower the charge voltage to "
                "54.6 V and let them float."
            ),
            "Check the inverter's charge voltage settings.",
        ),
        sources=(_SR48100H_LED, _SR48100H_FAQ),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.LOW_VOLTAGE_WARNING,
        code="Warning: low voltage",
        title="Low voltage warning",
        family=FaultFamily.VOLTAGE,
        severity=Severity.WARNING,
        meaning="A cell or the pack is near its discharge-end voltage limit.",
        bms_action="Warning only: the BMS still charges and discharges.",
        recovery="Clears by itself when the bank is charged.",
        fix_steps=(
            "Charge the bank soon.",
            "Check the inverter's low-SOC and low-voltage cut-off.",
        ),
        sources=(_SR48100H_LED, _SR48100H_COMMISSION),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.HIGH_TEMPERATURE_WARNING,
        code="Warning: high temperature",
        title="High temperature warning",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.WARNING,
        meaning="A cell, ambient or MOSFET temperature is near its upper limit.",
        bms_action="Warning only: the BMS still charges and discharges.",
        recovery="Clears by itself when the temperature falls.",
        fix_steps=(
            "Check the installation site temperature and ventilation.",
            "Avoid continuous full charging and discharging.",
        ),
        sources=(_SR48100H_LED, _SR48100H_TROUBLE, _ARTICLE_IMBALANCE),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.LOW_TEMPERATURE_WARNING,
        code="Warning: low temperature",
        title="Low temperature warning",
        family=FaultFamily.TEMPERATURE,
        severity=Severity.WARNING,
        meaning="A cell or ambient temperature is near its lower limit.",
        bms_action="Warning only: the BMS still charges and discharges.",
        recovery="Clears by itself when the temperature rises.",
        fix_steps=("Check that the installation site stays within the operating range.",),
        sources=(_SR48100H_LED, _SR48100H_TROUBLE),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.HIGH_CURRENT_WARNING,
        code="Warning: high current",
        title="High current warning",
        family=FaultFamily.CURRENT,
        severity=Severity.WARNING,
        meaning="The charge or discharge current is near its protection value.",
        bms_action="Warning only: the BMS still charges and discharges.",
        recovery="Clears by itself when the current falls.",
        fix_steps=(
            (
                "If the warning stays on, check the inverter's configuration and current "
                "limit parameters."
            ),
            "Check the fault information on the inverter's display or app.",
        ),
        sources=(_SR48100H_LED, _SR48100H_TROUBLE),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.GENERAL_PROTECTION,
        code="Protection",
        title="Battery protection",
        family=FaultFamily.HARDWARE,
        severity=Severity.ERROR,
        meaning="The BMS reports a protection without naming which one.",
        bms_action="The BMS stops charging, discharging or both.",
        recovery=(
            "Most protections clear by themselves once the cause is gone; failures need "
            "manual intervention."
        ),
        fix_steps=(
            (
                "Look at the ALM LED of every module: the one that is red or steadily lit is "
                "the module in protection."
            ),
            "Read the battery events in the inverter's log or app to see which protection tripped.",
            (
                "If one module keeps the whole bank shut down, isolate it, update the module "
                "count on the inverter, and have it assessed."
            ),
        ),
        sources=(_SR48100H_LED, _US2000_FUNCTIONS, _ARTICLE_ISOLATE),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.GENERAL_WARNING,
        code="Warning",
        title="Battery warning",
        family=FaultFamily.HARDWARE,
        severity=Severity.WARNING,
        meaning="The BMS reports a warning without naming it.",
        bms_action="Warning only: the BMS still charges and discharges.",
        recovery="Clears by itself when the cause is gone.",
        fix_steps=(
            (
                "Look at the module's ALM LED and the inverter's battery log to see which "
                "module warns and why."
            ),
        ),
        sources=(_SR48100H_LED, _ARTICLE_ISOLATE),
        repair=False,
    ),
    FaultDefinition(
        key=FaultKey.CELL_IMBALANCE,
        code="Cell imbalance",
        title="Cell imbalance",
        family=FaultFamily.BALANCE,
        severity=Severity.WARNING,
        meaning=(
            "The cells of one module are out of balance: {spread_mv} mV between the "
            "lowest and the highest cell (limit {limit_mv} mV)."
        ),
        bms_action="Warning only; the BMS balances the cells when the module is near full.",
        recovery=(
            "Usually recovers with balancing at high SOC; severe imbalance needs several "
            "cycles or an assessment of the module."
        ),
        fix_steps=(
            "Run a controlled balancing cycle: charge to 100 % and hold it there for 6-8 hours.",
            "On new batteries, lower the maximum charge voltage to 54.6 V and float them.",
            "If the imbalance remains after several cycles, have the module assessed.",
        ),
        sources=(_ARTICLE_IMBALANCE, _SR48100H_LED, _SR48100H_FAQ),
        repair=True,
        placeholders=("spread_mv", "limit_mv", "cell_min_mv", "cell_max_mv"),
    ),
    FaultDefinition(
        key=FaultKey.SOC_DIVERGENCE,
        code="SOC divergence",
        title="Module states of charge drift apart",
        family=FaultFamily.BALANCE,
        severity=Severity.WARNING,
        meaning=(
            "The modules report different states of charge: module {module_min} at "
            "{soc_min} %, module {module_max} at {soc_max} % ({spread} points apart)."
        ),
        bms_action="None; end modules of an unevenly wired bank age faster.",
        recovery="Improves once current is shared evenly and the bank is fully charged.",
        fix_steps=(
            (
                "Check the power wiring: with four or more modules use a busbar with "
                "equal-length cables, or take the inverter's positive and negative cables "
                "from opposite ends of the stack."
            ),
            "Check cable size and connector tightness on the module that lags.",
            "Fully charge the bank and compare the SOC of all modules again after 24-48 h.",
        ),
        sources=(_GUIDE_MISTAKES, _GUIDE_COMMISSION, _SR48100H_FAQ),
        repair=True,
        placeholders=("soc_min", "soc_max", "module_min", "module_max", "spread"),
    ),
    FaultDefinition(
        key=FaultKey.MODULE_COUNT_DROPPED,
        code="Link-chain break",
        title="Modules missing from the bank",
        family=FaultFamily.COMMUNICATION,
        severity=Severity.ERROR,
        meaning=(
            "The bank reports {count} modules, but {expected} were seen before "
            "(missing: {missing})."
        ),
        bms_action=(
            "The missing modules no longer report to the master; the current limits sent "
            "to the inverter drop."
        ),
        recovery="Clears when every module reports again.",
        fix_steps=(
            "Check the link cables between the modules for a damaged connector or a loose plug.",
            "Check that every module is switched on and not in protection or failure.",
            "If a module was removed on purpose, confirm the new module count.",
        ),
        sources=(_GUIDE_MISTAKES, _GUIDE_COMMISSION, _ARTICLE_ISOLATE),
        repair=True,
        placeholders=("count", "expected", "missing"),
        fix=FixFlow(
            title="Was the module removed on purpose?",
            confirm=(
                "Confirm only if a module was taken out of the bank on purpose: the {count} "
                "modules that answer now become the bank's size. If a module should still be "
                "there, do not confirm; check its link cable and that it is switched on. This "
                "issue clears by itself when it reports again."
            ),
        ),
    ),
    FaultDefinition(
        key=FaultKey.BMS_TEMPERATURE_ZERO,
        code="BMS temperature 0",
        title="BMS temperature reads 0 °C",
        family=FaultFamily.CONFIGURATION,
        severity=Severity.WARNING,
        meaning=(
            "The BMS temperature reads exactly 0 °C while the other readings disagree; "
            "a known symptom of a wrong RS485 baud rate."
        ),
        bms_action="None; the reading cannot be trusted.",
        recovery="Clears when the BMS reports a real temperature.",
        fix_steps=(
            (
                "Check DIP switch 1 (RS485 baud rate) on the master: 0/down = 115200, "
                "1/up = 9600. Change it only if the inverter needs 9600."
            ),
            (
                "Restart the battery after changing the DIP switch; the setting takes effect "
                "only after a restart."
            ),
            "After commissioning the BMS temperature should read about 20-45 °C.",
        ),
        sources=(_GUIDE_MISTAKES, _GUIDE_COMMISSION, _US2000_PARALLEL),
        repair=True,
    ),
    FaultDefinition(
        key=FaultKey.MIXED_MODELS,
        code="Mixed models",
        title="Different battery models in one bank",
        family=FaultFamily.CONFIGURATION,
        severity=Severity.WARNING,
        meaning="The bank holds modules of different models: {models}.",
        bms_action="None; the manuals prohibit mixing battery types in one bank.",
        recovery="Clears when the bank holds one model only.",
        fix_steps=(
            "Use one model in each bank (for example, do not combine US3000C with US5000).",
            "If models must stay mixed for now, make the newest module the master.",
        ),
        sources=(_US2000_MIX, _SR48100H_SAFETY, _BAT50002_SAFETY, _ARTICLE_MIX, _GUIDE_GROUP),
        repair=True,
        placeholders=("models",),
    ),
    FaultDefinition(
        key=FaultKey.TOO_MANY_MODULES,
        code="Too many modules",
        title="More modules than the model allows",
        family=FaultFamily.CONFIGURATION,
        severity=Severity.ERROR,
        meaning=("Group {group} holds {count} modules; a {model} group allows at most {limit}."),
        bms_action="Modules beyond the limit are not managed by the master.",
        recovery="Clears when the group is within the limit.",
        fix_steps=(
            (
                "Reduce the group to the allowed number of modules, or split the bank into "
                "groups (US2000: group address on DIP 2-4; US2000C/US3000C: LV-Hub, up to 6 "
                "groups of 16)."
            ),
        ),
        sources=(_US2000_PARALLEL, _SR48100H_PARAMS, _BAT50002_PARALLEL, _GUIDE_GROUP),
        repair=True,
        placeholders=("count", "limit", "model"),
    ),
    FaultDefinition(
        key=FaultKey.FULL_CHARGE_REQUEST_PENDING,
        code="Full-charge request",
        title="Full charge requested",
        family=FaultFamily.MAINTENANCE,
        severity=Severity.WARNING,
        meaning=(
            "The battery has asked for a full charge for {hours} h: its SOC has not been "
            "above 97 % for 30 days, so the SOC reading is no longer calibrated."
        ),
        bms_action="The BMS asks the inverter to charge the bank fully (from the grid).",
        recovery="Clears once the bank has been fully charged.",
        fix_steps=(
            (
                "Charge the bank to 100 % (from the grid or a generator if PV is not enough) "
                "and let it float for 0.5-1 h so the BMS calibrates its SOC."
            ),
            (
                "Allow the inverter to grid-charge when the battery requests it, and fully "
                "charge the bank at least once a month."
            ),
        ),
        sources=(_SR48100H_FAQ, _REF_CAN_35C),
        repair=True,
        placeholders=("hours",),
    ),
    FaultDefinition(
        key=FaultKey.LOW_SOC_HELD,
        code="Low SOC held",
        title="Battery left discharged",
        family=FaultFamily.MAINTENANCE,
        severity=Severity.ERROR,
        meaning=(
            "The bank has stayed at {soc} % (at or below {threshold} %) without charging "
            "for {hours} h; it must be recharged within {deadline_hours} h of a full "
            "discharge."
        ),
        bms_action=(
            "Left discharged, the module drops into low-power mode and over-discharge can "
            "damage it."
        ),
        recovery="Clears as soon as the bank charges or its SOC rises.",
        fix_steps=(
            "Charge the bank now from PV, the grid or a generator.",
            (
                "Set the inverter's low-SOC cut-off and force-charge options so the bank is "
                "recharged automatically after a deep discharge."
            ),
        ),
        sources=(_US2000_SAFETY, _BAT50002_SAFETY, _SR48100H_PROTECTION, _SR48100H_COMMISSION),
        repair=True,
        placeholders=("soc", "threshold", "hours", "deadline_hours"),
    ),
)

FAULTS_BY_KEY: Mapping[str, FaultDefinition] = MappingProxyType({f.key: f for f in FAULTS})


def get_fault(key: str) -> FaultDefinition:
    """Return the definition for a key; raises ``KeyError`` for an unknown one."""
    return FAULTS_BY_KEY[key]


__all__ = [
    "BMS_ZERO_TEMPERATURE_CONTRADICTION_C",
    "BMS_ZERO_TEMPERATURE_MIN_SENSORS",
    "CELL_IMBALANCE_SPREAD_MV",
    "CHARGING_CURRENT_MIN_A",
    "COC_TIMES_COUNTER",
    "DOC_TIMES_COUNTER",
    "FAULTS",
    "FAULTS_BY_KEY",
    "FULL_CHARGE_REQUEST_GRACE_S",
    "LOCATION_PLACEHOLDERS",
    "LOW_SOC_THRESHOLD",
    "LOW_SOC_WARNING_FRACTION",
    "MAX_MODULES_PER_GROUP",
    "MODULE_COUNT_DEBOUNCE",
    "OVER_CURRENT_CLEAN_PERIOD_S",
    "OVER_CURRENT_LOCK_TRIPS",
    "RECHARGE_DEADLINE_HOURS",
    "RECHARGE_DEADLINE_HOURS_SR48100H",
    "SOC_DIVERGENCE_POINTS",
    "FaultDefinition",
    "FaultFamily",
    "FaultKey",
    "Severity",
    "get_fault",
    "max_modules_per_group",
    "model_family",
    "normalise_model",
    "recharge_deadline_hours",
]
