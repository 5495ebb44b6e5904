"""Config flow for Pylontech battery banks: pick a link, probe it, create the entry."""

from __future__ import annotations

from collections.abc import Mapping
import ipaddress
import logging
import re
from typing import Any, override
from urllib.parse import urlsplit

import probatio

from homeassistant.components import usb
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    SerialPortSelector,
    TextSelector,
)
from homeassistant.helpers.service_info.usb import UsbServiceInfo

from .const import (
    CAN_BITRATE,
    CAN_INTERFACES,
    CAN_SLCAN,
    CAN_SOCKETCAN,
    CAN_SOCKETCAND,
    COMPANION_NONE,
    CONF_BAUDRATE,
    CONF_CAN_CHANNEL,
    CONF_CAN_HOST,
    CONF_CAN_INTERFACE,
    CONF_CAN_KEEPALIVE,
    CONF_CAN_PORT,
    CONF_CELL_ENTITIES,
    CONF_COMPANION,
    CONF_DETAIL_INTERVAL,
    CONF_DEVICE,
    CONF_GROUP,
    CONF_HOST,
    CONF_LINK,
    CONF_POLITE,
    CONF_PORT,
    CONF_SCAN_INTERVAL,
    CONF_TRANSPORT,
    CONF_URL,
    CONSOLE_BAUDRATE,
    DEFAULT_CAN_CHANNEL,
    DEFAULT_CAN_KEEPALIVE,
    DEFAULT_CELL_ENTITIES,
    DEFAULT_DETAIL_INTERVAL,
    DEFAULT_POLITE,
    DEFAULT_RS485_BAUDRATE,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_SOCKETCAND_PORT,
    DOMAIN,
    ENTRY_VERSION,
    LINK_CAN,
    LINK_CONSOLE,
    LINK_RS485,
    MAX_DETAIL_INTERVAL,
    MAX_SCAN_INTERVAL,
    MIN_DETAIL_INTERVAL,
    MIN_SCAN_INTERVAL,
    RS485_BAUDRATES,
    TRANSPORT_RFC2217,
    TRANSPORT_TCP,
)
from .coordinator import PylontechConfigEntry
from .core import errors as pylon_errors
from .core.bounds import MAX_RS485_GROUP, MIN_RS485_GROUP, InvalidGroupError
from .core.links import ProbeResult, probe_can, probe_console, probe_rs485
from .core.links.transport import canonical_url, check_host, is_serial_proxy_url

_LOGGER = logging.getLogger(__name__)

# USB ids (upper-case hex) of adapters that speak CAN rather than a serial byte stream.
_USB_GS_USB = ("1D50", "606F")  # candleLight / gs_usb: a kernel socketcan interface
_USB_SLCAN = ("16D0", "117E")  # CANable with slcan firmware: a serial port

_CAN_CHANNEL = re.compile(r"[A-Za-z0-9_.-]{1,32}")

# Most specific first: the first class the error is an instance of picks the message.
_ERROR_KEYS: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidGroupError, "group_range"),
    (pylon_errors.InvalidUrlError, "invalid_url"),
    (pylon_errors.PortNotFoundError, "port_not_found"),
    (pylon_errors.PortPermissionError, "permission_denied"),
    (pylon_errors.PortBusyError, "port_busy"),
    (pylon_errors.GatewayUnreachableError, "cannot_connect"),
    (pylon_errors.CanInterfaceError, "can_interface"),
    (pylon_errors.WakeUpError, "wake_up_failed"),
    (pylon_errors.WrongBaudError, "wrong_baud"),
    (pylon_errors.DialectError, "not_pylontech"),
    (pylon_errors.LinkTimeoutError, "no_answer"),
    (pylon_errors.ChecksumError, "wrong_baud"),
    (pylon_errors.ResponseError, "not_pylontech"),
    (pylon_errors.ProtocolError, "wrong_baud"),
    (pylon_errors.LinkError, "cannot_connect"),
)
InvalidUrlError = pylon_errors.InvalidUrlError


def validate_url(value: str, *, serial_proxy: bool = True) -> str:
    """Return a port in the form it is stored in, or raise ``InvalidUrlError``.

    The links' own rule (``transport.canonical_url``), so the form accepts exactly what a
    link opens: a device path, a ``socket://``/``tcp://``/``rfc2217://`` gateway, or
    (with ``serial_proxy``: everything but an slcan channel) an ESPHome serial proxy.
    """
    return canonical_url(value, serial_proxy=serial_proxy)


