"""Sensors against the simulated bank: every link, availability, state writes, energy."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
import re

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from hypothesis import given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import mock_restore_cache_with_extra_data
from syrupy.assertion import SnapshotAssertion

from custom_components.pylontech.const import CONF_CELL_ENTITIES, DOMAIN
from custom_components.pylontech.core.model import Bank, Module
from custom_components.pylontech.sensor import (
    BANK_SENSORS,
    MODULE_SENSORS,
    trapezoid_split,
)
from simulator.simulator import BatterySimulator

from .conftest import setup_entry
from .entity_helpers import (
    LINKS,
    assert_platform_snapshot,
    coordinator_of,
    entity_id,
    entries_of,
    link_entry,
    setup_link,
    unload,
    with_ha_serializer,
)

CELL = re.compile(r"_cell_(voltage|temperature)_\d+$")
BANK_ENERGY = "sensor.pylontech_us3000c_energy_charged"
BANK_DISCHARGED = "sensor.pylontech_us3000c_energy_discharged"


@pytest.fixture
def ha_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots of registry entries and states without random ids and timestamps."""
    return with_ha_serializer(snapshot)


@pytest.mark.parametrize("link", LINKS)
async def test_sensors(
    hass: HomeAssistant, simulator: BatterySimulator, ha_snapshot: SnapshotAssertion, link: str
) -> None:
    """Registry entries and states of every sensor, on each link."""
    entry = await setup_link(hass, simulator, link)
    try:
        assert_platform_snapshot(hass, entry, "sensor", ha_snapshot)
    finally:
        await unload(hass, entry)


