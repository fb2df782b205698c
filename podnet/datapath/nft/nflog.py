"""NFLOG over a raw netlink socket: the packets nftables' ``log group N`` statements copy to userspace.

The nftables backend's verdict chains log with a prefix that names the rule and the verdict
(:func:`prefix`); this module binds a netlink socket (``NETLINK_NETFILTER``, subsystem ULOG) to the
group and decodes each message into an :class:`NflogPacket`: prefix, interfaces, the start of the
packet (copy range :data:`COPY_RANGE`) and the instance's sequence number, whose gaps count the
messages the kernel could not deliver (socket buffer full). Parsing is pure (:func:`parse_messages`:
its memos of message shapes and prefix texts change no result).

:class:`NflogSocket` asks the kernel to batch: one datagram carries a few hundred messages under a
flood, and a lone message waits for the flush timer (20 ms).

A group has one listener per network namespace: binding a group another socket holds fails (EBUSY).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import operator
import os
import select
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

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
MIN_BUFFER_SIZE, MAX_BUFFER_SIZE = 4096, 131072  # the kernel's limits for NFULA_CFG_NLBUFSIZ
# ~190 messages of a small packet per datagram; the kernel's buffer then fits in 32 KiB (an order-3
# allocation, the largest it does cheaply; beyond, 64 KiB or 128 KiB decoded no faster)
BUFFER_SIZE = 32 * 1024 - 512
QUEUE_THRESHOLD = 4096  # messages per datagram: more than fit, so the buffer's size decides
FLUSH_CS = 2  # a lone message waits at most 20 ms
RCVBUF = 32 << 20  # the kernel doubles it: ~2,000 full datagrams (380,000 small messages) while the reader is busy
SO_TIMESTAMP, SO_RCVBUFFORCE = 29, 33
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


class NflogPacket(NamedTuple):
    """One logged packet (a tuple: the reader makes one per message, so it is cheap to build)."""

    family: int  # 2 (IPv4) or 10 (IPv6)
    prefix: str
    indev: int  # ifindex, 0 if none
    outdev: int
    seq: int | None  # the instance's sequence number (NFULNL_CFG_F_SEQ)
    payload: bytes  # from the network header on, at most COPY_RANGE bytes
    time_ns: int | None = None  # wall clock when logged (the kernel adds it at prerouting, input and forward)


_HEAD = struct.Struct("=IH").unpack_from  # nlmsghdr's length and type
_ATTR = struct.Struct("=HH").unpack_from
_U32 = struct.Struct("!I").unpack_from
_STAMP = struct.Struct("!QQ").unpack_from
_prefixes: dict[bytes, str] = {}  # the attribute's bytes → the prefix: a node logs with a few hundred at most


def _prefix_text(raw: bytes) -> str:
    text = _prefixes.get(raw)
    if text is None:
        if len(_prefixes) >= 4096:
            _prefixes.clear()
        text = _prefixes[raw] = raw.split(b"\0", 1)[0].decode(errors="replace")
    return text


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the attributes of one shape of message are (offsets from the message's start, -1: absent).

    The kernel writes a message's attributes in a fixed order, so the messages one rule logs at one
    hook share a shape: once a walk has found it, the next message of the same length and prefix
    length is checked against it (every attribute header, byte for byte, in one call) and read
    without a walk.
    """

    headers: Callable[[bytes], tuple[int, ...]]  # the bytes of every attribute header
    expect: tuple[int, ...]
    prefix: tuple[int, int]  # the prefix attribute's value (start, end), or (0, 0)
    payload: tuple[int, int]
    indev: int  # the value's offset
    outdev: int
    seq: int
    stamp: int


_layouts: dict[tuple[int, int], _Layout] = {}  # (message length, byte 28) → the layout last seen with them


def _walk(data: bytes, off: int, end: int) -> _Layout | None:
    """The layout of the message at ``data[off:end]``, from one walk over its attributes; None if one is
    cut short."""
    at: dict[int, tuple[int, int]] = {}  # type → (value start, value end), from the message's start
    heads: list[int] = []
    a = 20
    length = end - off
    while a + 4 <= length:
        alen, atyp = _ATTR(data, off + a)
        if alen < 4 or a + alen > length:
            return None
        at[atyp & 0x3FFF] = (a + 4, a + alen)
        heads.append(a)
        a += (alen + 3) & ~3
    if not heads:
        return None

    def value(typ: int, size: int) -> int:
        found = at.get(typ)
        return found[0] if found is not None and found[1] - found[0] == size else -1

    positions = [h + i for h in heads for i in range(4)]
    headers = operator.itemgetter(*positions)
    return _Layout(
        headers=headers,
        expect=headers(data[off:end]),
        prefix=at.get(NFULA_PREFIX, (0, 0)),
        payload=at.get(NFULA_PAYLOAD, (0, 0)),
        indev=value(NFULA_IFINDEX_INDEV, 4),
        outdev=value(NFULA_IFINDEX_OUTDEV, 4),
        seq=value(NFULA_SEQ, 4),
        stamp=value(NFULA_TIMESTAMP, 16),
    )