def validate_host(value: str) -> str:
    """Return a host name or IP address, or raise ``InvalidUrlError``."""
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    return check_host(value).lower()


def gateway_url(transport: str, host: str, port: int) -> str:
    """Return the serialx URL of a network serial gateway."""
    scheme = "rfc2217" if transport == TRANSPORT_RFC2217 else "socket"
    host = validate_host(host)
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    return validate_url(f"{scheme}://{host}:{int(port)}")


#: Another battery port answered: the error names the port that did.
_WRONG_PORT_KEYS = {
    LINK_CONSOLE: "port_is_console",
    LINK_RS485: "port_is_rs485",
    LINK_CAN: "port_is_can",
}


def error_key(err: BaseException) -> str:
    """Return the translated error key for an exception raised while probing a link."""
    if isinstance(err, pylon_errors.WrongPortError):
        return _WRONG_PORT_KEYS.get(err.found, "not_pylontech")
    for cls, key in _ERROR_KEYS:
        if isinstance(err, cls):
            return key
    return "unknown"


def can_unique_id(data: Mapping[str, Any]) -> str:
    """Return a stable id for a CAN-only entry, derived from where the bus is reached."""
    parts = [LINK_CAN, data[CONF_CAN_INTERFACE], data[CONF_CAN_CHANNEL]]
    if data[CONF_CAN_INTERFACE] == CAN_SOCKETCAND:
        parts += [data.get(CONF_CAN_HOST) or "", str(data.get(CONF_CAN_PORT) or "")]
    return ":".join(parts)


def can_bus_kwargs(data: Mapping[str, Any]) -> dict[str, Any]:
    """Extra python-can bus arguments (host/port of a socketcand daemon)."""
    if data.get(CONF_CAN_INTERFACE) != CAN_SOCKETCAND:
        return {}
    return {
        "host": data.get(CONF_CAN_HOST),
        "port": int(data.get(CONF_CAN_PORT) or DEFAULT_SOCKETCAND_PORT),
    }


async def async_probe(data: Mapping[str, Any]) -> ProbeResult:
    """Probe the link an entry describes; raises ``PylontechError`` subclasses."""
    link = data[CONF_LINK]
    if link == LINK_RS485:
        return await probe_rs485(data[CONF_URL], data[CONF_BAUDRATE], group=data.get(CONF_GROUP, 0))
    if link == LINK_CONSOLE:
        return await probe_console(data[CONF_URL], data.get(CONF_BAUDRATE, CONSOLE_BAUDRATE))
    return await probe_can(
        data[CONF_CAN_INTERFACE],
        data[CONF_CAN_CHANNEL],
        bitrate=CAN_BITRATE,
        **can_bus_kwargs(data),
    )


def _title(data: Mapping[str, Any], result: ProbeResult) -> str:
    model = result.model or "battery bank"
    if data[CONF_LINK] == LINK_CAN:
        return f"Pylontech {model} (CAN {data[CONF_CAN_CHANNEL]})"
    return f"Pylontech {model}"


def _fallback_unique_id(data: Mapping[str, Any]) -> str:
    """Return the unique id when the bank does not report a barcode (old firmware)."""
    if data[CONF_LINK] == LINK_CAN:
        return can_unique_id(data)
    return f"{data[CONF_LINK]}:{data[CONF_URL]}:{data.get(CONF_GROUP, 0)}"


def _select(options: list[str], translation_key: str) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=options, mode=SelectSelectorMode.DROPDOWN, translation_key=translation_key
        )
    )


class WholeNumberSelector(NumberSelector):
    """A number box whose value is an ``int``; the step checks its range.

    The plain ``NumberSelector`` returns a float and words range errors as floats
    ("Value 70000.0 is too large"), untranslated. Chaining ``probatio.Coerce(int)`` after it
    adds ``"type": "integer"`` to the serialized field, which makes the frontend start an
    empty required box at 0 instead of at the selector's minimum. This selector serializes
    as a plain number selector (the box still shows its bounds) and leaves the range to
    ``range_errors``, which answers with a translated message naming whole numbers.
    """

    @override
    def __call__(self, data: Any) -> int:
        """Accept a whole number (``int``, integral ``float`` or digit string)."""
        if isinstance(data, bool):
            raise probatio.Invalid("expected a whole number")
        if isinstance(data, str):
            data = data.strip()
        try:
            value = float(data)
        except (TypeError, ValueError) as err:
            raise probatio.Invalid("expected a whole number") from err
        if not value.is_integer():
            raise probatio.Invalid("expected a whole number")
        return int(value)


