"""Benchmarks (run through ``scripts/bench``; not part of the test suite).

Each module measures one thing and prints a JSON document on stdout when run as
``python -m bench.<name> --json``; ``scripts/bench`` runs them in the right
environment (the ``bench`` venv for the peers, the ``test`` venv for anything that
needs Home Assistant, python-can or the simulator), merges the results and prints
the table (``bench.report``).
"""