async def test_values_match_the_bank(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """Bank and module sensors show the link's values at their display precision."""
    entry = await setup_link(hass, simulator, "rs485")
    try:
        bank = coordinator_of(entry).data
        truth = simulator.snapshot()
        voltage = hass.states.get(entity_id(hass, "sensor", f"{entry.entry_id}_voltage"))
        assert voltage is not None
        assert float(voltage.state) == round(bank.voltage, 2)
        assert voltage.attributes["unit_of_measurement"] == "V"
        serial = simulator.bank.serial(2)
        module_voltage = hass.states.get(
            entity_id(hass, "sensor", f"{entry.entry_id}_module_sn_{serial}_voltage")
        )
        assert module_voltage is not None
        assert float(module_voltage.state) == round(truth.module(2).voltage, 2)
        soc = hass.states.get(entity_id(hass, "sensor", f"{entry.entry_id}_soc"))
        assert soc is not None
        assert soc.attributes["device_class"] == "battery"
        assert soc.attributes["state_class"] == "measurement"
        state = hass.states.get(
            entity_id(hass, "sensor", f"{entry.entry_id}_module_sn_{serial}_state")
        )
        assert state is not None
        assert state.state == truth.module(2).state
        # Stored energy at the nominal 3.2 V per cell (15 cells: 48 V).
        stored = hass.states.get(
            entity_id(hass, "sensor", f"{entry.entry_id}_module_sn_{serial}_stored_energy")
        )
        module = bank.module(2)
        assert len(module.cell_voltages) == 15
        assert float(stored.state) == round(module.remaining_capacity * 48.0 / 1000, 2)
        assert state.attributes["options"] == [
            "charge",
            "discharge",
            "idle",
            "sleep",
            "error",
            "absent",
        ]
    finally:
        await unload(hass, entry)


async def test_module_dropout_makes_its_sensors_unavailable(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A module that stops answering: its sensors unavailable, the rest live; and back."""
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    dropped = f"{entry.entry_id}_module_sn_{simulator.bank.serial(3)}_voltage"
    kept = f"{entry.entry_id}_module_sn_{simulator.bank.serial(1)}_voltage"
    bank_voltage = f"{entry.entry_id}_voltage"
    try:
        simulator.faults.drop_module(3)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert hass.states.get(entity_id(hass, "sensor", dropped)).state == STATE_UNAVAILABLE
        assert hass.states.get(entity_id(hass, "sensor", kept)).state != STATE_UNAVAILABLE
        assert hass.states.get(entity_id(hass, "sensor", bank_voltage)).state != STATE_UNAVAILABLE
        simulator.faults.restore_module(3)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        state = hass.states.get(entity_id(hass, "sensor", dropped))
        assert float(state.state) == round(simulator.snapshot().module(3).voltage, 2)
    finally:
        await unload(hass, entry)


async def test_missing_value_is_unknown(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """A value the snapshot does not carry shows as unknown, not 0 or unavailable."""
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    try:
        bank = coordinator.data
        module = bank.modules[0]
        coordinator.async_set_updated_data(
            replace(
                bank,
                temperature=None,
                modules=(replace(module, cycles=None), *bank.modules[1:]),
            )
        )
        await hass.async_block_till_done()
        temperature = entity_id(hass, "sensor", f"{entry.entry_id}_temperature")
        cycles = entity_id(
            hass, "sensor", f"{entry.entry_id}_module_sn_{simulator.bank.serial(1)}_cycles"
        )
        assert hass.states.get(temperature).state == STATE_UNKNOWN
        assert hass.states.get(cycles).state == STATE_UNKNOWN
    finally:
        await unload(hass, entry)


async def test_no_state_writes_without_visible_change(
    hass: HomeAssistant, simulator: BatterySimulator, freezer: FrozenDateTimeFactory
) -> None:
    """Identical polls and noise below the display precision write no state.

    The clock is frozen so the energy counters (which do grow while the bank charges)
    stay put.
    """
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    changes: list[Event] = []
    unsubscribe = hass.bus.async_listen("state_changed", changes.append)
    try:
        await coordinator.async_refresh()
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert changes == []

        bank = coordinator.data
        noisy = replace(
            bank,
            voltage=bank.voltage + 0.0004,
            modules=tuple(replace(m, voltage=m.voltage + 0.0004) for m in bank.modules),
        )
        assert noisy != bank
        coordinator.async_set_updated_data(noisy)
        await hass.async_block_till_done()
        assert changes == []

        simulator.bank.step(120)  # a real change: values move
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert changes
    finally:
        unsubscribe()
        await unload(hass, entry)


async def test_one_changed_value_writes_only_its_entities(
    hass: HomeAssistant, simulator: BatterySimulator, freezer: FrozenDateTimeFactory
) -> None:
    """A snapshot where one module's temperature moved writes only the entities showing it.

    Counts ``state_reported`` too: Home Assistant fires it for a write that leaves the
    state as it was, which is what every other entity would cost without the check.
    """
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    written: list[str] = []

    @callback
    def record(event: Event) -> None:
        written.append(event.data["entity_id"])

    @callback
    def every_event(_data: object) -> bool:
        return True

    unsubscribe = [
        # Home Assistant requires a filter for state_reported; keep every event.
        hass.bus.async_listen(event_type, record, event_filter=every_event)
        for event_type in ("state_changed", "state_reported")
    ]
    try:
        bank = coordinator.data
        module = bank.module(2)
        assert module is not None
        assert module.temperature is not None
        warmer = replace(module, temperature=module.temperature + 1.0)
        coordinator.async_set_updated_data(
            replace(bank, modules=tuple(warmer if m.key == warmer.key else m for m in bank.modules))
        )
        await hass.async_block_till_done()
        entities = len(er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id))
        assert entities > 100
        assert written
        assert all("module_2" in entity for entity in written), written
        assert len(written) <= 3  # the module's temperature, and at most its min/max
    finally:
        for stop in unsubscribe:
            stop()
        await unload(hass, entry)


async def test_energy_counters_integrate_power(
    hass: HomeAssistant, simulator: BatterySimulator, freezer: FrozenDateTimeFactory
) -> None:
    """Charged energy grows by power x time between polls; gaps are skipped."""
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    try:
        power = coordinator.data.power
        assert power is not None
        assert power > 0  # the frozen bank is charging
        assert float(hass.states.get(BANK_ENERGY).state) == 0.0

        freezer.tick(timedelta(seconds=50))
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        expected = power * 50 / 3_600_000
        charged = float(hass.states.get(BANK_ENERGY).state)
        assert charged == pytest.approx(expected, abs=0.0011)
        assert float(hass.states.get(BANK_DISCHARGED).state) == 0.0

        serial = simulator.bank.serial(1)
        module_energy = entity_id(
            hass, "sensor", f"{entry.entry_id}_module_sn_{serial}_energy_charged"
        )
        module_power = coordinator.data.module(1).power
        assert float(hass.states.get(module_energy).state) == pytest.approx(
            module_power * 50 / 3_600_000, abs=0.0011
        )

        # Far longer than a few polls: no power is guessed over the gap.
        freezer.tick(timedelta(hours=2))
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert float(hass.states.get(BANK_ENERGY).state) == charged

    finally:
        await unload(hass, entry)


async def test_energy_counters_restore(hass: HomeAssistant, simulator: BatterySimulator) -> None:
    """The counters continue from the totals saved before a restart."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(BANK_ENERGY, "12.345"),
                {"native_value": 12.345, "native_unit_of_measurement": "kWh"},
            ),
            (
                State(BANK_DISCHARGED, "7.5"),
                {"native_value": 7.5, "native_unit_of_measurement": "kWh"},
            ),
        ],
    )
    entry = await setup_link(hass, simulator, "rs485")
    try:
        assert hass.states.get(BANK_ENERGY).state == "12.345"
        assert hass.states.get(BANK_DISCHARGED).state == "7.5"
        state = hass.states.get(BANK_ENERGY)
        assert state.attributes["state_class"] == "total_increasing"
        assert state.attributes["device_class"] == "energy"
    finally:
        await unload(hass, entry)


