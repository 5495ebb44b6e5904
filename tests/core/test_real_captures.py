"""Real captures from other models and firmware versions, replayed through the codecs.

Every fixture under ``tests/core/captures/{console,rs485,can}/real/`` is device output
copied from a public source (listed in ``tests/core/captures/SOURCES.md``); the values
asserted here were read off the capture text by hand. Captures marked ``partial`` were
published cut short (an issue excerpt) and end without the ``$$`` trailer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custom_components.pylontech.core.capture import decode_capture
from custom_components.pylontech.core.errors import ProtocolError
from custom_components.pylontech.core.model import Bank, LimitState, Module, bank_to_dict
from custom_components.pylontech.core.protocol import can, console, rs485

CAPTURES = Path(__file__).parent / "captures"
REAL = {link: CAPTURES / link / "real" for link in ("console", "rs485", "can")}
SOURCES = CAPTURES / "SOURCES.md"


def text_of(link: str, name: str) -> str:
    """A fixture exactly as stored (no newline translation)."""
    with (REAL[link] / name).open(encoding="utf-8", newline="") as handle:
        return handle.read()


def decoded(link: str, name: str) -> tuple[Bank, tuple[str, ...]]:
    result = decode_capture(link, text_of(link, name))  # type: ignore[arg-type]
    return result.bank, result.errors


def module(bank: Bank, index: int) -> Module:
    found = bank.module(index)
    assert found is not None, f"module {index} missing"
    return found


def only_response(name: str) -> console.ConsoleResponse:
    (response,) = console.split_transcript(text_of("console", name))
    return response


def assert_cut_short(errors: tuple[str, ...]) -> None:
    """A partial capture decodes what it has and says the last response was cut short."""
    assert len(errors) == 1
    assert "incomplete" in errors[0]


def fixtures(link: str) -> list[str]:
    return sorted(path.name for path in REAL[link].iterdir() if path.suffix == ".txt")


# --------------------------------------------------------------------------- housekeeping


@pytest.mark.parametrize("link", ["console", "rs485", "can"])
def test_every_fixture_is_listed_in_sources(link: str) -> None:
    listed = SOURCES.read_text(encoding="utf-8")
    missing = [name for name in fixtures(link) if f"{link}/real/{name}" not in listed]
    assert missing == []
    assert len(fixtures(link)) >= 5


@pytest.mark.parametrize(
    ("link", "name"),
    [(link, name) for link in ("console", "rs485", "can") for name in fixtures(link)],
)
def test_every_fixture_decodes_to_json(link: str, name: str) -> None:
    result = decode_capture(link, text_of(link, name))  # type: ignore[arg-type]
    data = result.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert len(result.errors) < 20


@pytest.mark.parametrize("name", fixtures("console"))
def test_console_fixture_with_device_line_endings_decodes_the_same(name: str) -> None:
    """The stores dropped the CRs; the battery ends rows with CR CR LF."""
    text = text_of("console", name)
    raw = text.replace("\r", "").replace("\n", "\r\r\n")
    plain, raw_result = decode_capture("console", text), decode_capture("console", raw)
    assert bank_to_dict(raw_result.bank) == bank_to_dict(plain.bank)
    assert raw_result.errors == plain.errors


@pytest.mark.parametrize("name", fixtures("rs485"))
def test_rs485_fixture_as_one_cr_separated_stream_decodes_the_same(name: str) -> None:
    """A raw port dump has no LF: frames end with their EOI (CR) only."""
    text = text_of("rs485", name)
    stream = "\r".join(line.rstrip("\r") for line in text.splitlines()) + "\r"
    plain, raw = decode_capture("rs485", text), decode_capture("rs485", stream)
    assert bank_to_dict(raw.bank) == bank_to_dict(plain.bank)
    assert raw.errors == plain.errors


# --------------------------------------------------------------------------- console: Pytes


def test_pytes_ebox_pwr_layout_a_eight_slots() -> None:
    bank, errors = decoded("console", "pytes_ebox_pwr.txt")
    assert errors == ()
    assert len(bank.modules) == 8
    assert [m.index for m in bank.present_modules()] == [1, 2]
    first, second = module(bank, 1), module(bank, 2)
    assert first.voltage == pytest.approx(48.314)
    assert first.current == pytest.approx(0.0)
    assert first.temperature == pytest.approx(26.0)
    assert first.temperature_min == pytest.approx(25.0)
    assert first.cell_voltage_min == pytest.approx(3.214)
    assert first.cell_voltage_max == pytest.approx(3.225)
    assert first.soc == pytest.approx(77.0)
    assert first.state == "idle"
    assert first.mosfet_temperature is None  # layout A has no MosTempr column
    assert second.soc == pytest.approx(74.0)
    assert second.cell_voltage_max == pytest.approx(3.227)
    assert all(module(bank, i).state == "absent" for i in range(3, 9))
    assert module(bank, 5).voltage is None


def test_pytes_ebox_pwr1_real_coulomb() -> None:
    detail = console.parse_pwr_detail(only_response("pytes_ebox_pwr1.txt"))
    assert detail.index == 1
    assert detail.voltage == pytest.approx(48.328)
    assert detail.soc == pytest.approx(77.0)
    assert detail.total_capacity == pytest.approx(50.0)
    assert detail.real_capacity == pytest.approx(49.7)
    assert detail.charge_times == 32170
    assert detail.state == "Idle"
    assert detail.charge_seconds is None
    assert detail.discharge_seconds is None
    assert "PLT" in detail.protect_enabled
    assert "LCOUL" in detail.protect_enabled
    assert detail.system_fault is not None
    assert detail.system_fault.code == 0
    bank, errors = decoded("console", "pytes_ebox_pwr1.txt")
    assert errors == ()
    assert module(bank, 1).remaining_capacity == pytest.approx(38.5)


def test_pytes_ebox_bat1_coulomb_column_holds_soc_and_charge() -> None:
    cells = console.parse_bat(only_response("pytes_ebox_bat1.txt"))
    assert len(cells) == 15
    assert cells[0].voltage == pytest.approx(3.217)
    assert cells[0].soc == pytest.approx(77.0)
    assert cells[0].capacity == pytest.approx(38.286)
    assert cells[5].voltage == pytest.approx(3.225)
    assert cells[5].capacity == pytest.approx(40.534)
    assert cells[14].index == 14
    assert all(cell.balancing is None for cell in cells)  # no BAL column
    bank, errors = decoded("console", "pytes_ebox_bat1.txt")
    assert errors == ()
    assert len(module(bank, 1).cell_voltages) == 15
    assert module(bank, 1).cell_temperatures[0] == pytest.approx(25.0)


def test_pytes_ebox_info_and_stat() -> None:
    info = console.parse_info(only_response("pytes_ebox_info1.txt"))
    assert info.manufacturer == "PYTES"
    assert info.device_name == "E-BOX-4850P"
    assert info.main_soft_version == "SPBMS15SPH2111V1.3.19"
    assert info.barcode == "LBXXXXXXXXXXXXX4"
    assert info.cell_count == 15
    assert info.nominal_capacity == pytest.approx(50.0)
    assert info.max_discharge_current == pytest.approx(-102.0)
    assert info.epon_port_rate is None  # not printed by Pytes
    stat = console.parse_stat(only_response("pytes_ebox_stat1.txt"))
    assert stat.address == 1
    assert stat.cycles == 62
    assert stat.soh is None  # no SOH line on this firmware
    assert stat.counter("MiscData Items") == 249
    assert stat.counter("Bat OV Times") == 41
    assert stat.counter("LV Cnt") == 4184
    bank, errors = decoded("console", "pytes_ebox_stat1.txt")
    assert errors == ()
    assert module(bank, 1).cycles == 62


def test_pytes_v5_pwr_barcode_devtype_columns_and_blank_row() -> None:
    table = console.parse_pwr(only_response("pytes_v5_pwr.txt"))
    assert "Barcode" in table.columns
    assert "DevType" in table.columns
    assert len(table.rows) == 16
    bank, errors = decoded("console", "pytes_v5_pwr.txt")
    assert errors == ()
    first = module(bank, 1)
    assert first.voltage == pytest.approx(53.07)
    assert first.current == pytest.approx(-5.962)
    assert first.soc == pytest.approx(80.0)
    assert first.state == "discharge"
    assert first.serial_number == "Exxxxxxxxxxxxx43"
    assert first.model == "E-BOX-48100V-D"
    assert [m.index for m in bank.present_modules()] == [1]
    assert module(bank, 16).state == "absent"


def test_pytes_v5_pwr1_charge_in_milliamp_seconds() -> None:
    """`Total Coulomb : 360000000 mAS` is 100 Ah, not 360000 Ah."""
    detail = console.parse_pwr_detail(only_response("pytes_v5_pwr1.txt"))
    assert detail.voltage == pytest.approx(53.244)
    assert detail.temperature == pytest.approx(24.0)
    assert detail.soc == pytest.approx(73.0)
    assert detail.total_capacity == pytest.approx(100.0)
    assert detail.real_capacity == pytest.approx(100.0)
    assert detail.charge_times == 300
    assert detail.protect_enabled == ()  # split into `Bat/Pwr Protect ENA` here
    bank, errors = decoded("console", "pytes_v5_pwr1.txt")
    assert errors == ()
    master = module(bank, 1)
    assert master.full_capacity == pytest.approx(100.0)
    assert master.remaining_capacity == pytest.approx(73.0)
    assert master.state == "idle"
    assert master.serial_number == "ESxxxxxxxxxxx443"  # `Barcode` line of `pwr N`
    assert master.model == "E-BOX-48100V-D"
    # `info` (read first) keeps the identity; `pwr N` only fills what is missing
    both = text_of("console", "pytes_v5_info1.txt") + text_of("console", "pytes_v5_pwr1.txt")
    merged = module(decode_capture("console", both).bank, 1)
    assert merged.firmware == "SPBMS16SRP2304V1.10.7.1C"
    assert merged.serial_number == "ESxxxxxxxxxx443"
    assert merged.full_capacity == pytest.approx(100.0)


def test_pytes_v5_bat1_sixteen_cells_without_current_column() -> None:
    cells = console.parse_bat(only_response("pytes_v5_bat1.txt"))
    assert len(cells) == 16
    assert all(cell.current is None for cell in cells)
    assert cells[13].voltage == pytest.approx(3.306)
    assert cells[13].capacity == pytest.approx(36.863)
    assert cells[15].soc == pytest.approx(34.0)
    bank, errors = decoded("console", "pytes_v5_bat1.txt")
    assert errors == ()
    assert len(module(bank, 1).cell_voltages) == 16
    assert module(bank, 1).cell_voltage_min == pytest.approx(3.304)


def test_pytes_v5_info_extra_labels() -> None:
    info = console.parse_info(only_response("pytes_v5_info1.txt"))
    assert info.device_name == "E-BOX-48100V-D"
    assert info.cell_count == 16
    assert info.nominal_voltage == pytest.approx(51.2)
    assert info.nominal_capacity == pytest.approx(100.0)
    assert info.max_charge_current == pytest.approx(105.0)
    assert dict(info.extra)["Board FLASH Size"] == "256KB"
    bank, errors = decoded("console", "pytes_v5_info1.txt")
    assert errors == ()
    assert bank.model == "E-BOX-48100V-D"


def test_pytes_v5_soh_with_garbage_header_and_hex_status() -> None:
    report = console.parse_soh(only_response("pytes_v5_soh1_garbage_header.txt"))
    assert report.index == 1
    assert len(report.cells) == 16
    assert report.cells[15].voltage == pytest.approx(3.326)
    assert report.cells[0].soh_status == "00000000"
    assert report.cells[0].soh_count is None
    bank, errors = decoded("console", "pytes_v5_soh1_garbage_header.txt")
    assert errors == ()
    assert len(module(bank, 1).cell_voltages) == 16


def test_pytes_v5_refused_stat_is_an_error_not_data() -> None:
    response = only_response("pytes_v5_stat1_invalid.txt")
    assert response.ok is False
    assert response.failure is not None
    bank, errors = decoded("console", "pytes_v5_stat1_invalid.txt")
    assert len(errors) == 1
    assert "Invalid command" in errors[0]
    assert bank.modules == ()


def test_pytes_v5_time_pcf8563_and_paged_log() -> None:
    clock = console.parse_time(only_response("pytes_v5_time_pcf8563.txt"))
    assert clock.clock == "PCF8563"
    assert clock.time is not None
    assert (clock.time.year, clock.time.hour) == (2024, 23)
    response = only_response("pytes_v5_log_paged.txt")
    assert response.ok
    entries = console.parse_log(response)
    assert [entry.index for entry in entries] == list(range(29, -1, -1))
    assert entries[0].code == "12c"
    assert entries[0].info == "The device start charging."
    assert entries[-1].time is not None
    assert entries[-1].time.minute == 56
    assert decoded("console", "pytes_v5_log_paged.txt")[1] == ()


# --------------------------------------------------------------------------- console: Pylontech


def test_us5000_fw2_pwr_layout_c_with_ids() -> None:
    bank, errors = decoded("console", "us5000_fw2_pwr_layoutc_partial.txt")
    assert_cut_short(errors)
    assert [m.index for m in bank.present_modules()] == [1, 2, 3, 4]
    first = module(bank, 1)
    assert first.voltage == pytest.approx(49.124)
    assert first.current == pytest.approx(-1.55)
    assert first.temperature_min == pytest.approx(23.8)
    assert first.temperature_max == pytest.approx(24.6)
    assert first.cell_voltage_min == pytest.approx(3.274)
    assert first.cell_voltage_max == pytest.approx(3.275)
    assert first.mosfet_temperature == pytest.approx(26.2)
    assert first.soc == pytest.approx(57.0)
    assert dict(first.extra)["cell_voltage_low_id"] == "9"
    assert module(bank, 4).soc == pytest.approx(60.0)
    assert module(bank, 5).state == "absent"
    assert module(bank, 6).state == "absent"
    row = console.parse_pwr(only_response("us5000_fw2_pwr_layoutc_partial.txt")).rows[1]
    assert (row.temperature_low_id, row.temperature_high_id) == (8, 0)
    assert (row.cell_voltage_low_id, row.cell_voltage_high_id) == (0, 1)


def test_us5000_fw2_pwr_layout_c_blank_lines_between_rows() -> None:
    bank, errors = decoded("console", "us5000_fw2_pwr_layoutc_blanklines_partial.txt")
    assert_cut_short(errors)
    assert [m.index for m in bank.present_modules()] == [1, 2, 3]
    assert module(bank, 3).voltage == pytest.approx(49.087)
    assert module(bank, 3).cell_voltage_min == pytest.approx(3.271)
    assert module(bank, 3).mosfet_temperature == pytest.approx(17.0)
    # the capture ends inside row 4 (no newline): that row may be cut, so it is not used
    assert bank.module(4) is None
    row4 = console.parse_pwr(only_response("us5000_fw2_pwr_layoutc_blanklines_partial.txt")).rows[3]
    assert row4.absent


def test_us5000_fw2_pwr_current_touching_next_column() -> None:
    """`-33847 17300`: a six-character current leaves one space to the next column."""
    bank, errors = decoded("console", "us5000_fw2_pwr_layoutc_bigcurrent_partial.txt")
    assert_cut_short(errors)
    assert module(bank, 1).current == pytest.approx(-33.847)
    assert module(bank, 1).temperature == pytest.approx(17.3)
    assert module(bank, 1).soc == pytest.approx(89.0)
    assert module(bank, 2).current == pytest.approx(-22.701)
    assert bank.current == pytest.approx(-56.55, abs=0.01)


def test_us5000_fw2_stat_blank_lines() -> None:
    stat = console.parse_stat(only_response("us5000_fw2_stat1_blanklines_partial.txt"))
    assert stat.address == 1
    assert stat.counter("Discharge Cnt.") == 364
    assert stat.counter("Pwr OV Times") == 54
    assert stat.counter("Shut Times") == 7
    assert stat.cycles is None  # cut before CYCLE Times


def test_us3000c_pwr1_74ah() -> None:
    bank, errors = decoded("console", "us3000c_pwr1.txt")
    assert errors == ()
    master = module(bank, 1)
    assert master.voltage == pytest.approx(49.578)
    assert master.temperature == pytest.approx(19.0)
    assert master.soc == pytest.approx(56.0)
    assert master.full_capacity == pytest.approx(74.0)
    assert master.remaining_capacity == pytest.approx(41.44)
    assert master.state == "idle"
    assert master.extra
    assert dict(master.extra)["charge_times"] == "5908"


def test_us3000c_bat1_cold_partial() -> None:
    cells = console.parse_bat(only_response("us3000c_bat1_cold_partial.txt"))
    assert len(cells) == 10
    bank, errors = decoded("console", "us3000c_bat1_cold_partial.txt")
    assert_cut_short(errors)
    assert len(module(bank, 1).cell_voltages) == 10
    assert cells[3].voltage == pytest.approx(3.273)
    assert cells[0].current == pytest.approx(0.314)
    assert cells[5].temperature == pytest.approx(14.3)
    assert cells[0].capacity == pytest.approx(17.903)
    assert cells[0].balancing is False


def test_us3000d_pwr1_new_status_lines_partial() -> None:
    response = only_response("us3000d_pwr1_partial.txt")
    assert response.command == "pwr 1"  # the echo is printed twice on this firmware
    detail = console.parse_pwr_detail(response)
    assert detail.voltage == pytest.approx(49.726)
    assert detail.current == pytest.approx(-3.361)
    assert detail.max_voltage == pytest.approx(57.6)
    assert detail.state == "Dischg"
    assert detail.discharge_seconds == 0
    assert dict(detail.extra)["Bat Volt Status"].startswith("0x4")
    bank, errors = decoded("console", "us3000d_pwr1_partial.txt")
    assert_cut_short(errors)
    assert module(bank, 1).full_capacity == pytest.approx(74.0)
    assert module(bank, 1).soc == pytest.approx(91.0)


def test_us3000d_bat1_split_temperature_states_and_detached_unit() -> None:
    cells = console.parse_bat(only_response("us3000d_bat1_partial.txt"))
    assert len(cells) == 7
    bank, errors = decoded("console", "us3000d_bat1_partial.txt")
    assert_cut_short(errors)
    assert module(bank, 1).cell_temperatures[5] == pytest.approx(22.7)
    assert cells[0].voltage == pytest.approx(3.323)
    assert cells[0].current == pytest.approx(-0.856)
    assert cells[1].current == pytest.approx(-0.835)
    assert cells[5].temperature == pytest.approx(22.7)
    assert cells[0].soc == pytest.approx(92.0)
    assert cells[0].capacity == pytest.approx(68.7)
    assert cells[0].balancing is False
    assert dict(cells[0].extra)["DTemp. State"] == "Normal"


def test_us2000c_b67_pwr2_full() -> None:
    detail = console.parse_pwr_detail(only_response("us2000c_b67_pwr2_coulfull.txt"))
    assert detail.power_events is not None
    assert detail.power_events.code == 0x2000
    assert detail.power_events.names == ("COULFULL",)
    assert detail.coulomb_state == "Full"
    bank, errors = decoded("console", "us2000c_b67_pwr2_coulfull.txt")
    assert errors == ()
    second = module(bank, 2)
    assert second.soc == pytest.approx(100.0)
    assert second.fully_charged is True
    assert second.current == pytest.approx(0.08)
    assert bank.module(1) is None


def test_us2000c_b67_pwrsys_system_limits() -> None:
    record = console.parse_pwrsys(only_response("us2000c_b67_pwrsys.txt"))
    assert record.status == "discharging"
    assert (record.total_count, record.present_count, record.sleep_count) == (5, 5, 0)
    bank, errors = decoded("console", "us2000c_b67_pwrsys.txt")
    assert errors == ()
    assert bank.voltage == pytest.approx(49.777)
    assert bank.current == pytest.approx(-11.164)
    assert bank.soc == pytest.approx(93.0)
    assert bank.soh == pytest.approx(94.0)
    assert bank.full_capacity == pytest.approx(233.85)
    # the `system Recommend` lines (whole stack), not the per-module ones
    assert bank.charge_current_limit == pytest.approx(50.0)
    assert bank.discharge_current_limit == pytest.approx(125.0)
    assert bank.charge_voltage_limit == pytest.approx(53.25)
    assert bank.discharge_voltage_limit == pytest.approx(46.0)
    assert bank.cell_voltage_max == pytest.approx(3.322)


def test_us2000c_b67_bat1_getpwr_ci_info() -> None:
    cells = console.parse_bat(only_response("us2000c_b67_bat1.txt"))
    assert len(cells) == 15
    assert cells[4].voltage == pytest.approx(3.315)
    assert cells[10].capacity == pytest.approx(44.606)
    assert cells[0].current == pytest.approx(-2.964)
    record = console.parse_getpwr(only_response("us2000c_b67_getpwr.txt"))
    assert record.voltage == pytest.approx(49.768)
    assert record.current == pytest.approx(-2.632)
    assert record.remaining_capacity == pytest.approx(43.259)
    assert len(record.cells) == 15
    assert record.cells[5].temperature == pytest.approx(26.5)
    assert record.cycles == 666
    ci = console.parse_ci(only_response("us2000c_b67_ci.txt"))
    assert ci.counter("US1 Rx") == 48830643
    assert ci.counter("CAN Tx") == 73249320
    assert ci.counter("Exist Pack Num") == 5
    info = console.parse_info(only_response("us2000c_b67_info_redacted.txt"))
    assert info.board is None  # no `Board` line on B67.5.0
    assert info.main_soft_version == "B67.5.0"
    assert info.max_charge_current == pytest.approx(90.0)
    for name in ("us2000c_b67_getpwr.txt", "us2000c_b67_ci.txt", "us2000c_b67_info_redacted.txt"):
        assert decoded("console", name)[1] == ()


def test_us2000c_pwr2_doubled_blank_lines() -> None:
    bank, errors = decoded("console", "us2000c_pwr2_blanklines.txt")
    assert errors == ()
    second = module(bank, 2)
    assert second.voltage == pytest.approx(49.928)
    assert second.current == pytest.approx(6.934)
    assert second.temperature == pytest.approx(32.1)
    assert second.soc == pytest.approx(43.0)
    assert second.state == "charge"


def test_us2kbpl_whole_degree_temperatures_and_no_soh_line() -> None:
    bank, errors = decoded("console", "us2kbpl_bat3.txt")
    assert errors == ()
    third = module(bank, 3)
    assert third.cell_voltages[10] == pytest.approx(3.328)
    assert set(third.cell_temperatures) == {30.0}
    assert third.cells_balancing == (False,) * 15
    stat = console.parse_stat(only_response("us2kbpl_stat3_blanklines.txt"))
    assert stat.address == 3
    assert stat.soh is None
    assert stat.cycles == 685
    assert stat.counter("Pwr HV Times") == 42
    detail = console.parse_pwr_detail(only_response("us2kbpl_pwr3.txt"))
    assert (detail.index, detail.voltage, detail.soc) == (3, pytest.approx(49.905), 35.0)
    report = console.parse_soh(only_response("us2kbpl_soh4_blanklines.txt"))
    assert report.index == 4
    assert len(report.cells) == 15
    assert report.cells[9].voltage == pytest.approx(3.333)
    info = console.parse_info(only_response("us2kbpl_info4_blanklines.txt"))
    assert info.address == 4
    assert info.board_version == "PHANTOMSAV10R03"
    assert info.max_charge_current == pytest.approx(102.0)
    for name in ("us2kbpl_stat3_blanklines.txt", "us2kbpl_pwr3.txt", "us2kbpl_soh4_blanklines.txt"):
        assert decoded("console", name)[1] == ()
    bank, errors = decoded("console", "us2kbpl_info4_blanklines.txt")
    assert errors == ()
    assert module(bank, 4).serial_number == "Pxxxxxxxxxxxxxx7"


def test_high_voltage_pwr_is_reported_not_misread() -> None:
    """A Force-H2 (HV) `pwr` whose `@` is line noise: no LV values, one error."""
    bank, errors = decoded("console", "force_h2_hv_pwr.txt")
    assert bank.modules == ()
    assert len(errors) == 1
    assert "'@'" in errors[0]


# --------------------------------------------------------------------------- RS485


def test_rs485_us5000_six_temperatures_full() -> None:
    bank, errors = decoded("rs485", "us5000_42_full.txt")
    assert errors == ()
    master = module(bank, 1)
    assert len(master.cell_voltages) == 15
    assert master.cell_voltages[0] == pytest.approx(3.434)
    assert master.cell_voltages[8] == pytest.approx(3.463)
    assert len(master.temperatures) == 6
    assert master.temperature == pytest.approx(34.0)  # 0x0BFF
    assert master.mosfet_temperature == pytest.approx(29.2)  # 6th sensor 0x0BCF
    assert master.voltage == pytest.approx(51.849)
    assert master.current == pytest.approx(0.0)
    assert master.remaining_capacity == pytest.approx(100.0)
    assert master.full_capacity == pytest.approx(100.0)
    assert master.soc == pytest.approx(100.0)
    assert master.cycles == 0


def test_rs485_mixed_us3000_us2000_plus_stack() -> None:
    bank, errors = decoded("rs485", "us3000plus_us2000plus_42_two_modules.txt")
    assert errors == ()
    assert bank.module_count == 2
    us3000, us2000 = module(bank, 1), module(bank, 2)
    assert us3000.current == pytest.approx(-6.1)
    assert us3000.voltage == pytest.approx(49.149)
    assert us3000.cycles == 564
    assert us3000.full_capacity == pytest.approx(74.0)
    assert us3000.remaining_capacity == pytest.approx(32.56)
    # the US2000 behind a US3000 master sends user-defined 4 too, with 50 Ah
    assert us2000.full_capacity == pytest.approx(50.0)
    assert us2000.remaining_capacity == pytest.approx(24.5)
    assert us2000.cycles == 658
    assert us2000.temperatures[0] == pytest.approx(32.0)
    assert bank.full_capacity == pytest.approx(124.0)


def test_rs485_us3000_frames_from_two_sites() -> None:
    bank, errors = decoded("rs485", "us3000_42_charging.txt")
    assert errors == ()
    assert module(bank, 1).current == pytest.approx(0.4)
    assert module(bank, 1).voltage == pytest.approx(49.465)
    assert module(bank, 1).remaining_capacity == pytest.approx(28.86)
    bank, errors = decoded("rs485", "us3000_42_discharging.txt")
    assert errors == ()
    assert module(bank, 1).current == pytest.approx(-3.2)
    assert module(bank, 1).temperatures == pytest.approx((14.0, 12.0, 12.0, 13.0, 13.0))
    assert module(bank, 1).cycles == 27


def test_rs485_us3000c_issue_frames_in_python_repr() -> None:
    entries = list(rs485.iter_capture(text_of("rs485", "us3000c_42_47_issue42.txt")))
    assert [entry.kind for entry in entries] == ["response", "response"]
    params = entries[1].response
    assert isinstance(params, rs485.SystemParametersResponse)
    assert params.info_flag == 0x11
    assert params.cell_high_voltage == pytest.approx(3.65)
    assert params.charge_high_temperature == pytest.approx(60.0)
    assert params.discharge_current_limit == pytest.approx(-90.0)
    bank, errors = decoded("rs485", "us3000c_42_47_issue42.txt")
    assert errors == ()
    assert module(bank, 1).voltage == pytest.approx(49.394)
    assert module(bank, 1).soc == pytest.approx(49.0)


def test_rs485_us2000c_system_parameters_alone() -> None:
    (entry,) = rs485.iter_capture(text_of("rs485", "us2000c_47.txt"))
    params = entry.response
    assert isinstance(params, rs485.SystemParametersResponse)
    assert params.module_under_voltage == pytest.approx(43.5)
    assert params.charge_low_temperature == pytest.approx(-10.0)
    assert params.charge_current_limit == pytest.approx(90.0)
    assert decoded("rs485", "us2000c_47.txt")[1] == ()


def test_rs485_martiby_session_two_addresses() -> None:
    bank, errors = decoded("rs485", "martiby_us2000c_session.txt")
    assert errors == ()
    master, slave = module(bank, 1), module(bank, 2)
    assert master.voltage == pytest.approx(48.39)
    assert master.current == pytest.approx(0.0)
    assert master.temperatures[0] == pytest.approx(20.1)
    assert master.remaining_capacity == pytest.approx(6.415)
    assert master.cycles == 132
    assert master.serial_number == "HPTCR03171112590"
    assert slave.serial_number == "HPTBH02240A01235"
    assert slave.voltage is None  # no 0x42 for ADR 3 in this session
    assert master.charge_mosfet is True
    assert master.discharge_mosfet is True
    assert bank.model == "US2000C"


def test_rs485_us3000c_canned_answers_without_requests() -> None:
    entries = list(rs485.iter_capture(text_of("rs485", "zivillian_us3000c_canned.txt")))
    assert [entry.kind for entry in entries] == ["response"] * 8
    assert all(entry.inferred for entry in entries)
    bank, errors = decoded("rs485", "zivillian_us3000c_canned.txt")
    assert errors == ()
    master = module(bank, 1)
    assert master.serial_number == "H222003C32220459"
    assert master.voltage == pytest.approx(50.087)
    assert master.current == pytest.approx(2.3)
    assert master.remaining_capacity == pytest.approx(50.068)
    assert master.cycles == 55
    assert bank.model == "US3000C"
    assert bank.charge_voltage_limit == pytest.approx(53.25)
    assert bank.discharge_voltage_limit == pytest.approx(45.0)
    assert bank.charge_current_limit == pytest.approx(37.0)
    assert bank.discharge_current_limit == pytest.approx(37.0)
    assert bank.protocol_version == "2.0"


def test_rs485_seplos_lookalike_is_refused() -> None:
    """Seplos V2 answers with VER 0x20 / CID1 0x46 but 10 mV / 10 mA fields."""
    bank, errors = decoded("rs485", "seplos_v2_lookalike.txt")
    assert bank.modules == ()
    assert len(errors) == 4
    assert "CHKSUM" in errors[1]
    # Even answering a real 0x42 request, its 0x0A user-defined count is refused.
    text = "~20034642E00203FD31\n" + text_of("rs485", "seplos_v2_lookalike.txt").splitlines()[0]
    result = decode_capture("rs485", text)
    assert result.bank.modules == ()
    assert len(result.errors) == 1
    assert "user-defined" in result.errors[0]


# --------------------------------------------------------------------------- CAN


def test_can_us5000_stack_candump_indented() -> None:
    bank, errors = decoded("can", "us5000x4_candump_default.txt")
    assert errors == ()
    assert bank.module_count == 4
    assert bank.charge_voltage_limit == pytest.approx(53.2)
    assert bank.charge_current_limit == pytest.approx(120.0)
    assert bank.discharge_current_limit == pytest.approx(160.0)
    assert bank.discharge_voltage_limit == pytest.approx(45.0)
    assert bank.soc == pytest.approx(90.0)
    assert bank.soh == pytest.approx(100.0)
    assert bank.voltage == pytest.approx(49.96)
    assert bank.current == pytest.approx(-1.5)
    assert bank.temperature == pytest.approx(5.5)
    assert bank.manufacturer == "PYLON"
    assert bank.protections == frozenset()
    assert bank.alarms == frozenset()


def test_can_limits_frame_of_six_bytes() -> None:
    bank, errors = decoded("can", "plonkster_can1_dlc6_limits.txt")
    assert errors == ()
    assert bank.charge_voltage_limit == pytest.approx(53.2)
    assert bank.charge_current_limit == pytest.approx(59.2)
    assert bank.discharge_current_limit == pytest.approx(148.0)
    assert bank.discharge_voltage_limit is None  # DLC 6: not sent
    assert bank.voltage == pytest.approx(49.83)
    assert bank.current == pytest.approx(-34.3)
    assert bank.temperature == pytest.approx(26.7)
    assert (bank.soc, bank.soh) == (pytest.approx(95.0), pytest.approx(99.0))
    assert bank.module_count == 4


def test_can_serial_monitor_old_firmware() -> None:
    record = can.parse_candump_line(
        text_of("can", "setfire_us5000_old_fw_monitor.txt").splitlines()[0]
    )
    assert record is not None
    assert (record.can_id, record.data) == (0x351, bytes.fromhex("1402C012C012C201"))
    bank, errors = decoded("can", "setfire_us5000_old_fw_monitor.txt")
    assert errors == ()
    assert bank.module_count == 6
    assert bank.voltage == pytest.approx(49.86)
    assert bank.current == pytest.approx(-27.0)
    assert bank.soc == pytest.approx(88.0)
    assert bank.charge_enabled is True
    assert bank.discharge_enabled is True


def test_can_serial_monitor_new_firmware_frame_set() -> None:
    result = can.decode_capture(text_of("can", "setfire_us5000_new_fw_monitor.txt"))
    assert result.errors == ()
    assert result.firmware == "v1.3"
    assert result.frames == 6
    assert result.unknown_frames == 0
    bank = result.bank
    assert bank.charge_voltage_limit == pytest.approx(52.8)
    assert bank.soc == pytest.approx(84.0)
    assert bank.soh == pytest.approx(96.0)
    assert bank.voltage == pytest.approx(49.87)
    assert bank.current == pytest.approx(-27.9)
    assert bank.temperature == pytest.approx(36.3)
    assert bank.full_capacity == pytest.approx(572.0)
    assert bank.module_count is None  # 0x359 is gone on this firmware
    assert bank.charge_enabled is None  # and so is 0x35C
    assert bank.protections == frozenset()
    assert bank.alarms == frozenset()


def test_can_blog_listing_with_dashes() -> None:
    bank, errors = decoded("can", "setfire_us2000_replication.txt")
    assert errors == ()
    assert bank.module_count == 10
    assert bank.charge_current_limit == pytest.approx(370.0)
    assert bank.discharge_voltage_limit == pytest.approx(46.0)
    assert bank.soc == pytest.approx(26.0)
    assert bank.voltage == pytest.approx(49.42)
    # the same listing as scripts/decode reads it (latin-1: the dash is three characters)
    mangled = text_of("can", "setfire_us2000_replication.txt").encode().decode("latin-1")
    assert decode_capture("can", mangled).errors == ()


def test_can_serial_monitor_needs_an_id_marker() -> None:
    with pytest.raises(ProtocolError):
        can.parse_candump_line("12 34 56")
    with pytest.raises(ProtocolError):
        can.parse_candump_line("ID: 351 Buffer: 14 2 C0 12 C0 12 C2 1 0 0")  # 10 bytes
    with pytest.raises(ProtocolError):
        can.parse_candump_line("ID: 3FFFFFFF Buffer: 00")  # above 29 bits
    record = can.parse_candump_line("0x35C: C0 0")
    assert record is not None
    assert record.data == b"\xc0\x00"
    # zero-padded ids are still standard frames; only the value makes one extended
    padded = can.parse_candump_line("0x0351 - 14 02 FA 00 FA 00 BD 01")
    assert padded is not None
    assert (padded.can_id, padded.extended) == (0x351, False)
    wide = can.parse_candump_line("ID: 951 Buffer: 00")
    assert wide is not None
    assert wide.extended


def test_limit_state_words_survive() -> None:
    """States read from the real captures map onto the model's vocabulary."""
    bank, _ = decoded("console", "us5000_fw2_pwr_layoutc_partial.txt")
    assert module(bank, 1).voltage_state is LimitState.NORMAL


