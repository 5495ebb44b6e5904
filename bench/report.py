"""Format merged benchmark results as the plain-text/Markdown table ``scripts/bench`` prints.

Input: ``{"decode": bench.decode.run(), "poll": ..., "ha_loop": ..., "can": ..., "memory": ...}``
(any section may be missing or carry ``{"error": "..."}``). Output: Markdown tables, readable
in a terminal and pasted unchanged into ``docs/benchmarks.md``.
"""

from __future__ import annotations

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
    header += ["fastest peer ÷ ours", f"≥{DECODE_TARGET:g}×"]
    rows = []
    for case, label in CASE_LABELS.items():
        if case not in ours:
            continue
        mine = ours[case]
        row = [label, _us(mine["seconds"]), _us(mine.get("model_seconds"))]
        fastest: float | None = None
        for peer in PEER_LABELS:
            entry = peers.get(peer, {}).get(case)
            if entry is None or "seconds" not in entry:
                row.append("n/a" if entry is None else "error")
                continue
            agrees = entry.get("check") == mine.get("check") or case in {"rs485_47"}
            row.append(_us(entry["seconds"]) + ("" if agrees else " (≠)"))
            fastest = entry["seconds"] if fastest is None else min(fastest, entry["seconds"])
        if fastest is None:
            row += ["no peer decodes it", "–"]
        else:
            ratio = fastest / mine["seconds"]
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


def full_report(results: dict[str, Any]) -> str:
    """Every section, in the order of issue 7."""
    parts = [
        "### Decode cost (µs per input, best of 7 auto-ranged runs)",
        decode_table(results.get("decode") or {"error": "not run"}),
        "",
        "### Full poll against the simulator honouring wire time",
        poll_table(results.get("poll")),
        "",
        "### Home Assistant event loop (16 modules, all entities enabled)",
        kv_table("Figure", results.get("ha_loop")),
        "",
        "### CAN frame-to-state",
        kv_table("Figure", results.get("can")),
        "",
        "### Memory",
        kv_table("Figure", results.get("memory")),
    ]
    return "\n".join(parts)
