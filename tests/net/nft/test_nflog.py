"""The NFLOG socket against the kernel: batching, a lone message's delay, and losses counted exactly.

Each test gets a network namespace of its own with a table that logs (and drops) UDP to one port on
the way out through ``lo``, and a socket bound to the group there; packets are real datagrams sent
from a socket in that namespace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from podnet.datapath.ebpf.system import in_netns
from podnet.datapath.nft.nflog import NflogError, NflogPacket, NflogSocket, parse_prefix

GROUP = 41
PORT = 9
PREFIX = "pn deny e 5"


@dataclass
class Netns:
    name: str

    def socket(self, **config: int) -> NflogSocket:
        with in_netns(self.name):
            return NflogSocket(GROUP, **config)

    def send(self, n: int) -> None:
        """``n`` datagrams to the logged port, each from a source port of its own."""
        with in_netns(self.name):
            for i in range(n):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", 20000 + i % 40000))
                    with contextlib.suppress(PermissionError):  # the output hook dropped it: EPERM
                        s.sendto(b"x", ("127.0.0.1", PORT))


@pytest.fixture
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.fail("the NFLOG tests need root (network namespaces, nftables, netlink)", pytrace=False)
    name = f"pnnflog-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        table = (
            "table inet nflogtest {\n chain out {\n  type filter hook output priority 0\n"
            f'  udp dport {PORT} log prefix "{PREFIX}" group {GROUP} drop\n }}\n}}\n'
        )
        subprocess.run(["ip", "netns", "exec", name, "nft", "-f", "-"], input=table, text=True, check=True)
        yield Netns(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def read_all(sock: NflogSocket, want: int, timeout: float = 3.0) -> list[NflogPacket]:
    got: list[NflogPacket] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += sock.read(timeout=0.05)
    got += sock.read()  # and nothing more than was sent
    return got


def test_a_burst_arrives_whole_in_a_few_datagrams(netns: Netns) -> None:
    sock = netns.socket()
    try:
        netns.send(2000)  # not read meanwhile: the kernel batches them
        got = read_all(sock, 2000)
        assert len(got) == 2000
        assert [p.seq for p in got] == list(range(got[0].seq or 0, (got[0].seq or 0) + 2000))
        assert {p.prefix for p in got} == {PREFIX} and parse_prefix(PREFIX) is not None
        assert sorted(int.from_bytes(p.payload[20:22], "big") for p in got) == [20000 + i for i in range(2000)]
        assert sock.lost == 0 and sock.overruns == 0
        # ~200 messages of this size fit the kernel's 32 KiB buffer; its default (~3.7 KiB) would need ~90
        assert sock.datagrams <= 20, sock.datagrams
        assert sock.rcvbuf >= 32 << 20  # SO_RCVBUFFORCE took (the kernel doubles it)
    finally:
        sock.close()


def test_a_lone_message_is_sent_by_the_flush_timer(netns: Netns) -> None:
    sock = netns.socket()
    try:
        for _ in range(3):
            sent = time.monotonic()
            netns.send(1)
            got: list[NflogPacket] = []
            while not got and time.monotonic() - sent < 2.0:
                got = sock.read(timeout=0.01)
            waited = time.monotonic() - sent
            assert len(got) == 1
            # the queue threshold is far away: the timer (20 ms) sends it, not the kernel's default (1 s)
            assert waited < 0.5, waited
    finally:
        sock.close()


def test_messages_a_full_socket_cannot_take_are_counted_lost(netns: Netns) -> None:
    # a buffer of the kernel's minimum and one datagram per message: the first few fill it, the rest are lost
    sock = netns.socket(rcvbuf=1, queue_threshold=1)
    try:
        netns.send(50)
        first = read_all(sock, 1)
        assert 1 <= len(first) < 10 and sock.overruns == 1  # ENOBUFS, once per episode
        assert sock.lost == 0  # not known yet: the gap shows when the next message arrives
        netns.send(1)
        second = read_all(sock, 1)
        assert len(second) == 1 and first[0].seq is not None
        assert second[0].seq == first[0].seq + 50
        assert sock.lost == 50 - len(first)  # every message sent is either read or counted lost
    finally:
        sock.close()


def test_a_second_socket_cannot_take_the_group(netns: Netns) -> None:
    sock = netns.socket()
    try:
        with pytest.raises(NflogError, match=f"nflog group {GROUP}: bind"):
            netns.socket()
    finally:
        sock.close()
    netns.socket().close()  # closed: free again
