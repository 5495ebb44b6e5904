"""What ``scripts/smoke`` checks on the real Home Assistant, against the simulator's truth.

Each check drives Home Assistant over its REST and websocket APIs the way a user (or the
frontend) does, compares what the entities show with what the simulator says is true (its
control port's ``snapshot``), and reports PASS, FAIL or SKIP with the evidence. Entities are
found through the entity and device registries, by config entry, device (bank or module
number) and translation key, never by guessed entity ids.

The checks:

- ``flow``: the config flow over ``/api/config/config_entries/flow`` as the frontend submits
  it: a wrong port gives an error, the re-shown form is submitted again with only the port
  changed, and the entry is created (the frontend re-fills the form from the schema the
  flow sends back, so that schema's values must pass its own validation).
- ``rs485-limits``: a RS485 entry's bank charge/discharge current limits are the bank's (the
  simulator's system limits), not one module's.
- ``console-cycles``: the console's module cycle counts stay known between two slow reads.
- ``protection``: an injected module protection is never shown "Safe" (off), on any entry.
- ``stall``: console stalled, CAN companion live: CAN-carried values stay live, the
  console's status entity says disconnected, console-only values go unavailable; then CAN
  stalls too; then everything recovers by itself.
- ``diagnostics``: no host (address, URL host, host name) or serial number in any entry's
  diagnostics, error texts included.
- ``log``: no traceback from the integration in Home Assistant's log (shutdown included);
  ERROR lines only while a link fault was injected.

The pure helpers (log records, leak scan, the frontend's form filling, the registry
inventory) have tests in tests/dev/test_smoke_checks.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
import contextlib
from dataclasses import dataclass, field
import json
import re
import socket
import time
from typing import TYPE_CHECKING, Any, Final

from custom_components.pylontech.core import capabilities

if TYPE_CHECKING:
    import aiohttp
    from stack import Stack

DOMAIN: Final = "pylontech"
UNAVAILABLE: Final = "unavailable"
UNKNOWN: Final = "unknown"

# The protections the "protection" check injects on module 2.
INJECTED_PROTECTIONS: Final = ("under_voltage", "charge_over_current")
# Each console command (each CAN broadcast) of a stalled simulator link waits this long
# unanswered, again and again until cleared: longer than the console link's command timeout,
# short enough that the simulator answers again soon after the stall is cleared.
STALL_SECONDS: Final = 10

# Values whose entities are sensors with a number (text fields live on the device).
_TEXT_VALUES: Final = frozenset(
    {"manufacturer", "model", "serial_number", "firmware", "protocol_version"}
)

# Translation keys of the links' status (connectivity) entities, primary and companion.
_PRIMARY_STATUS_KEYS: Final = ("link", "{link}_link", "link_{link}")
_COMPANION_STATUS_KEYS: Final = ("companion_link", "can_link", "link_can")

# -- results ----------------------------------------------------------------------------


@dataclass(slots=True)
class CheckResult:
    """One check's verdict and the evidence behind it."""

    name: str
    title: str
    status: str = "PASS"  # PASS, FAIL or SKIP
    evidence: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Evidence that does not change the verdict."""
        self.evidence.append(text)

    def fail(self, text: str) -> None:
        """A finding that makes the check fail."""
        self.status = "FAIL"
        self.evidence.append(f"FAIL: {text}")

    def skip(self, text: str) -> None:
        """The check cannot run in this configuration."""
        if self.status == "PASS":
            self.status = "SKIP"
        self.evidence.append(f"skipped: {text}")


# -- Home Assistant's log ---------------------------------------------------------------

_RECORD_START = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\S* (?P<level>[A-Z]+) \((?P<thread>[^)]*)\) "
    r"\[(?P<logger>[^\]]+)\] (?P<message>.*)$"
)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record of ``home-assistant.log``: its first line number and every line."""

    line: int  # 0-based index of the first line
    level: str
    logger: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The whole record."""
        return "\n".join(self.lines)

    @property
    def mentions_integration(self) -> bool:
        """Whether the record is about this integration (logger, message or traceback)."""
        return DOMAIN in self.text.lower()

    @property
    def has_traceback(self) -> bool:
        """Whether a traceback is attached."""
        return any(line.startswith("Traceback (most recent call last)") for line in self.lines)


def parse_log(lines: Sequence[str]) -> list[LogRecord]:
    """Group log lines into records: continuation lines (tracebacks) join the record above.

    Lines before the first record (``hass.out`` noise) form records of level ``RAW``.
    """
    records: list[LogRecord] = []
    start: int | None = None
    level = "RAW"
    logger = ""
    chunk: list[str] = []

    def flush() -> None:
        if chunk:
            records.append(LogRecord(start or 0, level, logger, tuple(chunk)))

    for number, line in enumerate(lines):
        match = _RECORD_START.match(line)
        if match is None:
            if not chunk:
                start, level, logger = number, "RAW", ""
            chunk.append(line)
            continue
        flush()
        start, level, logger = number, match["level"], match["logger"]
        chunk = [line]
    flush()
    return records


def integration_log_problems(
    records: Iterable[LogRecord], fault_windows: Sequence[tuple[int, int]]
) -> tuple[list[LogRecord], list[LogRecord], list[LogRecord]]:
    """(tracebacks, unexpected errors, expected errors) among the integration's records.

    An ERROR record about the integration is expected while a link fault was injected
    (``fault_windows``: first and last log line of each, as line counts); a traceback never is.
    """
    tracebacks: list[LogRecord] = []
    unexpected: list[LogRecord] = []
    expected: list[LogRecord] = []
    for record in records:
        if not record.mentions_integration:
            continue
        if record.has_traceback:
            tracebacks.append(record)
        elif record.level in ("ERROR", "CRITICAL"):
            inside = any(first <= record.line <= last for first, last in fault_windows)
            (expected if inside else unexpected).append(record)
    return tracebacks, unexpected, expected


# -- diagnostics ------------------------------------------------------------------------


_REDACTED = re.compile(r"redacted|^\*+$", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_URL_HOST = re.compile(r"\b(?:socket|tcp|rfc2217)://\[?(?P<host>[^\]/:\"\s]*)", re.IGNORECASE)
_LOCALHOST = re.compile(r"\blocalhost\b", re.IGNORECASE)


def find_leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """Hosts (IPv4 addresses, hosts in serial URLs, localhost) and ``secrets`` in ``text``.

    One example per kind, with its context. A URL whose host was redacted is no leak.
    """
    found: list[str] = []

    def report(what: str, start: int, end: int) -> None:
        excerpt = text[max(0, start - 40) : end + 20].replace("\n", " ")
        found.append(f"{what} {text[start:end]!r} in ...{excerpt}...")

    if (match := _IPV4.search(text)) is not None:
        report("an IPv4 address", match.start(), match.end())
    for match in _URL_HOST.finditer(text):
        if match["host"] and not _REDACTED.search(match["host"]):
            report("a gateway host", match.start(), match.end())
            break
    if (match := _LOCALHOST.search(text)) is not None:
        report("a host name", match.start(), match.end())
    for secret in sorted({s.strip() for s in secrets if s and len(s.strip()) >= 6}):
        if (index := text.find(secret)) >= 0:
            report("a serial number", index, index + len(secret))
    return found


# -- the frontend's form filling --------------------------------------------------------


def frontend_form_data(schema: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The values the frontend puts in a flow form before the user types anything.

    As the frontend's ``computeInitialHaFormData``: a suggested value, else the default,
    else for a required field an empty value of its type (an integer field starts at
    ``valueMin`` or 0, a number selector at its ``min`` or 0). A re-shown form is filled
    the same way, so what the flow suggests is what the frontend sends back.
    """
    data: dict[str, Any] = {}
    for item in schema:
        name = item["name"]
        suggested = (item.get("description") or {}).get("suggested_value")
        if suggested is not None:
            data[name] = suggested
        elif "default" in item:
            data[name] = item["default"]
        elif not item.get("required"):
            continue
        elif item.get("type") == "boolean":
            data[name] = False
        elif item.get("type") == "string":
            data[name] = ""
        elif item.get("type") == "integer":
            data[name] = item.get("valueMin", 0)
        elif item.get("type") == "float":
            data[name] = 0.0
        elif "selector" in item:
            selector = item["selector"] or {}
            if "number" in selector:
                data[name] = (selector["number"] or {}).get("min", 0)
            elif "boolean" in selector:
                data[name] = False
            elif "text" in selector:
                data[name] = ""
    return data


