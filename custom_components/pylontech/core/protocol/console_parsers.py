"""RS232 console: payload text to typed records.

Every parser is driven by the header or the labels the battery prints, never by
fixed offsets: columns are matched by name, units are read from the value
(``mV``, ``mA``, ``mC``, ``mAH``, ``%``) or, where none is printed, from the label
(docs/protocol-notes.md §3.4). Unknown columns and labels are kept as text in ``extra``;
``-`` is "not available" and becomes ``None``. Values are converted to SI (V, A,
°C, Ah, %). Parsers accept a ``ConsoleResponse``, a list of lines or raw text,
and raise only ``ProtocolError`` (when the expected header or block is missing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
import re

from ..bounds import MAX_CELLS_PER_MODULE, MAX_MODULES_PER_GROUP, check_count
from ..errors import ProtocolError
from .console_framing import PAGER_TEXT, SUCCESS_LINE, ConsoleResponse

#: Bounds for hostile input: lines read per payload, tokens per table row.
MAX_PARSE_LINES = 8192
MAX_ROW_TOKENS = 64
#: ``pwr`` slots are 1-based and list the master's group: no supported group has more
#: modules than ``MAX_MODULES_PER_GROUP`` (core/bounds.py), so a higher slot is an error.
MAX_CONSOLE_SLOT = MAX_MODULES_PER_GROUP

Source = ConsoleResponse | str | Sequence[str]
Extra = tuple[tuple[str, str], ...]

_INT = re.compile(r"[+-]?\d{1,12}")
# A value with an optional unit: "49905", "-3037", "39%", "44231 mAH", "-100000mA", "1764 s".
_MEASURE = re.compile(r"([+-]?\d{1,12}(?:\.\d{1,6})?)\s*([A-Za-z%]{0,4})")
_UNIT_WORDS = frozenset(
    {"mAH", "mAh", "AH", "Ah", "mAS", "AS", "mV", "mA", "mC", "mWH", "WH", "s", "%"}
)
_DATE = re.compile(r"\d{2,4}-\d{1,2}-\d{1,2}")
_CLOCK = re.compile(r"\d{1,2}:\d{2}:\d{2}")
_KEY_VALUE = re.compile(r"([A-Za-z][^:]{0,60}?)\s*:\s*(.*)")
_LABEL_SPACED = re.compile(r"([A-Za-z][A-Za-z0-9 .@_/()-]{0,60}?)\s{2,}(\S.*)")
_EVENT = re.compile(r"(0[xX][0-9A-Fa-f]{1,16})\s*(.*)")
_TIME_LINE = re.compile(r"(\S{1,32})\s+(\d{4}-\d{1,2}-\d{1,2})\s+(\d{1,2}:\d{2}:\d{2})")
_SPEC = re.compile(r"(\d{1,4}(?:\.\d{1,3})?)\s*V\s*/\s*(\d{1,5}(?:\.\d{1,3})?)\s*AH", re.IGNORECASE)
_DASH = "-"
_TOKEN = re.compile(r"\S+")
_ABSENT = re.compile(r"(?<!\S)Absent(?!\S)", re.IGNORECASE)
_DATETIME = re.compile(r"(\d{2}|\d{4})-(\d{1,2})-(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})")
_COULOMB_PART = re.compile(r"[+-]?\d{1,12}\s*(?:%|mAH|mAh|AH|Ah)?")

# Scale from a printed unit to SI (mV -> V, mA -> A, mC -> °C, mAH -> Ah).
_UNIT_SCALE = {
    "mv": 0.001,
    "ma": 0.001,
    "mc": 0.001,
    "mah": 0.001,
    "ah": 1.0,
    # Charge in ampere-seconds (Pytes V5 `pwr N`: "Total Coulomb : 360000000 mAS" = 100 Ah).
    "mas": 0.001 / 3600,
    "as": 1 / 3600,
    "v": 1.0,
    "a": 1.0,
    "c": 1.0,
    "%": 1.0,
    "s": 1.0,
    "": 1.0,
}


# --- small helpers ----------------------------------------------------------------


def _lines(source: Source) -> list[str]:
    """Payload lines from any accepted source, cleaned and bounded."""
    if isinstance(source, ConsoleResponse):
        raw: Iterable[str] = source.lines
    elif isinstance(source, str):
        raw = source.replace("\r", "\n").split("\n")
    else:
        raw = source
    lines: list[str] = []
    for line in raw:
        if not isinstance(line, str):
            raise ProtocolError("console payload must be text lines")
        text = line.replace("\r", "").strip()
        if not text or text in (SUCCESS_LINE, "$$", "@"):
            continue
        if PAGER_TEXT in text:
            text = text.replace(PAGER_TEXT, "").strip()
            if not text:
                continue
        lines.append(text)
        if len(lines) > MAX_PARSE_LINES:
            raise ProtocolError(f"console payload longer than {MAX_PARSE_LINES} lines")
    return lines


@lru_cache(maxsize=512)
def _norm(label: str) -> str:
    """Label lookup key: lower case, no spaces, dots or colons (``Base.St`` -> ``basest``)."""
    return "".join(ch for ch in label.lower() if ch.isalnum() or ch in "%@")


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if _INT.fullmatch(text) is None:
        match = _MEASURE.match(text)
        if match is None or "." in match.group(1):
            return None
        return int(match.group(1))
    return int(text)


def _measure(text: str | None, default_unit: str = "") -> float | None:
    """Convert a number to SI by its printed unit (or ``default_unit``)."""
    if text is None:
        return None
    match = _MEASURE.match(text.strip())
    if match is None:
        return None
    unit = match.group(2).lower() or default_unit
    scale = _UNIT_SCALE.get(unit)
    if scale is None:
        # A printed unit we cannot convert: no value rather than one off by a factor.
        if match.group(2):
            return None
        scale = 1.0
    value = float(match.group(1)) * scale
    return round(value, 6)


def _word(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return None if not text or text == _DASH else text


def _datetime(text: str | None) -> datetime | None:
    """``2023-09-16 11:50:32`` or ``23-09-16 11:43:09`` (log/data) as a naive datetime."""
    if not text:
        return None
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if year < 100:
        year += 2000
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


# --- tables ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    key: str
    start: int


def _header_columns(line: str) -> list[_Column]:
    """Column names of a table header; ``Base State``-style pairs become one name."""
    columns: list[_Column] = []
    for match in _TOKEN.finditer(line):
        token = match.group(0)
        if token in ("State", "Status") and columns and not columns[-1].name.endswith(token):
            prev = columns[-1]
            name = f"{prev.name} {token}"
            columns[-1] = _Column(name, _norm(name), prev.start)
            continue
        columns.append(_Column(token, _norm(token), match.start()))
        if len(columns) > MAX_ROW_TOKENS:
            break
    return columns


def _row_tokens(line: str) -> list[tuple[str, int]]:
    """Value tokens with their offsets; date+time and number+unit pairs joined."""
    raw = [(m.group(0), m.start()) for m in _TOKEN.finditer(line)][: MAX_ROW_TOKENS * 2]
    tokens: list[tuple[str, int]] = []
    i = 0
    while i < len(raw):
        text, start = raw[i]
        if i + 1 < len(raw):
            nxt = raw[i + 1][0]
            # Cheap membership/char tests first: most tokens pair with nothing.
            if (":" in nxt and _CLOCK.fullmatch(nxt) and _DATE.fullmatch(text)) or (
                nxt in _UNIT_WORDS and _INT.fullmatch(text)
            ):
                tokens.append((f"{text} {nxt}", start))
                i += 2
                continue
        tokens.append((text, start))
        i += 1
    return tokens


def _align(columns: list[_Column], tokens: list[tuple[str, int]]) -> dict[str, str]:
    """Map a row's tokens onto header columns.

    Equal counts (the normal case, ``-`` placeholders keep positions) and absent
    rows align by order. Otherwise a field was left empty or a value holds a
    space, so each token goes under the nearest column start, in order; with
    surplus tokens a value may span several tokens and they are joined.
    """
    if len(tokens) > len(columns):
        # `77%  38286 mAH` under one `Coulomb` header (Pytes/older `bat`).
        merged: list[tuple[str, int]] = []
        surplus = len(tokens) - len(columns)
        for text, start in tokens:
            if surplus and merged and merged[-1][0].endswith("%") and text.lower().endswith("mah"):
                merged[-1] = (f"{merged[-1][0]} {text}", merged[-1][1])
                surplus -= 1
                continue
            merged.append((text, start))
        tokens = merged
    values: dict[str, str] = {}
    if len(tokens) == len(columns) or any(t[0] == "Absent" for t in tokens):
        for column, (text, _start) in zip(columns, tokens, strict=False):
            values[column.name] = text
        for index, (text, _start) in enumerate(tokens[len(columns) :], start=len(columns)):
            values[f"column {index + 1}"] = text
        return values
    join = len(tokens) > len(columns)
    previous = -1
    for text, start in tokens:
        best: tuple[int, int] | None = None
        first = max(previous, 0) if join else previous + 1
        for index in range(first, len(columns)):
            distance = abs(columns[index].start - start)
            if best is None or distance < best[0]:
                best = (distance, index)
            elif columns[index].start > start:
                break
        if best is None:
            break
        index = best[1]
        name = columns[index].name
        values[name] = f"{values[name]} {text}" if index == previous else text
        previous = index
    return values


def _find_header(lines: list[str], first: str) -> int:
    for index, line in enumerate(lines):
        parts = line.split(None, 3)
        # A header has several names (`Power  1` in `pwr N` is not one).
        if len(parts) >= 3 and parts[0].lower() == first and _INT.fullmatch(parts[1]) is None:
            return index
    raise ProtocolError(f"console table header starting with {first!r} not found")


def _table(lines: list[str], first: str) -> tuple[list[_Column], list[tuple[int, str]]]:
    """Header columns and the data rows (lines starting with an integer) after it."""
    header = _find_header(lines, first)
    columns = _header_columns(lines[header])
    rows: list[tuple[int, str]] = []
    for line in lines[header + 1 :]:
        head = line.split(None, 1)[0]
        if _INT.fullmatch(head) is None:
            if rows:
                break  # the table ended (e.g. a `data event` record follows)
            continue
        rows.append((int(head), line))
    return columns, rows


def _pick(values: dict[str, str], keys: dict[str, str]) -> tuple[dict[str, str], Extra]:
    """Split aligned values into known fields (by normalised name) and extra."""
    known: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for name, text in values.items():
        field = keys.get(_norm(name))
        if field is None or field in known:
            extra.append((name, text))
        else:
            known[field] = text
    return known, tuple(extra)


# --- pwr (table) -------------------------------------------------------------------

_PWR_KEYS = {
    "power": "index",
    "volt": "voltage",
    "curr": "current",
    "tempr": "temperature",
    "tlow": "temperature_low",
    "tlowid": "temperature_low_id",
    "thigh": "temperature_high",
    "thighid": "temperature_high_id",
    "vlow": "cell_voltage_low",
    "vlowid": "cell_voltage_low_id",
    "vhigh": "cell_voltage_high",
    "vhighid": "cell_voltage_high_id",
    "basest": "state",
    "voltst": "voltage_state",
    "currst": "current_state",
    "tempst": "temperature_state",
    "coulomb": "soc",
    "time": "time",
    "bvst": "cell_voltage_state",
    "btst": "cell_temperature_state",
    "mostempr": "mosfet_temperature",
    "mtst": "mosfet_temperature_state",
    "sysalarmst": "system_alarm_state",
    "barcode": "barcode",
    "devtype": "device_type",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PwrRow:
    """One slot of the ``pwr`` table, in SI units; ``-`` fields are ``None``."""

    index: int
    absent: bool = False
    voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    temperature_low: float | None = None
    temperature_high: float | None = None
    cell_voltage_low: float | None = None
    cell_voltage_high: float | None = None
    temperature_low_id: int | None = None
    temperature_high_id: int | None = None
    cell_voltage_low_id: int | None = None
    cell_voltage_high_id: int | None = None
    state: str | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    soc: float | None = None
    time: datetime | None = None
    cell_voltage_state: str | None = None
    cell_temperature_state: str | None = None
    mosfet_temperature: float | None = None
    mosfet_temperature_state: str | None = None
    system_alarm_state: str | None = None
    barcode: str | None = None
    device_type: str | None = None
    extra: Extra = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PwrTable:
    """The ``pwr`` table: its header as printed and one row per slot."""

    columns: tuple[str, ...]
    rows: tuple[PwrRow, ...]
    #: Slot numbers of rows left out: outside 1..``MAX_CONSOLE_SLOT`` (a protocol error).
    skipped: tuple[int, ...] = ()

    def present(self) -> tuple[PwrRow, ...]:
        """Rows of modules that answered."""
        return tuple(row for row in self.rows if not row.absent)


def _pwr_row(index: int, known: dict[str, str], extra: Extra) -> PwrRow:
    state = _word(known.get("state"))
    absent = state is not None and state.lower() == "absent"
    return PwrRow(
        index=index,
        absent=absent,
        voltage=_measure(known.get("voltage"), "mv"),
        current=_measure(known.get("current"), "ma"),
        temperature=_measure(known.get("temperature"), "mc"),
        temperature_low=_measure(known.get("temperature_low"), "mc"),
        temperature_high=_measure(known.get("temperature_high"), "mc"),
        cell_voltage_low=_measure(known.get("cell_voltage_low"), "mv"),
        cell_voltage_high=_measure(known.get("cell_voltage_high"), "mv"),
        temperature_low_id=_int(known.get("temperature_low_id")),
        temperature_high_id=_int(known.get("temperature_high_id")),
        cell_voltage_low_id=_int(known.get("cell_voltage_low_id")),
        cell_voltage_high_id=_int(known.get("cell_voltage_high_id")),
        state=state,
        voltage_state=_word(known.get("voltage_state")),
        current_state=_word(known.get("current_state")),
        temperature_state=_word(known.get("temperature_state")),
        soc=_measure(known.get("soc"), "%"),
        time=_datetime(known.get("time")),
        cell_voltage_state=_word(known.get("cell_voltage_state")),
        cell_temperature_state=_word(known.get("cell_temperature_state")),
        mosfet_temperature=_measure(known.get("mosfet_temperature"), "mc"),
        mosfet_temperature_state=_word(known.get("mosfet_temperature_state")),
        system_alarm_state=_word(known.get("system_alarm_state")),
        barcode=_word(known.get("barcode")),
        device_type=_word(known.get("device_type")),
        extra=tuple((k, v) for k, v in extra if v != _DASH),
    )


def parse_pwr(source: Source) -> PwrTable:
    """Parse the ``pwr`` table (layouts A/B/C and clones; unknown columns kept)."""
    columns, rows = _table(_lines(source), "power")
    parsed: list[PwrRow] = []
    skipped: list[int] = []
    seen: set[int] = set()
    for index, line in rows:
        if not 1 <= index <= MAX_CONSOLE_SLOT:
            # One bad row must not cost the poll (nor ask `bat 100`): left out, reported.
            skipped.append(index)
            continue
        if index in seen:
            continue  # a repeated slot (garbled line) must not yield two modules
        seen.add(index)
        if _ABSENT.search(line):
            # Absent rows are narrower than the header: only the word matters.
            parsed.append(PwrRow(index=index, absent=True, state="Absent"))
            continue
        known, extra = _pick(_align(columns, _row_tokens(line)), _PWR_KEYS)
        parsed.append(_pwr_row(index, known, extra))
    return PwrTable(
        columns=tuple(c.name for c in columns), rows=tuple(parsed), skipped=tuple(skipped)
    )


# --- key/value blocks -------------------------------------------------------------


def _key_values(lines: Iterable[str]) -> list[tuple[str, str]]:
    """``Key : value`` (or ``Key    value``) pairs in order; separator lines skipped."""
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if set(line) <= {"-", " "}:
            continue
        match = _KEY_VALUE.fullmatch(line) or _LABEL_SPACED.fullmatch(line)
        if match is None:
            # `Power  1`: a label and a number separated by one or more spaces.
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and _INT.fullmatch(parts[1]) and parts[0][:1].isalpha():
                pairs.append((parts[0].strip(), parts[1]))
            continue
        pairs.append((match.group(1).strip(), match.group(2).strip()))
    return pairs


@dataclass(frozen=True, slots=True)
class EventField:
    """A hex event/fault word with its optional names (``0x2000  COULFULL``)."""

    code: int | None
    names: tuple[str, ...] = ()
    raw: str = ""


def parse_event_field(text: str | None) -> EventField | None:
    """``0x2  BHV`` -> ``EventField(2, ("BHV",))``; ``None`` if absent."""
    if text is None:
        return None
    text = text.strip()
    match = _EVENT.match(text)
    if match is None:
        return EventField(None, tuple(text.split()[:32]), text)
    return EventField(int(match.group(1), 16), tuple(match.group(2).split()[:32]), text)


# --- pwr N ------------------------------------------------------------------------

_PWR_DETAIL_KEYS = {
    "power": "index",
    "voltage": "voltage",
    "current": "current",
    "temperature": "temperature",
    "coulomb": "soc",
    "totalcoulomb": "total_capacity",
    "realcoulomb": "real_capacity",
    "maxvoltage": "max_voltage",
    "chargetimes": "charge_times",
    "basicstatus": "state",
    "chargesec": "charge_seconds",
    "dischargesec": "discharge_seconds",
    "voltstatus": "voltage_state",
    "currentstatus": "current_state",
    "tmprstatus": "temperature_state",
    "coulstatus": "coulomb_state",
    "sohstatus": "soh_state",
    "heaterstatus": "heater_state",
    "protectena": "protect_enabled",
    "batevents": "bat_events",
    "powerevents": "power_events",
    "systemfault": "system_fault",
    # Pytes V5 firmware prints the identity in `pwr N` too.
    "barcode": "barcode",
    "devtype": "device_type",
    "firmversion": "firmware_version",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PwrDetail:
    """``pwr N``: one module's status block, in SI units."""

    index: int | None = None
    voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    soc: float | None = None
    total_capacity: float | None = None  # Ah
    real_capacity: float | None = None  # Ah (Pytes)
    max_voltage: float | None = None
    charge_times: int | None = None
    state: str | None = None
    charge_seconds: int | None = None
    discharge_seconds: int | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    coulomb_state: str | None = None
    soh_state: str | None = None
    heater_state: str | None = None
    protect_enabled: tuple[str, ...] = ()
    bat_events: EventField | None = None
    power_events: EventField | None = None
    system_fault: EventField | None = None
    barcode: str | None = None  # Pytes V5
    device_type: str | None = None  # Pytes V5
    firmware_version: str | None = None  # Pytes V5
    extra: Extra = ()


