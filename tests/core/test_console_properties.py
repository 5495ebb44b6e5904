"""Property tests: the console codec never fails other than with ProtocolError, stays
bounded, and reads generated ``pwr`` tables whatever their column order."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.pylontech.core.errors import CommandNotAllowedError, ProtocolError
from custom_components.pylontech.core.protocol.console import (
    ConsoleEventKind,
    ConsoleFramer,
    ConsoleResponse,
    decode_response,
    detect_prompt,
    modules_from_pwr,
    parse_bat,
    parse_ci,
    parse_data,
    parse_getpwr,
    parse_info,
    parse_log,
    parse_pwr,
    parse_pwr_detail,
    parse_pwrsys,
    parse_soh,
    parse_stat,
    parse_time,
    split_transcript,
    validate_command,
)

CAPTURES = Path(__file__).parent / "captures" / "console"
PARSERS = (
    parse_pwr,
    parse_pwr_detail,
    parse_bat,
    parse_soh,
    parse_info,
    parse_stat,
    parse_time,
    parse_pwrsys,
    parse_log,
    parse_data,
    parse_getpwr,
    parse_ci,
)
SETTINGS = settings(max_examples=300, deadline=None)

# Text built from the console's own vocabulary finds deeper paths than random bytes.
WORDS = st.sampled_from(
    [
        "pylon>",
        "pylon_debug>",
        "PYTES>",
        "@",
        "$$",
        "Command completed successfully",
        "Press [Enter] to be continued,other key to exit",
        "Unknown command 'x' - try 'help'",
        "Power",
        "Volt",
        "Curr",
        "Tempr",
        "Base.St",
        "Coulomb",
        "Time",
        "Battery",
        "Base",
        "State",
        "Absent",
        "Charge",
        "-",
        "45%",
        "44231",
        "mAH",
        "2023-09-16",
        "11:50:32",
        "Index   :",
        "0x2",
        "BHV",
        "#",
        ":",
        "1",
        "-3037",
        "99999999999999999999",
        "\r",
        "\n",
        "\r\r\n",
        "\r\n\r",
        " ",
        "\t",
        "\x00",
        "\xff",
    ]
)
CONSOLE_TEXT = st.lists(WORDS, max_size=120).map(" ".join) | st.text(max_size=600)


@SETTINGS
@given(data=st.binary(max_size=2000), chunk=st.integers(min_value=1, max_value=64))
def test_framer_accepts_any_bytes(data: bytes, chunk: int) -> None:
    framer = ConsoleFramer(max_chars=4096, max_lines=64)
    for start in range(0, len(data), chunk):
        try:
            framer.feed(data[start : start + chunk])
        except ProtocolError:
            pass
    try:
        framer.finish()
    except ProtocolError:
        pass
    assert len(framer._pending) <= 4096  # bounded memory is the property


@SETTINGS
@given(text=CONSOLE_TEXT)
def test_framer_and_parsers_raise_only_protocol_errors(text: str) -> None:
    try:
        responses = split_transcript(text)
    except ProtocolError:
        responses = []
    for resp in responses:
        try:
            decode_response(resp)
        except ProtocolError:
            pass
    for parser in PARSERS:
        try:
            parser(text)
        except ProtocolError:
            pass
    detect_prompt(text)


@SETTINGS
@given(text=CONSOLE_TEXT, cut=st.integers(min_value=1, max_value=50))
def test_split_feed_equals_whole_feed(text: str, cut: int) -> None:
    data = text.encode("latin-1", "replace")
    whole, pieces = ConsoleFramer(), ConsoleFramer()
    try:
        expected = whole.feed(data)
    except ProtocolError:
        return
    got = []
    for start in range(0, len(data), cut):
        got += pieces.feed(data[start : start + cut])
    # A prompt has no newline, so an idle prompt is reported when the stream
    # pauses after it; responses (with their prompts) and pager events must not
    # depend on where the stream was cut.
    assert [e for e in got if e.kind is not ConsoleEventKind.PROMPT] == [
        e for e in expected if e.kind is not ConsoleEventKind.PROMPT
    ]
    assert [e for e in pieces.finish() if e.kind is not ConsoleEventKind.PROMPT] == [
        e for e in whole.finish() if e.kind is not ConsoleEventKind.PROMPT
    ]


@SETTINGS
@given(text=st.text(max_size=60))
def test_validate_command_refuses_or_returns_allowed(text: str) -> None:
    try:
        canonical = validate_command(text)
    except CommandNotAllowedError:
        return
    assert canonical.split()[0] in {
        "pwr",
        "bat",
        "info",
        "stat",
        "soh",
        "time",
        "pwrsys",
        "log",
        "data",
        "getpwr",
        "ci",
        "help",
    }
    assert all(" " <= ch <= "~" for ch in canonical)
    assert canonical == validate_command(canonical)


# --- generated pwr tables ----------------------------------------------------------------

# name -> (value strategy as printed, check on the parsed row)
COLUMNS = {
    "Volt": st.integers(40000, 58000),
    "Curr": st.integers(-100000, 100000),
    "Tempr": st.integers(-20000, 60000),
    "Tlow": st.integers(-20000, 60000),
    "Thigh": st.integers(-20000, 60000),
    "Vlow": st.integers(2500, 3650),
    "Vhigh": st.integers(2500, 3650),
    "Base.St": st.sampled_from(["Charge", "Dischg", "Idle", "SysError", "Sleep"]),
    "Volt.St": st.sampled_from(["Normal", "Low", "High"]),
    "Coulomb": st.integers(0, 100),
    "Time": st.tuples(st.integers(2000, 2099), st.integers(1, 12), st.integers(1, 28)),
    "MosTempr": st.integers(-20000, 90000),
}
UNKNOWN_NAMES = st.sampled_from(["Foo", "Bar.St", "NewCol", "X.Id"])


@st.composite
def pwr_tables(draw: st.DrawFn) -> tuple[str, list[dict[str, object]]]:
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=3, unique=True))
    unknown = draw(st.lists(UNKNOWN_NAMES, max_size=2, unique=True))
    order = draw(st.permutations(names + unknown))
    header = "Power " + " ".join(order)
    rows = []
    lines = [header]
    for slot in range(1, draw(st.integers(1, 16)) + 1):
        values: dict[str, object] = {}
        printed = [str(slot)]
        for name in order:
            if name in COLUMNS:
                value = draw(COLUMNS[name])
                values[name] = value
                if name == "Time":
                    y, m, d = value  # type: ignore[misc]
                    printed.append(f"{y:04d}-{m:02d}-{d:02d} 12:34:56")
                elif name == "Coulomb":
                    printed.append(f"{value}%")
                else:
                    printed.append(str(value))
            else:
                printed.append(draw(st.sampled_from(["abc", "-", "7"])))
        gaps = draw(st.lists(st.integers(1, 6), min_size=len(printed), max_size=len(printed)))
        lines.append("".join(p + " " * g for p, g in zip(printed, gaps, strict=True)))
        rows.append(values)
    return "\r\r\n".join(lines) + "\r\n\rCommand completed successfully", rows


@SETTINGS
@given(table=pwr_tables())
def test_generated_pwr_tables_parse_by_header(
    table: tuple[str, list[dict[str, object]]],
) -> None:
    text, expected = table
    parsed = parse_pwr(text)
    assert len(parsed.rows) == len(expected)
    for slot, (row, values) in enumerate(zip(parsed.rows, expected, strict=True), start=1):
        assert row.index == slot
        for name, value in values.items():
            if name == "Volt":
                assert row.voltage == pytest.approx(value / 1000)
            elif name == "Curr":
                assert row.current == pytest.approx(value / 1000)
            elif name == "Tempr":
                assert row.temperature == pytest.approx(value / 1000)
            elif name == "Vlow":
                assert row.cell_voltage_low == pytest.approx(value / 1000)
            elif name == "MosTempr":
                assert row.mosfet_temperature == pytest.approx(value / 1000)
            elif name == "Base.St":
                assert row.state == value
            elif name == "Volt.St":
                assert row.voltage_state == value
            elif name == "Coulomb":
                assert row.soc == value
            elif name == "Time":
                assert row.time is not None
                assert (row.time.year, row.time.month, row.time.day) == value
    modules = modules_from_pwr(parsed)
    assert [m.index for m in modules] == list(range(1, len(expected) + 1))


@SETTINGS
@given(
    lines=st.lists(st.text(max_size=80), max_size=40),
    command=st.sampled_from(
        [
            "pwr",
            "pwr 1",
            "bat 1",
            "info",
            "stat 2",
            "soh 1",
            "time",
            "pwrsys",
            "log",
            "data event",
            "getpwr",
            "ci",
            "help",
            "",
        ]
    ),
)
def test_decode_arbitrary_response_lines(lines: list[str], command: str) -> None:
    resp = ConsoleResponse(command=command, lines=tuple(lines), ok=True, prompt="pylon>")
    try:
        decode_response(resp)
    except ProtocolError:
        pass


@pytest.mark.parametrize("name", sorted(p.stem for p in CAPTURES.glob("*.txt")))
def test_captures_survive_line_ending_rewrites(name: str) -> None:
    raw = (CAPTURES / f"{name}.txt").read_bytes()
    plain = raw.replace(b"\r", b"")
    crlf = plain.replace(b"\n", b"\r\n")
    results = [split_transcript(variant) for variant in (raw, plain, crlf)]
    assert results[0] == results[1] == results[2]
