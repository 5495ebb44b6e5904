"""Tests of the documented fault catalog and the rules that find faults in bank snapshots."""

from __future__ import annotations

from dataclasses import replace
import json
import re
import string

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.pylontech.core.faults import (
    FAULTS,
    FAULTS_BY_KEY,
    ActiveFault,
    FaultKey,
    FaultTracker,
    FlagChange,
    Severity,
    active_fault_to_dict,
    evaluate,
    get_fault,
    render_text,
)
from custom_components.pylontech.core.faults.catalog import (
    LOCATION_PLACEHOLDERS,
    OVER_CURRENT_CLEAN_PERIOD_S,
)
from custom_components.pylontech.core.faults.rules import SUPERSEDED_BY
from custom_components.pylontech.core.model import (
    Alarm,
    Bank,
    LimitState,
    Module,
    ModuleState,
    Protection,
)

HOUR = 3600.0


def module(index: int = 1, group: int = 0, **values: object) -> Module:
    """A healthy discharging module; keyword values override."""
    base: dict[str, object] = {
        "index": index,
        "group": group,
        "voltage": 49.9,
        "current": -3.0,
        "temperature": 27.9,
        "soc": 60.0,
        "cell_voltage_min": 3.315,
        "cell_voltage_max": 3.316,
        "state": ModuleState.DISCHARGE,
        "model": "US3000C",
    }
    base.update(values)
    return Module(**base)  # type: ignore[arg-type]


def bank(*modules: Module, **values: object) -> Bank:
    return Bank(modules=modules, **values)  # type: ignore[arg-type]


def keys(faults: tuple[ActiveFault, ...]) -> set[tuple[str, tuple[int, int] | None]]:
    return {(str(f.key), f.module_key) for f in faults}


def only(faults: tuple[ActiveFault, ...], key: str) -> ActiveFault:
    matching = [f for f in faults if f.key == key]
    assert len(matching) == 1, faults
    return matching[0]


# --- Catalog ------------------------------------------------------------------------------


def test_keys_are_unique_snake_case_and_cover_every_fault_key() -> None:
    all_keys = [f.key for f in FAULTS]
    assert len(all_keys) == len(set(all_keys))
    assert set(all_keys) == set(FaultKey)
    for key in all_keys:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", key), key
    assert FAULTS_BY_KEY["short_circuit"].code == "SCP"
    with pytest.raises(KeyError):
        get_fault("not_a_fault")


def test_required_faults_exist() -> None:
    required = {
        "over_voltage",
        "under_voltage",
        "charge_over_temperature",
        "discharge_over_temperature",
        "charge_under_temperature",
        "discharge_under_temperature",
        "charge_over_current",
        "discharge_over_current",
        "charge_over_current_locked",
        "discharge_over_current_locked",
        "short_circuit",
        "reverse_polarity",
        "sensor_failure",
        "internal_communication_fail",
        "cell_imbalance",
        "soc_divergence",
        "module_count_dropped",
        "bms_temperature_zero",
        "mixed_models",
        "too_many_modules",
        "full_charge_request_pending",
        "low_soc_held",
    }
    assert required <= set(FAULTS_BY_KEY)


#: The battery manuals by title, and the protocol documents a source may cite besides them.
MANUALS = (
    "Pylontech US2000 user manual, ",
    "SR48100H operation and maintenance manual, ",
    "BAT/50002 manual, ",
    "How to Wire Pylontech Batteries in Parallel, ",
    "Pylontech US2000C / US3000C / US5000 Faults, ",
)
PROTOCOL_DOCUMENTS = (
    "Pylontech RS485 protocol V3.3, ",
    "PYLON LV CAN protocol V1.2, ",
    "docs/protocol-notes.md §",
)


@pytest.mark.parametrize("definition", FAULTS, ids=lambda d: d.key)
def test_every_definition_is_traceable_and_actionable(definition) -> None:
    assert definition.sources, "no source"
    for source in definition.sources:
        assert source.startswith(MANUALS + PROTOCOL_DOCUMENTS), source
    assert any(s.startswith(MANUALS) for s in definition.sources), "needs at least one manual"
    assert definition.fix_steps
    assert all(step.strip() for step in definition.fix_steps)
    for text in (definition.title, definition.meaning, definition.bms_action, definition.recovery):
        assert text.strip()
        # Every {name} in the text is a placeholder an active fault carries.
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        assert names <= set(definition.placeholders) | set(LOCATION_PLACEHOLDERS), names
    assert isinstance(definition.severity, Severity)
    assert isinstance(definition.repair, bool)


def test_locked_over_current_is_critical_and_raises_a_repair() -> None:
    for key in ("charge_over_current_locked", "discharge_over_current_locked"):
        definition = get_fault(key)
        assert definition.severity is Severity.CRITICAL
        assert definition.repair
        assert "manual intervention" in definition.recovery.lower()
    assert "24 h" in get_fault("under_voltage").recovery
    assert "12 h" in get_fault("under_voltage").recovery


