"""Sensors of a Pylontech bank and of each of its modules.

An entity is created for every value a configured link can carry (the capability table,
``core/capabilities.py``) once a snapshot has it (a value that is ``None`` in every
snapshot so far gets no entity); values that appear later, for example from a CAN
companion link or a module that joins, get their entities then. A bank sensor is
available while a live link carries every value it is made of (``needs``), so a stalled
link's values turn unavailable and a live companion's stay.

Values are rounded to their display precision in ``value_fn`` so measurement noise
below what the UI shows never causes a state write.

Stored energy and energy capacity are remaining and full capacity (Ah) times the
nominal voltage, 3.2 V per LFP cell (48 V for the 15-cell US modules, 51.2 V for the
16-cell SR48100H): the way Pylontech rates its modules, and steady, unlike the measured
voltage, which swings with load. The cell count comes from the module's cell voltages;
where the link carries no cells (CAN, a console entry without cell reads) the measured
voltage stands in. A bank's figure is the sum over its modules when every present
module knows its cell count.

Energy charged/discharged are counters for the energy dashboard: the power of every
snapshot is integrated with the trapezoid rule (the area of a sign change is split
exactly between the two counters), intervals longer than ``max_gap`` or spanning a
link failure or module dropout are skipped, and the totals are restored on restart.

Time to full and time to empty assume the present current holds (``time_to_full``,
``time_to_empty``); they are unknown while the bank is idle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
import time
from typing import Any, override

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .const import CONF_CELL_ENTITIES, DEFAULT_CELL_ENTITIES
from .coordinator import PylontechConfigEntry
from .core.faults import FaultUpdate
from .core.faults.catalog import CHARGING_CURRENT_MIN_A
from .core.model import Bank, Module, ModuleState
from .entity import PylontechEntity, async_track_new_entities, value_needs

PARALLEL_UPDATES = 0

UNIT_AMPERE_HOUR = "Ah"
# The longest interval between two samples that is still integrated. Longer gaps mean
# missed polls; guessing the power over them would invent energy.
MIN_MAX_GAP = timedelta(seconds=60)
MAX_GAP_POLLS = 3
_SECONDS_PER_HOUR = 3600.0
NOMINAL_CELL_VOLTAGE = 3.2  # LFP, as Pylontech rates its modules
_W_PER_KW = 1000.0

MODULE_STATE_OPTIONS = [state.value for state in ModuleState]

# Times to full or empty above this are unknown: a current small enough to need longer
# says nothing about when the bank will be full or empty (a day's solar and load cycle
# changes it long before), and a figure of weeks would only hide that.
MAX_TIME_TO_HOURS = 7 * 24.0
_MINUTES_PER_HOUR = 60.0


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _round_int(value: float | None) -> int | None:
    return None if value is None else round(value)


def _kwh(ah: float | None, volts: float | None) -> float | None:
    """Ah x V in kWh, rounded to 10 Wh (the display precision)."""
    if ah is None or volts is None:
        return None
    return round(ah * volts / _W_PER_KW, 2)


def nominal_voltage(module: Module) -> float | None:
    """3.2 V per LFP cell, when the link reports the module's cells."""
    cells = len(module.cell_voltages)
    return NOMINAL_CELL_VOLTAGE * cells if cells else None


def _module_energy(module: Module, capacity: float | None) -> float | None:
    if capacity is None:
        return None
    volts = nominal_voltage(module)
    return _kwh(capacity, volts if volts is not None else module.voltage)


def _bank_energy(bank: Bank, full: bool) -> float | None:
    """Sum over the modules at their nominal voltage, else bank Ah x measured voltage."""
    modules = bank.present_modules()
    capacity = bank.full_capacity if full else bank.remaining_capacity
    if modules and all(m.cell_voltages for m in modules):
        watt_hours = 0.0
        for m in modules:
            ah = m.full_capacity if full else m.remaining_capacity
            volts = nominal_voltage(m)
            if ah is None or volts is None:
                break
            watt_hours += ah * volts
        else:
            return round(watt_hours / _W_PER_KW, 2)
    return _kwh(capacity, bank.voltage)


