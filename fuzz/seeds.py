"""Seed corpus from the reference captures and the test fixtures.

RS485 frames are collected from the real captures in ``tests/core/captures/rs485``, the
frames quoted in ``docs/protocol-notes.md`` and the frame literals in ``tests/core`` and
``bench/vectors.py``; console seeds are the verbatim capture files in
``tests/core/captures/console``; CAN seeds are the CAN-A broadcast cycle
(``docs/protocol-notes.md`` §4.2), an emulator's cycle and synthetic flag frames, in both the
harness's binary record form and candump text.
"""

from __future__ import annotations

from pathlib import Path
import re

ROOT = Path(__file__).resolve().parent.parent
_FRAME = re.compile(rb"~[0-9A-Fa-f]{12,}(?:\\r|\r)?")

CAN_FRAMES: tuple[tuple[int, str], ...] = (
    (0x351, "1402C012C012C201"),
    (0x355, "58005E00"),
    (0x356, "7A13F2FE6B01"),
    (0x359, "0000000006504E"),
    (0x35C, "C000"),
    (0x35E, "50594C4F4E202020"),
    (0x351, "2802F4012003E001"),
    (0x355, "3C006400"),
    (0x356, "6C140400DC00"),
    (0x359, "82010000 01504E".replace(" ", "")),
    (0x359, "00080008 01504E".replace(" ", "")),
    (0x35C, "E800"),
    (0x305, "0000000000000000"),
)


def rs485_frames() -> list[bytes]:
    """Every distinct RS485 frame literal found in the captures, the notes and the tests."""
    sources = sorted((ROOT / "tests" / "core" / "captures" / "rs485").rglob("*.txt"))
    sources += [ROOT / "docs" / "protocol-notes.md"]
    sources += sorted((ROOT / "tests" / "core").glob("test_rs485*.py"))
    sources += [ROOT / "bench" / "vectors.py"]
    frames: dict[bytes, None] = {}
    for path in sources:
        for match in _FRAME.finditer(path.read_bytes()):
            text = match.group(0).replace(b"\\r", b"").rstrip(b"\r")
            frames[text + b"\r"] = None
    return list(frames)


def console_captures() -> list[bytes]:
    """The console capture files, raw."""
    folder = ROOT / "tests" / "core" / "captures" / "console"
    return [path.read_bytes() for path in sorted(folder.glob("*.txt"))]


def can_records() -> bytes:
    """All CAN seed frames in the ``can_frame`` target's record form (id, length, data)."""
    out = bytearray()
    for can_id, data in CAN_FRAMES:
        payload = bytes.fromhex(data)
        out += can_id.to_bytes(2, "big") + bytes((len(payload),)) + payload
    return bytes(out)


def candump_text() -> bytes:
    """The CAN seed frames as ``candump -L`` and default-format lines."""
    lines = []
    for number, (can_id, data) in enumerate(CAN_FRAMES):
        lines.append(f"(1700000000.{number:06d}) can0 {can_id:03X}#{data}")
        spaced = " ".join(data[i : i + 2] for i in range(0, len(data), 2))
        lines.append(f"  can0  {can_id:03X}   [{len(data) // 2}]  {spaced}")
    return "\n".join(lines).encode()


def seeds(target: str) -> list[bytes]:
    """Seed inputs for one target."""
    frames = rs485_frames()
    if target in {"rs485_frame", "rs485_frame_checked", "rs485_request"}:
        return frames
    if target in {"rs485_splitter", "rs485_capture"}:
        return [b"\r\n".join(frames), b"\xff\xff" + b"".join(frames), *frames[:8]]
    if target == "can_frame":
        return [can_records()]
    if target == "can_capture":
        return [candump_text()]
    if target in {"console_stream", "console_capture", "console_text"}:
        return console_captures()
    if target == "console_command":
        return [
            b"pwr",
            b"pwr 3",
            b"bat 1",
            b"info 2",
            b"stat",
            b"soh 1",
            b"time",
            b"pwrsys",
            b"log",
            b"data event",
            b"getpwr",
            b"ci",
            b"help",
            b"login debug",
            b"shut",
        ]
    raise KeyError(target)
