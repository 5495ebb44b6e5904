"""The simulator's console text is byte-compatible with the captures of docs/protocol-notes.md."""

from __future__ import annotations

from datetime import datetime

from custom_components.pylontech.core.model import LimitState, Module
from custom_components.pylontech.core.protocol import console
from simulator import SimulatedBank, console_render as render

# CON-1 (ioBroker.pylontech data/US/pwr.txt), verbatim including trailing spaces.
CON1_HEADER = (
    "Power Volt   Curr   Tempr  Tlow   Thigh  Vlow   Vhigh  Base.St  Volt.St  Curr.St  Temp.St  "
    "Coulomb  Time                 B.V.St   B.T.St   MosTempr M.T.St  "
)
CON1_ROW1 = (
    "1     49905  11867  27900  26600  26800  3327   3327   Charge   Normal   Normal   Normal   "
    "39%      2023-09-16 11:50:32  Normal   Normal  27500    Normal  "
)
CON1_ROW3 = (
    "3     49909  5080   33000  30000  30000  3326   3328   Charge   Normal   Normal   Normal   "
    "35%      2023-09-16 11:50:29  Normal   Normal   -        -       "
)
CON1_ABSENT5 = (
    "5     -      -      -      -      -      -      -      Absent   -        -        -        "
    "-        -                    -        -       "
)
# CON-7 (bat 1, US5000).
CON7_HEADER = (
    "Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State  "
    "SOC          Coulomb      BAL         "
)
CON7_ROW0 = (
    "0        3331     16020    27500    Charge       Normal       Normal       Normal       "
    "45%         44231 mAH      N"
)
# CON-12 (soh 1).
CON12 = [
    "Power   1",
    "Battery    Voltage    SOHCount   SOHStatus ",
    "0          3331       0          Normal    ",
]
# CON-18 (irek issue #1 hexdump).
CON18 = b"totalcoul\n\r@\r\r\nUnknown command 'totalcoul' - try 'help'\r\n\r$$\r\n\rpylon_debug>"


def _row_module(
    index: int,
    *,
    volt: float,
    curr: float,
    tempr: float,
    tlow: float,
    thigh: float,
    vlow: float,
    vhigh: float,
    soc: float,
    mos: float | None,
) -> Module:
    normal = LimitState.NORMAL
    return Module(
        index=index,
        voltage=volt,
        current=curr,
        temperature=tempr,
        temperatures=(tempr, tlow, tlow, thigh, thigh),
        temperature_min=tlow,
        temperature_max=thigh,
        mosfet_temperature=mos,
        cell_voltage_min=vlow,
        cell_voltage_max=vhigh,
        temperature_states=(normal,) * 5,
        soc=soc,
        state="charge",
        voltage_state=normal,
        current_state=normal,
        temperature_state=normal,
    )


def test_pwr_rows_match_capture_byte_for_byte() -> None:
    """Header, a row with MosTempr, a row with '-' MosTempr and an Absent row equal CON-1."""
    row1 = _row_module(
        1, volt=49.905, curr=11.867, tempr=27.9, tlow=26.6, thigh=26.8,
        vlow=3.327, vhigh=3.327, soc=39.0, mos=27.5,
    )  # fmt: skip
    row3 = _row_module(
        3, volt=49.909, curr=5.080, tempr=33.0, tlow=30.0, thigh=30.0,
        vlow=3.326, vhigh=3.328, soc=35.0, mos=None,
    )  # fmt: skip
    assert render.pwr_header("B") == CON1_HEADER
    assert render.pwr_row(row1, datetime(2023, 9, 16, 11, 50, 32)) == CON1_ROW1
    assert render.pwr_row(row3, datetime(2023, 9, 16, 11, 50, 29)) == CON1_ROW3
    assert render.absent_row(5) == CON1_ABSENT5


def test_bat_and_soh_rows_match_capture() -> None:
    """`bat N` header/row and `soh N` lines equal CON-7 / CON-12."""
    cells = (3.331,) * 15
    module = Module(
        index=1,
        current=16.02,
        cell_voltages=cells,
        cell_temperatures=(27.5,) * 15,
        cell_voltage_states=(LimitState.NORMAL,) * 15,
        cells_balancing=(False,) * 15,
        soc=45.0,
        state="charge",
        current_state=LimitState.NORMAL,
        temperature_state=LimitState.NORMAL,
    )
    assert render.BAT_HEADER == CON7_HEADER
    assert render.bat_row(0, module, 44231) == CON7_ROW0
    bank = SimulatedBank(1, "US5000", seed=3)
    soh = render.render_soh(bank, 1)
    assert soh is not None
    assert soh[:2] == CON12[:2]
    assert len(soh) == 2 + 15
    assert all(len(line) == len(CON12[2]) for line in soh[2:])


