"""Console text the simulated battery prints, column for column like the public captures.

Widths follow the captures of docs/protocol-notes.md §4.3: ``pwr`` layout B rows are ``%-6s``
then ``%-7s`` x7, ``%-9s`` state/coulomb columns, a 21-wide two-token Time, and the quirky
MosTempr tail (a row with a value prints B.T.St 8 wide, a row with ``-`` prints it 9 wide).
Absent rows keep layout-A width.
Raw line endings: payload rows end ``\\r\\r\\n``; the trailer is
``\\r\\n\\rCommand completed successfully\\r\\n\\r$$\\r\\n\\r<prompt>``
(docs/protocol-notes.md §3.3, CON-18).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from custom_components.pylontech.core.model import Alarm, LimitState, Module, Protection

from .bank import SimulatedBank

ROW_END = "\r\r\n"
TRAILER_SEPARATOR = "\r\n\r"
SUCCESS = "Command completed successfully"
PAGER_PROMPT = "Press [Enter] to be continued,other key to exit" + " " * 50
LOG_ENTRIES_PER_PAGE = 3

PWR_HEADER_A = (
    "Power Volt   Curr   Tempr  Tlow   Thigh  Vlow   Vhigh  Base.St  Volt.St  Curr.St  "
    "Temp.St  Coulomb  Time                 B.V.St   B.T.St   "
)
PWR_HEADER_B = PWR_HEADER_A + "MosTempr M.T.St  "
PWR_HEADER_C = (
    "Power Volt   Curr   Tempr  Tlow   Tlow.Id  Thigh  Thigh.Id Vlow   Vlow.Id  Vhigh  "
    "Vhigh.Id Base.St  Volt.St  Curr.St  Temp.St  Coulomb  Time                 B.V.St   "
    "B.T.St   MosTempr M.T.St   SysAlarm.St "
)
BAT_HEADER = (
    "Battery  Volt     Curr     Tempr    Base State   Volt. State  Curr. State  Temp. State  "
    "SOC          Coulomb      BAL         "
)
SOH_HEADER = "Battery    Voltage    SOHCount   SOHStatus "
PROTECT_ENA = (
    "BOV BHV BLV BUV POV PHV PLV PUV CBOT CBHT CBLT CBUT DBOT DBHT DBLT DBUT POT PHT COC COC2 "
    "COCA DOCA DOC DOC2 SC LCOUL "
)

# `Bat Events` / `Power Events` bit names. Only 0x2 = BHV and 0x2000 = COULFULL are seen in
# captures; the other positions follow the order of the `Protect ENA` list (simulator choice).
BAT_EVENT_BITS: tuple[str, ...] = (
    "BOV", "BHV", "BLV", "BUV", "CBOT", "CBHT", "CBLT", "CBUT",
    "DBOT", "DBHT", "DBLT", "DBUT",
)  # fmt: skip
POWER_EVENT_BITS: tuple[str, ...] = (
    "POV", "PHV", "PLV", "PUV", "POT", "PHT", "COC", "COC2",
    "DOC", "DOC2", "SC", "LCOUL", "PLT", "COULFULL",
)  # fmt: skip
_EVENT_NAMES: dict[Protection | Alarm, str] = {
    Protection.OVER_VOLTAGE: "BOV",
    Protection.CELL_OVER_VOLTAGE: "BOV",
    Protection.UNDER_VOLTAGE: "BUV",
    Protection.CELL_UNDER_VOLTAGE: "BUV",
    Protection.MODULE_OVER_VOLTAGE: "POV",
    Protection.MODULE_UNDER_VOLTAGE: "PUV",
    Protection.CHARGE_OVER_TEMPERATURE: "CBOT",
    Protection.CHARGE_UNDER_TEMPERATURE: "CBUT",
    Protection.DISCHARGE_OVER_TEMPERATURE: "DBOT",
    Protection.DISCHARGE_UNDER_TEMPERATURE: "DBUT",
    Protection.OVER_TEMPERATURE: "POT",
    Protection.MOSFET_OVER_TEMPERATURE: "POT",
    Protection.CHARGE_OVER_CURRENT: "COC",
    Protection.DISCHARGE_OVER_CURRENT: "DOC",
    Protection.SHORT_CIRCUIT: "SC",
    Alarm.HIGH_VOLTAGE: "BHV",
    Alarm.CELL_HIGH_VOLTAGE: "BHV",
    Alarm.LOW_VOLTAGE: "BLV",
    Alarm.CELL_LOW_VOLTAGE: "BLV",
    Alarm.MODULE_HIGH_VOLTAGE: "PHV",
    Alarm.MODULE_LOW_VOLTAGE: "PLV",
    Alarm.CHARGE_HIGH_TEMPERATURE: "CBHT",
    Alarm.CHARGE_LOW_TEMPERATURE: "CBLT",
    Alarm.DISCHARGE_HIGH_TEMPERATURE: "DBHT",
    Alarm.DISCHARGE_LOW_TEMPERATURE: "DBLT",
    Alarm.HIGH_TEMPERATURE: "PHT",
    Alarm.LOW_TEMPERATURE: "PLT",
}
# System Fault word: bit 0 system error, bit 1 sensor failure, bit 2 reversed polarity
# (simulator choice; only a bare `0x8` is seen in captures).
_SYSTEM_FAULT_BITS: tuple[Protection, ...] = (
    Protection.SYSTEM_ERROR,
    Protection.SENSOR_FAILURE,
    Protection.REVERSE_POLARITY,
)

_STATE_WORDS = {"charge": "Charge", "discharge": "Dischg", "idle": "Idle", "error": "SysError"}
_LIMIT_WORDS = {
    LimitState.NORMAL: "Normal",
    LimitState.LOW: "Low",
    LimitState.HIGH: "High",
    LimitState.ERROR: "Error",
}


# -- framing ---------------------------------------------------------------------------------


def frame_response(echo: str, payload: Sequence[str], *, prompt: str, ok: bool = True) -> bytes:
    """A whole answer: echo, ``@``, payload rows, trailer and prompt, with raw line endings."""
    parts = [echo, "\n\r@", ROW_END]
    if payload:
        parts.append(ROW_END.join(payload))
        parts.append(TRAILER_SEPARATOR)
    if ok:
        parts.append(SUCCESS + TRAILER_SEPARATOR)
    parts.append("$$" + TRAILER_SEPARATOR + prompt)
    return "".join(parts).encode("ascii", "replace")


def frame_unknown(echo: str, command: str, *, prompt: str) -> bytes:
    """``Unknown command '...' - try 'help'`` exactly as CON-18."""
    return frame_response(
        echo, [f"Unknown command '{command}' - try 'help'"], prompt=prompt, ok=False
    )


# -- value formatting ------------------------------------------------------------------------


def _mv(volts: float | None) -> str:
    return "-" if volts is None else str(round(volts * 1000))


def _ma(amps: float | None) -> str:
    return "-" if amps is None else str(round(amps * 1000))


def _mc(celsius: float | None) -> str:
    return "-" if celsius is None else str(round(celsius * 1000))


def _limit(state: LimitState | None) -> str:
    return _LIMIT_WORDS.get(state, "Normal") if state is not None else "Normal"


def _worst(states: Sequence[LimitState]) -> LimitState:
    for wanted in (LimitState.ERROR, LimitState.HIGH, LimitState.LOW):
        if wanted in states:
            return wanted
    return LimitState.NORMAL


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def state_word(module: Module) -> str:
    """Console ``Base.St`` word of a module."""
    return _STATE_WORDS.get(module.state or "idle", (module.state or "Idle").capitalize())


def soc_percent(module: Module) -> int:
    """The whole-percent SOC the console prints."""
    return round(module.soc or 0.0)


def mosfet_state(module: Module) -> LimitState:
    """``M.T.St`` of a module."""
    if Protection.MOSFET_OVER_TEMPERATURE in module.protections:
        return LimitState.HIGH
    if Alarm.MOSFET_HIGH_TEMPERATURE in module.alarms:
        return LimitState.HIGH
    return LimitState.NORMAL


def cell_voltage_state(module: Module) -> LimitState:
    """``B.V.St``: the worst cell state, or the cell alarms."""
    worst = _worst(module.cell_voltage_states)
    if worst is LimitState.NORMAL:
        if module.alarms & {Alarm.CELL_HIGH_VOLTAGE}:
            return LimitState.HIGH
        if module.alarms & {Alarm.CELL_LOW_VOLTAGE}:
            return LimitState.LOW
    return worst


def cell_temperature_state(module: Module) -> LimitState:
    """``B.T.St``: the worst cell-group sensor state."""
    return _worst(module.temperature_states[1:5])


# -- pwr ---------------------------------------------------------------------------------------


def pwr_row(module: Module, moment: datetime, *, layout: str = "B") -> str:
    """One present-module row of ``pwr``."""
    if layout == "C":
        return _pwr_row_c(module, moment)
    head = (
        f"{module.index:<6}{_mv(module.voltage):<7}{_ma(module.current):<7}"
        f"{_mc(module.temperature):<7}{_mc(module.temperature_min):<7}"
        f"{_mc(module.temperature_max):<7}{_mv(module.cell_voltage_min):<7}"
        f"{_mv(module.cell_voltage_max):<7}{state_word(module):<9}"
        f"{_limit(module.voltage_state):<9}{_limit(module.current_state):<9}"
        f"{_limit(module.temperature_state):<9}{f'{soc_percent(module)}%':<9}"
        f"{_time(moment):<21}{_limit(cell_voltage_state(module)):<9}"
    )
    bt_state = _limit(cell_temperature_state(module))
    if layout == "A":
        return head + f"{bt_state:<8}"
    if module.mosfet_temperature is None:
        return head + f"{bt_state:<9}{'-':<9}{'-':<8}"
    return (
        head + f"{bt_state:<8}{_mc(module.mosfet_temperature):<9}{_limit(mosfet_state(module)):<8}"
    )


def _pwr_row_c(module: Module, moment: datetime) -> str:
    cells = module.cell_voltages
    groups = module.temperatures[1:5]
    low_id = groups.index(min(groups)) if groups else 0
    high_id = groups.index(max(groups)) if groups else 0
    vlow_id = cells.index(min(cells)) if cells else 0
    vhigh_id = cells.index(max(cells)) if cells else 0
    alarm = "Normal" if not (module.protections or module.alarms) else "Alarm"
    mos = _mc(module.mosfet_temperature)
    return (
        f"{module.index:<6}{_mv(module.voltage):<7}{_ma(module.current):<7}"
        f"{_mc(module.temperature):<7}{_mc(module.temperature_min):<7}{low_id:<9}"
        f"{_mc(module.temperature_max):<7}{high_id:<9}{_mv(module.cell_voltage_min):<7}"
        f"{vlow_id:<9}{_mv(module.cell_voltage_max):<7}{vhigh_id:<9}{state_word(module):<9}"
        f"{_limit(module.voltage_state):<9}{_limit(module.current_state):<9}"
        f"{_limit(module.temperature_state):<9}{f'{soc_percent(module)}%':<9}"
        f"{_time(moment):<21}{_limit(cell_voltage_state(module)):<9}"
        f"{_limit(cell_temperature_state(module)):<9}{mos:<9}"
        f"{_limit(mosfet_state(module)):<9}{alarm:<12}"
    )


def absent_row(index: int) -> str:
    """An empty slot (layout-A width whatever the header)."""
    return (
        f"{index:<6}" + "-      " * 7 + "Absent   " + "-        " * 4 + f"{'-':<21}{'-':<9}{'-':<8}"
    )


def pwr_header(layout: str) -> str:
    """The ``pwr`` header line of a layout."""
    return {"A": PWR_HEADER_A, "B": PWR_HEADER_B, "C": PWR_HEADER_C}[layout]


def render_pwr(bank: SimulatedBank, *, layout: str | None = None) -> list[str]:
    """``pwr``: header and one row per slot up to 8 or 16 (or the module count)."""
    master = bank.master.spec
    layout = layout or master.console_layout
    slots = max(master.console_slots, len(bank.modules))
    lines = [pwr_header(layout)]
    for index in range(1, slots + 1):
        module = bank.module_snapshot(index)
        if module is None:
            lines.append(absent_row(index))
        else:
            lines.append(pwr_row(module, bank.module_time(index), layout=layout))
    return lines


# -- pwr N -------------------------------------------------------------------------------------


def _kv(key: str, value: object, unit: str = "", width: int = 12) -> str:
    return f" {key:<16}: {value!s:<{width}}{unit}"


def event_word(module: Module, bits: Sequence[str]) -> str:
    """``0x2        BHV``-style event field for the module's flags."""
    names = {_EVENT_NAMES[f] for f in (*module.protections, *module.alarms) if f in _EVENT_NAMES}
    if bits is POWER_EVENT_BITS and module.fully_charged:
        names.add("COULFULL")
    code = 0
    shown: list[str] = []
    for bit, name in enumerate(bits):
        if name in names:
            code |= 1 << bit
            shown.append(name)
    text = f"{f'0x{code:x}':<11}"
    return text + " ".join(shown) if shown else text


