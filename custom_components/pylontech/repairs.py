"""Fix flows for Pylontech repair issues.

Only "modules missing from the bank" can be fixed from Home Assistant: when a module
was taken out on purpose, confirming makes the present module count the bank's size.
Every other issue describes something to do at the battery; it clears by itself once
the fault is gone.
"""

from __future__ import annotations

import probatio

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .coordinator import PylontechConfigEntry
from .issues import DATA_ENTRY_ID


class AcceptModuleCountFlow(RepairsFlow):
    """Confirm that the modules now present are the whole bank."""

    def __init__(self, entry_id: str) -> None:
        """Fix the issue of one config entry."""
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> RepairsFlowResult:
        """Go straight to the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Ask, then accept the present module count."""
        entry: PylontechConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        if user_input is not None:
            await entry.runtime_data.coordinator.async_accept_module_count()
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_form(
            step_id="confirm",
            data_schema=probatio.Schema({}),
            description_placeholders=None if issue is None else issue.translation_placeholders,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the fix flow of a fixable issue (only issues raised as fixable reach this)."""
    entry_id = (data or {}).get(DATA_ENTRY_ID)
    if not isinstance(entry_id, str):
        raise TypeError(f"issue {issue_id} carries no config entry")
    return AcceptModuleCountFlow(entry_id)
