"""Browser check: headless Chromium logs in to a running Home Assistant and looks at the bank.

Started by scripts/ui-test once ``dev/stack.py serve`` has written its ready file. Runs on
the host in the ``.dev/ui-venv`` made by scripts/setup-ui (Playwright driving Debian's
Chromium; Playwright's own browser download is never used). Steps, each one an assertion:

1. the login page: type dev / dev into the username and password fields, press "Log in";
2. the bank's device page (/config/devices/device/<id>): the bank's name, numeric readings
   with units, nothing "Unavailable" among them, the state of charge the API reports, and
   readings that change on screen without a reload (live);
3. a module's device page: its name, its readings, live as well;
4. the "Battery bank" dashboard (dashboards/pylontech.yaml) renders its cards;
5. the integration's page lists the entry with the bank and module devices;
6. faults injected on the simulator (a protection, a cell imbalance) show up on the dashboard's
   status card and as a repair, and both are gone once the faults are cleared.

Screenshots of each page go to --out (docs/screenshots by default).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
import re
import socket
import sys
import time
from typing import Any

from playwright.sync_api import Error as PlaywrightError, Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# Text of the whole page, shadow roots included (Home Assistant's UI is web components).
DEEP_TEXT_JS = """() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { parts.push(node.textContent); return; }
    if (node.nodeType !== Node.ELEMENT_NODE && node.nodeType !== Node.DOCUMENT_FRAGMENT_NODE
        && node.nodeType !== Node.DOCUMENT_NODE) return;
    if (node.nodeType === Node.ELEMENT_NODE) {
      const tag = node.tagName;
      if (tag === 'STYLE' || tag === 'SCRIPT' || tag === 'TEMPLATE') return;
      if (node.shadowRoot) walk(node.shadowRoot);
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document);
  return parts.join(' ').replace(/\\s+/g, ' ');
}"""
# A reading as the frontend prints it: "49.46 V", "41 %", "3,754 W", "28.7 °C", "122 Ah".
READING = re.compile(r"-?\d[\d,]*(?:\.\d+)? ?(?:mV|kWh|Wh|kW|W|Ah|V|A|%|°C)(?![A-Za-z])")


class CheckFailed(AssertionError):
    """A step of the browser check failed."""


def log(text: str) -> None:
    """Progress on stdout."""
    print(f"[ui] {text}", flush=True)


def deep_text(page: Page) -> str:
    """All text the page shows, through shadow roots."""
    return str(page.evaluate(DEEP_TEXT_JS))


def wait_for_text(page: Page, wanted: str, timeout: float = 30.0) -> str:
    """Deep text once it contains ``wanted``."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = deep_text(page)
        if wanted in text:
            return text
        page.wait_for_timeout(500)
    raise CheckFailed(f"{wanted!r} never appeared on {page.url}; the page shows: {text[:600]}")


def wait_for_readings(page: Page, minimum: int, timeout: float = 30.0) -> list[str]:
    """The readings on the page once there are at least ``minimum``."""
    deadline = time.monotonic() + timeout
    readings: list[str] = []
    while time.monotonic() < deadline:
        readings = READING.findall(deep_text(page))
        if len(readings) >= minimum:
            return readings
        page.wait_for_timeout(500)
    raise CheckFailed(f"only {len(readings)} readings on {page.url}: {readings}")


def hass_states(page: Page) -> dict[str, Any]:
    """The frontend's own state cache (what it renders from)."""
    return dict(
        page.evaluate(
            "() => Object.fromEntries(Object.entries(document.querySelector('home-assistant')"
            ".hass.states).map(([k, v]) => [k, v.state]))"
        )
    )


def login(page: Page, url: str, username: str, password: str) -> None:
    """Through the real login form."""
    page.goto(url + "/", wait_until="domcontentloaded")
    page.wait_for_url(re.compile(r".*/auth/authorize.*"), timeout=30_000)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name=re.compile(r"^log in$", re.IGNORECASE)).click()
    page.wait_for_url(lambda u: "/auth/" not in u, timeout=30_000)
    page.wait_for_function(
        "() => { const h = document.querySelector('home-assistant');"
        " return !!(h && h.hass && h.hass.connected && h.hass.states&& Object.keys(h.hass.states).length > 0); }",
        timeout=30_000,
    )
    log(f"logged in as {username}: {page.url}")


def check_live(page: Page, before: list[str], wait_s: float) -> list[str]:
    """Readings again after a while: some must differ (updated on screen, no reload)."""
    deadline = time.monotonic() + wait_s
    after = before
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        after = READING.findall(deep_text(page))
        if after != before:
            return after
    raise CheckFailed(f"no reading changed on {page.url} within {wait_s:g} s: {before}")


def check_device_page(
    page: Page, url: str, device_id: str, name: str, out: Path, shot: str, live_wait: float
) -> None:
    """A device page: name, numeric readings, nothing unavailable, live updates."""
    page.goto(f"{url}/config/devices/device/{device_id}", wait_until="domcontentloaded")
    wait_for_text(page, name)
    readings = wait_for_readings(page, minimum=5)
    text = deep_text(page)
    if "Unavailable" in text:
        raise CheckFailed(f"{name}: an entity shows 'Unavailable' on {page.url}")
    log(f"{name}: {len(readings)} readings, e.g. {', '.join(readings[:6])}")
    page.screenshot(path=str(out / shot), full_page=True)
    log(f"screenshot {out / shot}")
    after = check_live(page, readings, live_wait)
    changed = [f"{a} -> {b}" for a, b in zip(readings, after, strict=False) if a != b]
    log(f"{name}: live, {len(changed)} readings changed on screen, e.g. {changed[:3]}")