def _minutes(ah: float, amperes: float) -> int | None:
    """Ah at a steady current, in whole minutes; None beyond ``MAX_TIME_TO_HOURS``."""
    hours = max(0.0, ah) / amperes
    return None if hours > MAX_TIME_TO_HOURS else round(hours * _MINUTES_PER_HOUR)


def _rate(current: float, limit: float | None) -> float | None:
    """Return the current the estimate runs at: the measured one, capped by the limit.

    None at or below ``CHARGING_CURRENT_MIN_A`` (idle, or flowing the other way). The
    inverter must keep the current within the limit the BMS sends it, so a current above
    it does not last; a limit at zero means the BMS stops the flow (no estimate).
    """
    rate = current if limit is None else min(current, limit)
    return rate if rate > CHARGING_CURRENT_MIN_A else None


def time_to_full(bank: Bank) -> int | None:
    """Minutes until full at the present charge current (None unless charging).

    (full - remaining) / charge current, the current capped by the charge current limit.
    Approximate: the constant-voltage end of a charge draws less and less current, so
    the last percent takes longer than this says.
    """
    current, remaining, full = bank.current, bank.remaining_capacity, bank.full_capacity
    if current is None or remaining is None or full is None or full <= 0:
        return None
    if (rate := _rate(current, bank.charge_current_limit)) is None:
        return None
    return _minutes(full - remaining, rate)


def time_to_empty(bank: Bank) -> int | None:
    """Minutes until the BMS counts the bank empty at the present discharge current.

    remaining / discharge current, the current capped by the discharge current limit;
    None unless discharging. Empty is 0 Ah as the BMS counts it: an inverter with a
    low-SOC or low-voltage cut-off stops earlier.
    """
    current, remaining, full = bank.current, bank.remaining_capacity, bank.full_capacity
    if current is None or remaining is None or full is None or full <= 0:
        return None
    if (rate := _rate(-current, bank.discharge_current_limit)) is None:
        return None
    return _minutes(min(remaining, full), rate)


def _spread_mv(spread: float | None) -> int | None:
    return None if spread is None else round(spread * 1000)


def _state(module: Module) -> str | None:
    # A console state word this integration does not know yet is shown as unknown.
    return module.state if module.state in MODULE_STATE_OPTIONS else None


@dataclass(frozen=True, kw_only=True)
class BankSensorDescription(SensorEntityDescription):
    """A sensor of the whole bank; ``needs`` = the Bank fields it is made of (else its key).

    ``create_on_needs``: created once every field of ``needs`` is known, even while the
    value itself is unknown (a time to full while the bank is idle); else once the value is.
    """

    value_fn: Callable[[Bank], StateType]
    needs: tuple[str, ...] = ()
    create_on_needs: bool = False


@dataclass(frozen=True, kw_only=True)
class ModuleSensorDescription(SensorEntityDescription):
    """A sensor of one module; ``needs`` = the Module fields it is made of (else its key)."""

    value_fn: Callable[[Module], StateType]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModuleSeriesDescription(SensorEntityDescription):
    """One sensor per item of a per-module series (temperature sensors, cells)."""

    series_fn: Callable[[Module], tuple[float, ...]]
    digits: int
    needs: tuple[str, ...]  # the Module field of the series
    cells: bool = False  # only when the cell-entities option is on


@dataclass(frozen=True, kw_only=True)
class EnergyCounterDescription(SensorEntityDescription):
    """An energy counter integrated from power; ``sign`` +1 charged, -1 discharged."""

    sign: int
    power_fn: Callable[[Bank | Module], float | None]
    needs: tuple[str, ...] = ("voltage", "current")