def system_fault_word(module: Module) -> str:
    """``System Fault`` field."""
    code = 0
    for bit, flag in enumerate(_SYSTEM_FAULT_BITS):
        if flag in module.protections:
            code |= 1 << bit
    return f"{f'0x{code:x}':<11}"


def render_pwr_detail(bank: SimulatedBank, index: int) -> list[str] | None:
    """``pwr N`` key/value block; None when the slot is empty."""
    module = bank.module_snapshot(index)
    spec = bank.spec(index)
    if module is None or spec is None:
        return None
    separator = " " + "-" * 28
    lines = [
        separator,
        f" Power  {index}",
        _kv("Voltage", _mv(module.voltage), "mV"),
        _kv("Current", _ma(module.current), "mA"),
        _kv("Temperature", _mc(module.temperature), "mC"),
        _kv("Coulomb", soc_percent(module), "%"),
        _kv("Total Coulomb", round((module.full_capacity or 0) * 1000), "mAH"),
        _kv("Max Voltage", round(spec.module_high_voltage * 1000), "mV"),
        _kv("Charge Times", bank.counters(index).get("Charge Times", 0)),
        _kv("Basic Status", state_word(module), width=8),
    ]
    seconds = int(bank.elapsed) % 7200
    if module.state == "charge":
        lines.append(_kv("Charge Sec.", seconds, "s", width=8))
    elif module.state == "discharge":
        lines.append(_kv("Discharge Sec.", seconds, "s", width=8))
    coulomb_status = (
        "Full" if module.fully_charged else "Low" if soc_percent(module) < 10 else "Normal"
    )
    lines += [
        _kv("Volt Status", _limit(module.voltage_state), width=8),
        _kv("Current Status", _limit(module.current_state), width=8),
        _kv("Tmpr. Status", _limit(module.temperature_state), width=8),
        _kv("Coul. Status", coulomb_status, width=8),
        _kv("Soh. Status", "Normal", width=8),
        _kv("Heater Status", "OFF", width=8),
        f" {'Protect ENA':<16}: {PROTECT_ENA}",
        f" {'Bat Events':<16}: {event_word(module, BAT_EVENT_BITS)}",
        f" {'Power Events':<16}: {event_word(module, POWER_EVENT_BITS)}",
        f" {'System Fault':<16}: {system_fault_word(module)}",
        separator,
    ]
    return lines


