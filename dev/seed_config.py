"""Create a ready-to-use Home Assistant config directory pointed at the battery simulator.

Run it in the ``ha`` environment (it uses Home Assistant's own auth code, so the stored
user, credentials and password hash are exactly what onboarding would have written):

    source scripts/_env.sh
    pylon_run ha python dev/seed_config.py --config .dev/develop/config \
        --link console --console-port 15001 --can-port 15002

The result:
- ``configuration.yaml`` from ``dev/configuration.yaml``; the HTTP port and bind address
  (``--http-port``, ``--listen``) in the HTTP config store;
- onboarding marked done and an owner ``dev`` / ``dev`` (administrator), plus a long-lived
  access token of that owner in ``.pylon-token`` for the scripts;
- one ``pylontech`` config entry for the chosen link (console, RS485 or CAN), optionally with
  the CAN link as a companion (options), exactly as the config/options flow would store it;
- ``custom_components/pylontech`` symlinked to the checkout, the dashboard from
  ``dashboards/pylontech.yaml`` and the blueprint from ``blueprints/`` copied in.

The directory is wiped first unless ``--keep`` is given and it was seeded before.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
import json
import logging
from pathlib import Path
import shutil
import sys
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED_STAMP = ".pylon-seeded"
TOKEN_FILE = ".pylon-token"  # a long-lived access token of the owner
# Seconds between fast polls of the seeded entry: short, so the smoke checks see several
# polls between two slow reads without waiting long.
DEFAULT_SCAN_INTERVAL = 5

# Keys as the integration stores them (custom_components/pylontech/const.py); read from there
# so a renamed key fails loudly here instead of producing an entry the integration ignores.
sys.path.insert(0, str(ROOT))
import homeassistant  # noqa: E402,F401  - first: it installs its voluptuous alias

from custom_components.pylontech import const  # noqa: E402


def entry_data(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """Entry data, options, title and unique id for the chosen link."""
    host = args.host
    can = {
        const.CONF_LINK: const.LINK_CAN,
        const.CONF_CAN_INTERFACE: const.CAN_SLCAN,
        const.CONF_CAN_CHANNEL: f"socket://{host}:{args.can_port}",
    }
    options: dict[str, Any] = {
        const.CONF_SCAN_INTERVAL: args.scan_interval,
        const.CONF_DETAIL_INTERVAL: const.DEFAULT_DETAIL_INTERVAL,
        const.CONF_CELL_ENTITIES: True,
        const.CONF_CAN_KEEPALIVE: False,
    }
    if args.link == const.LINK_CAN:
        unique = ":".join((const.LINK_CAN, const.CAN_SLCAN, can[const.CONF_CAN_CHANNEL]))
        return can, {const.CONF_CAN_KEEPALIVE: False}, "Pylontech bank", unique
    if args.link == const.LINK_RS485:
        data = {
            const.CONF_LINK: const.LINK_RS485,
            const.CONF_URL: f"socket://{host}:{args.rs485_port}",
            const.CONF_BAUDRATE: const.DEFAULT_RS485_BAUDRATE,
            const.CONF_GROUP: 0,
        }
        options[const.CONF_POLITE] = False
    else:
        data = {
            const.CONF_LINK: const.LINK_CONSOLE,
            const.CONF_URL: f"socket://{host}:{args.console_port}",
            const.CONF_BAUDRATE: const.CONSOLE_BAUDRATE,
        }
    options[const.CONF_COMPANION] = can if args.companion_can else None
    unique = f"{data[const.CONF_LINK]}:{data[const.CONF_URL]}:{data.get(const.CONF_GROUP, 0)}"
    return data, options, "Pylontech bank", unique


async def seed_auth_and_entries(config_dir: Path, args: argparse.Namespace) -> None:
    """Create the owner and the config entry with Home Assistant's own storage code."""
    from homeassistant.auth import auth_manager_from_config
    from homeassistant.auth.const import GROUP_ID_ADMIN
    from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
    from homeassistant.config_entries import SOURCE_USER, ConfigEntries, ConfigEntry
    from homeassistant.core import CoreState, HomeAssistant
    from homeassistant.helpers import device_registry as dr, entity_registry as er

    hass = HomeAssistant(str(config_dir))
    hass.config_entries = ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    dr.async_setup(hass)
    await asyncio.gather(dr.async_load(hass), er.async_load(hass))
    hass.auth = await auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    provider = hass.auth.auth_providers[0]
    await provider.async_initialize()

    # The same steps as onboarding's user step: the first user becomes the owner.
    user = await hass.auth.async_create_user(args.name, group_ids=[GROUP_ID_ADMIN])
    await provider.async_add_auth(args.user, args.password)
    credentials = await provider.async_get_or_create_credentials({"username": args.user})
    await hass.auth.async_link_user(user, credentials)
    # A long-lived access token for the scripts (smoke/ui checks use the REST API with it).
    refresh_token = await hass.auth.async_create_refresh_token(
        user,
        client_name="pylontech dev scripts",
        token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN,
        access_token_expiration=timedelta(days=3650),
    )
    token_file = config_dir / TOKEN_FILE
    token_file.write_text(hass.auth.async_create_access_token(refresh_token) + "\n")
    token_file.chmod(0o600)

    data, options, title, unique_id = entry_data(args)
    entry = ConfigEntry(
        data=data,
        discovery_keys=MappingProxyType({}),
        domain=const.DOMAIN,
        minor_version=1,
        options=options,
        source=SOURCE_USER,
        subentries_data=None,
        title=title,
        unique_id=unique_id,
        version=1,
    )
    # A running instance that stops flushes every delayed store save (the auth store's).
    logging.getLogger("homeassistant.core").setLevel(logging.WARNING)
    hass.set_state(CoreState.running)
    await hass.async_stop()
    write_config_entries(config_dir / ".storage", [entry.as_dict()])


