"""``python -m podnet.datapath.ebpf``: compile the tc programs now (at install time); prints the object's path."""

from .build import ensure_object

print(ensure_object())