# -- bat N / soh N ----------------------------------------------------------------------------


def bat_row(cell: int, module: Module, coulomb_mah: int) -> str:
    """One ``bat`` row (0-based cell index)."""
    volt = module.cell_voltages[cell]
    states = module.cell_voltage_states
    temp = module.cell_temperatures[cell] if cell < len(module.cell_temperatures) else None
    balancing = module.cells_balancing[cell] if cell < len(module.cells_balancing) else False
    return (
        f"{cell:<9}{_mv(volt):<9}{_ma(module.current):<9}{_mc(temp):<9}"
        f"{state_word(module):<13}{_limit(states[cell] if cell < len(states) else None):<13}"
        f"{_limit(module.current_state):<13}{_limit(module.temperature_state):<13}"
        f"{f'{soc_percent(module)}%':<12}{f'{coulomb_mah} mAH':<15}{'Y' if balancing else 'N'}"
    )


def render_bat(bank: SimulatedBank, index: int) -> list[str] | None:
    """``bat N``: one row per cell; None when the slot is empty."""
    module = bank.module_snapshot(index)
    if module is None:
        return None
    coulomb = round((module.remaining_capacity or 0.0) * 1000)
    return [BAT_HEADER] + [bat_row(i, module, coulomb) for i in range(len(module.cell_voltages))]