def write_config_entries(storage: Path, entries: list[dict[str, Any]]) -> None:
    """The config entries store, in the layout ``ConfigEntries`` saves."""
    from homeassistant import config_entries

    document = {
        "version": config_entries.STORAGE_VERSION,
        "minor_version": config_entries.STORAGE_VERSION_MINOR,
        "key": config_entries.STORAGE_KEY,
        "data": {"entries": entries},
    }
    path = storage / config_entries.STORAGE_KEY
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


# The blueprint in use, so a first look shows it working (inject a fault on the control port).
AUTOMATIONS = """\
- id: pylontech_notify_on_fault
  alias: Battery protection or alarm
  description: From the blueprint blueprints/automation/pylontech/notify_on_fault.yaml
  use_blueprint:
    path: pylontech/notify_on_fault.yaml
    input:
      include_alarms: true
      notify_cleared: true
"""


async def seed_http(config_dir: Path, host: str, port: int) -> None:
    """Where Home Assistant listens, stored as the confirmed ("stable") HTTP config.

    Since 2026.11 the HTTP settings live in storage; an ``http:`` YAML section is migrated
    as an unconfirmed trial that reverts itself after five minutes and asks the user to
    confirm, so the port is seeded here, through the store's own API, instead.
    """
    from homeassistant.components.http import config as http_config
    from homeassistant.core import CoreState, HomeAssistant

    hass = HomeAssistant(str(config_dir))
    store = http_config.HTTPConfigStore(hass)
    await store.async_load()
    wanted = {**store.default, "server_host": [host], "server_port": port}
    await store.async_set_pending(http_config.ConfData(**wanted))
    if store.pending is not None:
        await store.async_promote_pending()
    await store.async_mark_yaml_migration_done()
    hass.set_state(CoreState.running)
    await hass.async_stop()


def write_onboarding(storage: Path) -> None:
    """Mark every onboarding step done, so the frontend goes straight to the login page."""
    from homeassistant.components.onboarding import STORAGE_KEY, STORAGE_VERSION
    from homeassistant.components.onboarding.const import STEPS

    document = {
        "version": STORAGE_VERSION,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": {"done": list(STEPS)},
    }
    (storage / STORAGE_KEY).write_text(json.dumps(document, indent=2), encoding="utf-8")


def write_files(config_dir: Path) -> None:
    """configuration.yaml, the integration link, the dashboard and the blueprint."""
    shutil.copyfile(ROOT / "dev" / "configuration.yaml", config_dir / "configuration.yaml")
    automations = config_dir / "automations.yaml"
    if not automations.exists():
        automations.write_text(AUTOMATIONS, encoding="utf-8")
    components = config_dir / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / const.DOMAIN
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(ROOT / "custom_components" / const.DOMAIN, target_is_directory=True)
    dashboards = config_dir / "dashboards"
    dashboards.mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "dashboards" / "pylontech.yaml", dashboards / "pylontech.yaml")
    blueprints = config_dir / "blueprints" / "automation" / "pylontech"
    blueprints.mkdir(parents=True, exist_ok=True)
    for blueprint in (ROOT / "blueprints" / "automation" / "pylontech").glob("*.yaml"):
        shutil.copyfile(blueprint, blueprints / blueprint.name)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", required=True, type=Path, help="config directory to create")
    parser.add_argument("--keep", action="store_true", help="reuse a seeded directory")
    parser.add_argument("--link", choices=const.LINKS, default=const.LINK_CONSOLE)
    parser.add_argument(
        "--companion-can",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the CAN link as a companion of a console/RS485 entry (default: yes)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="where the simulator listens")
    parser.add_argument("--http-port", type=int, default=8123, help="Home Assistant's port")
    parser.add_argument("--listen", default="127.0.0.1", help="Home Assistant's bind address")
    parser.add_argument("--rs485-port", type=int, default=15000)
    parser.add_argument("--console-port", type=int, default=15001)
    parser.add_argument("--can-port", type=int, default=15002)
    parser.add_argument(
        "--scan-interval", type=int, default=DEFAULT_SCAN_INTERVAL, help="seconds between polls"
    )
    parser.add_argument("--user", default="dev")
    parser.add_argument("--password", default="dev")
    parser.add_argument("--name", default="Developer", help="the owner's display name")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Seed the directory; print what was created."""
    args = parse_args(argv)
    config_dir: Path = args.config.resolve()
    if args.keep and (config_dir / SEED_STAMP).exists():
        write_files(config_dir)  # refresh the dashboard/blueprint/configuration copies
        asyncio.run(seed_http(config_dir, args.listen, args.http_port))
        print(f"Reusing {config_dir} (--keep)")
        return 0
    if config_dir.exists():
        shutil.rmtree(config_dir)
    storage = config_dir / ".storage"
    storage.mkdir(parents=True)
    write_files(config_dir)
    write_onboarding(storage)
    asyncio.run(seed_auth_and_entries(config_dir, args))
    asyncio.run(seed_http(config_dir, args.listen, args.http_port))
    (config_dir / SEED_STAMP).write_text(args.link + "\n", encoding="utf-8")
    print(f"Seeded {config_dir}: owner '{args.user}', a {args.link} entry", end="")
    print(" with a CAN companion" if args.companion_can and args.link != "can" else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