# --- Flags -> faults ----------------------------------------------------------------------

EXPECTED_PROTECTION_FAULT = {
    Protection.OVER_VOLTAGE: "over_voltage",
    Protection.CELL_OVER_VOLTAGE: "over_voltage",
    Protection.MODULE_OVER_VOLTAGE: "over_voltage",
    Protection.UNDER_VOLTAGE: "under_voltage",
    Protection.CELL_UNDER_VOLTAGE: "under_voltage",
    Protection.MODULE_UNDER_VOLTAGE: "under_voltage",
    Protection.OVER_TEMPERATURE: "over_temperature",
    Protection.CHARGE_OVER_TEMPERATURE: "charge_over_temperature",
    Protection.DISCHARGE_OVER_TEMPERATURE: "discharge_over_temperature",
    Protection.MOSFET_OVER_TEMPERATURE: "over_temperature",
    Protection.UNDER_TEMPERATURE: "under_temperature",
    Protection.CHARGE_UNDER_TEMPERATURE: "charge_under_temperature",
    Protection.DISCHARGE_UNDER_TEMPERATURE: "discharge_under_temperature",
    Protection.CHARGE_OVER_CURRENT: "charge_over_current",
    Protection.DISCHARGE_OVER_CURRENT: "discharge_over_current",
    Protection.SHORT_CIRCUIT: "short_circuit",
    Protection.REVERSE_POLARITY: "reverse_polarity",
    Protection.SENSOR_FAILURE: "sensor_failure",
    Protection.SYSTEM_ERROR: "sensor_failure",
    Protection.GENERAL: "general_protection",
}

EXPECTED_ALARM_FAULT = {
    Alarm.HIGH_VOLTAGE: "high_voltage_warning",
    Alarm.CELL_HIGH_VOLTAGE: "high_voltage_warning",
    Alarm.MODULE_HIGH_VOLTAGE: "high_voltage_warning",
    Alarm.LOW_VOLTAGE: "low_voltage_warning",
    Alarm.CELL_LOW_VOLTAGE: "low_voltage_warning",
    Alarm.MODULE_LOW_VOLTAGE: "low_voltage_warning",
    Alarm.HIGH_TEMPERATURE: "high_temperature_warning",
    Alarm.CHARGE_HIGH_TEMPERATURE: "high_temperature_warning",
    Alarm.DISCHARGE_HIGH_TEMPERATURE: "high_temperature_warning",
    Alarm.MOSFET_HIGH_TEMPERATURE: "high_temperature_warning",
    Alarm.LOW_TEMPERATURE: "low_temperature_warning",
    Alarm.CHARGE_LOW_TEMPERATURE: "low_temperature_warning",
    Alarm.DISCHARGE_LOW_TEMPERATURE: "low_temperature_warning",
    Alarm.CHARGE_HIGH_CURRENT: "high_current_warning",
    Alarm.DISCHARGE_HIGH_CURRENT: "high_current_warning",
    Alarm.CELL_IMBALANCE: "cell_imbalance",
    Alarm.CELL_VOLTAGE_ERROR: "sensor_failure",
    Alarm.TEMPERATURE_SENSOR_ERROR: "sensor_failure",
    Alarm.INTERNAL_COMMUNICATION_FAIL: "internal_communication_fail",
    Alarm.GENERAL: "general_warning",
}


def test_expectation_tables_cover_every_flag() -> None:
    # A new flag in the model must be given a fault here (and in the rules).
    assert set(EXPECTED_PROTECTION_FAULT) == set(Protection)
    assert set(EXPECTED_ALARM_FAULT) == set(Alarm)


@pytest.mark.parametrize("flag", list(Protection), ids=str)
def test_each_protection_on_a_module_raises_its_fault(flag: Protection) -> None:
    faults = evaluate(bank(module(2, protections=frozenset({flag}))))
    assert keys(faults) == {(EXPECTED_PROTECTION_FAULT[flag], (0, 2))}
    fault = faults[0]
    assert fault.placeholders["location"] == "module 2"
    assert fault.placeholders["module"] == "2"
    assert set(fault.definition.placeholders) <= set(fault.placeholders)


@pytest.mark.parametrize("flag", list(Alarm), ids=str)
def test_each_alarm_on_the_bank_raises_its_fault(flag: Alarm) -> None:
    faults = evaluate(bank(module(1), alarms=frozenset({flag})))
    assert keys(faults) == {(EXPECTED_ALARM_FAULT[flag], None)}
    assert faults[0].placeholders["location"] == "bank"


def test_generic_and_specific_members_of_a_family_raise_one_fault() -> None:
    flags = frozenset(
        {Protection.OVER_VOLTAGE, Protection.CELL_OVER_VOLTAGE, Protection.MODULE_OVER_VOLTAGE}
    )
    assert keys(evaluate(bank(module(1, protections=flags)))) == {("over_voltage", (0, 1))}


