"""A small synchronous rtnetlink client for the ADD/DEL hot path.

pyroute2 runs every request through an asyncio loop and a generic message compiler, ~0.5 ms of
Python per request; a pod's wiring takes ~13 requests, so the agent spent more time in the library
than the kernel spent on the work. This module packs the handful of messages the hot path needs with
``struct`` on a plain netlink socket. Requests that belong together go out as one datagram
(:meth:`Rtnl.batch`: the kernel runs the messages of a datagram in order and ACKs each), and the veth
pair's creation is echoed back (``NLM_F_ECHO``) with both ends' interface indexes, so a pod's wiring
costs three round trips instead of fourteen. Queries (CHECK, GC, start-up) stay on pyroute2.

Ownership rule: an :class:`Rtnl` belongs to one thread; its socket lives in the network namespace the
thread was in when it was created (see :func:`podnet.datapath.netns.entered`).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable, Sequence

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ECHO = 0x8
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # in an NLMSG_ERROR: the request was not echoed back
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR: extended-ack attributes follow

NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK = 1, 3, 4, 5
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD = 18, 20, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC = 1, 4, 5, 7
NLMSGERR_ATTR_MSG = 1

IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTN_UNICAST = 1

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NLA = struct.Struct("=HH")
_U32 = struct.Struct("=I")

# One request: (message type, extra flags, body). NLM_F_REQUEST | NLM_F_ACK are always added.
Message = tuple[int, int, bytes]


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def attrs(*items: bytes) -> bytes:
    return b"".join(items)


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def _parse_attrs(data: bytes) -> Iterable[tuple[int, bytes]]:
    offset = 0
    while offset + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size:
            return
        yield kind & 0x3FFF, data[offset + _NLA.size : offset + length]
        offset += (length + 3) & ~3


class Rtnl:
    """Requests with ACKs over one NETLINK_ROUTE socket; errors raise OSError with the kernel's message."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request, return the replies (type, payload) that came before its ACK."""
        return self.batch([(msg_type, flags, body)])[0]

    def batch(self, messages: Sequence[Message]) -> list[list[tuple[int, bytes]]]:
        """Send ``messages`` in one datagram and wait for every ACK; the replies per message, in order.

        The kernel runs the messages in order and does not stop at a failed one, so every ACK is read
        before the first error is raised (OSError with the kernel's message), leaving the socket clean.
        """
        first = self.seq + 1
        out = []
        for msg_type, flags, body in messages:
            self.seq += 1
            out.append(_HDR.pack(_HDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0))
            out.append(body)
        self.sock.sendto(b"".join(out), (0, 0))
        replies: dict[int, list[tuple[int, bytes]]] = {seq: [] for seq in range(first, self.seq + 1)}
        pending = set(replies)
        error: OSError | None = None
        while pending:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, mflags, mseq, _ = _HDR.unpack_from(data, offset)
                payload = data[offset + _HDR.size : offset + length]
                offset += (length + 3) & ~3
                if mseq not in pending:
                    continue
                if kind == NLMSG_ERROR:
                    pending.discard(mseq)
                    (code,) = struct.unpack_from("=i", payload)
                    if code != 0 and error is None:
                        error = OSError(-code, self._error_text(-code, mflags, payload))
                elif kind == NLMSG_DONE:
                    pending.discard(mseq)
                else:
                    replies[mseq].append((kind, payload))
        if error is not None:
            raise error
        return [replies[seq] for seq in range(first, self.seq + 1)]

    @staticmethod
    def _error_text(errno_: int, flags: int, payload: bytes) -> str:
        text = os.strerror(errno_)
        if flags & NLM_F_ACK_TLVS:
            start = 4 + (_HDR.size if flags & NLM_F_CAPPED else struct.unpack_from("=I", payload, 4)[0])
            for kind, value in _parse_attrs(payload[start:]):
                if kind == NLMSGERR_ATTR_MSG:
                    message = value.rstrip(b"\0").decode(errors="replace")
                    text += f" ({message})"
        return text

    # --- links ------------------------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        try:
            replies = self.request(RTM_GETLINK, 0, ifinfo() + attr(IFLA_IFNAME, cstr(name)))
        except OSError as exc:
            if exc.errno == 19:  # ENODEV
                return None
            raise
        for kind, payload in replies:
            if kind == RTM_NEWLINK:
                return int(_IFINFO.unpack_from(payload)[2])
        return None

    def add_veth(
        self, name: str, mac: str, mtu: int, peer: str, peer_mac: str, peer_netns_fd: int
    ) -> tuple[int | None, int | None]:
        """Create a veth pair in one message, the peer born in another namespace (both down: a veth
        cannot come up before its peer is attached, the kernel answers ENOTCONN).

        Returns (index of ``name``, index of ``peer`` in its namespace) from the kernel's echo of the
        new link (its IFLA_LINK is the peer's index); (None, None) if the kernel did not echo it.
        """
        peer_body = ifinfo() + attrs(
            attr(IFLA_IFNAME, cstr(peer)),
            attr(IFLA_ADDRESS, mac_bytes(peer_mac)),
            attr(IFLA_MTU, u32(mtu)),
            attr(IFLA_NET_NS_FD, u32(peer_netns_fd)),
        )
        linkinfo = attr(IFLA_INFO_KIND, cstr("veth")) + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_body))
        body = ifinfo() + attrs(
            attr(IFLA_IFNAME, cstr(name)),
            attr(IFLA_ADDRESS, mac_bytes(mac)),
            attr(IFLA_MTU, u32(mtu)),
            attr(IFLA_LINKINFO, linkinfo),
        )
        for kind, payload in self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, body):
            if kind == RTM_NEWLINK:
                return echoed_indexes(payload)
        return None, None

    def set_link(self, index: int, up: bool = True, alias: str | None = None) -> None:
        self.request(*set_link_msg(index, up=up, alias=alias))

    def del_link(self, name: str) -> None:
        self.request(RTM_DELLINK, 0, ifinfo() + attr(IFLA_IFNAME, cstr(name)))

    # --- addresses and routes ---------------------------------------------------------------------

    def replace_addr(self, index: int, address: str, prefixlen: int, scope: int = 0, flags: int = 0) -> None:
        self.request(*replace_addr_msg(index, address, prefixlen, scope=scope, flags=flags))

    def replace_route(
        self,
        dst: str,
        dst_len: int,
        oif: int,
        *,
        gateway: str | None = None,
        scope: int = 0,
        proto: int = 4,  # RTPROT_STATIC
        prefsrc: str | None = None,
    ) -> None:
        self.request(*replace_route_msg(dst, dst_len, oif, gateway=gateway, scope=scope, proto=proto, prefsrc=prefsrc))


