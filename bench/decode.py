"""Decode cost per frame/capture: ours against the published Python peers, same inputs.

Run in the ``bench`` venv (``scripts/bench`` does): our codecs are loaded standalone
(no Home Assistant), each peer runs in its own subprocess with its ``--target``
directory first on ``sys.path`` (they all install a package named ``pylontech``).

Cases (docs/protocol-notes.md §4): RS485 0x42 for 1 module (RS-42-G) and 16 modules (one 0xFF
answer; and as 16 single answers, how a per-address poller reads them), 0x44 (RS-44-B),
0x92 (RS-92-B), 0x47 (RS-47-A); CAN one broadcast cycle (CAN-A1..A6, cost per frame);
console ``pwr`` (CON-1) and ``bat 1`` (CON-7) from the raw bytes. "ours" is wire bytes
to typed, validated records (what the peers produce); "ours → model" adds the mapping
to ``Module``/``Bank`` that the integration actually uses.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any

from ._core import ROOT, core_module
from .peers import PEERS
from .timing import per_call_seconds
from .vectors import BAT_CAPTURE, CAN_CYCLE, PWR_CAPTURE, console_capture, rs485_inputs


def our_rs485_decoders() -> dict[str, Any]:
    """Case name -> our decode of one raw frame (bytes -> validated typed response)."""
    rs485 = core_module("protocol.rs485")
    decode_frame = rs485.decode_frame

    def analog(raw: bytes, many: bool) -> Any:
        return rs485.decode_analog(decode_frame(raw), all_modules=many)

    return {
        "rs485_42_1": lambda raw: analog(raw, False),
        "rs485_42_16": lambda raw: analog(raw, True),
        "rs485_42_16_single": lambda raw: analog(raw, False),
        "rs485_44": lambda raw: rs485.decode_alarm(decode_frame(raw), all_modules=False),
        "rs485_92": lambda raw: rs485.decode_management_info(decode_frame(raw)),
        "rs485_47": lambda raw: rs485.decode_system_parameters(decode_frame(raw)),
    }


def _ours_rs485(inputs: dict[str, list[bytes]]) -> dict[str, Any]:
    rs485 = core_module("protocol.rs485")
    decoders = our_rs485_decoders()
    results: dict[str, Any] = {}
    for case, frames in inputs.items():
        decode = decoders[case]

        def typed(decode: Any = decode, frames: list[bytes] = frames) -> list[Any]:
            return [decode(frame) for frame in frames]

        entry: dict[str, Any] = {"seconds": per_call_seconds(typed)}
        first = typed()[0]
        if case.startswith("rs485_42"):
            record = first.records[0]
            entry["check"] = {
                "modules": len(first.records) if first.all_modules else 1,
                "voltage": round(record.voltage, 3),
                "cell1": round(record.cell_voltages[0], 3),
            }

            def to_model(decode: Any = decode, frames: list[bytes] = frames) -> list[Any]:
                return [rs485.modules_from_analog(decode(frame)) for frame in frames]

            entry["model_seconds"] = per_call_seconds(to_model)
        elif case == "rs485_44":
            entry["check"] = {"status2": first.records[0].status2}

            def to_model44(decode: Any = decode, frames: list[bytes] = frames) -> list[Any]:
                return [rs485.modules_from_alarm(decode(frame)) for frame in frames]

            entry["model_seconds"] = per_call_seconds(to_model44)
        elif case == "rs485_92":
            entry["check"] = {"cvl": round(first.charge_voltage_limit, 3)}
        elif case == "rs485_47":
            entry["check"] = {"module_high": round(first.module_high_voltage, 3)}
        entry["frames"] = len(frames)
        entry["bytes"] = sum(len(frame) for frame in frames)
        results[case] = entry
    return results


def _ours_can() -> dict[str, Any]:
    can = core_module("protocol.can")
    cycle = CAN_CYCLE

    def decode_cycle() -> list[Any]:
        return [can.decode_frame(can_id, data) for can_id, data in cycle]

    assembler = can.CanBankAssembler()
    clock = [0.0]

    def assemble_cycle() -> Any:
        # one broadcast cycle into the assembler and the resulting Bank snapshot
        clock[0] += 1.0
        for can_id, data in cycle:
            assembler.update(can_id, data, clock[0])
        return assembler.bank()

    frames = len(cycle)
    return {
        "can_frame": {
            "seconds": per_call_seconds(decode_cycle) / frames,
            "model_seconds": per_call_seconds(assemble_cycle) / frames,
            "frames": 1,
        }
    }


def _ours_console() -> dict[str, Any]:
    console = core_module("protocol.console")
    results: dict[str, Any] = {}
    for case, name, parse, to_model in (
        ("console_pwr", PWR_CAPTURE, console.parse_pwr, console.modules_from_pwr),
        ("console_bat", BAT_CAPTURE, console.parse_bat, None),
    ):
        raw = console_capture(name)

        def typed(raw: bytes = raw, parse: Any = parse) -> Any:
            framer = console.ConsoleFramer()
            events = framer.feed(raw) + framer.finish()
            response = next(e.response for e in events if e.response is not None)
            return parse(response)

        parsed = typed()

        def modelled(typed: Any = typed, to_model: Any = to_model) -> Any:
            parsed = typed()
            if to_model is not None:
                return to_model(parsed)
            return console.apply_bat(_module(), parsed)

        results[case] = {
            "seconds": per_call_seconds(typed),
            "model_seconds": per_call_seconds(modelled),
            "bytes": len(raw),
            "check": {"rows": len(parsed.rows) if case == "console_pwr" else len(parsed)},
        }
    return results


def _module() -> Any:
    model = core_module("model")
    return model.Module(index=1)


def _peers_dir() -> Path:
    prefix = Path(sys.prefix)
    return prefix.with_name(prefix.name + "-peers")


def _run_peer(name: str, inputs: dict[str, list[bytes]]) -> dict[str, Any]:
    target = _peers_dir() / name
    if not target.is_dir():
        return {"_error": f"{target} missing: run scripts/setup-bench"}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), str(ROOT)]))
    payload = json.dumps({case: [f.hex() for f in frames] for case, frames in inputs.items()})
    done = subprocess.run(
        [sys.executable, "-m", "bench.peers", name],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return {"_error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout)


def run() -> dict[str, Any]:
    """All decode measurements: ``{"ours": {case: ...}, "peers": {name: {case: ...}}}``."""
    inputs = rs485_inputs()
    ours = _ours_rs485(inputs)
    ours.update(_ours_can())
    ours.update(_ours_console())
    peers = {name: _run_peer(name, inputs) for name in PEERS}
    return {"python": sys.version.split()[0], "ours": ours, "peers": peers}


def main() -> None:
    """``python -m bench.decode [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    args = parser.parse_args()
    result = run()
    if args.json:
        json.dump(result, sys.stdout, indent=1)
    else:
        from .report import decode_table

        print(decode_table(result))


if __name__ == "__main__":
    main()