def test_specific_temperature_protection_supersedes_the_generic_one() -> None:
    flags = frozenset({Protection.OVER_TEMPERATURE, Protection.CHARGE_OVER_TEMPERATURE})
    assert keys(evaluate(bank(module(1, protections=flags)))) == {
        ("charge_over_temperature", (0, 1))
    }
    # Generic alone (CAN 0x359 "cell over-temperature") stays generic.
    generic = frozenset({Protection.UNDER_TEMPERATURE})
    assert keys(evaluate(bank(module(1), protections=generic))) == {("under_temperature", None)}


def test_protection_supersedes_its_warning_at_the_same_place_only() -> None:
    one = module(
        1,
        protections=frozenset({Protection.CELL_UNDER_VOLTAGE}),
        alarms=frozenset({Alarm.CELL_LOW_VOLTAGE}),
    )
    two = module(2, alarms=frozenset({Alarm.MODULE_LOW_VOLTAGE}))
    assert keys(evaluate(bank(one, two))) == {
        ("under_voltage", (0, 1)),
        ("low_voltage_warning", (0, 2)),
    }


def test_bank_flag_is_dropped_when_a_module_names_the_same_fault() -> None:
    # CAN carries the stack's over-voltage bit; RS485 says which module it is.
    merged = bank(
        module(1),
        module(3, protections=frozenset({Protection.CELL_OVER_VOLTAGE})),
        protections=frozenset({Protection.OVER_VOLTAGE, Protection.CHARGE_OVER_CURRENT}),
    )
    assert keys(evaluate(merged)) == {
        ("over_voltage", (0, 3)),
        ("charge_over_current", None),
    }


def test_sensor_failure_combines_flags_and_state_words() -> None:
    failing = module(
        4,
        protections=frozenset({Protection.SYSTEM_ERROR}),
        alarms=frozenset({Alarm.TEMPERATURE_SENSOR_ERROR}),
        state=ModuleState.ERROR,
        cell_voltage_states=(LimitState.NORMAL, LimitState.ERROR),
    )
    fault = only(evaluate(bank(failing)), "sensor_failure")
    assert fault.module_key == (0, 4)
    assert fault.placeholders["detail"] == (
        "cell voltage error, system error, temperature sensor error"
    )
    # A console "SysError" state alone is enough.
    state_only = evaluate(bank(module(2, state=ModuleState.ERROR)))
    assert only(state_only, "sensor_failure").placeholders["detail"] == "system error"
    sensor = evaluate(bank(module(2, temperature_states=(LimitState.ERROR,))))
    assert only(sensor, "sensor_failure").placeholders["detail"] == "temperature sensor error"


def test_under_voltage_names_the_recharge_deadline_of_the_model() -> None:
    flag = frozenset({Protection.CELL_UNDER_VOLTAGE})
    sr = only(evaluate(bank(module(1, model="SR48100H", protections=flag))), "under_voltage")
    us = only(evaluate(bank(module(1, model="US2000C", protections=flag))), "under_voltage")
    assert sr.placeholders["deadline_hours"] == "24"
    assert us.placeholders["deadline_hours"] == "12"


def test_flag_on_an_absent_slot_is_ignored() -> None:
    absent = Module(
        index=5, state=ModuleState.ABSENT, protections=frozenset({Protection.SHORT_CIRCUIT})
    )
    assert evaluate(bank(module(1), absent)) == ()


# --- Measured rules -----------------------------------------------------------------------


def test_healthy_mixed_stack_from_console_capture_only_reports_mixed_models() -> None:
    # CON-1 (`pwr` on a US5000-led stack): four charging modules, SOC 35-40 %.
    rows = [
        (1, 49.905, 11.867, 27.9, 3.327, 3.327, 39, "US5000"),
        (2, 49.882, 5.182, 31.9, 3.325, 3.326, 38, "US2000C"),
        (3, 49.909, 5.080, 33.0, 3.326, 3.328, 35, "US2KBPL"),
        (4, 49.916, 5.250, 33.0, 3.326, 3.329, 40, "US2KBPL"),
    ]
    modules = [
        Module(
            index=i,
            voltage=v,
            current=c,
            temperature=t,
            cell_voltage_min=lo,
            cell_voltage_max=hi,
            soc=soc,
            model=model,
            state=ModuleState.CHARGE,
        )
        for i, v, c, t, lo, hi, soc, model in rows
    ]
    absent = [Module(index=i, state=ModuleState.ABSENT) for i in range(5, 17)]
    faults = evaluate(bank(*modules, *absent))
    assert keys(faults) == {("mixed_models", None)}
    assert faults[0].placeholders["models"] == "US5000, US2000C, US2KBPL"


