"""Property tests of the CAN codec.

Hostile input never escapes as anything but ProtocolError, and encode_bank -> decode -> bank
preserves every field the frames carry.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings, strategies as st

from custom_components.pylontech.core.bounds import MAX_MODULES_TOTAL
from custom_components.pylontech.core.errors import ProtocolError
from custom_components.pylontech.core.model import Alarm, Bank, Protection
from custom_components.pylontech.core.protocol.can import (
    BANK_IDS,
    KNOWN_IDS,
    PLAUSIBLE_BANK_VOLTAGE,
    CanBankAssembler,
    CanProtectionAlarm,
    CanRecord,
    decode_frame,
    encode_bank,
    iter_capture,
    parse_candump_line,
)

SETTINGS = settings(max_examples=400, deadline=None)

# What each model flag becomes after a trip through the frame set of a firmware: the
# frames carry one bit/slot per family, so specific members come back as the generic one.
P = Protection
A = Alarm
OLD_FW_PROTECTION = {
    P.OVER_VOLTAGE: P.OVER_VOLTAGE,
    P.CELL_OVER_VOLTAGE: P.OVER_VOLTAGE,
    P.MODULE_OVER_VOLTAGE: P.OVER_VOLTAGE,
    P.UNDER_VOLTAGE: P.UNDER_VOLTAGE,
    P.CELL_UNDER_VOLTAGE: P.UNDER_VOLTAGE,
    P.MODULE_UNDER_VOLTAGE: P.UNDER_VOLTAGE,
    P.OVER_TEMPERATURE: P.OVER_TEMPERATURE,
    P.CHARGE_OVER_TEMPERATURE: P.OVER_TEMPERATURE,
    P.DISCHARGE_OVER_TEMPERATURE: P.OVER_TEMPERATURE,
    P.MOSFET_OVER_TEMPERATURE: P.OVER_TEMPERATURE,
    P.UNDER_TEMPERATURE: P.UNDER_TEMPERATURE,
    P.CHARGE_UNDER_TEMPERATURE: P.UNDER_TEMPERATURE,
    P.DISCHARGE_UNDER_TEMPERATURE: P.UNDER_TEMPERATURE,
    P.CHARGE_OVER_CURRENT: P.CHARGE_OVER_CURRENT,
    P.DISCHARGE_OVER_CURRENT: P.DISCHARGE_OVER_CURRENT,
    P.SHORT_CIRCUIT: P.DISCHARGE_OVER_CURRENT,
    P.REVERSE_POLARITY: P.SYSTEM_ERROR,
    P.SENSOR_FAILURE: P.SYSTEM_ERROR,
    P.SYSTEM_ERROR: P.SYSTEM_ERROR,
    P.GENERAL: P.SYSTEM_ERROR,
}
OLD_FW_ALARM = {
    A.HIGH_VOLTAGE: A.HIGH_VOLTAGE,
    A.CELL_HIGH_VOLTAGE: A.HIGH_VOLTAGE,
    A.MODULE_HIGH_VOLTAGE: A.HIGH_VOLTAGE,
    A.LOW_VOLTAGE: A.LOW_VOLTAGE,
    A.CELL_LOW_VOLTAGE: A.LOW_VOLTAGE,
    A.MODULE_LOW_VOLTAGE: A.LOW_VOLTAGE,
    A.HIGH_TEMPERATURE: A.HIGH_TEMPERATURE,
    A.CHARGE_HIGH_TEMPERATURE: A.HIGH_TEMPERATURE,
    A.DISCHARGE_HIGH_TEMPERATURE: A.HIGH_TEMPERATURE,
    A.MOSFET_HIGH_TEMPERATURE: A.HIGH_TEMPERATURE,
    A.LOW_TEMPERATURE: A.LOW_TEMPERATURE,
    A.CHARGE_LOW_TEMPERATURE: A.LOW_TEMPERATURE,
    A.DISCHARGE_LOW_TEMPERATURE: A.LOW_TEMPERATURE,
    A.CHARGE_HIGH_CURRENT: A.CHARGE_HIGH_CURRENT,
    A.DISCHARGE_HIGH_CURRENT: A.DISCHARGE_HIGH_CURRENT,
    A.INTERNAL_COMMUNICATION_FAIL: A.INTERNAL_COMMUNICATION_FAIL,
    # no 0x359 bit: not sent
    A.CELL_IMBALANCE: None,
    A.CELL_VOLTAGE_ERROR: None,
    A.TEMPERATURE_SENSOR_ERROR: None,
    A.GENERAL: None,
}
NEW_FW_PROTECTION = {
    P.OVER_VOLTAGE: P.OVER_VOLTAGE,
    P.CELL_OVER_VOLTAGE: P.OVER_VOLTAGE,
    P.MODULE_OVER_VOLTAGE: P.OVER_VOLTAGE,
    P.UNDER_VOLTAGE: P.UNDER_VOLTAGE,
    P.CELL_UNDER_VOLTAGE: P.UNDER_VOLTAGE,
    P.MODULE_UNDER_VOLTAGE: P.UNDER_VOLTAGE,
    P.OVER_TEMPERATURE: P.OVER_TEMPERATURE,
    P.CHARGE_OVER_TEMPERATURE: P.CHARGE_OVER_TEMPERATURE,
    P.DISCHARGE_OVER_TEMPERATURE: P.OVER_TEMPERATURE,
    P.MOSFET_OVER_TEMPERATURE: P.OVER_TEMPERATURE,
    P.UNDER_TEMPERATURE: P.UNDER_TEMPERATURE,
    P.CHARGE_UNDER_TEMPERATURE: P.CHARGE_UNDER_TEMPERATURE,
    P.DISCHARGE_UNDER_TEMPERATURE: P.UNDER_TEMPERATURE,
    P.CHARGE_OVER_CURRENT: P.CHARGE_OVER_CURRENT,
    P.DISCHARGE_OVER_CURRENT: P.DISCHARGE_OVER_CURRENT,
    P.SHORT_CIRCUIT: P.SHORT_CIRCUIT,
    P.REVERSE_POLARITY: P.GENERAL,
    P.SENSOR_FAILURE: P.SYSTEM_ERROR,
    P.SYSTEM_ERROR: P.SYSTEM_ERROR,
    P.GENERAL: P.GENERAL,
}
NEW_FW_ALARM = {
    A.HIGH_VOLTAGE: A.HIGH_VOLTAGE,
    A.CELL_HIGH_VOLTAGE: A.HIGH_VOLTAGE,
    A.MODULE_HIGH_VOLTAGE: A.HIGH_VOLTAGE,
    A.LOW_VOLTAGE: A.LOW_VOLTAGE,
    A.CELL_LOW_VOLTAGE: A.LOW_VOLTAGE,
    A.MODULE_LOW_VOLTAGE: A.LOW_VOLTAGE,
    A.HIGH_TEMPERATURE: A.HIGH_TEMPERATURE,
    A.CHARGE_HIGH_TEMPERATURE: A.CHARGE_HIGH_TEMPERATURE,
    A.DISCHARGE_HIGH_TEMPERATURE: A.HIGH_TEMPERATURE,
    A.MOSFET_HIGH_TEMPERATURE: A.HIGH_TEMPERATURE,
    A.LOW_TEMPERATURE: A.LOW_TEMPERATURE,
    A.CHARGE_LOW_TEMPERATURE: A.CHARGE_LOW_TEMPERATURE,
    A.DISCHARGE_LOW_TEMPERATURE: A.LOW_TEMPERATURE,
    A.CHARGE_HIGH_CURRENT: A.CHARGE_HIGH_CURRENT,
    A.DISCHARGE_HIGH_CURRENT: A.DISCHARGE_HIGH_CURRENT,
    A.INTERNAL_COMMUNICATION_FAIL: A.INTERNAL_COMMUNICATION_FAIL,
    A.CELL_IMBALANCE: A.CELL_IMBALANCE,
    A.CELL_VOLTAGE_ERROR: A.GENERAL,
    A.TEMPERATURE_SENSOR_ERROR: A.GENERAL,
    A.GENERAL: A.GENERAL,
}


def test_family_tables_cover_every_flag() -> None:
    # A new model member must get a decision here (and in the codec) before it ships.
    for table in (OLD_FW_PROTECTION, NEW_FW_PROTECTION):
        assert set(table) == set(Protection)
    for table in (OLD_FW_ALARM, NEW_FW_ALARM):
        assert set(table) == set(Alarm)


def tenths(low: int, high: int) -> st.SearchStrategy[float]:
    return st.integers(low, high).map(lambda raw: raw / 10)


printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
names = (
    st.builds(
        lambda first, middle, last: first + middle + last,
        printable,
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=5),
        printable,
    )
    | printable
)

banks = st.builds(
    Bank,
    charge_voltage_limit=tenths(0, 0xFFFF),
    charge_current_limit=tenths(-0x8000, 0x7FFF),
    discharge_current_limit=tenths(0, 0x7FFF),
    discharge_voltage_limit=tenths(0, 0xFFFF),
    soc=st.integers(0, 100).map(float),
    soh=st.integers(0, 100).map(float),
    voltage=st.integers(-0x8000, 0x7FFF).map(lambda raw: raw / 100),
    current=tenths(-0x8000, 0x7FFF),
    temperature=tenths(-0x8000, 0x7FFF),
    module_count=st.integers(0, MAX_MODULES_TOTAL),
    charge_enabled=st.booleans(),
    discharge_enabled=st.booleans(),
    force_charge_1=st.booleans(),
    force_charge_2=st.booleans(),
    full_charge_request=st.booleans(),
    manufacturer=names,
    full_capacity=st.integers(0, 0xFFFF).map(float),
    protections=st.frozensets(st.sampled_from(list(Protection))),
    alarms=st.frozensets(st.sampled_from(list(Alarm))),
)

COMMON_FIELDS = (
    "charge_voltage_limit",
    "charge_current_limit",
    "discharge_current_limit",
    "discharge_voltage_limit",
    "soc",
    "soh",
    "voltage",
    "current",
    "temperature",
    "manufacturer",
)
OLD_ONLY_FIELDS = (
    "module_count",
    "charge_enabled",
    "discharge_enabled",
    "force_charge_1",
    "force_charge_2",
    "full_charge_request",
)


def expected(bank: Bank, name: str) -> object:
    """What the decoder publishes for a field: a voltage no supported bank has is withheld."""
    value = getattr(bank, name)
    if name == "voltage" and value is not None:
        low, high = PLAUSIBLE_BANK_VOLTAGE
        return value if low <= value <= high else None
    return value


def decoded(frames: list[tuple[int, bytes]]) -> Bank:
    assembler = CanBankAssembler()
    for can_id, data in frames:
        assembler.update(can_id, data, 0.0)
    return assembler.bank()


@SETTINGS
@given(bank=banks)
def test_round_trip_old_firmware(bank: Bank) -> None:
    frames = encode_bank(bank, firmware="v1.2")
    assert [can_id for can_id, _ in frames] == [0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E]
    assert [len(data) for _, data in frames] == [8, 4, 6, 7, 2, 8]
    result = decoded(frames)
    for name in COMMON_FIELDS + OLD_ONLY_FIELDS:
        assert getattr(result, name) == expected(bank, name), name
    assert result.protections == {OLD_FW_PROTECTION[p] for p in bank.protections}
    assert result.alarms == {OLD_FW_ALARM[a] for a in bank.alarms if OLD_FW_ALARM[a] is not None}
    assert result.full_capacity is None  # 0x35F is not part of the old set


@SETTINGS
@given(bank=banks)
def test_round_trip_new_firmware(bank: Bank) -> None:
    frames = encode_bank(bank, firmware="v1.3")
    assert [can_id for can_id, _ in frames] == [0x351, 0x355, 0x356, 0x35A, 0x35E, 0x35F]
    assert [len(data) for _, data in frames] == [8, 6, 6, 8, 8, 8]
    result = decoded(frames)
    for name in COMMON_FIELDS:
        assert getattr(result, name) == expected(bank, name), name
    assert result.full_capacity == bank.full_capacity
    for name in OLD_ONLY_FIELDS:
        assert getattr(result, name) is None, name  # not carried by the new frame set
    assert result.protections == {NEW_FW_PROTECTION[p] for p in bank.protections}
    assert result.alarms == {NEW_FW_ALARM[a] for a in bank.alarms}
    # What the frames carry survives a second trip exactly.
    assert decoded(encode_bank(result, firmware="v1.3")) == result


ids = st.sampled_from(sorted(KNOWN_IDS)) | st.integers(0, 0x7FF) | st.integers(0, 0x1FFFFFFF)
payloads = st.binary(max_size=8)


@SETTINGS
@given(can_id=ids, data=payloads)
def test_decode_never_raises_anything_but_protocol_error(can_id: int, data: bytes) -> None:
    try:
        part = decode_frame(can_id, data)
    except ProtocolError as err:
        message = str(err)
    else:
        assert (part is None) == (can_id not in KNOWN_IDS)
        return
    assert can_id in KNOWN_IDS
    assert f"0x{can_id:03X}" in message


@SETTINGS
@given(can_id=st.sampled_from(sorted(KNOWN_IDS)), data=payloads)
def test_reencoding_a_decoded_part_is_stable(can_id: int, data: bytes) -> None:
    try:
        part = decode_frame(can_id, data)
    except ProtocolError:
        return
    assert part is not None
    again = decode_frame(can_id, part.encode())
    if isinstance(part, CanProtectionAlarm):
        # Re-encoded at the official bit positions; the emulator marker does not survive.
        assert isinstance(again, CanProtectionAlarm)
        assert (again.protections, again.alarms, again.module_count, again.tag) == (
            part.protections,
            part.alarms,
            part.module_count,
            part.tag[:3],
        )
        assert again.undocumented_bits == part.undocumented_bits
    else:
        assert again == part


@SETTINGS
@given(
    frames=st.lists(
        st.tuples(st.sampled_from(sorted(BANK_IDS)) | st.integers(0, 0x7FF), payloads),
        max_size=40,
    ),
    max_age=st.none() | st.floats(0.0, 5.0),
)
def test_assembler_only_raises_protocol_error(
    frames: list[tuple[int, bytes]], max_age: float | None
) -> None:
    assembler = CanBankAssembler(max_age=max_age)
    for step, (can_id, data) in enumerate(frames):
        with contextlib.suppress(ProtocolError):
            assembler.update(can_id, data, step * 0.1)
        bank = assembler.bank()
        assert bank.modules == ()
        assert set(assembler.ages(step * 0.1)) == set(assembler.seen_ids)
    assert assembler.frames == len(frames)


@SETTINGS
@given(line=st.text(max_size=200))
def test_candump_parser_on_arbitrary_text(line: str) -> None:
    try:
        record = parse_candump_line(line)
    except ProtocolError:
        return
    if record is not None:
        assert len(record.data) <= 64
        assert 0 <= record.can_id <= 0x1FFFFFFF


@SETTINGS
@given(
    can_id=st.integers(0, 0x7FF),
    data=payloads,
    stamp=st.integers(0, 2_000_000_000_000_000),
)
def test_candump_formats_round_trip(can_id: int, data: bytes, stamp: int) -> None:
    seconds = f"{stamp // 1_000_000}.{stamp % 1_000_000:06d}"
    log_line = f"({seconds}) can0 {can_id:03X}#{data.hex().upper()}"
    default_line = f"  can1  {can_id:03X}   [{len(data)}]  {data.hex(' ').upper()}"
    log = parse_candump_line(log_line)
    plain = parse_candump_line(default_line)
    assert log == CanRecord(can_id=can_id, data=data, timestamp=float(seconds), interface="can0")
    assert plain == CanRecord(can_id=can_id, data=data, interface="can1")
    entries = list(iter_capture(f"{log_line}\nnoise\n{default_line}\n"))
    assert [type(e).__name__ for e in entries] == ["CanRecord", "CaptureError", "CanRecord"]
