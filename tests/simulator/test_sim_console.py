"""Console server over real sockets: framing, parsing back to the truth, pager, prompts,
wake-up, recorded commands and injected faults."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.pylontech.core.model import Alarm, Protection
from custom_components.pylontech.core.protocol import console
from simulator import BatterySimulator
from simulator.pytest_plugin import SimulatorFactory


class Terminal:
    """A raw TCP client with the console codec's framer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = console.ConsoleFramer()
        self.raw = bytearray()

    @classmethod
    async def open(cls, sim: BatterySimulator) -> Terminal:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ports.console)
        return cls(reader, writer)

    async def events(
        self, data: bytes, want: console.ConsoleEventKind, timeout: float = 2.0
    ) -> list[console.ConsoleEvent]:
        """Send ``data``; collect events until one of kind ``want`` arrives."""
        self.writer.write(data)
        await self.writer.drain()
        seen: list[console.ConsoleEvent] = []
        async with asyncio.timeout(timeout):
            while not any(e.kind is want for e in seen):
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                self.raw += chunk
                seen += self.framer.feed(chunk)
        return seen

    async def run(self, command: str, *, raw: bool = False) -> console.ConsoleResponse:
        """One command (``raw``: bypass the allow-list, for words the battery does not know)."""
        data = command.encode() + b"\r" if raw else console.encode_command(command)
        events = await self.events(data, console.ConsoleEventKind.RESPONSE)
        responses = [e.response for e in events if e.response is not None]
        assert len(responses) == 1
        return responses[0]

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_full_session_parses_to_the_truth(battery_simulator: BatterySimulator) -> None:
    """pwr, bat, info, stat, pwrsys parsed with the codec equal the simulated truth."""
    sim = battery_simulator
    truth = sim.snapshot()
    term = await Terminal.open(sim)
    try:
        prompt = await term.events(b"\r\n", console.ConsoleEventKind.PROMPT)
        assert [e.prompt for e in prompt if e.prompt] == ["pylon>"]
        pwr = await term.run("pwr")
        assert pwr.ok
        assert pwr.prompt == "pylon>"
        assert pwr.command == "pwr"
        modules = console.modules_from_pwr(console.parse_pwr(pwr))
        assert len(modules) == 16
        present = [m for m in modules if m.state != "absent"]
        assert len(present) == 4
        for read, module in zip(present, truth.modules, strict=True):
            assert read.voltage == pytest.approx(module.voltage)
            assert read.current == module.current
            assert read.temperature == module.temperature
            assert read.temperature_min == module.temperature_min
            assert read.cell_voltage_max == module.cell_voltage_max
            assert read.mosfet_temperature == module.mosfet_temperature
            assert read.soc == round(module.soc or 0)
            assert read.state == module.state
        bat = console.parse_bat(await term.run("bat 2"))
        two = truth.module(2)
        assert two is not None
        assert tuple(c.voltage for c in bat) == pytest.approx(two.cell_voltages)
        assert tuple(c.temperature for c in bat) == pytest.approx(two.cell_temperatures)
        info = console.parse_info(await term.run("info 3"))
        three = truth.module(3)
        assert three is not None
        assert info.barcode == three.serial_number
        assert info.device_name == "US3000C"
        stat = console.parse_stat(await term.run("stat 1"))
        assert stat.cycles == truth.modules[0].cycles
        assert stat.counters == truth.modules[0].counters
        system = console.bank_from_pwrsys(console.parse_pwrsys(await term.run("pwrsys")))
        assert system.charge_current_limit == truth.charge_current_limit
        assert system.discharge_current_limit == truth.discharge_current_limit
        assert system.charge_voltage_limit == truth.charge_voltage_limit
        assert system.voltage == truth.voltage
        assert system.current == truth.current
        assert system.soc == truth.soc
        compact = console.parse_getpwr(await term.run("getpwr"))
        master = truth.modules[0]
        assert compact.voltage == pytest.approx(master.voltage)
        assert tuple(c.voltage for c in compact.cells) == pytest.approx(master.cell_voltages)
        assert compact.cycles == master.cycles
        ports = console.parse_ci(await term.run("ci"))
        assert ports.counter("Exist Pack Num") == 4
        assert (await term.run("help")).ok
        when = console.parse_time(await term.run("time"))
        assert when.time == sim.bank.now
        assert when.clock == "RTC"
    finally:
        await term.close()
    assert sim.console is not None
    assert sim.console.commands == [
        "pwr", "bat 2", "info 3", "stat 1", "pwrsys", "getpwr", "ci", "help", "time",
    ]  # fmt: skip
    # Raw line endings as in the captures.
    assert b"\r\r\n1     " in term.raw
    assert b"\r\n\rCommand completed successfully\r\n\r$$\r\n\rpylon>" in term.raw


async def test_unknown_command_and_pager(battery_simulator: BatterySimulator) -> None:
    """Unknown words get the documented reply; `log` pauses at the pager prompt."""
    term = await Terminal.open(battery_simulator)
    try:
        unknown = await term.run("totalcoul", raw=True)
        assert not unknown.ok
        assert unknown.unknown_command == "totalcoul"
        events = await term.events(b"log\r", console.ConsoleEventKind.PAGER)
        assert not any(e.response for e in events)
        events = await term.events(console.PAGER_CONTINUE, console.ConsoleEventKind.RESPONSE)
        response = next(e.response for e in events if e.response)
        assert response.ok
        assert response.paged
        assert response.command == "log"
        entries = console.parse_log(response)
        assert len(entries) == len(battery_simulator.bank.log)
        # Another key ends the listing early.
        await term.events(b"log\r", console.ConsoleEventKind.PAGER)
        events = await term.events(b"q", console.ConsoleEventKind.RESPONSE)
        early = next(e.response for e in events if e.response)
        assert len(console.parse_log(early)) == 3
    finally:
        await term.close()