def check_soc_matches_api(page: Page, soc_entity: str) -> None:
    """The page shows the state of charge the frontend's state cache holds right now."""
    for _ in range(10):
        soc = hass_states(page).get(soc_entity)
        if soc is None:
            raise CheckFailed(f"no {soc_entity} in the frontend's states")
        # The frontend writes "41%" or "41 %" depending on the language's number format.
        if re.search(rf"(?<![\d.]){re.escape(soc)} ?%", deep_text(page)):
            log(f"state of charge on screen matches {soc_entity} = {soc} %")
            return
        page.wait_for_timeout(1000)
    raise CheckFailed(f"{soc_entity} = {soc} % is not what the device page shows")


def run(
    ready: dict[str, Any], out: Path, chromium: str, live_wait: float, failure_dir: Path
) -> None:
    """Every step; raises CheckFailed on the first failure (after a screenshot of it)."""
    url = ready["url"]
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="en-US", color_scheme="light"
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            login(page, url, ready["username"], ready["password"])

            check_device_page(
                page,
                url,
                ready["bank_device_id"],
                "Pylontech bank",
                out,
                "bank-device.png",
                live_wait,
            )
            check_soc_matches_api(page, "sensor.pylontech_bank_state_of_charge")

            modules = ready["module_device_ids"]
            if len(modules) != ready["modules"]:
                raise CheckFailed(f"{len(modules)} module devices, {ready['modules']} expected")
            module_name = _device_name(page, modules[0])
            check_device_page(
                page, url, modules[0], module_name, out, "module-device.png", live_wait
            )

            page.set_viewport_size({"width": 1280, "height": 1300})
            page.goto(f"{url}/pylontech-bank/bank", wait_until="domcontentloaded")
            wait_for_text(page, "State of charge")
            wait_for_readings(page, minimum=5)
            page.wait_for_timeout(1500)  # let the gauges finish their animation
            text = deep_text(page)
            for warning in ("Entity not available", "Entity not found", "not available:"):
                if warning in text:
                    raise CheckFailed(f"the dashboard shows {warning!r}: a card names no entity")
            page.screenshot(path=str(out / "dashboard.png"), full_page=True)
            log(f"dashboard rendered; screenshot {out / 'dashboard.png'}")

            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"{url}/config/integrations/integration/pylontech")
            wait_for_text(page, "Pylontech bank")
            wait_for_text(page, f"{ready['modules'] + 1} devices")
            page.screenshot(path=str(out / "integration.png"))
            log(
                f"integration page lists the entry and its devices; screenshot {out / 'integration.png'}"
            )

            check_fault_in_ui(page, url, ready["control_port"], out)
        except (CheckFailed, PlaywrightError) as err:
            failure_dir.mkdir(parents=True, exist_ok=True)
            shot = failure_dir / "failure.png"
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=str(shot), full_page=True)
                log(f"failure screenshot {shot} (at {page.url})")
            raise CheckFailed(str(err)) from err
        finally:
            browser.close()


def control(port: int, line: str) -> str:
    """One line to the simulator's control port; its reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(line.encode() + b"\n")
        return sock.makefile("r").readline().strip()


def check_fault_in_ui(page: Page, url: str, control_port: int, out: Path) -> None:
    """Inject faults: a repair and the dashboard's status card show them; both clear again."""
    for line in ("inject protection charge_over_current module=2", "inject imbalance module=1"):
        log(f"injected on the simulator: {control(control_port, line)}")
    try:
        page.goto(f"{url}/config/repairs")
        wait_for_text(page, "Cell imbalance", timeout=60)
        page.screenshot(path=str(out / "repairs.png"))
        log(f"the 'Cell imbalance' repair is listed; screenshot {out / 'repairs.png'}")
        page.goto(f"{url}/pylontech-bank/bank")
        wait_for_text(page, "Charge over-current protection", timeout=30)
        log("the dashboard's status card lists the active protection")
    finally:
        log(f"faults cleared: {control(control_port, 'clear all')}")
    wait_for_text(page, "No protection or warning is active", timeout=60)
    log("after clearing, the dashboard's status card is clear")
    page.goto(f"{url}/config/repairs")
    deadline = time.monotonic() + 60
    while "Cell imbalance" in deep_text(page):
        if time.monotonic() > deadline:
            raise CheckFailed("the 'Cell imbalance' repair stayed after the fault was cleared")
        page.wait_for_timeout(1000)
    log("after clearing, the repair is gone")


def _device_name(page: Page, device_id: str) -> str:
    name = page.evaluate(
        "(id) => { const d = document.querySelector('home-assistant').hass.devices[id];"
        " return d ? (d.name_by_user || d.name) : null; }",
        device_id,
    )
    if not name:
        raise CheckFailed(f"device {device_id} is unknown to the frontend")
    return str(name)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when every step passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ready", type=Path, required=True, help="dev/stack.py's ready file")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--live-wait", type=float, default=20.0)
    parser.add_argument("--failure-dir", type=Path, default=Path(".dev/ui"))
    args = parser.parse_args(argv)
    ready = json.loads(args.ready.read_text())
    started = time.monotonic()
    try:
        run(ready, args.out, args.chromium, args.live_wait, args.failure_dir)
    except CheckFailed as err:
        log(f"FAILED: {err}")
        return 1
    log(f"PASSED in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
