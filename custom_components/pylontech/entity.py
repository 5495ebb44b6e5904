"""Base entity and device placement for Pylontech entities.

Every entity lives either on the bank device (registered by ``__init__``) or on one
module device. A module device is named by its position ("Module 2", or "Group 1
module 2" behind an LV-Hub) and identified by the module's barcode once it is known,
so a re-cabled module keeps its entities and history; a module whose barcode was
never read is identified by its position instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import UNDEFINED
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, MANUFACTURER
from .coordinator import (
    PylontechConfigEntry,
    PylontechCoordinator,
    bank_device_identifier,
    module_device_identifier,
)
from .core.model import Bank, Module

type ModuleKey = tuple[int, int]

# Module device identifiers built from a barcode carry this marker after the entry id.
_BARCODE_MARKER = "_module_sn_"


def clean_text(value: str | None) -> str | None:
    """Make a wire string fit for the device registry; None when nothing readable is left.

    NULs, U+FFFD (bytes a decoder could not read), control and other non-printable
    characters are dropped and padding stripped: a model name of ten U+FFFD is None.
    """
    if value is None:
        return None
    text = "".join(ch for ch in value if ch.isprintable() and ch != "\ufffd").strip()
    return text or None


def bank_device_fields(entry: ConfigEntry, bank: Bank) -> dict[str, Any]:
    """Return what the bank device shows from a snapshot, cleaned like a module's texts."""
    return {
        "manufacturer": clean_text(bank.manufacturer) or MANUFACTURER,
        "model": clean_text(bank.model),
        "serial_number": clean_text(bank.serial_number),
        "sw_version": clean_text(bank.firmware),
    }


def _several_banks(hass: HomeAssistant | None, entry: ConfigEntry) -> bool:
    """Whether another entry of the domain exists (module devices then carry the bank name)."""
    if hass is None:
        return False
    return any(
        other.entry_id != entry.entry_id for other in hass.config_entries.async_entries(DOMAIN)
    )


def module_identifier(entry: ConfigEntry, module: Module) -> str:
    """Device-registry identifier (under ``DOMAIN``) of a module's device.

    The barcode when the module reported one, else its position.
    """
    if (barcode := clean_text(module.serial_number)) is not None:
        return f"{entry.entry_id}{_BARCODE_MARKER}{barcode}"
    return module_device_identifier(entry, module.key)


def barcode_from_identifier(entry: ConfigEntry, identifier: str) -> str | None:
    """Return the barcode a barcode-based module identifier names, else None."""
    prefix = f"{entry.entry_id}{_BARCODE_MARKER}"
    if identifier.startswith(prefix):
        return identifier.removeprefix(prefix) or None
    return None


def module_key_for_device(
    entry: ConfigEntry, device: dr.DeviceEntry, bank: Bank | None
) -> ModuleKey | None:
    """Return the position a barcode-identified module device occupies now, if present."""
    if bank is None:
        return None
    for domain, identifier in device.identifiers:
        if domain != DOMAIN or (barcode := barcode_from_identifier(entry, identifier)) is None:
            continue
        for module in bank.present_modules():
            if clean_text(module.serial_number) == barcode:
                return module.key
    return None


def is_barcode_module_device(entry: ConfigEntry, device: dr.DeviceEntry) -> bool:
    """Whether a device is a module device identified by barcode."""
    return any(
        domain == DOMAIN and barcode_from_identifier(entry, identifier) is not None
        for domain, identifier in device.identifiers
    )


def module_device_fields(
    entry: PylontechConfigEntry,
    bank_device_id: str,
    module: Module,
    hass: HomeAssistant | None = None,
) -> dr.DeviceInfo:
    """Describe a module device (an entity's ``device_info``, and registry keywords).

    With more than one bank (entry) the name carries the bank's ("Garage module 1"), so
    two banks' modules and their entity ids do not collide.
    """
    group, index = module.key
    placeholders = {"number": str(index)}
    if group:
        translation_key = "group_module"
        placeholders["group"] = str(group)
    else:
        translation_key = "module"
    if _several_banks(hass, entry):
        translation_key = f"bank_{translation_key}"
        placeholders["bank"] = entry.title
    return dr.DeviceInfo(
        identifiers={(DOMAIN, module_identifier(entry, module))},
        manufacturer=clean_text(module.manufacturer) or MANUFACTURER,
        model=clean_text(module.model),
        serial_number=clean_text(module.serial_number),
        sw_version=clean_text(module.firmware),
        translation_key=translation_key,
        translation_placeholders=placeholders,
        via_device_id=bank_device_id,
    )


