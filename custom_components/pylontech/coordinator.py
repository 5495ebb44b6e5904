"""One coordinator per config entry: reads the bank, merges links, tracks faults.

Hook for entities, repairs and events
-------------------------------------
* ``coordinator.data`` is the latest merged :class:`Bank` (``always_update=False``:
  listeners only run when the snapshot changed).
* ``coordinator.present_modules`` is the set of module keys ``(group, index)`` that
  answered the latest poll; a module entity is available when its key is in it and
  the primary link is live (``module_available``). ``coordinator.known_modules`` holds
  every key seen since setup (create module entities for these).
* Per-link truth: ``primary_connected`` / ``companion_connected`` say whether each link
  delivers data now. When the primary (RS485/console) fails while the CAN companion is
  live, the coordinator keeps publishing: the CAN values stay live, and an entity is
  available only where a live link carries its value (``configured_capability`` decides
  which entities exist, ``live_capability`` which are available; both come from the
  capability table in ``core/capabilities.py``).
* Every snapshot passes the plausibility filter (``core/plausibility.py``) once, where it
  enters the coordinator (per link, before merging): an absurd value becomes ``None``, is
  counted and shows in ``diagnostics()``.
* ``coordinator.fault_update`` is the latest :class:`FaultUpdate` and
  ``coordinator.active_faults`` its ``active`` tuple.
* ``coordinator.async_add_fault_listener(callback)`` registers
  ``callback(update: FaultUpdate) -> None`` (a plain, non-blocking function run in
  the event loop) and returns the function that removes it. It is called once for
  every successful poll or CAN push (changed or not, so time-based rules advance),
  just *before* ``coordinator.data`` is replaced and entity listeners run (read the
  snapshot from the rules' view via ``update.active``). ``update.started``/``update.ended``/``update.flag_changes`` say what
  changed (empty when nothing did); ``update.active`` is the full current set, so a
  listener can raise and clear Repairs issues idempotently. The first update after
  setup reports every already-active fault as started.
  ``__init__.async_setup_entry`` registers ``issues.async_update_issues`` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
import logging
import time
from typing import Any, cast, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .const import (
    CAN_BITRATE,
    CAN_FIRST_DATA_TIMEOUT,
    CAN_SOCKETCAND,
    CAN_STALE_AFTER,
    CONF_BAUDRATE,
    CONF_CAN_CHANNEL,
    CONF_CAN_HOST,
    CONF_CAN_INTERFACE,
    CONF_CAN_KEEPALIVE,
    CONF_CAN_PORT,
    CONF_CELL_ENTITIES,
    CONF_COMPANION,
    CONF_DETAIL_INTERVAL,
    CONF_GROUP,
    CONF_LINK,
    CONF_POLITE,
    CONF_SCAN_INTERVAL,
    CONF_URL,
    CONSOLE_BAUDRATE,
    DEFAULT_CAN_KEEPALIVE,
    DEFAULT_CELL_ENTITIES,
    DEFAULT_DETAIL_INTERVAL,
    DEFAULT_POLITE,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_SOCKETCAND_PORT,
    DOMAIN,
    LINK_CAN,
    LINK_CONSOLE,
)
from .core.capabilities import LinkCapability, capability, combined
from .core.errors import PylontechError
from .core.faults import ActiveFault, FaultTracker, FaultUpdate
from .core.links import CanLink, ConsoleLink, ReadPlan, Rs485Link
from .core.model import Alarm, Bank, Module, Protection, merge_banks
from .core.plausibility import PlausibilityFilter

type FaultListener = Callable[[FaultUpdate], None]
type PollingLink = Rs485Link | ConsoleLink

_LOGGER = logging.getLogger(__name__)

# How often a companion CAN link that failed to open at setup is tried again.
COMPANION_RETRY_INTERVAL = 60.0
# A CAN-only entry has no poll; this slow "watchdog" refresh notices a silent bus.
CAN_WATCHDOG_INTERVAL = timedelta(seconds=CAN_STALE_AFTER * 1.5)

# Identity and statistics read on slow cycles only (RS485 0x51/0x93/0x96; console `info`,
# `stat`: SOH, cycles, counters); carried into the fast snapshots between, so a value a
# slow read set stays known until the next slow read.
_MODULE_DETAIL_FIELDS = (
    "model",
    "manufacturer",
    "serial_number",
    "firmware",
    "soh",
    "cycles",
    "counters",
)
_BANK_DETAIL_FIELDS = ("manufacturer", "model", "serial_number", "firmware", "protocol_version")


@dataclass(slots=True)
class PylontechRuntimeData:
    """What a loaded entry keeps: its coordinator and the bank's device id."""

    coordinator: PylontechCoordinator
    bank_device_id: str