def test_same_model_with_padding_is_not_mixed() -> None:
    stack = bank(
        module(1, model="US2000C\x00\x00\x00"), module(2, model="US2000C"), module(3, model=None)
    )
    assert evaluate(stack) == ()


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(3.300, 3.399, None), (3.300, 3.400, "100"), (3.250, 3.480, "230")],
)
def test_cell_imbalance_edge(low: float, high: float, expected: str | None) -> None:
    faults = evaluate(bank(module(2, cell_voltage_min=low, cell_voltage_max=high)))
    if expected is None:
        assert faults == ()
    else:
        fault = only(faults, "cell_imbalance")
        assert fault.module_key == (0, 2)
        assert fault.placeholders["spread_mv"] == expected
        assert fault.placeholders["cell_min_mv"] == str(round(low * 1000))


def test_cell_imbalance_from_cell_list_and_from_the_alarm() -> None:
    cells = (3.31, 3.32, 3.45, 3.30)
    from_cells = evaluate(
        bank(module(1, cell_voltage_min=None, cell_voltage_max=None, cell_voltages=cells))
    )
    assert only(from_cells, "cell_imbalance").placeholders["spread_mv"] == "150"
    # The BMS's own warning counts even when its numbers look fine or are missing.
    flagged = evaluate(
        bank(
            module(
                1,
                cell_voltage_min=None,
                cell_voltage_max=None,
                alarms=frozenset({Alarm.CELL_IMBALANCE}),
            )
        )
    )
    assert only(flagged, "cell_imbalance").placeholders["spread_mv"] == "?"


def test_bank_extremes_count_for_imbalance_only_without_module_cells() -> None:
    bare = bank(cell_voltage_min=3.20, cell_voltage_max=3.35, soc=50.0)
    assert keys(evaluate(bare)) == {("cell_imbalance", None)}
    with_cells = bank(module(1), cell_voltage_min=3.20, cell_voltage_max=3.35)
    assert evaluate(with_cells) == ()


@pytest.mark.parametrize(("second_soc", "raised"), [(50.1, False), (50.0, True), (30.0, True)])
def test_soc_divergence_edge(second_soc: float, raised: bool) -> None:
    faults = evaluate(bank(module(1, soc=60.0), module(2, soc=second_soc), module(3, soc=55.0)))
    if not raised:
        assert faults == ()
        return
    fault = only(faults, "soc_divergence")
    assert fault.module_key is None
    assert fault.placeholders["module_min"] == "2"
    assert fault.placeholders["module_max"] == "1"
    assert fault.placeholders["soc_min"] == f"{second_soc:g}"


def test_messages_fill_in_the_numbers() -> None:
    stack = bank(module(1, soc=72.5), module(2, soc=41.0))
    fault = only(evaluate(stack), "soc_divergence")
    assert fault.message == (
        "Module states of charge drift apart (bank): The modules report different states "
        "of charge: module 2 at 41 %, module 1 at 72.5 % (31.5 points apart)."
    )
    assert render_text("{count} of {expected}", {"count": "3"}) == "3 of {expected}"
    assert render_text("odd { brace", {}) == "odd { brace"


def test_soc_divergence_labels_modules_of_other_groups() -> None:
    faults = evaluate(bank(module(1, group=1, soc=80.0), module(2, group=2, soc=20.0)))
    fault = only(faults, "soc_divergence")
    assert (fault.placeholders["module_max"], fault.placeholders["module_min"]) == ("1-1", "2-2")


@pytest.mark.parametrize(
    ("values", "raised"),
    [
        ({"temperature": 0.0, "temperatures": (0.0, 24.1, 24.3, 24.0, 23.9)}, True),
        ({"temperature": 0.0, "temperature_min": 22.0, "temperature_max": 23.0}, True),
        ({"temperature": 0.0, "temperatures": (0.0, 0.0, 0.0, 0.0, 0.0)}, True),
        # A cold room: every sensor near 0 °C, not exactly 0.
        ({"temperature": 0.0, "temperatures": (0.0, 0.4, -0.3, 0.2, 0.1)}, False),
        ({"temperature": 0.0, "temperatures": (0.0, 4.9)}, False),
        ({"temperature": 0.0, "temperatures": (0.0, 5.0)}, True),
        ({"temperature": 0.0}, False),
        ({"temperature": 0.1, "temperatures": (0.1, 24.0)}, False),
        ({"temperature": None, "temperatures": ()}, False),
    ],
)
def test_bms_temperature_zero(values: dict[str, object], raised: bool) -> None:
    faults = evaluate(bank(module(1, **values)))
    assert (("bms_temperature_zero", (0, 1)) in keys(faults)) is raised


