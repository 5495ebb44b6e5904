"""The pure parts of scripts/smoke's checks (dev/smoke_checks.py).

The checks themselves run against the real Home Assistant (``scripts/smoke``); what they
conclude rests on these helpers: which log records are integration tracebacks, what counts as
a host or serial in diagnostics, what the frontend submits for a re-shown flow form, and on
which device (bank or module N) an entity sits.
"""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dev"))

import smoke_checks as sc  # dev/ is not a package

# Lines as Home Assistant 2026.11 writes them, from a smoke run on an earlier version.
LOG = """\
2026-12-08 01:21:40.100+00:00 INFO (MainThread) [homeassistant.setup] Setting up pylontech
2026-12-08 01:21:54.059+00:00 ERROR (MainThread) [custom_components.pylontech] Unexpected error while probing a Pylontech link
Traceback (most recent call last):
  File "/x/config/custom_components/pylontech/config_flow.py", line 431, in _async_link_form
    result = await async_probe(data)
  File "/x/config/custom_components/pylontech/core/links/rs485.py", line 83, in __init__
ValueError: group must be 0..7
2026-12-08 01:22:00.000+00:00 ERROR (MainThread) [homeassistant.components.other] Oops
Traceback (most recent call last):
  File "/x/homeassistant/components/other/__init__.py", line 1, in f
RuntimeError: not ours
2026-12-08 01:23:04.991+00:00 ERROR (MainThread) [custom_components.pylontech] Error fetching Pylontech bank data: no complete answer to 'pwr' within 3.0 s
2026-12-08 01:25:00.000+00:00 ERROR (MainThread) [custom_components.pylontech] Error fetching Pylontech bank data: broken
""".splitlines()


def test_log_records_join_tracebacks_to_their_record() -> None:
    """A traceback belongs to the record above it, so its frames name the integration."""
    records = sc.parse_log(LOG)

    assert [r.line for r in records] == [0, 1, 7, 11, 12]
    assert records[1].has_traceback
    assert records[1].lines[-1] == "ValueError: group must be 0..7"
    assert not records[3].has_traceback


def test_integration_tracebacks_and_errors_outside_fault_windows() -> None:
    """Only the integration's records count; an ERROR is expected only inside a fault window."""
    tracebacks, unexpected, expected = sc.integration_log_problems(
        sc.parse_log(LOG), fault_windows=[(10, 11)]
    )

    assert [r.line for r in tracebacks] == [1]  # the other integration's is not ours
    assert [r.line for r in expected] == [11]
    assert [r.line for r in unexpected] == [12]


def test_a_traceback_inside_a_fault_window_still_counts() -> None:
    """A fault explains an ERROR line, never a traceback."""
    tracebacks, _unexpected, expected = sc.integration_log_problems(
        sc.parse_log(LOG), fault_windows=[(0, len(LOG))]
    )

    assert [r.line for r in tracebacks] == [1]
    assert [r.line for r in expected] == [11, 12]


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        # The leak an earlier version had: the link's last error names the gateway.
        (
            '"last_error": "ConnectionLostError: socket://127.0.0.1:15121: connection closed"',
            ["an IPv4 address", "a gateway host"],
        ),
        ('"url": "tcp://gateway.lan:4196"', ["a gateway host"]),
        ('"error": "cannot reach localhost"', ["a host name"]),
        ('"barcode": "PPTAH0123456789"', ["a serial number"]),
        # Redacted hosts, firmware versions and a mere port are no leak.
        ('"url": "socket://**REDACTED**:15111", "firmware": "B68.2.0.0"', []),
        ('"url": "rfc2217://[REDACTED]:4001", "version": "1.2.3.4.5"', []),
    ],
)
def test_find_leaks(text: str, kinds: list[str]) -> None:
    """Hosts and serials are found with context; what is redacted is not."""
    leaks = sc.find_leaks(text, secrets=["PPTAH0123456789", ""])

    assert [leak.split(" '")[0] for leak in leaks] == kinds


def test_frontend_form_data_is_what_the_frontend_submits() -> None:
    """Suggested values win, then defaults; a required integer without either starts at 0.

    The re-shown form of a failed attempt is filled the same way: the suggested values
    the flow sends back are submitted as they are (a baud rate suggested as an int goes
    back as an int to a selector of strings).
    """
    schema = [
        {"name": "host", "required": True, "selector": {"text": {}}},
        {"name": "port", "required": True, "selector": {"number": {"min": 1}}, "type": "integer"},
        {
            "name": "baudrate",
            "required": True,
            "default": "115200",
            "description": {"suggested_value": 115200},
            "selector": {"select": {"options": ["9600", "115200"]}},
        },
        {"name": "group", "required": True, "default": 0, "type": "integer"},
        {"name": "level", "required": True, "selector": {"number": {"min": 2, "max": 9}}},
        {"name": "note", "required": False, "selector": {"text": {}}},
        {"name": "polite", "required": True, "type": "boolean"},
    ]

    assert sc.frontend_form_data(schema) == {
        "host": "",
        "port": 0,
        "baudrate": 115200,
        "group": 0,
        "level": 2,
        "polite": False,
    }


