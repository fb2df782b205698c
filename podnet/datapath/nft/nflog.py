"""NFLOG over a raw netlink socket: the packets nftables' ``log group N`` statements copy to userspace.

The nftables backend's verdict chains log with a prefix that names the rule and the verdict
(:func:`prefix`); this module binds a netlink socket (``NETLINK_NETFILTER``, subsystem ULOG) to the
group and decodes each message into an :class:`NflogPacket`: prefix, interfaces, the start of the
packet (copy range :data:`COPY_RANGE`) and the instance's sequence number, whose gaps count the
messages the kernel could not deliver (socket buffer full). Parsing is pure (:func:`parse_messages`).

A group has one listener per network namespace: binding a group another socket holds fails (EBUSY).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from podnet.errors import PodnetError

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFLOG_MSG_TYPE = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR, NLMSG_DONE = 2, 3
# config attributes
NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_NLBUFSIZ, NFULA_CFG_TIMEOUT, NFULA_CFG_QTHRESH, NFULA_CFG_FLAGS = (
    1,
    2,
    3,
    4,
    5,
    6,
)
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_UNBIND = 1, 2
NFULNL_COPY_PACKET = 2
NFULNL_CFG_F_SEQ = 1
# packet attributes
NFULA_PACKET_HDR, NFULA_TIMESTAMP, NFULA_IFINDEX_INDEV, NFULA_IFINDEX_OUTDEV = 1, 3, 4, 5
NFULA_PAYLOAD, NFULA_PREFIX, NFULA_SEQ = 9, 10, 12
COPY_RANGE = 128  # enough for an IPv6 header, a few extension headers and the L4 ports and TCP flags
SO_TIMESTAMP = 29
NLMSGHDR = struct.Struct("=IHHII")
NFGENMSG = struct.Struct("!BBH")
NLATTR = struct.Struct("=HH")
PREFIX_TAG = "pn"
MAX_PREFIX = 127  # NF_LOG_PREFIXLEN - 1


class NflogError(PodnetError):
    cni_code = 112


def prefix(kind: str, rule_id: int = 0, direction: str = "") -> str:
    """The log prefix of a podnet chain: ``pn <kind> <direction> <rule id>``, e.g. ``pn allow e 12``.

    ``kind``: allow, audit, deny (a rule's verdict chain), spoof-mac, spoof-ip, no-policy.
    """
    text = " ".join(x for x in (PREFIX_TAG, kind, direction, str(rule_id) if rule_id else "") if x)
    assert len(text) <= MAX_PREFIX
    return text


@dataclass(frozen=True, slots=True)
class LogPrefix:
    kind: str
    direction: str  # "e" (egress), "i" (ingress) or ""
    rule_id: int


@functools.lru_cache(maxsize=4096)
def parse_prefix(text: str) -> LogPrefix | None:
    """The inverse of :func:`prefix`; None for prefixes podnet did not write."""
    parts = text.split()
    if len(parts) < 2 or parts[0] != PREFIX_TAG:
        return None
    direction = parts[2] if len(parts) > 2 and parts[2] in ("e", "i") else ""
    rest = parts[3:] if direction else parts[2:]
    try:
        rule_id = int(rest[0]) if rest else 0
    except ValueError:
        return None
    return LogPrefix(parts[1], direction, rule_id)


@dataclass(frozen=True, slots=True)
class NflogPacket:
    family: int  # 2 (IPv4) or 10 (IPv6)
    prefix: str
    indev: int  # ifindex, 0 if none
    outdev: int
    seq: int | None  # the instance's sequence number (NFULNL_CFG_F_SEQ)
    payload: bytes  # from the network header on, at most COPY_RANGE bytes
    time_ns: int | None = None  # wall clock when logged (the kernel adds it at prerouting, input and forward)


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    off = 0
    while off + NLATTR.size <= len(data):
        length, typ = NLATTR.unpack_from(data, off)
        if length < NLATTR.size:
            break
        out[typ & 0x3FFF] = data[off + NLATTR.size : off + length]
        off += (length + 3) & ~3
    return out


def parse_messages(data: bytes) -> Iterator[NflogPacket]:
    """The NFLOG packet messages in one netlink datagram (other messages are skipped)."""
    off = 0
    while off + NLMSGHDR.size <= len(data):
        length, typ, _flags, _seq, _pid = NLMSGHDR.unpack_from(data, off)
        if length < NLMSGHDR.size:
            break
        body = data[off + NLMSGHDR.size : off + length]
        off += (length + 3) & ~3
        if typ != NFLOG_MSG_TYPE or len(body) < NFGENMSG.size:
            continue
        family, _version, _group = NFGENMSG.unpack_from(body)
        attrs = _attrs(body[NFGENMSG.size :])
        pfx = attrs.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode(errors="replace")
        seq = attrs.get(NFULA_SEQ)
        stamp = attrs.get(NFULA_TIMESTAMP)
        time_ns = None
        if stamp is not None and len(stamp) == 16:
            sec, usec = struct.unpack("!QQ", stamp)
            time_ns = sec * 1_000_000_000 + usec * 1000
        yield NflogPacket(
            family=family,
            prefix=pfx,
            indev=struct.unpack("!I", attrs[NFULA_IFINDEX_INDEV])[0] if NFULA_IFINDEX_INDEV in attrs else 0,
            outdev=struct.unpack("!I", attrs[NFULA_IFINDEX_OUTDEV])[0] if NFULA_IFINDEX_OUTDEV in attrs else 0,
            seq=struct.unpack("!I", seq)[0] if seq is not None and len(seq) == 4 else None,
            payload=attrs.get(NFULA_PAYLOAD, b""),
            time_ns=time_ns,
        )


def _attr(typ: int, value: bytes) -> bytes:
    raw = NLATTR.pack(NLATTR.size + len(value), typ) + value
    return raw + b"\0" * (-len(raw) % 4)


def config_message(group: int, attrs: bytes, seq: int, family: int = 0) -> bytes:
    body = NFGENMSG.pack(family, 0, group) + attrs
    typ = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), typ, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


class NflogSocket:
    """A netlink socket bound to one NFLOG group, in the network namespace it was created in.

    ``queue_threshold`` messages (or ``flush_cs`` hundredths of a second) are batched per datagram.
    ``lost`` counts messages missing from the sequence (the socket's buffer was full).
    """

    def __init__(self, group: int, rcvbuf: int = 8 << 20, queue_threshold: int = 32, flush_cs: int = 2) -> None:
        if not 0 <= group <= 0xFFFF:
            raise NflogError(f"nflog group: {group} is not in 0..65535")
        self.group = group
        self.lost = 0
        self._next_seq: int | None = None
        self._seq = 0
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        try:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root)
            if self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < rcvbuf:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            # SO_TIMESTAMP turns the kernel's packet time stamps on, so messages carry the time of the log
            self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
            self._sock.bind((0, 0))
            self._request(_attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])))
            self._request(
                _attr(NFULA_CFG_MODE, struct.pack("!IBB", COPY_RANGE, NFULNL_COPY_PACKET, 0))
                + _attr(NFULA_CFG_QTHRESH, struct.pack("!I", queue_threshold))
                + _attr(NFULA_CFG_TIMEOUT, struct.pack("!I", flush_cs))
                + _attr(NFULA_CFG_FLAGS, struct.pack("!H", NFULNL_CFG_F_SEQ))
            )
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise

    def _request(self, attrs: bytes) -> None:
        self._seq += 1
        self._sock.send(config_message(self.group, attrs, self._seq))
        while True:
            data = self._sock.recv(65536)
            off = 0
            while off + NLMSGHDR.size <= len(data):
                length, typ, _f, seq, _pid = NLMSGHDR.unpack_from(data, off)
                if typ == NLMSG_ERROR and seq == self._seq:
                    (code,) = struct.unpack_from("=i", data, off + NLMSGHDR.size)
                    if code:
                        what = "bind" if self._seq == 1 else "configure"
                        hint = " (another socket is bound to it)" if -code in (errno.EBUSY, errno.EPERM) else ""
                        raise NflogError(f"nflog group {self.group}: {what}: {os.strerror(-code)}{hint}")
                    return
                off += (max(length, NLMSGHDR.size) + 3) & ~3

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self, timeout: float = 0.0, max_datagrams: int = 256) -> list[NflogPacket]:
        """The messages queued now, at most ``max_datagrams`` datagrams of them (waiting up to ``timeout``
        seconds for the first): bounded, so a flood that outruns the reader never holds it here."""
        out: list[NflogPacket] = []
        if timeout > 0:
            select.select([self._sock], [], [], timeout)
        for _ in range(max_datagrams):
            try:
                data = self._sock.recv(65536)  # a datagram is at most the instance buffer (default 8 KiB)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # overflowed: the sequence gap says how many were lost
                    continue
                raise
            for pkt in parse_messages(data):
                self._count(pkt.seq)
                out.append(pkt)
        return out

    def _count(self, seq: int | None) -> None:
        if seq is None:
            return
        if self._next_seq is not None and seq != self._next_seq:
            self.lost += (seq - self._next_seq) & 0xFFFFFFFF
        self._next_seq = (seq + 1) & 0xFFFFFFFF

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._seq += 1
            self._sock.setblocking(True)
            self._sock.send(config_message(self.group, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_UNBIND])), self._seq))
        self._sock.close()
