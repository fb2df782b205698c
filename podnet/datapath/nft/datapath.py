"""The nftables backend: the eBPF datapath's semantics for kernels without eBPF.

One ``inet`` table per node (default ``podnet``) with sets and verdict maps (see :mod:`.render`);
changes are ``nft -f`` transactions, so each update is atomic. Conntrack is the kernel's
(``ct state established,related accept``): replies and established connections pass without a
policy lookup. Anti-spoofing runs at prerouting (MAC and address per pod interface). Counters:
``spoofed``, ``no_policy`` and one per rule chain. Events: with ``log_group``, every packet a rule
chain, anti-spoofing or a missing entry decides is also logged to that NFLOG group with a prefix
naming the rule (:mod:`.nflog`, :mod:`.events`); only packets that are not part of an established
connection reach those chains.

The kernel table is the state: a new object reads the map elements back (``nft -j``) on its first
change, so a restarted agent writes only differences, and the table keeps enforcing meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from podnet.errors import PodnetError
from podnet.k8s.model import IPAddress
from podnet.policy.compiler import RuleRef
from podnet.policy.identity import WORLD_V4, WORLD_V6, IdentityTable
from podnet.policy.mapimage import MapImage

from ..ebpf.audit import Audit, enforced_image
from ..ebpf.codecs import rule_text
from ..ebpf.datapath import Endpoint, SyncStats
from ..ebpf.events import DatapathEvent
from ..ebpf.system import in_netns
from .events import EventAggregator
from .nflog import NflogSocket
from .render import (
    AddressPlan,
    Elements,
    ElemKey,
    address_plan,
    chain_rule,
    endpoint_elements,
    parse_json_key,
    parse_verdict_chain,
    render_key,
    table_script,
)


class NftError(PodnetError):
    cni_code = 112


@dataclass
class _EndpointState:
    ifname: str
    image: MapImage
    audit: Audit | None


class NftDatapath:
    """Same calls as :class:`podnet.datapath.ebpf.EbpfDatapath`; ``netns`` names where to run ``nft``."""

    def __init__(self, netns: str | None = None, table: str = "podnet", log_group: int | None = None) -> None:
        self.netns = netns
        self.table = table
        self.log_group = log_group
        self._loaded = False
        self._plan = AddressPlan({})
        self._endpoints: dict[str, _EndpointState] = {}
        self._actual: dict[str, dict[ElemKey, str]] | None = None
        self._rule_ids: dict[RuleRef, int] = {}
        self.rules: dict[int, RuleRef] = {}
        self._chains: set[str] = set()
        self._identities: IdentityTable | None = None
        self._ep_identity: dict[int, int] = {}  # ifindex → the pod's identity, for events
        self._log: NflogSocket | None = None
        self._agg = EventAggregator()

    # -- running nft -----------------------------------------------------------------------------

    def _nft(self, *args: str, script: str | None = None) -> str:
        cmd = ["nft", *args]
        if self.netns is not None:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        proc = subprocess.run(cmd, input=script, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.strip()
            raise NftError(f"nft {' '.join(args)} failed in netns {self.netns or '(own)'}: {err[:2000]}", err)
        return proc.stdout

    def _run(self, lines: list[str]) -> None:
        if lines:
            self._nft("-f", "-", script="\n".join(lines) + "\n")

    def _json(self, *args: str) -> list[dict[str, Any]]:
        doc = json.loads(self._nft("-j", *args))
        items: list[dict[str, Any]] = doc.get("nftables", [])
        return items

    # -- lifecycle -------------------------------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Create the table, sets, maps and chains (idempotent; the maps' elements are kept).

        The fixed chains and the verdict chains that exist already are rewritten in the same
        transaction (so their log group is this object's): no packet sees a chain half-written.
        """
        if self._loaded:
            return
        existing: list[str] = []
        for item in self._json("list", "chains", "inet"):
            chain = item.get("chain")
            if chain and chain.get("table") == self.table and parse_verdict_chain(str(chain["name"])) is not None:
                existing.append(str(chain["name"]))
        script = table_script(self.table, self.log_group)
        for name in existing:
            script += f"flush chain inet {self.table} {name}\n"
            script += f"add rule inet {self.table} {name} {chain_rule(name, self.log_group)}\n"
        if self.log_group is not None and self._log is None:  # first: a group taken elsewhere changes nothing
            with in_netns(self.netns):
                self._log = NflogSocket(self.log_group)
        try:
            self._nft("-f", "-", script=script)
        except NftError:
            if self._log is not None:
                self._log.close()
                self._log = None
            raise
        self._chains = set(existing)
        self._loaded = True

    def close(self) -> None:
        """Forget this process's view and close the NFLOG socket; the table keeps enforcing."""
        if self._log is not None:
            self._log.close()
            self._log = None
        self._loaded = False
        self._actual = None
        self._endpoints.clear()

    def destroy(self) -> None:
        """Remove the whole table: everything this backend created."""
        try:
            self._nft("delete", "table", "inet", self.table)
        except NftError as e:
            if "No such file" not in e.details:
                raise
        self.close()

    # -- endpoints -------------------------------------------------------------------------------

    def ifindex(self, host_veth: str) -> int:
        with in_netns(self.netns):
            try:
                return socket.if_nametoindex(host_veth)
            except OSError as e:
                raise NftError(f"no interface {host_veth!r} in netns {self.netns or '(own)'}") from e

    def attach(self, endpoint: Endpoint) -> str:
        self.ensure_loaded()
        name = endpoint.host_veth
        self._ep_identity[self.ifindex(name)] = endpoint.identity
        t = self.table
        lines = [
            f"delete element inet {t} ep_mac {{ {e} }}"
            for e in self._set_elements("ep_mac")
            if e.startswith(f'"{name}"')
        ]
        lines += [
            f"delete element inet {t} {s} {{ {e} }}"
            for s in ("ep_v4", "ep_v6")
            for e in self._set_elements(s)
            if e.startswith(f'"{name}"')
        ]
        lines.append(f'add element inet {t} endpoints {{ "{name}" }}')
        lines.append(f'add element inet {t} ep_mac {{ "{name}" . {endpoint.mac} }}')
        if endpoint.ipv4 is not None:
            lines.append(f'add element inet {t} ep_v4 {{ "{name}" . {endpoint.ipv4} }}')
        if endpoint.ipv6 is not None:
            lines.append(f'add element inet {t} ep_v6 {{ "{name}" . {endpoint.ipv6} }}')
        self._run(lines)
        return name

    def endpoint_names(self) -> list[str]:
        """The host veths in the table's ``endpoints`` set."""
        self.ensure_loaded()
        return [e.strip('"') for e in self._set_elements("endpoints")]

    def _set_elements(self, name: str) -> list[str]:
        out: list[str] = []
        for item in self._json("list", "set", "inet", self.table, name):
            for e in item.get("set", {}).get("elem", []):
                parts = e["concat"] if isinstance(e, dict) and "concat" in e else [e]
                out.append(" . ".join(f'"{p}"' if i == 0 else str(p) for i, p in enumerate(parts)))
        return out

    def detach(self, host_veth: str) -> bool:
        self.ensure_loaded()
        actual = self._load_actual()
        lines = []
        for m, elems in actual.items():
            for key in [k for k in elems if k and k[0] == host_veth]:
                lines.append(f"delete element inet {self.table} {m} {{ {render_key(m, key)} }}")
                del elems[key]
        for s in ("endpoints", "ep_mac", "ep_v4", "ep_v6"):
            for e in self._set_elements(s):
                if e.startswith(f'"{host_veth}"'):
                    lines.append(f"delete element inet {self.table} {s} {{ {e} }}")
        self._endpoints.pop(host_veth, None)
        self._run(lines)
        return bool(lines)

    # -- identities and policy -------------------------------------------------------------------

    def rule_id(self, ref: RuleRef | None) -> int:
        """A rule's number: a digest of its text, so it is the same in every process (0: no rule)."""
        if ref is None:
            return 0
        found = self._rule_ids.get(ref)
        if found is None:
            found = int.from_bytes(hashlib.sha256(rule_text(ref).rstrip(b"\0")).digest()[:6], "big")
            self._rule_ids[ref] = found
            self.rules[found] = ref
        return found

    def _load_actual(self) -> dict[str, dict[ElemKey, str]]:
        if self._actual is None:
            actual: dict[str, dict[ElemKey, str]] = {}
            for item in self._json("list", "table", "inet", self.table):
                m = item.get("map")
                if not m:
                    continue
                elems = actual.setdefault(str(m["name"]), {})
                for key, verdict in m.get("elem", []):
                    target = verdict.get("goto", {}).get("target") if isinstance(verdict, dict) else None
                    elems[parse_json_key(str(m["name"]), key)] = f"goto {target}"
            self._actual = actual
        return self._actual

    def _converge(self, desired_by_ep: dict[str, Elements], only: set[str]) -> SyncStats:
        """Write the difference for the endpoints in ``only`` in one transaction."""
        actual = self._load_actual()
        adds: list[str] = []
        deletes: list[str] = []
        chains: list[str] = []
        new_chains: set[str] = set()
        written = deleted = 0
        maps = set(actual) | {m for els in desired_by_ep.values() for m in els}
        for m in sorted(maps):
            have = {k: v for k, v in actual.get(m, {}).items() if k and k[0] in only}
            want: dict[ElemKey, str] = {}
            for ep in only:
                want.update(desired_by_ep.get(ep, {}).get(m, {}))
            for k, v in want.items():
                if have.get(k) != v:
                    target = v.split()[1]
                    if target not in self._chains and target not in new_chains:
                        chains.append(f"add chain inet {self.table} {target}")
                        chains.append(f"add rule inet {self.table} {target} {chain_rule(target, self.log_group)}")
                        new_chains.add(target)
                    if k in have:
                        deletes.append(f"delete element inet {self.table} {m} {{ {render_key(m, k)} }}")
                    adds.append(f"add element inet {self.table} {m} {{ {render_key(m, k)} : {v} }}")
                    written += 1
            for k in have:
                if k not in want:
                    deletes.append(f"delete element inet {self.table} {m} {{ {render_key(m, k)} }}")
                    deleted += 1
        # one transaction, so no packet sees it half-done; deletes first so new intervals may overlap old ones
        try:
            self._run(chains + deletes + adds)
        except NftError:
            self._actual = None
            raise
        self._chains |= new_chains
        for m in maps:
            cur = actual.setdefault(m, {})
            for k in [k for k in cur if k and k[0] in only]:
                del cur[k]
            for ep in only:
                cur.update(desired_by_ep.get(ep, {}).get(m, {}))
        return SyncStats(written, deleted)

    def sync_identities(self, identities: IdentityTable) -> SyncStats:
        """Recompute the address intervals; endpoints whose rows depend on them are rewritten."""
        self.ensure_loaded()
        self._identities = identities
        self._agg.identities_changed()
        plan = address_plan(identities.address_identity, identities.cidr_identity)
        if plan == self._plan:
            return SyncStats(0, 0)
        self._plan = plan
        desired = {
            name: endpoint_elements(name, enforced_image(st.image, st.audit), plan, self.rule_id)
            for name, st in self._endpoints.items()
        }
        return self._converge(desired, set(desired))

    def apply_image(self, endpoint: Endpoint | str, image: MapImage, audit: Audit | None = None) -> SyncStats:
        self.ensure_loaded()
        name = endpoint.host_veth if isinstance(endpoint, Endpoint) else endpoint
        elements = endpoint_elements(name, enforced_image(image, audit), self._plan, self.rule_id)
        stats = self._converge({name: elements}, {name})
        self._endpoints[name] = _EndpointState(name, image, audit)
        return stats

    def counters(self) -> dict[str, int]:
        """The table's named counters (``spoofed``, ``no_policy``) and the event reader's counts: messages
        lost (``events_lost``, sequence gaps), ENOBUFS episodes (``events_overruns``), datagrams read
        (``events_datagrams``) and drop packets folded into a later record (``events_aggregated``)."""
        out: dict[str, int] = {}
        for item in self._json("list", "counters", "table", "inet", self.table):
            c = item.get("counter")
            if c:
                out[str(c["name"])] = int(c["packets"])
        out["events_lost"] = self._log.lost if self._log is not None else 0
        out["events_overruns"] = self._log.overruns if self._log is not None else 0
        out["events_datagrams"] = self._log.datagrams if self._log is not None else 0
        out["events_aggregated"] = self._agg.aggregated
        return out

    # -- events ----------------------------------------------------------------------------------

    def _peer_identity(self, addr: IPAddress) -> int:
        if self._identities is None:
            return WORLD_V4 if addr.version == 4 else WORLD_V6
        return self._identities.identity_of_address(addr)

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        """Decisions logged to ``log_group`` as they arrive, until ``timeout`` seconds pass (none without a
        group). The NFLOG socket is bound in the table's netns by :meth:`ensure_loaded`."""
        if self.log_group is None:
            return
        self.ensure_loaded()
        assert self._log is not None
        deadline = time.monotonic() + timeout
        while True:
            packets = self._log.read(max(0.0, deadline - time.monotonic()))
            now = time.monotonic_ns()
            offset = time.time_ns() - now
            for pkt in packets:
                event = self._agg.event(pkt, now, self._ep_identity, self._peer_identity, self.rules, offset)
                if event is not None:
                    yield event
            if time.monotonic() >= deadline:
                return
