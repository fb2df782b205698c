"""The eBPF policy datapath of one node: load the tc programs, attach them to pods' host veths, and
keep the pinned maps equal to the compiled policy.

State lives in the kernel, pinned under ``pin_dir`` (one directory per node, on a bpffs): the maps
and the programs. tc filters hold the programs, so enforcement goes on when this object is dropped
or the agent exits (fail closed), and a new :class:`EbpfDatapath` on the same directory reuses the
maps as they are and swaps programs in place (``BPF_TC_F_REPLACE``): there is no allow-all window.

Every method is idempotent and compares with what the kernel holds, so a restarted agent converges
without clearing anything. Rule ids (numbers in the policy map and in events) are kept in the pinned
``pn_rules`` map with each rule's JSON text, so they survive restarts and any reader can name rules.

Not thread-safe: one owner (the agent's datapath task) calls it.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from podnet.errors import PodnetError
from podnet.policy.compiler import RuleRef
from podnet.policy.identity import IdentityTable
from podnet.policy.mapimage import MapImage

from . import libbpf
from .audit import Audit, enforced_image
from .build import ensure_object
from .codecs import (
    COUNTER,
    COUNTERS,
    CT_KEY,
    CT_VALUE,
    ENDPOINT,
    EP_OWNS_CLSACT,
    IDENTITY,
    IFINDEX,
    IPCACHE_KEY,
    LOCAL_KEY,
    LOCAL_VALUE,
    N_COUNTERS,
    POLICY_KEY,
    POLICY_VALUE,
    RULE_TEXT_SIZE,
    CtEntry,
    EndpointValue,
    PolicyKey,
    identity_entries,
    mac_text,
    peer_tag,
    pod_entries,
    policy_entries,
    rule_from_text,
    rule_text,
    sum_percpu,
)
from .events import DatapathEvent, decode_event
from .libbpf import BPF_TC_EGRESS, BPF_TC_F_REPLACE, BPF_TC_INGRESS, BpfError, MapFd, RingBuffer
from .system import in_netns, is_bpffs

TC_HANDLE = 0x706E  # "pn"
TC_PRIORITY = 0x1000
PROGRAMS = {"pn_from_pod": BPF_TC_INGRESS, "pn_to_pod": BPF_TC_EGRESS}
UPLINK_PROGRAM = "pn_from_uplink"  # on the ingress of the node's uplink and overlay devices
DROP_KEY_SIZE = CT_KEY.size + 4
MAPS: dict[str, tuple[int, int]] = {
    "pn_endpoints": (IFINDEX.size, ENDPOINT.size),
    "pn_uplinks": (IFINDEX.size, IFINDEX.size),
    "pn_ipcache": (IPCACHE_KEY.size, IDENTITY.size),
    "pn_local": (LOCAL_KEY.size, LOCAL_VALUE.size),
    "pn_pods": (LOCAL_KEY.size, IDENTITY.size),
    "pn_policy": (POLICY_KEY.size, POLICY_VALUE.size),
    "pn_ct": (CT_KEY.size, CT_VALUE.size),
    "pn_drops": (DROP_KEY_SIZE, 16),
    "pn_frags": (12, 4),
    "pn_frags6": (40, 4),
    "pn_counters": (4, COUNTER.size),
    "pn_scratch": (4, CT_VALUE.size + POLICY_KEY.size),
    "pn_rules": (4, RULE_TEXT_SIZE),
    "pn_events": (0, 0),
}
ENOENT, EEXIST = 2, 17
SIOCGIFHWADDR = 0x8927


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A pod as the datapath sees it: the host side of its veth, and what it may send as."""

    host_veth: str
    mac: str  # the pod-side MAC: the only source MAC the pod may use
    identity: int
    ipv4: ipaddress.IPv4Address | None = None
    ipv6: ipaddress.IPv6Address | None = None


@dataclass(frozen=True, slots=True)
class SyncStats:
    written: int
    deleted: int

    @property
    def changed(self) -> bool:
        return bool(self.written or self.deleted)


