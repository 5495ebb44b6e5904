"""PYLON LV CAN: broadcast frames -> typed parts -> a bank, and the reverse for the simulator.

The master battery broadcasts the whole stack's state about once a second as classic
11-bit frames, little-endian (PYLON LV CAN protocol V1.2). Old firmware ("V1.2") sends 0x351, 0x355
(DLC 4), 0x356, 0x359, 0x35C, 0x35E; newer firmware ("V1.3", setfire) drops 0x359/0x35C
and sends 0x355 (DLC 6), 0x35A (SMA/Victron alarm pairs) and 0x35F (battery info).

Layers in this module:

* ``decode_frame(can_id, data)`` -> one frozen part per documented id, ``None`` for ids
  this protocol does not define; raises only ``ProtocolError`` (short or over-long frames).
* ``CanBankAssembler`` keeps the latest part per id with its arrival time, builds a
  ``Bank``, detects broadcast cycles and expires parts that stop arriving.
* ``encode_bank`` / ``encode_keepalive`` produce frames (the simulator broadcasts them).
* ``parse_candump_line`` / ``iter_capture`` / ``decode_capture`` read ``candump`` text
  for ``scripts/decode``.

Only the keep-alive (0x305, eight zero bytes) is meant to be *sent* to a battery; every
other encoder exists for the simulator and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
import math
import re
import struct
from typing import ClassVar, Literal

from ..bounds import MAX_MODULES_TOTAL, CountBoundError, check_count
from ..errors import ProtocolError
from ..model import Alarm, Bank, Protection
from ..plausibility import PACK_VOLTAGE

# --------------------------------------------------------------------------- ids

KEEPALIVE_ID = 0x305
"""Inverter -> battery keep-alive (CAN protocol V1.0 and V1.2): eight zero bytes every second."""
LIMITS_ID = 0x351
STATE_ID = 0x355
MEASUREMENTS_ID = 0x356
PROTECTION_ID = 0x359
SMA_ALARMS_ID = 0x35A
REQUEST_ID = 0x35C
MANUFACTURER_ID = 0x35E
BATTERY_INFO_ID = 0x35F

CLASSIC_MAX_DLC = 8
FD_MAX_DLC = 64

Firmware = Literal["v1.2", "v1.3"]

# Precompiled layouts (little-endian). Signed where the CAN protocol V1.2 says "signed".
_U16 = struct.Struct("<H")
_LIMITS6 = struct.Struct("<Hhh")  # CVL 0.1 V, CCL 0.1 A, DCL 0.1 A
_LIMITS8 = struct.Struct("<HhhH")  # + DVL 0.1 V (bytes 6-7, all real captures)
_STATE4 = struct.Struct("<HH")  # SOC %, SOH %
_STATE6 = struct.Struct("<HHH")  # + bytes 4-5 (new FW; observed 00 00)
_MEASUREMENTS = struct.Struct("<hhh")  # V 0.01, A 0.1 (+ = charge), degC 0.1
_INFO6 = struct.Struct("<2s2BH")  # chemistry, hw major, hw minor, capacity Ah
_INFO8 = struct.Struct("<2s2BHH")  # + software version

_PADDING = " \x00\xff"

#: Bank voltages (V) a supported bank can broadcast in 0x356: the pack-voltage range of
#: ``core/plausibility.py`` (one fact, with its manual sources there). A value outside it is
#: a frame in other units (one BMS sends 0.1 V: 5.22 V for 52.2 V), never a reading; the
#: codec withholds it and counts it.
PLAUSIBLE_BANK_VOLTAGE: tuple[float, float] = (PACK_VOLTAGE.low, PACK_VOLTAGE.high)


def _short(can_id: int, data: bytes, need: int) -> ProtocolError:
    return ProtocolError(f"CAN 0x{can_id:03X}: {len(data)} data bytes, at least {need} needed")


def _ascii(raw: bytes) -> str:
    """Printable ASCII of a fixed-width text field, padding (space, NUL, 0xFF) stripped."""
    text = raw.decode("ascii", "replace").strip(_PADDING + "\ufffd")
    # Hostile bytes inside the text become '?' rather than control characters.
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)


# --------------------------------------------------------------------------- 0x359 bits

# (byte, mask) -> flag, from PYLON LV CAN protocol V1.2 tables 1-4. Emulator variant (ArminJo, old
# Battery-Emulator): "system error" / "internal communication fail" at bit 7 instead of 3.
_PROTECTION_BITS: tuple[tuple[int, int, Protection], ...] = (
    (0, 0x02, Protection.OVER_VOLTAGE),
    (0, 0x04, Protection.UNDER_VOLTAGE),
    (0, 0x08, Protection.OVER_TEMPERATURE),
    (0, 0x10, Protection.UNDER_TEMPERATURE),
    (0, 0x80, Protection.DISCHARGE_OVER_CURRENT),
    (1, 0x01, Protection.CHARGE_OVER_CURRENT),
    (1, 0x08, Protection.SYSTEM_ERROR),
    (1, 0x80, Protection.SYSTEM_ERROR),
)
_ALARM_BITS: tuple[tuple[int, int, Alarm], ...] = (
    (2, 0x02, Alarm.HIGH_VOLTAGE),
    (2, 0x04, Alarm.LOW_VOLTAGE),
    (2, 0x08, Alarm.HIGH_TEMPERATURE),
    (2, 0x10, Alarm.LOW_TEMPERATURE),
    (2, 0x80, Alarm.DISCHARGE_HIGH_CURRENT),
    (3, 0x01, Alarm.CHARGE_HIGH_CURRENT),
    (3, 0x08, Alarm.INTERNAL_COMMUNICATION_FAIL),
    (3, 0x80, Alarm.INTERNAL_COMMUNICATION_FAIL),
)
# Bits no document defines, per byte (kept in the part, never mapped).
_PROTECTION_DOCUMENTED = (0x9E, 0x89, 0x9E, 0x89)

# Encoding: every model flag onto the 0x359 bit of its family (official positions only).
# The LV CAN document has no bit for short circuit, reverse polarity or sensor failure; a
# tripped protection must still reach the inverter, so those use the nearest documented
# bit (short circuit = extreme discharge over-current; the rest = system error).
_PROTECTION_TO_359: dict[Protection, tuple[int, int]] = {
    Protection.OVER_VOLTAGE: (0, 0x02),
    Protection.CELL_OVER_VOLTAGE: (0, 0x02),
    Protection.MODULE_OVER_VOLTAGE: (0, 0x02),
    Protection.UNDER_VOLTAGE: (0, 0x04),
    Protection.CELL_UNDER_VOLTAGE: (0, 0x04),
    Protection.MODULE_UNDER_VOLTAGE: (0, 0x04),
    Protection.OVER_TEMPERATURE: (0, 0x08),
    Protection.CHARGE_OVER_TEMPERATURE: (0, 0x08),
    Protection.DISCHARGE_OVER_TEMPERATURE: (0, 0x08),
    Protection.MOSFET_OVER_TEMPERATURE: (0, 0x08),
    Protection.UNDER_TEMPERATURE: (0, 0x10),
    Protection.CHARGE_UNDER_TEMPERATURE: (0, 0x10),
    Protection.DISCHARGE_UNDER_TEMPERATURE: (0, 0x10),
    Protection.DISCHARGE_OVER_CURRENT: (0, 0x80),
    Protection.SHORT_CIRCUIT: (0, 0x80),
    Protection.CHARGE_OVER_CURRENT: (1, 0x01),
    Protection.SYSTEM_ERROR: (1, 0x08),
    Protection.SENSOR_FAILURE: (1, 0x08),
    Protection.REVERSE_POLARITY: (1, 0x08),
    Protection.GENERAL: (1, 0x08),
}
_ALARM_TO_359: dict[Alarm, tuple[int, int]] = {
    Alarm.HIGH_VOLTAGE: (2, 0x02),
    Alarm.CELL_HIGH_VOLTAGE: (2, 0x02),
    Alarm.MODULE_HIGH_VOLTAGE: (2, 0x02),
    Alarm.LOW_VOLTAGE: (2, 0x04),
    Alarm.CELL_LOW_VOLTAGE: (2, 0x04),
    Alarm.MODULE_LOW_VOLTAGE: (2, 0x04),
    Alarm.HIGH_TEMPERATURE: (2, 0x08),
    Alarm.CHARGE_HIGH_TEMPERATURE: (2, 0x08),
    Alarm.DISCHARGE_HIGH_TEMPERATURE: (2, 0x08),
    Alarm.MOSFET_HIGH_TEMPERATURE: (2, 0x08),
    Alarm.LOW_TEMPERATURE: (2, 0x10),
    Alarm.CHARGE_LOW_TEMPERATURE: (2, 0x10),
    Alarm.DISCHARGE_LOW_TEMPERATURE: (2, 0x10),
    Alarm.DISCHARGE_HIGH_CURRENT: (2, 0x80),
    Alarm.CHARGE_HIGH_CURRENT: (3, 0x01),
    Alarm.INTERNAL_COMMUNICATION_FAIL: (3, 0x08),
    # Warnings without a 0x359 bit (imbalance, general, sensor errors) are not sent.
}

# --------------------------------------------------------------------------- 0x35A slots

# SMA/Victron "CAN-bus BMS" layout: 16 two-bit slots per 32-bit little-endian word (slot n in
# bits 2n..2n+1), bytes 0-3 alarms (protections), bytes 4-7 warnings.
#
# Which pair value means "active" is decided by what real devices put on the wire, not by the
# SMA notation "10 = active", which writes the high bit first:
# * a healthy SmartBMS-style BMS on a Victron bus (tests/core/captures/can/real,
#   venus_smartbms_lookalike_candump.txt) sends AA AA AA 02 AA AA AA 02: every defined slot
#   0b10, the three reserved slots 0b00. Read as "0b10 = active" a working bank would show
#   11 protections and 11 warnings;
# * diyBMS v4 (ESP32 controller firmware, Victron CAN-bus output) sends 0b01 for an active
#   alarm or warning and 0b10 for OK, and notes that this is the SMA notation bit-swapped;
# * an ESPHome CAN-bus BMS component (its 0x35A binary sensors) reads each flag from the
#   low bit of its pair;
# * Discover Energy's CAN description of the frame: "1 = alarm/warning, 2 = normal";
# * Pylontech firmware with this frame set sent all zeros (setfire's US5000 capture).
# So: 0b01 = active, 0b10 = normal, 0b00 = not reported, 0b11 = undefined (not active). The
# TinyBMS-to-Victron bridge document and broglep's decoder read 0b10 as active; they follow
# the notation literally, and the devices above contradict them.
SMA_SLOTS: tuple[str, ...] = (
    "general",
    "high_voltage",
    "low_voltage",
    "high_temperature",
    "low_temperature",
    "high_temperature_charge",
    "low_temperature_charge",
    "high_discharge_current",
    "high_charge_current",
    "contactor",
    "short_circuit",
    "bms_internal",
    "cell_imbalance",
    "reserved_13",
    "reserved_14",
    "reserved_15",
)
_SMA_ACTIVE = 0b01
_SMA_NORMAL = 0b10
#: Some BMSes send 0x35A with DLC 7: the warning word's top byte (slots 12-15) is missing
#: and read as "not reported".
SMA_MIN_DLC = 7
# Slot -> model flag for the alarm word. Contactor failure is a BMS hardware fault (system
# error); the bank has no protection-level imbalance, so it is reported as the warning.
_SMA_ALARM_SLOT_FLAGS: dict[int, Protection | Alarm] = {
    0: Protection.GENERAL,
    1: Protection.OVER_VOLTAGE,
    2: Protection.UNDER_VOLTAGE,
    3: Protection.OVER_TEMPERATURE,
    4: Protection.UNDER_TEMPERATURE,
    5: Protection.CHARGE_OVER_TEMPERATURE,
    6: Protection.CHARGE_UNDER_TEMPERATURE,
    7: Protection.DISCHARGE_OVER_CURRENT,
    8: Protection.CHARGE_OVER_CURRENT,
    9: Protection.SYSTEM_ERROR,
    10: Protection.SHORT_CIRCUIT,
    11: Protection.SYSTEM_ERROR,
    12: Alarm.CELL_IMBALANCE,
}
_SMA_WARNING_SLOT_FLAGS: dict[int, Alarm] = {
    0: Alarm.GENERAL,
    1: Alarm.HIGH_VOLTAGE,
    2: Alarm.LOW_VOLTAGE,
    3: Alarm.HIGH_TEMPERATURE,
    4: Alarm.LOW_TEMPERATURE,
    5: Alarm.CHARGE_HIGH_TEMPERATURE,
    6: Alarm.CHARGE_LOW_TEMPERATURE,
    7: Alarm.DISCHARGE_HIGH_CURRENT,
    8: Alarm.CHARGE_HIGH_CURRENT,
    9: Alarm.GENERAL,
    10: Alarm.GENERAL,
    11: Alarm.INTERNAL_COMMUNICATION_FAIL,
    12: Alarm.CELL_IMBALANCE,
}
_PROTECTION_TO_SMA: dict[Protection, int] = {
    Protection.OVER_VOLTAGE: 1,
    Protection.CELL_OVER_VOLTAGE: 1,
    Protection.MODULE_OVER_VOLTAGE: 1,
    Protection.UNDER_VOLTAGE: 2,
    Protection.CELL_UNDER_VOLTAGE: 2,
    Protection.MODULE_UNDER_VOLTAGE: 2,
    Protection.OVER_TEMPERATURE: 3,
    Protection.DISCHARGE_OVER_TEMPERATURE: 3,
    Protection.MOSFET_OVER_TEMPERATURE: 3,
    Protection.UNDER_TEMPERATURE: 4,
    Protection.DISCHARGE_UNDER_TEMPERATURE: 4,
    Protection.CHARGE_OVER_TEMPERATURE: 5,
    Protection.CHARGE_UNDER_TEMPERATURE: 6,
    Protection.DISCHARGE_OVER_CURRENT: 7,
    Protection.CHARGE_OVER_CURRENT: 8,
    Protection.SHORT_CIRCUIT: 10,
    Protection.SYSTEM_ERROR: 11,
    Protection.SENSOR_FAILURE: 11,
    Protection.REVERSE_POLARITY: 0,  # no slot of its own: the general alarm
    Protection.GENERAL: 0,
}
_ALARM_TO_SMA: dict[Alarm, int] = {
    Alarm.GENERAL: 0,
    Alarm.CELL_VOLTAGE_ERROR: 0,
    Alarm.TEMPERATURE_SENSOR_ERROR: 0,
    Alarm.HIGH_VOLTAGE: 1,
    Alarm.CELL_HIGH_VOLTAGE: 1,
    Alarm.MODULE_HIGH_VOLTAGE: 1,
    Alarm.LOW_VOLTAGE: 2,
    Alarm.CELL_LOW_VOLTAGE: 2,
    Alarm.MODULE_LOW_VOLTAGE: 2,
    Alarm.HIGH_TEMPERATURE: 3,
    Alarm.DISCHARGE_HIGH_TEMPERATURE: 3,
    Alarm.MOSFET_HIGH_TEMPERATURE: 3,
    Alarm.LOW_TEMPERATURE: 4,
    Alarm.DISCHARGE_LOW_TEMPERATURE: 4,
    Alarm.CHARGE_HIGH_TEMPERATURE: 5,
    Alarm.CHARGE_LOW_TEMPERATURE: 6,
    Alarm.DISCHARGE_HIGH_CURRENT: 7,
    Alarm.CHARGE_HIGH_CURRENT: 8,
    Alarm.INTERNAL_COMMUNICATION_FAIL: 11,
    Alarm.CELL_IMBALANCE: 12,
}


def _active_slots(word: int) -> Iterator[int]:
    return _slots_in(word, _SMA_ACTIVE)


def _slots_in(word: int, state: int) -> Iterator[int]:
    for slot in range(16):
        if (word >> (2 * slot)) & 0b11 == state:
            yield slot


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True, slots=True, kw_only=True)
class CanLimits:
    """0x351: charge/discharge limits. DCL is a positive magnitude (abs of the wire value)."""

    CAN_ID: ClassVar[int] = LIMITS_ID
    charge_voltage_limit: float  # V
    charge_current_limit: float  # A
    discharge_current_limit: float  # A, >= 0
    discharge_voltage_limit: float | None = None  # V; absent when DLC 6

    def encode(self) -> bytes:
        """Encode the frame's data bytes (DLC 8, or 6 without DVL)."""
        cvl = _clamp(round(self.charge_voltage_limit * 10), 0, 0xFFFF)
        ccl = _clamp(round(self.charge_current_limit * 10), -0x8000, 0x7FFF)
        dcl = _clamp(round(abs(self.discharge_current_limit) * 10), 0, 0x7FFF)
        if self.discharge_voltage_limit is None:
            return _LIMITS6.pack(cvl, ccl, dcl)
        dvl = _clamp(round(self.discharge_voltage_limit * 10), 0, 0xFFFF)
        return _LIMITS8.pack(cvl, ccl, dcl, dvl)


