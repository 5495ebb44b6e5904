"""Byte streams over serialx: device paths, gateways and ESPHome serial proxies.

Ports are device paths, ``socket://``, ``tcp://``, ``rfc2217://`` gateway URLs, or
``esphome-hass://`` URLs: ESPHome serial proxies as Home Assistant's serial-port
picker lists them (Home Assistant's ``esphome`` integration registers the scheme with
serialx and lends it the device's API connection). Every failure of the transport (``OSError``, ``TimeoutError``,
``serialx.SerialException``, a malformed URL) leaves this module as a
``LinkError`` subclass whose message says what to check. Before anything is opened,
``check_url`` checks the text (device path, gateway or proxy URL) and ``check_device``
that a device path names a character device; ``canonical_url`` is the one rule the
config flow stores ports by.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import posixpath
import re
import stat
import sys
from typing import Any
import urllib.parse

import serialx

from ..errors import (
    ConnectionLostError,
    GatewayUnreachableError,
    InvalidUrlError,
    LinkError,
    LinkTimeoutError,
    PortBusyError,
    PortNotFoundError,
    PortPermissionError,
)
from .base import LinkStats

#: Largest chunk taken from the stream at once; every read is bounded.
READ_CHUNK = 4096
#: Time allowed to open a port or reach a gateway.
CONNECT_TIMEOUT = 10.0
#: Time allowed for a close before the transport is aborted.
CLOSE_TIMEOUT = 2.0

NETWORK_SCHEMES = frozenset({"socket", "tcp", "rfc2217"})
#: ESPHome serial proxies as Home Assistant names them. serialx's own ``esphome://``
#: (a direct API connection) is not offered: it needs the device's encryption key in
#: the URL, which would then sit in the entry data, while ``esphome-hass://`` borrows
#: the connection (and key) of the device's ESPHome entry.
SERIAL_PROXY_SCHEMES = frozenset({"esphome-hass"})
#: Query parameters that carry secrets; a proxy URL from the picker never has them.
_SECRET_PARAMETERS = frozenset({"key", "password", "noise_psk"})


def is_network_url(url: str) -> bool:
    """Tell whether the port is reached over the network (a gateway or a serial proxy)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    return scheme in NETWORK_SCHEMES or scheme in SERIAL_PROXY_SCHEMES


def is_serial_proxy_url(url: str) -> bool:
    """Tell whether the port is an ESPHome serial proxy (``esphome-hass://``)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in SERIAL_PROXY_SCHEMES


def can_change_baud(url: str) -> bool:
    """Tell whether reopening at another baud reaches the wire (not through a raw TCP gateway).

    An ESPHome serial proxy sets the UART's baud on every open, like a local adapter
    (and RFC 2217 negotiates it), so only ``socket://``/``tcp://`` keep a fixed one.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    return scheme not in ("socket", "tcp")