@callback
def async_module_device_id(
    hass: HomeAssistant, entry: PylontechConfigEntry, key: ModuleKey
) -> str | None:
    """Return the device id of the module at ``key`` (registering its device if needed)."""
    runtime = entry.runtime_data
    bank = runtime.coordinator.data
    module = bank.module(key[1], key[0]) if bank is not None else None
    registry = dr.async_get(hass)
    if module is None:
        identifier = (DOMAIN, module_device_identifier(entry, key))
        device = registry.async_get_device_by_identifier(identifier, entry.entry_id)
        return device.id if device is not None else None
    fields = module_device_fields(entry, runtime.bank_device_id, module, hass)
    (identifier,) = fields["identifiers"]
    device = registry.async_get_device_by_identifier(identifier, entry.entry_id)
    if device is not None:
        return device.id
    return registry.async_get_or_create(config_entry_id=entry.entry_id, **fields).id


class PylontechEntity(CoordinatorEntity[PylontechCoordinator]):
    """An entity on the bank device or on one module device.

    ``module_key`` is None for a bank entity. ``suffix`` tells apart the entities one
    description creates several times on a device (cell 1, cell 2 ...).
    """

    _attr_has_entity_name = True

    def __init__(
        self,
        entry: PylontechConfigEntry,
        description: EntityDescription,
        module: Module | None = None,
        *,
        suffix: str | None = None,
        placeholders: dict[str, str] | None = None,
    ) -> None:
        """Place the entity on its device and derive its unique id."""
        coordinator = entry.runtime_data.coordinator
        super().__init__(coordinator)
        self.entity_description = description
        self.module_key: ModuleKey | None = module.key if module is not None else None
        key = description.key if suffix is None else f"{description.key}_{suffix}"
        if module is None:
            self._attr_unique_id = f"{entry.entry_id}_{key}"
            self._attr_device_info = dr.DeviceInfo(
                identifiers={(DOMAIN, bank_device_identifier(entry))},
            )
        else:
            self._attr_unique_id = f"{module_identifier(entry, module)}_{key}"
            self._attr_device_info = module_device_fields(
                entry, entry.runtime_data.bank_device_id, module, coordinator.hass
            )
        if placeholders:
            self._attr_translation_placeholders = placeholders
        self._last_written: tuple[Any, ...] | None = None

    @override
    async def async_added_to_hass(self) -> None:
        """Remember what the platform is about to write first."""
        await super().async_added_to_hass()
        self._last_written = self._shown_state()

    def _shown_state(self) -> tuple[Any, ...]:
        """Return what Home Assistant stores for this entity: availability, state, attributes."""
        return (self.available, self.state, self.extra_state_attributes)

    @callback
    def async_write_if_changed(self) -> None:
        """Write the state only when what the entity shows changed.

        ``async_write_ha_state`` with an unchanged state still fires ``state_reported``
        and costs loop time for every entity on every snapshot; one changed value in a
        16-module bank would otherwise rewrite all of them.
        """
        shown = self._shown_state()
        if shown != self._last_written:
            self._last_written = shown
            self.async_write_ha_state()

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        self.async_write_if_changed()

    @property
    def bank(self) -> Bank:
        """The latest snapshot."""
        return self.coordinator.data

    @property
    def module(self) -> Module | None:
        """The entity's module in the latest snapshot (None when absent)."""
        if self.module_key is None:
            return None
        group, index = self.module_key
        return self.coordinator.data.module(index, group)

    @property
    @override
    def available(self) -> bool:
        """Available only while a live link carries the value.

        A bank entity needs a live link that carries every value it shows (``needs`` of
        its description, else its key); a module entity needs the primary link live and
        its module present. So a stalled link's values go unavailable, never unknown,
        while a live companion's stay.
        """
        if self.module_key is None:
            return super().available and self.bank_value_available()
        return super().available and self.coordinator.module_available(self.module_key)

    def bank_value_available(self) -> bool:
        """Whether a live link carries what this bank entity shows."""
        return self.coordinator.bank_value_available(*value_needs(self.entity_description))