@dataclass(frozen=True, slots=True, kw_only=True)
class CanStateOfCharge:
    """0x355: SOC and SOH in %. ``extension`` = raw bytes 4-5 of new firmware (meaning unknown)."""

    CAN_ID: ClassVar[int] = STATE_ID
    soc: float
    soh: float
    extension: int | None = None

    def encode(self) -> bytes:
        """Encode the frame's data bytes (DLC 4, or 6 with the extension word)."""
        soc = _clamp(round(self.soc), 0, 0xFFFF)
        soh = _clamp(round(self.soh), 0, 0xFFFF)
        if self.extension is None:
            return _STATE4.pack(soc, soh)
        return _STATE6.pack(soc, soh, _clamp(self.extension, 0, 0xFFFF))


@dataclass(frozen=True, slots=True, kw_only=True)
class CanMeasurements:
    """0x356: stack voltage (V), current (A, + = charge), average cell temperature (degC).

    ``voltage_plausible`` is False for a voltage no supported bank has
    (``PLAUSIBLE_BANK_VOLTAGE``); the bank then leaves the voltage out.
    """

    CAN_ID: ClassVar[int] = MEASUREMENTS_ID
    voltage: float
    current: float
    temperature: float

    @property
    def voltage_plausible(self) -> bool:
        """Whether the voltage is one a supported bank can have."""
        low, high = PLAUSIBLE_BANK_VOLTAGE
        return low <= self.voltage <= high

    def encode(self) -> bytes:
        """Encode the frame's data bytes (DLC 6)."""
        return _MEASUREMENTS.pack(
            _clamp(round(self.voltage * 100), -0x8000, 0x7FFF),
            _clamp(round(self.current * 10), -0x8000, 0x7FFF),
            _clamp(round(self.temperature * 10), -0x8000, 0x7FFF),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CanProtectionAlarm:
    """0x359 (old firmware): protections, alarms, module count and the "PN" tag.

    ``undocumented_bits`` holds set bits that no document names (bytes 0-3 as a
    little-endian word); ``emulator_variant`` is True when "system error"/"internal
    communication fail" arrived at bit 7 (ArminJo, old Battery-Emulator) instead of bit 3.
    """

    CAN_ID: ClassVar[int] = PROTECTION_ID
    protections: frozenset[Protection] = frozenset()
    alarms: frozenset[Alarm] = frozenset()
    module_count: int = 0
    tag: str = ""
    undocumented_bits: int = 0
    emulator_variant: bool = False

    def encode(self) -> bytes:
        """Encode the frame's data bytes (DLC 7 with a two-letter tag), official bit positions."""
        flags = bytearray(4)
        for protection in self.protections:
            spot = _PROTECTION_TO_359.get(protection)
            if spot is not None:
                flags[spot[0]] |= spot[1]
        for alarm in self.alarms:
            spot = _ALARM_TO_359.get(alarm)
            if spot is not None:
                flags[spot[0]] |= spot[1]
        flags = bytearray(
            (a | (b & ~m)) & 0xFF
            for a, b, m in zip(
                flags,
                (self.undocumented_bits & 0xFFFFFFFF).to_bytes(4, "little"),
                _PROTECTION_DOCUMENTED,
                strict=True,
            )
        )
        tag = self.tag.encode("ascii", "replace")[:3]
        return bytes(flags) + bytes((_clamp(self.module_count, 0, 0xFF),)) + tag


@dataclass(frozen=True, slots=True, kw_only=True)
class CanRequestFlags:
    """0x35C (old firmware): the battery's requests to the inverter."""

    CAN_ID: ClassVar[int] = REQUEST_ID
    charge_enabled: bool
    discharge_enabled: bool
    force_charge_1: bool
    force_charge_2: bool
    full_charge_request: bool

    def encode(self) -> bytes:
        """Encode the frame's data bytes (DLC 2, byte 1 = 0)."""
        value = (
            (0x80 if self.charge_enabled else 0)
            | (0x40 if self.discharge_enabled else 0)
            | (0x20 if self.force_charge_1 else 0)
            | (0x10 if self.force_charge_2 else 0)
            | (0x08 if self.full_charge_request else 0)
        )
        return bytes((value, 0))


@dataclass(frozen=True, slots=True, kw_only=True)
class CanManufacturer:
    """0x35E: manufacturer name, ASCII, padding stripped ("PYLON", "PYTES")."""

    CAN_ID: ClassVar[int] = MANUFACTURER_ID
    name: str

    def encode(self) -> bytes:
        """Encode the frame's data bytes: the name padded with spaces to 8 bytes (cut at 8)."""
        return self.name.encode("ascii", "replace")[:8].ljust(8, b" ")


@dataclass(frozen=True, slots=True, kw_only=True)
class CanSmaAlarms:
    """0x35A (new firmware): SMA/Victron alarm and warning words (16 two-bit slots each).

    ``alarm_word``/``warning_word`` are the raw little-endian words; ``protections``
    and ``alarms`` are the active (``01``) slots mapped onto model flags; ``SMA_SLOTS``
    names the slots, and ``active_alarm_slots`` keeps slots the model merges (contactor
    and BMS internal are both ``SYSTEM_ERROR``) distinguishable. ``normal_alarm_slots`` /
    ``normal_warning_slots`` are the slots the BMS reports as OK (``10``); a slot in
    neither is not reported by this BMS.
    """

    CAN_ID: ClassVar[int] = SMA_ALARMS_ID
    alarm_word: int = 0
    warning_word: int = 0

    @property
    def active_alarm_slots(self) -> tuple[str, ...]:
        """Names of the active alarm slots."""
        return tuple(SMA_SLOTS[s] for s in _active_slots(self.alarm_word))

    @property
    def active_warning_slots(self) -> tuple[str, ...]:
        """Names of the active warning slots."""
        return tuple(SMA_SLOTS[s] for s in _active_slots(self.warning_word))

    @property
    def normal_alarm_slots(self) -> tuple[str, ...]:
        """Names of the alarm slots the BMS reports as OK."""
        return tuple(SMA_SLOTS[s] for s in _slots_in(self.alarm_word, _SMA_NORMAL))

    @property
    def normal_warning_slots(self) -> tuple[str, ...]:
        """Names of the warning slots the BMS reports as OK."""
        return tuple(SMA_SLOTS[s] for s in _slots_in(self.warning_word, _SMA_NORMAL))

    @property
    def reported_flags(self) -> frozenset[Protection | Alarm]:
        """Model flags whose slot the BMS reports at all (active or normal, not ``00``).

        A flag outside this set is one this BMS does not observe: it is not "off".
        """
        found: set[Protection | Alarm] = set()
        for state in (_SMA_ACTIVE, _SMA_NORMAL):
            found.update(
                flag
                for s in _slots_in(self.alarm_word, state)
                if (flag := _SMA_ALARM_SLOT_FLAGS.get(s))
            )
            found.update(
                flag
                for s in _slots_in(self.warning_word, state)
                if (flag := _SMA_WARNING_SLOT_FLAGS.get(s))
            )
        return frozenset(found)

    @property
    def general_alarm(self) -> bool:
        """The alarm word's "general" slot is active."""
        return (self.alarm_word & 0b11) == _SMA_ACTIVE

    @property
    def protections(self) -> frozenset[Protection]:
        """Active alarm slots as protections."""
        return frozenset(
            flag
            for s in _active_slots(self.alarm_word)
            if isinstance(flag := _SMA_ALARM_SLOT_FLAGS.get(s), Protection)
        )

    @property
    def alarms(self) -> frozenset[Alarm]:
        """Active warning slots (and the alarm word's imbalance slot) as alarms."""
        found = {
            flag
            for s in _active_slots(self.warning_word)
            if (flag := _SMA_WARNING_SLOT_FLAGS.get(s)) is not None
        }
        found.update(
            alarm
            for s in _active_slots(self.alarm_word)
            if isinstance(alarm := _SMA_ALARM_SLOT_FLAGS.get(s), Alarm)
        )
        return frozenset(found)

    @classmethod
    def from_flags(cls, protections: Iterable[Protection], alarms: Iterable[Alarm]) -> CanSmaAlarms:
        """Build the frame for a set of model flags (inactive slots sent as ``00``, as firmware does)."""
        alarm_word = 0
        for protection in protections:
            slot = _PROTECTION_TO_SMA.get(protection)
            if slot is not None:
                alarm_word |= _SMA_ACTIVE << (2 * slot)
        warning_word = 0
        for alarm in alarms:
            slot = _ALARM_TO_SMA.get(alarm)
            if slot is not None:
                warning_word |= _SMA_ACTIVE << (2 * slot)
        return cls(alarm_word=alarm_word, warning_word=warning_word)

    def encode(self) -> bytes:
        """Encode the frame's data bytes (DLC 8)."""
        return (self.alarm_word & 0xFFFFFFFF).to_bytes(4, "little") + (
            self.warning_word & 0xFFFFFFFF
        ).to_bytes(4, "little")


@dataclass(frozen=True, slots=True, kw_only=True)
class CanBatteryInfo:
    """0x35F (new firmware, SMA style): chemistry, hardware version, capacity, software version."""

    CAN_ID: ClassVar[int] = BATTERY_INFO_ID
    chemistry: str
    hardware_version: tuple[int, int]
    capacity: int  # Ah
    software_version: int | None = None  # raw uint16; format not documented

    @property
    def hardware_version_text(self) -> str:
        """``"major.minor"``."""
        return f"{self.hardware_version[0]}.{self.hardware_version[1]}"

    def encode(self) -> bytes:
        """Encode the frame's data bytes (DLC 8, or 6 without the software version)."""
        chemistry = self.chemistry.encode("ascii", "replace")[:2].ljust(2, b" ")
        major = _clamp(self.hardware_version[0], 0, 0xFF)
        minor = _clamp(self.hardware_version[1], 0, 0xFF)
        capacity = _clamp(self.capacity, 0, 0xFFFF)
        if self.software_version is None:
            return _INFO6.pack(chemistry, major, minor, capacity)
        return _INFO8.pack(
            chemistry, major, minor, capacity, _clamp(self.software_version, 0, 0xFFFF)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CanKeepAlive:
    """0x305: the inverter's keep-alive (seen when another inverter shares the bus)."""

    CAN_ID: ClassVar[int] = KEEPALIVE_ID
    payload: bytes = bytes(8)

    def encode(self) -> bytes:
        """Encode the frame's data bytes."""
        return self.payload


CanPart = (
    CanLimits
    | CanStateOfCharge
    | CanMeasurements
    | CanProtectionAlarm
    | CanRequestFlags
    | CanManufacturer
    | CanSmaAlarms
    | CanBatteryInfo
    | CanKeepAlive
)


def _clamp(value: int, low: int, high: int) -> int:
    return low if value < low else min(value, high)


# --------------------------------------------------------------------------- decoding


def _decode_limits(data: bytes) -> CanLimits:
    if len(data) >= 8:
        cvl, ccl, dcl, dvl = _LIMITS8.unpack_from(data)
        return CanLimits(
            charge_voltage_limit=cvl / 10,
            charge_current_limit=ccl / 10,
            # The sign differs by source (docs/protocol-notes.md D8).
            discharge_current_limit=abs(dcl) / 10,
            discharge_voltage_limit=dvl / 10,
        )
    if len(data) < 6:
        raise _short(LIMITS_ID, data, 6)
    cvl, ccl, dcl = _LIMITS6.unpack_from(data)
    return CanLimits(
        charge_voltage_limit=cvl / 10,
        charge_current_limit=ccl / 10,
        discharge_current_limit=abs(dcl) / 10,
    )


def _decode_state(data: bytes) -> CanStateOfCharge:
    if len(data) >= 6:
        soc, soh, extension = _STATE6.unpack_from(data)
        return CanStateOfCharge(soc=float(soc), soh=float(soh), extension=extension)
    if len(data) < 4:
        raise _short(STATE_ID, data, 4)
    soc, soh = _STATE4.unpack_from(data)
    return CanStateOfCharge(soc=float(soc), soh=float(soh))


def _decode_measurements(data: bytes) -> CanMeasurements:
    if len(data) < 6:
        raise _short(MEASUREMENTS_ID, data, 6)
    voltage, current, temperature = _MEASUREMENTS.unpack_from(data)
    return CanMeasurements(
        voltage=voltage / 100, current=current / 10, temperature=temperature / 10
    )


def _decode_protection(data: bytes) -> CanProtectionAlarm:
    if len(data) < 5:
        raise _short(PROTECTION_ID, data, 5)
    # More modules than any supported bank has: the frame is not a reading (0xFF filler).
    try:
        module_count = check_count("modules", data[4], MAX_MODULES_TOTAL)
    except CountBoundError as err:
        raise CountBoundError(f"CAN 0x{PROTECTION_ID:03X}: {err}") from None
    if data[:4] == b"\xff\xff\xff\xff":
        # Every flag bit set, undefined ones included, with over- and under-voltage at once:
        # the all-ones "not available" filler of CAN signals, not a state of a bank.
        raise ProtocolError("CAN 0x359: every flag bit set (filler, not a bank state)")
    tag = _ascii(data[5:8])
    if not any(data[:4]):  # the usual case: nothing tripped
        return CanProtectionAlarm(module_count=module_count, tag=tag)
    protections = frozenset(p for byte, mask, p in _PROTECTION_BITS if data[byte] & mask)
    alarms = frozenset(a for byte, mask, a in _ALARM_BITS if data[byte] & mask)
    undocumented = int.from_bytes(
        bytes(b & ~m & 0xFF for b, m in zip(data[:4], _PROTECTION_DOCUMENTED, strict=True)),
        "little",
    )
    return CanProtectionAlarm(
        protections=protections,
        alarms=alarms,
        module_count=module_count,
        tag=tag,
        undocumented_bits=undocumented,
        emulator_variant=bool((data[1] | data[3]) & 0x80),
    )


def _decode_request(data: bytes) -> CanRequestFlags:
    if len(data) < 1:
        raise _short(REQUEST_ID, data, 1)
    value = data[0]
    return CanRequestFlags(
        charge_enabled=bool(value & 0x80),
        discharge_enabled=bool(value & 0x40),
        force_charge_1=bool(value & 0x20),
        force_charge_2=bool(value & 0x10),
        full_charge_request=bool(value & 0x08),
    )


def _decode_manufacturer(data: bytes) -> CanManufacturer:
    if len(data) < 1:
        raise _short(MANUFACTURER_ID, data, 1)
    return CanManufacturer(name=_ascii(data))


def _decode_sma_alarms(data: bytes) -> CanSmaAlarms:
    if len(data) < SMA_MIN_DLC:
        raise _short(SMA_ALARMS_ID, data, SMA_MIN_DLC)
    return CanSmaAlarms(
        alarm_word=int.from_bytes(data[0:4], "little"),
        warning_word=int.from_bytes(data[4:8], "little"),  # DLC 7: top byte "not reported"
    )


def _decode_battery_info(data: bytes) -> CanBatteryInfo:
    if len(data) >= 8:
        chemistry, major, minor, capacity, software = _INFO8.unpack_from(data)
    elif len(data) >= 6:
        chemistry, major, minor, capacity = _INFO6.unpack_from(data)
        software = None
    else:
        raise _short(BATTERY_INFO_ID, data, 6)
    return CanBatteryInfo(
        chemistry=_ascii(chemistry),
        hardware_version=(major, minor),
        capacity=capacity,
        software_version=software,
    )


def _decode_keepalive(data: bytes) -> CanKeepAlive:
    return CanKeepAlive(payload=bytes(data))


_DECODERS: dict[int, Callable[[bytes], CanPart]] = {
    LIMITS_ID: _decode_limits,
    STATE_ID: _decode_state,
    MEASUREMENTS_ID: _decode_measurements,
    PROTECTION_ID: _decode_protection,
    REQUEST_ID: _decode_request,
    MANUFACTURER_ID: _decode_manufacturer,
    SMA_ALARMS_ID: _decode_sma_alarms,
    BATTERY_INFO_ID: _decode_battery_info,
    KEEPALIVE_ID: _decode_keepalive,
}
KNOWN_IDS: frozenset[int] = frozenset(_DECODERS)
"""Every id ``decode_frame`` understands."""
BANK_IDS: frozenset[int] = KNOWN_IDS - {KEEPALIVE_ID}
"""Ids whose parts describe the bank (the keep-alive does not)."""


def decode_frame(can_id: int, data: bytes) -> CanPart | None:
    """Decode one frame into its typed part; ``None`` for an id this protocol does not define.

    Extra bytes beyond a layout are ignored (emulators send DLC 8 for 0x355); a frame
    too short for its id, or longer than classic CAN's 8 bytes, raises ``ProtocolError``.
    """
    decoder = _DECODERS.get(can_id)
    if decoder is None:
        return None
    if len(data) > CLASSIC_MAX_DLC:
        raise ProtocolError(
            f"CAN 0x{can_id:03X}: {len(data)} data bytes; classic CAN carries at most 8"
        )
    return decoder(data)


# --------------------------------------------------------------------------- assembler


def bank_from_parts(parts: Iterable[CanPart]) -> Bank:
    """Return the bank-level values a set of parts carries (flags from 0x359 and 0x35A united)."""
    values: dict[str, object] = {}
    protections: set[Protection] = set()
    alarms: set[Alarm] = set()
    extra: list[tuple[str, str]] = []
    for part in parts:
        if isinstance(part, CanLimits):
            values["charge_voltage_limit"] = part.charge_voltage_limit
            values["charge_current_limit"] = part.charge_current_limit
            values["discharge_current_limit"] = part.discharge_current_limit
            values["discharge_voltage_limit"] = part.discharge_voltage_limit
        elif isinstance(part, CanStateOfCharge):
            values["soc"] = part.soc
            values["soh"] = part.soh
        elif isinstance(part, CanMeasurements):
            values["voltage"] = part.voltage if part.voltage_plausible else None
            values["current"] = part.current
            values["temperature"] = part.temperature
        elif isinstance(part, CanProtectionAlarm):
            protections.update(part.protections)
            alarms.update(part.alarms)
            values["module_count"] = part.module_count
        elif isinstance(part, CanRequestFlags):
            values["charge_enabled"] = part.charge_enabled
            values["discharge_enabled"] = part.discharge_enabled
            values["force_charge_1"] = part.force_charge_1
            values["force_charge_2"] = part.force_charge_2
            values["full_charge_request"] = part.full_charge_request
        elif isinstance(part, CanManufacturer):
            values["manufacturer"] = part.name or None
        elif isinstance(part, CanSmaAlarms):
            protections.update(part.protections)
            alarms.update(part.alarms)
        elif isinstance(part, CanBatteryInfo):
            values["full_capacity"] = float(part.capacity)
            extra.append(("can_chemistry", part.chemistry))
            extra.append(("can_hardware_version", part.hardware_version_text))
            if part.software_version is not None:
                extra.append(("can_software_version", str(part.software_version)))
    return Bank(
        protections=frozenset(protections),
        alarms=frozenset(alarms),
        extra=tuple(extra),
        **values,  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class _Entry:
    part: CanPart
    timestamp: float


class CanBankAssembler:
    """Collects broadcast parts into a bank, per id, with arrival times.

    ``max_age`` (seconds), when set, expires a part that has not arrived for that long
    on every ``update`` (its values become ``None``). Frames of undefined ids are only
    counted; a frame too short for its id raises ``ProtocolError`` (and is counted).
    A value the codec will not publish (a 0x356 voltage no supported bank has) is
    tallied in ``implausible`` by quantity, with the latest one in ``last_implausible``.

    Typical use in a link: ``assembler.update(...)`` per received frame, then
    ``bank = assembler.take_update()`` and publish when it is not ``None`` (at most once
    per broadcast cycle, only when something changed).
    """

    __slots__ = (
        "_bank",
        "_changed_since_take",
        "_cycle_complete",
        "_cycle_ids",
        "_parts",
        "_unknown_ids",
        "cycles",
        "error_frames",
        "frames",
        "implausible",
        "keepalives",
        "last_implausible",
        "max_age",
        "unknown_frames",
    )

    _MAX_UNKNOWN_IDS: ClassVar[int] = 64  # bound the per-id tally on a noisy bus

    def __init__(self, *, max_age: float | None = None) -> None:
        """Start empty; ``max_age`` enables expiry on every update."""
        self.max_age = max_age
        self.frames = 0  # every frame offered to update()
        self.unknown_frames = 0  # frames of ids the protocol does not define
        self.error_frames = 0  # frames that raised ProtocolError
        self.keepalives = 0  # 0x305 frames (another inverter on the bus)
        self.cycles = 0  # broadcast cycles completed
        self.implausible: dict[str, int] = {}  # quantity -> frames whose value was withheld
        self.last_implausible: str | None = None
        self._parts: dict[int, _Entry] = {}
        self._cycle_ids: set[int] = set()
        self._cycle_complete = False
        self._bank: Bank | None = None
        self._changed_since_take = False
        self._unknown_ids: dict[int, int] = {}

    def update(self, can_id: int, data: bytes, timestamp: float) -> bool:
        """Take one received frame; True when the bank's content changed."""
        self.frames += 1
        try:
            part = decode_frame(can_id, data)
        except ProtocolError:
            self.error_frames += 1
            raise
        changed = self.expire(timestamp) != () if self.max_age is not None else False
        if part is None:
            self.unknown_frames += 1
            if can_id in self._unknown_ids or len(self._unknown_ids) < self._MAX_UNKNOWN_IDS:
                self._unknown_ids[can_id] = self._unknown_ids.get(can_id, 0) + 1
            self._cycle_complete = False
            return changed
        if isinstance(part, CanKeepAlive):
            self.keepalives += 1
            self._cycle_complete = False
            return changed
        if isinstance(part, CanMeasurements) and not part.voltage_plausible:
            low, high = PLAUSIBLE_BANK_VOLTAGE
            self.implausible["voltage"] = self.implausible.get("voltage", 0) + 1
            self.last_implausible = (
                f"CAN 0x{can_id:03X}: bank voltage {part.voltage:g} V is outside "
                f"{low:g}-{high:g} V (not published)"
            )
        # A repeated id means the battery started its next broadcast round.
        if can_id in self._cycle_ids:
            self._cycle_complete = True
            self.cycles += 1
            self._cycle_ids.clear()
        else:
            self._cycle_complete = False
        self._cycle_ids.add(can_id)
        entry = self._parts.get(can_id)
        if entry is not None and entry.part == part:
            entry.timestamp = timestamp
            return changed
        self._parts[can_id] = _Entry(part, timestamp)
        self._bank = None
        self._changed_since_take = True
        return True

    @property
    def cycle_complete(self) -> bool:
        """True right after the frame that started a new broadcast cycle (until the next frame)."""
        return self._cycle_complete

    @property
    def unknown_ids(self) -> Mapping[int, int]:
        """Frames per undefined id (at most 64 ids tallied)."""
        return dict(self._unknown_ids)

    @property
    def seen_ids(self) -> tuple[int, ...]:
        """Ids of the parts currently held, ascending."""
        return tuple(sorted(self._parts))

    def part(self, can_id: int) -> CanPart | None:
        """Return the latest part of an id, if held."""
        entry = self._parts.get(can_id)
        return None if entry is None else entry.part

    def firmware(self) -> Firmware | None:
        """Which frame set the battery sends: "v1.3" (0x35A/0x35F), "v1.2" (0x359/0x35C)."""
        if SMA_ALARMS_ID in self._parts or BATTERY_INFO_ID in self._parts:
            return "v1.3"
        if PROTECTION_ID in self._parts or REQUEST_ID in self._parts:
            return "v1.2"
        return None

    def bank(self) -> Bank:
        """Return the bank-level values of the held parts (cached until a part changes)."""
        if self._bank is None:
            self._bank = bank_from_parts(self._parts[can_id].part for can_id in sorted(self._parts))
        return self._bank

    def take_update(self) -> Bank | None:
        """At most once per cycle: the bank, if a cycle just completed and content changed."""
        if not (self._cycle_complete and self._changed_since_take):
            return None
        self._changed_since_take = False
        return self.bank()

    def ages(self, now: float) -> dict[int, float]:
        """Seconds since each held part last arrived, by id (never negative)."""
        return {can_id: max(0.0, now - e.timestamp) for can_id, e in self._parts.items()}

    def stale_ids(self, now: float, max_age: float) -> tuple[int, ...]:
        """Ids whose part is older than ``max_age`` seconds, ascending."""
        return tuple(
            sorted(can_id for can_id, e in self._parts.items() if now - e.timestamp > max_age)
        )

    def expire(self, now: float, max_age: float | None = None) -> tuple[int, ...]:
        """Drop parts older than ``max_age`` (default: the assembler's); the ids dropped."""
        limit = self.max_age if max_age is None else max_age
        if limit is None:
            return ()
        stale = self.stale_ids(now, limit)
        for can_id in stale:
            del self._parts[can_id]
            self._cycle_ids.discard(can_id)
        if stale:
            self._bank = None
            self._changed_since_take = True
        return stale

    def reset(self) -> None:
        """Forget every part and the cycle state (e.g. after a reconnect); counters stay."""
        self._parts.clear()
        self._cycle_ids.clear()
        self._cycle_complete = False
        self._bank = None
        self._changed_since_take = False


# --------------------------------------------------------------------------- encoding


def _extra(bank: Bank, key: str) -> str | None:
    for name, value in bank.extra:
        if name == key:
            return value
    return None


def _parse_version(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    if text is None:
        return default
    major, _, minor = text.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return default


def _bank_flags(bank: Bank) -> tuple[frozenset[Protection], frozenset[Alarm]]:
    # The master reports for the whole stack: any module's flag is the bank's.
    protections = set(bank.protections)
    alarms = set(bank.alarms)
    for module in bank.modules:
        protections.update(module.protections)
        alarms.update(module.alarms)
    return frozenset(protections), frozenset(alarms)


def _zero(value: float | None) -> float:
    return 0.0 if value is None else value


def bank_parts(bank: Bank, *, firmware: Firmware = "v1.2") -> list[CanPart]:
    """Return the parts a battery of that firmware would broadcast for ``bank``, in order.

    A frame whose every field is ``None`` in the bank is left out; a ``None`` beside
    known values is sent as 0. Flags of the bank and of all its modules are united.
    """
    if firmware not in ("v1.2", "v1.3"):
        raise ValueError(f"unknown CAN firmware {firmware!r}; use 'v1.2' or 'v1.3'")
    new = firmware == "v1.3"
    parts: list[CanPart] = []
    limits = (
        bank.charge_voltage_limit,
        bank.charge_current_limit,
        bank.discharge_current_limit,
        bank.discharge_voltage_limit,
    )
    if any(v is not None for v in limits):
        parts.append(
            CanLimits(
                charge_voltage_limit=_zero(limits[0]),
                charge_current_limit=_zero(limits[1]),
                discharge_current_limit=_zero(limits[2]),
                discharge_voltage_limit=_zero(limits[3]),
            )
        )
    if bank.soc is not None or bank.soh is not None:
        parts.append(
            CanStateOfCharge(soc=_zero(bank.soc), soh=_zero(bank.soh), extension=0 if new else None)
        )
    if bank.voltage is not None or bank.current is not None or bank.temperature is not None:
        parts.append(
            CanMeasurements(
                voltage=_zero(bank.voltage),
                current=_zero(bank.current),
                temperature=_zero(bank.temperature),
            )
        )
    protections, alarms = _bank_flags(bank)
    if new:
        parts.append(CanSmaAlarms.from_flags(protections, alarms))
    else:
        count = bank.module_count
        if count is None:
            count = len(bank.present_modules())
        parts.append(
            CanProtectionAlarm(protections=protections, alarms=alarms, module_count=count, tag="PN")
        )
        requests = (
            bank.charge_enabled,
            bank.discharge_enabled,
            bank.force_charge_1,
            bank.force_charge_2,
            bank.full_charge_request,
        )
        if any(v is not None for v in requests):
            parts.append(
                CanRequestFlags(
                    charge_enabled=bool(requests[0]),
                    discharge_enabled=bool(requests[1]),
                    force_charge_1=bool(requests[2]),
                    force_charge_2=bool(requests[3]),
                    full_charge_request=bool(requests[4]),
                )
            )
    parts.append(CanManufacturer(name=bank.manufacturer or "PYLON"))
    if new:
        software = _extra(bank, "can_software_version")
        parts.append(
            CanBatteryInfo(
                chemistry=_extra(bank, "can_chemistry") or "LI",
                hardware_version=_parse_version(_extra(bank, "can_hardware_version"), (1, 3)),
                capacity=round(_zero(bank.full_capacity)),
                software_version=int(software) if software and software.isdigit() else 0,
            )
        )
    return parts


def encode_bank(bank: Bank, *, firmware: Firmware = "v1.2") -> list[tuple[int, bytes]]:
    """Return the broadcast frames (id, data) for ``bank``.

    ``"v1.2"``: 0x351, 0x355 (DLC 4), 0x356, 0x359, 0x35C, 0x35E.
    ``"v1.3"``: 0x351, 0x355 (DLC 6), 0x356, 0x35A, 0x35E, 0x35F.
    Values outside a field's range are clamped; flags without a bit in the chosen
    frame set go to the nearest documented bit or are left out (see the tables above).
    """
    return [(part.CAN_ID, part.encode()) for part in bank_parts(bank, firmware=firmware)]


def encode_keepalive() -> bytes:
    """Return the data of the inverter keep-alive frame ``KEEPALIVE_ID``: eight zero bytes."""
    return bytes(8)


# --------------------------------------------------------------------------- candump


@dataclass(frozen=True, slots=True, kw_only=True)
class CanRecord:
    """One data frame read from a capture."""

    can_id: int
    data: bytes
    timestamp: float | None = None  # seconds as printed (absolute, delta or zero-based)
    interface: str | None = None
    extended: bool = False
    fd: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureError:
    """A capture line that could not be read (decoding continues after it)."""

    line_number: int  # 1-based
    line: str
    reason: str


MAX_LINE_LENGTH = 512

_TIMESTAMP = re.compile(r"\(\s*([^()]{1,40})\)\s*")
# candump -L / log file: "can0 351#1402C0..." ; "##<flags><data>" is CAN FD; "#R" remote.
_LOG = re.compile(
    r"(?:(\S{1,32})\s+)?([0-9A-Fa-f]{1,8})#(#[0-9A-Fa-f])?(R\d{0,2}|[0-9A-Fa-f.]*)\s*\Z"
)
# default: "can0  351   [8]  14 02 ..." ; -x adds "RX - -" ; FD prints "[12]" or "[08]".
_DEFAULT = re.compile(
    r"(\S{1,32})\s+(?:(?:RX|TX)\s+\S\s+\S\s+)?([0-9A-Fa-f]{1,8})\s+\[(\d{1,2})\]\s*(.*)\Z"
)
# Serial-monitor logs of MCU sniffers (MCP2515 sketches, blog posts): an id marked by "ID:" or
# "0x", then up to 8 bytes of 1-2 hex digits ("C2 1" = C2 01), then an optional " - note".
# Separators are any short punctuation run: an en dash read as latin-1 is three characters.
_MONITOR = re.compile(
    r"(?:ID\s*:?\s*(?:0[xX])?|0[xX])([0-9A-Fa-f]{1,8})\s*(?:(?:Buffer|Data)\s*:|[^\w\s]{1,3})?\s*"
    r"((?:[0-9A-Fa-f]{1,2}[ \t]+){0,7}[0-9A-Fa-f]{1,2})(?:[ \t]+[^\w\s]{1,3}[ \t].*)?\s*\Z",
    re.ASCII,
)
# ASCII whitespace only: bytes.fromhex rejects other Unicode spaces (fuzz finding, U+00A0).
_HEX_BYTES = re.compile(r"(?:[0-9A-Fa-f]{2}(?:\s+|\Z))*", re.ASCII)
_ERROR_FLAG = 0x20000000
_EFF_MASK = 0x1FFFFFFF


def _timestamp(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        try:  # candump -tA: "(2023-09-28 20:11:40.123456)"
            value = datetime.fromisoformat(text.strip()).timestamp()
        except (ValueError, OverflowError, OSError):
            return None
    return value if math.isfinite(value) else None


def _check_id(id_text: str, can_id: int) -> tuple[int, bool]:
    extended = len(id_text) > 3
    if can_id & _ERROR_FLAG and extended:
        raise ProtocolError(f"CAN error frame 0x{can_id:08X}")
    if not extended and can_id > 0x7FF:
        raise ProtocolError(f"standard CAN id 0x{can_id:X} above 0x7FF")
    if can_id > _EFF_MASK:
        raise ProtocolError(f"CAN id 0x{can_id:X} above 29 bits")
    return can_id, extended


def parse_candump_line(line: str) -> CanRecord | None:
    """One ``candump`` line (``-L`` log or default format, optional ``(time)`` prefix).

    Also reads the serial-monitor style of MCU sniffers (``ID: 351 Buffer: 14 2 C0 ...``,
    ``0x351 - 14 02 ...``): an id marked by ``ID:`` or ``0x``, 1-8 bytes of 1-2 hex digits,
    an optional trailing `` - note``.

    Returns ``None`` for blank lines, ``#`` comments and remote-request frames; raises
    ``ProtocolError`` for anything unreadable and for CAN error frames.
    """
    if len(line) > MAX_LINE_LENGTH:
        raise ProtocolError(f"line longer than {MAX_LINE_LENGTH} characters")
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    timestamp: float | None = None
    match = _TIMESTAMP.match(text)
    if match is not None:
        timestamp = _timestamp(match.group(1))
        if timestamp is None:
            raise ProtocolError(f"unreadable timestamp ({match.group(1)})")
        text = text[match.end() :]
    log = _LOG.match(text)
    if log is not None:
        interface, id_text, fd_flags, payload = log.groups()
        can_id, extended = _check_id(id_text, int(id_text, 16))
        if payload.startswith("R"):
            return None
        hex_text = payload.replace(".", "")
        if len(hex_text) % 2:
            raise ProtocolError(f"odd number of hex digits in data {payload!r}")
        data = bytes.fromhex(hex_text)
        limit = FD_MAX_DLC if fd_flags else CLASSIC_MAX_DLC
        if len(data) > limit:
            raise ProtocolError(f"{len(data)} data bytes; at most {limit}")
        return CanRecord(
            can_id=can_id,
            data=data,
            timestamp=timestamp,
            interface=interface,
            extended=extended,
            fd=fd_flags is not None,
        )
    default = _DEFAULT.match(text)
    if default is None:
        monitor = _MONITOR.match(text)
        if monitor is None:
            raise ProtocolError("not a candump line")
        id_text, byte_text = monitor.groups()
        # Monitors zero-pad ids ("0x0351"): the value, not the width, tells 11 from 29 bits.
        can_id = int(id_text, 16)
        if can_id > _EFF_MASK:
            raise ProtocolError(f"CAN id 0x{can_id:X} above 29 bits")
        extended = can_id > 0x7FF
        data = bytes(int(part, 16) for part in byte_text.split())
        return CanRecord(can_id=can_id, data=data, timestamp=timestamp, extended=extended)
    interface, id_text, dlc_text, rest = default.groups()
    can_id, extended = _check_id(id_text, int(id_text, 16))
    dlc = int(dlc_text)
    if dlc > FD_MAX_DLC:
        raise ProtocolError(f"DLC {dlc} above {FD_MAX_DLC}")
    if rest.startswith("remote request"):
        return None
    # Data bytes come first; "-a" appends the ASCII rendering in quotes, -e error text.
    hex_part = _HEX_BYTES.match(rest)
    hex_text = hex_part.group(0) if hex_part is not None else ""
    data = bytes.fromhex(hex_text)
    if len(data) != dlc:
        raise ProtocolError(f"DLC [{dlc}] but {len(data)} data bytes")
    trailer = rest[len(hex_text) :].strip()
    if trailer and not trailer.startswith(("'", "ERRORFRAME")):
        raise ProtocolError(f"unexpected text after the data: {trailer[:40]!r}")
    return CanRecord(
        can_id=can_id,
        data=data,
        timestamp=timestamp,
        interface=interface,
        extended=extended,
        # candump prints FD lengths with two digits ("[08]"), classic ones with one.
        fd=dlc > CLASSIC_MAX_DLC or (len(dlc_text) == 2 and dlc_text.startswith("0")),
    )


def iter_capture(text: str) -> Iterator[CanRecord | CaptureError]:
    """Decode a whole capture's records and error entries, in order; bad lines do not stop it."""
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = parse_candump_line(line)
        except ProtocolError as err:
            yield CaptureError(line_number=number, line=line[:MAX_LINE_LENGTH], reason=str(err))
            continue
        if record is not None:
            yield record


MAX_CAPTURE_ERRORS = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureDecode:
    """A whole capture replayed through a ``CanBankAssembler``."""

    bank: Bank  # the state after the last frame
    frames: int  # data frames read
    unknown_frames: int  # frames of ids the protocol does not define
    cycles: int  # broadcast cycles seen
    firmware: Firmware | None  # frame set the battery used
    errors: tuple[CaptureError, ...]  # unreadable lines and undecodable frames (first 1000)
    error_count: int  # all of them, also past the first 1000


def decode_capture(text: str) -> CaptureDecode:
    """Replay ``candump`` text: every readable frame into one assembler, errors collected."""
    assembler = CanBankAssembler()
    errors: list[CaptureError] = []
    error_count = 0
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = parse_candump_line(line)
            if record is None:
                continue
            if record.extended or record.fd:
                # Not part of PYLON LV CAN (11-bit classic ids only): count as unknown.
                assembler.frames += 1
                assembler.unknown_frames += 1
                continue
            stamp = record.timestamp if record.timestamp is not None else float(number)
            assembler.update(record.can_id, record.data, stamp)
        except ProtocolError as err:
            error_count += 1
            if len(errors) < MAX_CAPTURE_ERRORS:
                errors.append(
                    CaptureError(line_number=number, line=line[:MAX_LINE_LENGTH], reason=str(err))
                )
    return CaptureDecode(
        bank=assembler.bank(),
        frames=assembler.frames,
        unknown_frames=assembler.unknown_frames,
        cycles=assembler.cycles,
        firmware=assembler.firmware(),
        errors=tuple(errors),
        error_count=error_count,
    )


__all__ = [
    "BANK_IDS",
    "BATTERY_INFO_ID",
    "KEEPALIVE_ID",
    "KNOWN_IDS",
    "LIMITS_ID",
    "MANUFACTURER_ID",
    "MEASUREMENTS_ID",
    "PLAUSIBLE_BANK_VOLTAGE",
    "PROTECTION_ID",
    "REQUEST_ID",
    "SMA_ALARMS_ID",
    "SMA_MIN_DLC",
    "SMA_SLOTS",
    "STATE_ID",
    "CanBankAssembler",
    "CanBatteryInfo",
    "CanKeepAlive",
    "CanLimits",
    "CanManufacturer",
    "CanMeasurements",
    "CanPart",
    "CanProtectionAlarm",
    "CanRecord",
    "CanRequestFlags",
    "CanSmaAlarms",
    "CanStateOfCharge",
    "CaptureDecode",
    "CaptureError",
    "Firmware",
    "bank_from_parts",
    "bank_parts",
    "decode_capture",
    "decode_frame",
    "encode_bank",
    "encode_keepalive",
    "iter_capture",
    "parse_candump_line",
]