type PylontechConfigEntry = ConfigEntry[PylontechRuntimeData]


def bank_device_identifier(entry: ConfigEntry) -> str:
    """Device-registry identifier (under ``DOMAIN``) of the bank device."""
    return entry.entry_id  # stable across reconfigure, unlike a derived CAN unique id


def module_device_identifier(entry: ConfigEntry, key: tuple[int, int]) -> str:
    """Device-registry identifier of a module device, by position ``(group, index)``.

    Entities of a module belong on this device (``via_device_id`` = the bank's
    ``runtime_data.bank_device_id``); position, not serial, so a swapped module keeps
    its history and a module without a readable serial still gets a device.
    """
    group, index = key
    return f"{bank_device_identifier(entry)}_module_{group}_{index}"


def module_key_from_device(entry: ConfigEntry, device: DeviceEntry) -> tuple[int, int] | None:
    """Return the module position a device stands for, or None for the bank (or a stranger)."""
    prefix = f"{bank_device_identifier(entry)}_module_"
    for domain, identifier in device.identifiers:
        if domain != DOMAIN or not identifier.startswith(prefix):
            continue
        group, _, index = identifier.removeprefix(prefix).partition("_")
        if group.isdecimal() and index.isdecimal():
            return int(group), int(index)
    return None


def _is_unset(value: Any) -> bool:
    return value is None or value == ()


def carry_details(
    fresh: Bank,
    remembered: Bank | None,
    dropped: frozenset[tuple[tuple[int, int] | None, str]] = frozenset(),
) -> Bank:
    """Fill identity/statistics that this poll did not read from the last slow read.

    Only modules present in ``fresh`` are touched, so a module that dropped out
    of the poll stays out. ``dropped`` names fields this poll did read but the
    plausibility filter removed: those stay unknown rather than show an older value.
    """
    if remembered is None:
        return fresh
    bank_updates = {
        name: getattr(remembered, name)
        for name in _BANK_DETAIL_FIELDS
        if _is_unset(getattr(fresh, name))
        and not _is_unset(getattr(remembered, name))
        and (None, name) not in dropped
    }
    modules: list[Module] = []
    changed = False
    for module in fresh.modules:
        known = remembered.module(module.index, module.group)
        if known is None:
            modules.append(module)
            continue
        updates = {
            name: getattr(known, name)
            for name in _MODULE_DETAIL_FIELDS
            if _is_unset(getattr(module, name))
            and not _is_unset(getattr(known, name))
            and (module.key, name) not in dropped
        }
        if updates:
            changed = True
            module = replace(module, **updates)
        modules.append(module)
    if changed:
        bank_updates["modules"] = tuple(modules)
    return replace(fresh, **bank_updates) if bank_updates else fresh


def remember_details(remembered: Bank | None, fresh: Bank) -> Bank:
    """Keep the identity/statistics ``fresh`` carries for later fast polls."""
    base = remembered or Bank()
    bank_updates = {
        name: getattr(fresh, name)
        for name in _BANK_DETAIL_FIELDS
        if not _is_unset(getattr(fresh, name))
    }
    modules = {m.key: m for m in base.modules}
    for module in fresh.modules:
        values = {
            name: getattr(module, name)
            for name in _MODULE_DETAIL_FIELDS
            if not _is_unset(getattr(module, name))
        }
        if not values:
            continue
        known = modules.get(module.key)
        modules[module.key] = (
            Module(index=module.index, group=module.group, **values)
            if known is None
            else replace(known, **values)
        )
    bank_updates["modules"] = tuple(modules[key] for key in sorted(modules))
    return replace(base, **bank_updates)


