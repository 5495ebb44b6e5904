"""Home Assistant tests (PHACC) of the Pylontech integration."""
