"""Control port, command line and clean shutdown."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
import re
import signal
import sys

import pytest

from custom_components.pylontech.core.model import Protection
from simulator import BatterySimulator, FaultInjector
from simulator.pytest_plugin import SimulatorFactory

ROOT = Path(__file__).resolve().parents[2]


async def test_control_port_injects_and_reports(battery_simulator: BatterySimulator) -> None:
    """Line commands inject/clear faults, drop modules, step time and report status."""
    sim = battery_simulator
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ports.control)

    async def say(line: str) -> str:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 2.0)).decode().strip()

    try:
        assert (await say("inject protection charge_over_current module=2")).startswith("ok")
        assert Protection.CHARGE_OVER_CURRENT in sim.faults.protections[2]
        assert (await say("drop module=3")).startswith("ok")
        assert not sim.bank.is_present(3)
        assert (await say("inject stall link=rs485 seconds=3 count=1")).startswith("ok")
        status = json.loads((await say("status"))[3:])
        assert status["dropped"] == [3]
        assert status["protections"] == {"2": ["charge_over_current"]}
        assert status["links"]["rs485"]["stall"] == {"remaining": 1, "seconds": 3.0}
        before = sim.bank.elapsed
        assert (await say("step seconds=60")).startswith("ok")
        assert sim.bank.elapsed == pytest.approx(before + 60)
        snapshot = json.loads((await say("snapshot"))[3:])
        assert snapshot["bank"]["module_count"] == 3
        assert (await say("inject protection no_such_flag")).startswith("error:")
        assert (await say("frobnicate")).startswith("error:")
        assert (await say("clear all")).startswith("ok")
        assert sim.bank.is_present(3)
        assert not sim.faults.protections.get(2)
        assert (await say("quit")) == "ok bye"
    finally:
        writer.close()
        await writer.wait_closed()


def test_fault_text_commands_cover_every_kind() -> None:
    """Every documented control line parses (without a bank for low_soc it errors cleanly)."""
    faults = FaultInjector()
    for line in (
        "inject alarm cell_imbalance module=1",
        "inject bms_temperature_zero module=2",
        "inject imbalance module=2 millivolts=180 cell=4",
        "inject full_charge_request",
        "inject checksum link=rs485 count=2",
        "inject garbage link=console",
        "inject truncate link=can count=1",
        "inject drop link=rs485",
        "inject wrong_baud",
        "inject silent",
        "clear imbalance module=2",
        "clear links",
        "restore module=1",
        "help",
    ):
        assert faults.execute(line).startswith("ok"), line
    assert faults.execute("inject low_soc percent=3").startswith("error:")
    assert faults.execute("inject checksum link=modbus").startswith("error:")


async def test_stop_leaves_nothing_behind(battery_simulator_factory: SimulatorFactory) -> None:
    """After stop: ports closed, clients disconnected, no simulator task left running."""
    sim = await battery_simulator_factory(modules=2, model="US2000C", tick=0.05, can_period=0.05)
    ports = sim.ports
    clients = [
        await asyncio.open_connection("127.0.0.1", p)
        for p in (ports.rs485, ports.console, ports.can)
    ]
    await asyncio.sleep(0.1)
    await sim.stop()
    await sim.stop()  # idempotent
    for reader, writer in clients:
        assert await asyncio.wait_for(reader.read(), 1.0) is not None
        writer.close()
        await writer.wait_closed()
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert not {"sim-clock", "sim-can-tx"} & names
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", ports.rs485)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_command_line_prints_ports_and_stops_on_ctrl_c(socket_enabled: None) -> None:
    """`python -m simulator` prints its ports, serves them, and exits 0 on SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "--modules", "2", "--model", "US2000C", "--seed", "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 20.0)).decode() for _ in range(5)
        ]
        ports = dict(
            re.findall(r"^(rs485|console|can)\s+socket://127\.0\.0\.1:(\d+)", "".join(lines), re.M)
        )
        assert set(ports) == {"rs485", "console", "can"}
        reader, writer = await asyncio.open_connection("127.0.0.1", int(ports["console"]))
        writer.write(b"\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b">"), 5.0)).endswith(b"pylon>")
        writer.close()
        await writer.wait_closed()
        process.send_signal(signal.SIGINT)
        out, _err = await asyncio.wait_for(process.communicate(), 10.0)
        assert process.returncode == 0
        assert b"stopped" in out
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
