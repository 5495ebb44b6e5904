"""RS485 typed responses: decoders and the symmetric encoders (docs/protocol-notes.md §1.6-§1.7).

Each decoder takes a ``Frame`` (from :func:`decode_frame`), checks every count and length
against the INFO size before reading, and raises only ``ProtocolError`` subclasses. Each
encoder builds the frame a battery would send; ``decode(encode(x)) == x``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
import struct
from typing import Any, TypeAlias

from ..bounds import (
    MAX_CELLS_PER_MODULE,
    MAX_RS485_MODULES_PER_GROUP,
    MAX_TEMPERATURES_PER_MODULE,
    check_count,
)
from ..errors import ImplausibleValueError, ProtocolError
from ..model import LimitState, Protection
from .rs485_frame import (
    ALL_MODULES_COMMANDS,
    CID1_BATTERY,
    PYLONTECH_VER,
    RTN_MEANINGS,
    Command,
    Frame,
    check_response,
    decode_frame,
    encode_frame,
    is_read_code,
)

# --------------------------------------------------------------------------- value helpers

_KELVIN_OFFSET = 2731  # temperatures are 0.1 K with 273.1 K = 0 °C


def _celsius(raw: int) -> float:
    return (raw - _KELVIN_OFFSET) / 10


def _deci_kelvin(celsius: float) -> int:
    return round(celsius * 10) + _KELVIN_OFFSET


def _milli(value: float) -> int:
    return round(value * 1000)


def _deci(value: float) -> int:
    return round(value * 10)


@lru_cache(maxsize=64)
def _words(count: int, signed: bool) -> struct.Struct:
    return struct.Struct(f">{count}{'h' if signed else 'H'}")


def _need(info: bytes, offset: int, size: int, what: str) -> None:
    if offset + size > len(info):
        raise ProtocolError(
            f"INFO too short for {what}: needs {offset + size} bytes, has {len(info)}"
        )


def _ascii(data: bytes, pad: bytes) -> str:
    return data.rstrip(pad).decode("ascii", errors="replace")


def _version_text(parts: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in parts)


def _pack(fmt: struct.Struct, *values: int, what: str) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as err:
        raise ValueError(f"{what}: value out of range ({err})") from None


_STATE_FROM_BYTE: dict[int, LimitState] = {
    0x00: LimitState.NORMAL,
    0x01: LimitState.LOW,
    0x02: LimitState.HIGH,
    0xF0: LimitState.ERROR,
}
_STATE_TO_BYTE: dict[LimitState, int] = {v: k for k, v in _STATE_FROM_BYTE.items()}


def _state(byte: int) -> LimitState:
    # Undocumented (user-defined) state bytes are treated as errors: something is off.
    return _STATE_FROM_BYTE.get(byte, LimitState.ERROR)


# Every byte's state, so a run of state bytes maps in one C-level call (decode cost).
_STATE_OF_BYTE: tuple[LimitState, ...] = tuple(_state(b) for b in range(256))


# --------------------------------------------------------------------------- typed responses


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolVersionResponse:
    """0x4F: the protocol version is the response's VER byte (0x20 -> "2.0")."""

    adr: int
    version: int = PYLONTECH_VER

    @property
    def text(self) -> str:
        """Version as "major.minor" from the VER nibbles."""
        return f"{self.version >> 4}.{self.version & 0xF}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManufacturerInfoResponse:
    """0x51: device name, software version (major, minor) and manufacturer."""

    adr: int
    device_name: str
    software_version: tuple[int, int]
    manufacturer: str

    @property
    def software_version_text(self) -> str:
        """The software version as text, "2.3" style."""
        return _version_text(self.software_version)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalogRecord:
    """One module's 0x42 record in SI units (V, A, °C, Ah).

    ``user_defined`` is the wire's item count: 2 (16-bit capacities) or 4 (the 16-bit
    capacity fields hold 0xFFFF placeholders and 24-bit capacities follow).
    """

    cell_voltages: tuple[float, ...]
    temperatures: tuple[float, ...]  # wire order: BMS, cells 1-4, 5-8, 9-12, 13-16, [MOSFET]
    current: float  # + = charge
    voltage: float
    remaining_capacity: float
    full_capacity: float
    cycles: int
    user_defined: int = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalogResponse:
    """0x42: INFOFLAG, command byte (ADR, or module count for 0xFF) and the records."""

    adr: int
    info_flag: int
    command: int
    all_modules: bool
    records: tuple[AnalogRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmRecord:
    """One module's 0x44 record: limit states and the five status bytes (raw).

    ``extra`` keeps undocumented bytes after Status 5 (newer firmware sends one 0x00).
    """

    cell_states: tuple[LimitState, ...]
    temperature_states: tuple[LimitState, ...]
    charge_current_state: LimitState = LimitState.NORMAL
    voltage_state: LimitState = LimitState.NORMAL
    discharge_current_state: LimitState = LimitState.NORMAL
    status1: int = 0
    status2: int = 0
    status3: int = 0
    status4: int = 0
    status5: int = 0
    extra: bytes = b""

    @property
    def status_protections(self) -> frozenset[Protection]:
        """Protections named by Status 1."""
        return frozenset(p for bit, p in STATUS1_PROTECTIONS if self.status1 & bit)

    @property
    def precharge_mosfet(self) -> bool:
        """Status 2 bit 0 (reserved by the spec)."""
        return bool(self.status2 & 0x01)

    @property
    def charge_mosfet(self) -> bool:
        """Status 2 bit 1: charge MOSFET on."""
        return bool(self.status2 & 0x02)

    @property
    def discharge_mosfet(self) -> bool:
        """Status 2 bit 2: discharge MOSFET on."""
        return bool(self.status2 & 0x04)

    @property
    def using_battery_power(self) -> bool:
        """Status 2 bit 3: the module runs on its own power."""
        return bool(self.status2 & 0x08)

    @property
    def charging(self) -> bool:
        """Status 3 bit 7: effective charge current (> 0.1 A)."""
        return bool(self.status3 & 0x80)

    @property
    def discharging(self) -> bool:
        """Status 3 bit 6: effective discharge current (< -0.1 A)."""
        return bool(self.status3 & 0x40)

    @property
    def heater_on(self) -> bool:
        """Status 3 bit 5 (reserved)."""
        return bool(self.status3 & 0x20)

    @property
    def fully_charged(self) -> bool:
        """Status 3 bit 3: SOC 100 %."""
        return bool(self.status3 & 0x08)

    @property
    def buzzer_on(self) -> bool:
        """Status 3 bit 0."""
        return bool(self.status3 & 0x01)

    @property
    def cell_errors(self) -> tuple[int, ...]:
        """1-based cells flagged by Status 4 (cells 1-8) and Status 5 (cells 9-16)."""
        bits = self.status4 | (self.status5 << 8)
        return tuple(k + 1 for k in range(16) if bits >> k & 1)


# Bits the RS485 protocol V3.3 0x44 tables leave reserved ("—"); a genuine BMS sends 0 there.
# Status 2 bit 0 (pre-charge MOSFET) and Status 3 bit 5 (heater) are "reserved" functions
# with a name, so firmware may set them: they are not checked.
STATUS1_RESERVED = 0x08
STATUS2_RESERVED = 0xF0
STATUS3_RESERVED = 0x16  # bits 4, 2 and 1
_UNDER_AND_OVER_VOLTAGE = 0x81  # Status 1: module under- and over-voltage at once
_CHARGING_AND_DISCHARGING = 0xC0  # Status 3: measured current both > 0.1 A and < -0.1 A


def alarm_implausibility(record: AlarmRecord) -> str | None:
    """Why a 0x44 record cannot come from a working BMS, or None when it can.

    Reserved bits set, a module both under- and over-voltage, a current both charging and
    discharging, or a Status 4/5 cell-error bit for a cell the record does not have: all
    of these are what a corrupt or hostile answer (e.g. every Status byte 0xFF) looks like,
    and publishing them would turn on protections no BMS reported.
    """
    if record.status1 & STATUS1_RESERVED:
        return f"Status 1 0x{record.status1:02X} sets reserved bit 3"
    if record.status1 & _UNDER_AND_OVER_VOLTAGE == _UNDER_AND_OVER_VOLTAGE:
        return f"Status 1 0x{record.status1:02X} reports under- and over-voltage at once"
    if record.status2 & STATUS2_RESERVED:
        return f"Status 2 0x{record.status2:02X} sets reserved bits 7-4"
    if record.status3 & STATUS3_RESERVED:
        return f"Status 3 0x{record.status3:02X} sets reserved bits"
    if record.status3 & _CHARGING_AND_DISCHARGING == _CHARGING_AND_DISCHARGING:
        return f"Status 3 0x{record.status3:02X} reports charging and discharging at once"
    cells = len(record.cell_states)
    cell_bits = record.status4 | (record.status5 << 8)
    if cell_bits >> cells:
        return f"Status 4/5 flag cell errors beyond the record's {cells} cells"
    return None


def check_alarm_plausible(record: AlarmRecord) -> AlarmRecord:
    """``record`` unchanged, or ``ImplausibleValueError`` (see :func:`alarm_implausibility`)."""
    reason = alarm_implausibility(record)
    if reason is not None:
        raise ImplausibleValueError(f"implausible 0x44 record: {reason}")
    return record


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmResponse:
    """0x44: DATAFLAG, command byte (ADR, or module count for 0xFF) and the records."""

    adr: int
    info_flag: int
    command: int
    all_modules: bool
    records: tuple[AlarmRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemParametersResponse:
    """0x47: the module's limit settings, SI units, currents with their wire sign."""

    adr: int
    info_flag: int
    cell_high_voltage: float
    cell_low_voltage: float
    cell_under_voltage: float
    charge_high_temperature: float
    charge_low_temperature: float
    charge_current_limit: float
    module_high_voltage: float
    module_low_voltage: float
    module_under_voltage: float
    discharge_high_temperature: float
    discharge_low_temperature: float
    discharge_current_limit: float  # sent negative


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagementInfoResponse:
    """0x92: recommended limits (V, A; DCL with its wire sign, i.e. negative) and flags."""

    adr: int
    command: int
    charge_voltage_limit: float
    discharge_voltage_limit: float
    charge_current_limit: float
    discharge_current_limit: float
    status: int

    @property
    def charge_enabled(self) -> bool:
        """Bit 7: charge enable (0 = request stop charge)."""
        return bool(self.status & 0x80)

    @property
    def discharge_enabled(self) -> bool:
        """Bit 6: discharge enable."""
        return bool(self.status & 0x40)

    @property
    def force_charge_1(self) -> bool:
        """Bit 5: charge immediately I."""
        return bool(self.status & 0x20)

    @property
    def force_charge_2(self) -> bool:
        """Bit 4: charge immediately II."""
        return bool(self.status & 0x10)

    @property
    def full_charge_request(self) -> bool:
        """Bit 3: full-charge request (SOC not above 97 % within 30 days)."""
        return bool(self.status & 0x08)


def management_status(
    *,
    charge_enabled: bool = True,
    discharge_enabled: bool = True,
    force_charge_1: bool = False,
    force_charge_2: bool = False,
    full_charge_request: bool = False,
) -> int:
    """Return the 0x92 status byte for named flags."""
    return (
        0x80 * charge_enabled
        | 0x40 * discharge_enabled
        | 0x20 * force_charge_1
        | 0x10 * force_charge_2
        | 0x08 * full_charge_request
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialNumberResponse:
    """0x93: the module's serial number (console "Barcode")."""

    adr: int
    command: int
    serial_number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftwareVersionResponse:
    """0x96: manufacturer version (2 parts) and main-line version (3 parts)."""

    adr: int
    command: int
    manufacturer_version: tuple[int, int]
    mainline_version: tuple[int, int, int]

    @property
    def manufacturer_version_text(self) -> str:
        """The manufacturer version as text, "2.3" style."""
        return _version_text(self.manufacturer_version)

    @property
    def mainline_version_text(self) -> str:
        """The mainline version as text, "0.6.5" style."""
        return _version_text(self.mainline_version)


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemAnalogResponse:
    """0x61 (protocol V3.5 "system analog data"): the master's summary of the whole stack.

    No Pylontech document or capture of V3.5 is public (docs/protocol-notes.md §1.8, D15): the
    layout (49 bytes, no INFOFLAG) is the one the Battery-Emulator inverter emulator answers,
    whose units are voltage mV, current 10 mA, temperatures 0.1 K - 273.1. Ids are the emulator's 2-byte
    module/cell (or module/sensor) pairs, kept raw. SI units here.
    """

    adr: int
    voltage: float  # V
    current: float  # A, + = charge
    soc: int  # %
    cycles_average: int
    cycles_max: int
    soh_average: int  # %
    soh_min: int  # %
    cell_voltage_max: float  # V
    cell_voltage_max_id: int
    cell_voltage_min: float  # V
    cell_voltage_min_id: int
    cell_temperature_average: float  # °C
    cell_temperature_max: float
    cell_temperature_max_id: int
    cell_temperature_min: float
    cell_temperature_min_id: int
    mosfet_temperature_average: float
    mosfet_temperature_max: float
    mosfet_temperature_max_id: int
    mosfet_temperature_min: float
    mosfet_temperature_min_id: int
    bms_temperature_average: float
    bms_temperature_max: float
    bms_temperature_max_id: int
    bms_temperature_min: float
    bms_temperature_min_id: int


Response: TypeAlias = (
    ProtocolVersionResponse
    | ManufacturerInfoResponse
    | AnalogResponse
    | AlarmResponse
    | SystemParametersResponse
    | ManagementInfoResponse
    | SerialNumberResponse
    | SoftwareVersionResponse
    | SystemAnalogResponse
)

# --------------------------------------------------------------------------- decoders

MANUFACTURER_LAYOUT = struct.Struct(">10sBB20s")
SYSTEM_PARAMETERS_LAYOUT = struct.Struct(">BHHhhhhHHHhhh")
MANAGEMENT_LAYOUT = struct.Struct(">BHHhhB")
SOFTWARE_LAYOUT = struct.Struct(">B2B3B")
_ANALOG_TAIL = struct.Struct(">hHHBHH")  # current, voltage, rem1, user-defined, total1, cycles
#: 0x61: voltage, current, SOC, cycles avg/max, SOH avg/min, max cell + id, min cell + id,
#: then three temperature groups (cells, MOSFET, BMS) of average, max + id, min + id.
SYSTEM_ANALOG_LAYOUT = struct.Struct(">HhBHHBBHHHH" + "hhHhH" * 3)

#: 0x44 Status 1 bit -> the protection it names.
STATUS1_PROTECTIONS: tuple[tuple[int, Protection], ...] = (
    (0x80, Protection.MODULE_UNDER_VOLTAGE),
    (0x40, Protection.CHARGE_OVER_TEMPERATURE),
    (0x20, Protection.DISCHARGE_OVER_TEMPERATURE),
    (0x10, Protection.DISCHARGE_OVER_CURRENT),
    (0x04, Protection.CHARGE_OVER_CURRENT),
    (0x02, Protection.CELL_UNDER_VOLTAGE),
    (0x01, Protection.MODULE_OVER_VOLTAGE),
)


def _frame_of(frame: Frame | bytes | str) -> Frame:
    if isinstance(frame, Frame):
        return check_response(frame)
    return decode_frame(frame)


def decode_protocol_version(frame: Frame) -> ProtocolVersionResponse:
    """0x4F: no INFO; the version is the VER byte."""
    frame = _frame_of(frame)
    return ProtocolVersionResponse(adr=frame.adr, version=frame.ver)


def decode_manufacturer_info(frame: Frame) -> ManufacturerInfoResponse:
    """0x51: 10-byte name (NUL padded), 2 version bytes, 20-byte manufacturer ("-" padded)."""
    frame = _frame_of(frame)
    _need(frame.info, 0, MANUFACTURER_LAYOUT.size, "0x51 manufacturer info")
    name, major, minor, maker = MANUFACTURER_LAYOUT.unpack_from(frame.info)
    return ManufacturerInfoResponse(
        adr=frame.adr,
        device_name=_ascii(name, b"\x00 "),
        software_version=(major, minor),
        manufacturer=_ascii(maker, b"\x00 -"),
    )


def _analog_record(info: bytes, offset: int) -> tuple[AnalogRecord, int]:
    _need(info, offset, 1, "0x42 cell count")
    cells = check_count("cells in a 0x42 record", info[offset], MAX_CELLS_PER_MODULE)
    offset += 1
    _need(info, offset, 2 * cells + 1, f"0x42 {cells} cell voltages")
    cell_mv = _words(cells, True).unpack_from(info, offset)
    offset += 2 * cells
    sensors = check_count(
        "temperatures in a 0x42 record", info[offset], MAX_TEMPERATURES_PER_MODULE
    )
    offset += 1
    _need(info, offset, 2 * sensors + _ANALOG_TAIL.size, f"0x42 {sensors} temperatures and values")
    temps = _words(sensors, True).unpack_from(info, offset)
    offset += 2 * sensors
    current, voltage, remaining, user_defined, full, cycles = _ANALOG_TAIL.unpack_from(info, offset)
    offset += _ANALOG_TAIL.size
    if user_defined == 4:
        _need(info, offset, 6, "0x42 24-bit capacities")
        remaining = int.from_bytes(info[offset : offset + 3], "big")
        full = int.from_bytes(info[offset + 3 : offset + 6], "big")
        offset += 6
    elif user_defined != 2:
        raise ProtocolError(f"0x42 user-defined item count {user_defined} (expected 2 or 4)")
    record = AnalogRecord(
        cell_voltages=tuple(mv / 1000 for mv in cell_mv),
        temperatures=tuple(_celsius(t) for t in temps),
        current=current / 10,
        voltage=voltage / 1000,
        remaining_capacity=remaining / 1000,
        full_capacity=full / 1000,
        cycles=cycles,
        user_defined=user_defined,
    )
    return record, offset


def _records(
    info: bytes,
    parse: Callable[[bytes, int], tuple[Any, int]],
    count: int,
    *,
    separator_zero: bool = False,
) -> tuple[tuple[Any, ...], int]:
    offset = 2
    records = []
    for number in range(count):
        record, offset = parse(info, offset)
        # Newer 0x44 firmware ends each record with a 0x00; a record never starts with
        # 0 cells, so a 0x00 where the next record should start is that trailer.
        if separator_zero and number + 1 < count and offset < len(info) and info[offset] == 0:
            record = replace(record, extra=b"\x00")
            offset += 1
        records.append(record)
    return tuple(records), offset


def _multi(
    frame: Frame,
    parse: Callable[[bytes, int], tuple[Any, int]],
    all_modules: bool | None,
    what: str,
    *,
    tolerate_trailing: bool,
) -> tuple[int, int, bool, tuple[Any, ...], int]:
    info = frame.info
    _need(info, 0, 2, f"{what} header")
    flag, command = info[0], info[1]
    separator = what == "0x44"
    if all_modules is None:
        all_modules = False
        # Infer: a module count whose records fill the INFO exactly means the 0xFF form.
        # Command 1 at ADR 1 (RS232 host address) is the single form either way.
        if 0 < command <= MAX_RS485_MODULES_PER_GROUP and (command != frame.adr or command > 1):
            try:
                records, end = _records(info, parse, command, separator_zero=separator)
            except ProtocolError:
                pass
            else:
                if end == len(info) or (tolerate_trailing and end == len(info) - 1):
                    return flag, command, True, records, end
    count = command if all_modules else 1
    if all_modules:
        check_count(f"modules in a {what} all-modules answer", count, MAX_RS485_MODULES_PER_GROUP)
    if all_modules and count == 0:
        return flag, command, True, (), 2
    records, end = _records(info, parse, count, separator_zero=separator)
    if end != len(info) and not tolerate_trailing:
        raise ProtocolError(f"{what}: {len(info) - end} unexpected bytes after the records")
    return flag, command, all_modules, records, end


def decode_analog(frame: Frame, *, all_modules: bool | None = None) -> AnalogResponse:
    """0x42: per-record counts (cells, temperatures, user-defined 2/4) drive the layout.

    ``all_modules`` tells whether the request was the 0xFF form; ``None`` infers it from the
    INFO shape. Bytes after the last record are an error (layouts are fully counted).
    """
    frame = _frame_of(frame)
    flag, command, many, records, _ = _multi(
        frame, _analog_record, all_modules, "0x42", tolerate_trailing=False
    )
    return AnalogResponse(
        adr=frame.adr, info_flag=flag, command=command, all_modules=many, records=records
    )


def _alarm_record(info: bytes, offset: int) -> tuple[AlarmRecord, int]:
    _need(info, offset, 1, "0x44 cell count")
    cells = check_count("cells in a 0x44 record", info[offset], MAX_CELLS_PER_MODULE)
    offset += 1
    _need(info, offset, cells + 1, f"0x44 {cells} cell states")
    cell_states = tuple(map(_STATE_OF_BYTE.__getitem__, info[offset : offset + cells]))
    offset += cells
    sensors = check_count(
        "temperatures in a 0x44 record", info[offset], MAX_TEMPERATURES_PER_MODULE
    )
    offset += 1
    _need(info, offset, sensors + 8, f"0x44 {sensors} temperature states and status")
    temp_states = tuple(map(_STATE_OF_BYTE.__getitem__, info[offset : offset + sensors]))
    offset += sensors
    charge, volt, discharge, s1, s2, s3, s4, s5 = info[offset : offset + 8]
    record = AlarmRecord(
        cell_states=cell_states,
        temperature_states=temp_states,
        charge_current_state=_STATE_OF_BYTE[charge],
        voltage_state=_STATE_OF_BYTE[volt],
        discharge_current_state=_STATE_OF_BYTE[discharge],
        status1=s1,
        status2=s2,
        status3=s3,
        status4=s4,
        status5=s5,
    )
    check_alarm_plausible(record)
    return record, offset + 8


def decode_alarm(frame: Frame, *, all_modules: bool | None = None) -> AlarmResponse:
    """0x44: states and Status 1-5, read positionally; trailing bytes kept in ``extra``."""
    frame = _frame_of(frame)
    flag, command, many, records, end = _multi(
        frame, _alarm_record, all_modules, "0x44", tolerate_trailing=True
    )
    if records and end < len(frame.info):
        records = (*records[:-1], replace(records[-1], extra=frame.info[end:]))
    return AlarmResponse(
        adr=frame.adr, info_flag=flag, command=command, all_modules=many, records=records
    )


def decode_system_parameters(frame: Frame) -> SystemParametersResponse:
    """0x47: INFOFLAG + 12 fixed-point values."""
    frame = _frame_of(frame)
    _need(frame.info, 0, SYSTEM_PARAMETERS_LAYOUT.size, "0x47 system parameters")
    v = SYSTEM_PARAMETERS_LAYOUT.unpack_from(frame.info)
    return SystemParametersResponse(
        adr=frame.adr,
        info_flag=v[0],
        cell_high_voltage=v[1] / 1000,
        cell_low_voltage=v[2] / 1000,
        cell_under_voltage=v[3] / 1000,
        charge_high_temperature=_celsius(v[4]),
        charge_low_temperature=_celsius(v[5]),
        charge_current_limit=v[6] / 10,
        module_high_voltage=v[7] / 1000,
        module_low_voltage=v[8] / 1000,
        module_under_voltage=v[9] / 1000,
        discharge_high_temperature=_celsius(v[10]),
        discharge_low_temperature=_celsius(v[11]),
        discharge_current_limit=v[12] / 10,
    )


def decode_management_info(frame: Frame) -> ManagementInfoResponse:
    """0x92: command byte, CVL, DVL (mV), CCL, DCL (0.1 A, DCL negative), status byte."""
    frame = _frame_of(frame)
    _need(frame.info, 0, MANAGEMENT_LAYOUT.size, "0x92 management info")
    command, cvl, dvl, ccl, dcl, status = MANAGEMENT_LAYOUT.unpack_from(frame.info)
    return ManagementInfoResponse(
        adr=frame.adr,
        command=command,
        charge_voltage_limit=cvl / 1000,
        discharge_voltage_limit=dvl / 1000,
        charge_current_limit=ccl / 10,
        discharge_current_limit=dcl / 10,
        status=status,
    )


def decode_serial_number(frame: Frame) -> SerialNumberResponse:
    """0x93: command byte + ASCII serial (16 bytes documented; NULs/spaces stripped)."""
    frame = _frame_of(frame)
    _need(frame.info, 0, 2, "0x93 serial number")
    serial = frame.info[1:].replace(b"\x00", b" ").strip(b" ")
    return SerialNumberResponse(
        adr=frame.adr,
        command=frame.info[0],
        serial_number=serial.decode("ascii", errors="replace"),
    )


def decode_software_version(frame: Frame) -> SoftwareVersionResponse:
    """0x96: command byte, manufacturer version (2 bytes), main-line version (3 bytes)."""
    frame = _frame_of(frame)
    _need(frame.info, 0, SOFTWARE_LAYOUT.size, "0x96 software version")
    command, m1, m2, l1, l2, l3 = SOFTWARE_LAYOUT.unpack_from(frame.info)
    return SoftwareVersionResponse(
        adr=frame.adr,
        command=command,
        manufacturer_version=(m1, m2),
        mainline_version=(l1, l2, l3),
    )


_TEMPERATURE_GROUPS = ("cell_temperature", "mosfet_temperature", "bms_temperature")


def decode_system_analog(frame: Frame) -> SystemAnalogResponse:
    """0x61: the 49-byte V3.5 stack summary (see :class:`SystemAnalogResponse`).

    Any other INFO length is a ``ProtocolError``: the only other layout seen (the b2i
    emulator's 51 bytes with a 2-byte prefix) claims other units, so it is not guessed at.
    """
    frame = _frame_of(frame)
    if len(frame.info) != SYSTEM_ANALOG_LAYOUT.size:
        raise ProtocolError(
            f"0x61 system analog data of {len(frame.info)} bytes (expected "
            f"{SYSTEM_ANALOG_LAYOUT.size})"
        )
    v = SYSTEM_ANALOG_LAYOUT.unpack(frame.info)
    temperatures: dict[str, Any] = {}
    for number, name in enumerate(_TEMPERATURE_GROUPS):
        average, high, high_id, low, low_id = v[11 + 5 * number : 16 + 5 * number]
        temperatures[f"{name}_average"] = _celsius(average)
        temperatures[f"{name}_max"] = _celsius(high)
        temperatures[f"{name}_max_id"] = high_id
        temperatures[f"{name}_min"] = _celsius(low)
        temperatures[f"{name}_min_id"] = low_id
    return SystemAnalogResponse(
        adr=frame.adr,
        voltage=v[0] / 1000,
        current=v[1] / 100,
        soc=v[2],
        cycles_average=v[3],
        cycles_max=v[4],
        soh_average=v[5],
        soh_min=v[6],
        cell_voltage_max=v[7] / 1000,
        cell_voltage_max_id=v[8],
        cell_voltage_min=v[9] / 1000,
        cell_voltage_min_id=v[10],
        **temperatures,
    )


DECODERS: dict[Command, Callable[[Frame], Any]] = {
    Command.GET_PROTOCOL_VERSION: decode_protocol_version,
    Command.GET_MANUFACTURER_INFO: decode_manufacturer_info,
    Command.GET_ANALOG_VALUES: decode_analog,
    Command.GET_ALARM_INFO: decode_alarm,
    Command.GET_SYSTEM_PARAMETERS: decode_system_parameters,
    Command.GET_MANAGEMENT_INFO: decode_management_info,
    Command.GET_SERIAL_NUMBER: decode_serial_number,
    Command.GET_SOFTWARE_VERSION: decode_software_version,
    Command.GET_SYSTEM_ANALOG: decode_system_analog,
}


def decode_response(
    command: Command | int,
    raw: bytes | bytearray | memoryview | str | Frame,
    *,
    all_modules: bool | None = None,
) -> Response:
    """Decode a raw response (or a ``Frame``) to the typed response of ``command``."""
    if not is_read_code(command):
        raise ProtocolError(f"no decoder for CID2 {command!r}")
    cmd = Command(int(command))
    frame = check_response(raw) if isinstance(raw, Frame) else decode_frame(raw)
    if cmd in ALL_MODULES_COMMANDS:
        decoder: Callable[..., Response] = DECODERS[cmd]
        return decoder(frame, all_modules=all_modules)
    return DECODERS[cmd](frame)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- encoders


def _response(adr: int, info: bytes, *, ver: int = PYLONTECH_VER) -> bytes:
    return encode_frame(ver, adr, CID1_BATTERY, 0x00, info)


def encode_error_response(adr: int, rtn: int) -> bytes:
    """Encode a response carrying a non-zero return code (e.g. 0x04 "CID2 invalid")."""
    if rtn == 0 or rtn not in RTN_MEANINGS:
        raise ValueError(f"0x{rtn:02X} is not an error return code")
    return encode_frame(PYLONTECH_VER, adr, CID1_BATTERY, rtn, b"")


def encode_protocol_version_response(adr: int, *, version: int = PYLONTECH_VER) -> bytes:
    """0x4F response: empty INFO, VER = version."""
    return _response(adr, b"", ver=version)


def _fixed_ascii(text: str, size: int, pad: bytes, what: str) -> bytes:
    data = text.encode("ascii")
    if len(data) > size:
        raise ValueError(f"{what} {text!r} longer than {size} characters")
    return data.ljust(size, pad)


def encode_manufacturer_info_response(
    adr: int, *, device_name: str, software_version: tuple[int, int], manufacturer: str
) -> bytes:
    """0x51 response: name NUL-padded to 10, version bytes, manufacturer "-"-padded to 20."""
    info = _pack(
        MANUFACTURER_LAYOUT,
        _fixed_ascii(device_name, 10, b"\x00", "device name"),  # type: ignore[arg-type]
        *software_version,
        _fixed_ascii(manufacturer, 20, b"-", "manufacturer"),  # type: ignore[arg-type]
        what="0x51",
    )
    return _response(adr, info)


def _analog_record_bytes(record: AnalogRecord) -> bytes:
    cells = len(record.cell_voltages)
    sensors = len(record.temperatures)
    if cells > 0xFF or sensors > 0xFF:
        raise ValueError("too many cells or temperatures for one record")
    remaining = _milli(record.remaining_capacity)
    full = _milli(record.full_capacity)
    if record.user_defined == 4:
        rem1 = full1 = 0xFFFF
    elif record.user_defined == 2:
        rem1, full1 = remaining, full
    else:
        raise ValueError(f"user_defined must be 2 or 4, not {record.user_defined}")
    parts = [
        bytes((cells,)),
        _pack(_words(cells, True), *(_milli(v) for v in record.cell_voltages), what="cells"),
        bytes((sensors,)),
        _pack(_words(sensors, True), *(_deci_kelvin(t) for t in record.temperatures), what="temps"),
        _pack(
            _ANALOG_TAIL,
            _deci(record.current),
            _milli(record.voltage),
            rem1,
            record.user_defined,
            full1,
            record.cycles,
            what="0x42 values",
        ),
    ]
    if record.user_defined == 4:
        if not (0 <= remaining < 1 << 24 and 0 <= full < 1 << 24):
            raise ValueError("capacity out of 24-bit range")
        parts.append(remaining.to_bytes(3, "big") + full.to_bytes(3, "big"))
    return b"".join(parts)


def encode_analog_response(
    adr: int,
    records: Iterable[AnalogRecord],
    *,
    all_modules: bool,
    info_flag: int = 0x11,
    command: int | None = None,
) -> bytes:
    """0x42 response. ``command`` defaults to the ADR (single) or the record count (0xFF)."""
    records = tuple(records)
    if not all_modules and len(records) != 1:
        raise ValueError("a single-module 0x42 response carries exactly one record")
    if command is None:
        command = len(records) if all_modules else adr
    body = b"".join(_analog_record_bytes(r) for r in records)
    return _response(adr, bytes((info_flag, command)) + body)


def _alarm_record_bytes(record: AlarmRecord) -> bytes:
    cells = len(record.cell_states)
    sensors = len(record.temperature_states)
    if cells > 0xFF or sensors > 0xFF:
        raise ValueError("too many cells or temperatures for one record")
    return (
        bytes((cells, *(_STATE_TO_BYTE[s] for s in record.cell_states)))
        + bytes((sensors, *(_STATE_TO_BYTE[s] for s in record.temperature_states)))
        + bytes(
            (
                _STATE_TO_BYTE[record.charge_current_state],
                _STATE_TO_BYTE[record.voltage_state],
                _STATE_TO_BYTE[record.discharge_current_state],
                record.status1,
                record.status2,
                record.status3,
                record.status4,
                record.status5,
            )
        )
        + record.extra
    )


def encode_alarm_response(
    adr: int,
    records: Iterable[AlarmRecord],
    *,
    all_modules: bool,
    info_flag: int = 0x10,
    command: int | None = None,
) -> bytes:
    """0x44 response; each record's ``extra`` bytes follow its Status 5."""
    records = tuple(records)
    if not all_modules and len(records) != 1:
        raise ValueError("a single-module 0x44 response carries exactly one record")
    if command is None:
        command = len(records) if all_modules else adr
    body = b"".join(_alarm_record_bytes(r) for r in records)
    return _response(adr, bytes((info_flag, command)) + body)


def encode_system_parameters_response(adr: int, params: SystemParametersResponse) -> bytes:
    """0x47 response from a ``SystemParametersResponse`` (its ``adr`` is ignored)."""
    p = params
    info = _pack(
        SYSTEM_PARAMETERS_LAYOUT,
        p.info_flag,
        _milli(p.cell_high_voltage),
        _milli(p.cell_low_voltage),
        _milli(p.cell_under_voltage),
        _deci_kelvin(p.charge_high_temperature),
        _deci_kelvin(p.charge_low_temperature),
        _deci(p.charge_current_limit),
        _milli(p.module_high_voltage),
        _milli(p.module_low_voltage),
        _milli(p.module_under_voltage),
        _deci_kelvin(p.discharge_high_temperature),
        _deci_kelvin(p.discharge_low_temperature),
        _deci(p.discharge_current_limit),
        what="0x47",
    )
    return _response(adr, info)


def encode_management_info_response(
    adr: int,
    *,
    charge_voltage_limit: float,
    discharge_voltage_limit: float,
    charge_current_limit: float,
    discharge_current_limit: float,
    status: int,
    command: int | None = None,
) -> bytes:
    """0x92 response. ``discharge_current_limit`` is sent as given (negative on the wire)."""
    info = _pack(
        MANAGEMENT_LAYOUT,
        adr if command is None else command,
        _milli(charge_voltage_limit),
        _milli(discharge_voltage_limit),
        _deci(charge_current_limit),
        _deci(discharge_current_limit),
        status,
        what="0x92",
    )
    return _response(adr, info)


def encode_serial_number_response(
    adr: int, serial_number: str, *, command: int | None = None
) -> bytes:
    """0x93 response: command byte + serial, padded with NULs to 16 characters."""
    data = serial_number.encode("ascii").ljust(16, b"\x00")
    return _response(adr, bytes((adr if command is None else command,)) + data)


def encode_software_version_response(
    adr: int,
    *,
    manufacturer_version: tuple[int, int],
    mainline_version: tuple[int, int, int],
    command: int | None = None,
) -> bytes:
    """0x96 response: command byte, 2 manufacturer-version bytes, 3 main-line bytes."""
    info = _pack(
        SOFTWARE_LAYOUT,
        adr if command is None else command,
        *manufacturer_version,
        *mainline_version,
        what="0x96",
    )
    return _response(adr, info)


def encode_system_analog_response(adr: int, response: SystemAnalogResponse) -> bytes:
    """0x61 response from a ``SystemAnalogResponse`` (its ``adr`` is ignored)."""
    r = response
    temperatures: list[int] = []
    for name in _TEMPERATURE_GROUPS:
        temperatures += [
            _deci_kelvin(getattr(r, f"{name}_average")),
            _deci_kelvin(getattr(r, f"{name}_max")),
            getattr(r, f"{name}_max_id"),
            _deci_kelvin(getattr(r, f"{name}_min")),
            getattr(r, f"{name}_min_id"),
        ]
    info = _pack(
        SYSTEM_ANALOG_LAYOUT,
        _milli(r.voltage),
        round(r.current * 100),
        r.soc,
        r.cycles_average,
        r.cycles_max,
        r.soh_average,
        r.soh_min,
        _milli(r.cell_voltage_max),
        r.cell_voltage_max_id,
        _milli(r.cell_voltage_min),
        r.cell_voltage_min_id,
        *temperatures,
        what="0x61",
    )
    return _response(adr, info)


def encode_response(response: Response) -> bytes:
    """Encode any typed response; ``decode_response`` gives the same response back."""
    r = response
    if isinstance(r, ProtocolVersionResponse):
        return encode_protocol_version_response(r.adr, version=r.version)
    if isinstance(r, ManufacturerInfoResponse):
        return encode_manufacturer_info_response(
            r.adr,
            device_name=r.device_name,
            software_version=r.software_version,
            manufacturer=r.manufacturer,
        )
    if isinstance(r, AnalogResponse):
        return encode_analog_response(
            r.adr, r.records, all_modules=r.all_modules, info_flag=r.info_flag, command=r.command
        )
    if isinstance(r, AlarmResponse):
        return encode_alarm_response(
            r.adr, r.records, all_modules=r.all_modules, info_flag=r.info_flag, command=r.command
        )
    if isinstance(r, SystemParametersResponse):
        return encode_system_parameters_response(r.adr, r)
    if isinstance(r, ManagementInfoResponse):
        return encode_management_info_response(
            r.adr,
            charge_voltage_limit=r.charge_voltage_limit,
            discharge_voltage_limit=r.discharge_voltage_limit,
            charge_current_limit=r.charge_current_limit,
            discharge_current_limit=r.discharge_current_limit,
            status=r.status,
            command=r.command,
        )
    if isinstance(r, SerialNumberResponse):
        return encode_serial_number_response(r.adr, r.serial_number, command=r.command)
    if isinstance(r, SoftwareVersionResponse):
        return encode_software_version_response(
            r.adr,
            manufacturer_version=r.manufacturer_version,
            mainline_version=r.mainline_version,
            command=r.command,
        )
    if isinstance(r, SystemAnalogResponse):
        return encode_system_analog_response(r.adr, r)
    raise TypeError(f"not an RS485 response: {type(response).__name__}")


__all__ = [
    "DECODERS",
    "MANAGEMENT_LAYOUT",
    "MANUFACTURER_LAYOUT",
    "SOFTWARE_LAYOUT",
    "STATUS1_PROTECTIONS",
    "STATUS1_RESERVED",
    "STATUS2_RESERVED",
    "STATUS3_RESERVED",
    "SYSTEM_ANALOG_LAYOUT",
    "SYSTEM_PARAMETERS_LAYOUT",
    "AlarmRecord",
    "AlarmResponse",
    "AnalogRecord",
    "AnalogResponse",
    "ManagementInfoResponse",
    "ManufacturerInfoResponse",
    "ProtocolVersionResponse",
    "Response",
    "SerialNumberResponse",
    "SoftwareVersionResponse",
    "SystemAnalogResponse",
    "SystemParametersResponse",
    "alarm_implausibility",
    "check_alarm_plausible",
    "decode_alarm",
    "decode_analog",
    "decode_management_info",
    "decode_manufacturer_info",
    "decode_protocol_version",
    "decode_response",
    "decode_serial_number",
    "decode_software_version",
    "decode_system_analog",
    "decode_system_parameters",
    "encode_alarm_response",
    "encode_analog_response",
    "encode_error_response",
    "encode_management_info_response",
    "encode_manufacturer_info_response",
    "encode_protocol_version_response",
    "encode_response",
    "encode_serial_number_response",
    "encode_software_version_response",
    "encode_system_analog_response",
    "encode_system_parameters_response",
    "management_status",
]