def merge_companion(primary: Bank, companion: Bank | None) -> Bank:
    """Lay a companion link's bank-level values over the primary link's bank.

    The companion (CAN) broadcasts limits, flags and whole-stack values every second;
    the primary (RS485/console) owns the modules, so companion modules are left out and
    module presence always follows the primary poll. The merge itself is
    ``core.model.merge_banks`` (the one merge: companion values win, flags unite).
    """
    if companion is None:
        return primary
    return merge_banks(primary, replace(companion, modules=()))


def create_polling_link(data: Mapping[str, Any], options: Mapping[str, Any]) -> PollingLink:
    """Build the RS485 or console link an entry describes."""
    if data[CONF_LINK] == LINK_CONSOLE:
        return ConsoleLink(data[CONF_URL], baudrate=data.get(CONF_BAUDRATE, CONSOLE_BAUDRATE))
    return Rs485Link(
        data[CONF_URL],
        baudrate=data[CONF_BAUDRATE],
        group=data.get(CONF_GROUP, 0),
        polite=options.get(CONF_POLITE, DEFAULT_POLITE),
    )


def create_can_link(
    data: Mapping[str, Any],
    *,
    keepalive: bool,
    on_update: Callable[[Bank], None],
    on_stale: Callable[[bool], None],
) -> CanLink:
    """Build the CAN link a config (entry data or companion options) describes."""
    extra: dict[str, Any] = {}
    if data[CONF_CAN_INTERFACE] == CAN_SOCKETCAND:
        extra = {
            "host": data.get(CONF_CAN_HOST),
            "port": int(data.get(CONF_CAN_PORT) or DEFAULT_SOCKETCAND_PORT),
        }
    return CanLink(
        data[CONF_CAN_INTERFACE],
        data[CONF_CAN_CHANNEL],
        bitrate=CAN_BITRATE,
        keepalive=keepalive,
        on_update=on_update,
        on_stale=on_stale,
        stale_after=CAN_STALE_AFTER,
        **extra,
    )


