"""Hide where a bank is reached and who it is, in anything shown to support.

One place for the rules, so settings, link state, error texts and raw traffic are all
treated alike:

* gateway hosts: the host of every URL (``socket://host:port`` keeps its scheme and
  port; an ESPHome serial-proxy port keeps its fixed ``esphome`` and loses only the adapter
  serial number among its filters), IPv4 and IPv6 literals, dotted host names before a port, and the exact host
  names an entry is configured with (these may be single labels such as ``gateway``);
* serial numbers and barcodes: every known one, plain and hex-encoded (RS485 frames
  carry them as hex ASCII), replaced by ``*`` of the same length so a frame keeps its
  layout.

Local device paths (``/dev/serial/by-id/...``) are kept: they help support and say
nothing about the network.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
import ipaddress
import re
import string
from typing import Any, Final
from urllib.parse import urlsplit

REDACTED: Final = "**REDACTED**"

#: Shortest text treated as a serial; replacing shorter ones would shred unrelated data.
MIN_SECRET_LENGTH: Final = 4

# scheme://host: the host runs to the port colon, a path, white space or a quote.
_URL_HOST = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,15})://(\[[^\]\s]*\]|[^\s/:'\"<>()\[\],]+)")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Candidates only: ipaddress decides (so "12:34:56" in a console time column stays).
_IPV6 = re.compile(r"(?<![\w:.*])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
# A dotted host name right before ":port" ("gw.example.net:4001").
_DOTTED_HOST_PORT = re.compile(
    r"(?<![\w.@/*-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z][A-Za-z0-9-]{0,62}(?=:\d{1,5}\b)"
)


# Home Assistant's ESPHome serial-proxy ports name a config entry, not a network host
# ("esphome-hass://esphome/<entry id>?port_name=..."): their fixed "host" is no secret.
_SERIAL_PROXY_SCHEME: Final = "esphome-hass"
# A filter of a proxy URL naming the USB adapter's own serial number.
_PROXY_SERIAL_FILTER = re.compile(r"(?i)([?&][a-z_]*serial[a-z_]*=)[^&\s'\"]+")


def host_of(value: str | None) -> str | None:
    """Return the host a setting names: a URL's host, or the value if it is a bare host."""
    if not value or value.startswith(("/", f"{_SERIAL_PROXY_SCHEME}://")):
        return None
    if "://" in value:
        try:
            return urlsplit(value).hostname
        except ValueError:
            return None
    return value.strip().strip("[]") or None


def hosts_of(values: Iterable[str | None]) -> set[str]:
    """Return the hosts of several settings (URLs, host names, CAN channels)."""
    return {host for value in values if (host := host_of(value))}


def _ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    if not any(c in string.hexdigits for c in text):
        return text  # a bare "::" is punctuation, not an address
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    return REDACTED


def _ipv4(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv4Address(match.group(0))
    except ValueError:
        return match.group(0)
    return REDACTED


def _url_host(match: re.Match[str]) -> str:
    if match.group(1).lower() == _SERIAL_PROXY_SCHEME:
        return match.group(0)
    return f"{match.group(1)}://{REDACTED}"


def redact_hosts(text: str, hosts: Collection[str] = ()) -> str:
    """``text`` with every gateway host replaced by ``**REDACTED**``."""
    if "://" in text:
        text = _URL_HOST.sub(_url_host, text)
        if f"{_SERIAL_PROXY_SCHEME}://" in text:
            text = _PROXY_SERIAL_FILTER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    for host in sorted(hosts, key=len, reverse=True):
        if len(host) < 2:
            continue
        text = re.sub(
            rf"(?<![\w.-]){re.escape(host)}(?![\w-])", REDACTED, text, flags=re.IGNORECASE
        )
    if "." in text:
        text = _DOTTED_HOST_PORT.sub(REDACTED, text)
        text = _IPV4.sub(_ipv4, text)
    if "::" in text or text.count(":") >= 2:
        text = _IPV6.sub(_ipv6, text)
    return text


def secret_forms(values: Iterable[str | None]) -> list[str]:
    """Every serial-like value in plain and hex-encoded form, longest first."""
    forms: set[str] = set()
    for value in values:
        value = (value or "").strip()
        if len(value) < MIN_SECRET_LENGTH:
            continue
        raw = value.encode("ascii", "ignore")
        forms.update((value, raw.hex().upper(), raw.hex()))
    return sorted(forms, key=len, reverse=True)


def redact_secrets(text: str, secrets: Collection[str]) -> str:
    """``text`` with every form of every secret replaced by ``*`` of the same length."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "*" * len(secret))
    return text


def redact(data: Any, *, hosts: Collection[str] = (), secrets: Collection[str] = ()) -> Any:
    """Copy a JSON-like structure with hosts and secrets redacted in every string.

    Keys are redacted too (a traffic log keyed by URL must not leak its host). Pass
    ``secrets`` through ``secret_forms`` first.
    """
    if isinstance(data, str):
        return redact_secrets(redact_hosts(data, hosts), secrets)
    if isinstance(data, dict):
        return {
            redact(key, hosts=hosts, secrets=secrets): redact(value, hosts=hosts, secrets=secrets)
            for key, value in data.items()
        }
    if isinstance(data, (list, tuple, set, frozenset)):
        return [redact(value, hosts=hosts, secrets=secrets) for value in data]
    return data


__all__ = [
    "REDACTED",
    "host_of",
    "hosts_of",
    "redact",
    "redact_hosts",
    "redact_secrets",
    "secret_forms",
]
