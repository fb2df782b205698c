"""Privileged tests: they need root, and fail (never skip) without it."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/net need root (network namespaces, tc, eBPF): run them as root", pytrace=False)