class EbpfDatapath:
    """podnet's tc programs and pinned maps for one node (see the module docstring).

    ``netns`` names the network namespace (``ip netns`` name) the host veths live in; None means the
    caller's own. ``pin_dir`` must be on a bpffs (:func:`podnet.datapath.ebpf.system.ensure_bpffs`).
    """

    def __init__(self, pin_dir: Path | str, netns: str | None = None, object_file: Path | None = None) -> None:
        self.pin_dir = Path(pin_dir)
        self.netns = netns
        self._object_file = object_file
        self._obj: int | None = None
        self.maps: dict[str, MapFd] = {}
        self._progs: dict[str, int] = {}
        self._entries: dict[int, dict[bytes, bytes]] = {}  # endpoint → its policy rows in the kernel, as written
        self._rows_read = False  # the whole policy map has been read into _entries (see _read_policy_rows)
        self._rule_ids: dict[RuleRef, int] = {}
        self._rules: dict[int, RuleRef] = {}
        self._ring: RingBuffer | None = None
        self._pending: deque[bytes] = deque()

    # -- lifecycle -----------------------------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Compile if needed, load the programs, reuse or create and pin the maps. Idempotent."""
        if self._obj is not None:
            return
        if not is_bpffs(self.pin_dir.parent if not self.pin_dir.exists() else self.pin_dir):
            raise PodnetError(f"{self.pin_dir} is not on a bpffs; mount one first (ensure_bpffs)")
        self.pin_dir.mkdir(parents=True, exist_ok=True)
        obj_file = self._object_file or ensure_object()
        lib = libbpf.lib()
        obj = libbpf.check_ptr(lib.bpf_object__open_file(str(obj_file).encode(), None), f"open {obj_file}")
        try:
            for name in MAPS:
                m = libbpf.check_ptr(lib.bpf_object__find_map_by_name(obj, name.encode()), f"map {name}")
                self._drop_incompatible(name, lib.bpf_map__max_entries(m))
                libbpf.check(lib.bpf_map__set_pin_path(m, str(self.pin_dir / name).encode()), f"pin path {name}")
            libbpf.recent.clear()
            rc = lib.bpf_object__load(obj)
            if rc < 0:
                err = BpfError(f"load {obj_file} (pins in {self.pin_dir})", -rc)
                err.details = "\n".join(libbpf.recent)
                raise err
            for name, (ksize, vsize) in MAPS.items():
                m = lib.bpf_object__find_map_by_name(obj, name.encode())
                fd = libbpf.check(lib.bpf_map__fd(m), f"fd of map {name}")
                self.maps[name] = MapFd(fd, ksize, vsize, name, percpu=name == "pn_counters")
            for name in (*PROGRAMS, UPLINK_PROGRAM):
                prog = libbpf.check_ptr(lib.bpf_object__find_program_by_name(obj, name.encode()), f"program {name}")
                self._progs[name] = libbpf.check(lib.bpf_program__fd(prog), f"fd of program {name}")
                pin = self.pin_dir / name
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pin)
                libbpf.check(lib.bpf_program__pin(prog, str(pin).encode()), f"pin {name}")
        except BaseException:
            lib.bpf_object__close(obj)
            self.maps.clear()
            self._progs.clear()
            raise
        self._obj = obj
        for key, raw in self.maps["pn_rules"].entries():
            (rid,) = IFINDEX.unpack(key)
            ref = rule_from_text(raw)
            self._rules[rid] = ref
            self._rule_ids.setdefault(ref, rid)

    def _drop_incompatible(self, name: str, max_entries: int) -> None:
        """Unpin map ``name`` when an earlier build pinned it with another layout (key or value size; for
        the ``pn_events`` ring, its size): libbpf would refuse to reuse it, and the load would fail. The
        programs still attached use the old map until the attach calls swap them for the new ones, which
        use the new map; what the old one held goes (a ring's unread events; ``pn_local`` is written
        again as the agent attaches its endpoints)."""
        pin = self.pin_dir / name
        if not pin.exists():
            return
        key_size, value_size, entries = libbpf.pinned_map_sizes(str(pin))
        if name == "pn_events":
            if entries != max_entries:
                pin.unlink()
        elif (key_size, value_size) != MAPS[name]:
            pin.unlink()

    def close(self) -> None:
        """Release this process's handles. Programs, filters and pinned maps stay: enforcement goes on."""
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        if self._obj is not None:
            libbpf.lib().bpf_object__close(self._obj)
            self._obj = None
        self.maps.clear()
        self._progs.clear()
        self._entries.clear()
        self._rows_read = False

    def __enter__(self) -> EbpfDatapath:
        self.ensure_loaded()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _map(self, name: str) -> MapFd:
        self.ensure_loaded()
        return self.maps[name]

    # -- endpoints -----------------------------------------------------------------------------

    def ifindex(self, host_veth: str) -> int:
        with in_netns(self.netns):
            try:
                return socket.if_nametoindex(host_veth)
            except OSError as e:
                raise PodnetError(f"no interface {host_veth!r} in netns {self.netns or '(own)'}") from e

    def host_mac(self, host_veth: str) -> str:
        with in_netns(self.netns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            ifreq = struct.pack("16s16x", host_veth.encode())
            try:
                res = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, ifreq)
            except OSError as e:
                raise PodnetError(f"no MAC address for {host_veth!r}: {e}") from e
        return mac_text(res[18:24])

    def attach(self, endpoint: Endpoint) -> int:
        """Ensure the endpoint's config and both programs on its host veth; returns the ifindex.

        A freshly attached endpoint has no policy rows, so its traffic is dropped ("no policy
        entry") until :meth:`apply_image`: attach and apply before the pod starts. On failure, what
        this call created is removed again.
        """
        self.ensure_loaded()
        lib = libbpf.lib()
        eps = self._map("pn_endpoints")
        ifindex = self.ifindex(endpoint.host_veth)
        host_mac = self.host_mac(endpoint.host_veth)
        key = IFINDEX.pack(ifindex)
        old_raw = eps.lookup(key)
        old = EndpointValue.unpack(old_raw) if old_raw is not None else None
        with contextlib.ExitStack() as undo, in_netns(self.netns):
            owns = _ensure_clsact(ifindex, endpoint.host_veth, bool(old and old.flags & EP_OWNS_CLSACT), undo)
            flags = EP_OWNS_CLSACT if owns else 0
            value = EndpointValue(endpoint.identity, endpoint.mac, endpoint.ipv4, endpoint.ipv6, flags, host_mac)
            eps.update(key, value.pack())
            if old_raw is None:
                undo.callback(eps.delete, key)
            else:
                undo.callback(eps.update, key, old_raw)
            self._sync_local(ifindex, value)
            for prog, point in PROGRAMS.items():
                opts = libbpf.tc_opts(self._progs[prog], BPF_TC_F_REPLACE, TC_HANDLE, TC_PRIORITY)
                libbpf.check(lib.bpf_tc_attach(libbpf.tc_hook(ifindex, point), opts), f"attach {prog}")
            undo.pop_all()
        return ifindex

    def _existing_ifindex(self, device: str | int) -> int | None:
        """``device``'s ifindex (given as one, for a link that may be gone already); None: no such device."""
        if isinstance(device, int):
            return device
        try:
            return self.ifindex(device)
        except PodnetError:
            return None

    def detach(self, host_veth: str | int) -> bool:
        """Remove the programs, the clsact qdisc if podnet created it, and the endpoint's map entries.

        Accepts the ifindex when the link may be gone already; True when anything was removed.
        """
        lib = libbpf.lib()
        eps = self._map("pn_endpoints")
        ifindex = self._existing_ifindex(host_veth)
        if ifindex is None:
            return False
        key = IFINDEX.pack(ifindex)
        raw = eps.lookup(key)
        removed = False
        with in_netns(self.netns):
            for point in PROGRAMS.values():
                rc = lib.bpf_tc_detach(libbpf.tc_hook(ifindex, point), libbpf.tc_opts(0, 0, TC_HANDLE, TC_PRIORITY))
                removed |= rc == 0
            if raw is not None and EndpointValue.unpack(raw).flags & EP_OWNS_CLSACT:
                removed |= _remove_clsact(ifindex)
        if raw is not None:
            eps.delete(key)
            removed = True
        self._forget_endpoint(ifindex)
        return removed

    def attach_uplink(self, device: str) -> int:
        """Ensure ``pn_from_uplink`` on the ingress of ``device`` (an uplink or overlay device of the node);
        returns its ifindex. Packets from other nodes for this node's pods are then judged by the pod's
        ingress policy there and handed to the pod directly (``bpf_redirect_peer``); everything else
        goes on into the node's stack. Idempotent; :meth:`detach_uplink` undoes it."""
        self.ensure_loaded()
        lib = libbpf.lib()
        uplinks = self._map("pn_uplinks")
        ifindex = self.ifindex(device)
        key = IFINDEX.pack(ifindex)
        old = uplinks.lookup(key)
        with contextlib.ExitStack() as undo, in_netns(self.netns):
            owned = old is not None and IFINDEX.unpack(old)[0] & EP_OWNS_CLSACT
            owns = _ensure_clsact(ifindex, device, bool(owned), undo)
            uplinks.update(key, IFINDEX.pack(EP_OWNS_CLSACT if owns else 0))
            if old is None:
                undo.callback(uplinks.delete, key)
            opts = libbpf.tc_opts(self._progs[UPLINK_PROGRAM], BPF_TC_F_REPLACE, TC_HANDLE, TC_PRIORITY)
            libbpf.check(lib.bpf_tc_attach(libbpf.tc_hook(ifindex, BPF_TC_INGRESS), opts), f"attach on {device}")
            undo.pop_all()
        return ifindex

    def detach_uplink(self, device: str | int) -> bool:
        """Remove ``pn_from_uplink`` (and the clsact qdisc if podnet created it) from ``device``; packets
        for local pods then take the node's routing and meet ``pn_to_pod``. True when anything was removed."""
        lib = libbpf.lib()
        uplinks = self._map("pn_uplinks")
        ifindex = self._existing_ifindex(device)
        if ifindex is None:
            return False
        key = IFINDEX.pack(ifindex)
        raw = uplinks.lookup(key)
        if raw is None:
            return False
        with in_netns(self.netns):
            lib.bpf_tc_detach(libbpf.tc_hook(ifindex, BPF_TC_INGRESS), libbpf.tc_opts(0, 0, TC_HANDLE, TC_PRIORITY))
            if IFINDEX.unpack(raw)[0] & EP_OWNS_CLSACT:
                _remove_clsact(ifindex)
        uplinks.delete(key)
        return True

    def uplinks(self) -> set[int]:
        """The ifindexes carrying ``pn_from_uplink``."""
        return {IFINDEX.unpack(k)[0] for k in self._map("pn_uplinks").key_list()}

    def _sync_local(self, ifindex: int, endpoint: EndpointValue | None) -> None:
        """Make ``pn_local`` map exactly the endpoint's own addresses to it (none when ``endpoint`` is None)."""
        local = self._map("pn_local")
        keys = endpoint.local_keys() if endpoint is not None else []
        if endpoint is not None:
            value = endpoint.local_value(ifindex)
            for k in keys:
                local.update(k, value)
        mine = IFINDEX.pack(ifindex)
        for k, v in local.entries():
            if v[: IFINDEX.size] == mine and k not in keys:
                local.delete(k)

    def _forget_endpoint(self, ifindex: int) -> None:
        self._sync_local(ifindex, None)
        policy = self._map("pn_policy")
        for k in policy.key_list():
            if PolicyKey.unpack(k).endpoint == ifindex:
                policy.delete(k)
        drops = self._map("pn_drops")
        for k in drops.key_list():
            if IFINDEX.unpack(k[:4])[0] == ifindex:
                drops.delete(k)
        # its connections go, and so does every other endpoint's word that it admitted one: a pod that gets
        # its address later must judge the connection's packets itself
        ct, tag = self._map("pn_ct"), peer_tag(ifindex)
        for k, v in ct.entries():
            *fields, peer = CT_VALUE.unpack(v[: CT_VALUE.size])
            if IFINDEX.unpack(k[:4])[0] == ifindex:
                ct.delete(k)
            elif peer == tag:
                with contextlib.suppress(BpfError):  # expired and evicted meanwhile: nothing to forget
                    ct.update(k, CT_VALUE.pack(*fields, 0), libbpf.BPF_EXIST)
        self._entries.pop(ifindex, None)

    def endpoints(self) -> dict[int, EndpointValue]:
        return {IFINDEX.unpack(k)[0]: EndpointValue.unpack(v) for k, v in self._map("pn_endpoints").entries()}

    # -- identities and policy -----------------------------------------------------------------

    def sync_identities(self, identities: IdentityTable) -> SyncStats:
        """Make the ipcache hold exactly the table's addresses and CIDRs, and ``pn_pods`` exactly its
        pod addresses (each written first, then deleted)."""
        ipcache = self._map("pn_ipcache")
        desired = identity_entries(identities.address_identity, identities.cidr_identity)
        first = self._converge(ipcache, dict(ipcache.entries()), desired)
        pods = self._map("pn_pods")
        second = self._converge(pods, dict(pods.entries()), pod_entries(identities.address_identity))
        return SyncStats(first.written + second.written, first.deleted + second.deleted)

    def _converge(self, m: MapFd, actual: dict[bytes, bytes], desired: dict[bytes, bytes]) -> SyncStats:
        written = deleted = 0
        for k, v in desired.items():
            if actual.get(k) != v:
                m.update(k, v)
                written += 1
        for k in actual:
            if k not in desired:
                m.delete(k)
                deleted += 1
        return SyncStats(written, deleted)

    def rule_id(self, ref: RuleRef | None) -> int:
        """The number of a rule in the policy map and in events (0: no rule); new rules are stored."""
        if ref is None:
            return 0
        found = self._rule_ids.get(ref)
        if found is not None:
            return found
        rid = max(self._rules, default=0) + 1
        self._map("pn_rules").update(IFINDEX.pack(rid), rule_text(ref))
        self._rules[rid] = ref
        self._rule_ids[ref] = rid
        return rid

    @property
    def rules(self) -> dict[int, RuleRef]:
        return dict(self._rules)

    def apply_image(self, endpoint: Endpoint | str | int, image: MapImage, audit: Audit | None = None) -> SyncStats:
        """Write the difference between the endpoint's kernel rows and ``image``'s.

        With ``audit`` (:mod:`.audit`), a deny that only audit-mode policies cause is enforced as if
        they did not exist, and where that passes the new-connection event says AUDIT.

        New and changed rows are written before stale ones are deleted; every lookup meanwhile sees
        either the old or the new decision for its port. The previous rows are remembered; after a
        restart they are read back from the kernel once.
        """
        policy = self._map("pn_policy")
        if isinstance(endpoint, int):
            ifindex = endpoint
        else:
            ifindex = self.ifindex(endpoint.host_veth if isinstance(endpoint, Endpoint) else endpoint)
        desired = policy_entries(ifindex, enforced_image(image, audit), self.rule_id)
        actual = self._entries.get(ifindex)
        if actual is None:
            actual = self._read_policy_rows(ifindex)
        try:
            stats = self._converge(policy, actual, desired)
        except BpfError:
            self._entries.pop(ifindex, None)  # unknown state: read the kernel next time
            self._rows_read = False
            raise
        self._entries[ifindex] = desired
        return stats

    def _read_policy_rows(self, ifindex: int) -> dict[bytes, bytes]:
        """The endpoint's rows in the kernel. The whole map is read once per process (after a restart, or a
        failed write) and remembered for every endpoint in it; this process being the map's only writer, an
        endpoint not found then has no rows (reading the map for each new endpoint cost O(endpoints²))."""
        if not self._rows_read:
            by_endpoint: dict[int, dict[bytes, bytes]] = {}
            for k, v in self._map("pn_policy").entries():
                by_endpoint.setdefault(PolicyKey.unpack(k).endpoint, {})[k] = v
            for endpoint, rows in by_endpoint.items():
                self._entries.setdefault(endpoint, rows)
            self._rows_read = True
        return self._entries.get(ifindex, {})

    # -- observation ---------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        m = self._map("pn_counters")
        out: dict[str, int] = {}
        for i in range(N_COUNTERS):
            raw = m.lookup(IFINDEX.pack(i))
            if i < len(COUNTERS):
                out[COUNTERS[i]] = sum_percpu(raw) if raw is not None else 0
        return out

    def conntrack(self) -> list[CtEntry]:
        return [CtEntry.unpack(k, v) for k, v in self._map("pn_ct").entries()]

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        """Decoded ring-buffer records as they arrive, until ``timeout`` seconds pass."""
        if self._ring is None:
            self._ring = RingBuffer(self._map("pn_events").fd, self._pending.append)
        deadline = time.monotonic() + timeout
        while True:
            self._ring.poll(0)
            while self._pending:
                yield decode_event(self._pending.popleft(), self._rules)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._ring.poll(max(1, min(100, int(remaining * 1000))))

    # -- teardown ------------------------------------------------------------------------------

    def destroy(self) -> None:
        """Detach every endpoint, close, and remove the pins and the pin directory: the node is clean."""
        self.ensure_loaded()
        for ifindex in list(self.endpoints()):
            self.detach(ifindex)
        for ifindex in self.uplinks():
            self.detach_uplink(ifindex)
        self.close()
        if self.pin_dir.exists():
            for entry in self.pin_dir.iterdir():
                entry.unlink()
            self.pin_dir.rmdir()


def _ensure_clsact(ifindex: int, device: str, owned: bool, undo: contextlib.ExitStack) -> bool:
    """Ensure a clsact qdisc on ``ifindex`` (in the caller's netns); True when podnet owns it: it made it
    now (``undo`` then removes it) or ``owned`` says it made it earlier."""
    lib = libbpf.lib()
    rc = lib.bpf_tc_hook_create(libbpf.tc_hook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS))
    if rc == 0:
        undo.callback(_remove_clsact, ifindex)
        return True
    if rc != -EEXIST:
        libbpf.check(rc, f"create clsact on {device}")
    return owned


def _remove_clsact(ifindex: int) -> bool:
    return bool(libbpf.lib().bpf_tc_hook_destroy(libbpf.tc_hook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS)) == 0)