@pytest.mark.parametrize(
    ("models", "prompt", "layout", "slots", "columns"),
    [
        (["US2000B"] * 2, "pylon>", None, 8, 16),
        (["US5000", "US2000C"], "pylon_debug>", None, 16, 18),
        (["US5000"] * 2, "pylon>", "C", 16, 23),
        (["US2000C"], "PYTES>", None, 16, 18),
    ],
)
async def test_layouts_and_prompts(
    battery_simulator_factory: SimulatorFactory,
    models: list[str],
    prompt: str,
    layout: str | None,
    slots: int,
    columns: int,
) -> None:
    """Each model's `pwr` layout and each prompt option."""
    sim = await battery_simulator_factory(modules=models, prompt=prompt, console_layout=layout)
    term = await Terminal.open(sim)
    try:
        response = await term.run("pwr")
    finally:
        await term.close()
    assert response.prompt == prompt
    table = console.parse_pwr(response)
    assert len(table.columns) == columns
    assert len(table.rows) == slots
    assert sum(not r.absent for r in table.rows) == len(models)


async def test_faults_visible_in_console(battery_simulator: BatterySimulator) -> None:
    """Protections in events/state columns, a dropped module is Absent, SysError shows."""
    sim = battery_simulator
    sim.faults.inject_protection(Protection.CELL_OVER_VOLTAGE, module=2)
    sim.faults.inject_alarm(Alarm.MODULE_HIGH_VOLTAGE, module=1)
    sim.faults.inject_protection(Protection.SYSTEM_ERROR, module=4)
    sim.faults.drop_module(3)
    term = await Terminal.open(sim)
    try:
        rows = {
            m.index: m for m in console.modules_from_pwr(console.parse_pwr(await term.run("pwr")))
        }
        detail = console.parse_pwr_detail(await term.run("pwr 2"))
    finally:
        await term.close()
    assert rows[3].state == "absent"
    assert Alarm.MODULE_HIGH_VOLTAGE in rows[1].alarms
    assert Alarm.CELL_HIGH_VOLTAGE in rows[2].alarms  # B.V.St High
    assert rows[4].state == "error"
    assert Protection.SYSTEM_ERROR in rows[4].protections
    protections, _alarms, _full, _unknown = console.event_flags(
        detail.bat_events, detail.power_events, detail.system_fault
    )
    assert Protection.CELL_OVER_VOLTAGE in protections


async def test_silent_console_needs_the_wake_up_frame(battery_simulator: BatterySimulator) -> None:
    """While silent nothing answers; after the wake-up frame the prompt appears."""
    sim = battery_simulator
    sim.faults.inject_link_fault("console", "silent")
    term = await Terminal.open(sim)
    try:
        term.writer.write(b"\r\n")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await term.reader.read(100)
        term.writer.write(console.WAKE_UP_FRAME)
        reply = await asyncio.wait_for(term.reader.readuntil(b"\r"), 1.0)
        assert reply.startswith(b"~2001460")
        events = await term.events(console.WAKE_UP_NEWLINE, console.ConsoleEventKind.PROMPT)
        assert any(e.prompt == "pylon>" for e in events)
        assert sim.console is not None
        assert sim.console.wake_ups == 1
        # Frame and newline in one write (a TCP gateway cannot change baud in between).
        sim.faults.inject_link_fault("console", "silent")
        events = await term.events(
            console.WAKE_UP_FRAME + console.WAKE_UP_NEWLINE, console.ConsoleEventKind.PROMPT
        )
        assert any(e.prompt == "pylon>" for e in events)
        assert sim.console.wake_ups == 2
    finally:
        await term.close()


async def test_transport_faults_on_console(battery_simulator: BatterySimulator) -> None:
    """Garbage before the echo is tolerated; truncation leaves no prompt; drop closes."""
    sim = battery_simulator
    term = await Terminal.open(sim)
    try:
        sim.faults.inject_link_fault("console", "garbage", count=1)
        assert (await term.run("time")).ok
        sim.faults.inject_link_fault("console", "truncate", count=1)
        term.writer.write(b"pwr\r")
        await asyncio.sleep(0.2)
        partial = await term.reader.read(65536)
        assert b"$$" not in partial
        assert b"pylon>" not in partial
        sim.faults.inject_link_fault("console", "stall", count=1, seconds=0.3)
        term.writer.write(b"time\r")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await term.reader.read(100)
        sim.faults.inject_link_fault("console", "wrong_baud")
        term.writer.write(b"pwr\r")
        noise = await asyncio.wait_for(term.reader.read(4096), 1.0)
        assert noise
        assert b"pylon>" not in noise
        assert b"\r" not in noise
        sim.faults.clear_link_fault("console", "wrong_baud")
        assert (await term.run("time")).ok
        sim.faults.inject_link_fault("console", "drop", count=1)
        term.writer.write(b"time\r")
        async with asyncio.timeout(2.0):
            while await term.reader.read(4096):
                pass
    finally:
        await term.close()
