"""Keeping a compiled policy current as the cluster changes, without recompiling what did not change.

The agent sees a stream of small changes: pods start and stop, get an address, are relabelled. Most
of them leave the *inputs of the compiler* alone: the compiled policy depends on the namespaces, the
policies and the set of pod identities (label sets), not on which pods or how many carry an identity.
:class:`IncrementalCompiler` therefore:

- when only pods changed and every pod's identity key already exists (and none disappeared): keeps the
  compiled policy, the selector cache and every map image, and only rebuilds the pod → identity and
  address → identity lookups (no compile, no image: only the ipcache and the pods that changed identity
  need the kernel);
- otherwise (a new or vanished label set, a namespace or policy change): compiles with
  :func:`~podnet.policy.compiler.compile_cluster` — the one compiler, so the analyzer and the kernel
  cannot disagree — with identity numbers kept stable by an :class:`~podnet.policy.identity.IdentityAllocator`;
  when only pods changed, the previous compile's selector results and subject matches carry over, so
  selectors are evaluated against the new identities only (``compile_cluster(previous=...)``). It
  reports which identities' map images may differ: those whose resolved policy (rules, the peers
  their selectors select), own identity or, for egress rules with named ports, the peers declaring
  those ports changed. Every other image is reused.

Map images are built on demand and cached per identity (all pods of one identity share one image).
The result always equals a full compile with the same identity numbers: ``tests/unit/policy/
test_incremental.py`` checks it on random sequences of changes. Pure logic, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from podnet.k8s.model import Cluster, IPAddress, Pod
from podnet.policy.compiler import DIRECTIONS, CompiledPolicy, compile_cluster
from podnet.policy.identity import (
    IdentityAllocator,
    IdentityTable,
    PodKey,
    add_host,
    assign_pods,
    pod_key,
    sorted_policy_cidrs,
)
from podnet.policy.mapimage import MapImage, map_image


@dataclass(frozen=True, slots=True)
class Update:
    """What one :meth:`IncrementalCompiler.update` did."""

    compiled: CompiledPolicy
    recompiled: bool  # compile_cluster ran
    changed: frozenset[int]  # pod identities whose map image may differ from before (all of them after a compile
    # from nothing); identities that are gone are not listed
    addresses_changed: bool  # the address or CIDR → identity lookups differ from before (the ipcache needs a sync)


def same_policy_inputs(a: Cluster, b: Cluster) -> bool:
    """True when everything but the pods is equal: then the compiled policy depends only on the pod identities."""
    return (
        a.namespaces == b.namespaces
        and a.policies == b.policies
        and a.admin_policies == b.admin_policies
        and a.baseline == b.baseline
    )


def _named_port_identities(ids: IdentityTable) -> frozenset[tuple[int, frozenset[tuple[str, str, int]]]]:
    return frozenset((i.id, i.named_ports) for i in ids.by_id.values() if i.named_ports)


def changed_identities(old: CompiledPolicy | None, new: CompiledPolicy) -> frozenset[int]:
    """The pod identities of ``new`` whose map image may differ from the one ``old`` gives them.

    An image depends on the identity's resolved policy in both directions, on the identity itself (ingress
    named ports resolve against it) and, when an egress rule uses named ports, on which peers declare them.
    """
    pods = [i.id for i in new.identities.pods()]
    if old is None:
        return frozenset(pods)
    named_changed = _named_port_identities(old.identities) != _named_port_identities(new.identities)

    def differs(ident: int) -> bool:
        if old.identities.by_id.get(ident) != new.identities.by_id[ident]:
            return True
        if any(old.direction(ident, d) != new.direction(ident, d) for d in DIRECTIONS):
            return True
        return named_changed and bool(new.direction(ident, "egress").named_ports_used)

    return frozenset(i for i in pods if differs(i))


class IncrementalCompiler:
    """The compiled policy of the latest cluster, updated incrementally (see the module docstring)."""

    def __init__(self, host_addresses: tuple[IPAddress, ...] = ()) -> None:
        self.host_addresses = host_addresses  # this node's own addresses: the host identity
        self.allocator = IdentityAllocator()
        self.compiled: CompiledPolicy | None = None
        # pod → its identity key, by pod value; valid for the policy CIDRs of ``compiled``
        self._keys: dict[tuple[str, str, str], tuple[Pod, PodKey]] = {}
        self._images: dict[int, MapImage] = {}
        self.compiles = 0  # compile_cluster runs ...
        self.carried = 0  # ... of which carried the selector results over (only pods changed)
        self.updates = 0

    def update(self, cluster: Cluster) -> Update:
        """Make ``compiled`` the policy of ``cluster`` (which must not be modified afterwards)."""
        self.updates += 1
        old = self.compiled
        if old is not None and cluster is old.cluster:
            return Update(old, False, frozenset(), False)
        if old is not None and same_policy_inputs(old.cluster, cluster):
            fast = self._pods_only(old, cluster)
            if fast is not None:
                return fast
        return self._compile(old, cluster)

    def image(self, identity: int) -> MapImage:
        """The map image of pod identity ``identity`` in the current policy; one object per identity until it
        may have changed, so callers can tell "unchanged" by identity (``is``)."""
        found = self._images.get(identity)
        if found is None:
            assert self.compiled is not None, "image() before update()"
            found = self._images[identity] = map_image(self.compiled, identity)
        return found

    def _pod_keys(self, cluster: Cluster, table: IdentityTable) -> dict[tuple[str, str, str], tuple[Pod, PodKey]]:
        out: dict[tuple[str, str, str], tuple[Pod, PodKey]] = {}
        for pod in cluster.pods:
            ref = (pod.namespace, pod.name, pod.kind)
            known = self._keys.get(ref)
            if known is not None and known[0] == pod:
                out[ref] = known
            else:
                out[ref] = (pod, pod_key(cluster, table, pod))
        return out

    def _pods_only(self, old: CompiledPolicy, cluster: Cluster) -> Update | None:
        """Pods changed, namespaces and policies did not: no compile when the identity keys are the same."""
        old_ids = old.identities
        keys = self._pod_keys(cluster, old_ids)  # memberships need only the policy CIDRs, which did not change
        pod_ids = {i.id: i for i in old_ids.pods()}
        numbers = {self.allocator.get(k) for _, k in keys.values()}
        if None in numbers or numbers != set(pod_ids):
            return None  # a new label set, or one whose last pod is gone
        table = IdentityTable(old_ids.cidrs)
        table.by_id = {i: ident for i, ident in old_ids.by_id.items() if ident.kind != "pod"}
        table.cidr_identity = old_ids.cidr_identity
        assign_pods(table, cluster, lambda pod: keys[(pod.namespace, pod.name, pod.kind)][1], self.allocator, pod_ids)
        add_host(table, self.host_addresses)
        compiled = old.with_pods(cluster, table)
        self.compiled = compiled
        self._keys = keys
        moved = table.address_identity != old_ids.address_identity
        return Update(compiled, False, frozenset(), moved)

    def _compile(self, old: CompiledPolicy | None, cluster: Cluster) -> Update:
        carry = old if old is not None and same_policy_inputs(old.cluster, cluster) else None
        if carry is not None:  # the same policy CIDRs: the keys of pods that did not change are known
            self._keys = self._pod_keys(cluster, carry.identities)
        else:  # the policy CIDRs may differ, and with them every pod's memberships: no key is known
            self._keys = {}
            self._keys = self._pod_keys(cluster, IdentityTable(sorted_policy_cidrs(cluster)))
        known = {ref: key for ref, (_, key) in self._keys.items()}
        compiled = compile_cluster(cluster, self.allocator, self.host_addresses, carry, known)
        self.compiles += 1
        self.carried += carry is not None
        changed = changed_identities(old, compiled)
        live = {i.id for i in compiled.identities.pods()}
        self._images = {i: img for i, img in self._images.items() if i in live and i not in changed}
        self.compiled = compiled
        moved = old is None or (
            old.identities.address_identity != compiled.identities.address_identity
            or old.identities.cidr_identity != compiled.identities.cidr_identity
        )
        return Update(compiled, True, changed, moved)


__all__ = ["IncrementalCompiler", "Update", "changed_identities", "same_policy_inputs"]