SERIALS = {"PPTAH01": (0, 1), "PPTAH02": (0, 2)}


@pytest.mark.parametrize(
    ("device", "place"),
    [
        ({"config_entries": ["E"], "identifiers": [["pylontech", "E"]]}, None),
        ({"config_entries": ["E"], "identifiers": [["pylontech", "E_module_sn_PPTAH02"]]}, (0, 2)),
        ({"config_entries": ["E"], "identifiers": [["pylontech", "E_module_1_3"]]}, (1, 3)),
        # A barcode the truth does not know: the name says where the module sits.
        (
            {
                "config_entries": ["E"],
                "identifiers": [["pylontech", "E_module_sn_OTHER"]],
                "name": "Bank 2 group 1 module 4",
            },
            (1, 4),
        ),
        ({"config_entries": ["E"], "identifiers": [["other", "E"]], "name": "Router"}, "?"),
    ],
)
def test_device_position(device: dict[str, object], place: object) -> None:
    """Bank, module by barcode, module by position, by name, or unknown."""
    assert sc.device_position(device, SERIALS) == place


def test_inventory_places_entities_on_bank_and_modules() -> None:
    """Entities are found by entry, translation key and device, with their states."""
    registry = [
        {
            "platform": "pylontech",
            "entity_id": "sensor.bank_cycles",
            "translation_key": "cycles",
            "config_entry_id": "E",
            "device_id": "dev-bank",
        },
        {
            "platform": "pylontech",
            "entity_id": "sensor.module_2_cycles",
            "translation_key": "cycles",
            "config_entry_id": "E",
            "device_id": "dev-m2",
        },
        {
            "platform": "pylontech",
            "entity_id": "sensor.other_entry_cycles",
            "translation_key": "cycles",
            "config_entry_id": "F",
            "device_id": "dev-f2",
        },
        {
            "platform": "demo",
            "entity_id": "sensor.demo",
            "translation_key": "cycles",
            "config_entry_id": "E",
            "device_id": "dev-bank",
        },
    ]
    devices = [
        {"id": "dev-bank", "config_entries": ["E"], "identifiers": [["pylontech", "E"]]},
        {
            "id": "dev-m2",
            "config_entries": ["E"],
            "identifiers": [["pylontech", "E_module_sn_PPTAH02"]],
        },
        {
            "id": "dev-f2",
            "config_entries": ["F"],
            "identifiers": [["pylontech", "F_module_sn_PPTAH02"]],
        },
    ]
    states = [
        {"entity_id": "sensor.module_2_cycles", "state": "221"},
        {"entity_id": "sensor.bank_cycles", "state": "unavailable"},
    ]
    truth = {"modules": [{"index": 2, "group": 0, "serial_number": "PPTAH02", "cycles": 221}]}

    inventory = sc.Inventory.build(registry, devices, states, truth)
    module = inventory.one("E", "cycles", module=(0, 2))

    assert module is not None
    assert (module.entity_id, module.number) == ("sensor.module_2_cycles", 221.0)
    bank = inventory.one("E", "cycles")
    assert bank is not None
    assert (bank.entity_id, bank.number) == ("sensor.bank_cycles", None)
    assert [e.entity_id for e in inventory.find("E", any_module=True)] == ["sensor.module_2_cycles"]
    assert inventory.modules("F") == [(0, 2)]
    assert sc.truth_module(truth, (0, 2)) == truth["modules"][0]


def test_summary_counts_and_names_the_first_failure() -> None:
    """The closing table says which check failed and why, first reason first."""
    passed = sc.CheckResult("a", "first")
    failed = sc.CheckResult("b", "second")
    failed.note("context")
    failed.fail("shown 37 A, truth 148 A")
    failed.fail("another")
    skipped = sc.CheckResult("c", "third")
    skipped.skip("no console entry")

    lines = sc.summary_lines([passed, failed, skipped])

    assert lines[0] == "SUMMARY: 1 PASS, 1 FAIL, 1 SKIP"
    assert "FAIL: shown 37 A, truth 148 A" in lines[3]
    assert len(lines) == 5
