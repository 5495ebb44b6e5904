"""CAN codec: the reference vectors of docs/protocol-notes.md §4.2, assembler, encoders, candump."""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.pylontech.core.bounds import CountBoundError
from custom_components.pylontech.core.errors import ProtocolError
from custom_components.pylontech.core.model import Alarm, Bank, Module, Protection
from custom_components.pylontech.core.protocol.can import (
    KEEPALIVE_ID,
    SMA_SLOTS,
    CanBankAssembler,
    CanBatteryInfo,
    CanKeepAlive,
    CanLimits,
    CanManufacturer,
    CanMeasurements,
    CanProtectionAlarm,
    CanRecord,
    CanRequestFlags,
    CanSmaAlarms,
    CanStateOfCharge,
    CaptureError,
    bank_from_parts,
    decode_capture,
    decode_frame,
    encode_bank,
    encode_keepalive,
    iter_capture,
    parse_candump_line,
)


def frame(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


# Real US5000 stack, old firmware (setfire), CAN-A1..A6.
OLD_FW_CYCLE = [
    (0x351, frame("14 02 C0 12 C0 12 C2 01")),
    (0x355, frame("58 00 5E 00")),
    (0x356, frame("7A 13 F2 FE 6B 01")),
    (0x359, frame("00 00 00 00 06 50 4E")),
    (0x35C, frame("C0 00")),
    (0x35E, frame("50 59 4C 4F 4E 20 20 20")),
]


# ----------------------------------------------------------------- reference vectors


def test_can_a1_limits_old_firmware() -> None:
    part = decode_frame(0x351, frame("14 02 C0 12 C0 12 C2 01"))
    assert part == CanLimits(
        charge_voltage_limit=53.2,
        charge_current_limit=480.0,
        discharge_current_limit=480.0,
        discharge_voltage_limit=45.0,
    )


def test_can_a2_soc_soh() -> None:
    assert decode_frame(0x355, frame("58 00 5E 00")) == CanStateOfCharge(soc=88.0, soh=94.0)


def test_can_a3_measurements_discharging() -> None:
    assert decode_frame(0x356, frame("7A 13 F2 FE 6B 01")) == CanMeasurements(
        voltage=49.86, current=-27.0, temperature=36.3
    )


def test_can_a4_no_flags_six_modules() -> None:
    part = decode_frame(0x359, frame("00 00 00 00 06 50 4E"))
    assert isinstance(part, CanProtectionAlarm)
    assert part.protections == frozenset()
    assert part.alarms == frozenset()
    assert part.module_count == 6
    assert part.tag == "PN"
    assert part.emulator_variant is False


def test_can_a5_charge_and_discharge_enabled() -> None:
    assert decode_frame(0x35C, frame("C0 00")) == CanRequestFlags(
        charge_enabled=True,
        discharge_enabled=True,
        force_charge_1=False,
        force_charge_2=False,
        full_charge_request=False,
    )


def test_can_a6_manufacturer_padding_stripped() -> None:
    assert decode_frame(0x35E, frame("50 59 4C 4F 4E 20 20 20")) == CanManufacturer(name="PYLON")


def test_pytes_five_byte_manufacturer() -> None:
    assert decode_frame(0x35E, b"PYTES") == CanManufacturer(name="PYTES")


def test_manufacturer_nul_padding_and_hostile_bytes() -> None:
    assert decode_frame(0x35E, b"PYLON\x00\x00\x00") == CanManufacturer(name="PYLON")
    part = decode_frame(0x35E, b"PY\x07\xffON  ")
    assert isinstance(part, CanManufacturer)
    assert part.name == "PY??ON"


def test_can_d1_to_d5_emulator_frames() -> None:
    assert decode_frame(0x351, frame("28 02 F4 01 20 03 E0 01")) == CanLimits(
        charge_voltage_limit=55.2,
        charge_current_limit=50.0,
        discharge_current_limit=80.0,
        discharge_voltage_limit=48.0,
    )
    assert decode_frame(0x355, frame("3C 00 64 00")) == CanStateOfCharge(soc=60.0, soh=100.0)
    assert decode_frame(0x356, frame("6C 14 04 00 DC 00")) == CanMeasurements(
        voltage=52.28, current=0.4, temperature=22.0
    )
    d4 = decode_frame(0x359, frame("00 00 00 00 01 50 4E"))
    assert isinstance(d4, CanProtectionAlarm)
    assert (d4.protections, d4.alarms, d4.module_count) == (frozenset(), frozenset(), 1)
    d5 = decode_frame(0x35C, frame("C0 00"))
    assert isinstance(d5, CanRequestFlags)
    assert (d5.charge_enabled, d5.discharge_enabled, d5.force_charge_1) == (True, True, False)


def test_can_d6_emulator_network_alive_is_a_keepalive_part() -> None:
    part = decode_frame(0x305, frame("21 00 00 00 00 00 00 00"))
    assert part == CanKeepAlive(payload=frame("21 00 00 00 00 00 00 00"))


def test_can_s1_keepalive() -> None:
    assert KEEPALIVE_ID == 0x305
    assert encode_keepalive() == frame("00 00 00 00 00 00 00 00")
    assert decode_frame(KEEPALIVE_ID, encode_keepalive()) == CanKeepAlive()


def test_synthetic_359_protection_bits() -> None:
    part = decode_frame(0x359, frame("82 01 00 00 01 50 4E"))
    assert isinstance(part, CanProtectionAlarm)
    assert part.protections == {
        Protection.DISCHARGE_OVER_CURRENT,
        Protection.OVER_VOLTAGE,
        Protection.CHARGE_OVER_CURRENT,
    }
    assert part.alarms == frozenset()


@pytest.mark.parametrize(
    ("data", "emulator"),
    [("00 08 00 08 01 50 4E", False), ("00 80 00 80 01 50 4E", True)],
    ids=["official-bit3", "emulator-bit7"],
)
def test_359_system_error_both_variants(data: str, emulator: bool) -> None:
    part = decode_frame(0x359, frame(data))
    assert isinstance(part, CanProtectionAlarm)
    assert part.protections == {Protection.SYSTEM_ERROR}
    assert part.alarms == {Alarm.INTERNAL_COMMUNICATION_FAIL}
    assert part.emulator_variant is emulator
    assert part.undocumented_bits == 0


def test_359_every_alarm_bit_and_undocumented_bits() -> None:
    part = decode_frame(0x359, frame("41 00 9F 09 02 50 4E"))
    assert isinstance(part, CanProtectionAlarm)
    assert part.protections == frozenset()
    assert part.alarms == {
        Alarm.HIGH_VOLTAGE,
        Alarm.LOW_VOLTAGE,
        Alarm.HIGH_TEMPERATURE,
        Alarm.LOW_TEMPERATURE,
        Alarm.DISCHARGE_HIGH_CURRENT,
        Alarm.CHARGE_HIGH_CURRENT,
        Alarm.INTERNAL_COMMUNICATION_FAIL,
    }
    # byte 0 bits 6 and 0, byte 2 bit 0: named by no document, kept raw.
    assert part.undocumented_bits == 0x41 | (0x01 << 16)


def test_359_temperature_protections() -> None:
    part = decode_frame(0x359, frame("18 00 00 00 03 50 4E"))
    assert isinstance(part, CanProtectionAlarm)
    assert part.protections == {Protection.OVER_TEMPERATURE, Protection.UNDER_TEMPERATURE}


def test_synthetic_35c_bits() -> None:
    assert decode_frame(0x35C, frame("E8 00")) == CanRequestFlags(
        charge_enabled=True,
        discharge_enabled=True,
        force_charge_1=True,
        force_charge_2=False,
        full_charge_request=True,
    )
    part = decode_frame(0x35C, frame("50 00"))
    assert isinstance(part, CanRequestFlags)
    assert (part.charge_enabled, part.discharge_enabled, part.force_charge_2) == (
        False,
        True,
        True,
    )


def test_351_dlc6_has_no_discharge_voltage() -> None:
    assert decode_frame(0x351, frame("14 02 C0 12 C0 12")) == CanLimits(
        charge_voltage_limit=53.2, charge_current_limit=480.0, discharge_current_limit=480.0
    )


def test_351_negative_dcl_becomes_magnitude() -> None:
    # diyBMS-style negative DCL (0xFF9C = -100 -> 10.0 A), docs/protocol-notes.md D8.
    part = decode_frame(0x351, frame("14 02 64 00 9C FF C2 01"))
    assert isinstance(part, CanLimits)
    assert part.discharge_current_limit == 10.0
    assert part.charge_current_limit == 10.0


def test_355_new_firmware_dlc6_and_emulator_dlc8() -> None:
    assert decode_frame(0x355, frame("58 00 5E 00 00 00")) == CanStateOfCharge(
        soc=88.0, soh=94.0, extension=0
    )
    part = decode_frame(0x355, frame("58 00 5E 00 10 27 00 00"))
    assert isinstance(part, CanStateOfCharge)
    assert (part.soc, part.soh, part.extension) == (88.0, 94.0, 10000)


def test_356_signed_current_and_temperature() -> None:
    part = decode_frame(0x356, frame("10 13 18 FC 9C FF"))
    assert part == CanMeasurements(voltage=48.8, current=-100.0, temperature=-10.0)


def test_35f_setfire_new_firmware() -> None:
    assert decode_frame(0x35F, frame("4C 49 01 03 3C 02 AA 00")) == CanBatteryInfo(
        chemistry="LI", hardware_version=(1, 3), capacity=572, software_version=0xAA
    )
    short = decode_frame(0x35F, frame("4C 49 01 03 3C 02"))
    assert isinstance(short, CanBatteryInfo)
    assert short.software_version is None


def test_35a_all_zero_is_no_flags() -> None:
    part = decode_frame(0x35A, bytes(8))
    assert isinstance(part, CanSmaAlarms)
    assert part.protections == frozenset()
    assert part.alarms == frozenset()
    assert part.active_alarm_slots == ()


def test_35a_two_bit_pairs_lsb_first() -> None:
    # Alarm byte 0 = 0b01_00_01_10: slot 0 "10" (normal), slot 1 "01" high voltage active,
    # slot 2 "00", slot 3 "01" high temperature. Byte 2 = 0b11_01_01_00: slot 8 "00",
    # slot 9 contactor "01", slot 10 short circuit "01", slot 11 BMS internal "11"
    # (undefined: not active).
    # Warning byte 4 = 0b00_00_01_00: slot 1 high voltage; byte 7 slot 12 imbalance.
    part = decode_frame(0x35A, frame("46 00 D4 00 04 00 00 01"))
    assert isinstance(part, CanSmaAlarms)
    assert part.active_alarm_slots == (
        "high_voltage",
        "high_temperature",
        "contactor",
        "short_circuit",
    )
    assert part.general_alarm is False
    assert part.protections == {
        Protection.OVER_VOLTAGE,
        Protection.OVER_TEMPERATURE,
        Protection.SYSTEM_ERROR,
        Protection.SHORT_CIRCUIT,
    }
    assert part.active_warning_slots == ("high_voltage", "cell_imbalance")
    assert part.alarms == {Alarm.HIGH_VOLTAGE, Alarm.CELL_IMBALANCE}


def test_35a_general_internal_and_charge_slots() -> None:
    # alarms: slot 0 general, slot 5 high temp charge, slot 8 charge current, slot 11 internal
    # warnings: slot 0 general, slot 6 low temp charge, slot 7 discharge current, slot 11
    alarm = (0b01 << 0) | (0b01 << 10) | (0b01 << 16) | (0b01 << 22)
    warning = (0b01 << 0) | (0b01 << 12) | (0b01 << 14) | (0b01 << 22)
    data = alarm.to_bytes(4, "little") + warning.to_bytes(4, "little")
    part = decode_frame(0x35A, data)
    assert isinstance(part, CanSmaAlarms)
    assert part.general_alarm
    assert part.protections == {
        Protection.GENERAL,
        Protection.CHARGE_OVER_TEMPERATURE,
        Protection.CHARGE_OVER_CURRENT,
        Protection.SYSTEM_ERROR,
    }
    assert part.alarms == {
        Alarm.GENERAL,
        Alarm.CHARGE_LOW_TEMPERATURE,
        Alarm.DISCHARGE_HIGH_CURRENT,
        Alarm.INTERNAL_COMMUNICATION_FAIL,
    }


def test_35a_healthy_smartbms_frame_is_no_flags() -> None:
    """``AA AA AA 02`` twice (a working SmartBMS on a Victron bus): every slot "10" = normal."""
    part = decode_frame(0x35A, frame("AA AA AA 02 AA AA AA 02"))
    assert isinstance(part, CanSmaAlarms)
    assert part.protections == frozenset()
    assert part.alarms == frozenset()
    assert part.active_alarm_slots == part.active_warning_slots == ()
    assert part.general_alarm is False
    assert part.normal_alarm_slots == SMA_SLOTS[:13]
    assert part.normal_warning_slots == SMA_SLOTS[:13]
    bank = bank_from_parts([part])
    assert bank.protections == frozenset()
    assert bank.alarms == frozenset()


def test_35a_one_active_slot_among_normal_ones() -> None:
    """The same BMS with its low-voltage alarm (slot 2) tripped: ``AA`` -> ``9A`` in byte 0."""
    part = decode_frame(0x35A, frame("9A AA AA 02 AA AA AA 02"))
    assert isinstance(part, CanSmaAlarms)
    assert part.active_alarm_slots == ("low_voltage",)
    assert part.protections == {Protection.UNDER_VOLTAGE}
    assert part.alarms == frozenset()
    assert "low_voltage" not in part.normal_alarm_slots


def test_35a_seven_bytes_are_accepted() -> None:
    """Some BMSes send DLC 7; the missing warning byte (slots 12-15) is "not reported"."""
    part = decode_frame(0x35A, frame("AA AA AA 02 AA AA 6A"))
    assert isinstance(part, CanSmaAlarms)
    assert part.protections == frozenset()
    assert part.active_warning_slots == ("bms_internal",)
    assert part.alarms == {Alarm.INTERNAL_COMMUNICATION_FAIL}
    assert "cell_imbalance" not in part.normal_warning_slots
    with pytest.raises(ProtocolError, match="6 data bytes, at least 7"):
        decode_frame(0x35A, frame("AA AA AA 02 AA AA"))


def test_35a_encoder_and_decoder_agree_on_the_active_state() -> None:
    """The simulator's frames carry active slots as "01" and the decoder reads them back."""
    part = CanSmaAlarms.from_flags([Protection.UNDER_VOLTAGE], [Alarm.HIGH_TEMPERATURE])
    assert part.encode() == frame("10 00 00 00 40 00 00 00")
    decoded = decode_frame(0x35A, part.encode())
    assert decoded == part
    assert isinstance(decoded, CanSmaAlarms)
    assert decoded.protections == {Protection.UNDER_VOLTAGE}
    assert decoded.alarms == {Alarm.HIGH_TEMPERATURE}


def test_359_module_count_beyond_any_bank_is_a_protocol_error() -> None:
    """255 modules (0xFF filler) is no supported bank: the frame is refused, never counted."""
    with pytest.raises(CountBoundError, match="CAN 0x359: 255 modules"):
        decode_frame(0x359, frame("00 00 00 00 FF 50 4E"))
    with pytest.raises(CountBoundError):
        decode_frame(0x359, frame("00 00 00 00 61 50 4E"))  # 97 > 6 groups of 16
    part = decode_frame(0x359, frame("00 00 00 00 60 50 4E"))  # 96 = 6 LV-Hub groups of 16
    assert isinstance(part, CanProtectionAlarm)
    assert part.module_count == 96


def test_359_all_flag_bits_set_is_filler() -> None:
    """Status bytes 0xFF (every protection and warning at once) are not a bank state."""
    with pytest.raises(ProtocolError, match="every flag bit set"):
        decode_frame(0x359, frame("FF FF FF FF 04 50 4E"))
    # A real combination of documented bits still decodes.
    part = decode_frame(0x359, frame("04 00 04 00 04 50 4E"))
    assert isinstance(part, CanProtectionAlarm)
    assert part.protections == {Protection.UNDER_VOLTAGE}
    assert part.alarms == {Alarm.LOW_VOLTAGE}


@pytest.mark.parametrize(
    ("data", "published"),
    [
        ("0A 02 D3 FE EB 00", False),  # 5.22 V: a BMS that sends 0.1 V units
        ("00 00 D3 FE EB 00", False),  # 0 V
        ("FF 7F 00 00 EB 00", False),  # 327.67 V
        ("61 14 D3 FE EB 00", True),  # 52.17 V, the SmartBMS capture
        ("60 09 00 00 EB 00", True),  # 24.00 V, a 24 V (8-cell) bank
    ],
)
def test_356_voltage_outside_any_bank_is_withheld(data: str, published: bool) -> None:
    """A 0x356 voltage no supported bank has is not published and is counted; current stays."""
    assembler = CanBankAssembler()
    assembler.update(0x356, frame(data), 1.0)
    bank = assembler.bank()
    part = assembler.part(0x356)
    assert isinstance(part, CanMeasurements)
    assert part.voltage_plausible is published
    assert (bank.voltage is not None) is published
    assert bank.temperature == pytest.approx(23.5)
    if published:
        assert bank.voltage == pytest.approx(part.voltage)
        assert assembler.implausible == {}
    else:
        assert assembler.implausible == {"voltage": 1}
        assert assembler.last_implausible is not None
        assert f"{part.voltage:g} V" in assembler.last_implausible


def test_unknown_ids_are_none() -> None:
    assert decode_frame(0x307, frame("12 34 56 78 56 49 43 00")) is None
    assert decode_frame(0x373, bytes(8)) is None
    assert decode_frame(0x000, b"") is None


@pytest.mark.parametrize(
    ("can_id", "data"),
    [
        (0x351, "14 02 C0 12 C0"),
        (0x355, "58 00 5E"),
        (0x356, "7A 13 F2 FE 6B"),
        (0x359, "00 00 00 00"),
        (0x35C, ""),
        (0x35E, ""),
        (0x35A, "00 00 00 00 00 00"),
        (0x35F, "4C 49 01 03 3C"),
    ],
)
def test_short_frames_name_id_and_length(can_id: int, data: str) -> None:
    payload = frame(data)
    with pytest.raises(ProtocolError) as err:
        decode_frame(can_id, payload)
    assert f"0x{can_id:03X}" in str(err.value)
    assert f"{len(payload)} data bytes" in str(err.value)


def test_overlong_frame_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="0x356"):
        decode_frame(0x356, bytes(9))


