"""RS485 codec: supported counts, implausible 0x44 records, per-module 0x92, 0x61."""

from __future__ import annotations

import struct

import pytest

from custom_components.pylontech.core import bounds
from custom_components.pylontech.core.bounds import CountBoundError, InvalidGroupError
from custom_components.pylontech.core.errors import (
    ImplausibleValueError,
    ProtocolError,
    PylontechError,
    ResponseError,
)
from custom_components.pylontech.core.model import LimitState
from custom_components.pylontech.core.protocol import rs485
from custom_components.pylontech.core.protocol.rs485 import Command, decode_frame

# -- counts ---------------------------------------------------------------------------


def _analog_frame(cells: int, temperatures: int, adr: int = 2) -> bytes:
    info = (
        bytes((0x11, adr, cells))
        + struct.pack(f">{cells}H", *([3300] * cells))
        + bytes((temperatures,))
        + struct.pack(f">{temperatures}H", *([2981] * temperatures))
        + struct.pack(">hHHBHH", -26, 49545, 33500, 2, 50000, 31)
    )
    return rs485.encode_frame(0x20, adr, 0x46, 0, info)


def test_the_largest_supported_module_decodes() -> None:
    record = rs485.decode_analog(decode_frame(_analog_frame(16, 6))).records[0]
    assert len(record.cell_voltages) == bounds.MAX_CELLS_PER_MODULE == 16
    assert len(record.temperatures) == bounds.MAX_TEMPERATURES_PER_MODULE == 6


@pytest.mark.parametrize(("cells", "temperatures", "what"), [(200, 100, "200 cells"), (17, 5, "17 cells"), (15, 7, "7 temperatures")])  # fmt: skip
def test_counts_beyond_any_supported_module_are_a_protocol_error(
    cells: int, temperatures: int, what: str
) -> None:
    """A checksum-valid 0x42 cannot decide how many entities exist (defect 8)."""
    frame = decode_frame(_analog_frame(cells, temperatures))
    with pytest.raises(CountBoundError, match=what) as info:
        rs485.decode_analog(frame, all_modules=False)
    assert isinstance(info.value, ProtocolError)


def test_an_all_modules_answer_counting_more_modules_than_a_group_holds() -> None:
    one = rs485.parse_frame(_analog_frame(15, 5)).info[2:]
    info = bytes((0x11, 17)) + one * 17
    frame = decode_frame(rs485.encode_frame(0x20, 2, 0x46, 0, info))
    with pytest.raises(CountBoundError, match="17 modules"):
        rs485.decode_analog(frame, all_modules=True)
    alarm = bytes((0x10, 255)) + bytes((15, *[0] * 15, 5, *[0] * 5, 0, 0, 0, 0, 0x0E, 0, 0, 0))
    with pytest.raises(CountBoundError, match="255 modules"):
        rs485.decode_alarm(decode_frame(rs485.encode_frame(0x20, 2, 0x46, 0, alarm)), all_modules=True)  # fmt: skip


def test_alarm_cell_and_temperature_counts_are_bounded() -> None:
    info = bytes((0x10, 2, 40, *[0] * 40, 5, *[0] * 5, 0, 0, 0, 0, 0x0E, 0, 0, 0))
    with pytest.raises(CountBoundError, match="40 cells"):
        rs485.decode_alarm(decode_frame(rs485.encode_frame(0x20, 2, 0x46, 0, info)))


# -- groups ---------------------------------------------------------------------------


def test_allowed_groups_are_one_fact() -> None:
    assert list(bounds.RS485_GROUPS) == list(range(8))  # DIP 2-4: three bits
    assert rs485.MAX_GROUP == bounds.MAX_RS485_GROUP == 7
    assert rs485.address(1, 7) == 0x72
    assert rs485.module_position(0x72) == (1, 7)
    for group in (8, 9, 15, -1, True, 1.0, "1"):
        assert not bounds.is_valid_group(group)
        with pytest.raises(InvalidGroupError) as info:
            rs485.address(1, group)  # type: ignore[arg-type]
        assert isinstance(info.value, PylontechError)
        assert isinstance(info.value, ValueError)
        assert "0 to 7" in str(info.value)


# -- implausible 0x44 ------------------------------------------------------------------


def _alarm(**status: int) -> bytes:
    record = rs485.AlarmRecord(
        cell_states=(LimitState.NORMAL,) * 15,
        temperature_states=(LimitState.NORMAL,) * 5,
        **{"status2": 0x0E, **status},
    )
    return rs485.encode_alarm_response(2, [record], all_modules=False)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ({"status1": 0xFF, "status2": 0xFF, "status3": 0xFF, "status4": 0xFF, "status5": 0xFF}, "reserved"),
        ({"status1": 0x08}, "reserved bit 3"),
        ({"status1": 0x81}, "under- and over-voltage"),
        ({"status2": 0x1E}, "Status 2"),
        ({"status3": 0x10}, "Status 3"),
        ({"status3": 0xC0}, "charging and discharging"),
        ({"status5": 0x80}, "beyond the record's 15 cells"),
    ],
)  # fmt: skip
def test_status_bytes_no_bms_sends_are_not_decoded(status: dict[str, int], reason: str) -> None:
    """Defect 9: Status 0xFF would light every protection; such a record is refused."""
    with pytest.raises(ImplausibleValueError, match=reason):
        rs485.decode_alarm(decode_frame(_alarm(**status)))


def test_every_documented_status_bit_still_decodes() -> None:
    # All protections a module can have at once (UV and OV exclude each other), a charging
    # module with the MOSFETs on, fully charged, buzzer, cell 15 in error.
    (record,) = rs485.decode_alarm(
        decode_frame(_alarm(status1=0xF6, status2=0x0F, status3=0xA9, status5=0x40))
    ).records
    assert len(record.status_protections) == 6
    assert record.cell_errors == (15,)


