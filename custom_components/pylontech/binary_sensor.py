"""Binary sensors: protections, alarms, charge state and flags, and link connectivity.

Protections and alarms are grouped into families (``FLAG_FAMILIES``): one entity per
family says whether any of its members is active, and its ``flags`` attribute names
the members, so a CAN link's generic "over-temperature" bit and an RS485 link's
"charge over-temperature" both land on the same entity. Only the families a configured
link can observe get entities (the capability table, ``core/capabilities.py``): a flag no
configured link can observe is never shown as "off"/"Safe". A family that shows up anyway
(a firmware that reports more) gets its entity when it does. A bank entity is on when the
bank or any present module reports a member, and available while a live link observes a
member (module flags only while the link that reads the modules is live).

"Battery" (device class ``battery``, the target of Home Assistant's ``battery.became_low``
trigger and ``battery.is_low`` condition) is on while the BMS says the bank or module is
low, from whichever of its inputs a link carries (``BatteryLowSensor``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)

# Home Assistant 2026.10 does not re-export the device classes from the package (no __all__).
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PylontechConfigEntry, PylontechCoordinator
from .core.faults.catalog import CHARGING_CURRENT_MIN_A, LOW_SOC_THRESHOLD
from .core.model import Alarm, Bank, Module, ModuleState, Protection
from .entity import PylontechEntity, async_track_new_entities, value_needs

PARALLEL_UPDATES = 0

KIND_PROTECTION = "protection"
KIND_ALARM = "alarm"


@dataclass(frozen=True, kw_only=True)
class FlagFamilyDescription(BinarySensorEntityDescription):
    """Protections or alarms that mean the same thing to the user."""

    kind: str  # KIND_PROTECTION or KIND_ALARM
    members: frozenset[Protection] | frozenset[Alarm]


def _protection(key: str, *members: Protection) -> FlagFamilyDescription:
    return FlagFamilyDescription(
        key=f"protection_{key}",
        translation_key=f"protection_{key}",
        device_class=BinarySensorDeviceClass.SAFETY,
        kind=KIND_PROTECTION,
        members=frozenset(members),
    )


def _alarm(key: str, *members: Alarm) -> FlagFamilyDescription:
    return FlagFamilyDescription(
        key=f"alarm_{key}",
        translation_key=f"alarm_{key}",
        device_class=BinarySensorDeviceClass.PROBLEM,
        kind=KIND_ALARM,
        members=frozenset(members),
    )


P, A = Protection, Alarm
FLAG_FAMILIES: tuple[FlagFamilyDescription, ...] = (
    _protection("over_voltage", P.OVER_VOLTAGE, P.CELL_OVER_VOLTAGE, P.MODULE_OVER_VOLTAGE),
    _protection("under_voltage", P.UNDER_VOLTAGE, P.CELL_UNDER_VOLTAGE, P.MODULE_UNDER_VOLTAGE),
    _protection(
        "over_temperature",
        P.OVER_TEMPERATURE,
        P.CHARGE_OVER_TEMPERATURE,
        P.DISCHARGE_OVER_TEMPERATURE,
        P.MOSFET_OVER_TEMPERATURE,
    ),
    _protection(
        "under_temperature",
        P.UNDER_TEMPERATURE,
        P.CHARGE_UNDER_TEMPERATURE,
        P.DISCHARGE_UNDER_TEMPERATURE,
    ),
    _protection("charge_over_current", P.CHARGE_OVER_CURRENT),
    _protection("discharge_over_current", P.DISCHARGE_OVER_CURRENT),
    _protection("short_circuit", P.SHORT_CIRCUIT),
    _protection("reverse_polarity", P.REVERSE_POLARITY),
    _protection("system_failure", P.SENSOR_FAILURE, P.SYSTEM_ERROR),
    _protection("general", P.GENERAL),
    _alarm("high_voltage", A.HIGH_VOLTAGE, A.CELL_HIGH_VOLTAGE, A.MODULE_HIGH_VOLTAGE),
    _alarm("low_voltage", A.LOW_VOLTAGE, A.CELL_LOW_VOLTAGE, A.MODULE_LOW_VOLTAGE),
    _alarm(
        "high_temperature",
        A.HIGH_TEMPERATURE,
        A.CHARGE_HIGH_TEMPERATURE,
        A.DISCHARGE_HIGH_TEMPERATURE,
        A.MOSFET_HIGH_TEMPERATURE,
    ),
    _alarm(
        "low_temperature",
        A.LOW_TEMPERATURE,
        A.CHARGE_LOW_TEMPERATURE,
        A.DISCHARGE_LOW_TEMPERATURE,
    ),
    _alarm("high_current", A.CHARGE_HIGH_CURRENT, A.DISCHARGE_HIGH_CURRENT),
    _alarm("cell_imbalance", A.CELL_IMBALANCE),
    _alarm("sensor_error", A.CELL_VOLTAGE_ERROR, A.TEMPERATURE_SENSOR_ERROR),
    _alarm("internal_communication", A.INTERNAL_COMMUNICATION_FAIL),
    _alarm("general", A.GENERAL),
)
FAMILIES_BY_KEY: Mapping[str, FlagFamilyDescription] = {f.key: f for f in FLAG_FAMILIES}


def family_of(flag: Protection | Alarm) -> FlagFamilyDescription:
    """Return the family a protection or alarm belongs to."""
    kind = KIND_PROTECTION if isinstance(flag, Protection) else KIND_ALARM
    for family in FLAG_FAMILIES:
        if family.kind == kind and flag in family.members:
            return family
    raise KeyError(flag)  # every member of both enums has a family (tested)


def families_for(flags: Iterable[Protection | Alarm]) -> frozenset[str]:
    """Keys of the families that have a member among ``flags``."""
    return frozenset(family_of(flag).key for flag in flags)


def covers(flags: frozenset[Protection | Alarm], family: FlagFamilyDescription) -> bool:
    """Whether a link that observes ``flags`` can tell the family's state."""
    return not flags.isdisjoint(family.members)