# ----------------------------------------------------------------- assembler


def feed(assembler: CanBankAssembler, frames: list[tuple[int, bytes]], t: float) -> list[bool]:
    return [assembler.update(can_id, data, t) for can_id, data in frames]


def test_assembler_builds_the_bank_from_a_real_cycle() -> None:
    assembler = CanBankAssembler()
    assert all(feed(assembler, OLD_FW_CYCLE, 10.0))
    bank = assembler.bank()
    assert bank.charge_voltage_limit == 53.2
    assert bank.charge_current_limit == 480.0
    assert bank.discharge_current_limit == 480.0
    assert bank.discharge_voltage_limit == 45.0
    assert (bank.soc, bank.soh) == (88.0, 94.0)
    assert (bank.voltage, bank.current, bank.temperature) == (49.86, -27.0, 36.3)
    assert bank.power == round(49.86 * -27.0, 2)
    assert bank.module_count == 6
    assert bank.charge_enabled is True
    assert bank.discharge_enabled is True
    assert bank.full_charge_request is False
    assert bank.manufacturer == "PYLON"
    assert bank.protections == frozenset()
    assert bank.modules == ()
    # Not carried by CAN: None, never 0.
    assert bank.remaining_capacity is None
    assert bank.cell_voltage_min is None
    assert assembler.firmware() == "v1.2"


