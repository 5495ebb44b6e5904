"""Console codec: allow-list, framing and parsers against the captures.

The captures are those of docs/protocol-notes.md §4.3 and tests/core/captures.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from custom_components.pylontech.core.errors import CommandNotAllowedError, ProtocolError
from custom_components.pylontech.core.model import Alarm, LimitState, ModuleState, Protection
from custom_components.pylontech.core.protocol.console import (
    CONSOLE_BAUD,
    WAKE_UP_BAUD,
    WAKE_UP_FRAME,
    WAKE_UP_NEWLINE,
    ConsoleEventKind,
    ConsoleFramer,
    ConsoleResponse,
    InfoRecord,
    PwrDetail,
    PwrTable,
    apply_bat,
    apply_info,
    apply_pwr_detail,
    apply_stat,
    bank_from_pwr,
    bank_from_pwrsys,
    decode_response,
    detect_prompt,
    encode_command,
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


def capture(name: str) -> bytes:
    """A verbatim capture fixture (raw endings restored where the reference documents them)."""
    return (CAPTURES / f"{name}.txt").read_bytes()


def response(name: str) -> ConsoleResponse:
    """The single response in a capture fixture."""
    responses = split_transcript(capture(name))
    assert len(responses) == 1
    return responses[0]


# --- allow-list ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("pwr", "pwr"),
        ("pwr 1", "pwr 1"),
        ("  PWR   12 ", "pwr 12"),
        ("bat 3", "bat 3"),
        ("bat", "bat"),
        ("info", "info"),
        ("info 2", "info 2"),
        ("stat", "stat"),
        ("stat 16", "stat 16"),
        ("soh 1", "soh 1"),
        ("time", "time"),
        ("pwrsys", "pwrsys"),
        ("log", "log"),
        ("data event", "data event"),
        ("data  history", "data history"),
        ("getpwr", "getpwr"),
        ("ci", "ci"),
        ("help", "help"),
    ],
)
def test_allowed_commands(text: str, canonical: str) -> None:
    assert validate_command(text) == canonical
    assert encode_command(text) == canonical.encode() + b"\r"


@pytest.mark.parametrize(
    "text",
    [
        "login",
        "login debug",
        "time 2024 1 1 0 0 0",
        "time 2024",
        "config",
        "shut",
        "soccal",
        "socclr",
        "statc",
        "logc",
        "setprt sma",
        "datac",
        "eepw 1 2",
        "ctrl",
        "totalcoul",
        "soh",
        "pwr 100",
        "pwr -1",
        "pwr 01",
        "pwr 1 2",
        "pwr x",
        "data",
        "data event 1",
        "",
        "   ",
        "pwr\r",
        "pwr\nshut",
        "pwr\tl",
        "pwr\x1b",
        "bat\x00",
        "pwr;shut",
        "p" * 40,
        "pwr " + " " * 40,
    ],
)
def test_refused_commands(text: str) -> None:
    with pytest.raises(CommandNotAllowedError):
        validate_command(text)
    with pytest.raises(CommandNotAllowedError):
        encode_command(text)


def test_wake_up_constants() -> None:
    assert WAKE_UP_BAUD == 1200
    assert CONSOLE_BAUD == 115200
    assert WAKE_UP_NEWLINE == b"\r\n"
    assert (
        bytes.fromhex("7E 32 30 30 31 34 36 38 32 43 30 30 34 38 35 32 30 46 43 43 33 0D")
        == WAKE_UP_FRAME
    )
    # The frame's own CHKSUM is valid (sum of VER..INFO, two's complement).
    body = WAKE_UP_FRAME[1:-5]
    assert f"{(-sum(body)) & 0xFFFF:04X}".encode() == WAKE_UP_FRAME[-5:-1]


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("Command completed successfully\r\n\r$$\r\n\rpylon>", "pylon>"),
        ("$$\r\n\rpylon_debug>", "pylon_debug>"),
        ("\r\nPYTES>", "PYTES>"),
        ("pylon>  ", "pylon>"),
        ("pylon>pwr", None),
        ("$$\r\n", None),
        ("", None),
        ("a >", None),
        ("value 3>2", None),
    ],
)
def test_detect_prompt(text: str, prompt: str | None) -> None:
    assert detect_prompt(text) == prompt


# --- framing -------------------------------------------------------------------------


def feed_all(data: bytes, *, chunk: int | None = None) -> list:
    framer = ConsoleFramer()
    events = []
    if chunk is None:
        events += framer.feed(data)
    else:
        for start in range(0, len(data), chunk):
            events += framer.feed(data[start : start + chunk])
    return events


def test_framer_raw_pwr_capture() -> None:
    events = feed_all(capture("con01_pwr_us5000_stack"))
    responses = [e.response for e in events if e.kind is ConsoleEventKind.RESPONSE]
    assert len(responses) == 1
    resp = responses[0]
    assert resp.command == "pwr"
    assert resp.ok is True
    assert resp.prompt == "pylon>"
    assert resp.paged is False
    assert resp.lines[0].startswith("Power Volt")
    assert len(resp.lines) == 17  # header + 16 slots; success line and blanks dropped
    assert all(line and "\r" not in line for line in resp.lines)
    # Both prompts before the command (idle line, then echo line) and the one after
    # the response are reported.
    assert [e.kind for e in events] == [
        ConsoleEventKind.PROMPT,
        ConsoleEventKind.PROMPT,
        ConsoleEventKind.RESPONSE,
        ConsoleEventKind.PROMPT,
    ]


@pytest.mark.parametrize("name", sorted(p.stem for p in CAPTURES.glob("*.txt")))
@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
def test_split_feeds_give_same_events(name: str, chunk: int) -> None:
    data = capture(name)
    assert feed_all(data, chunk=chunk) == feed_all(data)


def test_unknown_command_capture() -> None:
    resp = response("con18_unknown_command")
    assert resp.command == "totalcoul"
    assert resp.ok is False
    assert resp.prompt == "pylon_debug>"
    assert resp.unknown_command == "totalcoul"
    with pytest.raises(ProtocolError):
        decode_response(resp)


def test_garbage_before_echo_and_glued_prompt() -> None:
    data = (
        b"\x00\xff noise ~20014682C0048520FCC3\r\n"
        b"\r\npylon>\r\n"
        b"pylon>time\r\n@\r\r\nDs3231 2023-09-28 20:11:40\r\n\rCommand completed successfully"
        b"\r\n\r$$\r\n\rpylon>bat 1\r\n@\r\r\n"
        b"Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State"
        b"  SOC   Coulomb  BAL\r\r\n"
        b"0  3331  16020  27500  Charge  Normal  Normal  Normal  45%  44231 mAH  Y\r\r\n"
        b"\r\nCommand completed successfully\r\n\r$$\r\n\rpylon>"
    )
    responses = split_transcript(data)
    assert [r.command for r in responses] == ["time", "bat 1"]
    assert [r.prompt for r in responses] == ["pylon>", "pylon>"]
    assert all(r.ok for r in responses)
    assert parse_time(responses[0]).time == datetime(2023, 9, 28, 20, 11, 40)
    cells = parse_bat(responses[1])
    assert cells[0].balancing is True
    assert feed_all(data, chunk=1) == feed_all(data)


def test_pager_prompt_reported_and_marks_response() -> None:
    pager = b"Press [Enter] to be continued,other key to exit          "
    data = (
        b"pylon>log\r\n@\r\r\n Index   : 2\r\r\n Time    : 23-09-16 11:43:09\r\r\n"
        b" ModID   : BMM\r\r\n Code    : 2c50\r\r\n Info    : The device start charging. \r\r\n"
        + pager
        + b"\r\n Index   : 1\r\r\n Time    : 23-09-16 11:34:51\r\r\n ModID   : BMM\r\r\n"
        b" Code    : 0\r\r\n Info    : The device start discharging. \r\r\n"
        b"\r\nCommand completed successfully\r\n\r$$\r\n\rpylon>"
    )
    for chunk in (None, 1, 5):
        framer = ConsoleFramer()
        events = []
        if chunk is None:
            events = framer.feed(data)
        else:
            for start in range(0, len(data), chunk):
                events += framer.feed(data[start : start + chunk])
        kinds = [e.kind for e in events]
        assert kinds.count(ConsoleEventKind.PAGER) == 1
        # The pager event comes before the response ends: the link answers it with CR.
        assert kinds.index(ConsoleEventKind.PAGER) < kinds.index(ConsoleEventKind.RESPONSE)
        resp = next(e.response for e in events if e.response is not None)
        assert resp.paged is True
        assert resp.ok is True
        assert not any("Press [Enter]" in line for line in resp.lines)
        entries = parse_log(resp)
        assert [e.index for e in entries] == [2, 1]
        assert entries[1].info == "The device start discharging."


def test_pager_waiting_without_newline_is_reported_immediately() -> None:
    framer = ConsoleFramer()
    framer.feed(b"pylon>log\r\n@\r\r\n Index   : 31\r\r\n")
    events = framer.feed(b"Press [Enter] to be continued,other key to exit    ")
    assert [e.kind for e in events] == [ConsoleEventKind.PAGER]
    assert framer.busy


def test_framer_bounds() -> None:
    framer = ConsoleFramer(max_chars=1000, max_lines=50)
    framer.feed(b"pylon>pwr\r\n@\r\n")
    with pytest.raises(ProtocolError):
        framer.feed(b"1 2 3 4 5\r\n" * 200)
    assert not framer.busy  # reset after the overflow, usable again
    events = framer.feed(b"pylon>time\r\n@\r\nRTC 2026-07-17 01:40:48\r\n$$\r\npylon>")
    assert [e.response.command for e in events if e.response] == ["time"]
    # Line noise without newlines while idle is dropped, not accumulated.
    for _ in range(100):
        framer.feed(b"x" * 1000)
    assert len(framer._pending) <= 4096  # the bound itself is under test


def test_transcript_with_plain_newlines_and_missing_trailer() -> None:
    resp = response("con15_log_page1")
    assert resp.command == "log"
    assert resp.ok is False  # the capture stops at the second page
    assert resp.paged is True
    entries = parse_log(resp)
    assert [e.index for e in entries] == [31, 30, 29, 28]
    assert entries[0].time == datetime(2023, 9, 16, 11, 43, 9)
    assert entries[0].module_id == "BMM"
    assert entries[0].code == "2c50"
    assert entries[0].info == "The device start charging."


# --- pwr ------------------------------------------------------------------------------


def test_pwr_layout_b_mixed_stack() -> None:
    table = decode_response(response("con01_pwr_us5000_stack"))
    assert isinstance(table, PwrTable)
    assert len(table.columns) == 18
    assert len(table.rows) == 16
    assert [r.index for r in table.present()] == [1, 2, 3, 4]
    first = table.rows[0]
    assert first.voltage == pytest.approx(49.905)
    assert first.current == pytest.approx(11.867)
    assert first.temperature == pytest.approx(27.9)
    assert first.temperature_low == pytest.approx(26.6)
    assert first.temperature_high == pytest.approx(26.8)
    assert first.cell_voltage_low == pytest.approx(3.327)
    assert first.soc == 39
    assert first.state == "Charge"
    assert first.time == datetime(2023, 9, 16, 11, 50, 32)
    assert first.mosfet_temperature == pytest.approx(27.5)
    assert first.mosfet_temperature_state == "Normal"
    second = table.rows[1]
    assert second.current == pytest.approx(5.182)
    assert second.mosfet_temperature == pytest.approx(30.2)
    # US2KBPL inside the stack: '-' in the MosTempr columns.
    third = table.rows[2]
    assert third.voltage == pytest.approx(49.909)
    assert third.soc == 35
    assert third.mosfet_temperature is None
    assert third.mosfet_temperature_state is None
    assert table.rows[3].cell_voltage_high == pytest.approx(3.329)
    assert table.rows[3].soc == 40
    for row in table.rows[4:]:
        assert row.absent
        assert row.voltage is None
        assert row.soc is None


def test_pwr_layout_b_discharging_debug_prompt() -> None:
    resp = response("con02_pwr_us2000c_debug")
    assert resp.prompt == "pylon_debug>"
    table = parse_pwr(resp)
    assert [r.index for r in table.present()] == [1, 2, 3, 4, 5]
    assert [r.current for r in table.present()] == pytest.approx(
        [-3.037, -2.7, -2.348, -2.189, -3.598]
    )
    assert table.rows[4].soc == 95
    assert table.rows[4].temperature == pytest.approx(26.0)
    assert table.rows[4].mosfet_temperature == pytest.approx(24.6)
    assert table.rows[3].mosfet_temperature is None
    assert table.rows[5].absent


def test_modules_from_pwr() -> None:
    modules = modules_from_pwr(parse_pwr(response("con02_pwr_us2000c_debug")))
    assert len(modules) == 16
    first = modules[0]
    assert first.index == 1
    assert first.group == 0
    assert first.state == ModuleState.DISCHARGE
    assert first.voltage == pytest.approx(49.726)
    assert first.current == pytest.approx(-3.037)
    assert first.cell_voltage_min == pytest.approx(3.315)
    assert first.cell_voltage_max == pytest.approx(3.316)
    assert first.voltage_state is LimitState.NORMAL
    assert first.alarms == frozenset()
    assert ("time", "2026-07-17 01:20:56") in first.extra
    assert modules[6].state == ModuleState.ABSENT
    assert modules[6].voltage is None
    bank = bank_from_pwr(parse_pwr(response("con02_pwr_us2000c_debug")))
    assert bank.module_count == 5
    assert bank.current == pytest.approx(-13.87, abs=0.01)


LAYOUT_C = """\
Power Volt  Curr  Tempr Tlow  Tlow.Id Thigh Thigh.Id Vlow Vlow.Id Vhigh Vhigh.Id Base.St  Volt.St Curr.St Temp.St Coulomb Time                B.V.St B.T.St MosTempr M.T.St SysAlarm.St
1     49405 0     17600 13700 8       14500 0        3293 2       3294  0        Idle     Normal  Normal  Normal  60%     2025-12-05 00:53:41 Normal Normal 16600    Normal Normal
2     46012 -1255 9100  5300  3       5500  11       3047 14      3091  6        SysError Low     High    Normal  4%      2025-12-05 00:53:40 Low    Normal 7800     High   Alarm
3     -     -     -     -     -       -     -        -    -       -     -        Absent   -       -       -       -       -                   -      -
4     -     -     -     -     -     -     -     Absent   -     -     -     -     -     -     -
Command completed successfully
"""


def test_pwr_layout_c_ids_and_alarms() -> None:
    table = parse_pwr(LAYOUT_C)
    assert len(table.columns) == 23
    first, second, third, fourth = table.rows
    assert first.temperature_low == pytest.approx(13.7)
    assert first.temperature_low_id == 8
    assert first.cell_voltage_low_id == 2
    assert first.cell_voltage_high == pytest.approx(3.294)
    assert first.soc == 60
    assert first.mosfet_temperature == pytest.approx(16.6)
    assert first.system_alarm_state == "Normal"
    assert second.current == pytest.approx(-1.255)
    assert second.cell_voltage_high_id == 6
    assert third.absent
    assert fourth.absent
    module = modules_from_pwr(table)[1]
    assert module.state == ModuleState.ERROR
    assert module.voltage_state is LimitState.LOW
    assert module.current_state is LimitState.HIGH
    assert Protection.SYSTEM_ERROR in module.protections
    assert {
        Alarm.MODULE_LOW_VOLTAGE,
        Alarm.CELL_LOW_VOLTAGE,
        Alarm.DISCHARGE_HIGH_CURRENT,
        Alarm.MOSFET_HIGH_TEMPERATURE,
        Alarm.GENERAL,
    } <= module.alarms
    idle = modules_from_pwr(table)[0]
    assert idle.state == ModuleState.IDLE
    assert idle.alarms == frozenset()


LAYOUT_A_CLONE = """\
PYTES>pwr
@
Power Volt   Curr   Tempr  Tlow   Thigh  Vlow   Vhigh  Base.St  Volt.St  Curr.St  Temp.St  Coulomb  Time                 B.V.St   B.T.St   Barcode              DevType
1     53012  -4870  25000  23000  24000  3310   3316   Dischg   Normal   Normal   Normal   81%      2024-02-13 23:34:48  Normal   Normal   E0000000000000AB     E-BOX-48100V-D

