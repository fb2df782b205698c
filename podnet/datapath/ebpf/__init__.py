"""eBPF policy datapath: tc programs in C (``podnet.bpf.c``), libbpf via ctypes, typed map codecs."""

from .datapath import EbpfDatapath, Endpoint, SyncStats
from .events import DatapathEvent
from .system import ensure_bpffs

__all__ = ["DatapathEvent", "EbpfDatapath", "Endpoint", "SyncStats", "ensure_bpffs"]