def test_assembler_change_detection() -> None:
    assembler = CanBankAssembler()
    feed(assembler, OLD_FW_CYCLE, 0.0)
    first = assembler.bank()
    assert not any(feed(assembler, OLD_FW_CYCLE, 1.0))
    assert assembler.bank() is first  # cached, nothing changed
    assert assembler.update(0x356, frame("7A 13 EC FE 6B 01"), 2.0) is True
    assert assembler.bank().current == -27.6
    assert assembler.update(0x359, frame("00 08 00 00 06 50 4E"), 2.0) is True
    assert assembler.bank().protections == {Protection.SYSTEM_ERROR}


def test_assembler_cycle_detection_and_take_update() -> None:
    assembler = CanBankAssembler()
    for can_id, data in OLD_FW_CYCLE:
        assembler.update(can_id, data, 0.0)
        assert assembler.cycle_complete is False
        assert assembler.take_update() is None
    assembler.update(*OLD_FW_CYCLE[0], 1.0)  # 0x351 again: the next cycle began
    assert assembler.cycle_complete is True
    assert assembler.cycles == 1
    published = assembler.take_update()
    assert published is not None
    assert published.module_count == 6
    assert assembler.take_update() is None  # once per cycle
    assembler.update(*OLD_FW_CYCLE[1], 1.0)
    assert assembler.cycle_complete is False
    # An unchanged cycle completes but offers nothing to publish.
    for can_id, data in OLD_FW_CYCLE[2:] + OLD_FW_CYCLE[:1]:
        assembler.update(can_id, data, 2.0)
    assert assembler.cycle_complete is True
    assert assembler.take_update() is None
    # A change inside the next cycle is published when that cycle completes.
    assembler.update(0x355, frame("57 00 5E 00"), 2.1)
    assert assembler.take_update() is None
    for can_id, data in OLD_FW_CYCLE[2:] + OLD_FW_CYCLE[:1]:
        assembler.update(can_id, data, 3.0)
    update = assembler.take_update()
    assert update is not None
    assert update.soc == 87.0


