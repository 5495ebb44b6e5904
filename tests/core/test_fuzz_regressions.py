"""Fuzzing in the test suite, and every crash the fuzzers found, as a regression test.

The same targets ``scripts/fuzz`` runs under atheris (``fuzz/targets.py``: hostile bytes
into every decoder, the console framer/parsers and the capture replay; only
``ProtocolError`` may escape) run here under hypothesis, bounded, plus once on every
seed built from the reference captures. Below them: one test per finding, with the
minimised input and what the code must do with it.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.pylontech.core.capture import decode_capture
from custom_components.pylontech.core.errors import ProtocolError
from custom_components.pylontech.core.protocol import can, rs485
from fuzz.seeds import seeds
from fuzz.targets import build

TARGETS: dict[str, Callable[[bytes], None]] = build("custom_components.pylontech.core")
FUZZ_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# RS-42-G (US2000B-Plus, one module): a real 0x42 answer whose INFO the findings reuse.
RS42_G = (
    b"~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21"
    b"050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594\r"
)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_targets_accept_every_reference_seed(name: str) -> None:
    """The seed corpus (reference frames and captures) goes through without a finding."""
    corpus = seeds(name)
    assert corpus, f"no seeds for {name}"
    for seed in corpus:
        TARGETS[name](seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
@FUZZ_SETTINGS
@given(data=st.binary(max_size=2048))
def test_targets_survive_arbitrary_bytes(name: str, data: bytes) -> None:
    """Arbitrary bytes: decoded or refused with ``ProtocolError``, nothing else."""
    TARGETS[name](data)


@st.composite
def mutated_seed(draw: st.DrawFn, name: str) -> bytes:
    """A reference seed with a few bytes overwritten, inserted or deleted."""
    data = bytearray(draw(st.sampled_from(seeds(name))))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("set", "insert", "delete")))
        byte = draw(st.integers(0, 255))
        if action == "insert" or not data:
            data.insert(position, byte)
        elif action == "set":
            data[min(position, len(data) - 1)] = byte
        else:
            del data[min(position, len(data) - 1)]
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
@FUZZ_SETTINGS
@given(data=st.data())
def test_targets_survive_mutated_references(name: str, data: st.DataObject) -> None:
    """Near-valid input (a real frame or capture, slightly damaged) reaches the deep paths."""
    TARGETS[name](data.draw(mutated_seed(name)))


# --------------------------------------------------------------------------- findings


def test_rs485_capture_with_foreign_adr_is_not_a_crash() -> None:
    """atheris, target rs485_frame: a well-formed answer from ADR 0x82 (not a module address).

    ``module_position`` raised ``ValueError`` from the model mapping, so ``scripts/decode``
    (``decode_capture``, documented to raise nothing but an oversize ``ProtocolError``)
    crashed on one hostile line instead of reporting it.
    """
    info = rs485.parse_frame(RS42_G).info
    hostile = rs485.encode_frame(0x20, 0x82, 0x46, 0x00, info)
    assert rs485.decode_frame(hostile).adr == 0x82  # framing and checksum are valid
    result = decode_capture("rs485", hostile.decode("ascii") + "\n")
    # Either placed somewhere sensible or reported as an error: never an exception.
    assert result.errors or result.bank.modules


def test_rs485_mapping_of_foreign_adr_raises_protocol_error_only() -> None:
    """The same finding at the mapping layer: only ``ProtocolError`` may leave it."""
    info = rs485.parse_frame(RS42_G).info
    response = rs485.decode_analog(
        rs485.decode_frame(rs485.encode_frame(0x20, 0x82, 0x46, 0, info))
    )
    try:
        modules = rs485.modules_from_analog(response)
    except ProtocolError:
        return
    assert len(modules) == 1


def test_candump_line_with_unicode_space_between_bytes() -> None:
    """atheris, target can_capture: ``00\\xa000`` in a default-format line.

    The data-bytes pattern accepted any Unicode whitespace (``\\s`` on ``str``) but
    ``bytes.fromhex`` only skips ASCII whitespace: ``ValueError`` escaped the parser.
    """
    line = "  can0  305   [8]  00 00 00 00 00\xa000 00 00"
    with pytest.raises(ProtocolError):
        can.parse_candump_line(line)
    # and a whole capture with that line reports it instead of crashing
    result = can.decode_capture("(1700000000.000000) can0 351#1402C012C012C201\n" + line)
    assert result.errors


def test_console_capture_with_non_ascii_digit_argument() -> None:
    """atheris, target console_capture: ``stat ²`` echoed in a transcript.

    ``str.isdigit`` accepts superscript digits that ``int`` rejects, so the capture replay's
    module-number parse raised ``ValueError``. A transcript must replay to a result.
    """
    transcript = (
        "pylon>stat \xb2\r\r\n@\r\r\nDevice address           1\r\r\n"
        "Charge Times    :    11345\r\r\nCommand completed successfully\r\n\r$$\r\n\rpylon>"
    )
    result = decode_capture("console", transcript)
    assert result.bank is not None