def _voltage(key: str, digits: int = 2, **kwargs: Any) -> dict[str, Any]:
    """Return the fields a voltage description shares."""
    return {
        "key": key,
        "translation_key": key,
        "device_class": SensorDeviceClass.VOLTAGE,
        "native_unit_of_measurement": UnitOfElectricPotential.VOLT,
        "state_class": SensorStateClass.MEASUREMENT,
        "suggested_display_precision": digits,
        **kwargs,
    }


def _common(cls: type, energy_fn: Callable[[Any, bool], float | None]) -> list[Any]:
    """Descriptions the bank and each module share (``value_fn`` reads the same fields)."""
    return [
        cls(
            **_voltage("voltage"),
            value_fn=lambda o: _round(o.voltage, 2),
        ),
        cls(
            key="current",
            translation_key="current",
            device_class=SensorDeviceClass.CURRENT,
            native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            value_fn=lambda o: _round(o.current, 1),
        ),
        cls(
            key="power",
            translation_key="power",
            needs=("voltage", "current"),
            device_class=SensorDeviceClass.POWER,
            native_unit_of_measurement=UnitOfPower.WATT,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            value_fn=lambda o: _round_int(o.power),
        ),
        cls(
            key="soc",
            translation_key="soc",
            device_class=SensorDeviceClass.BATTERY,
            native_unit_of_measurement=PERCENTAGE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            value_fn=lambda o: _round_int(o.soc),
        ),
        cls(
            key="soh",
            translation_key="soh",
            native_unit_of_measurement=PERCENTAGE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            value_fn=lambda o: _round_int(o.soh),
        ),
        cls(
            key="temperature",
            translation_key="temperature",
            device_class=SensorDeviceClass.TEMPERATURE,
            native_unit_of_measurement=UnitOfTemperature.CELSIUS,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            value_fn=lambda o: _round(o.temperature, 1),
        ),
        cls(
            key="remaining_capacity",
            translation_key="remaining_capacity",
            native_unit_of_measurement=UNIT_AMPERE_HOUR,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            value_fn=lambda o: _round(o.remaining_capacity, 1),
        ),
        cls(
            key="full_capacity",
            translation_key="full_capacity",
            native_unit_of_measurement=UNIT_AMPERE_HOUR,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=1,
            value_fn=lambda o: _round(o.full_capacity, 1),
        ),
        cls(
            key="stored_energy",
            translation_key="stored_energy",
            needs=("remaining_capacity",),
            device_class=SensorDeviceClass.ENERGY_STORAGE,
            native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=2,
            value_fn=lambda o: energy_fn(o, False),
        ),
        cls(
            key="energy_capacity",
            translation_key="energy_capacity",
            needs=("full_capacity",),
            device_class=SensorDeviceClass.ENERGY_STORAGE,
            native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=2,
            value_fn=lambda o: energy_fn(o, True),
        ),
        cls(
            **_voltage("cell_voltage_min", 3),
            value_fn=lambda o: _round(o.cell_voltage_min, 3),
        ),
        cls(
            **_voltage("cell_voltage_max", 3),
            value_fn=lambda o: _round(o.cell_voltage_max, 3),
        ),
        cls(
            key="cell_voltage_spread",
            translation_key="cell_voltage_spread",
            needs=("cell_voltage_min", "cell_voltage_max"),
            device_class=SensorDeviceClass.VOLTAGE,
            native_unit_of_measurement=UnitOfElectricPotential.MILLIVOLT,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            value_fn=lambda o: _spread_mv(o.cell_voltage_spread),
        ),
    ]


def _limit[D: (BankSensorDescription, ModuleSensorDescription)](
    cls: type[D], key: str, unit: str, device_class: SensorDeviceClass
) -> D:
    """Describe a charge/discharge limit: the bank's (sent to the inverter) or a module's own.

    RS485 0x92 answers per module, so modules carry their own limits and the bank's is
    derived from them; both are diagnostic values.
    """
    return cls(
        key=key,
        translation_key=key,
        device_class=device_class,
        native_unit_of_measurement=unit,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda part: _round(getattr(part, key), 1),
    )