2     -      -      -      -      -      -      -      Absent   -        -        -        -        -                    -        -        -                    -
Command completed successfully
$$
PYTES>"""


def test_pwr_clone_with_unknown_columns() -> None:
    resp = split_transcript(LAYOUT_A_CLONE)[0]
    assert resp.prompt == "PYTES>"
    table = parse_pwr(resp)
    first = table.rows[0]
    assert first.barcode == "E0000000000000AB"
    assert first.device_type == "E-BOX-48100V-D"
    assert first.soc == 81
    assert table.rows[1].absent
    module = modules_from_pwr(table)[0]
    assert module.serial_number == "E0000000000000AB"
    assert module.current == pytest.approx(-4.87)


def test_pwr_unknown_column_kept_in_extra() -> None:
    text = (
        "Power Volt Curr Tempr Base.St Coulomb NewThing Time\n"
        "1 50000 1000 25000 Charge 50% abc 2024-01-02 03:04:05\n"
    )
    row = parse_pwr(text).rows[0]
    assert row.voltage == 50
    assert row.soc == 50
    assert row.time == datetime(2024, 1, 2, 3, 4, 5)
    assert ("NewThing", "abc") in row.extra
    assert ("NewThing", "abc") in modules_from_pwr(parse_pwr(text))[0].extra


def test_pwr_value_with_a_space_and_an_empty_field() -> None:
    text = (
        "Power Volt   Curr   Base.St  Coulomb  DevType        MosTempr\n"
        "1     50000  1000   Charge   50%      E-BOX 48100    27000\n"
        "2     50100         Idle     51%      US3000C        26000\n"
    )
    first, second = parse_pwr(text).rows
    assert first.mosfet_temperature == pytest.approx(27.0)
    assert first.device_type == "E-BOX 48100"
    assert second.current is None
    assert second.state == "Idle"
    assert second.soc == 51
    assert second.mosfet_temperature == pytest.approx(26.0)


def test_pwr_without_header_is_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_pwr("nothing here\n1 2 3\n")


# --- pwr N ------------------------------------------------------------------------------


def test_pwr_detail_capture() -> None:
    detail = decode_response(response("con05_pwr1_us5000"))
    assert isinstance(detail, PwrDetail)
    assert detail.index == 1
    assert detail.voltage == pytest.approx(49.959)
    assert detail.current == pytest.approx(15.939)
    assert detail.temperature == pytest.approx(28.2)
    assert detail.soc == 45
    assert detail.total_capacity == pytest.approx(100.0)
    assert detail.max_voltage == pytest.approx(54.0)
    assert detail.charge_times == 11344
    assert detail.state == "Charge"
    assert detail.charge_seconds == 1764
    assert detail.discharge_seconds is None
    assert detail.heater_state == "OFF"
    assert "LCOUL" in detail.protect_enabled
    assert len(detail.protect_enabled) == 26
    assert detail.bat_events is not None
    assert detail.bat_events.code == 0
    assert detail.system_fault is not None
    assert detail.system_fault.code == 0
    modules = modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))
    module = apply_pwr_detail(modules[0], detail)
    assert module.full_capacity == pytest.approx(100.0)
    assert module.remaining_capacity == pytest.approx(45.0)
    assert module.voltage == pytest.approx(49.959)
    assert module.fully_charged is False
    assert module.protections == frozenset()
    assert module.alarms == frozenset()


PWR_DETAIL_EVENTS = """\
pylon_debug>pwr 2
@
 ----------------------------
 Power  2

 Voltage         : 52437       mV
 Current         : 80          mA
 Temperature     : 30600       mC
 Coulomb         : 100         %
 Total Coulomb   : 50000       mAH
 Real Coulomb    : 49700       mAH
 Charge Times    : 0
 Basic Status    : Charge
 Discharge Sec.  : 12      s
 Coul. Status    : Full
 Bat Events      : 0x2        BHV
 Power Events    : 0x2000     COULFULL
 System Fault    : 0x8
 Fancy New Field : 17
 ----------------------------
