"""The CNI side of podnet: spec types and validation (stdlib only), the plugin shim and its installer.

``protocol`` and ``shim`` import only the standard library (and ``podnet.errors``), because they run
inside the plugin executable started as ``python3 -I -S``. Keep this ``__init__`` empty of imports.
"""
