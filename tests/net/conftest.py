"""Privileged tests: they need root and a kernel with BPF, and fail (never skip) without them."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/net need root (network namespaces, tc, eBPF): run them as root", pytrace=False)
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.fail("tests/net need a kernel with BTF (/sys/kernel/btf/vmlinux)", pytrace=False)
