"""The incremental compiler equals a full compile after every change of random change sequences."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podnet.k8s.model import Cluster
from podnet.k8s.objectcache import ParsedObjects
from podnet.k8s.source import StaticSource, cluster
from podnet.policy.compiler import DIRECTIONS, compile_cluster
from podnet.policy.incremental import IncrementalCompiler
from podnet.policy.mapimage import map_image
from tests.unit.policy import clusters

Obj = dict[str, Any]


HOSTS = ["10.0.0.50", "192.168.3.3", "172.30.0.1"]  # a node's own address: no pod of the generated clusters has it


@st.composite
def change_sequences(draw: st.DrawFn) -> tuple[list[Obj], list[tuple[str, Obj]]]:
    """A starting cluster and a list of (ADDED|MODIFIED|DELETED, object) changes to it."""
    docs = draw(clusters.cluster_manifests())
    live = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}
    steps: list[tuple[str, Obj]] = []
    next_pod = 100
    for _ in range(draw(st.integers(1, 8))):
        pods = sorted(k for k in live if k[0] == "Pod")
        op = draw(st.sampled_from(["add", "add_same", "delete", "relabel", "address", "policy", "unpolicy", "ns"]))
        if op == "add" or (op in ("add_same", "delete", "relabel", "address") and not pods):
            address = draw(st.sampled_from([*clusters.ADDRESSES, None]))
            taken = {(d.get("status") or {}).get("podIP") for k, d in live.items() if k[0] == "Pod"}
            pod = draw(clusters.pod(next_pod, None if address in taken else address))
            next_pod += 1
            steps.append(("ADDED", pod))
        elif op == "add_same":  # a copy of an existing pod under a new name: the Deployment scale-up case
            pod = copy.deepcopy(live[draw(st.sampled_from(pods))])
            pod["metadata"]["name"] = f"p{next_pod}"
            pod.pop("status", None)
            next_pod += 1
            steps.append(("ADDED", pod))
        elif op == "delete":
            steps.append(("DELETED", live[draw(st.sampled_from(pods))]))
        elif op == "relabel":
            pod = copy.deepcopy(live[draw(st.sampled_from(pods))])
            pod["metadata"]["labels"] = draw(clusters.labels)
            steps.append(("MODIFIED", pod))
        elif op == "address":
            pod = copy.deepcopy(live[draw(st.sampled_from(pods))])
            taken = {(d.get("status") or {}).get("podIP") for k, d in live.items() if k[0] == "Pod"}
            free = [a for a in clusters.ADDRESSES if a not in taken]
            if free and draw(st.booleans()):
                pod["status"] = {"podIP": draw(st.sampled_from(free))}
            else:
                pod.pop("status", None)
            steps.append(("MODIFIED", pod))
        elif op == "policy":
            policy = draw(clusters.network_policy(draw(st.integers(0, 4))))
            key = ("NetworkPolicy", policy["metadata"]["namespace"], policy["metadata"]["name"])
            steps.append(("MODIFIED" if key in live else "ADDED", policy))
        elif op == "unpolicy":
            policies = sorted(k for k in live if k[0] == "NetworkPolicy")
            if not policies:
                continue
            steps.append(("DELETED", live[draw(st.sampled_from(policies))]))
        else:
            ns = copy.deepcopy(live[("Namespace", "", draw(st.sampled_from(clusters.NAMESPACES)))])
            ns["metadata"]["labels"] = draw(clusters.labels)
            steps.append(("MODIFIED", ns))
        type_, obj = steps[-1]
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if type_ == "DELETED":
            live.pop(key, None)
        else:
            live[key] = obj
    return docs, steps


def _sourceless(c: Cluster) -> Cluster:
    """The cluster without each object's position in the source (which shifts as others come and go)."""
    return Cluster(
        dict(c.namespaces),
        [dataclasses.replace(p, source=None) for p in c.pods],
        [dataclasses.replace(p, source=None) for p in c.policies],
        [dataclasses.replace(a, source=None) for a in c.admin_policies],
        dataclasses.replace(c.baseline, source=None) if c.baseline is not None else None,
        sorted(c.warnings),
    )


def _drain(source: StaticSource, parsed: ParsedObjects) -> None:
    while (change := source.next_change(timeout=0)) is not None:
        parsed.apply(change)


