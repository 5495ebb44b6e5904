"""Pylontech protocol core: links, codecs, the bank model and the fault rules.

Nothing in this package imports ``homeassistant``; it is usable (and tested) on
its own. Modules here use relative imports only, so the package can also be
loaded standalone (see ``scripts/decode``).
"""