def redact(url: str) -> str:
    """Return the URL without credentials or secret parameters, for messages and diagnostics."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    text = urllib.parse.urlunsplit(parts)
    # serialx.redact_uri arrived after 1.11.0 (the version HA 2026.10.4 pins).
    redact_uri = getattr(serialx, "redact_uri", None)
    return redact_uri(text) if redact_uri is not None else text


#: Characters of a device path (``/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0``).
_DEVICE_PATH = re.compile(r"/[A-Za-z0-9_.:+@/-]{1,255}", re.ASCII)
#: A host name (RFC 1123 labels) or an IPv4 literal; IPv6 literals go through ``ipaddress``.
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    re.ASCII,
)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
#: A Home Assistant config entry id (a ULID, or a UUID's hex on old installs).
_ENTRY_ID = re.compile(r"[A-Za-z0-9]{1,64}", re.ASCII)
#: A proxy URL's filter names (``port_name``, ``port_udev_id``, ``port_usb_vid`` ...).
_PARAMETER = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
#: Linux character-device major 1 is /dev/mem, /dev/null, /dev/zero, /dev/kmsg ...: never a UART.
_MEMORY_DEVICES_MAJOR = 1

_USAGE = (
    "use a serial device path, socket://host:port, tcp://host:port, rfc2217://host:port"
    " or an ESPHome serial proxy (esphome-hass://...)"
)


def parse_port(text: str) -> int:
    """Parse a TCP port from text: ASCII digits only, 1..65535; raises ``InvalidUrlError``."""
    if not isinstance(text, str) or not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise InvalidUrlError(f"invalid port {text!r}: use a number from 1 to 65535")
    return int(text)


def check_host(host: str) -> str:
    """Check a host name or IP literal (ASCII only); raises ``InvalidUrlError``."""
    if isinstance(host, str) and host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise InvalidUrlError(f"invalid IPv6 address {host!r}") from None
    if not isinstance(host, str) or not _HOSTNAME.fullmatch(host):
        raise InvalidUrlError(f"invalid host name {host!r}")
    return host


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into a checked host and port; raises ``InvalidUrlError``."""
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise InvalidUrlError(f"{address!r}: expected host:port")
    return check_host(host), parse_port(port)


def check_url(url: str, *, serial_proxy: bool = False) -> None:
    """Reject URLs that cannot work before touching the system; raises ``InvalidUrlError``.

    Accepted: an absolute device path (no ``..``, ``//`` or odd characters), or
    ``socket://``, ``tcp://``, ``rfc2217://`` with a host, a port 1..65535 and nothing
    else (no credentials, path, query or fragment); with ``serial_proxy`` also an ESPHome
    serial proxy URL (``check_proxy_url``). Only ports opened through serialx can be a
    proxy: python-can's slcan opens its channel with pyserial, which has no such scheme.
    Whether a device path is really a character device is ``check_device``'s job (it
    needs the file system).
    """
    if (
        not isinstance(url, str)
        or not url
        or len(url) > 512
        or not url.isascii()
        or any(ord(c) < 0x20 or c == "\x7f" for c in url)
    ):
        raise InvalidUrlError(f"the port must be a device path or a gateway URL ({_USAGE})")
    if url.startswith("/"):
        if (
            not _DEVICE_PATH.fullmatch(url)
            or "//" in url  # POSIX normpath keeps a leading "//"
            or posixpath.normpath(url) != url
        ):
            raise InvalidUrlError(f"{url!r}: not a plain absolute device path ({_USAGE})")
        return
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in SERIAL_PROXY_SCHEMES:
        if not serial_proxy:
            raise InvalidUrlError(
                f"{redact_text(url)}: an ESPHome serial proxy carries RS485 or the console,"
                " not an slcan CAN adapter"
            )
        check_proxy_url(url)
        return
    if not sep or scheme.lower() not in NETWORK_SCHEMES:
        raise InvalidUrlError(f"{redact_text(url)}: unsupported port or URL scheme ({_USAGE})")
    rest = rest.removesuffix("/")
    if any(c in rest for c in "@/?#\\"):
        raise InvalidUrlError(
            f"{redact_text(url)}: a gateway URL is only scheme://host:port ({_USAGE})"
        )
    split_host_port(rest)


def check_proxy_url(url: str) -> None:
    """Accept an ESPHome serial proxy URL as Home Assistant builds it, else raise.

    ``esphome-hass://esphome/<ESPHome config entry id>?<filters>``: a host name and no
    credentials or port, the entry id as the whole path, at least one filter naming the
    port or the device behind it (``port_name=``, ``port_udev_id=`` ...), no secrets and
    no fragment. Filter values are not interpreted here: the proxy matches them.
    """
    problem = _proxy_url_problem(url)
    if problem is not None:
        raise InvalidUrlError(f"{redact_text(url)}: not an ESPHome serial proxy URL ({problem})")