BANK_SENSORS: tuple[BankSensorDescription, ...] = (
    *_common(BankSensorDescription, _bank_energy),
    _limit(
        BankSensorDescription,
        "charge_voltage_limit",
        UnitOfElectricPotential.VOLT,
        SensorDeviceClass.VOLTAGE,
    ),
    _limit(
        BankSensorDescription,
        "discharge_voltage_limit",
        UnitOfElectricPotential.VOLT,
        SensorDeviceClass.VOLTAGE,
    ),
    _limit(
        BankSensorDescription,
        "charge_current_limit",
        UnitOfElectricCurrent.AMPERE,
        SensorDeviceClass.CURRENT,
    ),
    _limit(
        BankSensorDescription,
        "discharge_current_limit",
        UnitOfElectricCurrent.AMPERE,
        SensorDeviceClass.CURRENT,
    ),
    BankSensorDescription(
        key="module_count",
        translation_key="module_count",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda bank: bank.module_count,
    ),
    BankSensorDescription(
        key="time_to_full",
        translation_key="time_to_full",
        needs=("current", "remaining_capacity", "full_capacity"),
        create_on_needs=True,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=time_to_full,
    ),
    BankSensorDescription(
        key="time_to_empty",
        translation_key="time_to_empty",
        needs=("current", "remaining_capacity", "full_capacity"),
        create_on_needs=True,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=time_to_empty,
    ),
)

MODULE_SENSORS: tuple[ModuleSensorDescription, ...] = (
    *_common(
        ModuleSensorDescription,
        lambda m, full: _module_energy(m, m.full_capacity if full else m.remaining_capacity),
    ),
    ModuleSensorDescription(
        key="temperature_min",
        translation_key="temperature_min",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda m: _round(m.temperature_min, 1),
    ),
    ModuleSensorDescription(
        key="temperature_max",
        translation_key="temperature_max",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda m: _round(m.temperature_max, 1),
    ),
    ModuleSensorDescription(
        key="mosfet_temperature",
        translation_key="mosfet_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda m: _round(m.mosfet_temperature, 1),
    ),
    ModuleSensorDescription(
        key="cycles",
        translation_key="cycles",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda m: m.cycles,
    ),
    _limit(
        ModuleSensorDescription,
        "charge_voltage_limit",
        UnitOfElectricPotential.VOLT,
        SensorDeviceClass.VOLTAGE,
    ),
    _limit(
        ModuleSensorDescription,
        "discharge_voltage_limit",
        UnitOfElectricPotential.VOLT,
        SensorDeviceClass.VOLTAGE,
    ),
    _limit(
        ModuleSensorDescription,
        "charge_current_limit",
        UnitOfElectricCurrent.AMPERE,
        SensorDeviceClass.CURRENT,
    ),
    _limit(
        ModuleSensorDescription,
        "discharge_current_limit",
        UnitOfElectricCurrent.AMPERE,
        SensorDeviceClass.CURRENT,
    ),
    ModuleSensorDescription(
        key="state",
        translation_key="state",
        device_class=SensorDeviceClass.ENUM,
        options=MODULE_STATE_OPTIONS,
        value_fn=_state,
    ),
)

MODULE_SERIES: tuple[ModuleSeriesDescription, ...] = (
    ModuleSeriesDescription(
        key="temperature_sensor",
        translation_key="temperature_sensor",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        series_fn=lambda m: m.temperatures,
        digits=1,
        needs=("temperatures",),
    ),
    ModuleSeriesDescription(
        key="cell_voltage",
        translation_key="cell_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=3,
        entity_registry_enabled_default=False,
        series_fn=lambda m: m.cell_voltages,
        digits=3,
        needs=("cell_voltages",),
        cells=True,
    ),
    ModuleSeriesDescription(
        key="cell_temperature",
        translation_key="cell_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_registry_enabled_default=False,
        series_fn=lambda m: m.cell_temperatures,
        digits=1,
        needs=("cell_temperatures",),
        cells=True,
    ),
)