class PylontechCoordinator(DataUpdateCoordinator[Bank]):
    """Reads one bank over its link(s) and publishes changed snapshots."""

    config_entry: PylontechConfigEntry

    def __init__(self, hass: HomeAssistant, entry: PylontechConfigEntry) -> None:
        """Build the links an entry describes; nothing is opened yet."""
        # The base class registers async_shutdown on the entry's unload in its __init__,
        # and building a link can raise (a refused setting): everything the shutdown and
        # diagnostics touch exists before anything else runs.
        self.link_kind: str = str(entry.data.get(CONF_LINK, ""))
        self.link: PollingLink | None = None
        self.can_link: CanLink | None = None
        self.companion_config: Mapping[str, Any] | None = None
        self.present_modules: frozenset[tuple[int, int]] = frozenset()
        self.known_modules: frozenset[tuple[int, int]] = frozenset()
        self.fault_update: FaultUpdate | None = None
        self.primary_live = False  # the RS485/console link delivered the latest poll
        self.primary_error: str | None = None  # why it did not, while it does not
        self.plausibility = PlausibilityFilter()
        self._fault_tracker = FaultTracker()
        self._fault_listeners: list[FaultListener] = []
        self._details: Bank | None = None  # identity/statistics of the last slow read
        self._last_detail_read: float | None = None  # monotonic
        self._detail_requested = False
        self._primary_bank: Bank | None = None  # last good poll, before merging
        self._can_event = asyncio.Event()
        self._can_raw: Bank | None = None  # the CAN bank last checked ...
        self._can_checked: Bank | None = None  # ... and what the plausibility filter left
        self._can_frame_set: str | None = None  # "v1.2"/"v1.3" once seen
        self._remerged_states: tuple[bool, bool] | None = None  # link states last shown
        self._companion_failed = False
        self._companion_delivered = False
        self._companion_since = time.monotonic()
        self._companion_retry_at: float | None = None  # set while the companion is not started
        options = entry.options
        polling = self.link_kind != LINK_CAN
        scan = timedelta(seconds=options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL))
        self.detail_interval: float = float(
            options.get(CONF_DETAIL_INTERVAL, DEFAULT_DETAIL_INTERVAL)
        )
        self.read_cells: bool = bool(options.get(CONF_CELL_ENTITIES, DEFAULT_CELL_ENTITIES))
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=entry.title,
            update_interval=scan if polling else CAN_WATCHDOG_INTERVAL,
            always_update=False,
        )
        keepalive = bool(options.get(CONF_CAN_KEEPALIVE, DEFAULT_CAN_KEEPALIVE))
        if polling:
            self.link = create_polling_link(entry.data, options)
        if not polling:
            self.can_link = create_can_link(
                entry.data,
                keepalive=keepalive,
                on_update=self._on_can_update,
                on_stale=self._on_can_stale,
            )
        elif companion := options.get(CONF_COMPANION):
            self.companion_config = companion
            self.can_link = create_can_link(
                companion,
                keepalive=keepalive,
                on_update=self._on_can_update,
                on_stale=self._on_can_stale,
            )

    # --- public hooks --------------------------------------------------------------

    @property
    def active_faults(self) -> tuple[ActiveFault, ...]:
        """Faults active in the latest snapshot."""
        return () if self.fault_update is None else self.fault_update.active

    @callback
    def async_add_fault_listener(self, listener: FaultListener) -> CALLBACK_TYPE:
        """Call ``listener(update)`` on every new snapshot; returns the remover."""
        self._fault_listeners.append(listener)

        @callback
        def remove() -> None:
            if listener in self._fault_listeners:
                self._fault_listeners.remove(listener)

        return remove

    @property
    def published(self) -> Bank | None:
        """The last published snapshot; None until the first refresh has finished.

        ``DataUpdateCoordinator.data`` is typed as the data type but starts as None.
        """
        return cast("Bank | None", self.data)

    @property
    def primary_connected(self) -> bool:
        """Whether the entry's own link delivers data now (CAN-only: the broadcast)."""
        if self.link is None:
            return self.last_update_success and self._can_live()
        return self.primary_live

    @property
    def companion_connected(self) -> bool:
        """Whether a CAN companion delivers data now (False without one)."""
        return self.link is not None and self._can_live()

    @property
    def can_frame_set(self) -> str | None:
        """The CAN frame set ("v1.2"/"v1.3") of the entry's CAN link, once seen."""
        if self.can_link is not None and (frame_set := self.can_link.firmware) is not None:
            self._can_frame_set = frame_set
        return self._can_frame_set

    @property
    def configured_capability(self) -> LinkCapability:
        """What the entry's links can carry: decides which entities exist.

        A CAN link counts once its frame set is known (the two sets carry different
        flags); until then its entities wait for its first broadcast.
        """
        parts: list[LinkCapability] = []
        if self.link is not None:
            parts.append(capability(self.link_kind))
        if self.can_link is not None and (frame_set := self.can_frame_set) is not None:
            parts.append(capability(LINK_CAN, frame_set))
        return combined(parts)

    @property
    def live_capability(self) -> LinkCapability:
        """What the links that deliver data now carry: decides which entities are available."""
        parts: list[LinkCapability] = []
        if self.link is not None and self.primary_live:
            parts.append(capability(self.link_kind))
        if self.can_link is not None and self._can_live():
            parts.append(capability(LINK_CAN, self.can_frame_set))
        return combined(parts)

    @property
    def observed_bank_flags(self) -> frozenset[Protection | Alarm]:
        """Bank-level flags a live link reports now (a CAN 0x35A slot sent as ``00`` is not)."""
        flags = self.live_capability.bank_flags
        if self.can_link is not None and (reported := self.can_link.reported_flags) is not None:
            flags &= reported
        return flags

    def bank_value_available(self, *names: str) -> bool:
        """Whether a live link carries every one of the bank values ``names``."""
        return self.last_update_success and self.live_capability.carries_bank(*names)

    def module_available(self, key: tuple[int, int]) -> bool:
        """Whether a module answered the latest poll and the link that reads it is live."""
        return self.last_update_success and self.primary_live and key in self.present_modules

    async def async_refresh_details(self) -> None:
        """Read identity and statistics on the next poll, now."""
        self._detail_requested = True
        await self.async_refresh()

    async def async_accept_module_count(self) -> None:
        """Take the bank's present module count as its size (a module removed on purpose).

        Used by the "modules missing" repair flow; the fault ends on the refresh.
        """
        self._fault_tracker.accept_module_count()
        await self.async_refresh()

    def diagnostics(self) -> dict[str, Any]:
        """Link state, stats and recent traffic of every link; implausible values dropped."""
        data: dict[str, Any] = {
            "link_kind": self.link_kind,
            "last_update_success": self.last_update_success,
            "last_exception": None if self.last_exception is None else repr(self.last_exception),
            "primary_connected": self.primary_connected,
            "primary_error": self.primary_error,
            "companion_connected": self.companion_connected,
            "can_frame_set": self.can_frame_set,
            "present_modules": sorted(self.present_modules),
            "known_modules": sorted(self.known_modules),
            "detail_interval": self.detail_interval,
            "read_cells": self.read_cells,
            "implausible_values": self.plausibility.diagnostics(),
        }
        if self.link is not None:
            data["link"] = self.link.diagnostics()
        if self.can_link is not None:
            data["can_link"] = self.can_link.diagnostics()
        return data

    @override
    async def async_shutdown(self) -> None:
        """Stop polling, then close the links (runs on unload and failed setup)."""
        await super().async_shutdown()
        await self.async_shutdown_links()

    async def async_shutdown_links(self) -> None:
        """Close every link (idempotent); called on unload."""
        if self.can_link is not None:
            await self.can_link.stop()
        if self.link is not None:
            await self.link.close()

    # --- DataUpdateCoordinator -----------------------------------------------------

    @override
    async def _async_setup(self) -> None:
        """Open the links; a failure becomes ``ConfigEntryNotReady`` on first refresh."""
        try:
            if self.link is not None:
                await self.link.open()
            if self.can_link is not None:
                try:
                    await self.can_link.start()
                except PylontechError:
                    if self.link is None:
                        raise
                    # A companion is a bonus: the bank works without it; retry later.
                    self._note_companion_failure()
                    self._companion_retry_at = time.monotonic() + COMPANION_RETRY_INTERVAL
        except PylontechError as err:
            await self.async_shutdown_links()
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_open_link",
                translation_placeholders={"error": str(err)},
            ) from err

    @override
    async def _async_refresh(
        self,
        log_failures: bool = True,
        raise_on_auth_failed: bool = False,
        scheduled: bool = False,
        raise_on_entry_error: bool = False,
    ) -> None:
        """Refresh; also tell the entities when only a link's state changed.

        With ``always_update=False`` the base class skips the listeners when the snapshot
        is unchanged, but a primary that failed while the companion kept the values equal
        still changes what is available and what the connectivity entities show.
        """
        before = self._link_states()
        await super()._async_refresh(
            log_failures, raise_on_auth_failed, scheduled, raise_on_entry_error
        )
        if self._link_states() != before and self.published is not None:
            self.async_update_listeners()

    @override
    async def _async_update_data(self) -> Bank:
        if self.link is None:
            return await self._async_can_watchdog()
        await self._async_retry_companion()
        plan = self._next_plan()
        try:
            fresh = await self.link.read_bank(plan)
        except PylontechError as err:
            return self._primary_failed(err)
        fresh = self.plausibility.check(fresh, self.link_kind)
        dropped = self.plausibility.dropped
        if plan.identity or plan.statistics:
            self._last_detail_read = time.monotonic()
            self._detail_requested = False
            self._details = remember_details(self._details, fresh)
        fresh = carry_details(fresh, self._details, dropped)
        if self.known_modules and any(
            m.key not in self.known_modules for m in fresh.present_modules()
        ):
            # A module joined the chain: read its serial and firmware on the next poll.
            self._detail_requested = True
        self._primary_bank = fresh
        if not self.primary_live and self.primary_error is not None:
            _LOGGER.info("%s: the %s link is answering again", self.name, self.link_kind)
        self.primary_live = True
        self.primary_error = None
        bank = self._compose()
        self._after_snapshot(bank)
        return bank

    # --- internals -----------------------------------------------------------------

    def _link_states(self) -> tuple[bool, bool]:
        return (self.primary_live, self._can_live())

    def _can_live(self) -> bool:
        return self.can_link is not None and self.can_link.bank is not None

    def _primary_failed(self, err: PylontechError) -> Bank:
        """Handle a failed primary poll: keep publishing the companion's values if it is live."""
        was_live = self.primary_live
        self.primary_live = False
        self.primary_error = str(err)
        failure = UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="read_failed",
            translation_placeholders={"error": str(err)},
        )
        if self._companion_bank() is None:
            raise failure from err
        if was_live or self.published is None:
            _LOGGER.warning(
                "%s: reading the %s link failed (%s); the CAN companion's values stay live",
                self.name,
                self.link_kind,
                err,
            )
        bank = self._compose()
        self._after_snapshot(bank)
        return bank

    def _compose(self) -> Bank:
        """Compose the snapshot to publish: the primary's poll with the live companion laid over.

        While the primary is not live only its modules stay (their entities are then
        unavailable, and module presence and faults are held as last read); every bank
        value comes from the live companion.
        """
        primary = self._primary_bank or Bank()
        if not self.primary_live:
            primary = Bank(modules=primary.modules)
        return merge_companion(primary, self._companion_bank())

    def _next_plan(self) -> ReadPlan:
        now = time.monotonic()
        slow = (
            self._detail_requested
            or self._last_detail_read is None
            or now - self._last_detail_read >= self.detail_interval
        )
        return ReadPlan(identity=slow, statistics=slow, cells=self.read_cells)

    async def _async_retry_companion(self) -> None:
        """Start a companion CAN link that could not be opened at setup (bounded rate)."""
        if self._companion_retry_at is None or time.monotonic() < self._companion_retry_at:
            return
        assert self.can_link is not None
        try:
            await self.can_link.start()
        except PylontechError as err:
            _LOGGER.debug("%s: CAN companion still unavailable: %s", self.name, err)
            self._companion_retry_at = time.monotonic() + COMPANION_RETRY_INTERVAL
        else:
            self._companion_retry_at = None

    def _checked_can(self, raw: Bank) -> Bank:
        """Pass a CAN snapshot through the plausibility filter (each snapshot counted once)."""
        if raw is not self._can_raw or self._can_checked is None:
            self._can_raw = raw
            self._can_checked = self.plausibility.check(raw, LINK_CAN)
        return self._can_checked

    def _companion_bank(self) -> Bank | None:
        if self.can_link is None or self.link is None:
            return None
        bank = self.can_link.bank  # None while stale
        if bank is None:
            # The first broadcast may simply not have arrived yet: no warning for that.
            waited = time.monotonic() - self._companion_since
            if self._companion_delivered or waited > CAN_STALE_AFTER:
                self._note_companion_failure()
            return None
        self._companion_delivered = True
        if self._companion_failed:
            self._companion_failed = False
            _LOGGER.info("%s: the CAN companion link is delivering data again", self.name)
        return self._checked_can(bank)

    def _note_companion_failure(self) -> None:
        if not self._companion_failed:
            self._companion_failed = True
            _LOGGER.warning(
                "%s: the CAN companion link delivers no data; continuing without it",
                self.name,
            )

    async def _async_can_watchdog(self) -> Bank:
        """CAN-only: wait for the first broadcast, then check the bus is still talking."""
        assert self.can_link is not None
        if self.published is None and self.can_link.bank is None:
            try:
                async with asyncio.timeout(CAN_FIRST_DATA_TIMEOUT):
                    await self._can_event.wait()
            except TimeoutError:
                pass
        raw = self.can_link.bank  # None before the first broadcast and while stale
        if raw is None:
            raise UpdateFailed(translation_domain=DOMAIN, translation_key="can_silent")
        bank = self._checked_can(raw)
        self._after_snapshot(bank)
        return bank

    @callback
    def _on_can_update(self, bank: Bank) -> None:
        """Publish the CAN link's changed snapshot (runs in the event loop)."""
        self._can_event.set()
        if self.link is not None:
            self._remerge_companion()
            return
        if self.published is None:
            return  # the first refresh picks it up
        bank = self._checked_can(bank)
        if bank != self.data or not self.last_update_success:
            self._after_snapshot(bank)
            self.async_set_updated_data(bank)

    @callback
    def _on_can_stale(self, stale: bool) -> None:
        """Follow the CAN broadcast stopping (True) or resuming (False)."""
        if self.link is not None:
            self._remerge_companion()
            return
        if self.published is None:
            return
        if stale:
            # Logs the failure once and marks the entities unavailable.
            self.async_set_update_error(
                UpdateFailed(translation_domain=DOMAIN, translation_key="can_silent")
            )
            return
        assert self.can_link is not None
        # Parts may have expired while silent; publish only once values are back (else
        # the link's next on_update, at the end of the first full cycle, does it).
        raw = self.can_link.bank
        if raw is not None and raw.voltage is not None:
            bank = self._checked_can(raw)
            self._after_snapshot(bank)
            self.async_set_updated_data(bank)

    @callback
    def _remerge_companion(self) -> None:
        """Lay the companion's values over the last poll without rescheduling the poll.

        Runs on every companion update and when its broadcast stops or resumes, so the
        companion's connectivity entity and the availability of its values follow it.
        """
        if self.published is None:
            return  # the first refresh has not finished
        companion = self._companion_bank()
        if companion is None and not self.primary_live:
            # Neither link delivers data now.
            if self.last_update_success:
                self.async_set_update_error(
                    UpdateFailed(
                        translation_domain=DOMAIN,
                        translation_key="read_failed",
                        translation_placeholders={"error": self.primary_error or ""},
                    )
                )
            else:
                self.async_update_listeners()
            return
        merged = self._compose()
        if not self.last_update_success:
            # The companion is back while the primary still fails.
            self._after_snapshot(merged)
            self.async_set_updated_data(merged)
            return
        states = self._link_states()
        if merged != self.data:
            self._after_snapshot(merged)
            self.data = merged
        elif states == self._remerged_states:
            return  # nothing the entities show has changed
        self._remerged_states = states
        self.async_update_listeners()

    def _after_snapshot(self, bank: Bank) -> None:
        """Track module presence and faults for a snapshot about to be published."""
        present = frozenset(m.key for m in bank.present_modules())
        # Presence follows the primary's polls only; while it fails its modules are held.
        if present != self.present_modules and (self.link is None or self.primary_live):
            gone = self.present_modules - present
            back = present & (self.known_modules - self.present_modules)
            for key in sorted(gone):
                _LOGGER.warning("%s: module %s stopped answering", self.name, _label(key))
            for key in sorted(back):
                _LOGGER.info("%s: module %s is answering again", self.name, _label(key))
            self.present_modules = present
            self.known_modules |= present
        # Every snapshot, changed or not: time-based rules (low SOC held, pending
        # full-charge request) advance with the clock.
        update = self._fault_tracker.update(bank, time.monotonic())
        self.fault_update = update
        for listener in list(self._fault_listeners):
            try:
                listener(update)
            except Exception:
                # A repairs/events bug must not cost the bank its readings.
                _LOGGER.exception("%s: a fault listener failed", self.name)


def _label(key: tuple[int, int]) -> str:
    group, index = key
    return f"{index}" if group == 0 else f"{group}.{index}"
