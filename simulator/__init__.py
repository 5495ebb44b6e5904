"""Battery-bank simulator: a Pylontech LV bank served over RS485, console and CAN (SLCAN).

Used by the tests, the benchmarks and ``scripts/develop``. Everything listens on 127.0.0.1.

    from simulator import BatterySimulator
    async with BatterySimulator(modules=4, model="US3000C", seed=1) as sim:
        sim.rs485_url, sim.console_url, sim.can_channel     # socket://127.0.0.1:PORT
        sim.faults.inject_protection("charge_over_current", module=2)
        truth = sim.snapshot()                               # a model Bank

Command line: ``python -m simulator --modules 4 --model US3000C``.
"""

from __future__ import annotations

from .bank import Limits, SimulatedBank
from .can_server import CanServer
from .console_server import ConsoleServer
from .control import ControlServer
from .faults import FaultInjector, LinkFault
from .models import MODELS, ModelSpec, model_spec
from .rs485_server import Rs485Server
from .simulator import BatterySimulator, Ports

__all__ = [
    "MODELS",
    "BatterySimulator",
    "CanServer",
    "ConsoleServer",
    "ControlServer",
    "FaultInjector",
    "Limits",
    "LinkFault",
    "ModelSpec",
    "Ports",
    "Rs485Server",
    "SimulatedBank",
    "model_spec",
]
