"""scripts/decode and the capture replay API on real captures of each link."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from custom_components.pylontech.core.capture import decode_capture

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "tests" / "core" / "captures" / "console"

# docs/protocol-notes.md §4.1: RS-42-G, RS-44-A, RS-93-A, RS-92-B (US2KBPL), requests and
# responses mixed.
RS485_CAPTURE = """\
~20024642E00202FD33
~20024600C06E00020F0D1F0D200D200D200D200D200D210D200D200D210D220D200D220D220D21050BCD0BAF0BAF0BAF0BAF0015C4E88AAC02C350004FE594
~20024644C0040201FCD0
~20024600C04000020F000000000000000000000000000000050000000000000000000E800000F161
~20024693E00202FD2D
~20024600C0220248505443523033313731313132353930F6D2
~20024692C0040201FCCD
~20024600B01402D002B79800FAFF06C0F92D
"""

# docs/protocol-notes.md §4.2 CAN-A1..A6 (real US5000 stack), in both candump formats.
CAN_CAPTURE = """\
(1700000000.000000) can0 351#1402C012C012C201
(1700000000.010000) can0 355#58005E00
(1700000000.020000) can0 356#7A13F2FE6B01
can0  359   [7]  00 00 00 00 06 50 4E
can0  35C   [2]  C0 00
(1700000000.050000) can0 35E#50594C4F4E202020
"""


def run_decode(link: str, stdin: str) -> dict:
    """Run the real command (standalone, without Home Assistant) and parse its JSON."""
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "decode"), "--link", link, "-"],
        input=stdin.encode("latin-1"),
        capture_output=True,
        check=True,
        env=env,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_rs485_capture_decodes_bank_and_module() -> None:
    data = run_decode("rs485", RS485_CAPTURE)
    bank, (module,) = data["bank"], data["modules"]
    assert module["index"] == 1
    assert module["voltage"] == pytest.approx(50.408)
    assert module["current"] == pytest.approx(2.1)
    assert module["temperature"] == pytest.approx(29.0)
    assert module["temperatures"] == pytest.approx([29.0, 26.0, 26.0, 26.0, 26.0])
    assert module["cell_voltages"][0] == pytest.approx(3.359)
    assert module["cell_voltage_max"] == pytest.approx(3.362)
    assert module["remaining_capacity"] == pytest.approx(35.5)
    assert module["full_capacity"] == pytest.approx(50.0)
    assert module["soc"] == pytest.approx(71.0)
    assert module["cycles"] == 79
    assert module["state"] == "charge"
    assert module["serial_number"] == "HPTCR03171112590"
    assert bank["charge_voltage_limit"] == pytest.approx(53.25)
    assert bank["discharge_voltage_limit"] == pytest.approx(47.0)
    assert bank["charge_current_limit"] == pytest.approx(25.0)
    assert bank["discharge_current_limit"] == pytest.approx(25.0)
    assert bank["charge_enabled"] is True
    assert bank["discharge_enabled"] is True
    assert bank["force_charge_1"] is False
    assert data["errors"] == []
    assert data["faults"] == []


def test_rs485_bad_frames_become_errors_and_decoding_goes_on() -> None:
    broken = RS485_CAPTURE.replace("F92D", "F92E").replace("~20024693E00202FD2D\n", "")
    data = run_decode("rs485", broken + "\x00\xffnoise\n")
    assert any("CHKSUM" in error for error in data["errors"])
    assert len(data["errors"]) == 2
    # The lines before and after the damage still count.
    assert data["modules"][0]["voltage"] == pytest.approx(50.408)
    assert data["bank"]["charge_voltage_limit"] is None


def test_can_capture_decodes_both_candump_formats() -> None:
    bank = run_decode("can", CAN_CAPTURE)["bank"]
    assert bank["charge_voltage_limit"] == pytest.approx(53.2)
    assert bank["charge_current_limit"] == pytest.approx(480.0)
    assert bank["discharge_current_limit"] == pytest.approx(480.0)
    assert bank["discharge_voltage_limit"] == pytest.approx(45.0)
    assert bank["soc"] == pytest.approx(88.0)
    assert bank["soh"] == pytest.approx(94.0)
    assert bank["voltage"] == pytest.approx(49.86)
    assert bank["current"] == pytest.approx(-27.0)
    assert bank["temperature"] == pytest.approx(36.3)
    assert bank["module_count"] == 6
    assert bank["charge_enabled"] is True
    assert bank["manufacturer"] == "PYLON"
    assert bank["protections"] == []
    assert bank["alarms"] == []


def test_can_capture_protection_bits_are_named() -> None:
    capture = CAN_CAPTURE + "can0 359#82010000015 04E\n(1.0) can0 359#8201000001504E\n"
    data = run_decode("can", capture)
    assert data["bank"]["protections"] == [
        "charge_over_current",
        "discharge_over_current",
        "over_voltage",
    ]
    assert len(data["errors"]) == 1
    assert {fault["key"] for fault in data["faults"]} >= {"discharge_over_current"}


def test_console_transcript_of_several_commands() -> None:
    transcript = "".join(
        (CONSOLE / name).read_text(encoding="latin-1")
        for name in ("con01_pwr_us5000_stack.txt", "con07_bat1_us5000.txt")
    )
    data = run_decode("console", transcript)
    modules = {m["index"]: m for m in data["modules"]}
    assert modules[1]["voltage"] == pytest.approx(49.905)
    assert modules[1]["current"] == pytest.approx(11.867)
    assert modules[1]["temperature"] == pytest.approx(27.9)
    assert modules[1]["soc"] == pytest.approx(39.0)
    assert modules[4]["cell_voltage_max"] == pytest.approx(3.329)
    # `bat 1` adds the master's cells to module 1 without disturbing the `pwr` values.
    assert len(modules[1]["cell_voltages"]) == 15
    assert modules[5]["state"] == "absent"
    assert data["bank"]["module_count"] == 4
    assert data["errors"] == []


def test_console_refused_command_is_an_error_entry() -> None:
    text = (CONSOLE / "con18_unknown_command.txt").read_text(encoding="latin-1")
    data = run_decode("console", text)
    assert len(data["errors"]) == 1
    assert "Unknown command" in data["errors"][0]


def test_api_and_cli_agree() -> None:
    result = decode_capture("can", CAN_CAPTURE)
    assert result.as_dict() == run_decode("can", CAN_CAPTURE)


def test_cli_reports_unreadable_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "decode"), "--link", "can", str(tmp_path / "x")],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"cannot read" in done.stderr
