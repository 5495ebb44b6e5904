"""RS485 battery over TCP: answers the read commands through the codec's encoders.

Routing follows docs/protocol-notes.md §1.5: ADR = slot + 1 + 0x10 * group (master ADR 2;
ADR 1 is the RS232 host address of the master). Absent modules and other groups do not answer. 0x42/0x44
with INFO 0xFF at the master return every present module. 0x61 (V3.5 system analog data) is
answered by the master where the model does (``ModelSpec.system_analog``, or the server's
``system_analog`` override), else refused like any unknown CID2. Unknown CID2 and every write
command (0x94, 0x95, 0x99 ...) get RTN 0x04 (CID2 invalid) and change nothing; a request with a
bad CHKSUM gets RTN 0x02. Every request received is recorded (``requests``).

``raw_answers`` lets a test replace the INFO of one request, keyed by CID2 and command byte
(the module's ADR, 0xFF for an all-modules request, the ADR itself for requests without
INFO), with bytes of its choosing; a framed, checksum-valid answer is still built around
them: hostile or broken firmware without a new code path.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from custom_components.pylontech.core.errors import ChecksumError, ProtocolError
from custom_components.pylontech.core.model import Bank
from custom_components.pylontech.core.protocol import rs485

from .bank import SimulatedBank
from .faults import LinkFault
from .server_base import READ_CHUNK, SimServer

RTN_CHECKSUM = 0x02
RTN_CID2_INVALID = 0x04
# 0x44 replies of US2000C/US3000C-era firmware carry one extra 0x00 after Status 5
# (docs/protocol-notes.md D4).
_ALARM_TRAILER = {"US2000B": b""}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One frame the server received (``request`` None when it did not decode)."""

    time: float
    raw: bytes
    request: rs485.Request | None
    error: str | None = None