def test_assembler_ages_stale_and_expiry() -> None:
    assembler = CanBankAssembler()
    feed(assembler, OLD_FW_CYCLE, 100.0)
    assembler.update(0x356, OLD_FW_CYCLE[2][1], 105.0)  # refreshed, unchanged
    ages = assembler.ages(107.5)
    assert ages[0x351] == 7.5
    assert ages[0x356] == 2.5
    assert set(ages) == {0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E}
    assert assembler.ages(50.0)[0x351] == 0.0  # clock went back: never negative
    assert assembler.stale_ids(107.5, 5.0) == (0x351, 0x355, 0x359, 0x35C, 0x35E)
    assert assembler.expire(107.5, 5.0) == (0x351, 0x355, 0x359, 0x35C, 0x35E)
    bank = assembler.bank()
    assert bank.voltage == 49.86
    assert bank.soc is None
    assert bank.module_count is None
    assert bank.charge_voltage_limit is None


def test_assembler_auto_expiry_on_update() -> None:
    assembler = CanBankAssembler(max_age=3.0)
    feed(assembler, OLD_FW_CYCLE, 0.0)
    # Only 0x356 keeps arriving; after 3 s the rest expire on the next update.
    assert assembler.update(*OLD_FW_CYCLE[2], 2.0) is False
    assert assembler.update(*OLD_FW_CYCLE[2], 4.0) is True
    assert assembler.seen_ids == (0x356,)
    assert assembler.bank().soc is None
    assert assembler.bank().voltage == 49.86