def test_can_non_pylontech_bms_on_a_victron_bus() -> None:
    """A SmartBMS dump from Venus OS: shell lines are errors, Victron-only ids are counted."""
    result = can.decode_capture(text_of("can", "venus_smartbms_lookalike_candump.txt"))
    assert [error.line_number for error in result.errors] == [1, 15]
    assert result.unknown_frames >= 7  # 0x305 keep-alive aside: 0x307, 0x370..0x376
    bank = result.bank
    assert bank.manufacturer == "SHEnergy"
    assert bank.charge_voltage_limit == pytest.approx(57.9)
    assert bank.charge_current_limit == pytest.approx(100.0)
    assert bank.discharge_current_limit == pytest.approx(195.0)
    assert bank.discharge_voltage_limit == pytest.approx(46.4)
    assert (bank.soc, bank.soh) == (pytest.approx(60.0), pytest.approx(100.0))
    assert bank.voltage == pytest.approx(52.17)
    assert bank.current == pytest.approx(-30.1)
    assert bank.temperature == pytest.approx(23.5)
    assert bank.module_count is None


def test_transcript_starting_and_ending_inside_responses() -> None:
    """Tail of `info` (US5000, new `Customer Ver.ID`), whole `info 3`, `info 4` cut mid-line."""
    name = "mixed_us5000_us2000c_info_sequence_partial.txt"
    responses = console.split_transcript(text_of("console", name))
    assert [r.command for r in responses] == ["info 3", "info 4"]
    assert [r.ok for r in responses] == [True, False]
    info3 = console.parse_info(responses[0])
    assert info3.board == "NF4.E2"
    assert info3.main_soft_version == "B69.9.0.0"
    assert info3.epon_port_rate == 1200
    bank, errors = decoded("console", name)
    assert len(errors) == 2
    assert "without a '@' start" in errors[0]
    assert "incomplete" in errors[1]
    assert module(bank, 3).serial_number == "H21C022Exxxxxxx"
    assert module(bank, 4).firmware == "B68.1.0.0"
    assert module(bank, 4).model == "US2000C"
    assert bank.module(1) is None  # the US5000 tail has no echo: not attributed


