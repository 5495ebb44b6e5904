"""Transports and sessions: RS485, console and CAN links with reconnect and counters.

Public API (what the Home Assistant integration uses):

* ``ReadPlan``, ``LinkStats``, ``ProbeResult``, ``PollingLink`` (``base``)
* ``Rs485Link`` (``rs485``), ``ConsoleLink`` and ``ConsoleState`` (``console``),
  ``CanLink`` (``can``)
* ``probe_rs485``, ``probe_console``, ``probe_can`` (``probe``)

Every failure surfaces as a ``LinkError`` subclass from ``..errors``.
"""

from __future__ import annotations

from .base import LinkStats, PollingLink, ProbeResult, ReadPlan
from .can import CanLink
from .console import ConsoleLink, ConsoleState
from .probe import probe_can, probe_console, probe_rs485
from .rs485 import Rs485Link

__all__ = [
    "CanLink",
    "ConsoleLink",
    "ConsoleState",
    "LinkStats",
    "PollingLink",
    "ProbeResult",
    "ReadPlan",
    "Rs485Link",
    "probe_can",
    "probe_console",
    "probe_rs485",
]