def test_assembler_counts_unknown_keepalive_and_errors() -> None:
    assembler = CanBankAssembler()
    assert assembler.update(0x307, frame("12 34 56 78 56 49 43 00"), 0.0) is False
    assert assembler.update(0x305, bytes(8), 0.0) is False
    with pytest.raises(ProtocolError):
        assembler.update(0x356, frame("7A 13"), 0.0)
    assert assembler.unknown_frames == 1
    assert assembler.unknown_ids == {0x307: 1}
    assert assembler.keepalives == 1
    assert assembler.error_frames == 1
    assert assembler.frames == 3
    assert assembler.bank() == Bank()
    for can_id in range(0x400, 0x400 + 200):
        assembler.update(can_id, b"", 0.0)
    assert len(assembler.unknown_ids) == 64  # bounded tally
    assert assembler.unknown_frames == 201


def test_assembler_new_firmware_cycle() -> None:
    assembler = CanBankAssembler()
    frames = [
        (0x351, frame("14 02 C0 12 C0 12 C2 01")),
        (0x355, frame("58 00 5E 00 00 00")),
        (0x356, frame("7A 13 F2 FE 6B 01")),
        (0x35A, bytes(8)),
        (0x35E, frame("50 59 4C 4F 4E 20 20 20")),
        (0x35F, frame("4C 49 01 03 3C 02 AA 00")),
    ]
    feed(assembler, frames, 0.0)
    bank = assembler.bank()
    assert assembler.firmware() == "v1.3"
    assert bank.full_capacity == 572.0
    assert bank.module_count is None
    assert bank.charge_enabled is None
    assert dict(bank.extra) == {
        "can_chemistry": "LI",
        "can_hardware_version": "1.3",
        "can_software_version": "170",
    }
    assert bank.soc == 88.0


