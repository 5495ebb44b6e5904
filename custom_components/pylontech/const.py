"""Constants for the Pylontech integration: config keys, defaults and limits."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "pylontech"
MANUFACTURER: Final = "Pylontech"

# --- config entry data ----------------------------------------------------------------
#: Version 2 stores a serial link's port under CONF_URL; version 1 had it under "url".
ENTRY_VERSION: Final = 2
CONF_URL_V1: Final = "url"

CONF_LINK: Final = "link"
LINK_RS485: Final = "rs485"
LINK_CONSOLE: Final = "console"
LINK_CAN: Final = "can"
LINKS: Final = (LINK_CAN, LINK_RS485, LINK_CONSOLE)

# A serial link's port: a device path, an esphome-hass:// serial proxy or a socket://
# tcp:// rfc2217:// gateway URL. Stored under "device", the key Home Assistant's port-usage
# attribution (the usb integration's consumers) reads, so the port shows as in use.
CONF_URL: Final = "device"
CONF_BAUDRATE: Final = "baudrate"
CONF_GROUP: Final = "group"

CONF_CAN_INTERFACE: Final = "can_interface"
CONF_CAN_CHANNEL: Final = "can_channel"
CONF_CAN_HOST: Final = "can_host"  # socketcand only
CONF_CAN_PORT: Final = "can_port"  # socketcand only
CAN_SOCKETCAN: Final = "socketcan"
CAN_SLCAN: Final = "slcan"
CAN_SOCKETCAND: Final = "socketcand"
CAN_INTERFACES: Final = (CAN_SOCKETCAN, CAN_SLCAN, CAN_SOCKETCAND)
CAN_BITRATE: Final = 500_000  # PYLON LV CAN is fixed at 500 kbit/s
DEFAULT_CAN_CHANNEL: Final = "can0"
DEFAULT_SOCKETCAND_PORT: Final = 29536

# Form-only keys (the entry stores the resulting URL, not these).
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_DEVICE: Final = "device"  # the serial-port field; the same key as the stored port
CONF_TRANSPORT: Final = "transport"
TRANSPORT_TCP: Final = "tcp"
TRANSPORT_RFC2217: Final = "rfc2217"

RS485_BAUDRATES: Final = (9600, 115200)
DEFAULT_RS485_BAUDRATE: Final = 115200
CONSOLE_BAUDRATE: Final = 115200
# The allowed RS485 groups are one fact in core/bounds.py (RS485_GROUPS).

# --- options --------------------------------------------------------------------------
CONF_SCAN_INTERVAL: Final = "scan_interval"  # seconds between fast polls
CONF_DETAIL_INTERVAL: Final = "detail_interval"  # seconds between identity/statistics reads
CONF_CELL_ENTITIES: Final = "cell_entities"
CONF_POLITE: Final = "polite"  # RS485: share the bus with an inverter
CONF_CAN_KEEPALIVE: Final = "can_keepalive"
CONF_COMPANION: Final = "companion"  # second link merged into the same bank
COMPANION_NONE: Final = "none"

DEFAULT_SCAN_INTERVAL: Final = 10
MIN_SCAN_INTERVAL: Final = 2
MAX_SCAN_INTERVAL: Final = 3600
DEFAULT_DETAIL_INTERVAL: Final = 900
MIN_DETAIL_INTERVAL: Final = 60
MAX_DETAIL_INTERVAL: Final = 86400
DEFAULT_CELL_ENTITIES: Final = True
DEFAULT_POLITE: Final = False
DEFAULT_CAN_KEEPALIVE: Final = False

# A CAN bank broadcasts about once a second; without frames for this long it is stale.
CAN_STALE_AFTER: Final = 10.0
# How long the first refresh of a CAN-only entry waits for a complete broadcast cycle.
CAN_FIRST_DATA_TIMEOUT: Final = 5.0

# --- services -------------------------------------------------------------------------
SERVICE_REFRESH_DETAILS: Final = "refresh_details"