def value_needs(description: EntityDescription) -> tuple[str, ...]:
    """Return the model fields an entity's value is made of: ``needs`` if given, else its key."""
    needs: tuple[str, ...] = getattr(description, "needs", ())
    return needs or (description.key,)


type CandidateKey = tuple[Any, ...]
type CandidatesFn = Callable[[Bank], Iterable[tuple[CandidateKey, Callable[[], Entity]]]]


@callback
def async_track_new_entities(
    hass: HomeAssistant,
    entry: PylontechConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    candidates: CandidatesFn,
) -> None:
    """Add the entities the current snapshot supports, and later ones as they appear.

    ``candidates(bank)`` yields ``(key, factory)`` for every entity the snapshot has a
    value for; each key is built into an entity once. Modules that join, or values a
    companion link starts to deliver, get their entities on the next snapshot. Before a
    module's entities are built, registry entries made while its barcode was unknown
    move to the barcode, and its device follows identity changes (firmware updates).
    """
    coordinator = entry.runtime_data.coordinator
    created: set[CandidateKey] = set()
    identities: dict[ModuleKey, tuple[str | None, str | None, str | None]] = {}

    @callback
    def _add_new() -> None:
        bank = coordinator.data
        if bank is None or not coordinator.last_update_success:
            return
        for module in bank.present_modules():
            identity = (
                clean_text(module.serial_number),
                clean_text(module.model),
                clean_text(module.firmware),
            )
            if identities.get(module.key) != identity:
                identities[module.key] = identity
                async_update_module_device(hass, entry, module)
        new: list[Entity] = []
        for key, factory in candidates(bank):
            if key not in created:
                created.add(key)
                new.append(factory())
        if new:
            async_add_entities(new)

    _add_new()
    entry.async_on_unload(coordinator.async_add_listener(_add_new))


@callback
def async_update_module_device(
    hass: HomeAssistant, entry: PylontechConfigEntry, module: Module
) -> None:
    """Bring a module's registry entries up to date with what the module reports.

    A module set up before its barcode was read has position-based ids: its device
    and entities move to the barcode (keeping entity ids and history). A device that
    exists gets the model, serial and firmware the module reports now.
    """
    devices = dr.async_get(hass)
    fields = module_device_fields(entry, entry.runtime_data.bank_device_id, module, hass)
    (identifier,) = fields["identifiers"]
    device = devices.async_get_device_by_identifier(identifier, entry.entry_id)
    position = module_device_identifier(entry, module.key)
    if identifier[1] != position:
        old = devices.async_get_device_by_identifier((DOMAIN, position), entry.entry_id)
        if old is not None and device is None:
            device = devices.async_update_device(old.id, new_identifiers={identifier})
        _async_move_unique_ids(hass, entry, f"{position}_", f"{identifier[1]}_")
    if device is not None:
        # Only what the module reports: a value not read (yet) does not erase one.
        model = fields.get("model")
        serial_number = fields.get("serial_number")
        sw_version = fields.get("sw_version")
        devices.async_update_device(
            device.id,
            model=UNDEFINED if model is None else model,
            serial_number=UNDEFINED if serial_number is None else serial_number,
            sw_version=UNDEFINED if sw_version is None else sw_version,
        )


@callback
def _async_move_unique_ids(
    hass: HomeAssistant, entry: PylontechConfigEntry, old_prefix: str, new_prefix: str
) -> None:
    entities = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
        if not entity.unique_id.startswith(old_prefix):
            continue
        unique_id = new_prefix + entity.unique_id.removeprefix(old_prefix)
        if entities.async_get_entity_id(entity.domain, DOMAIN, unique_id) is None:
            entities.async_update_entity(entity.entity_id, new_unique_id=unique_id)