# ----------------------------------------------------------------- encoders


def test_encode_bank_old_firmware_reproduces_the_real_capture() -> None:
    assembler = CanBankAssembler()
    feed(assembler, OLD_FW_CYCLE, 0.0)
    assert encode_bank(assembler.bank(), firmware="v1.2") == OLD_FW_CYCLE


def test_encode_bank_new_firmware_frame_set() -> None:
    bank = Bank(
        voltage=49.86,
        current=-27.0,
        temperature=36.3,
        soc=88.0,
        soh=94.0,
        charge_voltage_limit=53.2,
        charge_current_limit=480.0,
        discharge_current_limit=480.0,
        discharge_voltage_limit=45.0,
        full_capacity=572.0,
        manufacturer="PYLON",
        extra=(("can_software_version", "170"),),
    )
    frames = dict(encode_bank(bank, firmware="v1.3"))
    assert list(frames) == [0x351, 0x355, 0x356, 0x35A, 0x35E, 0x35F]
    assert frames[0x355] == frame("58 00 5E 00 00 00")
    assert frames[0x35A] == bytes(8)
    assert frames[0x35F] == frame("4C 49 01 03 3C 02 AA 00")


def test_encode_bank_unites_module_flags_and_counts_present_modules() -> None:
    bank = Bank(
        voltage=50.0,
        current=1.0,
        temperature=20.0,
        modules=(
            Module(index=1, protections=frozenset({Protection.CELL_OVER_VOLTAGE})),
            Module(index=2, alarms=frozenset({Alarm.MOSFET_HIGH_TEMPERATURE})),
            Module(index=3, state="absent"),
        ),
        protections=frozenset({Protection.SHORT_CIRCUIT}),
    )
    frames = dict(encode_bank(bank))
    part = decode_frame(0x359, frames[0x359])
    assert isinstance(part, CanProtectionAlarm)
    assert part.module_count == 2
    assert part.protections == {Protection.OVER_VOLTAGE, Protection.DISCHARGE_OVER_CURRENT}
    assert part.alarms == {Alarm.HIGH_TEMPERATURE}
    # No limits, SOC or requests known: those frames are not sent (never "0").
    assert {0x351, 0x355, 0x35C}.isdisjoint(frames)
    new = dict(encode_bank(bank, firmware="v1.3"))
    sma = decode_frame(0x35A, new[0x35A])
    assert isinstance(sma, CanSmaAlarms)
    assert sma.protections == {Protection.OVER_VOLTAGE, Protection.SHORT_CIRCUIT}
    assert sma.alarms == {Alarm.HIGH_TEMPERATURE}


