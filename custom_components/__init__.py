"""Home Assistant custom integrations: the ``pylontech`` package lives here."""