def _proxy_url_problem(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "malformed"
    host = parts.netloc
    if "@" in host or ":" in host or not _HOSTNAME.fullmatch(host):
        return "expected esphome-hass://esphome/<entry id>?..."
    if not _ENTRY_ID.fullmatch(parts.path.removeprefix("/")):
        return "the path must be the ESPHome entry's id"
    if parts.fragment or "\\" in url:
        return "unexpected fragment or backslash"
    try:
        filters = urllib.parse.parse_qsl(parts.query, strict_parsing=True)
    except ValueError:
        return "malformed filters"
    if not filters:
        return "it names no serial port"
    for name, value in filters:
        if not _PARAMETER.fullmatch(name) or name in _SECRET_PARAMETERS:
            return f"unexpected parameter {name!r}"
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            return f"control character in {name!r}"
    return None


def canonical_url(url: str, *, serial_proxy: bool = True) -> str:
    """Return the port as it is stored: checked (``check_url``) and spelled one way.

    Surrounding white space goes; a gateway URL gets a lower-case scheme and host, a
    compressed IPv6 literal and no trailing ``/``. Device paths and proxy URLs stay as
    given: Home Assistant's serial-port picker and its port-usage attribution compare
    them literally.
    """
    if isinstance(url, str):
        url = url.strip()
    check_url(url, serial_proxy=serial_proxy)
    if url.startswith("/") or is_serial_proxy_url(url):
        return url
    scheme, _, rest = url.partition("://")
    host, port = split_host_port(rest.removesuffix("/"))
    host = host.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme.lower()}://{host}:{port}"


def check_device(path: str) -> None:
    """Check that a device path names a character device (a symlink to one is fine).

    Raises ``PortNotFoundError`` when nothing is there, ``PortPermissionError`` when the
    path cannot be looked at, ``InvalidUrlError`` for a regular file, a directory, a
    socket, a FIFO or a memory device. Gateway URLs pass unchecked. ``stat`` of a device
    node is a metadata lookup, cheap enough for the event loop.
    """
    if not path.startswith("/"):
        return
    try:
        info = os.stat(path)  # follows symlinks: /dev/serial/by-id/... -> ../../ttyUSB0
    except (FileNotFoundError, NotADirectoryError):
        raise PortNotFoundError(
            f"{path}: port not found (adapter unplugged or wrong path?)"
        ) from None
    except PermissionError:
        raise PortPermissionError(
            f"{path}: permission denied (add the user to the 'dialout' group?)"
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidUrlError(f"{path}: cannot use this path ({exc})") from None
    if not stat.S_ISCHR(info.st_mode):
        kind = _file_kind(info.st_mode)
        raise InvalidUrlError(f"{path}: not a serial device ({kind}); choose the adapter's tty")
    if sys.platform.startswith("linux") and os.major(info.st_rdev) == _MEMORY_DEVICES_MAJOR:
        raise InvalidUrlError(f"{path}: not a serial device (a memory device); choose a tty")


def _file_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a character device"


def redact_text(url: str) -> str:
    """``redact`` for text that may not even parse as a URL."""
    try:
        return redact(url)
    except ValueError:
        return "<invalid URL>"


def link_error_from(exc: BaseException, url: str) -> LinkError:
    """Translate a transport exception into the matching ``LinkError`` with a clear message."""
    where = redact(url)
    if isinstance(exc, LinkError):
        return exc
    network = is_network_url(url)
    if isinstance(exc, FileNotFoundError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO)
    ):
        return PortNotFoundError(f"{where}: port not found (adapter unplugged or wrong path?)")
    if isinstance(exc, PermissionError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM)
    ):
        return PortPermissionError(
            f"{where}: permission denied (add the user to the 'dialout' group?)"
        )
    if isinstance(exc, OSError) and exc.errno == errno.EBUSY:
        return PortBusyError(f"{where}: port busy (another program holds it)")
    if isinstance(exc, ConnectionRefusedError):
        return GatewayUnreachableError(f"{where}: connection refused by the gateway")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return ConnectionLostError(f"{where}: connection lost ({exc})")
    if isinstance(exc, TimeoutError):
        if network:
            return GatewayUnreachableError(f"{where}: the gateway did not accept the connection")
        return LinkTimeoutError(f"{where}: timed out opening the port")
    if isinstance(exc, OSError) and exc.errno in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    ):
        return GatewayUnreachableError(f"{where}: gateway unreachable ({exc.strerror})")
    if isinstance(exc, OSError) and network and exc.errno is not None and exc.errno < 0:
        # socket.gaierror: the name does not resolve.
        return GatewayUnreachableError(f"{where}: host name not found")
    if isinstance(exc, ValueError):
        return InvalidUrlError(f"{where}: {exc}")
    if isinstance(exc, serialx.SerialException):
        if type(exc).__name__ == "UnknownUriScheme":
            return InvalidUrlError(f"{where}: unsupported URL scheme")
        return LinkError(f"{where}: serial port error ({exc})")
    if isinstance(exc, OSError):
        return LinkError(f"{where}: I/O error ({exc.strerror or exc})")
    return LinkError(f"{where}: {type(exc).__name__}: {exc}")