def parse_messages(data: bytes) -> list[NflogPacket]:
    """The NFLOG packet messages in one netlink datagram (other messages and attributes are skipped; a
    message with an attribute cut short is skipped, and a message cut short ends the datagram)."""
    out: list[NflogPacket] = []
    end_all = len(data)
    layouts = _layouts
    off = 0
    while off + 20 <= end_all:  # nlmsghdr (16) + nfgenmsg (4)
        length, typ = _HEAD(data, off)
        end = off + length
        if length < 16 or end > end_all:
            break
        if typ == NFLOG_MSG_TYPE and length >= 32:
            msg = data[off:end]
            key = (length, msg[28])  # the prefix's length, when the packet header (8 bytes) comes first
            lay = layouts.get(key)
            if lay is None or lay.headers(msg) != lay.expect:
                lay = _walk(data, off, end)
                if lay is None:
                    off += (length + 3) & ~3
                    continue
                if len(layouts) >= 1024:
                    layouts.clear()
                layouts[key] = lay
            p0, p1 = lay.prefix
            time_ns = None
            if lay.stamp >= 0:
                sec, usec = _STAMP(msg, lay.stamp)
                time_ns = sec * 1_000_000_000 + usec * 1000
            out.append(
                NflogPacket(
                    msg[16],
                    _prefix_text(msg[p0:p1]) if p1 else "",
                    _U32(msg, lay.indev)[0] if lay.indev >= 0 else 0,
                    _U32(msg, lay.outdev)[0] if lay.outdev >= 0 else 0,
                    _U32(msg, lay.seq)[0] if lay.seq >= 0 else None,
                    msg[lay.payload[0] : lay.payload[1]],
                    time_ns,
                )
            )
        off += (length + 3) & ~3
    return out


def _attr(typ: int, value: bytes) -> bytes:
    raw = NLATTR.pack(NLATTR.size + len(value), typ) + value
    return raw + b"\0" * (-len(raw) % 4)


def config_message(group: int, attrs: bytes, seq: int, family: int = 0) -> bytes:
    body = NFGENMSG.pack(family, 0, group) + attrs
    typ = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), typ, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


class NflogSocket:
    """A netlink socket bound to one NFLOG group, in the network namespace it was created in.

    Batching: the kernel gathers messages in a buffer of ``buffer_size`` bytes (NFULA_CFG_NLBUFSIZ,
    at most 128 KiB) and sends it as one datagram when it is full, when ``queue_threshold`` messages
    are in it (NFULA_CFG_QTHRESH), or ``flush_cs`` hundredths of a second after the first one
    (NFULA_CFG_TIMEOUT): a flood costs one datagram (one wake-up, one ``recv``) per several hundred
    messages, and a lone message waits at most ``flush_cs``. ``rcvbuf`` (SO_RCVBUFFORCE as root) is
    what a burst may queue while the reader is busy.

    ``lost`` counts messages missing from the sequence (NFULA_SEQ): a datagram the full socket could
    not take is lost whole, and its messages show up as a gap when the next one arrives.
    ``overruns`` counts the ENOBUFS errors the socket reported (one per episode of a full buffer).
    """

    def __init__(
        self,
        group: int,
        rcvbuf: int = RCVBUF,
        queue_threshold: int = QUEUE_THRESHOLD,
        flush_cs: int = FLUSH_CS,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        if not 0 <= group <= 0xFFFF:
            raise NflogError(f"nflog group: {group} is not in 0..65535")
        if not MIN_BUFFER_SIZE <= buffer_size <= MAX_BUFFER_SIZE:
            raise NflogError(f"nflog buffer_size: {buffer_size} is not in {MIN_BUFFER_SIZE}..{MAX_BUFFER_SIZE}")
        if queue_threshold < 1 or flush_cs < 1:
            raise NflogError(f"nflog queue_threshold {queue_threshold}, flush_cs {flush_cs}: each must be >= 1")
        self.group = group
        self.lost = 0
        self.overruns = 0
        self.datagrams = 0
        self._next_seq: int | None = None
        self._seq = 0
        # a datagram is at most the kernel's buffer, rounded up by its allocator to the next power of two
        self._buf = bytearray(2 * buffer_size + 4096)
        self._view = memoryview(self._buf)
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        try:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)  # root: above rmem_max
            if self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < rcvbuf:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            # SO_TIMESTAMP turns the kernel's packet time stamps on, so messages carry the time of the log
            self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
            self._sock.bind((0, 0))
            self._request(_attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])))
            self._request(
                _attr(NFULA_CFG_MODE, struct.pack("!IBB", COPY_RANGE, NFULNL_COPY_PACKET, 0))
                + _attr(NFULA_CFG_NLBUFSIZ, struct.pack("!I", buffer_size))
                + _attr(NFULA_CFG_QTHRESH, struct.pack("!I", queue_threshold))
                + _attr(NFULA_CFG_TIMEOUT, struct.pack("!I", flush_cs))
                + _attr(NFULA_CFG_FLAGS, struct.pack("!H", NFULNL_CFG_F_SEQ))
            )
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise

    @property
    def rcvbuf(self) -> int:
        """The socket's receive buffer as the kernel set it (twice what was asked: it counts overhead)."""
        return int(self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

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

    def read(self, timeout: float = 0.0, max_messages: int = 16384) -> list[NflogPacket]:
        """The messages queued now, whole datagrams until at least ``max_messages`` (waiting up to
        ``timeout`` seconds for the first): bounded, so a flood that outruns the reader never holds it here."""
        out: list[NflogPacket] = []
        if timeout > 0:
            select.select([self._sock], [], [], timeout)
        recv_into, view = self._sock.recv_into, self._view
        while len(out) < max_messages:
            try:
                n = recv_into(view)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # overflowed: the sequence gap says how many were lost
                    self.overruns += 1
                    continue
                raise
            self.datagrams += 1
            packets = parse_messages(bytes(view[:n]))
            expect = self._next_seq
            for pkt in packets:
                seq = pkt.seq
                if seq is None:
                    continue
                if expect is not None and seq != expect:
                    self.lost += (seq - expect) & 0xFFFFFFFF
                expect = (seq + 1) & 0xFFFFFFFF
            self._next_seq = expect
            out += packets
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._seq += 1
            self._sock.setblocking(True)
            self._sock.send(config_message(self.group, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_UNBIND])), self._seq))
        self._sock.close()