Command completed successfully
$$
pylon_debug>"""


def test_pwr_detail_events_map_to_flags() -> None:
    detail = parse_pwr_detail(split_transcript(PWR_DETAIL_EVENTS)[0])
    assert detail.index == 2
    assert detail.real_capacity == pytest.approx(49.7)
    assert detail.discharge_seconds == 12
    assert detail.bat_events is not None
    assert detail.bat_events.names == ("BHV",)
    assert detail.power_events is not None
    assert detail.power_events.code == 0x2000
    assert ("Fancy New Field", "17") in detail.extra
    module = apply_pwr_detail(modules_from_pwr(parse_pwr(LAYOUT_C))[0], detail)
    assert module.fully_charged is True
    assert Alarm.CELL_HIGH_VOLTAGE in module.alarms
    assert Protection.SYSTEM_ERROR in module.protections
    assert ("event", "0x8") in module.extra


# --- bat N --------------------------------------------------------------------------------


def test_bat_capture() -> None:
    cells = decode_response(response("con07_bat1_us5000"))
    assert len(cells) == 15
    assert [c.index for c in cells] == list(range(15))
    assert cells[0].voltage == pytest.approx(3.331)
    assert cells[2].voltage == pytest.approx(3.330)
    assert cells[4].temperature == pytest.approx(27.3)
    assert cells[8].temperature == pytest.approx(27.2)
    assert cells[0].current == pytest.approx(16.02)
    assert cells[0].soc == 45
    assert cells[0].capacity == pytest.approx(44.231)
    assert cells[0].balancing is False
    assert cells[14].state == "Charge"
    module = apply_bat(modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))[0], cells)
    assert len(module.cell_voltages) == 15
    assert module.cell_voltage_min == pytest.approx(3.330)
    assert module.cell_voltage_max == pytest.approx(3.331)
    assert module.cell_temperatures[4] == pytest.approx(27.3)
    assert module.cell_voltage_states == (LimitState.NORMAL,) * 15
    assert module.cells_balancing == (False,) * 15


BAT_COMBINED_COULOMB = """\
Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State  Coulomb
0        3217     0        25000    Idle         Normal       Normal       Normal        77%      38286 mAH
1        3219     0        25000    Idle         High         Normal       Normal        80%      39952 mAH
Command completed successfully
"""

BAT_NO_CURRENT = """\
Battery  Volt     Tempr    Base State   Volt. State  Curr. State  Temp. State  Coulomb
0        3304     19000    Dischg       Normal       Normal       Normal        34%      34682 mAH
15       3304     19000    Dischg       Low          Normal       Normal        34%      34690 mAH
"""


def test_bat_other_layouts() -> None:
    cells = parse_bat(BAT_COMBINED_COULOMB)
    assert cells[0].soc == 77
    assert cells[0].capacity == pytest.approx(38.286)
    assert cells[1].voltage_state == "High"
    assert cells[1].balancing is None
    module = apply_bat(modules_from_pwr(parse_pwr(LAYOUT_C))[0], cells)
    assert Alarm.CELL_HIGH_VOLTAGE in module.alarms
    assert module.cells_balancing == ()
    cells = parse_bat(BAT_NO_CURRENT)
    assert [c.index for c in cells] == [0, 15]
    assert cells[1].current is None
    assert cells[1].temperature == pytest.approx(19.0)
    assert cells[1].voltage_state == "Low"
    assert cells[1].capacity == pytest.approx(34.69)


# --- info / stat / soh / time -------------------------------------------------------------


def test_info_captures() -> None:
    first = decode_response(response("con10_info1_us5000"))
    assert isinstance(first, InfoRecord)
    assert first.address == 1
    assert first.device_name == "US5000"
    assert first.board == "NF4.E3"
    assert first.main_soft_version == "B69.16.0.0"
    assert first.soft_version == "V1.3"
    assert first.barcode == "Yxxxxxxxxxxxxxx7"
    assert first.nominal_capacity == 100
    assert first.cell_count == 15
    assert first.max_discharge_current == pytest.approx(-100.0)
    assert first.console_port_rate == 115200
    second = parse_info(response("con10_info2_us2000c"))
    assert second.device_name == "US2000C"
    assert second.board is None
    assert second.max_charge_current == pytest.approx(90.0)
    third = parse_info(response("con10_info3_us2kbpl"))
    assert third.board_version == "PHANTOMSAV10R03"
    assert third.max_charge_current == pytest.approx(102.0)
    modules = modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))
    module = apply_info(modules[2], third)
    assert module.model == "US2KBPL"
    assert module.serial_number == "Pxxxxxxxxxxxxxx8"
    assert module.firmware == "B67.9.0"
    assert module.manufacturer == "Pylon"


def test_stat_capture() -> None:
    stat = decode_response(response("con13_stat1_us5000"))
    assert stat.address == 1
    assert stat.counter("HisData Items") == 1794
    assert stat.counter("Charge Times") == 11345
    assert stat.counter("Shut Times") == 1
    assert stat.counter("Reset Times") == 13
    assert stat.counter("Pwr Coulomb") == 190936600
    assert stat.counter("LifeAlarm Times") == 0
    assert stat.soh == 100
    assert stat.cycles == 108
    assert len(stat.counters) == 50
    module = apply_stat(modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))[0], stat)
    assert module.cycles == 108
    assert module.soh == 100
    assert module.counter("COC Times") == 0
    assert module.counter("Idle Times") == 12836


def test_soh_capture() -> None:
    report = decode_response(response("con12_soh1_us5000"))
    assert report.index == 1
    assert len(report.cells) == 15
    assert report.cells[2].voltage == pytest.approx(3.330)
    assert report.cells[14].soh_count == 0
    assert report.cells[14].soh_status == "Normal"


def test_time_captures() -> None:
    ds = parse_time(response("con14_time_ds3231"))
    assert ds.clock == "Ds3231"
    assert ds.time == datetime(2023, 9, 28, 20, 11, 40)
    rtc = decode_response(response("con14_time_rtc"))
    assert rtc.clock == "RTC"
    assert rtc.time == datetime(2026, 7, 17, 1, 40, 48)
    assert rtc.test_result == "pass"
    with pytest.raises(ProtocolError):
        parse_time("Command completed successfully")


# --- pwrsys / getpwr / ci / data ------------------------------------------------------------

PWRSYS = """\
pylon>pwrsys
@
 Power System Information
 ---------------------------------
 System is charging
 Total Num                : 3
 Present Num              : 3
 Sleep Num                : 0
 System Volt              : 51234    mV
 System Curr              : 12345    mA
 System RC                : 120000   mAH
 System FCC               : 150000   mAH
 System SOC               : 80       %
 System SOH               : 97       %
 Highest voltage          : 3420     mV
 Average voltage          : 3415     mV
 Lowest voltage           : 3410     mV
 Highest temperature      : 28000    mC
 Average temperature      : 26500    mC
 Lowest temperature       : 25000    mC
 Recommend chg voltage    : 53250    mV
 Recommend dsg voltage    : 46000    mV
 Recommend chg current    : 25000    mA
 Recommend dsg current    : -50000   mA
 system Recommend chg voltage: 53250    mV
 system Recommend dsg voltage: 46000    mV
 system Recommend chg current: 75000    mA
 system Recommend dsg current: -150000  mA