class Connection:
    """One open byte stream with bounded reads, counters and error translation."""

    def __init__(
        self,
        url: str,
        baudrate: int,
        stats: LinkStats,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        """Prepare (not open) a stream to ``url`` at ``baudrate``."""
        self.url = url
        self.baudrate = baudrate
        self._stats = stats
        self._connect_timeout = connect_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lost: LinkError | None = None

    @property
    def is_open(self) -> bool:
        """True while the stream is usable."""
        return self._writer is not None and self._lost is None

    async def open(self) -> None:
        """Open the stream; raises a ``LinkError`` subclass on any failure."""
        check_url(self.url, serial_proxy=True)
        check_device(self.url)
        kwargs: dict[str, Any] = {"baudrate": self.baudrate}
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await serialx.open_serial_connection(self.url, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise link_error_from(exc, self.url) from exc
        self._reader, self._writer, self._lost = reader, writer, None

    async def write(self, data: bytes) -> None:
        """Send bytes; a dead stream raises ``ConnectionLostError``."""
        writer = self._writer
        if writer is None or self._lost is not None:
            raise self._lost or ConnectionLostError(f"{redact(self.url)}: not connected")
        try:
            writer.write(data)
            async with asyncio.timeout(5.0):
                await writer.drain()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost = _as_lost(exc, self.url)
            raise self._lost from exc
        self._stats.bytes_out += len(data)

    async def read(self, timeout: float | None) -> bytes:
        """Up to ``READ_CHUNK`` bytes; ``b""`` when nothing came within ``timeout``.

        End of stream or a transport error raises ``ConnectionLostError``.
        """
        reader = self._reader
        if reader is None or self._lost is not None:
            raise self._lost or ConnectionLostError(f"{redact(self.url)}: not connected")
        try:
            if timeout is None:
                data = await reader.read(READ_CHUNK)
            else:
                if timeout <= 0:
                    return b""
                async with asyncio.timeout(timeout):
                    data = await reader.read(READ_CHUNK)
        except TimeoutError:
            return b""
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost = _as_lost(exc, self.url)
            raise self._lost from exc
        if not data:
            self._lost = ConnectionLostError(f"{redact(self.url)}: connection closed by the peer")
            raise self._lost
        self._stats.bytes_in += len(data)
        return data

    async def close(self) -> None:
        """Close the stream (bounded wait); safe to call twice."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        try:
            writer.close()
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        # Serial, socket and proxy transports fail differently here; whatever it is, the
        # stream is aborted instead and close() itself never raises.
        except Exception:  # noqa: BLE001
            writer.transport.abort()


def _as_lost(exc: BaseException, url: str) -> LinkError:
    error = link_error_from(exc, url)
    if type(error) is LinkError:
        return ConnectionLostError(str(error))
    return error