# -- 0x92 per module -------------------------------------------------------------------


def _management(adr: int, ccl: float, dcl: float, cvl: float = 53.2, dvl: float = 45.0, **flags: bool) -> rs485.ManagementInfoResponse:  # fmt: skip
    raw = rs485.encode_management_info_response(
        adr,
        charge_voltage_limit=cvl,
        discharge_voltage_limit=dvl,
        charge_current_limit=ccl,
        discharge_current_limit=-dcl,
        status=rs485.management_status(**flags),
    )
    answer = rs485.decode_management_info(decode_frame(raw))
    assert isinstance(answer, rs485.ManagementInfoResponse)
    return answer


def test_bank_limits_are_derived_from_every_module() -> None:
    answers = {1: _management(2, 37, 37), 2: _management(3, 37, 30, cvl=53.0), 3: _management(4, 25, 37, dvl=46.0)}  # fmt: skip
    limits = rs485.bank_limits_from_modules(answers, [1, 2, 3])
    assert limits["charge_current_limit"] == 99.0
    assert limits["discharge_current_limit"] == 104.0
    assert limits["charge_voltage_limit"] == 53.0  # the lowest
    assert limits["discharge_voltage_limit"] == 46.0  # the highest
    assert limits["charge_enabled"] is limits["discharge_enabled"] is True
    # One module unanswered: the bank's limits are unknown, never a partial sum.
    assert rs485.bank_limits_from_modules(answers, [1, 2, 3, 4]) == {}
    # One module asking to stop charging stops the bank's charging.
    answers[2] = _management(3, 0, 37, charge_enabled=False)
    stopped = rs485.bank_limits_from_modules(answers, [1, 2, 3])
    assert (stopped["charge_current_limit"], stopped["charge_enabled"]) == (0.0, False)
    assert stopped["discharge_current_limit"] == 111.0


def test_bank_from_responses_puts_each_0x92_on_its_module() -> None:
    responses: list[rs485.Response] = []
    for adr in (2, 3, 4):
        responses.append(
            rs485.decode_response(
                Command.GET_ANALOG_VALUES, _analog_frame(15, 5, adr), all_modules=False
            )
        )
        responses.append(_management(adr, 37, 37))
    bank = rs485.bank_from_responses(responses)
    assert [m.charge_current_limit for m in bank.modules] == [37.0, 37.0, 37.0]
    assert bank.charge_current_limit == bank.discharge_current_limit == 111.0


def test_pylon_is_pylontech_and_other_makers_are_kept() -> None:
    assert rs485.manufacturer_name("Pylon") == "Pylontech"
    assert rs485.manufacturer_name("SomeBMS") == "SomeBMS"


# -- 0x61 ------------------------------------------------------------------------------

#: The 49-byte body of the b2i emulator's 0x61 template (docs/protocol-notes.md §1.8, without its
#: 2-byte prefix): 52.00 V, 0 A, SOC 80 %, cycles 100/200, SOH 99/98, max cell 3.512 V
#: (id 0x0101), min cell 3.259 V (id 0x0101), every temperature 25.5 °C (id 0x0101).
RS_61_INFO = bytes.fromhex(
    "CB20" "0000" "50" "0064" "00C8" "63" "62" "0DB8" "0101" "0CBB" "0101"
    + ("0BAA" "0BAA" "0101" "0BAA" "0101") * 3
)  # fmt: skip


def test_0x61_vector_decodes_to_bank_values() -> None:
    assert len(RS_61_INFO) == rs485.SYSTEM_ANALOG_LAYOUT.size == 49
    raw = rs485.encode_frame(0x20, 2, 0x46, 0, RS_61_INFO)
    answer = rs485.decode_response(Command.GET_SYSTEM_ANALOG, raw)
    assert isinstance(answer, rs485.SystemAnalogResponse)
    assert (answer.voltage, answer.current, answer.soc) == (52.0, 0.0, 80)
    assert (answer.cycles_average, answer.cycles_max) == (100, 200)
    assert (answer.soh_average, answer.soh_min) == (99, 98)
    assert (answer.cell_voltage_max, answer.cell_voltage_min) == (3.512, 3.259)
    assert answer.cell_voltage_max_id == 0x0101
    assert answer.bms_temperature_average == answer.mosfet_temperature_min == 25.5
    assert rs485.encode_response(answer) == raw
    fields = rs485.system_analog_fields(answer)
    assert (fields["voltage"], fields["soc"], fields["soh"], fields["temperature"]) == (52.0, 80.0, 99.0, 25.5)  # fmt: skip
    assert ("system_cycles_max", "200") in fields["extra"]
    bank = rs485.bank_from_responses([answer], totals=False)
    assert (bank.voltage, bank.soh, bank.cell_voltage_max) == (52.0, 99.0, 3.512)


def test_0x61_request_is_read_only_and_other_layouts_are_refused() -> None:
    assert rs485.encode_request(Command.GET_SYSTEM_ANALOG, 2) == rs485.encode_frame(
        0x20, 2, 0x46, 0x61, b"\x02"
    )
    # b2i's 51-byte variant (2-byte prefix, other units) is not guessed at.
    raw = rs485.encode_frame(0x20, 2, 0x46, 0, b"\x80\x62" + RS_61_INFO)
    with pytest.raises(ProtocolError, match="51 bytes"):
        rs485.decode_system_analog(decode_frame(raw))
    with pytest.raises(ResponseError):
        rs485.decode_system_analog(decode_frame(rs485.encode_error_response(2, 0x04)))
