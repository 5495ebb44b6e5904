"""Repairs issues raised by faults injected into the simulated bank, and cleared again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pylontech.const import DOMAIN
from custom_components.pylontech.core.faults import FAULTS, FaultKey, get_fault
from custom_components.pylontech.issues import FIXABLE, SEVERITIES
from simulator.simulator import BatterySimulator

from .entity_helpers import coordinator_of, setup_link, unload, wait_for

type Step = Callable[[BatterySimulator, Callable[[], Awaitable[None]]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Case:
    """A fault to inject on one link, where its issue appears, and how it clears."""

    key: FaultKey
    link: str
    place: str  # the issue id's place part: "bank" or "g0_m2"
    inject: Step
    clear: Step


def _sync(action: Callable[[BatterySimulator], object]) -> Step:
    async def step(sim: BatterySimulator, poll: Callable[[], Awaitable[None]]) -> None:
        action(sim)
        await poll()

    return step


def _polls(action: Callable[[BatterySimulator], object], count: int) -> Step:
    async def step(sim: BatterySimulator, poll: Callable[[], Awaitable[None]]) -> None:
        action(sim)
        for _ in range(count):
            await poll()

    return step


CASES: tuple[Case, ...] = (
    Case(
        FaultKey.UNDER_VOLTAGE,
        "rs485",
        "g0_m2",
        _sync(lambda s: s.faults.inject_protection("cell_under_voltage", 2)),
        _sync(lambda s: s.faults.clear_protection("cell_under_voltage", 2)),
    ),
    Case(
        FaultKey.SENSOR_FAILURE,
        "rs485",
        "g0_m2",
        _sync(lambda s: s.faults.inject_alarm("cell_voltage_error", 2)),
        _sync(lambda s: s.faults.clear_alarm("cell_voltage_error", 2)),
    ),
    Case(
        FaultKey.INTERNAL_COMMUNICATION_FAIL,
        "can",
        "bank",
        _sync(lambda s: s.faults.inject_alarm("internal_communication_fail", 1)),
        _sync(lambda s: s.faults.clear_alarm("internal_communication_fail", 1)),
    ),
    Case(
        FaultKey.CELL_IMBALANCE,
        "rs485",
        "g0_m2",
        _sync(lambda s: s.faults.cell_imbalance(2, 150.0, 4)),
        _sync(lambda s: s.faults.cell_imbalance(2, 0.0)),
    ),
    Case(
        FaultKey.SOC_DIVERGENCE,
        "rs485",
        "bank",
        _sync(lambda s: s.bank.set_soc(30.0, 3)),
        _sync(lambda s: s.bank.set_soc(s.snapshot().module(1).soc, 3)),
    ),
    Case(
        FaultKey.MODULE_COUNT_DROPPED,
        "rs485",
        "bank",
        _polls(lambda s: s.faults.drop_module(3), 3),
        _sync(lambda s: s.faults.restore_module(3)),
    ),
    Case(
        FaultKey.BMS_TEMPERATURE_ZERO,
        "rs485",
        "g0_m1",
        _sync(lambda s: s.faults.bms_temperature_zero(1)),
        _sync(lambda s: s.faults.bms_temperature_zero(1, active=False)),
    ),
)


async def _issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    await hass.async_block_till_done()
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


def _poller(hass: HomeAssistant, entry: MockConfigEntry) -> Callable[[], Awaitable[None]]:
    coordinator = coordinator_of(entry)

    async def poll() -> None:
        if coordinator.link is None:
            return  # CAN pushes on its own
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert coordinator.last_update_success

    return poll


async def _until_issue(hass: HomeAssistant, issue_id: str, present: bool) -> None:
    registry = ir.async_get(hass)
    await wait_for(lambda: (registry.async_get_issue(DOMAIN, issue_id) is not None) is present)


def _check_issue(issue: ir.IssueEntry, key: FaultKey) -> None:
    definition = get_fault(key)
    assert issue.translation_key == key
    assert issue.severity is SEVERITIES[definition.severity]
    assert issue.is_fixable is (key in FIXABLE)
    placeholders = issue.translation_placeholders or {}
    for name in ("location", "module", "group", *definition.placeholders):
        assert name in placeholders, name


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
async def test_injected_fault_raises_and_clears_issue(
    hass: HomeAssistant, simulator: BatterySimulator, case: Case
) -> None:
    """Each injected fault raises its Repairs issue; it is deleted when the fault clears."""
    entry = await setup_link(hass, simulator, case.link)
    poll = _poller(hass, entry)
    issue_id = f"{entry.entry_id}_{case.key}_{case.place}"
    try:
        assert await _issue(hass, issue_id) is None
        await case.inject(simulator, poll)
        await _until_issue(hass, issue_id, True)
        issue = await _issue(hass, issue_id)
        assert issue is not None
        _check_issue(issue, case.key)
        await case.clear(simulator, poll)
        await _until_issue(hass, issue_id, False)
    finally:
        await unload(hass, entry)


async def _over_current_trips(
    sim: BatterySimulator, poll: Callable[[], Awaitable[None]], flag: str
) -> None:
    for _ in range(3):
        sim.faults.inject_protection(flag, 2)
        await poll()
        sim.faults.clear_protection(flag, 2)
        await poll()


@pytest.mark.parametrize(
    ("flag", "key"),
    [
        ("charge_over_current", FaultKey.CHARGE_OVER_CURRENT_LOCKED),
        ("discharge_over_current", FaultKey.DISCHARGE_OVER_CURRENT_LOCKED),
    ],
)
async def test_over_current_lock(
    hass: HomeAssistant,
    simulator: BatterySimulator,
    freezer: FrozenDateTimeFactory,
    flag: str,
    key: FaultKey,
) -> None:
    """Three trips in a row lock the protection; a clean quarter hour ends the run."""
    entry = await setup_link(hass, simulator, "rs485")
    poll = _poller(hass, entry)
    issue_id = f"{entry.entry_id}_{key}_g0_m2"
    try:
        await _over_current_trips(simulator, poll, flag)
        issue = await _issue(hass, issue_id)
        assert issue is not None
        _check_issue(issue, key)
        assert issue.translation_placeholders["trips"] == "3"
        freezer.tick(timedelta(minutes=16))
        await poll()
        assert await _issue(hass, issue_id) is None
    finally:
        await unload(hass, entry)


async def test_full_charge_request_pending(
    hass: HomeAssistant, simulator: BatterySimulator, freezer: FrozenDateTimeFactory
) -> None:
    """A full-charge request left pending for a day raises an issue; charging clears it."""
    entry = await setup_link(hass, simulator, "rs485")
    poll = _poller(hass, entry)
    issue_id = f"{entry.entry_id}_{FaultKey.FULL_CHARGE_REQUEST_PENDING}_bank"
    try:
        simulator.faults.full_charge_request()
        await poll()
        assert await _issue(hass, issue_id) is None  # the inverter gets a day to act
        freezer.tick(timedelta(hours=25))
        await poll()
        issue = await _issue(hass, issue_id)
        assert issue is not None
        _check_issue(issue, FaultKey.FULL_CHARGE_REQUEST_PENDING)
        simulator.faults.full_charge_request(active=False)
        await poll()
        assert await _issue(hass, issue_id) is None
    finally:
        await unload(hass, entry)


async def test_low_soc_held(
    hass: HomeAssistant, simulator: BatterySimulator, freezer: FrozenDateTimeFactory
) -> None:
    """A bank left flat and idle for hours raises an issue; recharging clears it."""
    bank = simulator.bank
    bank.elapsed = 0.4 * bank.profile_period  # the idle phase of the profile: no current
    entry = await setup_link(hass, simulator, "rs485")
    poll = _poller(hass, entry)
    issue_id = f"{entry.entry_id}_{FaultKey.LOW_SOC_HELD}_bank"
    try:
        simulator.faults.low_soc(4.0)
        await poll()
        assert coordinator_of(entry).data.current == 0
        freezer.tick(timedelta(hours=7))
        await poll()
        issue = await _issue(hass, issue_id)
        assert issue is not None
        _check_issue(issue, FaultKey.LOW_SOC_HELD)
        simulator.faults.low_soc(60.0)
        await poll()
        assert await _issue(hass, issue_id) is None
    finally:
        await unload(hass, entry)


async def test_short_circuit_over_can(hass: HomeAssistant, socket_enabled: None) -> None:
    """Short circuit, named in the v1.3 firmware's 0x35A alarms, raises a critical issue."""
    async with BatterySimulator(
        3, "US3000C", seed=7, tick=None, can_period=0.2, control_port=None, can_firmware="v1.3"
    ) as sim:
        entry = await setup_link(hass, sim, "can")
        issue_id = f"{entry.entry_id}_{FaultKey.SHORT_CIRCUIT}_bank"
        try:
            sim.faults.inject_protection("short_circuit", 3)
            await _until_issue(hass, issue_id, True)
            issue = await _issue(hass, issue_id)
            assert issue is not None
            _check_issue(issue, FaultKey.SHORT_CIRCUIT)
            assert issue.severity is ir.IssueSeverity.CRITICAL
            sim.faults.clear_protection("short_circuit", 3)
            await _until_issue(hass, issue_id, False)
        finally:
            await unload(hass, entry)