ENERGY_COUNTERS: tuple[EnergyCounterDescription, ...] = (
    EnergyCounterDescription(
        key="energy_charged",
        translation_key="energy_charged",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=2,
        sign=1,
        power_fn=lambda o: o.power,
    ),
    EnergyCounterDescription(
        key="energy_discharged",
        translation_key="energy_discharged",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=2,
        sign=-1,
        power_fn=lambda o: o.power,
    ),
)


def trapezoid_split(p0: float, p1: float, seconds: float) -> tuple[float, float]:
    """Energy (Wh) charged and discharged while power moves linearly from p0 to p1 (W).

    Positive power charges. When the sign changes the line crosses zero inside the
    interval and each side's triangle goes to its own counter.
    """
    hours = seconds / _SECONDS_PER_HOUR
    if p0 >= 0 and p1 >= 0:
        return (p0 + p1) / 2 * hours, 0.0
    if p0 <= 0 and p1 <= 0:
        return 0.0, -(p0 + p1) / 2 * hours
    positive, negative = (p0, -p1) if p0 > 0 else (p1, -p0)
    # Zero crossing at fraction positive/(positive+negative) of the interval.
    share = hours / (positive + negative)
    return positive * positive / 2 * share, negative * negative / 2 * share


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PylontechConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the sensors the link supports; add more when new values or modules appear."""
    cells = bool(entry.options.get(CONF_CELL_ENTITIES, DEFAULT_CELL_ENTITIES))
    coordinator = entry.runtime_data.coordinator

    def candidates(bank: Bank) -> Iterable[tuple[tuple[Any, ...], Callable[[], Entity]]]:
        carried = coordinator.configured_capability
        for description in BANK_SENSORS:
            if carried.carries_bank(*value_needs(description)) and _has_value(description, bank):
                yield (None, description.key), _factory(PylontechSensor, entry, description)
        if bank.power is not None:
            for counter in ENERGY_COUNTERS:
                if carried.carries_bank(*counter.needs):
                    yield (None, counter.key), _factory(EnergyCounterSensor, entry, counter)
        for module in bank.present_modules():
            for module_description in MODULE_SENSORS:
                if carried.carries_module(*value_needs(module_description)) and (
                    module_description.value_fn(module) is not None
                ):
                    yield (
                        (module.key, module_description.key),
                        _factory(PylontechSensor, entry, module_description, module),
                    )
            if module.power is not None and carried.carries_module("voltage", "current"):
                for counter in ENERGY_COUNTERS:
                    yield (
                        (module.key, counter.key),
                        _factory(EnergyCounterSensor, entry, counter, module),
                    )
            for series in MODULE_SERIES:
                if (series.cells and not cells) or not carried.carries_module(*series.needs):
                    continue
                for position in range(len(series.series_fn(module))):
                    yield (
                        (module.key, series.key, position),
                        _factory(SeriesSensor, entry, series, module, position),
                    )

    async_track_new_entities(hass, entry, async_add_entities, candidates)


def _has_value(description: BankSensorDescription, bank: Bank) -> bool:
    """Whether the snapshot has what the description's entity is created for."""
    if description.create_on_needs:
        return all(getattr(bank, name) is not None for name in description.needs)
    return description.value_fn(bank) is not None


def _factory(cls: type[Entity], *args: Any) -> Callable[[], Entity]:
    return lambda: cls(*args)


class PylontechSensor(PylontechEntity, SensorEntity):
    """A value of the bank or of one module."""

    entity_description: BankSensorDescription | ModuleSensorDescription

    @property
    @override
    def native_value(self) -> StateType:
        """The value from the latest snapshot (None when the link did not carry it)."""
        description = self.entity_description
        if isinstance(description, BankSensorDescription):
            return description.value_fn(self.bank)
        module = self.module
        return None if module is None else description.value_fn(module)