async def test_cell_entities_disabled_by_default(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Cell sensors exist disabled; enabled, they show the cell's voltage."""
    entry = await setup_link(hass, simulator, "rs485")
    registry = er.async_get(hass)
    serial = simulator.bank.serial(2)
    cell = entity_id(hass, "sensor", f"{entry.entry_id}_module_sn_{serial}_cell_voltage_4")
    try:
        cells = [e for e in entries_of(hass, entry, "sensor") if CELL.search(e.unique_id)]
        assert len(cells) == 3 * 15
        assert all(e.disabled_by is er.RegistryEntryDisabler.INTEGRATION for e in cells)
        assert hass.states.get(cell) is None
        registry.async_update_entity(cell, disabled_by=None)
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        value = float(hass.states.get(cell).state)
        assert value == simulator.snapshot().module(2).cell_voltages[3]
    finally:
        await unload(hass, entry)


async def test_no_cell_entities_when_option_off(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """With the cell-entities option off, no cell sensors are created."""
    entry = await setup_link(hass, simulator, "console", **{CONF_CELL_ENTITIES: False})
    try:
        unique_ids = [e.unique_id for e in entries_of(hass, entry, "sensor")]
        assert unique_ids
        assert not [u for u in unique_ids if CELL.search(u)]
    finally:
        await unload(hass, entry)


def test_descriptions_round_to_their_display_precision() -> None:
    """Every value_fn rounds to the precision the UI shows (no writes for hidden noise)."""

    module = Module(
        index=1,
        voltage=49.56789,
        current=18.04321,
        temperature=26.8765,
        soc=48.8765,
        soh=97.4321,
        remaining_capacity=36.15678,
        full_capacity=74.04321,
        cell_voltage_min=3.30149,
        cell_voltage_max=3.30851,
        temperature_min=24.34,
        temperature_max=25.06,
        mosfet_temperature=26.84,
    )
    bank = Bank(modules=(module,), voltage=49.56789, current=54.12345).with_totals()
    for description in BANK_SENSORS:
        value = description.value_fn(bank)
        if isinstance(value, float) and description.suggested_display_precision is not None:
            assert value == round(value, description.suggested_display_precision), description.key
    for description in MODULE_SENSORS:
        value = description.value_fn(module)
        if isinstance(value, float) and description.suggested_display_precision is not None:
            assert value == round(value, description.suggested_display_precision), description.key


@pytest.mark.parametrize(
    ("p0", "p1", "seconds", "charged", "discharged"),
    [
        (1000.0, 1000.0, 3600.0, 1000.0, 0.0),
        (0.0, 2000.0, 3600.0, 1000.0, 0.0),
        (-500.0, -1500.0, 1800.0, 0.0, 500.0),
        # Crossing zero halfway: a 250 Wh triangle on each side.
        (1000.0, -1000.0, 3600.0, 250.0, 250.0),
        # Crossing at one quarter: 1000*900/2 s and 3000*2700/2 s.
        (1000.0, -3000.0, 3600.0, 125.0, 1125.0),
    ],
)
def test_trapezoid_split(
    p0: float, p1: float, seconds: float, charged: float, discharged: float
) -> None:
    """The trapezoid is split exactly at the zero crossing."""
    got = trapezoid_split(p0, p1, seconds)
    assert got == pytest.approx((charged, discharged))


async def test_position_ids_move_to_the_barcode(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """Entities made while a module's barcode was unknown move to it, keeping entity ids."""
    entry = link_entry(simulator, "rs485")
    entry.add_to_hass(hass)
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    position = f"{entry.entry_id}_module_0_2"
    old_device = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, position)}, name="Module 2"
    )
    old_entity = entities.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{position}_voltage",
        config_entry=entry,
        device_id=old_device.id,
        suggested_object_id="old_module_2_voltage",
    )
    await setup_entry(hass, entry)
    try:
        serial = simulator.bank.serial(2)
        moved = entities.async_get(old_entity.entity_id)
        assert moved is not None
        assert moved.unique_id == f"{entry.entry_id}_module_sn_{serial}_voltage"
        device = devices.async_get(old_device.id)
        assert device is not None
        assert device.identifiers == {(DOMAIN, f"{entry.entry_id}_module_sn_{serial}")}
        assert device.serial_number == serial
        state = hass.states.get(old_entity.entity_id)
        assert state is not None
        assert float(state.state) == round(simulator.snapshot().module(2).voltage, 2)
    finally:
        await unload(hass, entry)