@pytest.mark.parametrize(
    ("models", "link", "key"),
    [
        # Module models are read per module over the console (`info N`).
        (["US3000C", "US3000C", "US5000"], "console", FaultKey.MIXED_MODELS),
        (["US2000B"] * 9, "rs485", FaultKey.TOO_MANY_MODULES),
    ],
)
async def test_bank_configuration_issues(
    hass: HomeAssistant, socket_enabled: None, models: list[str], link: str, key: FaultKey
) -> None:
    """A bank built against the manuals' rules raises its configuration issue at setup."""
    async with BatterySimulator(models, seed=3, tick=None, control_port=None) as sim:
        entry = await setup_link(hass, sim, link)
        try:
            issue = await _issue(hass, f"{entry.entry_id}_{key}_bank")
            assert issue is not None
            _check_issue(issue, key)
        finally:
            await unload(hass, entry)


async def test_unload_removes_issues(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Unloading the entry takes its issues away; setting it up again brings them back."""
    simulator.faults.cell_imbalance(2, 150.0)
    entry = await setup_link(hass, simulator, "rs485")
    issue_id = f"{entry.entry_id}_{FaultKey.CELL_IMBALANCE}_g0_m2"
    assert await _issue(hass, issue_id) is not None
    await unload(hass, entry)
    assert await _issue(hass, issue_id) is None
    assert await hass.config_entries.async_setup(entry.entry_id)
    try:
        assert await _issue(hass, issue_id) is not None
    finally:
        await unload(hass, entry)


async def test_stale_issue_from_earlier_run_is_removed(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """An issue left from before a restart goes when its fault is no longer active."""
    stale = "01PYLONTECHRS485ENTRY00000_cell_imbalance_g0_m3"
    other = "someone_else_issue"
    for ident in (stale, other):
        ir.async_create_issue(
            hass,
            DOMAIN,
            ident,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="cell_imbalance",
        )
    entry = await setup_link(hass, simulator, "rs485")
    try:
        assert entry.entry_id == "01PYLONTECHRS485ENTRY00000"
        assert await _issue(hass, stale) is None
        assert await _issue(hass, other) is not None
    finally:
        await unload(hass, entry)
        ir.async_delete_issue(hass, DOMAIN, other)


def test_every_repairable_fault_is_covered() -> None:
    """The tests above inject every fault that raises a Repairs issue, but one.

    Reverse polarity has no bit of its own on any link (CAN maps it to the general
    alarm), so no link can report it and it cannot be injected end to end.
    """
    covered = {case.key for case in CASES} | {
        FaultKey.CHARGE_OVER_CURRENT_LOCKED,
        FaultKey.DISCHARGE_OVER_CURRENT_LOCKED,
        FaultKey.FULL_CHARGE_REQUEST_PENDING,
        FaultKey.LOW_SOC_HELD,
        FaultKey.MIXED_MODELS,
        FaultKey.TOO_MANY_MODULES,
        FaultKey.SHORT_CIRCUIT,
    }
    repairable = {fault.key for fault in FAULTS if fault.repair}
    assert repairable - covered == {FaultKey.REVERSE_POLARITY}


async def test_fix_flow_accepts_smaller_bank(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Confirming "modules missing" takes the present count as the bank's size."""
    assert await async_setup_component(hass, "repairs", {})
    entry = await setup_link(hass, simulator, "rs485")
    poll = _poller(hass, entry)
    issue_id = f"{entry.entry_id}_{FaultKey.MODULE_COUNT_DROPPED}_bank"
    try:
        simulator.faults.drop_module(3)
        for _ in range(3):
            await poll()
        issue = await _issue(hass, issue_id)
        assert issue is not None
        assert issue.is_fixable
        assert issue.translation_placeholders["missing"] == "3"

        manager = repairs_flow_manager(hass)
        assert manager is not None
        result = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "confirm"
        assert result["description_placeholders"]["count"] == "2"
        result = await manager.async_configure(result["flow_id"], {})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert await _issue(hass, issue_id) is None
        await poll()  # still two modules: accepted, so no new issue
        assert await _issue(hass, issue_id) is None
    finally:
        await unload(hass, entry)


async def test_fix_flow_aborts_when_entry_unloaded(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A fix flow for an entry that is not loaded any more aborts."""
    assert await async_setup_component(hass, "repairs", {})
    entry = await setup_link(hass, simulator, "rs485")
    issue_id = f"{entry.entry_id}_{FaultKey.MODULE_COUNT_DROPPED}_bank"
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        data={"entry_id": entry.entry_id},
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=FaultKey.MODULE_COUNT_DROPPED,
        translation_placeholders={"count": "2", "expected": "3", "missing": "3"},
    )
    await unload(hass, entry)
    ir.async_create_issue(  # unloading cleared it; an issue restored from storage remains
        hass,
        DOMAIN,
        issue_id,
        data={"entry_id": entry.entry_id},
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=FaultKey.MODULE_COUNT_DROPPED,
        translation_placeholders={"count": "2", "expected": "3", "missing": "3"},
    )
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"
    ir.async_delete_issue(hass, DOMAIN, issue_id)