def echoed_indexes(payload: bytes) -> tuple[int | None, int | None]:
    """(ifindex, IFLA_LINK) of an RTM_NEWLINK payload; IFLA_LINK is None when absent."""
    index = int(_IFINFO.unpack_from(payload)[2])
    for kind, value in _parse_attrs(payload[_IFINFO.size :]):
        if kind == IFLA_LINK and len(value) >= 4:
            return index, int(_U32.unpack_from(value)[0])
    return index, None


def set_link_msg(index: int, *, up: bool = True, alias: str | None = None, name: str | None = None) -> Message:
    """Bring a link up (or down), optionally set its alias. With ``name``, the kernel also checks the
    index: a link of that index with another name would be renamed to ``name``, which fails with
    EEXIST while ``name`` exists, so a wrong index cannot go unnoticed."""
    extra = attr(IFLA_IFALIAS, cstr(alias)) if alias is not None else b""
    if name is not None:
        extra += attr(IFLA_IFNAME, cstr(name))
    return RTM_NEWLINK, 0, ifinfo(index, IFF_UP if up else 0, IFF_UP) + extra


def replace_addr_msg(index: int, address: str, prefixlen: int, *, scope: int = 0, flags: int = 0) -> Message:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    raw = socket.inet_pton(family, address)
    body = _IFADDR.pack(family, prefixlen, flags & 0xFF, scope, index)
    body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw) + attr(IFA_FLAGS, u32(flags))
    return RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, body


def replace_route_msg(
    dst: str,
    dst_len: int,
    oif: int,
    *,
    gateway: str | None = None,
    scope: int = 0,
    proto: int = 4,  # RTPROT_STATIC
    prefsrc: str | None = None,
) -> Message:
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    body = _RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, proto, scope, RTN_UNICAST, 0)
    if dst_len:
        body += attr(RTA_DST, socket.inet_pton(family, dst))
    body += attr(RTA_OIF, u32(oif))
    if gateway is not None:
        body += attr(RTA_GATEWAY, socket.inet_pton(family, gateway))
    if prefsrc is not None:
        body += attr(RTA_PREFSRC, socket.inet_pton(family, prefsrc))
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body
