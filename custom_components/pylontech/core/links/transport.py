"""Byte streams over serialx: device paths, ``socket://``, ``tcp://``, ``rfc2217://``.

Every failure of the transport (``OSError``, ``TimeoutError``,
``serialx.SerialException``, a malformed URL) leaves this module as a
``LinkError`` subclass whose message says what to check.
"""

from __future__ import annotations

import asyncio
import errno
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


def is_network_url(url: str) -> bool:
    """True for gateway URLs (``socket://``, ``tcp://``, ``rfc2217://``)."""
    return urllib.parse.urlsplit(url).scheme.lower() in NETWORK_SCHEMES


def can_change_baud(url: str) -> bool:
    """True when reopening at another baud reaches the wire (not through a raw TCP gateway)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    return scheme not in ("socket", "tcp")


def redact(url: str) -> str:
    """The URL without credentials or secret parameters, for messages and diagnostics."""
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


def check_url(url: str) -> None:
    """Reject URLs that cannot work before touching the system; raises ``InvalidUrlError``."""
    if not url or not isinstance(url, str) or len(url) > 512 or any(c in url for c in "\r\n\0"):
        raise InvalidUrlError("the port must be a device path or a socket://host:port URL")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in NETWORK_SCHEMES:
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise InvalidUrlError(f"{redact(url)}: a gateway URL needs a host and a port")
    elif scheme not in ("", "esphome"):
        raise InvalidUrlError(
            f"{redact(url)}: unsupported scheme {scheme!r} (use a device path, socket://, "
            "tcp:// or rfc2217://)"
        )


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
        check_url(self.url)
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
        except Exception:
            writer.transport.abort()


def _as_lost(exc: BaseException, url: str) -> LinkError:
    error = link_error_from(exc, url)
    if type(error) is LinkError:
        return ConnectionLostError(str(error))
    return error
