"""Turning valid documents into a Cluster: every supported kind, namespaces, pods, owners, warnings."""

from __future__ import annotations

import ipaddress

import pytest

from podnet.k8s.model import NS_NAME_LABEL, ContainerPort, IPBlock, Namespace, Peer, PortSpec, Rule, Source
from podnet.k8s.selectors import EVERYTHING, LabelSelector
from tests.unit.k8s.helpers import (
    FILE,
    admin_policy,
    anp_spec,
    cluster,
    namespace,
    network_policy,
    owner,
    pod,
    workload,
)


def test_namespaces_carry_their_name_label_and_undefined_ones_exist_with_only_it() -> None:
    c = cluster(
        namespace("shop", {"team": "a", NS_NAME_LABEL: "forged"}),
        pod("p", "orphan"),
        pod("q"),
        network_policy({"podSelector": {}}, ns="policies"),
    )
    assert c.namespaces == {
        "shop": Namespace("shop", {"team": "a", NS_NAME_LABEL: "shop"}),
        "orphan": Namespace("orphan", {NS_NAME_LABEL: "orphan"}, defined=False),
        "default": Namespace("default", {NS_NAME_LABEL: "default"}, defined=False),
        "policies": Namespace("policies", {NS_NAME_LABEL: "policies"}, defined=False),
    }


def test_a_namespace_defined_after_its_pods_is_defined() -> None:
    c = cluster(pod("p", "late"), namespace("late", {"x": "y"}))
    assert c.namespaces["late"] == Namespace("late", {"x": "y", NS_NAME_LABEL: "late"})


def test_cluster_namespace_lookup_creates_a_referenced_namespace() -> None:
    c = cluster()
    assert c.namespace("ghost") == Namespace("ghost", {NS_NAME_LABEL: "ghost"}, defined=False)
    assert "ghost" in c.namespaces


def test_a_missing_or_empty_namespace_means_default() -> None:
    p = pod("a")
    q = pod("b")
    q["metadata"]["namespace"] = ""
    c = cluster(p, q)
    assert [x.ref for x in c.pods] == ["default/a", "default/b"]


def test_a_pod_with_ports_addresses_and_node() -> None:
    raw = pod(
        "web",
        "shop",
        {"app": "web"},
        ports=[
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"containerPort": 9090, "protocol": "SCTP"},
        ],
        status={"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]},
    )
    raw["spec"]["nodeName"] = "node-1"
    raw["spec"]["initContainers"] = [{"name": "i", "ports": [{"name": "init", "containerPort": 1}]}]
    [p] = cluster(raw).pods
    assert p.namespace == "shop" and p.name == "web" and p.kind == "Pod" and p.owner is None
    assert p.labels == {"app": "web"}
    assert p.ports == (
        ContainerPort(1, "TCP", "init"),
        ContainerPort(8080, "TCP", "http"),
        ContainerPort(53, "UDP", "dns"),
        ContainerPort(9090, "SCTP", None),
    )
    assert p.ips == (ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("fd00::1"))
    assert p.node_name == "node-1"
    assert p.source == Source(FILE, 0)
    assert p.named_port("http", None) == [("TCP", 8080)]
    assert p.named_port("dns", "TCP") == []


def test_pod_ip_from_pod_ip_alone() -> None:
    [p] = cluster(pod("a", status={"podIP": "192.168.1.5"})).pods
    assert p.ips == (ipaddress.ip_address("192.168.1.5"),)


def test_a_pod_without_addresses_in_its_status_has_none() -> None:
    assert [p.ips for p in cluster(pod("a"), pod("b", status={"phase": "Pending"})).pods] == [(), ()]


def test_the_same_port_name_in_two_containers_is_allowed_as_upstream_allows_it() -> None:
    raw = pod("a", ports=[{"name": "http", "containerPort": 80}])
    raw["spec"]["containers"].append({"name": "d", "ports": [{"name": "http", "containerPort": 81}]})
    [p] = cluster(raw).pods
    assert p.named_port("http", "TCP") == [("TCP", 80), ("TCP", 81)]


