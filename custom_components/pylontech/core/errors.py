"""The one error family raised by the protocol core and the links.

Everything that can go wrong below Home Assistant is a ``PylontechError``: the
integration catches this base class and nothing broader.
"""

from __future__ import annotations


class PylontechError(Exception):
    """Base class of every error raised by this package."""


class ProtocolError(PylontechError):
    """Bytes or text from the wire could not be decoded; the message says why."""


class ChecksumError(ProtocolError):
    """A frame's LCHKSUM or CHKSUM does not match its content."""


class DialectError(ProtocolError):
    """A well-formed frame of a look-alike protocol (other VER/CID1), not Pylontech."""


class ImplausibleValueError(ProtocolError):
    """A well-formed frame carries what no supported battery can send.

    Reserved bits set, contradictory flags, counts beyond any supported system: the value
    is not published and the link counts it.
    """


class ResponseError(ProtocolError):
    """The battery answered with a non-zero RS485 return code (RTN)."""

    def __init__(self, code: int, meaning: str) -> None:
        """Keep the return code and its meaning."""
        super().__init__(f"battery returned RTN 0x{code:02X} ({meaning})")
        self.code = code
        self.meaning = meaning


class CommandNotAllowedError(PylontechError):
    """A command outside the read-only allow-list was about to be sent."""


class LinkError(PylontechError):
    """The transport failed: port missing, gateway unreachable, connection dropped."""


class LinkTimeoutError(LinkError):
    """Nothing (or not enough) came back within the request's time limit."""


class WakeUpError(LinkError):
    """The console stayed silent after every documented wake-up attempt."""


# Link failures the config flow maps to their own messages.


class PortNotFoundError(LinkError):
    """The serial device path does not exist (adapter unplugged or wrong path)."""


class PortPermissionError(LinkError):
    """The serial device exists but this process may not open it."""


class PortBusyError(LinkError):
    """The serial device is held by another program."""


class InvalidUrlError(LinkError):
    """The port URL or CAN channel is malformed or uses an unsupported scheme."""


class GatewayUnreachableError(LinkError):
    """A network gateway (socket://, tcp://, rfc2217://) refused or did not accept the connection."""


class ConnectionLostError(LinkError):
    """An open connection was closed by the peer or the adapter disappeared."""


class NoResponseError(LinkTimeoutError):
    """The port opened but the battery never answered (wiring, address, sleep)."""


class WrongBaudError(LinkError):
    """Bytes arrive but never form a valid frame or prompt: the baud rate is probably wrong."""


class CanInterfaceError(LinkError):
    """The CAN interface could not be opened (missing driver, interface down, bad bitrate)."""


class WrongPortError(LinkError):
    """Something answered, but it is another of the battery's ports than the one asked for.

    ``found`` is the port that answered: ``"console"``, ``"rs485"`` or ``"can"``.
    """

    def __init__(self, message: str, found: str) -> None:
        """Name the port that answered."""
        super().__init__(message)
        self.found = found
