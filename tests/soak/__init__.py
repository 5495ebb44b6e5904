"""Fault-injection soak of the Home Assistant integration against the simulator."""