def test_a_controller_owner_reference_records_the_owner() -> None:
    c = cluster(
        pod("web-1", owners=[owner("ReplicaSet", "other", controller=False), owner("ReplicaSet", "web-rs")]),
        pod("web-2", owners=[owner("ReplicaSet", "not-a-controller", controller=False)]),
    )
    assert [(p.name, p.owner) for p in c.pods] == [("web-1", "web-rs"), ("web-2", None)]


@pytest.mark.parametrize(
    "kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"]
)
def test_every_workload_kind_stands_for_its_pods_by_its_template(kind: str) -> None:
    [p] = cluster(workload(kind, "w", "apps", {"app": "w", "tier": "x"})).pods
    assert (p.namespace, p.name, p.kind) == ("apps", "w", kind)
    assert p.labels == {"app": "w", "tier": "x"}
    assert p.ports == (ContainerPort(8080, "TCP", "http"),)
    assert p.ips == () and p.owner is None


def test_a_workload_whose_pods_are_present_is_not_an_extra_endpoint() -> None:
    c = cluster(
        workload("Deployment", "web", "shop"),
        workload("StatefulSet", "db", "shop"),
        pod("web-abc", "shop", {"app": "web"}, owners=[owner("Deployment", "web")]),
        pod("web-def", "other", {"app": "web"}, owners=[owner("Deployment", "web")]),
    )
    # The owned pod in "shop" replaces the Deployment; the one in "other" has a different owner namespace.
    assert sorted((p.ref, p.kind) for p in c.pods) == [
        ("other/web-def", "Pod"),
        ("shop/db", "StatefulSet"),
        ("shop/web-abc", "Pod"),
    ]