def _active(flags: Iterable[Protection | Alarm], family: FlagFamilyDescription) -> list[str]:
    return sorted(str(flag) for flag in flags if flag in family.members)


def _flags(subject: Bank | Module, family: FlagFamilyDescription) -> frozenset[Any]:
    return subject.protections if family.kind == KIND_PROTECTION else subject.alarms


def _read(module: Module, family: FlagFamilyDescription) -> bool:
    """Whether the module's latest poll read the family's kind of flag."""
    read = module.protections_read if family.kind == KIND_PROTECTION else module.alarms_read
    return bool(read)


def _bank_observed(
    coordinator: PylontechCoordinator, bank: Bank, family: FlagFamilyDescription
) -> bool:
    """Whether the bank's "no member of the family active" is a reading now.

    So once a live link reports a member for the whole bank, or the live primary link
    read the family on every present module.
    """
    if covers(coordinator.observed_bank_flags, family):
        return True
    modules = bank.present_modules()
    return (
        coordinator.primary_live
        and bool(modules)
        and covers(coordinator.configured_capability.module_flags, family)
        and all(_read(module, family) for module in modules)
    )


def _charging(current: float | None, state: str | None) -> bool | None:
    if current is not None:
        return current > CHARGING_CURRENT_MIN_A
    if state is None:
        return None
    return state == ModuleState.CHARGE


def _discharging(current: float | None, state: str | None) -> bool | None:
    if current is not None:
        return current < -CHARGING_CURRENT_MIN_A
    if state is None:
        return None
    return state == ModuleState.DISCHARGE


@dataclass(frozen=True, kw_only=True)
class BankBinaryDescription(BinarySensorEntityDescription):
    """A yes/no value of the whole bank; ``needs`` = its Bank fields (else its key)."""

    value_fn: Callable[[Bank], bool | None]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModuleBinaryDescription(BinarySensorEntityDescription):
    """A yes/no value of one module; ``needs`` = its Module fields (else its key)."""

    value_fn: Callable[[Module], bool | None]
    needs: tuple[str, ...] = ()


