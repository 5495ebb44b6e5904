"""How big a supported Pylontech low-voltage system can be: one fact per count.

A checksum-valid frame or a well-formed console table can still claim 200 cells or 255
modules. Every decoder checks its counts against these bounds and raises
:class:`CountBoundError` (a ``ProtocolError``) when one is exceeded, so the wire never
decides how many entities exist. The allowed RS485 group numbers live here too, so the
config flow, the RS485 codec and the RS485 link share one definition.

Sources (manuals by title and section):

* US2000 user manual, specifications and 4.x DIP table: 15 cells (48 V nominal), at most
  8 batteries in each group, group address from DIP 2-4 (0 = single group, 1..7).
* Guide to wiring Pylontech US2000C/US3000C banks in parallel: up to 16 US2000C/US3000C
  modules per group without an LV-Hub; the LV-Hub takes up to 6 groups of 16 modules.
* SR48100H (RS-R51100A) operation and maintenance manual, 2.x specifications: 51.2 V
  nominal (16 LFP cells), "Max parallel number 32pcs".
* BAT/50002 manual, 2.3 specifications and 4.5 parallel use: 51.2 V (16 cells), up to 15
  modules addressed 1..15 by a 4-bit dial.
* Pylontech RS485 protocol V3.3, 0x42 layout: the cell count is one byte but the
  specification allows up to 16 cells; the temperatures are BMS board, four cell groups
  (1-4, 5-8, 9-12, 13-15/16) and, on US5000/US3000B, the MOSFET: at most 6.
"""

from __future__ import annotations

from typing import Final

from .errors import ImplausibleValueError, PylontechError

#: Cells in series in one module: 15 (48 V US2000/US3000C/US5000), 16 (51.2 V SR48100H,
#: BAT/50002; the RS485 V3.3 maximum). The 24 V UP2500 has 8, which is below the bound.
MAX_CELLS_PER_MODULE: Final = 16

#: Temperature sensors one module reports: BMS board + 4 cell groups + MOSFET.
MAX_TEMPERATURES_PER_MODULE: Final = 6

#: Modules in one parallel group: the SR48100H manual allows 32 in parallel, more than the
#: 16 of US2000C/US3000C/US5000 (wiring guide) and the 15 of BAT/50002.
MAX_MODULES_PER_GROUP: Final = 32

#: Modules in one group that RS485 can address: ADR = index + 1 + 0x10 * group with the
#: master at ADR 2 (RS485 protocol V3.3, 2.5.3), so index 1..16; the wiring guide's 16
#: modules per group without an LV-Hub.
MAX_RS485_MODULES_PER_GROUP: Final = 16

#: RS485 group numbers a master can be set to: DIP 2-4 (three bits) in the US2000 manual's
#: group-address table, 0 for a single group. This is the one definition of the allowed
#: groups: the config flow offers it, the codec builds ADRs from it, the link checks it.
RS485_GROUPS: Final = range(8)
MIN_RS485_GROUP: Final = RS485_GROUPS[0]
MAX_RS485_GROUP: Final = RS485_GROUPS[-1]

#: Groups one bank can have: the LV-Hub aggregates up to 6 groups.
MAX_GROUPS: Final = 6

#: Modules one bank can have: 6 LV-Hub groups of 16 modules (wiring guide, LV-Hub
#: section); more than the SR48100H's 32 in parallel and the BAT/50002's 15.
MAX_MODULES_TOTAL: Final = MAX_GROUPS * MAX_RS485_MODULES_PER_GROUP


class CountBoundError(ImplausibleValueError):
    """A decoded count (cells, temperatures, modules, groups) beyond any supported system."""


class InvalidGroupError(PylontechError, ValueError):
    """An RS485 group number outside :data:`RS485_GROUPS` was configured."""

    def __init__(self, group: object) -> None:
        """Name the group and the range the master's DIP switches allow."""
        super().__init__(
            f"RS485 group {group!r} is not allowed: the master's DIP switches 2-4 set a "
            f"group from {MIN_RS485_GROUP} to {MAX_RS485_GROUP}"
        )
        self.group = group


def is_valid_group(group: object) -> bool:
    """Tell whether ``group`` is an exact ``int`` in :data:`RS485_GROUPS` (no bool, float, str)."""
    return type(group) is int and group in RS485_GROUPS


def check_group(group: object) -> int:
    """Return ``group`` if it is an allowed RS485 group, else raise ``InvalidGroupError``."""
    if not is_valid_group(group):
        raise InvalidGroupError(group)
    return group  # type: ignore[return-value]  # is_valid_group proved it is an int


def check_count(what: str, count: int, limit: int) -> int:
    """Return ``count`` if ``0 <= count <= limit``, else raise ``CountBoundError``.

    ``what`` names the quantity in the message ("cells", "temperatures", "modules").
    """
    if not 0 <= count <= limit:
        raise CountBoundError(f"{count} {what} reported; no supported system has more than {limit}")
    return count


__all__ = [
    "MAX_CELLS_PER_MODULE",
    "MAX_GROUPS",
    "MAX_MODULES_PER_GROUP",
    "MAX_MODULES_TOTAL",
    "MAX_RS485_GROUP",
    "MAX_RS485_MODULES_PER_GROUP",
    "MAX_TEMPERATURES_PER_MODULE",
    "MIN_RS485_GROUP",
    "RS485_GROUPS",
    "CountBoundError",
    "InvalidGroupError",
    "check_count",
    "check_group",
    "is_valid_group",
]
