"""Decode the benchmark inputs with one published peer (run in a subprocess).

``python -m bench.peers NAME`` with ``sys.path`` led by that peer's ``--target``
directory (``scripts/setup-bench``), reading ``{"case": ["hex frame", ...]}`` on stdin
and printing ``{"case": {"seconds": s, "check": {...}}}``. Each peer is driven through
its own decode functions exactly as its poller uses them after reading a frame off the
wire (checksum check, frame split, INFO parse); serial I/O is bypassed, nothing else.
A case a peer cannot decode is simply absent from its output.

The ``check`` values (module count, first module's voltage and first cell voltage)
let the caller confirm the peer decoded the same thing we did.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import sys
from typing import Any

from .timing import per_call_seconds

Decoder = Callable[[bytes], Any]
Check = Callable[[Any], dict[str, float]]


def _construct_checks(single: bool) -> Check:
    def check(parsed: Any) -> dict[str, float]:
        if single:
            return {
                "modules": 1,
                "voltage": round(parsed.Voltage, 3),
                "cell1": round(parsed.CellVoltages[0], 3),
            }
        return {
            "modules": parsed.NumberOfModules,
            "voltage": round(parsed.Module[0].Voltage, 3),
            "cell1": round(parsed.Module[0].CellVoltages[0], 3),
        }

    return check


def _construct_peer(ext: bool) -> dict[str, tuple[Decoder, Check]]:
    """python-pylontech 0.3.3 and python-pylontech-ext share the construct schema."""
    if ext:
        from pylontech.schema import PylontechSchema  # type: ignore[import-not-found]
        from pylontech.transport import SerialTransport  # type: ignore[import-not-found]

        transport = SerialTransport()
        schema = PylontechSchema

        def frame(raw: bytes) -> Any:
            return transport._decode_frame(transport._decode_hw_frame(raw))
    else:
        from pylontech.pylontech import Pylontech  # type: ignore[import-not-found]

        peer = Pylontech.__new__(Pylontech)  # no serial port: decode only
        schema = Pylontech

        def frame(raw: bytes) -> Any:
            return peer._decode_frame(peer._decode_hw_frame(raw))

    def single(raw: bytes) -> Any:
        return schema.get_values_single_fmt.parse(frame(raw).info[1:])

    def many(raw: bytes) -> Any:
        return schema.get_values_fmt.parse(frame(raw).info[1:])

    def management(raw: bytes) -> Any:
        return schema.management_info_fmt.parse(frame(raw).info[1:])

    def parameters(raw: bytes) -> Any:
        return schema.system_parameters_fmt.parse(frame(raw).info[1:])

    def limits_check(parsed: Any) -> dict[str, float]:
        return {"cvl": round(parsed.ChargeVoltageLimit, 3)}

    def params_check(parsed: Any) -> dict[str, float]:
        return {"module_high": round(parsed.ModuleHighVoltageLimit, 3)}

    return {
        "rs485_42_1": (single, _construct_checks(True)),
        "rs485_42_16": (many, _construct_checks(False)),
        "rs485_42_16_single": (single, _construct_checks(True)),
        "rs485_92": (management, limits_check),
        "rs485_47": (parameters, params_check),
        # neither package decodes 0x44 (ext's get_alarm_info sends 0x4F and returns the frame)
    }


def _tomcat_peer() -> dict[str, tuple[Decoder, Check]]:
    """pylontech 0.1.3 (Tomcat42): hex-slicing decoder, one module per frame."""
    from pylontech.pylontech_base import PylontechRS485  # type: ignore[import-not-found]
    from pylontech.pylontech_decode import PylontechDecode  # type: ignore[import-not-found]

    def framed(raw: bytes) -> Any:
        # What PylontechRS485.receive() does after reading: strip ~/CR, verify CHKSUM.
        package = raw[1:-1]
        if PylontechRS485.get_chk_sum(package, len(package)) != int(package[-4:].decode(), 16):
            raise ValueError("checksum")
        decoder = PylontechDecode()
        decoder.decode_header(package)
        return decoder

    def analog(raw: bytes) -> Any:
        return framed(raw).decodeAnalogValue()

    def alarm(raw: bytes) -> Any:
        return framed(raw).decodeAlarmInfo()

    def management(raw: bytes) -> Any:
        return framed(raw).decodeChargeDischargeManagementInfo()

    def parameters(raw: bytes) -> Any:
        return framed(raw).decodeSystemParameter()

    def analog_check(parsed: dict[str, Any]) -> dict[str, float]:
        return {
            "modules": 1,
            "voltage": round(parsed["Voltage"], 3),
            "cell1": round(parsed["CellVoltages"][0], 3),
        }

    return {
        "rs485_42_1": (analog, analog_check),
        # no 0xFF multi-module decoder: its stack polls each address (rs485_42_16_single)
        "rs485_42_16_single": (analog, analog_check),
        "rs485_44": (alarm, lambda parsed: {"status2": parsed["Status2"]}),
        "rs485_92": (management, lambda parsed: {"cvl": round(parsed["ChargeVoltage"], 3)}),
        "rs485_47": (parameters, lambda parsed: {"ok": 1}),
    }


PEERS: dict[str, Callable[[], dict[str, tuple[Decoder, Check]]]] = {
    "python-pylontech": lambda: _construct_peer(ext=False),
    "python-pylontech-ext": lambda: _construct_peer(ext=True),
    "pylontech": _tomcat_peer,
}


ROUNDS = 3


def run(name: str, inputs: dict[str, list[bytes]]) -> dict[str, Any]:
    """Time every case the peer supports, interleaved with ours on the same frames.

    Peer and ours alternate for ``ROUNDS`` rounds in this one process and the best time of
    each is kept, so the ratio is not skewed by load that came and went between them.
    """
    from .decode import our_rs485_decoders

    decoders = PEERS[name]()
    ours = our_rs485_decoders()
    results: dict[str, Any] = {}
    for case, frames in inputs.items():
        if case not in decoders:
            continue
        decode, check = decoders[case]

        def decode_all(decode: Decoder = decode, frames: list[bytes] = frames) -> Any:
            return [decode(frame) for frame in frames]

        def ours_all(decode: Decoder = ours[case], frames: list[bytes] = frames) -> Any:
            return [decode(frame) for frame in frames]

        try:
            parsed = decode_all()
        except Exception as err:  # a peer failing on a real frame is a result too
            results[case] = {"error": f"{type(err).__name__}: {err}"}
            continue
        peer_best = ours_best = float("inf")
        for _ in range(ROUNDS):
            peer_best = min(peer_best, per_call_seconds(decode_all, repeats=3))
            ours_best = min(ours_best, per_call_seconds(ours_all, repeats=3))
        results[case] = {"seconds": peer_best, "ours_seconds": ours_best, "check": check(parsed[0])}
    return results


def main() -> None:
    """Entry point: ``python -m bench.peers NAME < inputs.json``."""
    name = sys.argv[1]
    inputs = {
        case: [bytes.fromhex(h) for h in frames] for case, frames in json.load(sys.stdin).items()
    }
    json.dump(run(name, inputs), sys.stdout)


if __name__ == "__main__":
    main()