def parse_pwr_detail(source: Source) -> PwrDetail:
    """Parse ``pwr N`` (the key/value block of one module)."""
    pairs = _key_values(_lines(source))
    known, extra = _pick(dict(pairs), _PWR_DETAIL_KEYS)
    if "index" not in known and "voltage" not in known:
        raise ProtocolError("console `pwr N` block not found")
    return PwrDetail(
        index=_int(known.get("index")),
        voltage=_measure(known.get("voltage"), "mv"),
        current=_measure(known.get("current"), "ma"),
        temperature=_measure(known.get("temperature"), "mc"),
        soc=_measure(known.get("soc"), "%"),
        total_capacity=_measure(known.get("total_capacity"), "mah"),
        real_capacity=_measure(known.get("real_capacity"), "mah"),
        max_voltage=_measure(known.get("max_voltage"), "mv"),
        charge_times=_int(known.get("charge_times")),
        state=_word(known.get("state")),
        charge_seconds=_int(known.get("charge_seconds")),
        discharge_seconds=_int(known.get("discharge_seconds")),
        voltage_state=_word(known.get("voltage_state")),
        current_state=_word(known.get("current_state")),
        temperature_state=_word(known.get("temperature_state")),
        coulomb_state=_word(known.get("coulomb_state")),
        soh_state=_word(known.get("soh_state")),
        heater_state=_word(known.get("heater_state")),
        protect_enabled=tuple((known.get("protect_enabled") or "").split()[:64]),
        bat_events=parse_event_field(known.get("bat_events")),
        power_events=parse_event_field(known.get("power_events")),
        system_fault=parse_event_field(known.get("system_fault")),
        barcode=_word(known.get("barcode")),
        device_type=_word(known.get("device_type")),
        firmware_version=_word(known.get("firmware_version")),
        extra=extra,
    )