def test_encode_bank_rejects_unknown_firmware() -> None:
    with pytest.raises(ValueError, match=r"v1\.4"):
        encode_bank(Bank(), firmware="v1.4")  # type: ignore[arg-type]


def test_encode_clamps_out_of_range_values() -> None:
    data = CanMeasurements(voltage=1000.0, current=-5000.0, temperature=20.0).encode()
    assert decode_frame(0x356, data) == CanMeasurements(
        voltage=327.67, current=-3276.8, temperature=20.0
    )


# ----------------------------------------------------------------- candump


def test_candump_log_format() -> None:
    record = parse_candump_line("(1700000000.000000) can0 351#1402C012C012C201")
    assert record == CanRecord(
        can_id=0x351,
        data=frame("14 02 C0 12 C0 12 C2 01"),
        timestamp=1700000000.0,
        interface="can0",
    )


def test_candump_default_format_and_prefixes() -> None:
    expected = frame("14 02 C0 12 C0 12 C2 01")
    plain = parse_candump_line("  can0  351   [8]  14 02 C0 12 C0 12 C2 01")
    assert plain == CanRecord(can_id=0x351, data=expected, interface="can0")
    relative = parse_candump_line(" (000.000000)  can0  351   [8]  14 02 C0 12 C0 12 C2 01")
    assert relative == CanRecord(can_id=0x351, data=expected, interface="can0", timestamp=0.0)
    ascii_tail = parse_candump_line("  can0  35E   [8]  50 59 4C 4F 4E 20 20 20   'PYLON   '")
    assert ascii_tail is not None
    assert ascii_tail.data == b"PYLON   "
    extra_columns = parse_candump_line("  can0  RX - -  355   [4]  58 00 5E 00")
    assert extra_columns is not None
    assert extra_columns.can_id == 0x355
    absolute = parse_candump_line("(2023-09-28 20:11:40.500000)  can0  35C   [2]  C0 00")
    assert absolute is not None
    assert absolute.timestamp is not None
    assert absolute.timestamp % 1 == 0.5


def test_candump_extended_and_fd() -> None:
    record = parse_candump_line("(1.5) vcan0 18FF50E5#0102")
    assert record is not None
    assert (record.extended, record.can_id) == (True, 0x18FF50E5)
    fd = parse_candump_line("(1.5) can0 123##1" + "AB" * 12)
    assert fd is not None
    assert fd.fd
    assert len(fd.data) == 12