def render_soh(bank: SimulatedBank, index: int) -> list[str] | None:
    """``soh N``."""
    module = bank.module_snapshot(index)
    if module is None:
        return None
    lines = [f"Power   {index}", SOH_HEADER]
    for cell, volt in enumerate(module.cell_voltages):
        lines.append(f"{cell:<11}{_mv(volt):<11}{0:<11}{'Normal':<10}")
    return lines


# -- info / stat / time / pwrsys / log -------------------------------------------------------------


def render_info(bank: SimulatedBank, index: int) -> list[str] | None:
    """``info N``."""
    spec = bank.spec(index)
    if spec is None or not bank.is_present(index):
        return None

    def kv(key: str, value: object) -> str:
        return f"{key:<20}: {value}"

    major, minor = spec.soft_version
    lines = [
        kv("Device address", index),
        kv("Manufacturer", "Pylon"),
        kv("Device name", spec.device_name),
        kv("Board version", spec.board_version),
    ]
    if spec.board:
        lines.append(kv("Board", spec.board))
    lines += [
        kv("Main Soft version", spec.main_soft_version),
        kv("Soft  version", f"V{major}.{minor}"),
        kv("Boot  version", spec.boot_version),
        kv("Comm version", "V2.0"),
        kv("Release Date", spec.release_date),
        kv("Barcode", bank.serial(index)),
        "",
        kv("Specification", spec.specification),
        kv("Cell Number", spec.cells),
        kv("Max Dischg Curr", f"{-round(spec.max_discharge_current * 1000)}mA"),
        kv("Max Charge Curr", f"{round(spec.max_charge_current * 1000)}mA"),
        kv("EPONPort rate", 1200),
        kv("Console Port rate", 115200),
    ]
    return lines


