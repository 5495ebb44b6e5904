"""The capability table agrees with the codecs, the entity tables and README; plausibility."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from custom_components.pylontech.core.capabilities import (
    CAN_V1_2,
    CAN_V1_3,
    CAPABILITIES,
    CONSOLE,
    RS485,
    LinkKind,
    capability,
    combined,
    render_link_table,
)
from custom_components.pylontech.core.model import Bank, Module
from custom_components.pylontech.core.plausibility import PlausibilityFilter
from custom_components.pylontech.core.protocol import can, console_mapping, rs485_responses

ROOT = Path(__file__).resolve().parents[2]
BANK_FIELDS = {f.name for f in fields(Bank)}
MODULE_FIELDS = {f.name for f in fields(Module)}


def test_rows_name_model_fields() -> None:
    """Every value a row lists is a Bank/Module field (module limits once the model has them)."""
    limits = {
        "charge_voltage_limit",
        "discharge_voltage_limit",
        "charge_current_limit",
        "discharge_current_limit",
    }
    for row in (CAN_V1_2, CAN_V1_3, RS485, CONSOLE):
        assert row.bank_values <= BANK_FIELDS
        assert row.module_values <= MODULE_FIELDS | limits


def test_can_0x359_bits_are_in_the_v1_2_row() -> None:
    """Each documented 0x359 bit, decoded alone, names only flags the v1.2 row lists."""
    seen = set()
    for byte in range(4):
        for bit in range(8):
            data = bytearray(8)
            data[byte] = 1 << bit
            data[4] = 3
            part = can.decode_frame(can.PROTECTION_ID, bytes(data))
            assert isinstance(part, can.CanProtectionAlarm)
            seen |= part.protections | part.alarms
    assert seen
    assert seen <= CAN_V1_2.bank_flags
    assert CAN_V1_2.bank_flags <= seen  # and the row claims nothing the codec cannot tell


@pytest.mark.parametrize("active", [0b01, 0b10])
def test_can_0x35a_slots_are_in_the_v1_3_row(active: int) -> None:
    """Each 0x35A slot active on its own names only flags the v1.3 row lists."""
    seen = set()
    for slot in range(32):
        data = bytearray(8)
        data[slot // 4] = active << (2 * (slot % 4))
        part = can.decode_frame(can.SMA_ALARMS_ID, bytes(data))
        assert isinstance(part, can.CanSmaAlarms)
        seen |= part.protections | part.alarms
    assert seen <= CAN_V1_3.bank_flags


@pytest.mark.parametrize("firmware", ["v1.2", "v1.3"])
def test_can_bank_values_are_in_the_row(firmware: str) -> None:
    """A full bank broadcast and decoded again only fills values the frame set's row lists."""
    bank = Bank(
        voltage=52.1,
        current=-12.3,
        temperature=21.0,
        soc=80.0,
        soh=99.0,
        full_capacity=222.0,
        charge_voltage_limit=53.2,
        discharge_voltage_limit=44.5,
        charge_current_limit=111.0,
        discharge_current_limit=111.0,
        charge_enabled=True,
        discharge_enabled=True,
        full_charge_request=False,
        force_charge_1=False,
        force_charge_2=False,
        module_count=3,
        manufacturer="PYLON",
    )
    parts = [can.decode_frame(i, d) for i, d in can.encode_bank(bank, firmware=firmware)]
    decoded = can.bank_from_parts(p for p in parts if p is not None)
    carried = {
        f.name
        for f in fields(Bank)
        if f.name not in ("modules", "protections", "alarms", "extra", "protocol_version")
        and getattr(decoded, f.name) is not None
    }
    assert carried == set(capability("can", firmware).bank_values)


def test_rs485_and_console_protections_are_in_their_rows() -> None:
    """The flags the RS485 Status 1 bits and the console event words name are in the rows."""
    assert {p for _, p in rs485_responses.STATUS1_PROTECTIONS} <= RS485.module_flags
    named = set(console_mapping._NAMED_PROTECTIONS.values()) | set(
        console_mapping._NAMED_ALARMS.values()
    )
    assert named <= CONSOLE.module_flags


def test_capability_lookup() -> None:
    """CAN without a known frame set is either set; an unknown link carries nothing."""
    assert capability("can") == CAPABILITIES[LinkKind.CAN] == CAN_V1_2 | CAN_V1_3
    assert capability("can", "v1.3") == CAN_V1_3
    assert capability("rs485", "v1.3") == RS485
    assert capability("serial-over-pigeon") == combined(())
    both = combined((RS485, CAN_V1_2))
    assert both.carries_bank("soh", "module_count")
    assert not CAN_V1_3.carries_bank("soc", "module_count")


def test_readme_table_is_rendered_from_the_table() -> None:
    """README's "Which link gives which data" is what scripts/link_table renders."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = "<!-- link-table:start (scripts/link_table --write) -->\n"
    end = "<!-- link-table:end -->"
    assert start in readme
    table = readme.split(start, 1)[1].split(end, 1)[0]
    assert table == render_link_table()


def test_plausibility_drops_counts_and_remembers() -> None:
    """Absurd values become None and are counted per quantity; sane ones pass untouched."""
    checker = PlausibilityFilter()
    sane = Bank(
        voltage=52.0,
        soc=55.0,
        charge_current_limit=148.0,
        module_count=4,
        modules=(Module(index=1, voltage=52.0, cell_voltages=(3.3,) * 15, cycles=120),),
    )
    assert checker.check(sane, "rs485") is sane
    absurd = Bank(
        voltage=5.22,  # 0.1 V units read as 0.01 V
        soc=13_107_000.0,
        soh=65535.0,
        charge_voltage_limit=6553.5,
        charge_current_limit=148.0 * 40,  # more than 300 A for each of 4 modules
        module_count=255,
        modules=(
            Module(index=1, voltage=52.0, cell_voltages=(3.3, 65.535), cycles=65535),
            Module(index=2, temperature=-273.0, soc=101.0),
        ),
    )
    checked = checker.check(absurd, "can")
    assert checked.voltage is None
    assert checked.soc is None
    assert checked.soh is None
    assert checked.charge_voltage_limit is None
    assert checked.module_count is None
    # Without a plausible count the present modules (2 here) scale the current bound.
    assert checked.charge_current_limit is None
    assert checked.modules[0].voltage == 52.0
    assert checked.modules[0].cell_voltages == ()
    assert checked.modules[0].cycles is None
    assert checked.modules[1].temperature is None
    assert checked.modules[1].soc is None
    assert ((0, 1), "cycles") in checker.dropped  # (group, index) of module 1
    diagnostics = checker.diagnostics()
    assert diagnostics["bank.soc"] == {
        "count": 1,
        "latest": 13_107_000.0,
        "source": "can",
        "range": [0.0, 100.0],
    }
    assert diagnostics["module.cell_voltages"]["latest"] == 65.535
    four = checker.check(Bank(charge_current_limit=148.0 * 40, module_count=4), "can")
    assert four.charge_current_limit is None
    # Neither a count nor modules (a CAN frame set without 0x359): the largest bank bounds it.
    unknown = Bank(charge_current_limit=148.0 * 40)
    assert checker.check(unknown, "can") is unknown
