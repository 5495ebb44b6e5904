"""One-shot probes for the config flow: whether a battery answers on a port, and which.

Each probe opens its link, reads identity once, closes everything it opened and
returns a ``ProbeResult``; failures raise ``LinkError`` subclasses whose messages
say what to check (port not found, permission denied, no answer, wrong baud ...).

When an RS485 or console probe finds no battery of its kind, ``identify_port`` looks
at what else is on the port, so the flow can say "this is the console port" instead
of "no answer". It writes only what the links write anyway or what is read-only on
every port: CR LF (the console link's own prompt request, ignored on an RS485 bus),
``V`` CR (the SLCAN version query; no console command or RS485 frame starts with it)
and the RS485 0x4F protocol-version request (read-only).
"""

from __future__ import annotations

import re
import time
from typing import Final

from ..errors import (
    ConnectionLostError,
    DialectError,
    LinkError,
    LinkTimeoutError,
    NoResponseError,
    ProtocolError,
    ResponseError,
    WakeUpError,
    WrongBaudError,
    WrongPortError,
)
from ..model import Bank
from ..protocol import rs485 as rs485_codec
from ..protocol.console_framing import detect_prompt
from .base import LinkStats, ProbeResult, ReadPlan, ReconnectPendingError
from .can import probe_can
from .console import ConsoleLink
from .rs485 import Rs485Link
from .transport import Connection, redact

_IDENTITY_ONLY = ReadPlan(identity=True, cells=False, alarms=False, limits=False)

PORT_CONSOLE: Final = "console"
PORT_RS485: Final = "rs485"
PORT_CAN: Final = "can"

#: Listening before writing anything: an open SLCAN channel or a busy RS485 bus talks alone.
SNIFF_LISTEN: Final = 0.3
#: Time each stimulus gets for its answer.
SNIFF_ANSWER: Final = 0.8
#: Bytes of the answers kept for the decision (an answer is short; the rest is noise).
SNIFF_LIMIT: Final = 4096

_CONSOLE_PROMPT_REQUEST: Final = b"\r\n"
_SLCAN_VERSION_REQUEST: Final = b"V\r"
#: SLCAN lines: a received frame (t/T/r/R + id + DLC + data), a version (V/v + 4 hex digits).
_SLCAN_LINE = re.compile(
    r"[tr][0-9A-F]{4}(?:[0-9A-F]{2}){0,8}|[TR][0-9A-F]{9}(?:[0-9A-F]{2}){0,8}|[Vv][0-9A-Fa-f]{4}"
)
#: A class-name prefix as ``LinkStats.note_error`` stores it ("ConnectionLostError: ...").
_ERROR_PREFIX = re.compile(r"^[A-Z][A-Za-z]*Error: ")

_WHAT = {
    PORT_CONSOLE: "the RS232 console port",
    PORT_RS485: "an RS485 port",
    PORT_CAN: "a CAN adapter (SLCAN)",
}


def _result(bank: Bank) -> ProbeResult:
    master = bank.module(1, bank.modules[0].group) if bank.modules else None
    return ProbeResult(
        serial_number=bank.serial_number or (master.serial_number if master else None),
        model=bank.model or (master.model if master else None),
        module_count=len(bank.present_modules()),
    )


def _root_error(err: ReconnectPendingError) -> LinkError:
    """Return the error behind a reconnect wait: what a one-shot probe reports instead.

    A probe never waits for a reconnect, so "reconnecting in 1 s" would only describe the
    link's internals; the cause is what the user can act on.
    """
    cause = _ERROR_PREFIX.sub("", err.cause or "") or str(err)
    return ConnectionLostError(cause)


def classify(data: bytes) -> str | None:
    """Which port produced ``data``: ``"console"``, ``"rs485"``, ``"can"`` or ``None``.

    A console shows a prompt line (``pylon>``); RS485 sends checksum-valid ``~...`` frames;
    an SLCAN adapter answers ``V`` with its version and streams ``t...`` frame lines.
    """
    text = data.decode("ascii", "replace")
    lines = [line.strip() for line in re.split(r"[\r\n\a]", text)]
    if any(detect_prompt(line) for line in lines if line):
        return PORT_CONSOLE
    splitter = rs485_codec.FrameSplitter()
    for frame in splitter.feed(data):
        try:
            rs485_codec.parse_frame(frame)
        except ProtocolError:
            continue
        return PORT_RS485
    if any(_SLCAN_LINE.fullmatch(line) for line in lines):
        return PORT_CAN
    return None