def render_stat(bank: SimulatedBank, index: int) -> list[str] | None:
    """``stat N``: counters in the capture's order (SOH line left out on US2000B, as US2KBPL)."""
    module = bank.module_snapshot(index)
    spec = bank.spec(index)
    if module is None or spec is None:
        return None
    lines = [f"{'Device address':<16} {index:>9}"]
    lines += [f"{label:<16}:{value:>9}" for label, value in bank.stat_counters(index)]
    return lines


def render_time(bank: SimulatedBank) -> list[str]:
    """``time`` (``Ds3231 ...`` on US5000, ``RTC ...`` + ``Test result:pass`` elsewhere)."""
    spec = bank.master.spec
    line = f"{spec.clock_chip} {_time(bank.now)}"
    return [line] if spec.clock_chip == "Ds3231" else [line, "Test result:pass"]


def render_pwrsys(bank: SimulatedBank) -> list[str]:
    """``pwrsys``: stack summary with per-module and system recommendations."""
    snapshot = bank.snapshot()
    modules = snapshot.present_modules()
    current = snapshot.current or 0.0
    status = "charging" if current > 0 else "discharging" if current < 0 else "idle"
    per_module = bank.module_limits(1) or bank.system_limits()
    system = bank.system_limits()
    cells = [v for m in modules for v in m.cell_voltages]
    temps = [t for m in modules for t in m.temperatures[1:5]]
    avg_cell = sum(cells) / len(cells) if cells else None
    avg_temp = sum(temps) / len(temps) if temps else None

    def kv(key: str, value: object, unit: str) -> str:
        return f" {key:<21} : {value!s:<11} {unit}"

    def sys_kv(key: str, value: object, unit: str) -> str:
        return f" {key}: {value!s:<8} {unit}"

    return [
        "Power System Information",
        "---------------------------------",
        f" System is {status}",
        f" {'Total Num':<21} : {len(bank.modules)}",
        f" {'Present Num':<21} : {len(modules)}",
        f" {'Sleep Num':<21} : 0",
        kv("System Volt", _mv(snapshot.voltage), "mV"),
        kv("System Curr", _ma(snapshot.current), "mA"),
        kv("System RC", round((snapshot.remaining_capacity or 0) * 1000), "mAH"),
        kv("System FCC", round((snapshot.full_capacity or 0) * 1000), "mAH"),
        kv("System SOC", round(snapshot.soc or 0), "%"),
        kv("System SOH", round(snapshot.soh or 0), "%"),
        kv("Highest voltage", _mv(snapshot.cell_voltage_max), "mV"),
        kv("Average voltage", _mv(avg_cell), "mV"),
        kv("Lowest voltage", _mv(snapshot.cell_voltage_min), "mV"),
        kv("Highest temperature", _mc(max(temps) if temps else None), "mC"),
        kv("Average temperature", _mc(round(avg_temp, 1) if avg_temp is not None else None), "mC"),
        kv("Lowest temperature", _mc(min(temps) if temps else None), "mC"),
        kv("Recommend chg voltage", _mv(per_module.charge_voltage), "mV"),
        kv("Recommend dsg voltage", _mv(per_module.discharge_voltage), "mV"),
        kv("Recommend chg current", _ma(per_module.charge_current), "mA"),
        kv("Recommend dsg current", _ma(-per_module.discharge_current), "mA"),
        sys_kv("system Recommend chg voltage", _mv(system.charge_voltage), "mV"),
        sys_kv("system Recommend dsg voltage", _mv(system.discharge_voltage), "mV"),
        sys_kv("system Recommend chg current", _ma(system.charge_current), "mA"),
        sys_kv("system Recommend dsg current", _ma(-system.discharge_current), "mA"),
        "---------------------------------",
    ]


