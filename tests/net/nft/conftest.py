"""The same routed node as tests/net/ebpf, enforced by the nftables backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.net.ebpf.conftest import Lab, make_lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from make_lab("nft")