@pytest.mark.parametrize(
    ("model", "count", "raised"),
    [
        ("US2KBPL", 8, False),
        ("US2KBPL", 9, True),
        ("US2000", 9, True),
        ("US3000C", 16, False),
        ("US3000C", 17, True),
        ("US5000", 17, True),
        ("SR48100H", 32, False),
        ("RS-R51100A", 33, True),
        ("BAT/50002", 15, False),
        ("BAT/50002", 16, True),
        ("UNKNOWN1", 40, False),
    ],
)
def test_too_many_modules_per_model(model: str, count: int, raised: bool) -> None:
    stack = bank(*(module(i, model=model) for i in range(1, count + 1)))
    faults = evaluate(stack)
    assert (("too_many_modules", None) in keys(faults)) is raised
    if raised:
        fault = only(faults, "too_many_modules")
        assert fault.placeholders["count"] == str(count)
        assert fault.placeholders["model"] == model


def test_module_limit_applies_per_group() -> None:
    groups = [module(i, group=g) for g in (1, 2) for i in range(1, 17)]
    assert evaluate(bank(*groups)) == ()
    groups.append(module(17, group=2))
    fault = only(evaluate(bank(*groups)), "too_many_modules")
    assert (fault.placeholders["group"], fault.placeholders["limit"]) == ("2", "16")


def test_active_fault_dict_is_json_ready() -> None:
    fault = only(
        evaluate(bank(module(3, protections=frozenset({Protection.SHORT_CIRCUIT})))),
        "short_circuit",
    )
    data = json.loads(json.dumps(active_fault_to_dict(fault)))
    assert data["key"] == "short_circuit"
    assert data["severity"] == "critical"
    assert data["module"] == [0, 3]
    assert data["message"].startswith("Short-circuit protection (module 3): ")
    assert fault.issue_id == "short_circuit_g0_m3"


# --- Tracker: flag changes and identity ---------------------------------------------------


def test_flag_changes_report_starts_and_ends_per_place() -> None:
    tracker = FaultTracker()
    first = tracker.update(
        bank(
            module(1, protections=frozenset({Protection.CELL_OVER_VOLTAGE})),
            module(2),
            alarms=frozenset({Alarm.HIGH_VOLTAGE}),
        ),
        0.0,
    )
    assert set(first.flag_changes) == {
        FlagChange(None, Alarm.HIGH_VOLTAGE, True),
        FlagChange((0, 1), Protection.CELL_OVER_VOLTAGE, True),
    }
    second = tracker.update(
        bank(module(1), module(2, alarms=frozenset({Alarm.CELL_HIGH_VOLTAGE}))), 10.0
    )
    assert second.flag_changes == (
        FlagChange(None, Alarm.HIGH_VOLTAGE, False),
        FlagChange((0, 1), Protection.CELL_OVER_VOLTAGE, False),
        FlagChange((0, 2), Alarm.CELL_HIGH_VOLTAGE, True),
    )
    assert keys(second.ended) == {("over_voltage", (0, 1)), ("high_voltage_warning", None)}
    assert keys(second.started) == {("high_voltage_warning", (0, 2))}
    # A module that leaves the snapshot ends its flags.
    third = tracker.update(bank(module(1)), 20.0)
    assert third.flag_changes == (FlagChange((0, 2), Alarm.CELL_HIGH_VOLTAGE, False),)


def test_general_protection_and_general_alarm_are_distinct_flags() -> None:
    # Both enums spell it "general"; as strings they compare equal.
    tracker = FaultTracker()
    both = module(1, protections=frozenset({Protection.GENERAL}), alarms=frozenset({Alarm.GENERAL}))
    update = tracker.update(bank(both), 0.0)
    assert update.flag_changes == (
        FlagChange((0, 1), Protection.GENERAL, True),
        FlagChange((0, 1), Alarm.GENERAL, True),
    )
    assert type(update.flag_changes[1].flag) is Alarm
    assert keys(update.active) == {("general_protection", (0, 1))}
    update = tracker.update(bank(module(1, alarms=frozenset({Alarm.GENERAL}))), 1.0)
    assert update.flag_changes == (FlagChange((0, 1), Protection.GENERAL, False),)
    assert type(update.flag_changes[0].flag) is Protection
    assert keys(update.active) == {("general_warning", (0, 1))}


def test_same_snapshot_twice_changes_nothing() -> None:
    tracker = FaultTracker()
    snapshot = bank(module(1, protections=frozenset({Protection.SHORT_CIRCUIT})))
    first = tracker.update(snapshot, 0.0)
    assert keys(first.started) == {("short_circuit", (0, 1))}
    assert first.has_changes
    again = tracker.update(snapshot, 5.0)
    assert again.active == first.active
    assert len({*first.active, *again.active}) == 1
    assert not again.has_changes
    cleared = tracker.update(bank(module(1)), 10.0)
    assert keys(cleared.ended) == {("short_circuit", (0, 1))}
    assert cleared.active == ()
    assert tracker.active == ()


def test_changed_numbers_are_reported_as_updated() -> None:
    tracker = FaultTracker()
    tracker.update(bank(module(1, cell_voltage_min=3.30, cell_voltage_max=3.42)), 0.0)
    update = tracker.update(bank(module(1, cell_voltage_min=3.30, cell_voltage_max=3.45)), 1.0)
    assert update.started == ()
    assert update.ended == ()
    assert only(update.updated, "cell_imbalance").placeholders["spread_mv"] == "150"