def _number(minimum: int, maximum: int, unit: str | None = None) -> WholeNumberSelector:
    config = NumberSelectorConfig(min=minimum, max=maximum, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return WholeNumberSelector(config)


#: Allowed range and error key of every number field; the placeholders name the bounds.
_RANGES: dict[str, tuple[int, int, str]] = {
    CONF_PORT: (1, 65535, "port_range"),
    CONF_CAN_PORT: (1, 65535, "port_range"),
    CONF_GROUP: (MIN_RS485_GROUP, MAX_RS485_GROUP, "group_range"),
    CONF_SCAN_INTERVAL: (MIN_SCAN_INTERVAL, MAX_SCAN_INTERVAL, "scan_interval_range"),
    CONF_DETAIL_INTERVAL: (MIN_DETAIL_INTERVAL, MAX_DETAIL_INTERVAL, "detail_interval_range"),
}
RANGE_PLACEHOLDERS: dict[str, str] = {
    "min_port": "1",
    "max_port": "65535",
    "min_group": str(MIN_RS485_GROUP),
    "max_group": str(MAX_RS485_GROUP),
    "min_scan_interval": str(MIN_SCAN_INTERVAL),
    "max_scan_interval": str(MAX_SCAN_INTERVAL),
    "min_detail_interval": str(MIN_DETAIL_INTERVAL),
    "max_detail_interval": str(MAX_DETAIL_INTERVAL),
}


def range_errors(values: Mapping[str, Any]) -> dict[str, str]:
    """Field errors for numbers outside their allowed range (absent fields pass)."""
    errors: dict[str, str] = {}
    for field, (minimum, maximum, key) in _RANGES.items():
        value = values.get(field)
        if value is not None and not minimum <= value <= maximum:
            errors[field] = key
    return errors


def form_suggestions(schema: probatio.Schema, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return what a re-shown form is pre-filled with: only values its own fields accept.

    A submitted form comes back with what its validators produced (an ``int`` baud rate
    for a select of strings, say) and entry data carries stored types; pre-filling a field
    with a value its selector refuses makes the next submit fail before the step runs.
    """
    if not values:
        return {}
    suggestions: dict[str, Any] = {}
    for marker, validator in schema.schema.items():
        field = str(marker)
        if field not in values or values[field] is None:
            continue
        value = values[field]
        if field == CONF_BAUDRATE:
            value = str(value)  # stored as int, offered as a select of strings
        try:
            value = validator(value)
        except probatio.Invalid:
            continue
        if range_errors({field: value}):
            continue
        suggestions[field] = value
    return suggestions


_BAUD_SELECTOR = _select([str(b) for b in RS485_BAUDRATES], "baudrate")
_TRANSPORT_SELECTOR = _select([TRANSPORT_TCP, TRANSPORT_RFC2217], "transport")
_RS485_EXTRA = {
    probatio.Required(CONF_BAUDRATE, default=str(DEFAULT_RS485_BAUDRATE)): _BAUD_SELECTOR,
    probatio.Required(CONF_GROUP, default=MIN_RS485_GROUP): _number(
        MIN_RS485_GROUP, MAX_RS485_GROUP
    ),
}
_NETWORK = {
    probatio.Required(CONF_HOST): TextSelector(),
    probatio.Required(CONF_PORT): _number(1, 65535),
    probatio.Required(CONF_TRANSPORT, default=TRANSPORT_TCP): _TRANSPORT_SELECTOR,
}
SCHEMAS: dict[str, probatio.Schema] = {
    "rs485_serial": probatio.Schema(
        {probatio.Required(CONF_DEVICE): SerialPortSelector(), **_RS485_EXTRA}
    ),
    "rs485_network": probatio.Schema({**_NETWORK, **_RS485_EXTRA}),
    "console_serial": probatio.Schema({probatio.Required(CONF_DEVICE): SerialPortSelector()}),
    "console_network": probatio.Schema(dict(_NETWORK)),
    "can": probatio.Schema(
        {
            probatio.Required(CONF_CAN_INTERFACE, default=CAN_SOCKETCAN): _select(
                list(CAN_INTERFACES), "can_interface"
            ),
            probatio.Required(CONF_CAN_CHANNEL, default=DEFAULT_CAN_CHANNEL): TextSelector(),
            probatio.Optional(CONF_CAN_HOST): TextSelector(),
            probatio.Optional(CONF_CAN_PORT): _number(1, 65535),
        }
    ),
}


def _entry_data(step: str, user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a submitted form into entry data; raises ``InvalidUrlError``."""
    if step == "can":
        return can_entry_data(user_input)
    link = LINK_RS485 if step.startswith(LINK_RS485) else LINK_CONSOLE
    if step.endswith("_serial"):
        url = validate_url(user_input[CONF_DEVICE])
    else:
        url = gateway_url(user_input[CONF_TRANSPORT], user_input[CONF_HOST], user_input[CONF_PORT])
    data: dict[str, Any] = {CONF_LINK: link, CONF_URL: url}
    if link == LINK_RS485:
        data[CONF_BAUDRATE] = int(user_input[CONF_BAUDRATE])
        data[CONF_GROUP] = int(user_input[CONF_GROUP])
    else:
        data[CONF_BAUDRATE] = CONSOLE_BAUDRATE
    return data


def can_entry_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the CAN form fields; raises ``InvalidUrlError``."""
    interface = user_input[CONF_CAN_INTERFACE]
    channel = str(user_input[CONF_CAN_CHANNEL]).strip()
    if interface not in CAN_INTERFACES:
        raise InvalidUrlError(f"unknown CAN interface: {interface!r}")
    if interface == CAN_SLCAN:
        channel = validate_url(channel, serial_proxy=False)  # a serial device or socket:// URL
    elif not _CAN_CHANNEL.fullmatch(channel):
        raise InvalidUrlError(f"not a CAN channel name: {channel!r}")
    data: dict[str, Any] = {
        CONF_LINK: LINK_CAN,
        CONF_CAN_INTERFACE: interface,
        CONF_CAN_CHANNEL: channel,
    }
    if interface == CAN_SOCKETCAND:
        if not user_input.get(CONF_CAN_HOST):
            raise InvalidUrlError("socketcand needs the host of the daemon")
        data[CONF_CAN_HOST] = validate_host(user_input[CONF_CAN_HOST])
        data[CONF_CAN_PORT] = int(user_input.get(CONF_CAN_PORT) or DEFAULT_SOCKETCAND_PORT)
    return data


def _form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Entry data back into form fields, to pre-fill a reconfigure form."""
    values: dict[str, Any] = dict(data)
    url = str(data.get(CONF_URL, ""))
    if url:
        values[CONF_DEVICE] = url  # the serial-port field takes gateway URLs too
    if url and not url.startswith("/") and not is_serial_proxy_url(url):
        parts = urlsplit(url)
        values[CONF_HOST] = parts.hostname
        values[CONF_PORT] = parts.port
        values[CONF_TRANSPORT] = TRANSPORT_RFC2217 if parts.scheme == "rfc2217" else TRANSPORT_TCP
    if CONF_BAUDRATE in values:
        values[CONF_BAUDRATE] = str(values[CONF_BAUDRATE])
    return values


class PylontechConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a bank reached over CAN, RS485 or the RS232 console."""

    VERSION = ENTRY_VERSION
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start with nothing discovered."""
        self._usb_device: str | None = None
        self._usb_kind: str | None = None

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: PylontechConfigEntry) -> PylontechOptionsFlow:
        """Options: intervals, cell entities, bus manners, a second link."""
        return PylontechOptionsFlow()

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask which link the bank is reached over."""
        return self.async_show_menu(
            step_id="user", menu_options=[LINK_CAN, LINK_RS485, LINK_CONSOLE]
        )

    async def async_step_rs485(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """RS485: a local serial adapter or a network serial gateway."""
        return self.async_show_menu(step_id="rs485", menu_options=["rs485_serial", "rs485_network"])

    async def async_step_console(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Console: a local serial adapter or a network serial gateway."""
        return self.async_show_menu(
            step_id="console", menu_options=["console_serial", "console_network"]
        )

    async def async_step_rs485_serial(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """RS485 through a local USB/serial adapter."""
        return await self._async_link_form("rs485_serial", user_input)

    async def async_step_rs485_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """RS485 through a TCP or RFC 2217 serial gateway."""
        return await self._async_link_form("rs485_network", user_input)

    async def async_step_console_serial(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Console through a local USB/serial adapter."""
        return await self._async_link_form("console_serial", user_input)

    async def async_step_console_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Console through a TCP or RFC 2217 serial gateway."""
        return await self._async_link_form("console_network", user_input)

    async def async_step_can(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """CAN through socketcan, an slcan adapter or a socketcand daemon."""
        return await self._async_link_form("can", user_input)

    async def _async_link_form(
        self, step: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Show a link form; on submit validate, probe, and create or update the entry."""
        errors: dict[str, str] = {}
        placeholders = {"error": "", **RANGE_PLACEHOLDERS}
        if user_input is not None and not (errors := range_errors(user_input)):
            try:
                data = _entry_data(step, user_input)
                result = await async_probe(data)
            except pylon_errors.PylontechError as err:
                errors["base"] = error_key(err)
                placeholders["error"] = str(err)
                _LOGGER.debug("Probe of %s failed: %s", step, err)
            except Exception:
                _LOGGER.exception("Unexpected error while probing a Pylontech link")
                errors["base"] = "unknown"
            else:
                return await self._async_finish(data, result)
        defaults = user_input
        if defaults is None and self.source == SOURCE_RECONFIGURE:
            defaults = _form_values(self._get_reconfigure_entry().data)
        schema = SCHEMAS[step]
        return self.async_show_form(
            step_id=step,
            data_schema=self.add_suggested_values_to_schema(
                schema, form_suggestions(schema, defaults)
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_finish(self, data: dict[str, Any], result: ProbeResult) -> ConfigFlowResult:
        unique_id = result.serial_number or _fallback_unique_id(data)
        if self.source == SOURCE_RECONFIGURE:
            entry = self._get_reconfigure_entry()
            if data[CONF_LINK] == LINK_CAN and entry.unique_id == can_unique_id(entry.data):
                # A CAN-only id names where the bus was reached; moving the bus renames it.
                await self.async_set_unique_id(unique_id, raise_on_progress=False)
                if unique_id != entry.unique_id:
                    self._abort_if_unique_id_configured()
                return self.async_update_reload_and_abort(entry, unique_id=unique_id, data=data)
            await self.async_set_unique_id(unique_id, raise_on_progress=False)
            self._abort_if_unique_id_mismatch()
            return self.async_update_reload_and_abort(entry, data=data)
        await self.async_set_unique_id(unique_id, raise_on_progress=False)
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=_title(data, result), data=data)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change how an existing bank is reached; it must stay the same bank."""
        entry = self._get_reconfigure_entry()
        link = entry.data[CONF_LINK]
        if link == LINK_RS485:
            return await self.async_step_rs485()
        if link == LINK_CONSOLE:
            return await self.async_step_console()
        return await self.async_step_can()

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """Handle a known USB serial or USB-CAN adapter being plugged in."""
        device = await self.hass.async_add_executor_job(usb.get_serial_by_id, discovery_info.device)
        ids = (discovery_info.vid.upper(), discovery_info.pid.upper())
        await self.async_set_unique_id(
            f"usb:{ids[0]}:{ids[1]}:{discovery_info.serial_number or device}"
        )
        self._abort_if_unique_id_configured()
        for entry in self._async_current_entries(include_ignore=False):
            if device in (entry.data.get(CONF_URL), entry.data.get(CONF_CAN_CHANNEL)):
                return self.async_abort(reason="already_configured")
        if ids == _USB_GS_USB:
            self._usb_kind = "gs_usb"
        elif ids == _USB_SLCAN:
            self._usb_kind = "slcan"
        else:
            self._usb_kind = "serial"
        self._usb_device = device
        self.context["title_placeholders"] = {
            "name": usb.human_readable_device_name(
                device,
                discovery_info.serial_number,
                discovery_info.manufacturer,
                discovery_info.description,
                discovery_info.vid,
                discovery_info.pid,
            )
        }
        return await self.async_step_usb_confirm()

    async def async_step_usb_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a discovered adapter and say what is on the other end."""
        assert self._usb_device is not None
        errors: dict[str, str] = {}
        placeholders = {"device": self._usb_device, "error": "", **RANGE_PLACEHOLDERS}
        if self._usb_kind == "serial":
            schema = probatio.Schema(
                {
                    probatio.Required(CONF_LINK, default=LINK_RS485): _select(
                        [LINK_RS485, LINK_CONSOLE], "usb_link"
                    ),
                    **_RS485_EXTRA,
                }
            )
        elif self._usb_kind == "gs_usb":
            schema = probatio.Schema(
                {probatio.Required(CONF_CAN_CHANNEL, default=DEFAULT_CAN_CHANNEL): TextSelector()}
            )
        else:
            schema = probatio.Schema({})
        if user_input is not None and not (errors := range_errors(user_input)):
            try:
                data = self._usb_entry_data(user_input)
                result = await async_probe(data)
            except pylon_errors.PylontechError as err:
                errors["base"] = error_key(err)
                placeholders["error"] = str(err)
            except Exception:
                _LOGGER.exception("Unexpected error while probing a Pylontech link")
                errors["base"] = "unknown"
            else:
                return await self._async_finish(data, result)
        return self.async_show_form(
            step_id="usb_confirm",
            data_schema=self.add_suggested_values_to_schema(
                schema, form_suggestions(schema, user_input)
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _usb_entry_data(self, user_input: Mapping[str, Any]) -> dict[str, Any]:
        assert self._usb_device is not None
        if self._usb_kind == "gs_usb":
            return can_entry_data(
                {CONF_CAN_INTERFACE: CAN_SOCKETCAN, CONF_CAN_CHANNEL: user_input[CONF_CAN_CHANNEL]}
            )
        if self._usb_kind == "slcan":
            return can_entry_data(
                {CONF_CAN_INTERFACE: CAN_SLCAN, CONF_CAN_CHANNEL: self._usb_device}
            )
        step = "rs485_serial" if user_input[CONF_LINK] == LINK_RS485 else "console_serial"
        return _entry_data(step, {**user_input, CONF_DEVICE: self._usb_device})


class PylontechOptionsFlow(OptionsFlowWithReload):
    """Polling intervals, cell entities, bus manners and an optional CAN companion link."""

    def __init__(self) -> None:
        """Hold the first page's answers while the companion page is shown."""
        self._pending: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the main options page."""
        link = self.config_entry.data[CONF_LINK]
        options = self.config_entry.options
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := range_errors(user_input)):
            wants_companion = user_input.pop(CONF_COMPANION, COMPANION_NONE) == LINK_CAN
            self._pending = {**user_input, CONF_COMPANION: None}
            if wants_companion:
                return await self.async_step_companion()
            return self.async_create_entry(data=self._pending)

        fields: dict[Any, Any] = {}
        if link != LINK_CAN:
            fields[probatio.Required(CONF_SCAN_INTERVAL, default=DEFAULT_SCAN_INTERVAL)] = _number(
                MIN_SCAN_INTERVAL, MAX_SCAN_INTERVAL, "s"
            )
            fields[probatio.Required(CONF_DETAIL_INTERVAL, default=DEFAULT_DETAIL_INTERVAL)] = (
                _number(MIN_DETAIL_INTERVAL, MAX_DETAIL_INTERVAL, "s")
            )
            fields[probatio.Required(CONF_CELL_ENTITIES, default=DEFAULT_CELL_ENTITIES)] = (
                BooleanSelector()
            )
        if link == LINK_RS485:
            fields[probatio.Required(CONF_POLITE, default=DEFAULT_POLITE)] = BooleanSelector()
        fields[probatio.Required(CONF_CAN_KEEPALIVE, default=DEFAULT_CAN_KEEPALIVE)] = (
            BooleanSelector()
        )
        if link != LINK_CAN:
            fields[probatio.Required(CONF_COMPANION, default=COMPANION_NONE)] = _select(
                [COMPANION_NONE, LINK_CAN], "companion"
            )
        suggested = dict(user_input or options)
        if user_input is None:
            suggested[CONF_COMPANION] = LINK_CAN if options.get(CONF_COMPANION) else COMPANION_NONE
        schema = probatio.Schema(fields)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema, form_suggestions(schema, suggested)
            ),
            errors=errors,
            description_placeholders=RANGE_PLACEHOLDERS,
        )

    async def async_step_companion(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Where the CAN companion link is reached; probed before it is saved."""
        errors: dict[str, str] = {}
        placeholders = {"error": "", **RANGE_PLACEHOLDERS}
        if user_input is not None and not (errors := range_errors(user_input)):
            try:
                companion = can_entry_data(user_input)
                await async_probe(companion)
            except pylon_errors.PylontechError as err:
                errors["base"] = error_key(err)
                placeholders["error"] = str(err)
            except Exception:
                _LOGGER.exception("Unexpected error while probing a Pylontech CAN link")
                errors["base"] = "unknown"
            else:
                return self.async_create_entry(data={**self._pending, CONF_COMPANION: companion})
        current = self.config_entry.options.get(CONF_COMPANION) or {}
        return self.async_show_form(
            step_id="companion",
            data_schema=self.add_suggested_values_to_schema(
                SCHEMAS["can"], form_suggestions(SCHEMAS["can"], user_input or current)
            ),
            errors=errors,
            description_placeholders=placeholders,
        )
