"""``python -m simulator``: run a simulated bank until Ctrl-C.

    python -m simulator --modules 4 --model US3000C --rs485-port 5000 --console-port 5001 \
        --can-port 5002 --control-port 5003 [--baud 115200] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
import signal
import sys

from .models import MODELS
from .simulator import BatterySimulator


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Simulated Pylontech LV battery bank on RS485, console and CAN (SLCAN) over TCP.",
    )
    parser.add_argument("--modules", type=int, default=4, help="number of modules (1-32)")
    parser.add_argument(
        "--model",
        default="US3000C",
        help=f"model of every module, or a comma list master first ({', '.join(MODELS)})",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--group", type=int, default=0, help="RS485 group (DIP 2-4), 0 = single")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rs485-port", type=int, default=0, help="0 = ephemeral")
    parser.add_argument("--console-port", type=int, default=0)
    parser.add_argument("--can-port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--baud", type=int, default=None, help="pace RS485 writes at this baud")
    parser.add_argument("--console-baud", type=int, default=None)
    parser.add_argument("--prompt", default="pylon>", choices=("pylon>", "pylon_debug>", "PYTES>"))
    parser.add_argument("--layout", default=None, choices=("A", "B", "C"), help="console pwr")
    parser.add_argument("--can-firmware", default="v1.2", choices=("v1.2", "v1.3"))
    parser.add_argument("--can-period", type=float, default=1.0)
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated s per real s")
    parser.add_argument("--silent-console", action="store_true", help="needs the wake-up frame")
    return parser


async def run(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    """Start, print the ports, wait for ``stop`` (or a signal), stop cleanly."""
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    modules: int | list[str] = models if len(models) > 1 else args.modules
    simulator = BatterySimulator(
        modules,
        models[0] if models else "US3000C",
        seed=args.seed,
        group=args.group,
        host=args.host,
        rs485_port=args.rs485_port,
        console_port=args.console_port,
        can_port=args.can_port,
        control_port=args.control_port,
        baud=args.baud,
        console_baud=args.console_baud,
        prompt=args.prompt,
        console_layout=args.layout,
        can_firmware=args.can_firmware,
        can_period=args.can_period,
        time_scale=args.time_scale,
    )
    if args.silent_console:
        simulator.faults.inject_link_fault("console", "silent")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await simulator.start()
    try:
        ports = simulator.ports
        snapshot = simulator.snapshot()
        print(
            f"simulating {len(snapshot.modules)} x {snapshot.model} (seed {args.seed})\n"
            f"rs485   socket://{args.host}:{ports.rs485}\n"
            f"console socket://{args.host}:{ports.console}\n"
            f"can     socket://{args.host}:{ports.can}  (python-can interface 'slcan')\n"
            f"control {args.host}:{ports.control}  (type 'help')",
            flush=True,
        )
        await stop.wait()
    finally:
        await simulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    print("stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
