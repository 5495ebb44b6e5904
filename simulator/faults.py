"""Run-time fault injection: battery faults on modules and transport faults on each link.

Battery faults change the simulated truth (``SimulatedBank.snapshot()``) and therefore show up on
every link the way the real BMS would report them: RS485 0x44 state/status bytes and 0x92 flags,
console state columns and ``Bat Events``, CAN 0x359/0x35A/0x35C.

Link faults change only what one server puts on the wire (checksum errors, garbage, truncated
frames, stalls, dropped connections, a mis-clocked UART, a silent console). Each is either
persistent (until cleared) or consumed by a number of responses (``count``).

The same operations are reachable as text lines (``FaultInjector.execute``) for the control port:

    inject protection charge_over_current module=2
    inject alarm cell_imbalance module=1
    clear protection charge_over_current module=2
    drop module=3            restore module=3
    inject checksum link=rs485 count=2
    inject stall link=rs485 seconds=3
    inject drop link=console
    inject wrong_baud        inject silent
    inject bms_temperature_zero module=1
    inject imbalance module=2 millivolts=180 cell=4
    inject full_charge_request
    inject low_soc percent=4
    can raw 359 AAAAAA02AAAAAA02 [count=N]    can raw 356 omit    can raw 359 off | can raw off
    clear all | clear links | status | help
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
import json
from typing import Any

from custom_components.pylontech.core.model import Alarm, Protection

LINKS: tuple[str, ...] = ("rs485", "console", "can")


class LinkFault(StrEnum):
    """A transport fault one server can play."""

    CHECKSUM = "checksum"  # RS485: wrong CHKSUM; console/CAN: flipped characters
    GARBAGE = "garbage"  # noise bytes before the answer
    TRUNCATE = "truncate"  # the answer is cut short
    STALL = "stall"  # no answer for `seconds`
    DROP = "drop"  # the server closes the connection
    WRONG_BAUD = "wrong_baud"  # RS485: answers look like a mis-clocked UART
    SILENT = "silent"  # console: silent until the wake-up frame arrives


# Which link each fault defaults to when the control line names none.
_DEFAULT_LINK = {
    LinkFault.WRONG_BAUD: "rs485",
    LinkFault.SILENT: "console",
}


@dataclass(slots=True)
class ActiveLinkFault:
    """One injected transport fault; ``remaining`` None = until cleared."""

    fault: LinkFault
    remaining: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``status``."""
        return {"remaining": self.remaining, "seconds": self.seconds}