def _assert_equal_to_full(inc: IncrementalCompiler, full_cluster: Cluster) -> None:
    assert inc.compiled is not None
    full = compile_cluster(full_cluster, inc.allocator.copy(), inc.host_addresses)
    got, want = inc.compiled.identities, full.identities
    assert got.by_id == want.by_id
    assert got.pod_identity == want.pod_identity
    assert got.address_identity == want.address_identity
    assert got.cidr_identity == want.cidr_identity
    assert {k: set(v) for k, v in got.pod_identities_by_ns.items()} == {
        k: set(v) for k, v in want.pod_identities_by_ns.items()
    }
    for ident in want.pods():
        for d in DIRECTIONS:
            assert inc.compiled.direction(ident.id, d) == full.direction(ident.id, d)
        assert inc.image(ident.id) == map_image(full, ident.id), ident.describe()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_sequences(), st.sampled_from([None, *HOSTS]))
def test_incremental_updates_equal_a_full_compile_after_every_change(
    case: tuple[list[Obj], list[tuple[str, Obj]]], host: str | None
) -> None:
    docs, steps = case
    source = StaticSource(docs)
    source.start()
    parsed = ParsedObjects()
    _drain(source, parsed)
    inc = IncrementalCompiler((ipaddress.ip_address(host),) if host else ())
    first = inc.update(parsed.cluster())
    assert first.recompiled and first.addresses_changed
    _assert_equal_to_full(inc, cluster(source))
    for type_, obj in steps:
        before = inc.compiled
        assert before is not None
        images_before = {i.id: inc.image(i.id) for i in before.identities.pods()}
        source.push(type_, obj)  # type: ignore[arg-type]
        _drain(source, parsed)
        assert _sourceless(parsed.cluster()) == _sourceless(cluster(source))
        carried = inc.carried
        update = inc.update(parsed.cluster())
        _assert_equal_to_full(inc, cluster(source))
        if inc.carried > carried:  # the carried selector results equal a fresh evaluation's
            assert update.compiled._selecting == compile_cluster(cluster(source), inc.allocator.copy())._selecting
        # What the update says did not change really did not: the image objects are the ones from before.
        for ident in update.compiled.identities.pods():
            if ident.id not in update.changed and ident.id in images_before:
                assert inc.image(ident.id) is images_before[ident.id]
        if not update.addresses_changed:
            assert update.compiled.identities.address_identity == before.identities.address_identity


def _pod(name: str, labels: dict[str, str], ip: str | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "web", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]},
    }
    if ip is not None:
        obj["status"] = {"podIP": ip}
    return obj


POLICY: Obj = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "only-front", "namespace": "web"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "back"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "front"}}}]}],
    },
}


def test_a_pod_with_a_known_label_set_needs_no_compile_and_no_new_image() -> None:
    ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}
    source = StaticSource([ns, POLICY, _pod("back-0", {"app": "back"}), _pod("front-0", {"app": "front"})])
    source.start()
    parsed = ParsedObjects()
    _drain(source, parsed)
    inc = IncrementalCompiler()
    inc.update(parsed.cluster())
    assert inc.compiled is not None
    back = inc.compiled.identities.pod_identity[("web", "back-0", "Pod")]
    image = inc.image(back)

    source.push("ADDED", _pod("front-1", {"app": "front"}, "10.0.0.7"))  # scale-up: same labels, an address
    _drain(source, parsed)
    update = inc.update(parsed.cluster())
    assert not update.recompiled and update.changed == frozenset() and update.addresses_changed
    assert inc.image(back) is image
    assert inc.compiles == 1

    source.push("ADDED", _pod("other-0", {"app": "other"}))  # a new label set: compiled, back's image kept
    _drain(source, parsed)
    update = inc.update(parsed.cluster())
    other = update.compiled.identities.pod_identity[("web", "other-0", "Pod")]
    assert update.recompiled and update.changed == frozenset({other})
    assert inc.carried == 1  # only pods changed: the selector results carried over
    assert inc.image(back) is image
    assert update.compiled.identities.pod_identity[("web", "back-0", "Pod")] == back  # numbers are stable

    source.push("MODIFIED", _pod("other-0", {"app": "front"}))  # relabelled into the selected set
    _drain(source, parsed)
    update = inc.update(parsed.cluster())
    # {app: other} is gone, so this compiles (rules must stop naming it), but no image of a pod still
    # running changes: back's rule selects {app: front}, which existed before.
    assert update.recompiled and update.changed == frozenset()
    assert inc.image(back) is image
    assert update.compiled.identities.pod_identity[("web", "other-0", "Pod")] != other