# --- Tracker: over-current lock ----------------------------------------------------------

COC = frozenset({Protection.CHARGE_OVER_CURRENT})
DOC = frozenset({Protection.DISCHARGE_OVER_CURRENT})


def trip_sequence(tracker: FaultTracker, flags: frozenset[Protection], times: list[float]):
    """Trip at each time, clear 5 s later; returns the update of the last trip."""
    last = None
    for t in times:
        last = tracker.update(bank(module(1, protections=flags)), t)
        tracker.update(bank(module(1)), t + 5.0)
    return last


def test_three_consecutive_trips_lock_and_supersede_the_plain_fault() -> None:
    tracker = FaultTracker()
    for t in (0.0, 60.0):
        update = tracker.update(bank(module(1, protections=COC)), t)
        assert keys(update.active) == {("charge_over_current", (0, 1))}
        tracker.update(bank(module(1)), t + 30.0)
    third = tracker.update(bank(module(1, protections=COC)), 120.0)
    assert keys(third.active) == {("charge_over_current_locked", (0, 1))}
    assert only(third.started, "charge_over_current_locked").placeholders["trips"] == "3"
    # Locked needs manual intervention: it stays after the flag clears ...
    after = tracker.update(bank(module(1)), 150.0)
    assert keys(after.active) == {("charge_over_current_locked", (0, 1))}
    # ... until the protection has stayed clear for the whole clean period.
    still = tracker.update(bank(module(1)), 120.0 + 15 * 60 - 1)
    assert keys(still.active) == {("charge_over_current_locked", (0, 1))}
    done = tracker.update(bank(module(1)), 120.0 + 15 * 60)
    assert keys(done.ended) == {("charge_over_current_locked", (0, 1))}


def test_a_clean_period_breaks_the_run_of_trips() -> None:
    tracker = FaultTracker()
    trip_sequence(tracker, DOC, [0.0, 100.0])
    # Clear for 15 min after the second trip ended (last seen at 100): the run restarts.
    update = trip_sequence(tracker, DOC, [100.0 + 15 * 60 + 5])
    assert keys(update.active) == {("discharge_over_current", (0, 1))}
    # Two more trips soon after that one: three in a row again.
    update = trip_sequence(tracker, DOC, [1200.0, 1300.0])
    assert keys(update.active) == {("discharge_over_current_locked", (0, 1))}


def test_trips_just_inside_the_clean_period_still_count() -> None:
    tracker = FaultTracker()
    trip_sequence(tracker, DOC, [0.0])
    # Last seen active at 0; cleared at 5; next trip 15 min - 1 s after it was last seen.
    update = trip_sequence(tracker, DOC, [15 * 60 - 1, 15 * 60 + 100])
    assert keys(update.active) == {("discharge_over_current_locked", (0, 1))}


def test_charge_and_discharge_trips_and_places_are_counted_apart() -> None:
    tracker = FaultTracker()
    trip_sequence(tracker, COC, [0.0, 10.0])
    update = trip_sequence(tracker, DOC, [20.0])
    assert keys(update.active) == {("discharge_over_current", (0, 1))}
    other = tracker.update(bank(module(1), module(2, protections=COC)), 40.0)
    assert keys(other.active) == {("charge_over_current", (0, 2))}


def test_console_trip_counters_raise_the_lock() -> None:
    tracker = FaultTracker()

    def snapshot(coc: int, doc: int = 0, flags: frozenset[Protection] = frozenset()) -> Bank:
        counters = (("COC Times", coc), ("DOC Times", doc), ("SC Times", 0))
        return bank(module(1, counters=counters, protections=flags), module(2))

    # First reading is a baseline, however high.
    assert tracker.update(snapshot(7), 0.0).active == ()
    assert tracker.update(snapshot(8), 60.0).active == ()
    # A trip seen both as a flag start and as a counter step counts once.
    assert keys(tracker.update(snapshot(9, flags=COC), 120.0).active) == {
        ("charge_over_current", (0, 1))
    }
    locked = tracker.update(snapshot(10), 180.0)
    assert keys(locked.started) == {("charge_over_current_locked", (0, 1))}
    assert locked.started[0].placeholders["trips"] == "3"


def test_counter_jump_and_counter_reset() -> None:
    tracker = FaultTracker()
    tracker.update(bank(module(1, counters=(("DOC Times", 2),))), 0.0)
    # `statc` on the battery cleared the counters: a new baseline, no trips.
    assert tracker.update(bank(module(1, counters=(("DOC Times", 0),))), 10.0).active == ()
    # Three trips between two polls lock at once.
    jump = tracker.update(bank(module(1, counters=(("DOC Times", 3),))), 20.0)
    assert keys(jump.active) == {("discharge_over_current_locked", (0, 1))}