def test_network_policy_defaults_and_rules() -> None:
    spec = {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [
            {},
            {"from": [], "ports": []},
            {
                "from": [
                    {"podSelector": {}},
                    {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {"matchLabels": {"x": "y"}}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                ],
                "ports": [
                    {"port": 80},
                    {"protocol": "UDP", "port": 53},
                    {"port": 1000, "endPort": 2000},
                    {"port": "http"},
                    {"protocol": "SCTP"},
                    {},
                ],
            },
        ],
    }
    [np] = cluster(network_policy(spec, "web", "shop")).policies
    assert (np.namespace, np.name, np.ref) == ("shop", "web", "shop/web")
    assert np.pod_selector == LabelSelector(frozenset({("app", "web")}))
    assert (np.ingress_isolation, np.egress_isolation) == (True, False)
    assert np.egress == ()
    assert np.ingress[0] == Rule(None, None)
    assert np.ingress[1] == Rule(None, None)
    assert np.ingress[2] == Rule(
        (
            Peer(pod_selector=EVERYTHING),
            Peer(LabelSelector(frozenset({("x", "y")})), LabelSelector(frozenset({("team", "a")}))),
            Peer(ip_block=IPBlock(ipaddress.ip_network("10.0.0.0/8"), (ipaddress.ip_network("10.1.0.0/16"),))),
        ),
        (
            PortSpec("TCP", 80),
            PortSpec("UDP", 53),
            PortSpec("TCP", 1000, 2000),
            PortSpec("TCP", None, None, "http"),
            PortSpec("SCTP"),
            PortSpec("TCP"),
        ),
    )


@pytest.mark.parametrize(
    ("spec", "isolation"),
    [
        ({"podSelector": {}}, (True, False)),
        ({"podSelector": {}, "egress": []}, (True, False)),
        ({"podSelector": {}, "egress": [{}]}, (True, True)),
        ({"podSelector": {}, "policyTypes": []}, (True, False)),
        ({"podSelector": {}, "policyTypes": ["Egress"]}, (False, True)),
        ({"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]}, (True, False)),
        ({"podSelector": {}, "policyTypes": ["Egress", "Ingress"]}, (True, True)),
    ],
)
def test_policy_types_default_to_ingress_plus_egress_when_there_are_egress_rules(
    spec: dict[str, object], isolation: tuple[bool, bool]
) -> None:
    [np] = cluster(network_policy(spec)).policies
    assert (np.ingress_isolation, np.egress_isolation) == isolation


def test_a_network_policy_without_pod_selector_selects_every_pod_of_its_namespace() -> None:
    [np] = cluster(network_policy({})).policies
    assert np.pod_selector == EVERYTHING and np.namespace == "default"


def test_audit_annotation() -> None:
    raw = network_policy({"podSelector": {}})
    raw["metadata"]["annotations"] = {"podnet.io/audit": "True"}
    assert [p.audit for p in cluster(raw, network_policy({"podSelector": {}}, "b")).policies] == [True, False]


def test_admin_and_baseline_policies() -> None:
    anp = admin_policy(
        {
            "priority": 5,
            "subject": {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}},
            "ingress": [{"name": "in", "action": "Pass", "from": [{"namespaces": {"matchLabels": {"a": "b"}}}]}],
            "egress": [
                {
                    "action": "Deny",
                    "to": [{"networks": ["10.0.0.0/8", "fd00::/8"]}],
                    "ports": [
                        {"portNumber": {"port": 53, "protocol": "UDP"}},
                        {"namedPort": "http"},
                        {"portRange": {"start": 1000, "end": 2000}},
                    ],
                }
            ],
        },
        name="first",
    )
    banp = admin_policy(
        {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]},
        name="default",
        baseline=True,
    )
    c = cluster(anp, banp)
    [a] = c.admin_policies
    assert (a.name, a.priority, a.kind, a.baseline) == ("first", 5, "AdminNetworkPolicy", False)
    assert a.subject.pod_selector == LabelSelector(frozenset({("app", "web")}))
    assert a.ingress[0].name == "in" and a.ingress[0].action == "Pass"
    assert a.ingress[0].peers[0].namespace_selector == LabelSelector(frozenset({("a", "b")}))
    assert a.egress[0].name == "" and a.egress[0].action == "Deny"
    assert a.egress[0].peers[0].networks == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert a.egress[0].ports == (PortSpec("UDP", 53), PortSpec(None, None, None, "http"), PortSpec("TCP", 1000, 2000))
    assert c.baseline is not None
    assert (c.baseline.name, c.baseline.kind, c.baseline.ingress[0].ports) == (
        "default",
        "BaselineAdminNetworkPolicy",
        None,
    )


def test_admin_policies_are_ordered_by_priority_then_name_and_a_shared_priority_warns() -> None:
    c = cluster(
        admin_policy(anp_spec(20), "z"),
        admin_policy(anp_spec(3), "b"),
        admin_policy(anp_spec(20), "a"),
        admin_policy(anp_spec(0), "c"),
    )
    assert [(a.priority, a.name) for a in c.admin_policies] == [(0, "c"), (3, "b"), (20, "a"), (20, "z")]
    assert c.warnings == [
        "warning: AdminNetworkPolicies a, z share priority 20: their order is undefined (podnet orders them by name)"
    ]


def test_unsupported_kinds_are_ignored_with_one_warning_each() -> None:
    c = cluster(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Secret"},
        pod("p"),
    )
    assert c.warnings == [
        "warning: t.yaml[doc 0]: ignoring unsupported kind Service svc",
        "warning: t.yaml[doc 1]: ignoring unsupported kind ConfigMap cm",
        "warning: t.yaml[doc 2]: ignoring unsupported kind Secret",
    ]
    assert [p.ref for p in c.pods] == ["default/p"]


def test_a_supported_kind_of_another_api_group_is_another_kind_and_is_ignored() -> None:
    calico = {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow", "namespace": "x"},
        "spec": {"selector": "all()", "types": ["Ingress"]},
    }
    c = cluster(calico)
    assert c.policies == []
    assert c.warnings == [
        "warning: t.yaml[doc 0]: ignoring unsupported kind NetworkPolicy (crd.projectcalico.org/v1) allow"
    ]


def test_valid_input_has_no_warnings() -> None:
    c = cluster(namespace("a"), pod("p", "a"), network_policy({"podSelector": {}}), workload("Job", "j"))
    assert c.warnings == []


def owned(raw: dict[str, object], kind: str, name: str) -> dict[str, object]:
    raw["metadata"]["ownerReferences"] = [owner(kind, name)]  # type: ignore[index]
    return raw


def test_pods_of_a_replica_set_of_a_deployment_replace_both_and_are_named_by_the_deployment() -> None:
    c = cluster(
        workload("Deployment", "web", "shop"),
        owned(workload("ReplicaSet", "web-7d9f", "shop", {"app": "web"}), "Deployment", "web"),
        pod("web-7d9f-abc", "shop", {"app": "web"}, owners=[owner("ReplicaSet", "web-7d9f")]),
        pod("web-7d9f-def", "shop", {"app": "web"}, owners=[owner("ReplicaSet", "web-7d9f")]),
    )
    assert [(p.ref, p.kind, p.owner) for p in c.pods] == [
        ("shop/web-7d9f-abc", "Pod", "web"),
        ("shop/web-7d9f-def", "Pod", "web"),
    ]


def test_a_replica_set_of_a_present_deployment_is_stood_for_by_the_deployment() -> None:
    c = cluster(
        owned(workload("ReplicaSet", "web-7d9f", "shop", {"app": "web"}), "Deployment", "web"),
        workload("Deployment", "web", "shop"),
        owned(workload("Job", "backup-123", "shop"), "CronJob", "backup"),
        workload("CronJob", "backup", "shop"),
    )
    assert [(p.ref, p.kind) for p in c.pods] == [("shop/web", "Deployment"), ("shop/backup", "CronJob")]


def test_a_replica_set_whose_deployment_is_absent_stands_for_its_pods() -> None:
    c = cluster(owned(workload("ReplicaSet", "web-7d9f", "shop"), "Deployment", "web"))
    assert [(p.ref, p.kind) for p in c.pods] == [("shop/web-7d9f", "ReplicaSet")]


def test_pods_of_a_job_of_a_cron_job_are_named_by_the_cron_job() -> None:
    c = cluster(
        workload("CronJob", "backup"),
        owned(workload("Job", "backup-1"), "CronJob", "backup"),
        pod("backup-1-xyz", owners=[owner("Job", "backup-1")]),
    )
    assert [(p.ref, p.kind, p.owner) for p in c.pods] == [("default/backup-1-xyz", "Pod", "backup")]


def test_an_owner_of_another_kind_with_the_same_name_is_not_the_owner() -> None:
    c = cluster(workload("Deployment", "web"), pod("web-1", owners=[owner("StatefulSet", "web")]))
    assert sorted((p.ref, p.kind, p.owner) for p in c.pods) == [
        ("default/web", "Deployment", None),
        ("default/web-1", "Pod", "web"),
    ]


def test_an_owner_reference_without_kind_matches_by_name() -> None:
    c = cluster(workload("StatefulSet", "db"), pod("db-0", owners=[{"name": "db", "controller": True}]))
    assert [(p.ref, p.owner) for p in c.pods] == [("default/db-0", "db")]


def test_an_ownership_cycle_does_not_hang() -> None:
    c = cluster(
        owned(workload("ReplicaSet", "a"), "ReplicaSet", "b"),
        owned(workload("ReplicaSet", "b"), "ReplicaSet", "a"),
        pod("p", owners=[owner("ReplicaSet", "a")]),
    )
    assert [(p.ref, p.owner) for p in c.pods] == [("default/p", "b")]