# --- bat N ------------------------------------------------------------------------

_BAT_KEYS = {
    "battery": "index",
    "volt": "voltage",
    "curr": "current",
    "tempr": "temperature",
    "basestate": "state",
    "voltstate": "voltage_state",
    "currstate": "current_state",
    "tempstate": "temperature_state",
    "temprstate": "temperature_state",
    "soc": "soc",
    "coulomb": "coulomb",
    "bal": "balancing",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BatCell:
    """One cell row of ``bat N`` (``index`` is 0-based, as printed)."""

    index: int
    voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    state: str | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    soc: float | None = None
    capacity: float | None = None  # Ah held by the cell (`44231 mAH`)
    balancing: bool | None = None
    extra: Extra = ()


def _coulomb(text: str | None) -> tuple[float | None, float | None]:
    """``45%``, ``44231 mAH`` or ``77% 38286 mAH`` -> (SOC %, Ah)."""
    if text is None:
        return None, None
    soc = capacity = None
    for part in _COULOMB_PART.findall(text)[:4]:
        if part.endswith("%"):
            soc = _measure(part, "%")
        elif part.lower().endswith("ah"):
            capacity = _measure(part, "mah")
        else:  # a bare number: a percentage if it can be one, else mAh
            number = _measure(part)
            if number is not None and 0 <= number <= 100:
                soc = number
            elif number is not None:
                capacity = round(number / 1000, 6)
    return soc, capacity


def _bal(text: str | None) -> bool | None:
    word = _word(text)
    if word is None:
        return None
    lowered = word.lower()
    if lowered in ("y", "yes", "on", "1"):
        return True
    if lowered in ("n", "no", "off", "0"):
        return False
    return None


def _bat_cells(columns: list[_Column], rows: list[tuple[int, str]]) -> tuple[BatCell, ...]:
    cells: list[BatCell] = []
    for index, line in rows:
        values = _align(columns, _row_tokens(line))
        known, extra = _pick(values, _BAT_KEYS)
        soc, capacity = _coulomb(known.get("coulomb"))
        if "soc" in known:
            soc = _measure(known.get("soc"), "%")
        cells.append(
            BatCell(
                index=index,
                voltage=_measure(known.get("voltage"), "mv"),
                current=_measure(known.get("current"), "ma"),
                temperature=_measure(known.get("temperature"), "mc"),
                state=_word(known.get("state")),
                voltage_state=_word(known.get("voltage_state")),
                current_state=_word(known.get("current_state")),
                temperature_state=_word(known.get("temperature_state")),
                soc=soc,
                capacity=capacity,
                balancing=_bal(known.get("balancing")),
                extra=extra,
            )
        )
    return tuple(cells)


def parse_bat(source: Source) -> tuple[BatCell, ...]:
    """Parse ``bat [N]``: one record per cell, in printed order.

    More rows than a supported module has cells raise ``CountBoundError``.
    """
    columns, rows = _table(_lines(source), "battery")
    check_count("cells", len(rows), MAX_CELLS_PER_MODULE)
    return _bat_cells(columns, rows)


# --- soh N ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SohCell:
    """One row of ``soh N``."""

    index: int
    voltage: float | None = None
    soh_count: int | None = None
    soh_status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SohReport:
    """``soh N``: the module number and its per-cell SOH rows."""

    index: int | None
    cells: tuple[SohCell, ...]


def parse_soh(source: Source) -> SohReport:
    """Parse ``soh N``."""
    lines = _lines(source)
    module = None
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0].lower() == "power":
            module = _int(parts[1])
            break
    columns, rows = _table(lines, "battery")
    check_count("cells", len(rows), MAX_CELLS_PER_MODULE)
    keys = {"battery": "index", "voltage": "voltage", "volt": "voltage"}
    keys |= {"sohcount": "count", "sohstatus": "status"}
    cells = []
    for index, line in rows:
        known, _extra = _pick(_align(columns, _row_tokens(line)), keys)
        cells.append(
            SohCell(
                index=index,
                voltage=_measure(known.get("voltage"), "mv"),
                soh_count=_int(known.get("count")),
                soh_status=_word(known.get("status")),
            )
        )
    return SohReport(index=module, cells=tuple(cells))