class SeriesSensor(PylontechEntity, SensorEntity):
    """One item of a module's series: a temperature sensor, a cell voltage or temperature."""

    entity_description: ModuleSeriesDescription

    def __init__(
        self,
        entry: PylontechConfigEntry,
        description: ModuleSeriesDescription,
        module: Module,
        position: int,
    ) -> None:
        """Create the entity for item ``position`` (0-based) of the series."""
        super().__init__(
            entry,
            description,
            module,
            suffix=str(position + 1),
            placeholders={"number": str(position + 1)},
        )
        self._position = position

    @property
    @override
    def native_value(self) -> StateType:
        """The item's value (None when the series is shorter in this snapshot)."""
        module = self.module
        if module is None:
            return None
        series = self.entity_description.series_fn(module)
        if self._position >= len(series):
            return None
        return round(series[self._position], self.entity_description.digits)


class EnergyCounterSensor(PylontechEntity, RestoreSensor):
    """Energy charged into or discharged from the bank or a module, for the energy dashboard."""

    entity_description: EnergyCounterDescription

    def __init__(
        self,
        entry: PylontechConfigEntry,
        description: EnergyCounterDescription,
        module: Module | None = None,
    ) -> None:
        """Start at zero; ``async_added_to_hass`` restores the last total."""
        super().__init__(entry, description, module)
        self._total_kwh = 0.0
        self._last_sample: tuple[float, float] | None = None  # (monotonic s, W)
        interval = self.coordinator.update_interval or MIN_MAX_GAP
        self._max_gap = max(MIN_MAX_GAP, interval * MAX_GAP_POLLS).total_seconds()
        self._pending_tick: Any = None

    @override
    async def async_added_to_hass(self) -> None:
        """Restore the total and start sampling on every snapshot."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is not None and last.native_value is not None:
            try:
                restored = float(str(last.native_value))
            except ValueError:
                restored = None
            if restored is not None and restored >= 0:
                self._total_kwh = restored
        self.async_on_remove(self.coordinator.async_add_fault_listener(self._on_snapshot))
        self._sample()

    @override
    async def async_will_remove_from_hass(self) -> None:
        """Drop a sample scheduled for a snapshot that will not be seen."""
        if self._pending_tick is not None:
            self._pending_tick.cancel()
            self._pending_tick = None
        await super().async_will_remove_from_hass()

    @callback
    def _on_snapshot(self, update: FaultUpdate) -> None:
        """Sample a snapshot (changed or not) once the coordinator has published it.

        The coordinator calls this just before it replaces ``data``; sampling right after
        keeps the trapezoid's end point on the new snapshot's power.
        """
        if self._pending_tick is None:
            self._pending_tick = self.hass.loop.call_soon(self._sample_after_snapshot)

    @callback
    def _sample_after_snapshot(self) -> None:
        self._pending_tick = None
        if self._sample():
            self.async_write_if_changed()

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        self._sample()
        super()._handle_coordinator_update()

    def _power(self) -> float | None:
        if self.module_key is None:
            return self.entity_description.power_fn(self.bank)
        module = self.module
        return None if module is None else self.entity_description.power_fn(module)

    def _sample(self) -> bool:
        """Integrate up to now; returns whether the total changed."""
        power = self._power() if self.available else None
        if power is None:
            self._last_sample = None  # a gap: nothing is integrated across it
            return False
        now = time.monotonic()
        last, self._last_sample = self._last_sample, (now, power)
        if last is None:
            return False
        seconds = now - last[0]
        if seconds <= 0 or seconds > self._max_gap:
            return False
        charged, discharged = trapezoid_split(last[1], power, seconds)
        energy_wh = charged if self.entity_description.sign > 0 else discharged
        if energy_wh <= 0:
            return False
        before = self.native_value
        self._total_kwh += energy_wh / _W_PER_KW
        return self.native_value != before

    @property
    @override
    def native_value(self) -> float:
        """The total in kWh, to the watt-hour."""
        return round(self._total_kwh, 3)