def test_rs485_us5000_management_full_battery() -> None:
    bank, errors = decoded("rs485", "us5000_92_full_charge_disabled.txt")
    assert errors == ()
    assert bank.charge_voltage_limit == pytest.approx(53.25)
    assert bank.discharge_voltage_limit == pytest.approx(45.0)
    assert bank.charge_current_limit == pytest.approx(0.0)
    assert bank.discharge_current_limit == pytest.approx(80.0)  # sent as -80.0 A
    assert bank.charge_enabled is False
    assert bank.discharge_enabled is True
    assert bank.force_charge_1 is False


def test_esphome_sample_rows_layout_b_and_c() -> None:
    """Rows pasted in ESPHome's parser: SysError/Low states, no MosTempr, a squeezed header."""
    (row,) = console.parse_pwr(text_of("console", "esphome_pwr_rows_layout_b.txt")).rows
    assert (row.voltage, row.current, row.soc) == (50.548, 8.91, 97.0)
    assert row.mosfet_temperature == pytest.approx(22.7)
    (row,) = console.parse_pwr(text_of("console", "esphome_pwr_row_syserror_low.txt")).rows
    assert row.state == "SysError"
    assert row.voltage_state == "Low"
    assert row.cell_voltage_state == "Low"
    assert row.temperature == pytest.approx(9.1)
    assert row.soc == pytest.approx(4.0)
    (low,) = console.modules_from_pwr(
        console.parse_pwr(text_of("console", "esphome_pwr_row_syserror_low.txt"))
    )
    assert low.state == "error"
    assert low.voltage_state is LimitState.LOW
    (row,) = console.parse_pwr(text_of("console", "esphome_pwr_row_no_mostempr.txt")).rows
    assert row.mosfet_temperature is None
    assert row.mosfet_temperature_state is None
    assert row.cell_voltage_high == pytest.approx(3.325)
    # header squeezed to single spaces: values no longer sit under their column names
    (row,) = console.parse_pwr(text_of("console", "esphome_pwr_row_layout_c_squeezed.txt")).rows
    assert (row.voltage, row.current, row.temperature) == (49.405, 0.0, 17.6)
    assert (row.temperature_low, row.temperature_low_id) == (13.7, 8)
    assert (row.temperature_high, row.temperature_high_id) == (14.5, 0)
    assert (row.cell_voltage_low, row.cell_voltage_low_id) == (3.293, 2)
    assert (row.cell_voltage_high, row.cell_voltage_high_id) == (3.294, 0)
    assert row.state == "Idle"
    assert row.soc == pytest.approx(60.0)
    assert row.mosfet_temperature == pytest.approx(16.6)
    assert row.system_alarm_state == "Normal"
    # without its echo and `@` line a pasted table cannot be placed: said, not dropped
    result = decode_capture("console", text_of("console", "esphome_pwr_rows_layout_b.txt"))
    assert result.bank.modules == ()
    assert len(result.errors) == 1
    assert "no console response" in result.errors[0]