@dataclass(slots=True)
class RawCanFrame:
    """A frame the CAN server broadcasts as given; ``data`` None = the id is left out."""

    data: bytes | None
    remaining: int | None = None  # broadcast cycles left; None = until cleared

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``status``."""
        return {
            "data": None if self.data is None else self.data.hex().upper(),
            "remaining": self.remaining,
        }


MAX_CAN_ID = 0x7FF  # PYLON LV CAN uses classic 11-bit ids
MAX_CAN_DATA = 8


@dataclass(slots=True)
class Imbalance:
    """A cell pushed away from its siblings."""

    cell: int  # 1-based
    millivolts: float


class FaultInjector:
    """Holds every active fault; owned by a ``SimulatedBank`` (``bank.faults``)."""

    def __init__(self, set_soc: Callable[[float, int | None], None] | None = None) -> None:
        """Create an empty injector; ``set_soc`` lets ``low_soc`` move the bank's charge."""
        self._set_soc = set_soc
        self.protections: dict[int, set[Protection]] = {}
        self.alarms: dict[int, set[Alarm]] = {}
        self.dropped: set[int] = set()
        self.bms_temperature_zero_modules: set[int] = set()
        self.imbalances: dict[int, Imbalance] = {}
        self.full_charge_requested = False
        self._links: dict[str, dict[LinkFault, ActiveLinkFault]] = {link: {} for link in LINKS}
        self.raw_can: dict[int, RawCanFrame] = {}
        self.generation = 0  # bumped on every change (servers may watch it)

    # -- battery faults -------------------------------------------------------------------

    def inject_protection(self, flag: Protection | str, module: int = 1) -> None:
        """Trip a protection on a module (1 = master)."""
        self.protections.setdefault(module, set()).add(Protection(flag))
        self._changed()

    def clear_protection(self, flag: Protection | str, module: int = 1) -> None:
        """Release a protection."""
        self.protections.get(module, set()).discard(Protection(flag))
        self._changed()

    def inject_alarm(self, flag: Alarm | str, module: int = 1) -> None:
        """Raise a warning on a module."""
        self.alarms.setdefault(module, set()).add(Alarm(flag))
        self._changed()

    def clear_alarm(self, flag: Alarm | str, module: int = 1) -> None:
        """Clear a warning."""
        self.alarms.get(module, set()).discard(Alarm(flag))
        self._changed()

    def drop_module(self, module: int) -> None:
        """The module leaves the chain: it stops answering and shows ``Absent``."""
        self.dropped.add(module)
        self._changed()

    def restore_module(self, module: int) -> None:
        """The module is back in the chain."""
        self.dropped.discard(module)
        self._changed()

    def bms_temperature_zero(self, module: int = 1, active: bool = True) -> None:
        """The module's BMS board temperature reads 0 °C (wrong baud rate, parallel wiring guide)."""
        if active:
            self.bms_temperature_zero_modules.add(module)
        else:
            self.bms_temperature_zero_modules.discard(module)
        self._changed()

    def cell_imbalance(self, module: int = 1, millivolts: float = 150.0, cell: int = 1) -> None:
        """Offset one cell by ``millivolts`` (0 clears)."""
        if millivolts:
            self.imbalances[module] = Imbalance(cell=cell, millivolts=millivolts)
        else:
            self.imbalances.pop(module, None)
        self._changed()

    def full_charge_request(self, active: bool = True) -> None:
        """The BMS asks for a full charge (RS485 0x92 bit 3, CAN 0x35C bit 3)."""
        self.full_charge_requested = active
        self._changed()

    def low_soc(self, percent: float = 4.0, module: int | None = None) -> None:
        """Move the charge of one module (or all) to ``percent``."""
        if self._set_soc is None:
            raise RuntimeError("low_soc needs a bank")
        self._set_soc(percent, module)
        self._changed()

    # -- link faults ----------------------------------------------------------------------

    def inject_link_fault(
        self,
        link: str,
        fault: LinkFault | str,
        *,
        count: int | None = None,
        seconds: float = 2.0,
    ) -> None:
        """Play a transport fault on one link for ``count`` answers (None = until cleared)."""
        if link not in self._links:
            raise ValueError(f"unknown link {link!r}; known: {', '.join(LINKS)}")
        kind = LinkFault(fault)
        self._links[link][kind] = ActiveLinkFault(kind, count, seconds)
        self._changed()

    def clear_link_fault(self, link: str, fault: LinkFault | str | None = None) -> None:
        """Stop one transport fault (or all of a link)."""
        if fault is None:
            self._links[link].clear()
        else:
            self._links[link].pop(LinkFault(fault), None)
        self._changed()

    def link_fault(self, link: str, fault: LinkFault) -> ActiveLinkFault | None:
        """The active fault, without consuming it."""
        return self._links[link].get(fault)

    def take_link_fault(self, link: str, fault: LinkFault) -> ActiveLinkFault | None:
        """The active fault, consuming one count (removed when used up)."""
        active = self._links[link].get(fault)
        if active is None:
            return None
        if active.remaining is not None:
            active.remaining -= 1
            if active.remaining <= 0:
                del self._links[link][fault]
                self._changed()
        return active

    # -- raw CAN frames -------------------------------------------------------------------

    def send_raw_can(self, can_id: int, data: bytes | None, *, count: int | None = None) -> None:
        """Broadcast ``data`` as frame ``can_id`` in every CAN cycle (None = leave the id out).

        It replaces the simulator's own frame of that id, or is added after the cycle's
        frames; ``count`` limits it to that many cycles (None = until cleared).
        """
        if not 0 <= can_id <= MAX_CAN_ID:
            raise ValueError(f"CAN id 0x{can_id:X} outside 0x000..0x{MAX_CAN_ID:03X}")
        if data is not None and len(data) > MAX_CAN_DATA:
            raise ValueError(f"{len(data)} data bytes; a classic CAN frame has at most 8")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        self.raw_can[can_id] = RawCanFrame(None if data is None else bytes(data), count)
        self._changed()

    def clear_raw_can(self, can_id: int | None = None) -> None:
        """Back to the simulator's own frame for ``can_id`` (None: for every id)."""
        if can_id is None:
            self.raw_can.clear()
        else:
            self.raw_can.pop(can_id, None)
        self._changed()

    def take_raw_can(self) -> dict[int, bytes | None]:
        """The raw frames of one broadcast cycle, consuming one count of each."""
        cycle = {can_id: raw.data for can_id, raw in self.raw_can.items()}
        for can_id, raw in list(self.raw_can.items()):
            if raw.remaining is not None:
                raw.remaining -= 1
                if raw.remaining <= 0:
                    del self.raw_can[can_id]
                    self._changed()
        return cycle

    def _execute_can(self, rest: list[str], options: dict[str, str]) -> str:
        words = [w for w in rest if "=" not in w]
        if not words or words[0].lower() != "raw":
            raise ValueError("usage: can raw <id hex> <data hex>|omit|off [count=N], can raw off")
        if len(words) == 2 and words[1].lower() == "off":
            self.clear_raw_can()
            return "ok can raw off"
        if len(words) != 3:
            raise ValueError("usage: can raw <id hex> <data hex>|omit|off [count=N]")
        can_id = int(words[1].removeprefix("0x").removeprefix("0X"), 16)
        value = words[2]
        if value.lower() == "off":
            self.clear_raw_can(can_id)
            return f"ok can raw {can_id:03X} off"
        data = None if value.lower() == "omit" else bytes.fromhex("" if value == "-" else value)
        count = int(options["count"]) if "count" in options else None
        self.send_raw_can(can_id, data, count=count)
        shown = "omit" if data is None else (data.hex().upper() or "-")
        return f"ok can raw {can_id:03X} {shown}" + (f" count={count}" if count else "")

    # -- whole state ----------------------------------------------------------------------

    def clear_links(self) -> None:
        """Stop every transport fault and every raw CAN frame."""
        for faults in self._links.values():
            faults.clear()
        self.raw_can.clear()
        self._changed()

    def clear_all(self) -> None:
        """Back to a healthy bank (charge levels moved by ``low_soc`` stay)."""
        self.protections.clear()
        self.alarms.clear()
        self.dropped.clear()
        self.bms_temperature_zero_modules.clear()
        self.imbalances.clear()
        self.full_charge_requested = False
        self.clear_links()

    def status(self) -> dict[str, Any]:
        """Every active fault, JSON-ready."""
        return {
            "protections": {
                str(k): sorted(str(f) for f in v) for k, v in sorted(self.protections.items()) if v
            },
            "alarms": {
                str(k): sorted(str(f) for f in v) for k, v in sorted(self.alarms.items()) if v
            },
            "dropped": sorted(self.dropped),
            "bms_temperature_zero": sorted(self.bms_temperature_zero_modules),
            "imbalances": {
                str(k): {"cell": v.cell, "millivolts": v.millivolts}
                for k, v in sorted(self.imbalances.items())
            },
            "full_charge_request": self.full_charge_requested,
            "links": {
                link: {str(f): a.as_dict() for f, a in faults.items()}
                for link, faults in self._links.items()
                if faults
            },
            "can_raw": {f"{k:03X}": v.as_dict() for k, v in sorted(self.raw_can.items())},
        }

    def _changed(self) -> None:
        self.generation += 1

    # -- text commands (control port) -----------------------------------------------------

    def execute(self, line: str) -> str:
        """Run one control line; returns ``ok ...`` or ``error: ...`` (never raises)."""
        try:
            return self._execute(line)
        except (ValueError, KeyError, RuntimeError) as err:
            return f"error: {err}"

    def _execute(self, line: str) -> str:
        words = line.strip().split()
        if not words:
            return "error: empty command"
        verb, rest = words[0].lower(), words[1:]
        positional = [w for w in rest if "=" not in w]
        options: dict[str, str] = {}
        for word in rest:
            if "=" in word:
                key, _, value = word.partition("=")
                options[key.lower()] = value
        module = int(options.get("module", "1"))
        if verb == "help":
            return "ok " + " | ".join(HELP_LINES)
        if verb == "status":
            return "ok " + json.dumps(self.status(), sort_keys=True)
        if verb == "drop" and not positional:
            self.drop_module(module)
            return f"ok module {module} dropped"
        if verb == "restore":
            self.restore_module(module)
            return f"ok module {module} restored"
        if verb == "can":
            return self._execute_can(rest, options)
        if verb not in ("inject", "clear") or not positional:
            raise ValueError(f"unknown command {line.strip()!r}; try 'help'")
        kind = positional[0].lower()
        on = verb == "inject"
        if kind == "all" and not on:
            self.clear_all()
            return "ok cleared all"
        if kind == "links" and not on:
            self.clear_links()
            return "ok cleared links"
        if kind in ("protection", "alarm"):
            if len(positional) < 2:
                raise ValueError(f"{kind} needs a name")
            name = positional[1].lower()
            if kind == "protection":
                (self.inject_protection if on else self.clear_protection)(Protection(name), module)
            else:
                (self.inject_alarm if on else self.clear_alarm)(Alarm(name), module)
            return f"ok {verb} {kind} {name} module={module}"
        if kind == "bms_temperature_zero":
            self.bms_temperature_zero(module, on)
            return f"ok {verb} {kind} module={module}"
        if kind == "imbalance":
            millivolts = float(options.get("millivolts", "150")) if on else 0.0
            self.cell_imbalance(module, millivolts, int(options.get("cell", "1")))
            return f"ok {verb} {kind} module={module}"
        if kind == "full_charge_request":
            self.full_charge_request(on)
            return f"ok {verb} {kind}"
        if kind == "low_soc":
            if not on:
                raise ValueError("low_soc cannot be cleared; inject low_soc percent=60 instead")
            target = int(options["module"]) if "module" in options else None
            self.low_soc(float(options.get("percent", "4")), target)
            return f"ok {verb} {kind}"
        fault = LinkFault(kind)
        link = options.get("link", _DEFAULT_LINK.get(fault, "rs485")).lower()
        if on:
            count = int(options["count"]) if "count" in options else None
            seconds = float(options.get("seconds", "2"))
            self.inject_link_fault(link, fault, count=count, seconds=seconds)
        else:
            self.clear_link_fault(link, fault)
        return f"ok {verb} {fault} link={link}"


HELP_LINES: tuple[str, ...] = (
    "inject|clear protection <name> module=N",
    "inject|clear alarm <name> module=N",
    "drop module=N",
    "restore module=N",
    "inject|clear checksum|garbage|truncate|stall|drop|wrong_baud|silent link=rs485|console|can"
    " [count=N] [seconds=S]",
    "inject|clear bms_temperature_zero module=N",
    "inject|clear imbalance module=N [millivolts=150] [cell=1]",
    "inject|clear full_charge_request",
    "inject low_soc percent=P [module=N]",
    "can raw <id hex> <data hex>|-|omit [count=N]",
    "can raw <id hex> off",
    "can raw off",
    "clear all",
    "clear links",
    "status",
    "step seconds=S",
)