def test_candump_skips_remote_and_comments() -> None:
    assert parse_candump_line("(1.0) can0 351#R") is None
    assert parse_candump_line("  can0  351   [8]  remote request") is None
    assert parse_candump_line("") is None
    assert parse_candump_line("# capture of 2024-01-01") is None


@pytest.mark.parametrize(
    "line",
    [
        "hello world",
        "(1.0) can0 351#1402C",  # odd hex digits
        "(1.0) can0 351#" + "00" * 9,  # classic frame longer than 8
        "  can0  351   [8]  14 02 C0",  # DLC says 8, three bytes follow
        "  can0  20000004   [8]  00 04 00 00 00 00 00 00   ERRORFRAME",
        "(1.0) can0 20000080#0000000000000000",
        "(1.0) can0 800#00",  # standard id above 0x7FF
        "(abc) can0 351#00",
        "(nan) can0 351#00",
        "x" * 600,
    ],
)
def test_candump_bad_lines_raise_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolError):
        parse_candump_line(line)


def test_iter_capture_keeps_going_after_bad_lines() -> None:
    text = (
        "(1700000000.000000) can0 351#1402C012C012C201\n"
        "this line is noise\n"
        "\n"
        "(1700000000.010000) can0 355#58005E00\n"
        "(1700000000.020000) can0 351#R\n"
        "(1700000000.030000) can0 356#7A13\n"
    )
    entries = list(iter_capture(text))
    assert [type(e) for e in entries] == [CanRecord, CaptureError, CanRecord, CanRecord]
    error = entries[1]
    assert isinstance(error, CaptureError)
    assert (error.line_number, error.line) == (2, "this line is noise")
    # The truncated 0x356 parses as a record; decoding it is what fails.
    last = entries[3]
    assert isinstance(last, CanRecord)
    with pytest.raises(ProtocolError, match="0x356"):
        decode_frame(last.can_id, last.data)


def test_decode_capture_replays_a_mixed_capture() -> None:
    lines = [
        f"({t:.6f}) can0 {can_id:03X}#{data.hex().upper()}"
        for t, (can_id, data) in enumerate(OLD_FW_CYCLE * 2)
    ]
    lines.insert(3, "(2.500000) can0 356#7A13")  # truncated frame: a decode error
    lines.insert(5, "line noise")
    lines.append("(20.000000) can0 18FF50E5#0102")  # extended id: not PYLON LV CAN
    lines.append("(21.000000) can0 307#1234567856494300")  # Victron id: unknown
    result = decode_capture("\n".join(lines))
    assert result.bank.module_count == 6
    assert result.bank.soc == 88.0
    assert result.firmware == "v1.2"
    assert result.cycles == 1
    assert result.frames == 12 + 1 + 2
    assert result.unknown_frames == 2
    assert result.error_count == 2
    assert [e.line_number for e in result.errors] == [4, 6]
    assert "0x356" in result.errors[0].reason


def test_real_smartbms_capture_shows_a_healthy_bank() -> None:
    """The real Venus OS dump of a working SmartBMS: no protection, no warning, 52.17 V."""
    path = Path(__file__).parent / "captures" / "can" / "real"
    result = decode_capture((path / "venus_smartbms_lookalike_candump.txt").read_text())
    assert result.firmware == "v1.3"
    assert result.bank.protections == frozenset()
    assert result.bank.alarms == frozenset()
    assert result.bank.voltage == pytest.approx(52.17)


def test_35a_reported_flags_leave_out_unreported_slots() -> None:
    """Slots sent as ``00`` are not observed by the BMS: they are not among the reported
    flags, while active and normal slots are (Pylontech's all-zero frame reports none)."""
    healthy = decode_frame(0x35A, frame("AA AA AA 02 AA AA AA 02"))
    assert isinstance(healthy, CanSmaAlarms)
    assert Protection.UNDER_VOLTAGE in healthy.reported_flags
    assert Alarm.CELL_IMBALANCE in healthy.reported_flags
    # Only the alarm word's voltage slots (1, 2), one normal and one active.
    partial = decode_frame(0x35A, frame("18 00 00 00 00 00 00 00"))
    assert isinstance(partial, CanSmaAlarms)
    assert partial.reported_flags == {Protection.OVER_VOLTAGE, Protection.UNDER_VOLTAGE}
    assert partial.protections == {Protection.UNDER_VOLTAGE}
    zeros = decode_frame(0x35A, bytes(8))
    assert isinstance(zeros, CanSmaAlarms)
    assert zeros.reported_flags == frozenset()