Command completed successfully
$$
pylon>"""


def test_pwrsys_to_bank() -> None:
    record = decode_response(split_transcript(PWRSYS)[0])
    assert record.status == "charging"
    assert record.present_count == 3
    assert record.voltage == pytest.approx(51.234)
    assert record.current == pytest.approx(12.345)
    assert record.discharge_current == pytest.approx(-50.0)
    bank = bank_from_pwrsys(record)
    assert bank.charge_voltage_limit == pytest.approx(53.25)
    assert bank.discharge_voltage_limit == pytest.approx(46.0)
    assert bank.charge_current_limit == pytest.approx(75.0)
    assert bank.discharge_current_limit == pytest.approx(150.0)
    assert bank.soc == 80
    assert bank.soh == 97
    assert bank.remaining_capacity == pytest.approx(120.0)
    assert bank.full_capacity == pytest.approx(150.0)
    assert bank.cell_voltage_min == pytest.approx(3.41)
    assert bank.cell_voltage_max == pytest.approx(3.42)
    assert bank.temperature == pytest.approx(26.5)
    assert bank.module_count == 3
    with pytest.raises(ProtocolError):
        parse_pwrsys("System is idle\n")


GETPWR = """\
pylon>getpwr
@
49768#  -2632#  29300# 43259# Dischg# Normal# Normal# Normal#
3317#  26300# Normal# Normal#
3318#  26500# Normal# High#
0#
321#
Command completed successfully
$$
pylon>"""


def test_getpwr() -> None:
    record = decode_response(split_transcript(GETPWR)[0])
    assert record.voltage == pytest.approx(49.768)
    assert record.current == pytest.approx(-2.632)
    assert record.remaining_capacity == pytest.approx(43.259)
    assert record.state == "Dischg"
    assert len(record.cells) == 2
    assert record.cells[1].temperature == pytest.approx(26.5)
    assert record.cells[1].temperature_state == "High"
    assert record.trailer == (0, 321)
    assert record.cycles == 321
    with pytest.raises(ProtocolError):
        parse_getpwr("no hashes\n")


CI = """\
 -----------------------------------
 US0 Rx:                     0
 US1 Rx:                     4883
 US1 Tx:                     1220
 CAN Tx:                        7324
 Exist Pack Num:             5
 -----------------------------------
