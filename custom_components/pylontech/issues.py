"""Repairs issues and bus events from the coordinator's fault updates.

``async_update_issues(hass, entry, update)`` is the coordinator's fault hook (see
``coordinator.py``); ``__init__`` registers it for every loaded entry.

Repairs: every active documented fault whose catalog entry has ``repair=True`` is a
Repairs issue (fixable only where ``repairs.py`` has a fix flow) with id ``{entry_id}_{fault key}_{place}`` (place ``bank`` or
``g{group}_m{index}``), the fault key as translation key and the fault's numbers as
placeholders, plus ``bank`` (the entry's title, so two banks' issues tell which bank they
concern). It is deleted when the fault ends, when the entry unloads, and at setup
when the fault is no longer active (an issue left over from before a restart).

Events: every protection or alarm that starts or ends fires ``pylontech_event``::

    device_id         id of the module's device, or of the bank's device
    config_entry_id   the entry that read it
    module            module position (1 = master), or None for a bank-level flag
    group             the module's group (0 = single group), or None for the bank
    flag              the Protection/Alarm value, e.g. "charge_over_current"
    kind              "protection" or "alarm"
    active            True when the flag started, False when it ended

The first update after setup reports every flag already active as started.

Every documented fault (repairable or not) that starts or ends fires ``pylontech_fault``
with ``device_id``, ``config_entry_id``, ``module``, ``group`` and ``active`` as above, plus

    fault             the fault key, e.g. "cell_imbalance" (the catalog's key)
    severity          "warning", "error" or "critical"
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .coordinator import PylontechConfigEntry
from .core.faults import FAULTS, ActiveFault, FaultUpdate, FlagChange, Severity
from .core.model import Protection
from .entity import async_module_device_id

_LOGGER = logging.getLogger(__name__)

EVENT_PYLONTECH: Final = "pylontech_event"
EVENT_PYLONTECH_FAULT: Final = "pylontech_fault"
ATTR_FAULT: Final = "fault"
ATTR_SEVERITY: Final = "severity"
ATTR_DEVICE_ID: Final = "device_id"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_MODULE: Final = "module"
ATTR_GROUP: Final = "group"
ATTR_FLAG: Final = "flag"
ATTR_KIND: Final = "kind"
ATTR_ACTIVE: Final = "active"
KIND_PROTECTION: Final = "protection"
KIND_ALARM: Final = "alarm"

# Every issue names its bank (the entry's title) in its title and text.
ISSUE_BANK_PLACEHOLDER: Final = "bank"

# Issues with a fix flow in repairs.py; they carry their entry id in the issue data.
FIXABLE: frozenset[str] = frozenset(f.key for f in FAULTS if f.fix is not None)
DATA_ENTRY_ID: Final = "entry_id"

SEVERITIES: Final = {
    Severity.WARNING: ir.IssueSeverity.WARNING,
    Severity.ERROR: ir.IssueSeverity.ERROR,
    Severity.CRITICAL: ir.IssueSeverity.CRITICAL,
}


@dataclass(slots=True)
class _EntryIssues:
    """The issue ids raised for one loaded entry."""

    raised: set[str] = field(default_factory=set)
    # Module device ids seen so far: a module that just left the snapshot keeps its device.
    devices: dict[tuple[int, int], str] = field(default_factory=dict)


_STATE: HassKey[dict[str, _EntryIssues]] = HassKey(f"{DOMAIN}_issues")


def issue_id(entry_id: str, fault: ActiveFault) -> str:
    """Return the Repairs issue id of a fault of an entry."""
    return f"{entry_id}_{fault.issue_id}"


@callback
def async_update_issues(
    hass: HomeAssistant, entry: PylontechConfigEntry, update: FaultUpdate
) -> None:
    """Raise and clear Repairs issues and fire flag events for one fault update."""
    states = hass.data.setdefault(_STATE, {})
    state = states.get(entry.entry_id)
    if state is None:
        state = states[entry.entry_id] = _EntryIssues()
        _async_remove_stale_issues(hass, entry, update)
        entry.async_on_unload(lambda: async_clear_issues(hass, entry.entry_id))
    _async_sync_issues(hass, entry, state, update)
    for change in update.flag_changes:
        _async_fire_event(hass, entry, state, change)
    for faults, active in ((update.ended, False), (update.started, True)):
        for fault in faults:
            _async_fire_fault_event(hass, entry, state, fault, active)


@callback
def _async_sync_issues(
    hass: HomeAssistant, entry: PylontechConfigEntry, state: _EntryIssues, update: FaultUpdate
) -> None:
    wanted = {issue_id(entry.entry_id, f): f for f in update.active if f.definition.repair}
    refresh = {issue_id(entry.entry_id, f) for f in (*update.started, *update.updated)}
    registry = ir.async_get(hass)
    for ident, fault in wanted.items():
        # Also when gone from the registry: a finished fix flow deletes its issue.
        if (
            ident not in state.raised
            or ident in refresh
            or registry.async_get_issue(DOMAIN, ident) is None
        ):
            _async_create_issue(hass, entry, ident, fault)
    for ident in state.raised - wanted.keys():
        ir.async_delete_issue(hass, DOMAIN, ident)
    state.raised = set(wanted)


@callback
def _async_create_issue(
    hass: HomeAssistant, entry: PylontechConfigEntry, ident: str, fault: ActiveFault
) -> None:
    definition = fault.definition
    fixable = definition.key in FIXABLE
    ir.async_create_issue(
        hass,
        DOMAIN,
        ident,
        data={DATA_ENTRY_ID: entry.entry_id} if fixable else None,
        is_fixable=fixable,
        is_persistent=False,
        severity=SEVERITIES[definition.severity],
        translation_key=str(definition.key),
        translation_placeholders={**fault.placeholders, ISSUE_BANK_PLACEHOLDER: entry.title},
    )


@callback
def _async_remove_stale_issues(
    hass: HomeAssistant, entry: PylontechConfigEntry, update: FaultUpdate
) -> None:
    """Delete this entry's issues from an earlier run whose fault is no longer active."""
    prefix = f"{entry.entry_id}_"
    active = {issue_id(entry.entry_id, f) for f in update.active if f.definition.repair}
    registry = ir.async_get(hass)
    stale = [
        ident
        for (domain, ident) in registry.issues
        if domain == DOMAIN and ident.startswith(prefix) and ident not in active
    ]
    for ident in stale:
        ir.async_delete_issue(hass, DOMAIN, ident)