BANK_BINARY_SENSORS: tuple[BankBinaryDescription, ...] = (
    BankBinaryDescription(
        key="charging",
        translation_key="charging",
        device_class=BinarySensorDeviceClass.BATTERY_CHARGING,
        needs=("current",),
        value_fn=lambda bank: _charging(bank.current, None),
    ),
    BankBinaryDescription(
        key="discharging",
        translation_key="discharging",
        needs=("current",),
        value_fn=lambda bank: _discharging(bank.current, None),
    ),
    BankBinaryDescription(
        key="charge_enabled",
        translation_key="charge_enabled",
        value_fn=lambda bank: bank.charge_enabled,
    ),
    BankBinaryDescription(
        key="discharge_enabled",
        translation_key="discharge_enabled",
        value_fn=lambda bank: bank.discharge_enabled,
    ),
    BankBinaryDescription(
        key="force_charge_1",
        translation_key="force_charge_1",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda bank: bank.force_charge_1,
    ),
    BankBinaryDescription(
        key="force_charge_2",
        translation_key="force_charge_2",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda bank: bank.force_charge_2,
    ),
    BankBinaryDescription(
        key="full_charge_request",
        translation_key="full_charge_request",
        value_fn=lambda bank: bank.full_charge_request,
    ),
)

MODULE_BINARY_SENSORS: tuple[ModuleBinaryDescription, ...] = (
    ModuleBinaryDescription(
        key="charging",
        translation_key="charging",
        device_class=BinarySensorDeviceClass.BATTERY_CHARGING,
        needs=("current",),
        value_fn=lambda m: _charging(m.current, m.state),
    ),
    ModuleBinaryDescription(
        key="discharging",
        translation_key="discharging",
        needs=("current",),
        value_fn=lambda m: _discharging(m.current, m.state),
    ),
    ModuleBinaryDescription(
        key="charge_mosfet",
        translation_key="charge_mosfet",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda m: m.charge_mosfet,
    ),
    ModuleBinaryDescription(
        key="discharge_mosfet",
        translation_key="discharge_mosfet",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda m: m.discharge_mosfet,
    ),
    ModuleBinaryDescription(
        key="fully_charged",
        translation_key="fully_charged",
        value_fn=lambda m: m.fully_charged,
    ),
)

# Battery low: what the BMS itself says about a low battery. The under-voltage protection
# and low-voltage warning families; the force-charge requests ("charge immediately", PYLON
# LV CAN protocol V1.2 0x35C bits 4-5, RS485 0x92), which the BMS raises at low SOC; and
# the SOC at or below the level the fault rules treat as fully discharged
# (``LOW_SOC_THRESHOLD``, the SR48100H manual's low-SOC cut-off, 5.6).
LOW_FAMILIES: tuple[FlagFamilyDescription, ...] = (
    FAMILIES_BY_KEY["protection_under_voltage"],
    FAMILIES_BY_KEY["alarm_low_voltage"],
)
REASON_LOW_SOC = "low_soc"
FORCE_CHARGE_FIELDS = ("force_charge_1", "force_charge_2")


@dataclass(frozen=True, kw_only=True)
class BatteryLowDescription(BinarySensorEntityDescription):
    """On while the BMS says the battery is low; ``needs`` = the values that can say so.

    Unlike other descriptions, any one of ``needs`` (or of the low flag families) is
    enough for the entity to exist and be available.
    """

    needs: tuple[str, ...]


BANK_BATTERY_LOW = BatteryLowDescription(
    key="battery_low",
    translation_key="battery_low",
    device_class=BinarySensorDeviceClass.BATTERY,
    needs=("soc", *FORCE_CHARGE_FIELDS),
)
# Modules have no force-charge request of their own (RS485 0x92 asked per module is
# folded into the bank's); their SOC and flags are enough to point at the low module.
MODULE_BATTERY_LOW = BatteryLowDescription(
    key="battery_low",
    translation_key="battery_low",
    device_class=BinarySensorDeviceClass.BATTERY,
    needs=("soc",),
)


def _low_reasons(
    soc: float | None, flags: Iterable[Protection | Alarm], requests: Mapping[str, bool | None]
) -> list[str]:
    """Why a battery counts as low: ``low_soc``, the requests and flags that are on."""
    reasons = [REASON_LOW_SOC] if soc is not None and soc <= LOW_SOC_THRESHOLD else []
    reasons += [name for name, value in requests.items() if value]
    for family in LOW_FAMILIES:
        reasons += _active(flags, family)
    return reasons


LINK_CONNECTIVITY = BinarySensorEntityDescription(
    key="link",
    translation_key="link",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)
