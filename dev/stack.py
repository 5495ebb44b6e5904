"""Run the battery simulator and the real Home Assistant together, pointed at each other.

Runs inside the ``ha`` environment (scripts/develop, scripts/smoke and scripts/ui-test call it
through ``pylon_run ha``). Three modes:

- ``develop``: seed a config dir, start the simulator and Home Assistant (its log on the
  terminal), print where to log in, run until Ctrl-C, then stop Home Assistant and then the
  simulator, each with SIGINT first.
- ``smoke``: the same, quietly and bounded: wait until the entry is loaded with live values,
  then run the checks of ``dev/smoke_checks.py`` against the simulator's truth (config flow,
  RS485 bank limits, console cycles, protections, a stalled console beside live CAN,
  diagnostics, the log), print each verdict with its evidence, stop, exit 0 (or 1 when a
  check failed).
- ``serve``: like ``develop`` but quiet; writes a JSON "ready" file (URL, credentials, token,
  device ids) for the browser check and runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "dev" / "seed_config.py"
LINKS = ("console", "rs485", "can")
sys.path.insert(0, str(ROOT))
# homeassistant first: it installs its voluptuous alias before the integration imports it.
import homeassistant  # noqa: E402,F401
from seed_config import DEFAULT_SCAN_INTERVAL as SEED_SCAN_INTERVAL, TOKEN_FILE  # noqa: E402
from smoke_checks import CheckResult, Entry, Smoke, summary_lines  # noqa: E402

from simulator.models import MODELS  # noqa: E402  - the models the simulator knows

# One Jinja template answers "which entities and devices does the integration have, with
# which states" in a single REST call.
ENTITIES_TEMPLATE = """{%- set ns = namespace(rows=[]) -%}
{%- for e in integration_entities('pylontech') -%}
{%- set d = device_id(e) -%}
{%- set ns.rows = ns.rows + [{'entity_id': e, 'state': states(e),
  'unit': state_attr(e, 'unit_of_measurement'), 'device_id': d,
  'device': device_attr(d, 'name') if d else none,
  'via': device_attr(d, 'via_device_id') if d else none}] -%}
{%- endfor -%}
{{ ns.rows | to_json }}"""


def _die_with_parent(command: list[str]) -> list[str]:
    """``command`` run so that it gets SIGTERM if this script dies without stopping it.

    The children run in sessions of their own (so Ctrl-C reaches only this script, which then
    stops Home Assistant before the simulator); ``setpriv --pdeathsig`` (util-linux) keeps a
    killed script from leaving them behind. Without setpriv the command runs as it is.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


@dataclass(frozen=True, slots=True)
class EntityState:
    """One entity of the integration as the REST API reports it."""

    entity_id: str
    state: str
    unit: str | None
    device_id: str | None
    device: str | None
    via: str | None

    @property
    def is_number(self) -> bool:
        """A numeric state (a live reading rather than unknown/unavailable/on/off)."""
        try:
            float(self.state)
        except ValueError:
            return False
        return True


