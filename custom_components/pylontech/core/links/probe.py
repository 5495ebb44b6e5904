"""One-shot probes for the config flow: does a battery answer on this port, and who is it?

Each probe opens its link, reads identity once, closes everything it opened and
returns a ``ProbeResult``; failures raise ``LinkError`` subclasses whose messages
say what to check (port not found, permission denied, no answer, wrong baud ...).
"""

from __future__ import annotations

from ..model import Bank
from .base import ProbeResult, ReadPlan
from .can import probe_can
from .console import ConsoleLink
from .rs485 import Rs485Link

_IDENTITY_ONLY = ReadPlan(identity=True, cells=False, alarms=False, limits=False)


def _result(bank: Bank, detail: str) -> ProbeResult:
    master = bank.module(1, bank.modules[0].group) if bank.modules else None
    return ProbeResult(
        serial_number=bank.serial_number or (master.serial_number if master else None),
        model=bank.model or (master.model if master else None),
        module_count=len(bank.present_modules()),
        detail=detail,
    )


async def probe_rs485(
    url: str, baudrate: int = 115200, group: int = 0, timeout: float = 1.0
) -> ProbeResult:
    """Discover the modules of one RS485 group and read the master's identity."""
    link = Rs485Link(url, baudrate=baudrate, group=group, request_timeout=timeout)
    try:
        bank = await link.read_bank(_IDENTITY_ONLY)
        mode = (
            "all-modules requests"
            if link.diagnostics()["all_modules_requests"]
            else ("per-address requests")
        )
        detail = (
            f"RS485 at {baudrate} baud, group {group}: {len(bank.modules)} module(s) "
            f"answered ({mode}); protocol {bank.protocol_version or 'unknown'}"
        )
        return _result(bank, detail)
    finally:
        await link.close()


async def probe_console(url: str, baudrate: int = 115200, wake_up: bool = True) -> ProbeResult:
    """Reach the console prompt (waking it if allowed), then read ``pwr`` and ``info``."""
    link = ConsoleLink(url, baudrate=baudrate, wake_up=wake_up)
    try:
        await link.open()
        bank = await link.read_bank(_IDENTITY_ONLY)
        detail = (
            f"console at {baudrate} baud, prompt {link.prompt!r} ({link.state}); "
            f"{len(bank.present_modules())} module(s) present"
        )
        return _result(bank, detail)
    finally:
        await link.close()


__all__ = ["probe_can", "probe_console", "probe_rs485"]