class Rs485Server(SimServer):
    """The RS485 port of the master battery."""

    link = "rs485"

    def __init__(self, bank: SimulatedBank, **kwargs: object) -> None:
        """See ``SimServer``; ``baud`` defaults to none (no wire-time delay)."""
        super().__init__(bank, **kwargs)  # type: ignore[arg-type]
        self._stalled_until = 0.0
        self.dropped_bytes = 0
        #: Whether the master answers 0x61; None follows the master's model.
        self.system_analog: bool | None = None
        #: ``(CID2, command byte) -> INFO``: answer with these bytes instead (tests).
        self.raw_answers: dict[tuple[int, int], bytes] = {}

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (bounded to the last ``MAX_RECORDS``)."""
        return list(self.recorded)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read frames and answer them one at a time (half duplex)."""
        splitter = rs485.FrameSplitter()
        loop = asyncio.get_running_loop()
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            self.bytes_in += len(data)
            before = splitter.dropped_bytes
            frames = splitter.feed(data)
            self.dropped_bytes += splitter.dropped_bytes - before
            for raw in frames:
                answer = self.answer(raw, now=loop.time())
                if answer is None:
                    continue
                if not await self._deliver(writer, answer):
                    return

    def answer(self, raw: bytes, *, now: float = 0.0) -> bytes | None:
        """The response to one request frame (None = silence); records the request."""
        try:
            request = rs485.decode_request(raw)
        except ChecksumError as err:
            self.recorded.append(RecordedRequest(now, raw, None, str(err)))
            try:
                adr = rs485.parse_frame(raw, verify_checksum=False).adr
            except ProtocolError:
                return None
            return rs485.encode_error_response(adr, RTN_CHECKSUM) if self._serves(adr) else None
        except ProtocolError as err:
            self.recorded.append(RecordedRequest(now, raw, None, str(err)))
            return None
        self.recorded.append(RecordedRequest(now, raw, request))
        if not self._serves(request.adr):
            return None
        if request.command is None:
            return rs485.encode_error_response(request.adr, RTN_CID2_INVALID)
        return self._respond(request)

    def _index(self, adr: int) -> int | None:
        if adr == 1:
            return 1 if self.bank.group == 0 else None
        group, n = adr >> 4, adr & 0x0F
        if group != self.bank.group or n < 2:
            return None
        return n - 1

    def _serves(self, adr: int) -> bool:
        index = self._index(adr)
        return index is not None and self.bank.is_present(index)

    def _respond(self, request: rs485.Request) -> bytes | None:
        adr = request.adr
        index = self._index(adr)
        if index is None:
            return None
        command = request.command
        bank = self.bank
        spec = bank.spec(index)
        master = bank.master.spec
        if spec is None:
            return None
        target = request.target if request.target is not None else adr
        raw_info = self.raw_answers.get((request.cid2, target))
        if raw_info is not None:
            return rs485.encode_frame(rs485.PYLONTECH_VER, adr, rs485.CID1_BATTERY, 0, raw_info)
        match command:
            case rs485.Command.GET_PROTOCOL_VERSION:
                return rs485.encode_protocol_version_response(adr)
            case rs485.Command.GET_MANUFACTURER_INFO:
                # The master answers for the stack (docs/protocol-notes.md §1.5).
                return rs485.encode_manufacturer_info_response(
                    adr,
                    device_name=master.device_name,
                    software_version=master.soft_version,
                    manufacturer="Pylon",
                )
            case rs485.Command.GET_ANALOG_VALUES | rs485.Command.GET_ALARM_INFO:
                targets = bank.present_indexes() if request.all_modules else (index,)
                modules = [m for m in (bank.module_snapshot(i) for i in targets) if m]
                if command is rs485.Command.GET_ANALOG_VALUES:
                    records = [
                        rs485.analog_record_from_module(
                            m, user_defined=bank.spec(m.index).user_defined
                        )  # type: ignore[union-attr]
                        for m in modules
                    ]
                    return rs485.encode_analog_response(
                        adr, records, all_modules=request.all_modules
                    )
                alarm_records = [
                    rs485.alarm_record_from_module(
                        m,
                        extra=_ALARM_TRAILER.get(bank.spec(m.index).name, b"\x00"),  # type: ignore[union-attr]
                    )
                    for m in modules
                ]
                return rs485.encode_alarm_response(
                    adr, alarm_records, all_modules=request.all_modules
                )
            case rs485.Command.GET_SYSTEM_PARAMETERS:
                return rs485.encode_system_parameters_response(
                    adr,
                    rs485.SystemParametersResponse(
                        adr=adr,
                        info_flag=0x11,
                        cell_high_voltage=spec.cell_high_voltage,
                        cell_low_voltage=spec.cell_low_voltage,
                        cell_under_voltage=spec.cell_under_voltage,
                        charge_high_temperature=spec.charge_high_temperature,
                        charge_low_temperature=spec.charge_low_temperature,
                        charge_current_limit=spec.max_charge_current,
                        module_high_voltage=spec.module_high_voltage,
                        module_low_voltage=spec.module_low_voltage,
                        module_under_voltage=spec.module_under_voltage,
                        discharge_high_temperature=spec.discharge_high_temperature,
                        discharge_low_temperature=spec.discharge_low_temperature,
                        discharge_current_limit=-spec.max_discharge_current,
                    ),
                )
            case rs485.Command.GET_MANAGEMENT_INFO:
                limits = bank.module_limits(index)
                if limits is None:
                    return None
                return rs485.encode_management_info_response(
                    adr,
                    charge_voltage_limit=limits.charge_voltage,
                    discharge_voltage_limit=limits.discharge_voltage,
                    charge_current_limit=limits.charge_current,
                    discharge_current_limit=-limits.discharge_current,
                    status=rs485.management_status(
                        charge_enabled=limits.charge_enabled,
                        discharge_enabled=limits.discharge_enabled,
                        force_charge_1=limits.force_charge_1,
                        force_charge_2=limits.force_charge_2,
                        full_charge_request=limits.full_charge_request,
                    ),
                )
            case rs485.Command.GET_SERIAL_NUMBER:
                return rs485.encode_serial_number_response(adr, bank.serial(index) or "")
            case rs485.Command.GET_SYSTEM_ANALOG:
                answers = master.system_analog if self.system_analog is None else self.system_analog
                if index != 1 or not answers:
                    return rs485.encode_error_response(adr, RTN_CID2_INVALID)
                return rs485.encode_system_analog_response(adr, system_analog(bank.snapshot(), adr))
            case rs485.Command.GET_SOFTWARE_VERSION:
                return rs485.encode_software_version_response(
                    adr,
                    manufacturer_version=spec.manufacturer_version,
                    mainline_version=spec.mainline_version,
                )
        return rs485.encode_error_response(adr, RTN_CID2_INVALID)

    async def _deliver(self, writer: asyncio.StreamWriter, answer: bytes) -> bool:
        """Apply the injected transport faults and send; False = connection closed."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._stalled_until:
            return True
        stall = self.stall_seconds()
        if stall is not None:
            self._stalled_until = loop.time() + stall
            return True
        if self.take_fault(LinkFault.DROP):
            writer.close()
            return False
        if self.take_fault(LinkFault.WRONG_BAUD):
            # A receiver clocked ~12x off sees about one byte per 12, with random values.
            await self.send(writer, self.garbage(max(2, len(answer) // 12)))
            return True
        if self.take_fault(LinkFault.CHECKSUM):
            answer = corrupt_checksum(answer)
        if self.take_fault(LinkFault.TRUNCATE):
            answer = answer[: max(1, len(answer) // 2)]
        if self.take_fault(LinkFault.GARBAGE):
            answer = self.garbage(self.rng.randint(8, 40)) + answer
        await self.send(writer, answer)
        return True


def _extreme(values: list[tuple[float, int]], *, highest: bool) -> tuple[float, int]:
    if not values:
        return (0.0, 0)
    pick = max if highest else min
    return pick(values, key=lambda item: item[0])


def system_analog(bank: Bank, adr: int) -> rs485.SystemAnalogResponse:
    """The 0x61 stack summary of the truth (ids: module number << 8 | cell or sensor)."""
    modules = bank.modules
    cells = [(v, m.index << 8 | n) for m in modules for n, v in enumerate(m.cell_voltages, 1)]
    groups = [(t, m.index << 8 | n) for m in modules for n, t in enumerate(m.temperatures[1:5], 2)]
    mosfets = [(m.mosfet_temperature, m.index << 8 | 6) for m in modules if m.mosfet_temperature]
    boards = [(m.temperature, m.index << 8 | 1) for m in modules if m.temperature is not None]
    temperatures: dict[str, float | int] = {}
    for name, values in (("cell", groups), ("mosfet", mosfets), ("bms", boards)):
        high, high_id = _extreme(values, highest=True)
        low, low_id = _extreme(values, highest=False)
        average = sum(v for v, _ in values) / len(values) if values else 0.0
        temperatures |= {
            f"{name}_temperature_average": round(average, 1),
            f"{name}_temperature_max": high,
            f"{name}_temperature_max_id": high_id,
            f"{name}_temperature_min": low,
            f"{name}_temperature_min_id": low_id,
        }
    cycles = [m.cycles or 0 for m in modules]
    sohs = [round(m.soh or 0) for m in modules]
    cell_max, cell_max_id = _extreme(cells, highest=True)
    cell_min, cell_min_id = _extreme(cells, highest=False)
    return rs485.SystemAnalogResponse(
        adr=adr,
        voltage=bank.voltage or 0.0,
        current=bank.current or 0.0,
        soc=round(bank.soc or 0),
        cycles_average=round(sum(cycles) / len(cycles)) if cycles else 0,
        cycles_max=max(cycles, default=0),
        soh_average=round(sum(sohs) / len(sohs)) if sohs else 0,
        soh_min=min(sohs, default=0),
        cell_voltage_max=cell_max,
        cell_voltage_max_id=cell_max_id,
        cell_voltage_min=cell_min,
        cell_voltage_min_id=cell_min_id,
        **temperatures,  # type: ignore[arg-type]
    )


def corrupt_checksum(frame: bytes) -> bytes:
    """The same frame with a CHKSUM that no longer matches (last hex digit changed)."""
    if len(frame) < 6:
        return frame
    digit = frame[-2:-1]
    replacement = b"0" if digit != b"0" else b"1"
    return frame[:-2] + replacement + frame[-1:]