@dataclass(slots=True)
class Stack:
    """The simulator and Home Assistant processes of one run."""

    args: argparse.Namespace
    workdir: Path
    quiet: bool
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        """The Home Assistant configuration directory."""
        return self.workdir / "config"

    @property
    def url(self) -> str:
        """Where the frontend and the API are reached from this machine."""
        host = "127.0.0.1" if self.args.listen in ("0.0.0.0", "::") else self.args.listen
        return f"http://{host}:{self.args.http_port}"

    @property
    def sim_ports(self) -> dict[str, int]:
        """The simulator's ports: RS485, console, CAN (SLCAN), control."""
        base = self.args.sim_port
        return {"rs485": base, "console": base + 1, "can": base + 2, "control": base + 3}

    # -- lifecycle ---------------------------------------------------------------------

    def check_ports_free(self) -> None:
        """Fail early, with a clear message, when another run holds the ports."""
        wanted = {"Home Assistant": self.args.http_port} | {
            f"simulator {name}": port for name, port in self.sim_ports.items()
        }
        for name, port in wanted.items():
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise SystemExit(
                        f"error: port {port} ({name}) is in use: is another scripts/develop, "
                        "smoke or ui-test running? Pick others with --http-port / --sim-port."
                    ) from None

    def seed(self) -> None:
        """Create (or with --keep reuse) the config directory."""
        ports = self.sim_ports
        command = [
            sys.executable,
            str(SEED),
            "--config",
            str(self.config_dir),
            "--link",
            self.args.link,
            "--rs485-port",
            str(ports["rs485"]),
            "--console-port",
            str(ports["console"]),
            "--can-port",
            str(ports["can"]),
            "--companion-can" if self.args.can else "--no-companion-can",
            "--http-port",
            str(self.args.http_port),
            "--listen",
            self.args.listen,
        ]
        if self.args.keep:
            command.append("--keep")
        output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        self.say(output.stdout.strip())

    def start_simulator(self) -> None:
        """The simulator CLI with fixed ports (the seeded entry points at them)."""
        ports = self.sim_ports
        command = [
            sys.executable,
            "-m",
            "simulator",
            "--modules",
            str(self.args.modules),
            "--model",
            self.args.model,
            "--rs485-port",
            str(ports["rs485"]),
            "--console-port",
            str(ports["console"]),
            "--can-port",
            str(ports["can"]),
            "--control-port",
            str(ports["control"]),
            "--seed",
            str(self.args.seed),
        ]
        log = (self.workdir / "simulator.log").open("wb")
        self.processes["simulator"] = subprocess.Popen(
            _die_with_parent(command),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )

    def start_home_assistant(self) -> None:
        """The real Home Assistant (the ``ha`` venv's ``hass``) on the seeded config."""
        hass = Path(sys.executable).with_name("hass")
        command = [str(hass), "-c", str(self.config_dir)]
        env = dict(os.environ)
        if self.quiet:
            out: Any = (self.workdir / "hass.out").open("wb")
        else:
            out = None  # develop: Home Assistant's own log on the terminal
        self.processes["home_assistant"] = subprocess.Popen(
            _die_with_parent(command),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )

    def exited(self) -> str | None:
        """The name of a child that stopped on its own, if any."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """Home Assistant first (it closes its links), then the simulator."""
        for name in ("home_assistant", "simulator"):
            self.stop_process(name)

    def stop_process(self, name: str) -> None:
        """Stop one child: SIGINT, then harder (nothing when it is not running)."""
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        self.say(f"Stopping {name.replace('_', ' ')} (pid {process.pid})")
        for sig, grace in ((signal.SIGINT, 60.0), (signal.SIGTERM, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def say(self, text: str) -> None:
        """A line of our own, set apart from Home Assistant's log.

        Never raises: when the terminal or a pipe (``| tee``) is gone, stopping the
        children must still happen.
        """
        if text:
            with contextlib.suppress(OSError, ValueError):
                print(f"\033[1m[stack]\033[0m {text}", flush=True)

    # -- readiness ---------------------------------------------------------------------

    async def wait_simulator(self, deadline: float) -> None:
        """Until every simulator port accepts connections."""
        pending = set(self.sim_ports.values())
        while pending:
            self.raise_if_exited()
            for port in list(pending):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    continue
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                pending.discard(port)
            if pending:
                if time.monotonic() > deadline:
                    raise StackError(f"simulator ports {sorted(pending)} never opened")
                await asyncio.sleep(0.3)

    def raise_if_exited(self) -> None:
        """Fail fast when a child died."""
        if name := self.exited():
            log = "simulator.log" if name == "simulator" else "hass.out / home-assistant.log"
            code = self.processes[name].returncode
            raise StackError(f"{name} exited early (code {code}); see {self.workdir}/{log}")

    async def wait_ready(
        self, session: aiohttp.ClientSession, deadline: float
    ) -> tuple[dict[str, Any], list[EntityState]]:
        """Until the entry is loaded and its entities carry numeric values."""
        last_note = ""
        while True:
            self.raise_if_exited()
            note = ""
            try:
                entries = await self.api(session, "GET", "/api/config/config_entries/entry")
                mine = [e for e in entries if e.get("domain") == "pylontech"]
                if not mine:
                    note = "no pylontech config entry yet"
                else:
                    entry = mine[0]
                    state = entry.get("state")
                    if state in ("setup_error", "migration_error", "failed_unload"):
                        raise StackError(
                            f"the config entry failed: {state}: {entry.get('reason') or ''}"
                        )
                    if state != "loaded":
                        note = f"config entry {state}: {entry.get('reason') or 'waiting'}"
                    else:
                        entities = await self.entities(session)
                        if any(e.is_number for e in entities):
                            return entry, entities
                        note = f"{len(entities)} entities, no live value yet"
            except aiohttp.ClientError, TimeoutError, json.JSONDecodeError:
                note = "waiting for Home Assistant's API"
            if note != last_note:
                self.say(note)
                last_note = note
            if time.monotonic() > deadline:
                raise StackError(f"not ready in time: {note}")
            await asyncio.sleep(1.0)

    async def entities(self, session: aiohttp.ClientSession) -> list[EntityState]:
        """Every entity of the integration with its state and device."""
        rows = await self.api(session, "POST", "/api/template", {"template": ENTITIES_TEMPLATE})
        if isinstance(rows, str):
            rows = json.loads(rows)
        return [EntityState(**row) for row in rows]

    async def api(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
    ) -> Any:
        """One REST call with the seeded owner's token; the decoded JSON (or text)."""
        status, body = await self.api_raw(session, method, path, payload)
        if status >= 400:
            raise ApiError(f"{method} {path}: HTTP {status} {str(body)[:200]}")
        return body

    async def api_raw(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """One REST call; its HTTP status and decoded JSON (or text), errors included.

        The config flow answers malformed input with HTTP 400 and a message: a check
        needs to see that answer rather than an exception.
        """
        token = (self.config_dir / TOKEN_FILE).read_text().strip()
        async with session.request(
            method,
            self.url + path,
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            text = await response.text()
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    async def ws_command(self, session: aiohttp.ClientSession, command: dict[str, Any]) -> Any:
        """One websocket API command with the owner's token; its result."""
        token = (self.config_dir / TOKEN_FILE).read_text().strip()
        url = self.url.replace("http", "ws", 1) + "/api/websocket"
        async with session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
            await ws.receive_json(timeout=10)  # auth_required
            await ws.send_json({"type": "auth", "access_token": token})
            auth = await ws.receive_json(timeout=10)
            if auth.get("type") != "auth_ok":
                raise StackError(f"websocket auth failed: {auth}")
            await ws.send_json({"id": 1, **command})
            reply = await ws.receive_json(timeout=10)
        if not reply.get("success"):
            raise StackError(f"{command['type']} failed: {reply.get('error')}")
        return reply["result"]

    def log_evidence(self) -> tuple[list[str], list[str]]:
        """Home Assistant log lines about this integration, and its errors."""
        log = self.config_dir / "home-assistant.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        mine = [
            line for line in lines if "pylontech" in line and "[homeassistant.loader]" not in line
        ]
        errors = [line for line in mine if " ERROR " in line or "Traceback" in line]
        return mine, errors


class StackError(Exception):
    """The stack did not come up."""


class ApiError(aiohttp.ClientError):
    """Home Assistant answered a REST call with an HTTP error."""


def print_entities(stack: Stack, entities: list[EntityState], limit: int) -> None:
    """A short table of devices and sample states."""
    devices: dict[str, list[EntityState]] = {}
    for entity in entities:
        devices.setdefault(entity.device or "(no device)", []).append(entity)
    numeric = sum(e.is_number for e in entities)
    stack.say(f"{len(entities)} entities on {len(devices)} devices, {numeric} with numeric values:")
    for device, members in devices.items():
        stack.say(f"  device {device!r}: {len(members)} entities")
    for entity in [e for e in entities if e.is_number][:limit]:
        stack.say(f"    {entity.entity_id} = {entity.state} {entity.unit or ''}".rstrip())


async def run(args: argparse.Namespace) -> int:
    """Bring the stack up, then develop / smoke / serve."""
    quiet = args.mode != "develop"
    stack = Stack(args=args, workdir=args.workdir.resolve(), quiet=quiet)
    stack.workdir.mkdir(parents=True, exist_ok=True)
    stack.check_ports_free()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    deadline = started + args.timeout
    try:
        stack.seed()
        stack.start_simulator()
        await wait_or_stop(stack.wait_simulator(deadline), stop)
        stack.say(
            f"Simulator: {args.modules} x {args.model}, ports "
            + ", ".join(f"{k} {v}" for k, v in stack.sim_ports.items())
        )
        stack.start_home_assistant()
        stack.say(f"Home Assistant 2026.11 starting on {stack.url} (config {stack.config_dir})")
        async with aiohttp.ClientSession() as session:
            ready = await wait_or_stop(stack.wait_ready(session, deadline), stop)
            if ready is None:
                return 130
            entry, entities = ready
            took = time.monotonic() - started
            stack.say(f"Ready in {took:.0f} s: entry {entry['title']!r} is {entry['state']}")
            if args.mode == "smoke":
                try:
                    return await smoke_report(stack, session, entry, entities)
                except (aiohttp.ClientError, TimeoutError, OSError) as err:
                    raise StackError(f"lost Home Assistant or the simulator: {err!r}") from err
            if args.mode == "serve":
                write_ready_file(stack, entry, entities)
            else:
                print_banner(stack, entities)
            await wait_or_stop(wait_children(stack), stop)
            if name := stack.exited():
                stack.say(f"{name} stopped on its own (code {stack.processes[name].returncode})")
                return 1
            return 0
    except StackError as err:
        stack.say(f"FAILED: {err}")
        _mine, errors = stack.log_evidence()
        for line in errors[-20:]:
            stack.say(f"  {line}")
        return 1
    finally:
        stack.stop()


async def wait_or_stop(awaitable: Any, stop: asyncio.Event) -> Any:
    """Await a coroutine unless a stop signal comes first (then None)."""
    task = asyncio.ensure_future(awaitable)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, stopper):
        if pending not in done:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
    return task.result() if task in done else None


