"""Documented faults and the rules that find them in a bank snapshot."""

from .catalog import (
    FAULTS,
    FAULTS_BY_KEY,
    FaultDefinition,
    FaultFamily,
    FaultKey,
    FixFlow,
    Severity,
    get_fault,
)
from .rules import (
    ActiveFault,
    FaultTracker,
    FaultUpdate,
    FlagChange,
    active_fault_to_dict,
    evaluate,
    render_text,
)

__all__ = [
    "FAULTS",
    "FAULTS_BY_KEY",
    "ActiveFault",
    "FaultDefinition",
    "FaultFamily",
    "FaultKey",
    "FaultTracker",
    "FaultUpdate",
    "FixFlow",
    "FlagChange",
    "Severity",
    "active_fault_to_dict",
    "evaluate",
    "get_fault",
    "render_text",
]