def test_unknown_command_bytes_match_capture() -> None:
    """The unknown-command answer is exactly CON-18 (echo, endings, no success line)."""
    assert render.frame_unknown("totalcoul", "totalcoul", prompt="pylon_debug>") == CON18


def test_success_trailer_and_row_endings() -> None:
    """Rows end \\r\\r\\n; the trailer is \\r\\n\\rCommand completed successfully\\r\\n\\r$$."""
    raw = render.frame_response("pwr", ["a", "b"], prompt="pylon>")
    assert raw == (
        b"pwr\n\r@\r\r\na\r\r\nb\r\n\rCommand completed successfully\r\n\r$$\r\n\rpylon>"
    )
    responses = console.split_transcript(raw)
    assert [(r.command, r.lines, r.ok, r.prompt) for r in responses] == [
        ("pwr", ("a", "b"), True, "pylon>")
    ]


def test_pwr_detail_labels_and_widths_match_capture() -> None:
    """`pwr N` lines use the capture's label column, value width and separators (CON-5)."""
    bank = SimulatedBank(1, "US5000", seed=2)
    lines = render.render_pwr_detail(bank, 1)
    assert lines is not None
    assert lines[0] == lines[-1] == " ----------------------------"
    assert lines[1] == " Power  1"
    volt = round(bank.snapshot().modules[0].voltage * 1000)  # type: ignore[operator]
    assert lines[2] == f" Voltage         : {volt:<12}mV"
    assert " Total Coulomb   : 100000      mAH" in lines
    assert " Max Voltage     : 54000       mV" in lines
    assert " Heater Status   : OFF     " in lines
    assert " Bat Events      : 0x0        " in lines
    assert " Power Events    : 0x0        " in lines
    assert " System Fault    : 0x0        " in lines


def test_info_block_matches_capture_labels() -> None:
    """`info N` carries the capture's labels in order and parses back to the identity."""
    bank = SimulatedBank(["US5000", "US2000C"], seed=4)
    lines = render.render_info(bank, 2)
    assert lines is not None
    assert lines[:4] == [
        "Device address      : 2",
        "Manufacturer        : Pylon",
        "Device name         : US2000C",
        "Board version       : V10R04",
    ]
    assert "Max Dischg Curr     : -90000mA" in lines
    assert "Console Port rate   : 115200" in lines
    info = console.parse_info(lines)
    assert info.barcode == bank.serial(2)
    assert info.device_name == "US2000C"


def test_stat_lines_match_capture_format() -> None:
    """`stat N` uses `Label :  value` right-aligned in 9 like CON-13."""
    bank = SimulatedBank(1, "US5000", seed=2)
    lines = render.render_stat(bank, 1)
    assert lines is not None
    assert lines[0] == "Device address           1"
    assert lines[1] == "Data Items      :        1"
    assert any(line.startswith("CYCLE Times     :") for line in lines)
    stat = console.parse_stat(lines)
    assert stat.cycles == bank.snapshot().modules[0].cycles


def test_layouts_a_and_c_parse() -> None:
    """Layout A (US2000B, 8 slots) and C (with *.Id columns) parse with the console parser."""
    bank_a = SimulatedBank(3, "US2000B", seed=5)
    table_a = console.parse_pwr(render.render_pwr(bank_a))
    assert len(table_a.rows) == 8
    assert [r.absent for r in table_a.rows] == [False] * 3 + [True] * 5
    assert "MosTempr" not in table_a.columns
    bank_c = SimulatedBank(2, "US5000", seed=5)
    table_c = console.parse_pwr(render.render_pwr(bank_c, layout="C"))
    assert "Tlow.Id" in table_c.columns
    truth = bank_c.snapshot()
    for row, module in zip(table_c.rows, truth.modules, strict=False):
        assert row.voltage == module.voltage
        assert row.current == module.current
        assert row.cell_voltage_low == module.cell_voltage_min