async def wait_children(stack: Stack) -> None:
    """Until a child exits on its own (polled: they are plain subprocesses, not asyncio's)."""
    while stack.exited() is None:  # noqa: ASYNC110 - nothing to wait on but the poll
        await asyncio.sleep(0.5)


async def smoke_report(
    stack: Stack, session: aiohttp.ClientSession, entry: dict[str, Any], first: list[EntityState]
) -> int:
    """Run every smoke check, print each verdict with its evidence; 0 when none failed."""
    args = stack.args
    smoke = Smoke(
        stack,
        session,
        Entry(
            entry_id=str(entry["entry_id"]),
            link=args.link,
            companion=args.can and args.link != "can",
            scan_interval=float(SEED_SCAN_INTERVAL),
        ),
    )
    mine, _errors = stack.log_evidence()
    stack.say("Home Assistant log lines about pylontech:")
    for line in mine[-8:]:
        stack.say(f"  {line[:220]}")
    print_entities(stack, first, limit=8)
    start = smoke.begin("start", "the entry sets up a bank and its modules")
    if not any("Setup of domain pylontech" in line for line in mine):
        start.fail("the log never shows 'Setup of domain pylontech'")
    devices = {e.device_id for e in first if e.device_id}
    wanted = 1 + (args.modules if args.link != "can" else 0)
    (start.note if len(devices) >= wanted else start.fail)(
        f"{len(devices)} devices ({wanted} expected: a bank and {args.modules} modules)"
    )
    smoke.end(start)
    live_since = time.monotonic()
    await run_check(smoke, "flow", smoke.check_flow)
    await run_check(smoke, "rs485-limits", smoke.check_rs485_limits)
    await run_check(smoke, "console-cycles", smoke.check_console_cycles)
    await asyncio.sleep(max(0.0, args.live_wait - (time.monotonic() - live_since)))
    live = smoke.begin("live", "entities carry live (changing) values")
    second = await stack.entities(session)
    before = {e.entity_id: e.state for e in first if e.is_number}
    changed = [
        e.entity_id
        for e in second
        if e.is_number and before.get(e.entity_id) not in (None, e.state)
    ]
    waited = time.monotonic() - live_since
    (live.note if changed else live.fail)(
        f"{len(changed)} of {len(before)} numeric values changed in {waited:.0f} s "
        "(the simulator's load profile moves them)"
    )
    smoke.end(live)
    if args.link != "can":
        await run_check(smoke, "blueprint", lambda: blueprint_check(smoke))
    await run_check(smoke, "protection", smoke.check_protection)
    await run_check(smoke, "stall", smoke.check_stall)
    await run_check(smoke, "diagnostics", smoke.check_diagnostics)
    # Stopped first so that shutdown's log lines (and tracebacks) are checked too.
    stack.stop_process("home_assistant")
    smoke.check_log()
    for line in summary_lines(smoke.results):
        stack.say(line)
    failed = any(r.status == "FAIL" for r in smoke.results)
    stack.say("SMOKE FAILED" if failed else "SMOKE PASSED")
    return 1 if failed else 0