def render_log_pages(bank: SimulatedBank) -> list[list[str]]:
    """``log`` entries, newest first, split into pager pages of three."""
    entries = list(bank.log)
    pages: list[list[str]] = []
    for start in range(0, len(entries), LOG_ENTRIES_PER_PAGE):
        page: list[str] = []
        for entry in entries[start : start + LOG_ENTRIES_PER_PAGE]:
            page += [
                f" Index   : {entry.index:<6}",
                f" Time    : {entry.time.strftime('%y-%m-%d %H:%M:%S')}",
                f" ModID   : {entry.module_id}",
                f" Code    : {entry.code}",
                f" Info    : {entry.info} ",
            ]
        pages.append(page)
    return pages or [[]]


def render_getpwr(bank: SimulatedBank) -> list[str] | None:
    """``getpwr``: the ``#``-separated dump of the master (Hrab's B67.5.0 capture layout)."""
    module = bank.module_snapshot(1)
    if module is None:
        return None
    head = (
        f"{_mv(module.voltage)}#{_ma(module.current)}#{_mc(module.temperature)}#"
        f"{round((module.remaining_capacity or 0.0) * 1000)}#{state_word(module)}#"
        f"{_limit(module.voltage_state)}#{_limit(module.current_state)}#"
        f"{_limit(module.temperature_state)}#"
    )
    lines = [head]
    states = module.cell_voltage_states
    for cell, volt in enumerate(module.cell_voltages):
        temp = module.cell_temperatures[cell] if cell < len(module.cell_temperatures) else None
        state = _limit(states[cell] if cell < len(states) else None)
        lines.append(f"{_mv(volt)}#{_mc(temp)}#{state}#{_limit(cell_temperature_state(module))}#")
    return [*lines, "0#", f"{module.cycles or 0}#"]


def render_ci(bank: SimulatedBank, counters: Sequence[tuple[str, int]]) -> list[str]:
    """``ci``: port statistics (``Label : value``) plus ``Exist Pack Num``."""
    lines = [f"{label:<16}: {value}" for label, value in counters]
    lines.append(f"{'Exist Pack Num':<16}: {len(bank.present_indexes())}")
    return lines


HELP_TOPICS: tuple[tuple[str, str], ...] = (
    ("bat", "[n]                Show battery cell info"),
    ("ci", "                   Show communication info"),
    ("getpwr", "               Show power data compactly"),
    ("help", "                 Show this list"),
    ("info", "[n]               Show device info"),
    ("log", "                  Show event log"),
    ("pwr", "[n]                Show power info"),
    ("pwrsys", "               Show system info"),
    ("soh", "[n]                Show cell SOH"),
    ("stat", "[n]               Show statistics"),
    ("time", "                 Show time"),
)


def render_help() -> list[str]:
    """``help``: the read-only commands this simulated firmware knows."""
    return [f"{name:<8}{text}" for name, text in HELP_TOPICS]
