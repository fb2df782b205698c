"""A small synchronous rtnetlink client for the ADD/DEL hot path.

pyroute2 runs every request through an asyncio loop and a generic message compiler, ~0.5 ms of
Python per request; a pod's wiring takes ~13 requests, so the agent spent more time in the library
than the kernel spent on the work. This module packs the handful of messages the hot path needs with
``struct`` and waits for each ACK on a plain netlink socket. Queries (CHECK, GC, start-up) stay on
pyroute2.

Ownership rule: an :class:`Rtnl` belongs to one thread; its socket lives in the network namespace the
thread was in when it was created (see :func:`podnet.datapath.netns.entered`).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
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

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU = 1, 3, 4
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
        self.seq += 1
        seq = self.seq
        header = _HDR.pack(_HDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
        self.sock.sendto(header + body, (0, 0))
        replies: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, mflags, mseq, _ = _HDR.unpack_from(data, offset)
                payload = data[offset + _HDR.size : offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code == 0:
                        return replies
                    raise OSError(-code, self._error_text(-code, mflags, payload))
                if kind == NLMSG_DONE:
                    return replies
                replies.append((kind, payload))

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

    def add_veth(self, name: str, mac: str, mtu: int, peer: str, peer_mac: str, peer_netns_fd: int) -> None:
        """Create a veth pair in one message, the peer born in another namespace (both down: a veth
        cannot come up before its peer is attached, the kernel answers ENOTCONN)."""
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
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def set_link(self, index: int, up: bool = True, alias: str | None = None) -> None:
        extra = attr(IFLA_IFALIAS, cstr(alias)) if alias is not None else b""
        self.request(RTM_NEWLINK, 0, ifinfo(index, IFF_UP if up else 0, IFF_UP) + extra)

    def del_link(self, name: str) -> None:
        self.request(RTM_DELLINK, 0, ifinfo() + attr(IFLA_IFNAME, cstr(name)))

    # --- addresses and routes ---------------------------------------------------------------------

    def replace_addr(self, index: int, address: str, prefixlen: int, scope: int = 0, flags: int = 0) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        raw = socket.inet_pton(family, address)
        body = _IFADDR.pack(family, prefixlen, flags & 0xFF, scope, index)
        body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw) + attr(IFA_FLAGS, u32(flags))
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, body)

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
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        body = _RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, proto, scope, RTN_UNICAST, 0)
        if dst_len:
            body += attr(RTA_DST, socket.inet_pton(family, dst))
        body += attr(RTA_OIF, u32(oif))
        if gateway is not None:
            body += attr(RTA_GATEWAY, socket.inet_pton(family, gateway))
        if prefsrc is not None:
            body += attr(RTA_PREFSRC, socket.inet_pton(family, prefsrc))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body)
