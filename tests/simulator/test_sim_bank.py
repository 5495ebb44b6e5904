"""SimulatedBank: deterministic, believable, evolving truth; faults reflected in the snapshot."""

from __future__ import annotations

import pytest

from custom_components.pylontech.core.model import Alarm, LimitState, ModuleState, Protection
from simulator import MODELS, SimulatedBank


def test_same_seed_same_bank_and_evolution() -> None:
    """Two banks with one seed agree after the same steps; another seed differs."""
    first, second = SimulatedBank(4, "US3000C", seed=7), SimulatedBank(4, "US3000C", seed=7)
    for bank in (first, second):
        bank.step(30.0)
        bank.step(900.0)
    assert first.snapshot() == second.snapshot()
    other = SimulatedBank(4, "US3000C", seed=8)
    other.step(30.0)
    other.step(900.0)
    assert other.snapshot() != first.snapshot()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_have_their_documented_shape(name: str) -> None:
    """Cell count, capacity, temperature sensors and identity per model."""
    spec = MODELS[name]
    bank = SimulatedBank(2, name, seed=1)
    module = bank.snapshot().modules[0]
    assert len(module.cell_voltages) == spec.cells
    assert len(module.temperatures) == spec.temperature_sensors
    assert module.full_capacity == spec.capacity_ah
    assert module.model == name
    assert module.serial_number is not None
    assert len(module.serial_number) == 16
    # LFP cells between 2.9 and 3.6 V; module voltage is the sum of its cells.
    assert all(2.9 < v < 3.6 for v in module.cell_voltages)
    assert module.voltage == pytest.approx(sum(module.cell_voltages), abs=1e-6)
    assert module.cell_voltage_min == min(module.cell_voltages)
    assert 0 < (module.soc or 0) < 100


def test_values_follow_the_profile_and_stay_physical() -> None:
    """Charging raises SOC, discharge lowers it; temperatures rise with current; drift bounded."""
    bank = SimulatedBank(4, "US2000C", seed=3, profile_period=3600.0)
    start = bank.snapshot()
    assert start.current is not None
    assert start.current > 0
    bank.step(600.0)
    charged = bank.snapshot()
    assert (charged.remaining_capacity or 0) > (start.remaining_capacity or 0)
    bank.step(0.45 * 3600 - 600.0 - 0.12 * 3600 + 300.0)  # into the discharge phase
    discharging = bank.snapshot()
    assert discharging.current is not None
    assert discharging.current < 0
    assert all(m.state == ModuleState.DISCHARGE for m in discharging.modules)
    bank.step(0.3 * 3600)
    assert (bank.snapshot().remaining_capacity or 0) < (discharging.remaining_capacity or 0)
    for _ in range(48):
        bank.step(1800.0)
        snapshot = bank.snapshot()
        socs = [m.soc or 0.0 for m in snapshot.modules]
        assert max(socs) - min(socs) < 15.0, socs
        for module in snapshot.modules:
            assert 0.0 <= (module.soc or 0.0) <= 100.0
            assert 10.0 < (module.temperature or 0.0) < 50.0


def test_temperature_follows_current_and_full_charge_is_reached() -> None:
    """A long charge warms the modules above an idle bank; charging ends at 100 %."""
    charging = SimulatedBank(2, "US2000C", seed=4, profile_period=10**7, initial_soc=20.0)
    resting = SimulatedBank(2, "US2000C", seed=4, profile_period=10**7)
    resting.set_soc(100.0)
    charging.step(1800.0)
    resting.step(1800.0)
    warm, cool = charging.snapshot(), resting.snapshot()
    assert resting.snapshot().current == 0.0
    assert (warm.temperature or 0) > (cool.temperature or 0) + 2.0
    charging.step(10 * 3600.0)
    full = charging.snapshot()
    assert full.current == 0.0
    assert all(m.fully_charged for m in full.modules)
    assert full.charge_enabled is False


def test_quantised_to_wire_resolution() -> None:
    """Truth is exactly representable: mV cells, 0.1 A current, 0.1 °C temperatures."""
    bank = SimulatedBank(3, "US5000", seed=11)
    bank.step(123.4)
    for module in bank.snapshot().modules:
        assert all(
            round(v * 1000) == pytest.approx(v * 1000, abs=1e-6) for v in module.cell_voltages
        )
        assert round((module.current or 0) * 10) == pytest.approx((module.current or 0) * 10)
        assert all(round(t * 10) == pytest.approx(t * 10) for t in module.temperatures)


def test_protection_and_alarm_reflected() -> None:
    """An injected protection shows as flags, states and blocked charging."""
    bank = SimulatedBank(3, "US3000C", seed=1)
    bank.faults.inject_protection(Protection.CELL_OVER_VOLTAGE, module=2)
    bank.faults.inject_alarm(Alarm.CELL_IMBALANCE, module=3)
    bank.step(1.0)
    snapshot = bank.snapshot()
    two = snapshot.module(2)
    assert two is not None
    assert Protection.CELL_OVER_VOLTAGE in two.protections
    assert LimitState.HIGH in two.cell_voltage_states
    assert two.charge_mosfet is False
    assert two.current == 0.0
    assert snapshot.charge_enabled is False
    assert snapshot.charge_current_limit == 0.0
    assert Alarm.CELL_IMBALANCE in snapshot.alarms
    bank.faults.clear_all()
    bank.step(1.0)
    assert bank.snapshot().charge_enabled is True


def test_dropout_and_other_battery_faults() -> None:
    """Dropout removes a module; BMS temperature 0; imbalance; full-charge request; low SOC."""
    bank = SimulatedBank(4, "US3000C", seed=1)
    bank.faults.drop_module(3)
    bank.faults.bms_temperature_zero(module=1)
    bank.faults.cell_imbalance(module=2, millivolts=200, cell=4)
    bank.faults.full_charge_request()
    snapshot = bank.snapshot()
    assert snapshot.module_count == 3
    assert snapshot.module(3) is None
    assert not bank.is_present(3)
    master = snapshot.module(1)
    assert master is not None
    assert master.temperature == 0.0
    two = snapshot.module(2)
    assert two is not None
    assert two.cell_voltage_spread is not None
    assert two.cell_voltage_spread >= 0.19
    assert two.cell_voltage_max == two.cell_voltages[3]
    assert snapshot.full_charge_request is True
    bank.faults.low_soc(4.0)
    low = bank.snapshot()
    assert low.soc == 4.0
    assert low.force_charge_1 is True
    assert low.force_charge_2 is True


def test_trip_counters_count_protection_starts() -> None:
    """Each new COC trip increments the console counter (three-trip lock rule input)."""
    bank = SimulatedBank(1, "US2000C", seed=1)
    base = bank.counters(1).get("COC Times", 0)
    for _ in range(3):
        bank.faults.inject_protection("charge_over_current", module=1)
        bank.step(1.0)
        bank.faults.clear_protection("charge_over_current", module=1)
        bank.step(1.0)
    assert bank.counters(1)["COC Times"] == base + 3
    module = bank.snapshot().modules[0]
    assert module.counter("COC Times") == base + 3


def test_rejects_bad_configuration() -> None:
    """Unknown models and impossible sizes are refused with a clear message."""
    with pytest.raises(ValueError, match="unknown model"):
        SimulatedBank(2, "US9000")
    with pytest.raises(ValueError):
        SimulatedBank(0, "US2000C")
