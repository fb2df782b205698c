"""The hot path's netlink batches against a real kernel, in a throwaway namespace."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from podnet.datapath import rtnl
from podnet.datapath.netns import entered
from tests.net.helpers import netns_add, netns_del, new_suffix, sh


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"pnr-{new_suffix()}"
    netns_add(name)
    try:
        yield name
    finally:
        netns_del(name)


def test_batch_runs_every_message_in_order_and_raises_the_first_error(ns: str) -> None:
    with entered(f"/run/netns/{ns}"):
        conn = rtnl.Rtnl()
    with conn:
        lo = conn.link_index("lo")
        assert lo == 1
        messages = [
            rtnl.set_link_msg(lo, up=True, name="lo"),
            rtnl.replace_addr_msg(lo, "10.1.1.1", 32),
            rtnl.replace_route_msg("10.9.0.0", 16, 999),  # no such interface
            rtnl.replace_addr_msg(lo, "10.1.1.2", 32),
        ]
        with pytest.raises(OSError) as caught:
            conn.batch(messages)
        assert caught.value.errno == errno.ENODEV
        # the kernel went on after the failed message, and the socket holds no stray ACK
        assert conn.link_index("lo") == 1
        assert conn.batch([rtnl.replace_addr_msg(lo, "10.1.1.3", 32)]) == [[]]
    out = sh("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "lo").stdout
    assert all(f"{a}/32" in out for a in ("10.1.1.1", "10.1.1.2", "10.1.1.3"))


def test_veth_creation_echoes_both_indexes(ns: str) -> None:
    peer_ns = f"{ns}-p"
    netns_add(peer_ns)
    try:
        fd = os.open(f"/run/netns/{peer_ns}", os.O_RDONLY)
        try:
            with entered(f"/run/netns/{ns}"):
                conn = rtnl.Rtnl()
            with conn:
                host, peer = conn.add_veth("pnrtest0", "02:00:00:00:00:01", 1400, "eth0", "02:00:00:00:00:02", fd)
                assert host == conn.link_index("pnrtest0")
        finally:
            os.close(fd)
        with entered(f"/run/netns/{peer_ns}"):
            pconn = rtnl.Rtnl()
        with pconn:
            assert peer == pconn.link_index("eth0")
        # a wrong index with the name pinned fails instead of configuring another link
        with entered(f"/run/netns/{peer_ns}"):
            again = rtnl.Rtnl()
        with again, pytest.raises(OSError) as caught:
            again.batch([rtnl.set_link_msg(1, up=True, name="eth0")])  # 1 is lo
        assert caught.value.errno == errno.EEXIST
    finally:
        netns_del(peer_ns)