# --- info [N] --------------------------------------------------------------------

_INFO_KEYS = {
    "deviceaddress": "address",
    "manufacturer": "manufacturer",
    "devicename": "device_name",
    "boardversion": "board_version",
    "board": "board",
    "mainsoftversion": "main_soft_version",
    "softversion": "soft_version",
    "bootversion": "boot_version",
    "commversion": "comm_version",
    "releasedate": "release_date",
    "barcode": "barcode",
    "specification": "specification",
    "cellnumber": "cell_count",
    "maxdischgcurr": "max_discharge_current",
    "maxchargecurr": "max_charge_current",
    "eponportrate": "epon_port_rate",
    "consoleportrate": "console_port_rate",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoRecord:
    """``info [N]``: identity and ratings of one module."""

    address: int | None = None
    manufacturer: str | None = None
    device_name: str | None = None
    board_version: str | None = None
    board: str | None = None
    main_soft_version: str | None = None
    soft_version: str | None = None
    boot_version: str | None = None
    comm_version: str | None = None
    release_date: str | None = None
    barcode: str | None = None
    specification: str | None = None
    nominal_voltage: float | None = None  # from `48V/100AH`
    nominal_capacity: float | None = None  # Ah
    cell_count: int | None = None
    max_discharge_current: float | None = None  # A, as printed (negative)
    max_charge_current: float | None = None
    epon_port_rate: int | None = None
    console_port_rate: int | None = None
    extra: Extra = ()


def parse_info(source: Source) -> InfoRecord:
    """Parse ``info [N]``."""
    pairs = _key_values(_lines(source))
    known, extra = _pick(dict(pairs), _INFO_KEYS)
    if not known:
        raise ProtocolError("console `info` block not found")
    spec = _word(known.get("specification"))
    spec_match = _SPEC.search(spec) if spec else None
    return InfoRecord(
        address=_int(known.get("address")),
        manufacturer=_word(known.get("manufacturer")),
        device_name=_word(known.get("device_name")),
        board_version=_word(known.get("board_version")),
        board=_word(known.get("board")),
        main_soft_version=_word(known.get("main_soft_version")),
        soft_version=_word(known.get("soft_version")),
        boot_version=_word(known.get("boot_version")),
        comm_version=_word(known.get("comm_version")),
        release_date=_word(known.get("release_date")),
        barcode=_word(known.get("barcode")),
        specification=spec,
        nominal_voltage=float(spec_match.group(1)) if spec_match else None,
        nominal_capacity=float(spec_match.group(2)) if spec_match else None,
        cell_count=_int(known.get("cell_count")),
        max_discharge_current=_measure(known.get("max_discharge_current"), "ma"),
        max_charge_current=_measure(known.get("max_charge_current"), "ma"),
        epon_port_rate=_int(known.get("epon_port_rate")),
        console_port_rate=_int(known.get("console_port_rate")),
        extra=extra,
    )


# --- stat [N] --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StatRecord:
    """``stat [N]``: every integer counter by its printed label, plus the known ones."""

    address: int | None
    counters: tuple[tuple[str, int], ...]
    soh: float | None = None
    cycles: int | None = None
    extra: Extra = ()

    def counter(self, label: str) -> int | None:
        """Return a counter by label (``"COC Times"``), compared without case/space/dots."""
        key = _norm(label)
        for name, value in self.counters:
            if _norm(name) == key:
                return value
        return None


def parse_stat(source: Source) -> StatRecord:
    """Parse ``stat [N]``."""
    pairs = _key_values(_lines(source))
    address = None
    counters: list[tuple[str, int]] = []
    extra: list[tuple[str, str]] = []
    soh = cycles = None
    for label, text in pairs:
        key = _norm(label)
        value = _int(text)
        if key == "deviceaddress":
            address = value
        elif value is None:
            extra.append((label, text))
        else:
            counters.append((label, value))
            if key == "soh":
                soh = float(value)
            elif key == "cycletimes":
                cycles = value
    if address is None and not counters:
        raise ProtocolError("console `stat` block not found")
    return StatRecord(
        address=address, counters=tuple(counters), soh=soh, cycles=cycles, extra=tuple(extra)
    )


# --- time -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeRecord:
    """``time``: the module clock (``clock`` is the chip name: ``Ds3231``, ``RTC``)."""

    clock: str | None
    time: datetime | None
    test_result: str | None = None


def parse_time(source: Source) -> TimeRecord:
    """Parse ``time`` (``Ds3231 2023-09-28 20:11:40`` / ``RTC ...`` + ``Test result``)."""
    clock = moment = result = None
    found = False
    for line in _lines(source):
        match = _TIME_LINE.search(line)
        if match and not found:
            found = True
            clock = match.group(1)
            moment = _datetime(f"{match.group(2)} {match.group(3)}")
            continue
        kv = _KEY_VALUE.fullmatch(line)
        if kv and _norm(kv.group(1)) == "testresult":
            result = kv.group(2).strip() or None
    if not found:
        raise ProtocolError("console `time` line not found")
    return TimeRecord(clock=clock, time=moment, test_result=result)


# --- pwrsys -----------------------------------------------------------------------

_PWRSYS_KEYS = {
    "totalnum": "total_count",
    "presentnum": "present_count",
    "sleepnum": "sleep_count",
    "systemvolt": "voltage",
    "systemcurr": "current",
    "systemrc": "remaining_capacity",
    "systemfcc": "full_capacity",
    "systemsoc": "soc",
    "systemsoh": "soh",
    "highestvoltage": "cell_voltage_max",
    "averagevoltage": "cell_voltage_avg",
    "lowestvoltage": "cell_voltage_min",
    "highesttemperature": "temperature_max",
    "averagetemperature": "temperature_avg",
    "lowesttemperature": "temperature_min",
    "recommendchgvoltage": "charge_voltage",
    "recommenddsgvoltage": "discharge_voltage",
    "recommendchgcurrent": "charge_current",
    "recommenddsgcurrent": "discharge_current",
    "systemrecommendchgvoltage": "system_charge_voltage",
    "systemrecommenddsgvoltage": "system_discharge_voltage",
    "systemrecommendchgcurrent": "system_charge_current",
    "systemrecommenddsgcurrent": "system_discharge_current",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PwrsysRecord:
    """``pwrsys``: the stack summary; currents signed as printed (+ = charge)."""

    status: str | None = None  # "discharging", "charging", "idle", ... as printed
    total_count: int | None = None
    present_count: int | None = None
    sleep_count: int | None = None
    voltage: float | None = None
    current: float | None = None
    remaining_capacity: float | None = None
    full_capacity: float | None = None
    soc: float | None = None
    soh: float | None = None
    cell_voltage_max: float | None = None
    cell_voltage_avg: float | None = None
    cell_voltage_min: float | None = None
    temperature_max: float | None = None
    temperature_avg: float | None = None
    temperature_min: float | None = None
    charge_voltage: float | None = None  # per module
    discharge_voltage: float | None = None
    charge_current: float | None = None
    discharge_current: float | None = None
    system_charge_voltage: float | None = None  # whole stack
    system_discharge_voltage: float | None = None
    system_charge_current: float | None = None
    system_discharge_current: float | None = None
    extra: Extra = ()


_PWRSYS_UNITS = {
    "remaining_capacity": "mah",
    "full_capacity": "mah",
    "soc": "%",
    "soh": "%",
}
_PWRSYS_COUNTS = ("total_count", "present_count", "sleep_count")


def parse_pwrsys(source: Source) -> PwrsysRecord:
    """Parse ``pwrsys``."""
    lines = _lines(source)
    status = None
    for line in lines:
        match = re.match(r"System is (\w{1,20})", line, re.IGNORECASE)
        if match:
            status = match.group(1).lower()
            break
    known, extra = _pick(dict(_key_values(lines)), _PWRSYS_KEYS)
    if not known:
        raise ProtocolError("console `pwrsys` block not found")
    values: dict[str, object] = {}
    for field, text in known.items():
        if field in _PWRSYS_COUNTS:
            values[field] = _int(text)
            continue
        unit = _PWRSYS_UNITS.get(field)
        if unit is None:
            unit = "mv" if "voltage" in field else "ma" if "current" in field else "mc"
        values[field] = _measure(text, unit)
    return PwrsysRecord(status=status, extra=extra, **values)  # type: ignore[arg-type]


# --- log --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One ``log`` entry (newest first on the wire)."""

    index: int | None
    time: datetime | None = None
    module_id: str | None = None
    code: str | None = None
    info: str | None = None
    extra: Extra = ()


def _records(pairs: list[tuple[str, str]], starts: set[str]) -> list[list[tuple[str, str]]]:
    """Group key/value pairs into records, each starting at a label in ``starts``."""
    records: list[list[tuple[str, str]]] = []
    for label, value in pairs:
        if _norm(label) in starts or not records:
            records.append([])
        records[-1].append((label, value))
    return records


def parse_log(source: Source) -> tuple[LogEntry, ...]:
    """Parse ``log`` (all pages the link collected)."""
    entries = []
    for record in _records(_key_values(_lines(source)), {"index"}):
        known, extra = _pick(
            dict(record),
            {"index": "index", "time": "time", "modid": "module", "code": "code", "info": "info"},
        )
        if "index" not in known and "time" not in known:
            continue
        entries.append(
            LogEntry(
                index=_int(known.get("index")),
                time=_datetime(known.get("time")),
                module_id=_word(known.get("module")),
                code=_word(known.get("code")),
                info=_word(known.get("info")),
                extra=extra,
            )
        )
    return tuple(entries)


# --- data event / data history ------------------------------------------------------

_DATA_KEYS = {
    "itemindex": "index",
    "recitemindex": "index",
    "time": "time",
    "voltage": "voltage",
    "current": "current",
    "temperature": "temperature",
    "percent": "soc",
    "coulomb": "soc",
    "totalcoulomb": "total_capacity",
    "maxvoltage": "max_voltage",
    "basestate": "state",
    "basicstatus": "state",
    "voltstate": "voltage_state",
    "voltstatus": "voltage_state",
    "currstate": "current_state",
    "currentstatus": "current_state",
    "temprstate": "temperature_state",
    "tmprstatus": "temperature_state",
    "coulstatus": "coulomb_state",
    "powerevents": "power_events",
    "batevents": "bat_events",
    "batprotectena": "bat_protect_enabled",
    "pwrprotectena": "pwr_protect_enabled",
    "protectena": "bat_protect_enabled",
    "systemfault": "system_fault",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DataRecord:
    """One ``data event`` / ``data history`` record with its per-cell table."""

    index: int | None = None
    time: datetime | None = None
    voltage: float | None = None
    current: float | None = None
    temperature: float | None = None
    soc: float | None = None
    total_capacity: float | None = None
    max_voltage: float | None = None
    state: str | None = None
    voltage_state: str | None = None
    current_state: str | None = None
    temperature_state: str | None = None
    coulomb_state: str | None = None
    power_events: EventField | None = None
    bat_events: EventField | None = None
    bat_protect_enabled: tuple[str, ...] = ()
    pwr_protect_enabled: tuple[str, ...] = ()
    system_fault: EventField | None = None
    cells: tuple[BatCell, ...] = ()
    extra: Extra = ()


def _data_record(pairs: list[tuple[str, str]], cells: tuple[BatCell, ...]) -> DataRecord:
    known, extra = _pick(dict(pairs), _DATA_KEYS)
    return DataRecord(
        index=_int(known.get("index")),
        time=_datetime(known.get("time")),
        voltage=_measure(known.get("voltage"), "mv"),
        current=_measure(known.get("current"), "ma"),
        temperature=_measure(known.get("temperature"), "mc"),
        soc=_measure(known.get("soc"), "%"),
        total_capacity=_measure(known.get("total_capacity"), "mah"),
        max_voltage=_measure(known.get("max_voltage"), "mv"),
        state=_word(known.get("state")),
        voltage_state=_word(known.get("voltage_state")),
        current_state=_word(known.get("current_state")),
        temperature_state=_word(known.get("temperature_state")),
        coulomb_state=_word(known.get("coulomb_state")),
        power_events=parse_event_field(known.get("power_events")),
        bat_events=parse_event_field(known.get("bat_events")),
        bat_protect_enabled=tuple((known.get("bat_protect_enabled") or "").split()[:64]),
        pwr_protect_enabled=tuple((known.get("pwr_protect_enabled") or "").split()[:64]),
        system_fault=parse_event_field(known.get("system_fault")),
        cells=cells,
        extra=extra,
    )


def parse_data(source: Source) -> tuple[DataRecord, ...]:
    """Parse ``data event`` or ``data history`` (records, each with its cell table)."""
    lines = _lines(source)
    records: list[DataRecord] = []
    pairs: list[tuple[str, str]] = []
    table: list[str] = []

    def close() -> None:
        if not pairs and not table:
            return
        cells: tuple[BatCell, ...] = ()
        if table:
            columns, rows = _table(table, "battery")
            cells = _bat_cells(columns, rows)
        records.append(_data_record(list(pairs), cells))
        pairs.clear()
        table.clear()

    for line in lines:
        head = line.split(None, 1)[0]
        if head.lower() == "battery" and ":" not in line:
            table.append(line)
            continue
        if table and _INT.fullmatch(head):
            table.append(line)
            continue
        kv = _key_values([line])
        if not kv:
            continue
        label = _norm(kv[0][0])
        if label in ("itemindex", "recitemindex") and (pairs or table):
            close()
        if table:  # key/value lines after a cell table begin the next record
            close()
        pairs.extend(kv)
    close()
    return tuple(records)


# --- getpwr -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class GetpwrCell:
    """One cell line of ``getpwr``: ``mV# mC# state# state#``."""

    voltage: float | None
    temperature: float | None
    voltage_state: str | None
    temperature_state: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetpwrRecord:
    """``getpwr``: the compact ``#``-separated dump of the module the cable is on."""

    voltage: float | None
    current: float | None
    temperature: float | None
    remaining_capacity: float | None  # Ah
    state: str | None
    voltage_state: str | None
    current_state: str | None
    temperature_state: str | None
    cells: tuple[GetpwrCell, ...]
    trailer: tuple[int, ...]  # lone numbers after the cells; the last = CYCLE Times

    @property
    def cycles(self) -> int | None:
        """The last lone number, equal to ``stat``'s ``CYCLE Times`` (Hrab)."""
        return self.trailer[-1] if self.trailer else None


def parse_getpwr(source: Source) -> GetpwrRecord:
    """Parse ``getpwr``."""
    rows = [
        [part.strip() for part in line.split("#")[:MAX_ROW_TOKENS]]
        for line in _lines(source)
        if "#" in line
    ]
    rows = [[part for part in row if part] for row in rows]
    rows = [row for row in rows if row]
    if not rows or len(rows[0]) < 4:
        raise ProtocolError("console `getpwr` summary line not found")
    head = rows[0] + [""] * 8
    cells: list[GetpwrCell] = []
    trailer: list[int] = []
    for row in rows[1:]:
        if len(row) == 1:
            number = _int(row[0])
            if number is not None:
                trailer.append(number)
            continue
        row = row + [""] * 4
        cells.append(
            GetpwrCell(
                voltage=_measure(row[0], "mv"),
                temperature=_measure(row[1], "mc"),
                voltage_state=_word(row[2]),
                temperature_state=_word(row[3]),
            )
        )
    return GetpwrRecord(
        voltage=_measure(head[0], "mv"),
        current=_measure(head[1], "ma"),
        temperature=_measure(head[2], "mc"),
        remaining_capacity=_measure(head[3], "mah"),
        state=_word(head[4]),
        voltage_state=_word(head[5]),
        current_state=_word(head[6]),
        temperature_state=_word(head[7]),
        cells=tuple(cells),
        trailer=tuple(trailer),
    )


# --- ci ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CiRecord:
    """``ci``: port statistics (``US1 Rx``, ``CAN Tx``, ``Exist Pack Num`` ...)."""

    counters: tuple[tuple[str, int], ...]
    extra: Extra = ()

    def counter(self, label: str) -> int | None:
        """Return a counter by label, compared without case/space."""
        key = _norm(label)
        for name, value in self.counters:
            if _norm(name) == key:
                return value
        return None


def parse_ci(source: Source) -> CiRecord:
    """Parse ``ci``."""
    counters: list[tuple[str, int]] = []
    extra: list[tuple[str, str]] = []
    for label, text in _key_values(_lines(source)):
        value = _int(text)
        if value is None:
            extra.append((label, text))
        else:
            counters.append((label, value))
    if not counters:
        raise ProtocolError("console `ci` counters not found")
    return CiRecord(counters=tuple(counters), extra=tuple(extra))
