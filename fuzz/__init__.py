"""Fuzz harnesses for every decoder and the console parser.

``fuzz.targets`` holds the targets (plain ``bytes -> None`` functions that raise
``FuzzFinding`` for anything but the documented ``ProtocolError`` family), usable from
hypothesis (``tests/core/test_fuzz_regressions.py``) and from atheris
(``python -m fuzz.run``, driven by ``scripts/fuzz``). ``fuzz.seeds`` builds the seed
corpus from the reference captures.
"""