COMPANION_CONNECTIVITY = BinarySensorEntityDescription(
    key="companion_link",
    translation_key="companion_link",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PylontechConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the binary sensors the links support; more as modules and flags appear."""
    coordinator = entry.runtime_data.coordinator
    fixed: list[Entity] = [LinkConnectivitySensor(entry, LINK_CONNECTIVITY)]
    if coordinator.link is not None and coordinator.can_link is not None:
        fixed.append(CompanionConnectivitySensor(entry, COMPANION_CONNECTIVITY))
    async_add_entities(fixed)

    def candidates(bank: Bank) -> Iterable[tuple[tuple[Any, ...], Callable[[], Entity]]]:
        carried = coordinator.configured_capability
        bank_flags = set(bank.protections) | set(bank.alarms)
        modules = bank.present_modules()
        for module in modules:
            bank_flags.update(module.protections, module.alarms)
        seen = families_for(bank_flags)
        for family in FLAG_FAMILIES:
            if covers(carried.all_bank_flags, family) or family.key in seen:
                yield (None, family.key), _factory(FlagFamilySensor, entry, family)
        for description in BANK_BINARY_SENSORS:
            if carried.carries_bank(*value_needs(description)) and (
                description.value_fn(bank) is not None
            ):
                yield (None, description.key), _factory(BankBinarySensor, entry, description)
        for module in modules:
            module_seen = families_for((*module.protections, *module.alarms))
            for family in FLAG_FAMILIES:
                if covers(carried.module_flags, family) or family.key in module_seen:
                    yield (
                        (module.key, family.key),
                        _factory(FlagFamilySensor, entry, family, module),
                    )
            for module_description in MODULE_BINARY_SENSORS:
                if carried.carries_module(*value_needs(module_description)) and (
                    module_description.value_fn(module) is not None
                ):
                    yield (
                        (module.key, module_description.key),
                        _factory(ModuleBinarySensor, entry, module_description, module),
                    )
        yield from _battery_low_candidates(entry, bank)

    async_track_new_entities(hass, entry, async_add_entities, candidates)


def _battery_low_candidates(
    entry: PylontechConfigEntry, bank: Bank
) -> Iterable[tuple[tuple[Any, ...], Callable[[], Entity]]]:
    """Battery-low entities where a configured link carries one of their inputs.

    Created before any input is known (they are unknown until then, never "off").
    """
    carried = entry.runtime_data.coordinator.configured_capability
    if any(carried.carries_bank(name) for name in BANK_BATTERY_LOW.needs) or any(
        covers(carried.all_bank_flags, family) for family in LOW_FAMILIES
    ):
        yield (None, BANK_BATTERY_LOW.key), _factory(BatteryLowSensor, entry, BANK_BATTERY_LOW)
    if not (
        any(carried.carries_module(name) for name in MODULE_BATTERY_LOW.needs)
        or any(covers(carried.module_flags, family) for family in LOW_FAMILIES)
    ):
        return
    for module in bank.present_modules():
        yield (
            (module.key, MODULE_BATTERY_LOW.key),
            _factory(BatteryLowSensor, entry, MODULE_BATTERY_LOW, module),
        )


def _factory(cls: type[Entity], *args: Any) -> Callable[[], Entity]:
    return lambda: cls(*args)


class FlagFamilySensor(PylontechEntity, BinarySensorEntity):
    """On while any protection (or alarm) of one family is active.

    The ``flags`` attribute lists the active members (e.g. ``charge_over_temperature``).
    """

    entity_description: FlagFamilyDescription

    def _active_flags(self) -> list[str]:
        family = self.entity_description
        if self.module_key is not None:
            module = self.module
            return [] if module is None else _active(_flags(module, family), family)
        bank = self.bank
        flags = set(_flags(bank, family))
        if self.coordinator.primary_live:
            # Module flags only as last read by a live link, never held from a stalled one.
            for module in bank.present_modules():
                flags.update(_flags(module, family))
        return _active(flags, family)

    @override
    def bank_value_available(self) -> bool:
        """Tell whether a live link observes a member, or none can and it was seen."""
        family = self.entity_description
        coordinator = self.coordinator
        if covers(coordinator.live_capability.all_bank_flags, family):
            return True
        return not covers(coordinator.configured_capability.all_bank_flags, family)

    def _observed(self) -> bool:
        """Whether "no member active" is a reading rather than an absence of one.

        A module's flags count once its link read them this poll (RS485 0x44, console
        `pwr N` events); the bank's once a live link reports a member for the whole bank,
        or every present module's reading does.
        """
        family = self.entity_description
        if self.module_key is not None:
            return self.module is not None and _read(self.module, family)
        return _bank_observed(self.coordinator, self.bank, family)

    @property
    @override
    def is_on(self) -> bool | None:
        """On while a member is active; unknown while nothing has read the family."""
        if self._active_flags():
            return True
        return False if self._observed() else None

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """The active members of the family."""
        return {"flags": self._active_flags()}


class BankBinarySensor(PylontechEntity, BinarySensorEntity):
    """A yes/no value of the bank."""

    entity_description: BankBinaryDescription

    @property
    @override
    def is_on(self) -> bool | None:
        """The value from the latest snapshot."""
        return self.entity_description.value_fn(self.bank)


class ModuleBinarySensor(PylontechEntity, BinarySensorEntity):
    """A yes/no value of one module."""

    entity_description: ModuleBinaryDescription

    @property
    @override
    def is_on(self) -> bool | None:
        """The value from the latest snapshot."""
        module = self.module
        return None if module is None else self.entity_description.value_fn(module)


class BatteryLowSensor(PylontechEntity, BinarySensorEntity):
    """Battery low (device class ``battery``, what ``battery.became_low`` targets).

    On while any input says low; off while at least one input is known now and none
    does; unknown while none is. The ``reasons`` attribute names what says low
    (``low_soc``, ``force_charge_1``, ``cell_low_voltage`` ...).
    """

    entity_description: BatteryLowDescription

    def _reading(self) -> tuple[bool, list[str]]:
        """Whether any input is known now, and the reasons the battery is low."""
        if self.module_key is not None:
            module = self.module
            if module is None:
                return False, []
            flags: set[Protection | Alarm] = {*module.protections, *module.alarms}
            known = module.soc is not None or any(_read(module, family) for family in LOW_FAMILIES)
            return known, _low_reasons(module.soc, flags, {})
        bank = self.bank
        flags = {*bank.protections, *bank.alarms}
        if self.coordinator.primary_live:
            # Module flags only as last read by a live link, never held from a stalled one.
            for module in bank.present_modules():
                flags.update(module.protections, module.alarms)
        requests = {name: getattr(bank, name) for name in FORCE_CHARGE_FIELDS}
        known = (
            bank.soc is not None
            or any(value is not None for value in requests.values())
            or any(_bank_observed(self.coordinator, bank, family) for family in LOW_FAMILIES)
        )
        return known, _low_reasons(bank.soc, flags, requests)

    @override
    def bank_value_available(self) -> bool:
        """Whether a live link carries one of the inputs (a stalled companion's go with it)."""
        live = self.coordinator.live_capability
        return self.coordinator.last_update_success and (
            any(live.carries_bank(name) for name in self.entity_description.needs)
            or any(covers(live.all_bank_flags, family) for family in LOW_FAMILIES)
        )

    @property
    @override
    def is_on(self) -> bool | None:
        """On while the BMS says low; unknown while no input is known."""
        known, reasons = self._reading()
        if reasons:
            return True
        return False if known else None

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """What says the battery is low."""
        return {"reasons": self._reading()[1]}


class LinkConnectivitySensor(PylontechEntity, BinarySensorEntity):
    """Whether the latest read of the bank succeeded; available even when it did not."""

    @property
    @override
    def available(self) -> bool:
        """Always: this entity reports the link's state itself."""
        return True

    @property
    @override
    def is_on(self) -> bool:
        """Whether the entry's own link delivers data now (whatever the companion does)."""
        return self.coordinator.primary_connected


class CompanionConnectivitySensor(PylontechEntity, BinarySensorEntity):
    """Whether the CAN companion link delivers data that is merged into the bank."""

    @property
    @override
    def available(self) -> bool:
        """Always: this entity reports the companion's state itself."""
        return True

    @property
    @override
    def is_on(self) -> bool:
        """Whether the companion's broadcast is live (not stale)."""
        return self.coordinator.companion_connected