async def _collect(conn: Connection, seen: bytearray, timeout: float) -> str | None:
    """Read for up to ``timeout`` seconds; stop as soon as the port is recognised."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0 and len(seen) < SNIFF_LIMIT:
        chunk = await conn.read(remaining)
        if not chunk:
            break
        seen += chunk[: SNIFF_LIMIT - len(seen)]
        if (kind := classify(bytes(seen))) is not None:
            return kind
    return classify(bytes(seen))


async def identify_port(url: str, baudrate: int, *, probed: str) -> str | None:
    """Tell what answers on a port where no ``probed`` port did (``None``: nothing known).

    Stimuli for the kind that was just probed are skipped: it already had its chance.
    Never raises: a port that cannot even be reopened says nothing more.
    """
    stimuli: list[bytes] = []
    if probed != PORT_CONSOLE:
        stimuli.append(_CONSOLE_PROMPT_REQUEST)
    if probed != PORT_CAN:
        stimuli.append(_SLCAN_VERSION_REQUEST)
    if probed != PORT_RS485:
        stimuli.append(
            rs485_codec.encode_request(
                rs485_codec.Command.GET_PROTOCOL_VERSION, rs485_codec.address(1)
            )
        )
    conn = Connection(url, baudrate, LinkStats())
    try:
        await conn.open()
        seen = bytearray()
        kind = await _collect(conn, seen, SNIFF_LISTEN)
        for stimulus in stimuli:
            if kind is not None:
                break
            await conn.write(stimulus)
            kind = await _collect(conn, seen, SNIFF_ANSWER)
    except LinkError:
        return None
    finally:
        await conn.close()
    return None if kind == probed else kind


async def _explain(err: LinkError | ProtocolError, url: str, baudrate: int, probed: str) -> None:
    """Raise ``WrongPortError`` when another battery port answers where ``probed`` did not."""
    found = await identify_port(url, baudrate, probed=probed)
    if found is None:
        return
    raise WrongPortError(
        f"{redact(url)}: this is {_WHAT[found]}, not {_WHAT[probed]}", found
    ) from err


async def _read_identity(
    link: Rs485Link | ConsoleLink, url: str, baudrate: int, kind: str, *, open_first: bool = False
) -> ProbeResult:
    """Read the bank's identity over ``link``, always closing it.

    A failure after the port answered (or stayed silent) asks the port what it really is,
    so the form can say "this is the console" instead of a bare timeout.
    """
    try:
        try:
            if open_first:
                await link.open()
            bank = await link.read_bank(_IDENTITY_ONLY)
        except ReconnectPendingError as err:
            raise _root_error(err) from err
        except (LinkError, ProtocolError) as err:
            if not _worth_identifying(err):
                raise
            await link.close()
            await _explain(err, url, baudrate, kind)
            raise
        return _result(bank)
    finally:
        await link.close()


async def probe_rs485(
    url: str, baudrate: int = 115200, group: int = 0, timeout: float = 1.0
) -> ProbeResult:
    """Discover the modules of one RS485 group and read the master's identity."""
    link = Rs485Link(url, baudrate=baudrate, group=group, request_timeout=timeout)
    return await _read_identity(link, url, baudrate, PORT_RS485)


def _worth_identifying(err: BaseException) -> bool:
    """Failures after which the port was open and something (or nothing) talked back.

    Opening errors (port missing, refused, permission) say all there is to say; an RTN
    error or a look-alike dialect means the protocol itself answered.
    """
    return isinstance(err, (NoResponseError, WrongBaudError, WakeUpError, LinkTimeoutError)) or (
        isinstance(err, ProtocolError) and not isinstance(err, (ResponseError, DialectError))
    )


async def probe_console(url: str, baudrate: int = 115200, wake_up: bool = True) -> ProbeResult:
    """Reach the console prompt (waking it if allowed), then read ``pwr`` and ``info``."""
    link = ConsoleLink(url, baudrate=baudrate, wake_up=wake_up)
    return await _read_identity(link, url, baudrate, PORT_CONSOLE, open_first=True)


__all__ = [
    "PORT_CAN",
    "PORT_CONSOLE",
    "PORT_RS485",
    "classify",
    "identify_port",
    "probe_can",
    "probe_console",
    "probe_rs485",
]
