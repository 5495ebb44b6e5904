"""Hostile input never breaks the simulated battery: every server answers or stays silent."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from custom_components.pylontech.core.protocol import console, rs485
from simulator import CanServer, ConsoleServer, Rs485Server, SimulatedBank
from simulator.can_server import _Session

BANK = SimulatedBank(["US5000", "US2000C", "US2000B"], seed=9)
RS485 = Rs485Server(BANK)
CONSOLE = ConsoleServer(BANK)
CAN = CanServer(BANK)


def _frame(adr: int, cid2: int, info: bytes, ver: int) -> bytes:
    info_hex = info.hex().upper().encode()
    body = f"{ver:02X}{adr:02X}46{cid2:02X}{rs485.length_field(len(info_hex)):04X}".encode()
    body += info_hex
    return b"~" + body + f"{rs485.checksum(body):04X}".encode() + b"\r"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_rs485_arbitrary_bytes(data: bytes) -> None:
    """Random bytes (split into frames like the server does) never raise."""
    for raw in rs485.FrameSplitter().feed(data + b"\r"):
        answer = RS485.answer(raw)
        assert answer is None or rs485.parse_frame(answer).cid1 == 0x46


@settings(max_examples=400, deadline=None)
@given(
    adr=st.integers(0, 255),
    cid2=st.integers(0, 255),
    info=st.binary(max_size=24),
    ver=st.sampled_from([0x00, 0x20, 0x21, 0x25]),
)
def test_rs485_any_well_formed_request(adr: int, cid2: int, info: bytes, ver: int) -> None:
    """Any valid frame gets a valid response (RTN 0 or an error RTN) or silence."""
    answer = RS485.answer(_frame(adr, cid2, info, ver))
    if answer is None:
        return
    frame = rs485.parse_frame(answer)
    assert frame.adr == adr
    if cid2 not in {int(c) for c in rs485.Command}:
        assert frame.cid2 == 0x04


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_console_any_line(text: str) -> None:
    """Any printable line gets one well-framed answer ending in the prompt."""
    answer = CONSOLE.respond(text.strip() or "x")
    assert answer.endswith(b"\r\n\rpylon>")
    responses = console.split_transcript(answer)
    assert len(responses) == 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_slcan_any_line(text: str) -> None:
    """Any SLCAN command line is answered with OK, error or a reply line."""
    session = _Session(writer=None)  # type: ignore[arg-type]
    reply = CAN._line(session, text)
    assert reply.endswith((b"\r", b"\a"))