async def run_check(smoke: Smoke, name: str, check: Callable[[], Awaitable[Any]]) -> None:
    """One check; one that breaks (Home Assistant gone, an API changed) fails, the rest run."""
    try:
        await check()
    except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError, KeyError) as err:
        result = CheckResult(name, "(broke)")
        result.fail(f"the check broke: {err!r}")
        smoke.results.append(result)
        smoke.end(result)


async def blueprint_check(smoke: Smoke) -> CheckResult:
    """The notify blueprint's round trip as a check."""
    result = smoke.begin("blueprint", "a protection fires the notify blueprint; all clears")
    first_line = smoke.log_position()
    for problem in await fault_round_trip(smoke.stack, smoke.session):
        result.fail(problem)
    smoke.fault_windows.append((first_line, smoke.log_position() + 1))
    smoke.end(result)
    return result


async def control(stack: Stack, line: str) -> str:
    """One line to the simulator's control port; its one-line reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.sim_ports["control"])
    try:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 10)).decode().strip()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def wait_template(
    stack: Stack, session: aiohttp.ClientSession, template: str, wanted: str, timeout: float
) -> str:
    """Render a template until it gives ``wanted`` (or the timeout); the last rendering."""
    deadline = time.monotonic() + timeout
    while True:
        value = str(await stack.api(session, "POST", "/api/template", {"template": template}))
        if value.strip() == wanted or time.monotonic() > deadline:
            return value.strip()
        await asyncio.sleep(1.0)


# The integration's protection/warning entities that are on, as a comma list (a second
# bank's entity ids may end in "_2").
ACTIVE_FAULTS_TEMPLATE = (
    "{{ integration_entities('pylontech')"
    " | select('match', 'binary_sensor\\..*_(protection|warning|failure)(_[0-9]+)?$')"
    " | select('is_state', 'on') | join(', ') }}"
)


async def fault_round_trip(stack: Stack, session: aiohttp.ClientSession) -> list[str]:
    """Inject a protection on a module: entities turn on, the blueprint fires, all clears."""
    module = 2 if stack.args.modules >= 2 else 1
    automation = "automation.battery_protection_or_alarm"
    problems: list[str] = []
    before = await wait_template(stack, session, ACTIVE_FAULTS_TEMPLATE, "", 5)
    if before:
        problems.append(f"faults active before any was injected: {before}")
    reply = await control(stack, f"inject protection charge_over_current module={module}")
    stack.say(f"Fault injected on the simulator: {reply}")
    deadline = time.monotonic() + 30
    active = ""
    while not active and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        active = str(
            await stack.api(session, "POST", "/api/template", {"template": ACTIVE_FAULTS_TEMPLATE})
        ).strip()
    stack.say(f"  now on: {active or 'nothing'}")
    if not active:
        problems.append("no protection/warning entity turned on after the injected protection")
    fired = await wait_template(
        stack,
        session,
        f"{{{{ state_attr('{automation}', 'last_triggered') is not none }}}}",
        "True",
        15,
    )
    stack.say(f"  the notify blueprint's automation ({automation}) triggered: {fired}")
    if fired != "True":
        problems.append(f"{automation} (the notify blueprint) never triggered")
    notifications = await stack.ws_command(session, {"type": "persistent_notification/get"})
    sent = [n for n in notifications if str(n.get("notification_id", "")).startswith("pylontech_")]
    for note in sent[:3]:
        stack.say(f"  notification: {note.get('title')!r}: {note.get('message')!r}")
    if not sent:
        problems.append("the notify blueprint created no notification")
    reply = await control(stack, "clear all")
    left = await wait_template(stack, session, ACTIVE_FAULTS_TEMPLATE, "", 30)
    stack.say(f"Fault cleared ({reply}): {left or 'nothing is on any more'}")
    if left:
        problems.append(f"still on after clearing: {left}")
    return problems


def write_ready_file(stack: Stack, entry: dict[str, Any], entities: list[EntityState]) -> None:
    """What the browser check needs to know, atomically."""
    bank = [e.device_id for e in entities if e.device_id and not e.via]
    names = {e.device_id: e.device or "" for e in entities if e.device_id and e.via}
    # Module 1 (the master) first: natural order of the device names.
    modules = sorted(names, key=lambda d: [int(t) if t.isdigit() else t for t in names[d].split()])
    ready = {
        "url": stack.url,
        "username": "dev",
        "password": "dev",
        "token": (stack.config_dir / TOKEN_FILE).read_text().strip(),
        "entry_id": entry["entry_id"],
        "bank_device_id": bank[0] if bank else None,
        "module_device_ids": modules,
        "modules": stack.args.modules,
        "control_port": stack.sim_ports["control"],
    }
    path: Path = stack.args.ready_file
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ready, indent=2))
    tmp.replace(path)
    stack.say(f"Ready file: {path}")


def print_banner(stack: Stack, entities: list[EntityState]) -> None:
    """Where to look and what to try."""
    print_entities(stack, entities, limit=6)
    control = stack.sim_ports["control"]
    stack.say("")
    stack.say(f"Open {stack.url}  and log in as  dev / dev")
    stack.say("  Settings > Devices & services > Pylontech: the bank and its modules")
    stack.say("  Sidebar > Battery bank: the ready dashboard (dashboards/pylontech.yaml)")
    send = "scripts/develop --send"
    port = "" if control == 15003 else f" {control}"
    stack.say(f"Inject a fault:  {send} 'inject protection charge_over_current module=2'{port}")
    stack.say(f"Clear it again:  {send} 'clear all'{port}    (more: {send} help{port})")
    stack.say(f"Logs: {stack.config_dir}/home-assistant.log, {stack.workdir}/simulator.log")
    stack.say("Ctrl-C stops Home Assistant and the simulator.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line (scripts/develop, scripts/smoke, scripts/ui-test pass theirs through)."""
    parser = argparse.ArgumentParser(prog="stack", description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", choices=("develop", "smoke", "serve"))
    parser.add_argument("--modules", type=int, default=4, choices=range(1, 17), metavar="1..16")
    parser.add_argument("--model", default="US3000C", choices=sorted(MODELS))
    parser.add_argument("--link", default="console", choices=LINKS, help="the entry's main link")
    parser.add_argument(
        "--can",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the simulator's CAN link as a companion of a console/RS485 entry",
    )
    parser.add_argument("--seed", type=int, default=1, help="the simulator's random seed")
    parser.add_argument("--http-port", type=int, default=8123)
    parser.add_argument("--listen", default="127.0.0.1", help="Home Assistant's bind address")
    parser.add_argument("--sim-port", type=int, default=15000, help="first of 4 simulator ports")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="default .dev/<mode>/<http port>"
    )
    parser.add_argument("--keep", action="store_true", help="reuse the seeded config directory")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to come up")
    parser.add_argument(
        "--live-wait", type=float, default=12.0, help="smoke: seconds between reads"
    )
    parser.add_argument("--ready-file", type=Path, default=None, help="serve: where to write")
    args = parser.parse_args(argv)
    if args.workdir is None:
        # Keyed by port: two runs cannot share a port (checked first), so never a directory.
        args.workdir = ROOT / ".dev" / args.mode / str(args.http_port)
    if args.mode == "serve" and args.ready_file is None:
        args.ready_file = args.workdir / "ready.json"
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
