"""Lab tests need root: they make real namespaces, links and routes. Without root they fail, loudly."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (real network namespaces); run `make test` as root")
