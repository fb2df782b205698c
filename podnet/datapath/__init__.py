"""Kernel datapath: the ``DatapathBackend`` protocol and its netlink implementation (eBPF comes later)."""