"""


def test_ci() -> None:
    record = parse_ci(CI)
    assert record.counter("US1 Rx") == 4883
    assert record.counter("can tx") == 7324
    assert record.counter("Exist Pack Num") == 5


DATA_EVENT = """\
pylon>data event
@
Item Index  :  12
Time        :  23-05-01 10:11:12
Voltage     :  53700   mV
Current     :  -1200   mA
Temperature :  24000   mC
Percent     :  98      %
Total Coulomb: 100000  mAH
Max Voltage :  54000   mV
Base State  :  SysError
Volt. State :  High
Curr. State :  Normal
Tempr. State:  Normal
Coul. Status:  Full
Power Events:  0x2000     COULFULL
Bat Events  :  0x2        BHV
Bat Protect ENA : BOV BHV BLV BUV BSLP
Pwr Protect ENA : POV PHV PLV PUV PSLP
System Fault:  0x8
Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State  Coulomb
0        3580     -1200    24000    SysError     Normal       Normal       Normal       98%
1        4095     -1200    24000    SysError     High         Normal       Normal       98%
Press [Enter] to be continued,other key to exit
Item Index  :  11
Time        :  23-05-01 09:00:00
Voltage     :  53000   mV
Base State  :  Idle
Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State  Coulomb
0        3533     0        23000    Idle         Normal       Normal       Normal       97%
Command completed successfully
$$
pylon>"""


def test_data_event_records() -> None:
    resp = split_transcript(DATA_EVENT)[0]
    assert resp.command == "data event"
    assert resp.paged
    records = decode_response(resp)
    assert [r.index for r in records] == [12, 11]
    first = records[0]
    assert first.time == datetime(2023, 5, 1, 10, 11, 12)
    assert first.voltage == pytest.approx(53.7)
    assert first.soc == 98
    assert first.state == "SysError"
    assert first.bat_protect_enabled[-1] == "BSLP"
    assert first.system_fault is not None
    assert first.system_fault.code == 8
    assert len(first.cells) == 2
    assert first.cells[1].voltage == pytest.approx(4.095)
    assert first.cells[1].voltage_state == "High"
    assert first.cells[1].soc == 98
    assert len(records[1].cells) == 1
    assert parse_data(resp.lines[:3])[0].index == 12


# --- decode dispatch -------------------------------------------------------------------------


def test_invalid_command_answer() -> None:
    text = (
        "\nPYTES>\nPYTES>stat 1\n@\nInvalid command or fail to excute.\nUsage:\n"
        "Statistic data show - stat\n$$\nPYTES>"
    )
    resp = split_transcript(text)[0]
    assert resp.command == "stat 1"
    assert resp.ok is False
    assert resp.failure == "Invalid command or fail to excute."
    with pytest.raises(ProtocolError, match="refused"):
        decode_response(resp)


SOH_CLONE = """\
Power   1
Battery    Voltage    SOHStatus  \u00c8$
0          3327       00000000
15         3326       00000000
"""


def test_soh_clone_with_garbled_header_column() -> None:
    report = parse_soh(SOH_CLONE)
    assert report.index == 1
    assert [c.index for c in report.cells] == [0, 15]
    assert report.cells[1].voltage == pytest.approx(3.326)
    assert report.cells[1].soh_status == "00000000"
    assert report.cells[1].soh_count is None


def test_decode_response_without_parser() -> None:
    resp = ConsoleResponse(command="help", lines=("pwr  show power",), ok=True, prompt="pylon>")
    with pytest.raises(ProtocolError):
        decode_response(resp)


def test_parsers_accept_lines_text_and_response() -> None:
    resp = response("con07_bat1_us5000")
    assert parse_bat(resp) == parse_bat(list(resp.lines)) == parse_bat(resp.text)
    assert parse_soh(response("con12_soh1_us5000")).cells[0].voltage == pytest.approx(3.331)
    assert parse_stat(response("con13_stat1_us5000")).cycles == 108


def test_glued_prompts_before_an_echo_are_all_stripped() -> None:
    """An empty Enter leaves ``pylon>pylon>bat 1``: the command is still ``bat 1``."""
    text = "pylon>pylon>bat 1\r\n@\r\nBattery  Volt\r\n0        3331\r\n$$\r\n\rpylon>"
    (response,) = split_transcript(text)
    assert response.command == "bat 1"
    assert response.prompt == "pylon>"


# --- What the console can tell, bounds, SOH 0 ---------------------------------------------

REAL = CAPTURES / "real"


def _pwr1_with_events(bat: str, power: str) -> str:
    """The real US3000C `pwr 1` block with other event words (the layout stays as captured)."""
    text = (REAL / "us3000c_pwr1.txt").read_text()
    text = text.replace(" Bat Events      : 0x0        ", f" Bat Events      : {bat}")
    return text.replace(" Power Events    : 0x0        ", f" Power Events    : {power}")


@pytest.mark.parametrize(
    ("bat", "power", "protections", "alarms"),
    [
        # Named protections (the `Protect ENA` vocabulary) are protections ...
        ("0x8        BUV", "0x40       COC", {"cell_under_voltage", "charge_over_current"}, set()),
        ("0x0", "0x401      POV SC", {"module_over_voltage", "short_circuit"}, set()),
        ("0x10       CBOT", "0x0", {"charge_over_temperature"}, set()),
        # ... warnings stay warnings (the captured `0x2 BHV`) ...
        ("0x2        BHV", "0x0", set(), {"cell_high_voltage"}),
        # ... and Pytes' unprefixed words take their field's side.
        ("0x8        UV", "0x8        UV", {"cell_under_voltage", "module_under_voltage"}, set()),
        ("0x20       LT", "0x0", set(), {"low_temperature"}),
    ],
)
def test_pwr_detail_events_tell_protections_from_warnings(
    bat: str, power: str, protections: set[str], alarms: set[str]
) -> None:
    module = modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))[0]
    detail = parse_pwr_detail(_pwr1_with_events(bat, power))
    applied = apply_pwr_detail(module, detail)
    assert {str(p) for p in applied.protections} == protections
    assert {str(a) for a in applied.alarms} - {str(a) for a in module.alarms} == alarms


def test_pwr_state_columns_never_claim_a_protection() -> None:
    """`Low`/`High` in the table is the warning level: alarms, never a protection."""
    row = (REAL / "esphome_pwr_row_syserror_low.txt").read_text()
    low = row.replace("SysError", "Dischg  ")
    module = modules_from_pwr(parse_pwr(low))[0]
    assert module.protections == frozenset()
    assert Alarm.MODULE_LOW_VOLTAGE in module.alarms
    assert Alarm.CELL_LOW_VOLTAGE in module.alarms


def test_pwr_rows_beyond_the_slots_are_skipped() -> None:
    """Slot 100 (and 0) are outside every supported group: left out, reported, not a module."""
    text = capture("con01_pwr_us5000_stack").decode("latin-1")
    lines = text.replace("\r", "").split("\n")
    first_row = next(line for line in lines if line.startswith("1 "))
    extra = [first_row.replace("1 ", "100", 1), first_row.replace("1 ", "0 ", 1)]
    at = lines.index(first_row)
    table = parse_pwr(lines[: at + 1] + extra + lines[at + 1 :])
    assert table.skipped == (100, 0)
    assert [row.index for row in table.rows] == [row.index for row in parse_pwr(text).rows]
    assert all(1 <= row.index <= 32 for row in table.rows)


def test_bat_with_more_cells_than_supported_is_a_protocol_error() -> None:
    text = (REAL / "us2000c_b67_bat1.txt").read_text().replace("\r", "")
    lines = text.split("\n")
    header = next(i for i, line in enumerate(lines) if line.startswith("Battery"))
    rows = [line for line in lines[header + 1 :] if line[:1].isdigit()]
    assert len(parse_bat(lines)) == 15
    many = [lines[header]] + [f"{n:<9}{row[9:]}" for n, row in enumerate(rows * 2)]
    with pytest.raises(ProtocolError, match="30 cells"):
        parse_bat(many)


def test_stat_soh_zero_is_not_reported() -> None:
    """US2000C B68.2 prints `SOH : 0` beside a Normal SOH status: no health value."""
    text = capture("con13_stat1_us5000").decode("latin-1")
    zero = text.replace("SOH             :      100", "SOH             :        0")
    assert zero != text
    module = modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))[0]
    assert apply_stat(module, parse_stat(zero)).soh is None
    assert apply_stat(module, parse_stat(text)).soh == 100
    # A later unreported value does not wipe a known one.
    known = apply_stat(module, parse_stat(text))
    assert apply_stat(known, parse_stat(zero)).soh == 100


def test_pwrsys_soh_zero_is_not_reported() -> None:
    text = (REAL / "us2000c_b67_pwrsys.txt").read_text()
    bank = bank_from_pwrsys(parse_pwrsys(text))
    assert bank.soh
    line = next(line for line in text.splitlines() if "System SOH" in line)
    zero = text.replace(line, line.replace(str(round(bank.soh)), "0"))
    assert bank_from_pwrsys(parse_pwrsys(zero)).soh is None


def test_the_console_capability_row_is_what_the_mapping_can_report() -> None:
    """Every flag the console mapping can produce is in the CONSOLE row, and nothing else."""
    from custom_components.pylontech.core.capabilities import CONSOLE
    from custom_components.pylontech.core.protocol import console_mapping
    from custom_components.pylontech.core.protocol.console_parsers import EventField, PwrRow

    flags: set[Protection | Alarm] = set()
    for state in ("Low", "High"):
        for current in (1.0, -1.0):
            row = PwrRow(
                index=1,
                state="SysError",
                current=current,
                voltage_state=state,
                current_state=state,
                temperature_state=state,
                cell_voltage_state=state,
                cell_temperature_state=state,
                mosfet_temperature_state=state,
                system_alarm_state="Alarm",
            )
            module = modules_from_pwr(PwrTable(columns=(), rows=(row,)))[0]
            flags |= module.protections | module.alarms
    names = (
        *console_mapping._NAMED_PROTECTIONS,
        *console_mapping._NAMED_ALARMS,
        *console_mapping._UNPREFIXED,
    )
    for name in names:
        for field in ("bat_events", "power_events"):
            detail = PwrDetail(**{field: EventField(1, (name,), f"0x1 {name}")})  # type: ignore[arg-type]
            applied = apply_pwr_detail(
                modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))[0], detail
            )
            flags |= applied.protections | applied.alarms
    fault = apply_pwr_detail(
        modules_from_pwr(parse_pwr(response("con01_pwr_us5000_stack")))[0],
        PwrDetail(system_fault=EventField(8, (), "0x8")),
    )
    flags |= fault.protections
    assert flags == set(CONSOLE.module_flags)
