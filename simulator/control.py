"""A small line-based control port: inject and clear faults while links are connected.

Connect with ``nc 127.0.0.1 PORT`` and type ``help``. Every line gets one reply line starting
with ``ok`` or ``error:``. Besides the fault commands of ``FaultInjector.execute`` it knows
``step seconds=S`` (advance the simulation), ``snapshot`` (the truth as JSON) and ``quit``.
"""

from __future__ import annotations

import asyncio
import json

from custom_components.pylontech.core.model import bank_to_dict

from .bank import SimulatedBank
from .server_base import SimServer

MAX_LINE = 512


class ControlServer(SimServer):
    """The control port."""

    link = "control"

    def __init__(self, bank: SimulatedBank, **kwargs: object) -> None:
        """See ``SimServer``."""
        super().__init__(bank, **kwargs)  # type: ignore[arg-type]

    def execute(self, line: str) -> str:
        """One control line to one reply line."""
        words = line.strip().split()
        if words and words[0].lower() == "step":
            seconds = 1.0
            for word in words[1:]:
                key, _, value = word.partition("=")
                if key.lower() == "seconds":
                    try:
                        seconds = float(value)
                    except ValueError:
                        return f"error: bad seconds {value!r}"
            if not 0 <= seconds <= 30 * 86400:
                return "error: seconds must be 0..2592000"
            self.bank.step(seconds)
            return f"ok stepped {seconds:g} s"
        if words and words[0].lower() == "snapshot":
            return "ok " + json.dumps(bank_to_dict(self.bank.snapshot()), sort_keys=True)
        return self.bank.faults.execute(line)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read lines, answer each with one line."""
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                return
            except asyncio.IncompleteReadError:
                return
            if len(raw) > MAX_LINE:
                writer.write(b"error: line too long\n")
                continue
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            self.recorded.append(line)
            if line.lower() in ("quit", "exit"):
                writer.write(b"ok bye\n")
                await writer.drain()
                return
            reply = self.execute(line)
            writer.write(reply.encode() + b"\n")
            await writer.drain()