@callback
def async_clear_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Delete every issue of an entry (on unload and removal)."""
    states = hass.data.get(_STATE, {})
    states.pop(entry_id, None)
    prefix = f"{entry_id}_"
    registry = ir.async_get(hass)
    for domain, ident in list(registry.issues):
        if domain == DOMAIN and ident.startswith(prefix):
            ir.async_delete_issue(hass, DOMAIN, ident)


@callback
def _async_place(
    hass: HomeAssistant,
    entry: PylontechConfigEntry,
    state: _EntryIssues,
    module_key: tuple[int, int] | None,
) -> dict[str, Any]:
    """Event data naming where something happened: the bank's or a module's device."""
    if module_key is None:
        return {
            ATTR_DEVICE_ID: entry.runtime_data.bank_device_id,
            ATTR_CONFIG_ENTRY_ID: entry.entry_id,
            ATTR_MODULE: None,
            ATTR_GROUP: None,
        }
    group, module = module_key
    device_id = async_module_device_id(hass, entry, module_key)
    if device_id is None:
        device_id = state.devices.get(module_key)
    else:
        state.devices[module_key] = device_id
    return {
        ATTR_DEVICE_ID: device_id,
        ATTR_CONFIG_ENTRY_ID: entry.entry_id,
        ATTR_MODULE: module,
        ATTR_GROUP: group,
    }


@callback
def _async_fire_event(
    hass: HomeAssistant, entry: PylontechConfigEntry, state: _EntryIssues, change: FlagChange
) -> None:
    kind = KIND_PROTECTION if isinstance(change.flag, Protection) else KIND_ALARM
    _LOGGER.debug(
        "%s: %s %s %s at %s",
        entry.title,
        kind,
        change.flag,
        "started" if change.active else "ended",
        change.module_key or "bank",
    )
    hass.bus.async_fire(
        EVENT_PYLONTECH,
        {
            **_async_place(hass, entry, state, change.module_key),
            ATTR_FLAG: str(change.flag),
            ATTR_KIND: kind,
            ATTR_ACTIVE: change.active,
        },
    )


@callback
def _async_fire_fault_event(
    hass: HomeAssistant,
    entry: PylontechConfigEntry,
    state: _EntryIssues,
    fault: ActiveFault,
    active: bool,
) -> None:
    hass.bus.async_fire(
        EVENT_PYLONTECH_FAULT,
        {
            **_async_place(hass, entry, state, fault.module_key),
            ATTR_FAULT: str(fault.key),
            ATTR_SEVERITY: str(fault.definition.severity),
            ATTR_ACTIVE: active,
        },
    )
