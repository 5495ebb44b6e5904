"""Format merged benchmark results as the plain-text/Markdown table ``scripts/bench`` prints.

Input: ``{"decode": bench.decode.run(), "poll": ..., "ha_loop": ..., "can": ..., "memory": ...}``
(any section may be missing or carry ``{"error": "..."}``). Output: Markdown tables, readable
in a terminal and pasted unchanged into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DECODE_TARGET = 10.0  # at least 10x faster than the fastest peer on the same input
POLL_TARGET = 1.2  # a poll within 1.2x of the pure wire time

PEER_LABELS = {
    "python-pylontech": "python-pylontech 0.3.3",
    "python-pylontech-ext": "python-pylontech-ext 0.4.5",
    "pylontech": "pylontech 0.1.3",
}
CASE_LABELS = {
    "rs485_42_1": "RS485 0x42, 1 module (RS-42-G)",
    "rs485_42_16": "RS485 0x42, 16 modules, one 0xFF answer",
    "rs485_42_16_single": "RS485 0x42, 16 modules, 16 single answers",
    "rs485_44": "RS485 0x44, 1 module (RS-44-B)",
    "rs485_92": "RS485 0x92 (RS-92-B)",
    "rs485_47": "RS485 0x47 (RS-47-A)",
    "can_frame": "CAN frame (CAN-A1..A6, per frame)",
    "console_pwr": "console `pwr`, 16 slots (CON-1, raw bytes)",
    "console_bat": "console `bat 1`, 15 cells (CON-7, raw bytes)",
}


def _us(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    micro = seconds * 1e6
    return f"{micro:,.1f}" if micro < 100 else f"{micro:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _error(section: Any) -> str | None:
    if section is None:
        return "not run"
    if isinstance(section, dict) and "error" in section:
        return str(section["error"])
    return None


def decode_table(result: dict[str, Any]) -> str:
    """Decode cost table: µs per input, peers side by side, ratio to the fastest peer."""
    if (err := _error(result)) is not None:
        return f"Decode benchmark: {err}"
    ours, peers = result["ours"], result["peers"]
    header = ["Input", "ours µs", "ours→model µs"]
    header += [f"{PEER_LABELS[p]} µs" for p in PEER_LABELS]
    header += ["fastest peer ÷ ours (paired)", f"≥{DECODE_TARGET:g}×"]
    rows = []
    for case, label in CASE_LABELS.items():
        if case not in ours:
            continue
        mine = ours[case]
        best_ours = min(
            [mine["seconds"]]
            + [
                e["ours_seconds"]
                for p in PEER_LABELS
                if "ours_seconds" in (e := peers.get(p, {}).get(case) or {})
            ]
        )
        row = [label, _us(best_ours), _us(mine.get("model_seconds"))]
        ratio: float | None = None  # against the fastest peer, each paired with our own run
        for peer in PEER_LABELS:
            entry = peers.get(peer, {}).get(case)
            if entry is None or "seconds" not in entry:
                row.append("n/a" if entry is None else "error")
                continue
            agrees = entry.get("check") == mine.get("check") or case in {"rs485_47"}
            row.append(_us(entry["seconds"]) + ("" if agrees else " (≠)"))
            paired = entry["seconds"] / entry.get("ours_seconds", mine["seconds"])
            ratio = paired if ratio is None else min(ratio, paired)
        if ratio is None:
            row += ["no peer decodes it", "–"]
        else:
            row += [f"{ratio:.1f}×", "met" if ratio >= DECODE_TARGET else "**not met**"]
        rows.append(row)
    return _table(header, rows)


def poll_table(result: dict[str, Any] | None) -> str:
    """Full-poll time against the pure wire time of the bytes exchanged."""
    if (err := _error(result)) is not None:
        return f"Poll benchmark: {err}"
    assert result is not None
    header = ["Link", "Modules", "Baud", "Poll ms", "Wire ms", "Bytes", "Poll ÷ wire", "≤1.2×"]
    rows = []
    for entry in result["polls"]:
        if "error" in entry:
            rows.append(
                [entry["link"], str(entry["modules"]), str(entry["baud"]), entry["error"]]
                + ["–"] * 4
            )
            continue
        ratio = entry["poll_seconds"] / entry["wire_seconds"]
        rows.append(
            [
                entry["link"],
                str(entry["modules"]),
                str(entry["baud"]),
                f"{entry['poll_seconds'] * 1e3:,.1f}",
                f"{entry['wire_seconds'] * 1e3:,.1f}",
                f"{entry['bytes']:,}",
                f"{ratio:.2f}×",
                "met" if ratio <= POLL_TARGET else "**not met**",
            ]
        )
    return _table(header, rows)


def kv_table(title: str, result: dict[str, Any] | None) -> str:
    """A two-column table of named figures (``{"rows": [[name, value, target?], ...]}``)."""
    if (err := _error(result)) is not None:
        return f"{title}: {err}"
    assert result is not None
    rows = [[str(c) for c in row] + [""] * (3 - len(row)) for row in result["rows"]]
    return _table([title, "Value", "Target / verdict"], rows)


def ha_rows(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """``bench.ha_loop`` figures as table rows with their targets."""
    if result is None or "error" in result:
        return result
    unchanged = result["writes_unchanged"]
    per_refresh = unchanged / result["refreshes_unchanged"]
    return {
        "rows": [
            ["Entities enabled (16 modules, cells on, all enabled)", result["entities_enabled"]],
            [
                "Loop CPU per coordinator update (median / max)",
                f"{result['loop_cpu_seconds_median'] * 1e3:.1f} ms / "
                f"{result['loop_cpu_seconds_max'] * 1e3:.1f} ms",
            ],
            [
                "Update wall time (median; simulator without wire-time pacing)",
                f"{result['update_wall_seconds_median'] * 1e3:.1f} ms",
            ],
            [
                f"State writes, nothing changed ({result['refreshes_unchanged']} refreshes)",
                f"{unchanged} ({per_refresh:.1f} per refresh): "
                + ", ".join(result.get("written_unchanged_sample", [])[:3]),
                "0 — " + ("met" if unchanged == 0 else "see note"),
            ],
            [
                "State writes, one value changed (1 refresh)",
                f"{result['writes_one_change']} "
                f"({result['state_changed_one_change']} state_changed + "
                f"{result['state_reported_one_change']} state_reported)",
                "only the changed entity — "
                + ("met" if result["writes_one_change"] <= 1 else "**not met**"),
            ],
            ["Loop CPU for that update", f"{result['loop_cpu_seconds_one_change'] * 1e3:.1f} ms"],
        ]
    }


def can_rows(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """``bench.can`` figures as table rows."""
    if result is None or "error" in result:
        return result
    return {
        "rows": [
            [
                "Frame-to-state latency (last frame of a cycle → on_update), median / max",
                f"{result['latency_median'] * 1e3:.1f} ms / {result['latency_max'] * 1e3:.1f} ms",
                f"includes the deliberate {result['burst_gap'] * 1e3:.0f} ms burst gap",
            ],
            [
                "  of which processing (latency − burst gap)",
                f"{result['latency_minus_gap'] * 1e3:.2f} ms",
            ],
            [
                "CPU per 1,000 frames (python-can slcan + notifier + loop)",
                f"{result['cpu_per_1000_frames'] * 1e3:.0f} ms"
                if result.get("cpu_per_1000_frames")
                else "–",
                f"{result['cpu_frames']} frames measured",
            ],
            [
                "  net of idle (threads without traffic burn "
                f"{result.get('idle_cpu_per_second', 0) * 1e3:.0f} ms/s)",
                f"{result['cpu_per_1000_frames_net'] * 1e3:.0f} ms"
                if result.get("cpu_per_1000_frames_net") is not None
                else "–",
            ],
        ]
    }


def memory_rows(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """``bench.memory`` figures as table rows."""
    if result is None or "error" in result:
        return result
    return {
        "rows": [
            [
                f"Bank of {result['modules']} modules ({result['cells']} cells), retained",
                f"{result['bank_bytes'] / 1024:.0f} KiB ({result['bytes_per_module']:.0f} B/module)",
            ],
            [
                "Peak while decoding one full poll",
                f"{result['peak_bytes_during_decode'] / 1024:.0f} KiB",
            ],
            [
                f"Growth over {result['cycles']} further polls",
                f"{result['growth_bytes_after_cycles']} B",
                "no growth — "
                + ("met" if result["growth_bytes_after_cycles"] < 4096 else "**not met**"),
            ],
            [
                "Wire bytes of one full poll (0x42 + 0x44, 6 groups)",
                f"{result['wire_bytes_per_poll']:,} B",
            ],
        ]
    }


def full_report(results: dict[str, Any]) -> str:
    """Every section of the report, in the order of docs/benchmarks.md."""
    parts = [
        "### Decode cost (µs per input, best of 7 auto-ranged runs)",
        decode_table(results.get("decode") or {"error": "not run"}),
        "",
        "### Full poll against the simulator honouring wire time",
        poll_table(results.get("poll")),
        "",
        "### Home Assistant event loop (16 modules, all entities enabled)",
        kv_table("Figure", ha_rows(results.get("ha_loop"))),
        "",
        "### CAN frame-to-state",
        kv_table("Figure", can_rows(results.get("can"))),
        "",
        "### Memory",
        kv_table("Figure", memory_rows(results.get("memory"))),
    ]
    return "\n".join(parts)


BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def load_results(folder: Path) -> dict[str, Any]:
    """Read ``folder/<section>.json`` for every section that was run."""
    results: dict[str, Any] = {}
    for section in ("decode", "poll", "ha_loop", "can", "memory"):
        path = folder / f"{section}.json"
        if path.is_file():
            try:
                results[section] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as err:
                results[section] = {"error": f"unreadable {path.name}: {err}"}
    return results


def write_into(document: Path, table: str, header: str) -> None:
    """Replace the generated block between the markers of ``document``."""
    text = document.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END)
    block = f"{BEGIN}\n{header}\n\n{table}\n{END}"
    document.write_text(text[:start] + block + text[end + len(END) :], encoding="utf-8")


def main() -> None:
    """``python -m bench.report RESULTS_DIR [--write docs/benchmarks.md --header TEXT]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--header", default="")
    args = parser.parse_args()
    table = full_report(load_results(args.results))
    print(table)
    if args.write:
        write_into(args.write, table, args.header)


if __name__ == "__main__":
    main()
