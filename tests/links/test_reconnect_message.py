"""A reconnect wait names its root cause once, on every polled link."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.pylontech.core.errors import GatewayUnreachableError, LinkError
from custom_components.pylontech.core.links import ConsoleLink, ReadPlan, Rs485Link
from custom_components.pylontech.core.links.base import (
    Backoff,
    LinkStats,
    ReconnectPendingError,
    reconnect_pending,
    root_cause,
)


@pytest.mark.parametrize("make_link", [ConsoleLink, Rs485Link])
async def test_reconnect_waits_never_nest(make_link: Any, unused_port: int) -> None:
    """Poll after poll against a dead gateway: one "last error", the root cause, stored once."""
    link = make_link(f"socket://127.0.0.1:{unused_port}")
    messages: list[str] = []
    try:
        for _ in range(4):
            with pytest.raises(LinkError) as err:
                await link.read_bank(ReadPlan())
            messages.append(str(err.value))
    finally:
        await link.close()
    waits = [m for m in messages if "reconnecting in" in m]
    assert len(waits) >= 2  # the backoff (1 s and more) covers the later polls
    for message in waits:
        assert message.count("last error") == 1
        assert message.count("reconnecting in") == 1
        assert "reconnecting in 0 s" not in message
        assert "GatewayUnreachableError" in message
    last = link.stats.last_error or ""
    assert last.startswith("GatewayUnreachableError")
    assert "reconnecting" not in last
    assert link.stats.failed_polls == 4  # the waits are failed polls all the same


def test_root_cause_is_kept_once() -> None:
    """Even a cause that already quotes a wait is cut back to its root."""
    stats = LinkStats()
    stats.note_error(GatewayUnreachableError("socket://gw:1: connection refused by the gateway"))
    backoff = Backoff()
    backoff.failed(now=0.0)
    first = reconnect_pending("socket://gw:1", backoff, stats)
    stats.note_error(first)
    second = reconnect_pending("socket://gw:1", backoff, stats)
    assert isinstance(second, ReconnectPendingError)
    assert str(second).count("last error") == 1
    assert (
        stats.last_error
        == "GatewayUnreachableError: socket://gw:1: connection refused by the gateway"
    )
    nested = "LinkError: x: reconnecting in 1 s (last error: LinkError: y (last error: z))"
    stats.note_error(nested)
    assert stats.last_error == root_cause(nested) == "LinkError: x: reconnecting in 1 s"