async def test_device_follows_firmware_updates(
    hass: HomeAssistant, simulator: BatterySimulator
) -> None:
    """A module reporting new identity values updates its device."""
    entry = await setup_link(hass, simulator, "rs485")
    coordinator = coordinator_of(entry)
    serial = simulator.bank.serial(3)
    try:
        bank = coordinator.data
        modules = tuple(replace(m, firmware="9.9") if m.index == 3 else m for m in bank.modules)
        coordinator.async_set_updated_data(replace(bank, modules=modules))
        await hass.async_block_till_done()
        device = dr.async_get(hass).async_get_device_by_identifier(
            (DOMAIN, f"{entry.entry_id}_module_sn_{serial}"), entry.entry_id
        )
        assert device is not None
        assert device.sw_version == "9.9"
        assert device.name == "Module 3"
        assert device.via_device_id == entry.runtime_data.bank_device_id
    finally:
        await unload(hass, entry)


@settings(max_examples=300, deadline=None)
@given(
    p0=st.floats(min_value=-20_000, max_value=20_000, allow_nan=False),
    p1=st.floats(min_value=-20_000, max_value=20_000, allow_nan=False),
    seconds=st.floats(min_value=0.001, max_value=600, allow_nan=False),
)
def test_trapezoid_split_conserves_energy(p0: float, p1: float, seconds: float) -> None:
    """Both parts are non-negative and charged minus discharged is the trapezoid."""
    charged, discharged = trapezoid_split(p0, p1, seconds)
    assert charged >= 0
    assert discharged >= 0
    net = (p0 + p1) / 2 * seconds / 3600
    assert charged - discharged == pytest.approx(net, rel=1e-9, abs=1e-9)