def test_bank_level_over_current_flags_lock_too() -> None:
    tracker = FaultTracker()
    for t in (0.0, 10.0, 20.0):
        update = tracker.update(bank(module(1), protections=COC), t)
        tracker.update(bank(module(1)), t + 2.0)
    assert keys(update.active) == {("charge_over_current_locked", None)}


# --- Tracker: module count -----------------------------------------------------------------


def stack(count: int, **values: object) -> Bank:
    return bank(*(module(i) for i in range(1, count + 1)), **values)


def test_module_count_drop_is_debounced() -> None:
    tracker = FaultTracker()
    tracker.update(stack(5), 0.0)
    # One missed poll, then back: never raised.
    assert tracker.update(stack(4), 10.0).active == ()
    assert tracker.update(stack(5), 20.0).active == ()
    assert tracker.update(stack(4), 30.0).active == ()
    assert tracker.update(stack(4), 40.0).active == ()
    third = tracker.update(stack(4), 50.0)
    fault = only(third.started, "module_count_dropped")
    assert fault.placeholders["count"] == "4"
    assert fault.placeholders["expected"] == "5"
    assert fault.placeholders["missing"] == "5"
    assert tracker.highest_module_count == 5
    back = tracker.update(stack(5), 60.0)
    assert keys(back.ended) == {("module_count_dropped", None)}


def test_module_count_from_the_link_and_unknown_snapshots() -> None:
    tracker = FaultTracker(expected_module_count=6)
    # CAN reports only a count: no module list, missing modules unknown.
    for t in (0.0, 1.0, 2.0):
        update = tracker.update(Bank(module_count=4, soc=50.0), t)
    fault = only(update.active, "module_count_dropped")
    assert (fault.placeholders["expected"], fault.placeholders["missing"]) == ("6", "?")
    # A snapshot without any count keeps the fault as it was.
    assert keys(tracker.update(Bank(soc=50.0), 3.0).active) == {("module_count_dropped", None)}


def test_accepting_a_smaller_bank_ends_the_fault() -> None:
    tracker = FaultTracker()
    tracker.update(stack(3), 0.0)
    for t in (1.0, 2.0, 3.0):
        update = tracker.update(stack(2), t)
    assert keys(update.active) == {("module_count_dropped", None)}
    tracker.accept_module_count()
    assert tracker.highest_module_count == 2
    assert keys(tracker.update(stack(2), 4.0).ended) == {("module_count_dropped", None)}


# --- Tracker: full-charge request and low SOC ----------------------------------------------


def test_full_charge_request_pending_for_a_day() -> None:
    tracker = FaultTracker()
    pending = stack(2, full_charge_request=True)
    assert tracker.update(pending, 1000.0).active == ()
    assert tracker.update(pending, 1000.0 + 24 * HOUR - 1).active == ()
    update = tracker.update(pending, 1000.0 + 24 * HOUR)
    assert only(update.started, "full_charge_request_pending").placeholders["hours"] == "24"
    update = tracker.update(stack(2, full_charge_request=False), 1000.0 + 25 * HOUR)
    assert keys(update.ended) == {("full_charge_request_pending", None)}
    # A new request starts a new day of grace.
    assert tracker.update(pending, 1000.0 + 26 * HOUR).active == ()


def low(soc: float, current: float = -2.0, model: str = "US2000C", **values: object) -> Bank:
    return bank(module(1, soc=soc, current=current, model=model, **values))


def test_low_soc_held_warns_at_half_the_recharge_window() -> None:
    tracker = FaultTracker()
    assert tracker.update(low(5.0), 0.0).active == ()
    assert tracker.update(low(4.0), 6 * HOUR - 1).active == ()
    update = tracker.update(low(4.0), 6 * HOUR)
    fault = only(update.started, "low_soc_held")
    assert fault.placeholders["hours"] == "6"
    assert fault.placeholders["deadline_hours"] == "12"
    assert fault.placeholders["soc"] == "4"
    # Charging ends it (and restarts the clock).
    update = tracker.update(low(4.0, current=3.0, state=ModuleState.CHARGE), 7 * HOUR)
    assert keys(update.ended) == {("low_soc_held", None)}
    assert tracker.update(low(4.0), 8 * HOUR).active == ()


def test_low_soc_threshold_and_charging_edges() -> None:
    tracker = FaultTracker()
    tracker.update(low(5.1), 0.0)
    assert tracker.update(low(5.1), 13 * HOUR).active == ()
    # 0.5 A is the BMS's reporting floor, not a charge.
    tracker = FaultTracker()
    tracker.update(low(3.0, current=0.5, state=ModuleState.IDLE), 0.0)
    assert keys(tracker.update(low(3.0, current=0.5, state=ModuleState.IDLE), 6 * HOUR).active) == {
        ("low_soc_held", None)
    }
    tracker = FaultTracker()
    tracker.update(low(3.0, current=0.6, state=ModuleState.IDLE), 0.0)
    assert tracker.update(low(3.0, current=0.6, state=ModuleState.IDLE), 6 * HOUR).active == ()


