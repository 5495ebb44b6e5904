"""RS232 console shell over TCP (``pylon>``), byte-compatible with the public captures.

Input lines end with CR, LF or CR LF. Each command is echoed, then ``@``, the payload,
``Command completed successfully``, ``$$`` and the prompt (see ``console_render``). ``log``
pauses at the pager prompt; Enter shows the next page, any other key ends the listing.
``getpwr``, ``ci`` and ``help`` are answered too (formats after the public captures,
docs/protocol-notes.md §3.5). Anything not understood gets ``Unknown command '...' - try 'help'``. Every command line is
recorded (``commands``). With the ``silent`` fault the shell ignores everything until the
1200-baud wake-up frame arrives (answered with a protocol frame), as old firmware does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import re

from custom_components.pylontech.core.protocol import rs485
from custom_components.pylontech.core.protocol.console import WAKE_UP_FRAME

from . import console_render as render
from .bank import SimulatedBank
from .faults import LinkFault
from .server_base import READ_CHUNK, SimServer

PROMPTS = ("pylon>", "pylon_debug>", "PYTES>")
MAX_LINE = 256  # longer input lines are discarded (bounded buffer)
MAX_LOG_PAGES = 8
_MODULE_COMMAND = re.compile(r"(pwr|bat|info|stat|soh)(?:\s+(\d{1,3}))?")


@dataclass(frozen=True, slots=True)
class RecordedCommand:
    """One command line the console received."""

    time: float
    text: str


class ConsoleServer(SimServer):
    """The console port of the master battery."""

    link = "console"

    def __init__(
        self,
        bank: SimulatedBank,
        *,
        prompt: str = "pylon>",
        layout: str | None = None,
        **kwargs: object,
    ) -> None:
        """``prompt``: ``pylon>``/``pylon_debug>``/``PYTES>``; ``layout`` forces ``pwr`` A/B/C."""
        super().__init__(bank, **kwargs)  # type: ignore[arg-type]
        if layout is not None and layout not in ("A", "B", "C"):
            raise ValueError("layout must be A, B or C")
        self.prompt = prompt
        self.layout = layout
        self.wake_ups = 0

    @property
    def commands(self) -> list[str]:
        """Every command line received (bounded to the last ``MAX_RECORDS``)."""
        return [record.text for record in self.recorded]

    @property
    def silent(self) -> bool:
        """True while the console waits for the wake-up frame."""
        return self.bank.faults.link_fault(self.link, LinkFault.SILENT) is not None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Line discipline: CR, LF or CR LF end a command; overlong lines are dropped."""
        loop = asyncio.get_running_loop()
        buffer = bytearray()
        skip_lf = False
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            self.bytes_in += len(data)
            if self.take_fault(LinkFault.WRONG_BAUD):
                # Mis-clocked both ways: the shell understands nothing, the echo is noise.
                buffer.clear()
                await self.send(writer, self.garbage(max(2, len(data) // 2)))
                continue
            if self.silent:
                buffer += data
                found = buffer.find(WAKE_UP_FRAME)
                if found < 0:
                    # Keep only a possible frame prefix: bounded, and noise never answers.
                    del buffer[: max(0, len(buffer) - len(WAKE_UP_FRAME))]
                    continue
                self.wake_ups += 1
                self.bank.faults.clear_link_fault(self.link, LinkFault.SILENT)
                data = bytes(buffer[found + len(WAKE_UP_FRAME) :])  # e.g. a CR LF sent along
                buffer.clear()
                # The protocol-mode reply (normal RTN, empty INFO) before the switch.
                await self.send(writer, rs485.encode_frame(0x20, 0x01, 0x46, 0x00, b""))
            for byte in data:
                if byte in (0x0D, 0x0A):
                    if byte == 0x0A and skip_lf:
                        skip_lf = False
                        continue
                    skip_lf = byte == 0x0D
                    line = buffer.decode("latin-1")
                    buffer.clear()
                    if not await self._command(line, reader, writer, loop.time()):
                        return
                    continue
                skip_lf = False
                if len(buffer) < MAX_LINE:
                    buffer.append(byte)
                else:
                    buffer.clear()  # hostile or noise: forget the line

    async def _command(
        self,
        raw: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        now: float,
    ) -> bool:
        """Run one command line; False when the connection was dropped."""
        text = raw.strip()
        if "~" in text:  # a protocol frame (e.g. the wake-up frame) on an awake shell
            return True
        if not text:
            await self.send(writer, ("\n\r" + self.prompt).encode())
            return True
        self.recorded.append(RecordedCommand(now, text))
        stall = self.stall_seconds()
        if stall is not None:
            await asyncio.sleep(stall)
            return True
        if self.take_fault(LinkFault.DROP):
            writer.close()
            return False
        if text.lower() == "log":
            await self._log(text, reader, writer)
            return True
        answer = self.respond(text)
        await self.send(writer, self._with_faults(answer))
        return True

    def _with_faults(self, answer: bytes) -> bytes:
        if self.take_fault(LinkFault.CHECKSUM) and len(answer) > 32:
            # Line noise: a few characters flipped inside the payload.
            data = bytearray(answer)
            for _ in range(3):
                data[self.rng.randrange(len(data) // 3, len(data) - 10)] = 0xFF
            answer = bytes(data)
        if self.take_fault(LinkFault.TRUNCATE):
            answer = answer[: max(1, len(answer) // 2)]
        if self.take_fault(LinkFault.GARBAGE):
            answer = self.garbage(self.rng.randint(8, 40)) + answer
        return answer

    def respond(self, text: str) -> bytes:
        """The whole answer to a (non-paged) command line."""
        payload = self.payload(text)
        if payload is None:
            return render.frame_unknown(text, text, prompt=self.prompt)
        return render.frame_response(text, payload, prompt=self.prompt)

    def payload(self, text: str) -> list[str] | None:
        """Payload rows of a command, or None for an unknown command."""
        bank = self.bank
        words = text.split()
        command = " ".join(words).lower()
        if command == "time":
            return render.render_time(bank)
        if command == "pwrsys":
            return render.render_pwrsys(bank)
        if command == "help":
            return render.render_help()
        if command == "getpwr":
            return render.render_getpwr(bank) or []
        if command == "ci":
            return render.render_ci(
                bank,
                [
                    ("US0 Rx", self.bytes_in),
                    ("US0 Tx", self.bytes_out),
                    ("US0 Err", 0),
                    ("CAN Rx", 0),
                    ("CAN Tx", 0),
                ],
            )
        match = _MODULE_COMMAND.fullmatch(command)
        if match is None:
            return None
        name, number = match.group(1), match.group(2)
        if name == "pwr" and number is None:
            return render.render_pwr(bank, layout=self.layout)
        index = int(number) if number is not None else 1
        if name == "soh" and number is None:
            return None
        renderer = {
            "pwr": render.render_pwr_detail,
            "bat": render.render_bat,
            "info": render.render_info,
            "stat": render.render_stat,
            "soh": render.render_soh,
        }[name]
        lines = renderer(bank, index)
        # An empty slot answers with an empty payload (the firmware prints nothing useful).
        return lines if lines is not None else []

    async def _log(
        self, text: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        pages = render.render_log_pages(self.bank)[:MAX_LOG_PAGES]
        head = text + "\n\r@" + render.ROW_END
        for number, page in enumerate(pages):
            body = render.ROW_END.join(page)
            if number == len(pages) - 1:
                tail = (
                    render.TRAILER_SEPARATOR + render.SUCCESS + render.TRAILER_SEPARATOR + "$$"
                    + render.TRAILER_SEPARATOR + self.prompt
                )  # fmt: skip
                await self.send(writer, (head + body + tail).encode())
                return
            await self.send(writer, (head + body + render.ROW_END + render.PAGER_PROMPT).encode())
            head = "\r\n"
            key = await reader.read(1)
            if not key:
                return
            self.bytes_in += 1
            if key not in (b"\r", b"\n"):
                break
            if key == b"\r":
                # Swallow the LF of a CR LF so it does not count as a second Enter.
                try:
                    extra = await asyncio.wait_for(reader.read(1), 0.05)
                except TimeoutError:
                    extra = b""
                if extra and extra != b"\n":
                    break
        tail = (
            render.TRAILER_SEPARATOR + render.SUCCESS + render.TRAILER_SEPARATOR + "$$"
            + render.TRAILER_SEPARATOR + self.prompt
        )  # fmt: skip
        await self.send(writer, tail.encode())
