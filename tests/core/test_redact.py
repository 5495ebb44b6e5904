"""Redaction for support data: gateway hosts and serials go, everything else stays."""

from __future__ import annotations

import pytest

from custom_components.pylontech.core.redact import (
    REDACTED,
    hosts_of,
    redact,
    redact_hosts,
    secret_forms,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "socket://192.168.1.40:4001: connection refused by the gateway",
            f"socket://{REDACTED}:4001: connection refused by the gateway",
        ),
        ("rfc2217://[fe80::1]:2217: timed out", f"rfc2217://{REDACTED}:2217: timed out"),
        ("tcp://gw.lan:23 lost", f"tcp://{REDACTED}:23 lost"),
        (
            "reconnecting in 2 s (last error: socket://10.0.0.7:8899: closed)",
            f"reconnecting in 2 s (last error: socket://{REDACTED}:8899: closed)",
        ),
        ("CAN socketcand at 10.0.0.9 refused", f"CAN socketcand at {REDACTED} refused"),
        ("gw.example.net:4001: host name not found", f"{REDACTED}:4001: host name not found"),
        ("peer 2001:db8::2:1 reset", f"peer {REDACTED} reset"),
    ],
)
def test_hosts_are_redacted(text: str, expected: str) -> None:
    """URLs keep scheme and port; IP literals and dotted names before a port go."""
    assert redact_hosts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01 12:34:56 pwr 1",  # console time column
        "firmware V2.3 main line 0.6.9",
        "/dev/serial/by-id/usb-FTDI_FT232R_A50285BI-if00-port0",
        "(1718000000.123) can0 351#1402E803E8031E02",
        "~20024642E00202FD33",
        "mac aa:bb:cc:dd:ee:ff",
        "Power Volt Curr Tempr Tlow Thigh",
    ],
)
def test_other_text_is_kept(text: str) -> None:
    """Times, versions, device paths, frames and MAC-like strings are not hosts."""
    assert redact_hosts(text) == text


def test_configured_single_label_hosts_are_redacted() -> None:
    """A gateway named without a domain is known from the settings and found anywhere."""
    hosts = hosts_of(["socket://ser2net:3333", "/dev/ttyUSB0", None, "Gateway"])
    assert hosts == {"ser2net", "Gateway"}
    assert redact_hosts("ser2net: timed out; gateway said no", hosts) == (
        f"{REDACTED}: timed out; {REDACTED} said no"
    )
    assert redact_hosts("ser2netd is another word", hosts) == "ser2netd is another word"


def test_redact_walks_structures_and_hex_serials() -> None:
    """Keys and values, nested; a serial goes in plain and hex form, keeping the length."""
    serial = "HPTBH02240A01235"
    hex_serial = serial.encode().hex().upper()
    data = {
        "url": "socket://192.168.1.40:4001",
        "traffic": [f"~20024693...{hex_serial}...", f"Barcode : {serial}"],
        "socket://192.168.1.40:4001": {"count": 3},
        "ok": True,
    }
    result = redact(data, secrets=secret_forms([serial, "abc", None]))
    assert result["url"] == f"socket://{REDACTED}:4001"
    assert result["traffic"] == [f"~20024693...{'*' * 32}...", f"Barcode : {'*' * 16}"]
    assert result[f"socket://{REDACTED}:4001"] == {"count": 3}
    assert result["ok"] is True
    assert "abc" not in secret_forms(["abc"])  # too short to be a serial


def test_serial_proxy_ports_keep_their_fixed_host_and_lose_the_adapter_serial() -> None:
    """An ESPHome proxy URL names a config entry: only the adapter's serial number is hidden."""
    url = "esphome-hass://esphome/01JESPHOMEENTRY000000000?port_serial_number=A10KXYZ9&port_name=RS485"
    hosts = hosts_of([url])
    assert hosts == set()
    text = f"could not open {url}: the esphome device is offline"
    shown = redact_hosts(text, hosts)
    assert "A10KXYZ9" not in shown
    assert shown == (
        "could not open esphome-hass://esphome/01JESPHOMEENTRY000000000"
        f"?port_serial_number={REDACTED}&port_name=RS485: the esphome device is offline"
    )