def test_low_soc_window_follows_the_model() -> None:
    tracker = FaultTracker()
    tracker.update(low(2.0, model="SR48100H"), 0.0)
    assert tracker.update(low(2.0, model="SR48100H"), 11 * HOUR).active == ()
    fault = only(tracker.update(low(2.0, model="SR48100H"), 12 * HOUR).active, "low_soc_held")
    assert fault.placeholders["deadline_hours"] == "24"


# --- Properties ----------------------------------------------------------------------------

_flags = st.frozensets(st.sampled_from(list(Protection)), max_size=3)
_alarms = st.frozensets(st.sampled_from(list(Alarm)), max_size=3)


@st.composite
def snapshots(draw: st.DrawFn) -> Bank:
    count = draw(st.integers(min_value=0, max_value=4))
    modules = []
    for index in range(1, count + 1):
        low_v = draw(st.floats(min_value=2.5, max_value=3.6))
        modules.append(
            Module(
                index=index,
                soc=draw(st.none() | st.floats(min_value=0, max_value=100)),
                current=draw(st.none() | st.floats(min_value=-50, max_value=50)),
                temperature=draw(st.sampled_from([None, 0.0, 25.0])),
                cell_voltage_min=low_v,
                cell_voltage_max=low_v + draw(st.floats(min_value=0, max_value=0.3)),
                model=draw(st.sampled_from([None, "US2000C", "US3000C", "US2KBPL"])),
                protections=draw(_flags),
                alarms=draw(_alarms),
                counters=(("COC Times", draw(st.integers(0, 5))),),
                state=draw(st.sampled_from([None, *ModuleState])),
            )
        )
    return Bank(
        modules=tuple(modules),
        protections=draw(_flags),
        alarms=draw(_alarms),
        full_charge_request=draw(st.none() | st.booleans()),
        module_count=draw(st.none() | st.integers(min_value=0, max_value=8)),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(snapshots(), st.floats(min_value=0, max_value=1200)), max_size=8))
def test_tracker_invariants(steps: list[tuple[Bank, float]]) -> None:
    tracker = FaultTracker()
    now = 0.0
    active: dict[tuple[str, tuple[int, int] | None], ActiveFault] = {}
    flags: set[tuple[tuple[int, int] | None, bool, object]] = set()
    place_seen: dict[tuple[int, int], float] = {}
    previous_places: set[tuple[int, int]] = set()
    for snapshot, step in steps:
        now += step
        update = tracker.update(snapshot, now)
        identities = [f.identity for f in update.active]
        assert len(identities) == len(set(identities))
        # started/ended/updated are exactly the difference to the previous update.
        assert {f.identity for f in update.started} == set(identities) - set(active)
        assert {f.identity for f in update.ended} == set(active) - set(identities)
        for fault in update.updated:
            assert active[fault.identity].placeholders != fault.placeholders
        # Replaying the flag changes gives the snapshot's flags.
        for change in update.flag_changes:
            item = (change.module_key, isinstance(change.flag, Alarm), change.flag)
            assert (item in flags) is not change.active
            (flags.add if change.active else flags.discard)(item)
        present = snapshot.present_modules()
        expected_flags = {(None, False, f) for f in snapshot.protections}
        expected_flags |= {(None, True, f) for f in snapshot.alarms}
        for m in present:
            expected_flags |= {(m.key, False, f) for f in m.protections}
            expected_flags |= {(m.key, True, f) for f in m.alarms}
        assert flags == expected_flags
        # Everything the stateless rules see is active, or replaced by a stronger fault.
        tracked = set(identities)
        for fault in evaluate(snapshot):
            if fault.identity in tracked:
                continue
            stronger = SUPERSEDED_BY.get(fault.key, ())
            assert any((key, fault.module_key) in tracked for key in stronger), fault
        for fault in update.active:
            assert set(fault.definition.placeholders) <= set(fault.placeholders)
        # State stays bounded by the places seen lately, not by history.
        # (A place that vanished while its protection was on is kept one update longer.)
        place_seen.update((m.key, now) for m in present)
        recent = {p for p, t in place_seen.items() if now - t < OVER_CURRENT_CLEAN_PERIOD_S}
        recent |= previous_places
        for place, _ in tracker._runs:
            assert place is None or place in recent
        previous_places = {m.key for m in present}
        assert len(tracker._counters) <= 2 * len(present)
        active = {f.identity: f for f in update.active}


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_evaluate_is_pure_and_ordered(snapshot: Bank) -> None:
    first = evaluate(snapshot)
    assert first == evaluate(snapshot)
    assert first == evaluate(replace(snapshot))
    bank_level = [f for f in first if f.module_key is None]
    assert list(first[: len(bank_level)]) == bank_level