# -- the registry inventory -------------------------------------------------------------

type Position = tuple[int, int]  # (group, index) of a module

_NAME_MODULE = re.compile(r"module (\d+)\s*$", re.IGNORECASE)
_NAME_GROUP = re.compile(r"group (\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Shown:
    """One entity of the integration and what it shows now."""

    entity_id: str
    domain: str
    translation_key: str | None
    entry_id: str | None
    module: Position | None  # None: on the bank device
    state: str | None  # None: no state (disabled, or never added)

    @property
    def number(self) -> float | None:
        """The state as a number, if it is one."""
        try:
            return float(self.state)  # type: ignore[arg-type]
        except TypeError, ValueError:
            return None


def device_position(
    device: Mapping[str, Any], serials: Mapping[str, Position]
) -> Position | str | None:
    """Where a device sits: None for a bank device, a module's position, or "?" if unclear.

    Module devices are identified by the module's barcode (mapped to its position through
    the simulator's truth) or by position; the device name is the last resort.
    """
    entries = [str(e) for e in device.get("config_entries") or ()]
    for domain, identifier in device.get("identifiers") or ():
        if domain != DOMAIN:
            continue
        if identifier in entries:
            return None
        for entry_id in entries:
            rest = str(identifier).removeprefix(f"{entry_id}_")
            if rest == identifier:
                continue
            if rest.startswith("module_sn_"):
                position = serials.get(rest.removeprefix("module_sn_"))
                if position is not None:
                    return position
            parts = rest.split("_")
            if len(parts) == 3 and parts[0] == "module" and all(p.isdigit() for p in parts[1:]):
                return (int(parts[1]), int(parts[2]))
    name = str(device.get("name") or "")
    if (match := _NAME_MODULE.search(name)) is not None:
        group = _NAME_GROUP.search(name)
        return (int(group.group(1)) if group else 0, int(match.group(1)))
    return "?"


@dataclass(slots=True)
class Inventory:
    """Every entity of the integration, placed on its entry and device."""

    entities: list[Shown]

    @classmethod
    def build(
        cls,
        registry: Iterable[Mapping[str, Any]],
        devices: Iterable[Mapping[str, Any]],
        states: Iterable[Mapping[str, Any]],
        truth: Mapping[str, Any],
    ) -> Inventory:
        """From the entity and device registries, ``/api/states`` and the truth."""
        serials: dict[str, Position] = {
            str(m["serial_number"]).strip(): (int(m.get("group") or 0), int(m["index"]))
            for m in truth.get("modules", ())
            if m.get("serial_number")
        }
        places = {str(d["id"]): device_position(d, serials) for d in devices}
        shown = {str(s["entity_id"]): str(s["state"]) for s in states}
        entities: list[Shown] = []
        for entry in registry:
            if entry.get("platform") != DOMAIN:
                continue
            place = places.get(str(entry.get("device_id")), "?")
            if place == "?":
                continue
            entity_id = str(entry["entity_id"])
            entities.append(
                Shown(
                    entity_id=entity_id,
                    domain=entity_id.partition(".")[0],
                    translation_key=entry.get("translation_key"),
                    entry_id=entry.get("config_entry_id"),
                    module=place,  # type: ignore[arg-type]
                    state=shown.get(entity_id),
                )
            )
        return cls(entities)

    def find(
        self,
        entry_id: str,
        *keys: str,
        module: Position | None = None,
        any_module: bool = False,
        domain: str | None = None,
    ) -> list[Shown]:
        """Entities of an entry with one of ``keys`` on the bank, one module or any module."""
        return [
            e
            for e in self.entities
            if e.entry_id == entry_id
            and (not keys or e.translation_key in keys)
            and (domain is None or e.domain == domain)
            and ((e.module is not None) if any_module else e.module == module)
        ]

    def one(self, entry_id: str, *keys: str, **where: Any) -> Shown | None:
        """The first entity :meth:`find` gives, if any."""
        found = self.find(entry_id, *keys, **where)
        return found[0] if found else None

    def modules(self, entry_id: str) -> list[Position]:
        """The module positions of an entry's devices."""
        return sorted({e.module for e in self.entities if e.entry_id == entry_id and e.module})


def truth_module(truth: Mapping[str, Any], position: Position) -> Mapping[str, Any] | None:
    """The simulator's module at ``position``."""
    for module in truth.get("modules", ()):
        if (int(module.get("group") or 0), int(module["index"])) == position:
            found: Mapping[str, Any] = module
            return found
    return None


def close_enough(shown: float | None, truth: Any, tolerance: float) -> bool:
    """Whether a shown number matches the truth within ``tolerance``."""
    return shown is not None and truth is not None and abs(shown - float(truth)) <= tolerance


def capability_values(link: str, frame_set: str | None = None) -> frozenset[str]:
    """Bank values (with a number) a link carries, from the capability table."""
    return frozenset(capabilities.capability(link, frame_set).bank_values) - _TEXT_VALUES


def free_port() -> int:
    """A TCP port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the run ----------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """A config entry the checks work with."""

    entry_id: str
    link: str  # console, rs485 or can
    companion: bool  # a CAN companion is configured
    scan_interval: float


@dataclass(slots=True)
class Smoke:
    """One smoke run's checks on a started stack."""

    stack: Stack
    session: aiohttp.ClientSession
    primary: Entry
    results: list[CheckResult] = field(default_factory=list)
    fault_windows: list[tuple[int, int]] = field(default_factory=list)
    second: Entry | None = None  # the entry the flow check created
    # Diagnostics downloads kept for the diagnostics check: (label, HTTP status, text).
    diagnostics: list[tuple[str, str, str]] = field(default_factory=list)

    # -- plumbing --------------------------------------------------------------------

    def say(self, text: str) -> None:
        """One line of the run's output."""
        self.stack.say(text)

    def begin(self, name: str, title: str) -> CheckResult:
        """Start a check (printed when it ends)."""
        result = CheckResult(name, title)
        self.results.append(result)
        self.say(f"CHECK {name}: {title} ...")
        return result

    def end(self, result: CheckResult) -> None:
        """Print a check's verdict and evidence."""
        self.say(f"CHECK {result.name}: {result.status}")
        for line in result.evidence:
            self.say(f"    {line}")

    async def control(self, line: str) -> str:
        """One line to the simulator's control port; its reply."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.stack.sim_ports["control"])
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            return (await asyncio.wait_for(reader.readline(), 10)).decode().strip()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def truth(self) -> dict[str, Any]:
        """The simulator's truth (``snapshot``), as JSON."""
        reply = await self.control("snapshot")
        if not reply.startswith("ok "):
            raise RuntimeError(f"simulator snapshot failed: {reply[:200]}")
        truth: dict[str, Any] = json.loads(reply[3:])
        return truth

    async def inventory(self, truth: Mapping[str, Any] | None = None) -> Inventory:
        """Every entity of the integration with its state now."""
        registry, devices, states = await asyncio.gather(
            self.stack.ws_command(self.session, {"type": "config/entity_registry/list"}),
            self.stack.ws_command(self.session, {"type": "config/device_registry/list"}),
            self.stack.api(self.session, "GET", "/api/states"),
        )
        return Inventory.build(registry, devices, states, truth or await self.truth())

    def log_position(self) -> int:
        """How many lines Home Assistant's log has now."""
        log = self.stack.config_dir / "home-assistant.log"
        return len(log.read_text(errors="replace").splitlines()) if log.exists() else 0

    async def entry_state(self, entry_id: str) -> str | None:
        """A config entry's state."""
        entries = await self.stack.api(self.session, "GET", "/api/config/config_entries/entry")
        for entry in entries:
            if entry.get("entry_id") == entry_id:
                return str(entry.get("state"))
        return None

    def status_entity(self, inventory: Inventory, entry: Entry, companion: bool) -> Shown | None:
        """The connectivity entity of an entry's primary link or of its CAN companion."""
        keys = (
            _COMPANION_STATUS_KEYS
            if companion
            else tuple(k.format(link=entry.link) for k in _PRIMARY_STATUS_KEYS)
        )
        return inventory.one(entry.entry_id, *keys, domain="binary_sensor")

    # -- (e) the config flow ---------------------------------------------------------

    async def check_flow(self) -> CheckResult:
        """Failed attempts give clear errors; the re-shown form, fixed, creates the entry.

        Every submission is what the frontend sends: the re-shown form's own values (as
        the frontend fills them from the schema) with only what the user changed.
        """
        link = "console" if self.primary.link == "rs485" else "rs485"
        result = self.begin("flow", f"config flow ({link}) recovers after failed attempts")
        try:
            await self._flow_attempts(link, result)
            if self.second is None:
                await self._flow_fallback(link, result)
        except Exception as err:
            result.fail(f"the flow check broke: {err!r}")
        self.end(result)
        return result

    async def _flow_attempts(self, link: str, result: CheckResult) -> None:
        ports = self.stack.sim_ports
        form = await self._flow_open(link, result)
        if form is None:
            return
        values = frontend_form_data(form.get("data_schema") or [])
        result.note(f"form {form['step_id']!r} starts with {values}")
        if values.get("port") in (0, None):
            result.fail("the port field starts at 0 (the frontend shows 0, not empty)")
        # (what the user tried, what they changed, what must happen)
        attempts: list[tuple[str, dict[str, Any], str]] = [
            ("a port nothing listens on", {"port": free_port()}, "error")
        ]
        if link == "rs485":
            attempts += [
                ("the console's port", {"port": ports["console"]}, "console"),
                ("group 9 (RS485 groups are 0-7)", {"port": ports[link], "group": 9}, "group"),
            ]
        attempts.append((f"the {link} port", {"port": ports[link], "group": 0}, "created"))
        for what, changes, expect in attempts:
            if link != "rs485":
                changes.pop("group", None)
            data = {**values, "host": "127.0.0.1", **changes}
            status, step = await self._flow_post(f"/{form['flow_id']}", data)
            outcome = self._flow_outcome(status, step)
            result.note(f"submitted {what} {changes}: {outcome}")
            if expect == "created":
                if status == 200 and step.get("type") == "create_entry":
                    self.second = await self._created(step, link, result)
                else:
                    result.fail(f"the entry was not created: {outcome}")
                return
            message = json.dumps(step)
            if status == 400 and expect == "group" and "group" in message:
                # A range error on the field itself: the frontend keeps what was typed.
                if re.search(r"\b\d+\.0\b", message):
                    result.fail(f"the range error shows a float: {outcome}")
                values = data
                continue
            if status != 200 or step.get("type") != "form":
                result.fail(f"the form was not shown again with an error: {outcome}")
                return
            error = (step.get("errors") or {}).get("base") or ",".join(
                str(v) for v in (step.get("errors") or {}).values()
            )
            text = str((step.get("description_placeholders") or {}).get("error") or "")
            if error in ("", "unknown"):
                result.fail(f"error {error!r}: no clear error for {what}")
            if expect == "console" and "console" not in error:
                result.fail(f"error {error!r} does not say this port is a console")
            if "reconnect" in text.lower():
                result.fail(f"internal reconnect text in the form: {text[:160]!r}")
            form = step
            values = frontend_form_data(form.get("data_schema") or [])

    async def _flow_open(self, link: str, result: CheckResult) -> dict[str, Any] | None:
        status, step = await self._flow_post(
            "", {"handler": DOMAIN, "show_advanced_options": False}
        )
        path = ("user", link, f"{link}_network")
        for next_step in path[1:]:
            if status != 200 or step.get("type") != "menu":
                result.fail(f"expected a menu, got {self._flow_outcome(status, step)}")
                return None
            status, step = await self._flow_post(f"/{step['flow_id']}", {"next_step_id": next_step})
        if status != 200 or step.get("type") != "form":
            result.fail(f"expected a form, got {self._flow_outcome(status, step)}")
            return None
        return step

    async def _flow_post(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, body = await self.stack.api_raw(
            self.session, "POST", f"/api/config/config_entries/flow{path}", payload, timeout=90
        )
        return status, body if isinstance(body, dict) else {"message": str(body)}

    @staticmethod
    def _flow_outcome(status: int, step: Mapping[str, Any]) -> str:
        if status != 200:
            return f"HTTP {status} {step.get('message') or step.get('errors') or step}"
        kind = step.get("type")
        if kind == "form":
            return f"form {step.get('step_id')!r}, errors {step.get('errors') or {}}"
        if kind == "create_entry":
            return f"entry created ({step.get('title')!r})"
        return f"{kind} {step.get('reason') or step.get('step_id') or ''}".strip()

    async def _created(self, step: Mapping[str, Any], link: str, result: CheckResult) -> Entry:
        created = step.get("result")
        entry_id = str(created.get("entry_id") if isinstance(created, dict) else created)
        deadline = time.monotonic() + 60
        state = await self.entry_state(entry_id)
        while state != "loaded" and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            state = await self.entry_state(entry_id)
        result.note(f"entry {entry_id} is {state}")
        if state != "loaded":
            result.fail(f"the created entry did not load (state {state})")
        # A new entry polls at the integration's default interval (const.DEFAULT_SCAN_INTERVAL).
        return Entry(entry_id, link, companion=False, scan_interval=10.0)

    async def _flow_fallback(self, link: str, result: CheckResult) -> None:
        """Create the entry with well-typed values, so the checks that need it still run.

        On RS485 a group outside 0-7 is tried first (it must give a clear error, and no
        traceback in the log).
        """
        form = await self._flow_open(link, CheckResult("", ""))
        if form is None:
            return
        data: dict[str, Any] = {"host": "127.0.0.1", "port": self.stack.sim_ports[link]}
        data["transport"] = "tcp"
        if link == "rs485":
            data |= {"baudrate": "115200", "group": 9}
            status, step = await self._flow_post(f"/{form['flow_id']}", data)
            outcome = self._flow_outcome(status, step)
            result.note(f"(a fresh flow, well-typed values, group 9: {outcome})")
            if status == 200 and (step.get("errors") or {}).get("base") == "unknown":
                result.fail(f"group 9 gives no clear error: {outcome}")
            if step.get("type") != "form":
                form = await self._flow_open(link, CheckResult("", ""))
                if form is None:
                    return
            data["group"] = 0
        status, step = await self._flow_post(f"/{form['flow_id']}", data)
        if status == 200 and step.get("type") == "create_entry":
            result.note("(that flow with well-typed values created the entry for the rest)")
            self.second = await self._created(step, link, CheckResult("", ""))

    # -- (a) RS485 bank limits -------------------------------------------------------

    def rs485_entry(self) -> Entry | None:
        """The RS485 entry of this run, if any."""
        for entry in (self.primary, self.second):
            if entry is not None and entry.link == "rs485":
                return entry
        return None

    async def check_rs485_limits(self) -> CheckResult:
        """Bank CCL/DCL of an RS485 entry = the simulator's system limits."""
        result = self.begin("rs485-limits", "RS485 bank limits are the bank's, not one module's")
        entry = self.rs485_entry()
        if entry is None:
            result.skip("no RS485 entry (the flow check creates one)")
            self.end(result)
            return result
        keys = ("charge_current_limit", "discharge_current_limit", "charge_voltage_limit")
        deadline = time.monotonic() + 45
        while True:
            truth = await self.truth()
            inventory = await self.inventory(truth)
            shown = {key: inventory.one(entry.entry_id, key, domain="sensor") for key in keys}
            if all(s is not None and s.number is not None for s in shown.values()):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(2.0)
        bank = truth["bank"]
        modules = len(truth.get("modules", ()))
        for key, tolerance in zip(keys, (0.6, 0.6, 0.15), strict=True):
            entity = shown[key]
            if entity is None:
                result.fail(f"no bank {key} entity")
                continue
            line = f"bank {key}: shown {entity.state}, truth {bank.get(key)} ({entity.entity_id})"
            if close_enough(entity.number, bank.get(key), tolerance):
                result.note(line)
            else:
                result.fail(f"{line}; one module's would be {_per_module(bank.get(key), modules)}")
        checked = 0
        for position in inventory.modules(entry.entry_id):
            module = truth_module(truth, position) or {}
            for key in keys[:2]:
                entity = inventory.one(entry.entry_id, key, module=position, domain="sensor")
                if entity is None or module.get(key) is None:
                    continue
                checked += 1
                line = f"module {position[1]} {key}: shown {entity.state}, truth {module[key]}"
                if close_enough(entity.number, module[key], 0.6):
                    result.note(line)
                else:
                    result.fail(line)
        if not checked:
            result.note("no per-module limit entities (or the truth has no per-module limits)")
        self.end(result)
        return result

    # -- (b) console cycles across slow reads ----------------------------------------

    def console_entry(self) -> Entry | None:
        """The console entry of this run, if any."""
        for entry in (self.primary, self.second):
            if entry is not None and entry.link == "console":
                return entry
        return None

    async def check_console_cycles(self) -> CheckResult:
        """Module cycles = truth right after each of two slow reads and between them."""
        result = self.begin("console-cycles", "console module cycles stay known between slow reads")
        entry = self.console_entry()
        if entry is None:
            result.skip("no console entry")
            self.end(result)
            return result
        window = 2.5 * entry.scan_interval  # at least two fast polls after each slow read
        for read in (1, 2):
            status, body = await self.stack.api_raw(
                self.session,
                "POST",
                f"/api/services/{DOMAIN}/refresh_details",
                {"config_entry_id": entry.entry_id},
                timeout=90,
            )
            if status != 200:
                result.fail(f"refresh_details (slow read {read}) failed: HTTP {status} {body}")
                break
            started = time.monotonic()
            samples = 0
            bad: dict[int, str] = {}
            shown_first = ""
            while time.monotonic() - started < window:
                truth = await self.truth()
                inventory = await self.inventory(truth)
                positions = inventory.modules(entry.entry_id)
                if not positions:
                    result.fail("the console entry has no module devices")
                    break
                row = []
                for position in positions:
                    entity = inventory.one(entry.entry_id, "cycles", module=position)
                    want = (truth_module(truth, position) or {}).get("cycles")
                    got = None if entity is None else entity.state
                    row.append(f"{position[1]}:{got}")
                    if entity is None or entity.number is None or entity.number != want:
                        bad.setdefault(
                            position[1],
                            f"module {position[1]} cycles {got} (truth {want}) "
                            f"{time.monotonic() - started:.0f} s after slow read {read}",
                        )
                if not samples:
                    shown_first = " ".join(row)
                samples += 1
                await asyncio.sleep(2.0)
            result.note(
                f"slow read {read}: {samples} samples over {window:.0f} s; first: {shown_first}"
            )
            for line in bad.values():
                result.fail(line)
        self.end(result)
        return result

    # -- (d) an injected module protection ----------------------------------------------

    async def check_protection(self) -> CheckResult:
        """Inject protections on module 2: never "off" (Safe); all clear afterwards."""
        names = ", ".join(INJECTED_PROTECTIONS)
        result = self.begin("protection", f"injected module protections ({names}) never 'Safe'")
        entries = [e for e in (self.primary, self.second) if e is not None and e.link != "can"]
        module = (0, 2 if self.stack.args.modules >= 2 else 1)
        keys = tuple(f"protection_{name}" for name in INJECTED_PROTECTIONS)
        for name in INJECTED_PROTECTIONS:
            reply = await self.control(f"inject protection {name} module={module[1]}")
            result.note(f"simulator: {reply}")
        deadline = time.monotonic() + 30
        while True:
            inventory = await self.inventory()
            verdicts = {
                e.entry_id: self._protection_view(inventory, e, module, keys) for e in entries
            }
            settled = all(on and not off for on, off, _ in verdicts.values())
            if settled or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.5)
        for entry in entries:
            on, off, lines = verdicts[entry.entry_id]
            label = f"{entry.link} entry"
            for line in lines:
                result.note(f"{label}: {line}")
            for entity in off:
                result.fail(f"{label}: {entity.entity_id} shows off ('Safe') while injected")
            if not on:
                result.fail(f"{label}: no entity shows the injected protection")
        rs485 = self.rs485_entry()
        if rs485 is not None:
            truth = await self.truth()
            ccl = inventory.one(rs485.entry_id, "charge_current_limit", domain="sensor")
            result.note(
                f"rs485 entry bank charge limit while charging is blocked: "
                f"{ccl.state if ccl else None} (truth {truth['bank'].get('charge_current_limit')})"
            )
        reply = await self.control("clear all")
        deadline = time.monotonic() + 30
        while True:
            inventory = await self.inventory()
            still = [
                e.entity_id
                for entry in entries
                for e in inventory.find(entry.entry_id, *keys)
                + inventory.find(entry.entry_id, *keys, any_module=True)
                if e.state == "on"
            ]
            if not still or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.5)
        if still:
            result.fail(f"still on 30 s after '{reply}': {', '.join(still)}")
        else:
            result.note(f"after '{reply}': nothing is on any more")
        self.end(result)
        return result

    @staticmethod
    def _protection_view(
        inventory: Inventory, entry: Entry, module: Position, keys: tuple[str, ...]
    ) -> tuple[list[Shown], list[Shown], list[str]]:
        """(entities on, entities off, evidence) for the injected families of one entry."""
        on: list[Shown] = []
        off: list[Shown] = []
        lines: list[str] = []
        for key in keys:
            for where, position in (("bank", None), (f"module {module[1]}", module)):
                entity = inventory.one(entry.entry_id, key, module=position)
                if entity is None:
                    lines.append(f"{where} {key}: no entity (the link cannot tell)")
                    continue
                lines.append(f"{where} {key}: {entity.state} ({entity.entity_id})")
                if entity.state == "on":
                    on.append(entity)
                elif entity.state == "off":
                    off.append(entity)
        return on, off, lines

    # -- (c) console stalled, CAN live ---------------------------------------------------

    async def check_stall(self) -> CheckResult:
        """Console stalled: CAN values live, console status off; then CAN too; recovery."""
        result = self.begin("stall", "console stalled, CAN companion live: the truth per link")
        entry = self.console_entry()
        if entry is None or entry is not self.primary or not entry.companion:
            result.skip("needs the console entry with its CAN companion (the default run)")
            self.end(result)
            return result
        can_values = capability_values("can", "v1.2")
        console_values = capability_values("console")
        first_line = self.log_position()
        try:
            await self._stall_phases(result, entry, can_values, console_values - can_values)
        finally:
            await self.control("clear links")
            self.fault_windows.append((first_line, self.log_position() + 1))
        await self._stall_recovery(result, entry)
        self.fault_windows[-1] = (first_line, self.log_position() + 1)
        self.end(result)
        return result

    async def _wait_status(
        self, entry: Entry, companion: bool, wanted: str, timeout: float
    ) -> tuple[Inventory, Shown | None, float]:
        started = time.monotonic()
        while True:
            inventory = await self.inventory()
            status = self.status_entity(inventory, entry, companion)
            if (status is not None and status.state == wanted) or (
                time.monotonic() - started > timeout
            ):
                return inventory, status, time.monotonic() - started
            await asyncio.sleep(1.5)

    async def _stall_phases(
        self,
        result: CheckResult,
        entry: Entry,
        can_values: frozenset[str],
        console_only: frozenset[str],
    ) -> None:
        inventory = await self.inventory()
        primary = self.status_entity(inventory, entry, companion=False)
        companion = self.status_entity(inventory, entry, companion=True)
        if primary is None or companion is None:
            keys = sorted(
                {
                    str(e.translation_key)
                    for e in inventory.find(entry.entry_id, domain="binary_sensor")
                }
            )
            result.fail(
                f"status entities not found (primary {primary}, companion {companion}); "
                f"bank binary sensors: {keys}"
            )
            return
        result.note(
            f"before: {primary.entity_id}={primary.state}, {companion.entity_id}={companion.state}"
        )
        result.note(
            f"simulator: {await self.control(f'inject stall link=console seconds={STALL_SECONDS}')}"
        )
        inventory, primary, took = await self._wait_status(entry, False, "off", 45)
        result.note(f"console status {primary.state if primary else None} after {took:.0f} s")
        if primary is None or primary.state != "off":
            result.fail("the console's status entity never said disconnected")
        first = inventory
        await asyncio.sleep(2 * entry.scan_interval)
        truth = await self.truth()
        inventory = await self.inventory(truth)
        companion = self.status_entity(inventory, entry, companion=True)
        result.note(f"companion status {companion.state if companion else None}")
        if companion is None or companion.state != "on":
            result.fail(
                "the CAN companion's status entity does not say connected while CAN is live"
            )
        bank = truth["bank"]
        live = []
        for key in sorted(can_values):
            entity = inventory.one(entry.entry_id, key, domain="sensor")
            if entity is None:
                continue
            if entity.number is None:
                result.fail(f"CAN-carried bank {key} is {entity.state} while CAN is live")
                continue
            if key.endswith("_limit") and not close_enough(entity.number, bank.get(key), 0.6):
                result.fail(f"bank {key} shows {entity.state}, truth {bank.get(key)}")
                continue
            before = first.one(entry.entry_id, key, domain="sensor")
            moved = "" if before is None or before.state == entity.state else " (moving)"
            live.append(f"{key}={entity.state}{moved}")
        result.note(f"CAN-carried values while the console is stalled: {', '.join(live) or 'none'}")
        if not live:
            result.fail("no CAN-carried bank value is live")
        stale_console = [
            f"{e.translation_key}={e.state}"
            for key in sorted(console_only)
            if (e := inventory.one(entry.entry_id, key, domain="sensor")) is not None
            and e.state != UNAVAILABLE
        ]
        # Sensors and binary sensors: a module flag shown "off" now would be a false "Safe".
        modules = inventory.find(entry.entry_id, any_module=True)
        stale_modules = [e for e in modules if e.state not in (UNAVAILABLE, None)]
        result.note(
            f"console-only: {len(modules) - len(stale_modules)} of {len(modules)} module entities "
            f"unavailable; bank console-only values not unavailable: {stale_console or 'none'}"
        )
        if stale_console:
            result.fail(f"console-only bank values still shown: {', '.join(stale_console)}")
        if stale_modules:
            examples = ", ".join(f"{e.entity_id}={e.state}" for e in stale_modules[:4])
            result.fail(f"{len(stale_modules)} module entities not unavailable, e.g. {examples}")
        await self.snapshot_diagnostics("while the console is stalled")
        result.note(
            f"simulator: {await self.control(f'inject stall link=can seconds={STALL_SECONDS}')}"
        )
        inventory, companion, took = await self._wait_status(entry, True, "off", 30)
        result.note(f"companion status {companion.state if companion else None} after {took:.0f} s")
        if companion is None or companion.state != "off":
            result.fail("the companion's status entity still says connected with CAN stalled")
        await asyncio.sleep(entry.scan_interval)
        inventory = await self.inventory()
        shown = [
            f"{key}={e.state}"
            for key in sorted(can_values)
            if (e := inventory.one(entry.entry_id, key, domain="sensor")) is not None
            and e.state != UNAVAILABLE
        ]
        if shown:
            result.fail(f"with both links stalled, still not unavailable: {', '.join(shown)}")
        else:
            result.note("with both links stalled every CAN-carried bank value is unavailable")

    async def _stall_recovery(self, result: CheckResult, entry: Entry) -> None:
        started = time.monotonic()
        while True:
            inventory = await self.inventory()
            primary = self.status_entity(inventory, entry, companion=False)
            companion = self.status_entity(inventory, entry, companion=True)
            voltage = inventory.find(entry.entry_id, "voltage", any_module=True)
            recovered = (
                primary is not None
                and primary.state == "on"
                and companion is not None
                and companion.state == "on"
                and voltage
                and all(v.number is not None for v in voltage)
            )
            if recovered or time.monotonic() - started > 60:
                break
            await asyncio.sleep(1.5)
        took = time.monotonic() - started
        if recovered:
            result.note(f"recovered by itself {took:.0f} s after the stalls were cleared")
        else:
            result.fail(
                f"not recovered {took:.0f} s after clearing: console "
                f"{primary.state if primary else None}, companion "
                f"{companion.state if companion else None}, module voltages "
                f"{[v.state for v in voltage]}"
            )

    # -- (f) diagnostics ----------------------------------------------------------------

    async def snapshot_diagnostics(self, when: str) -> None:
        """Keep every entry's diagnostics now (checked by :meth:`check_diagnostics`)."""
        for entry in (self.primary, self.second):
            if entry is None:
                continue
            status, body = await self.stack.api_raw(
                self.session, "GET", f"/api/diagnostics/config_entry/{entry.entry_id}"
            )
            text = body if isinstance(body, str) else json.dumps(body)
            self.diagnostics.append((f"{entry.link} entry {when}", str(status), text))

    async def check_diagnostics(self) -> CheckResult:
        """No host or serial in any diagnostics download (error texts included).

        Each serial link's connection is dropped once first: the error the link keeps in
        its statistics then names the gateway.
        """
        result = self.begin("diagnostics", "diagnostics free of hosts and serials")
        first_line = self.log_position()
        links = [e.link for e in (self.primary, self.second) if e is not None and e.link != "can"]
        for link in links:
            result.note(f"simulator: {await self.control(f'inject drop link={link} count=1')}")
        slowest = max(e.scan_interval for e in (self.primary, self.second) if e is not None)
        await asyncio.sleep(1.5 * slowest + 2)
        await self.snapshot_diagnostics("after a dropped connection")
        self.fault_windows.append((first_line, self.log_position() + 1))
        truth = await self.truth()
        secrets = [str(truth["bank"].get("serial_number") or "")]
        secrets += [str(m.get("serial_number") or "") for m in truth.get("modules", ())]
        result.note(f"searched for hosts and {sum(len(x) >= 6 for x in secrets)} serial numbers")
        for label, status, text in self.diagnostics:
            if status != "200":
                result.fail(f"{label}: HTTP {status}")
                continue
            leaks = find_leaks(text, secrets)
            errors = len(re.findall(r'"last_error": "', text))
            result.note(
                f"{label}: {len(text)} characters, {errors} error texts, {len(leaks)} leaks"
            )
            for leak in leaks:
                result.fail(f"{label}: {leak}")
        self.end(result)
        return result

    # -- (g) the log ------------------------------------------------------------------

    def check_log(self) -> CheckResult:
        """No integration traceback anywhere; ERROR lines only inside fault windows."""
        result = self.begin("log", "no traceback from the integration in Home Assistant's log")
        log = self.stack.config_dir / "home-assistant.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        tracebacks, unexpected, expected = integration_log_problems(
            parse_log(lines), self.fault_windows
        )
        out = self.stack.workdir / "hass.out"
        raw = out.read_text(errors="replace").splitlines() if out.exists() else []
        stray = [
            r
            for r in parse_log(raw)
            if r.level == "RAW" and r.has_traceback and r.mentions_integration
        ]
        result.note(
            f"{len(lines)} log lines; {len(expected)} ERROR records about {DOMAIN} while a link "
            "fault was injected (expected)"
        )
        for record in expected[:3]:
            result.note(f"  expected: {record.lines[0][:200]}")
        for record in tracebacks + stray:
            frames = [line.strip() for line in record.lines if "pylontech" in line][-2:]
            result.fail(f"traceback: {record.lines[0][:200]} | {' | '.join(frames)[:300]}")
        for record in unexpected:
            result.fail(f"ERROR outside any injected fault: {record.lines[0][:220]}")
        self.end(result)
        return result


def _per_module(value: Any, modules: int) -> str:
    try:
        return f"{float(value) / max(1, modules):g}"
    except TypeError, ValueError:
        return "?"


def summary_lines(results: Sequence[CheckResult]) -> list[str]:
    """The closing table: one line per check."""
    counts = {s: sum(r.status == s for r in results) for s in ("PASS", "FAIL", "SKIP")}
    lines = [f"SUMMARY: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP"]
    for result in results:
        first = next((e for e in result.evidence if e.startswith("FAIL")), "")
        lines.append(f"  {result.status:4}  {result.name:15} {result.title}")
        if first:
            lines.append(f"        {first[:200]}")
    return lines
