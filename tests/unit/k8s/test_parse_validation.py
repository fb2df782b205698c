"""Rejecting what the API server rejects, with file, document index, object and field path."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.errors import ManifestError
from podnet.k8s.manifests import parse_text
from podnet.k8s.parse import build_cluster
from tests.unit.k8s.helpers import (
    cluster,
    ingress_from,
    ingress_ports,
    namespace,
    network_policy,
    pod,
    problems,
    workload,
)

NP = "t.yaml[doc 0]: NetworkPolicy default/np"
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
RANGE = "must be between 1 and 65535, inclusive"


def np_problems(spec: dict[str, Any]) -> list[str]:
    """The problems of one NetworkPolicy ``default/np``, without the common prefix."""
    found = problems(network_policy(spec))
    assert all(p.startswith(NP + ": ") for p in found), found
    return [p[len(NP) + 2 :] for p in found]


# -- ports ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ({"port": 0}, f"spec.ingress[0].ports[1].port: Invalid value: 0: {RANGE}"),
        ({"port": 65536}, f"spec.ingress[0].ports[1].port: Invalid value: 65536: {RANGE}"),
        ({"port": -1}, f"spec.ingress[0].ports[1].port: Invalid value: -1: {RANGE}"),
        ({"port": 80, "endPort": 79}, "spec.ingress[0].ports[1].endPort: Invalid value: 79: must be >= port (80)"),
        ({"port": 80, "endPort": 65536}, f"spec.ingress[0].ports[1].endPort: Invalid value: 65536: {RANGE}"),
        (
            {"endPort": 90},
            "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is not specified",
        ),
        (
            {"port": "http", "endPort": 90},
            "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
        ),
        ({"port": 80, "endPort": "90"}, "spec.ingress[0].ports[1].endPort: Invalid value: '90': must be an integer"),
        (
            {"protocol": "ICMP", "port": 80},
            'spec.ingress[0].ports[1].protocol: Unsupported value: \'ICMP\': supported values: "SCTP", "TCP", "UDP"',
        ),
        (
            {"protocol": "tcp"},
            'spec.ingress[0].ports[1].protocol: Unsupported value: \'tcp\': supported values: "SCTP", "TCP", "UDP"',
        ),
        (
            {"port": "HTTP"},
            "spec.ingress[0].ports[1].port: Invalid value: 'HTTP': must contain only lowercase alphanumeric "
            "characters and '-', no '--', and not start or end with '-'",
        ),
        (
            {"port": "a--b"},
            "spec.ingress[0].ports[1].port: Invalid value: 'a--b': must contain only lowercase alphanumeric "
            "characters and '-', no '--', and not start or end with '-'",
        ),
        (
            {"port": "very-long-port-name"},
            "spec.ingress[0].ports[1].port: Invalid value: 'very-long-port-name': must be no more than 15 characters",
        ),
        # A quoted number is a port *name* for the API server, and names need a letter.
        ({"port": "80"}, "spec.ingress[0].ports[1].port: Invalid value: '80': must contain at least one letter"),
        ({"port": True}, "spec.ingress[0].ports[1].port: Invalid value: True: must be a non-empty string"),
        ({"port": 80, "porrt": 81}, "spec.ingress[0].ports[1].porrt: unknown field"),
        ("80", "spec.ingress[0].ports[1]: must be an object"),
    ],
)
def test_bad_ports(port: Any, expected: str) -> None:
    assert np_problems(ingress_ports({"port": 443}, port)) == [expected]


def test_end_port_below_port_and_out_of_range_are_both_reported() -> None:
    assert np_problems(ingress_ports({"port": 80, "endPort": 0})) == [
        "spec.ingress[0].ports[0].endPort: Invalid value: 0: must be >= port (80)",
        f"spec.ingress[0].ports[0].endPort: Invalid value: 0: {RANGE}",
    ]


def test_the_issue_example_message() -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"port": 80}, {"port": 80, "endPort": 79}]}]}
    assert problems(network_policy(spec, "web")) == [
        "t.yaml[doc 0]: NetworkPolicy default/web: spec.ingress[0].ports[1].endPort: Invalid value: "
        "79: must be >= port (80)"
    ]


def test_port_checks_apply_to_egress_too() -> None:
    spec = {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}], "ports": [{"port": 70000}]}]}
    assert np_problems(spec) == [f"spec.egress[0].ports[0].port: Invalid value: 70000: {RANGE}"]


# -- peers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ({}, ["spec.ingress[0].from[0]: Required value: must specify a peer"]),
        ({"podSelector": None}, ["spec.ingress[0].from[0]: Required value: must specify a peer"]),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
            ["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "namespaceSelector": {"matchLabels": {"bad key": "x"}}},
            [
                "spec.ingress[0].from[0].namespaceSelector.matchLabels: Invalid value: 'bad key': name part must "
                "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                "character",
                "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer",
            ],
        ),
        ({"ipBlock": {}}, ["spec.ingress[0].from[0].ipBlock.cidr: Required value"]),
        ({"ipBlock": {"cidr": ""}}, ["spec.ingress[0].from[0].ipBlock.cidr: Required value"]),
        (
            {"ipBlock": {"cidr": "10.0.0.1"}},
            [f"spec.ingress[0].from[0].ipBlock.cidr: Invalid value: '10.0.0.1': {CIDR_MSG}"],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/33"}},
            [f"spec.ingress[0].from[0].ipBlock.cidr: Invalid value: '10.0.0.0/33': {CIDR_MSG}"],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/255.0.0.0"}},
            [f"spec.ingress[0].from[0].ipBlock.cidr: Invalid value: '10.0.0.0/255.0.0.0': {CIDR_MSG}"],
        ),
        (
            {"ipBlock": {"cidr": "fe80::%eth0/64"}},
            [f"spec.ingress[0].from[0].ipBlock.cidr: Invalid value: 'fe80::%eth0/64': {CIDR_MSG}"],
        ),
        (
            {"ipBlock": {"cidr": "300.0.0.0/8"}},
            [f"spec.ingress[0].from[0].ipBlock.cidr: Invalid value: '300.0.0.0/8': {CIDR_MSG}"],
        ),
        (
            {"ipBlock": {"cidr": "::ffff:10.0.0.0/104"}},
            [
                "spec.ingress[0].from[0].ipBlock.cidr: Invalid value: '::ffff:10.0.0.0/104': must not have an "
                "IPv4-mapped IPv6 address"
            ],
        ),
        ({"ipBlock": {"cidr": 10}}, [f"spec.ingress[0].from[0].ipBlock.cidr: Invalid value: 10: {CIDR_MSG}"]),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}},
            [
                "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: '11.0.0.0/16': "
                "must be a strict subset of `cidr`"
            ],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/16", "10.0.0.0/8"]}},
            [
                "spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: '10.0.0.0/8': "
                "must be a strict subset of `cidr`"
            ],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/8"]}},
            [
                "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: '10.0.0.0/8': "
                "must be a strict subset of `cidr`"
            ],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["::/120"]}},
            ["spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: '::/120': must be a strict subset of `cidr`"],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0"]}},
            [f"spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: '10.0.0.0': {CIDR_MSG}"],
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8", "expect": ["10.0.0.0/16"]}},
            ["spec.ingress[0].from[0].ipBlock.expect: unknown field"],
        ),
        ({"podSelector": {}, "namespaceSelecter": {}}, ["spec.ingress[0].from[0].namespaceSelecter: unknown field"]),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            [
                "spec.ingress[0].from[0].podSelector.matchExpressions[0].values: Required value: must be specified "
                "when `operator` is 'In' or 'NotIn'"
            ],
        ),
    ],
)
def test_bad_peers(peer: dict[str, Any], expected: list[str]) -> None:
    assert np_problems(ingress_from(peer)) == expected


def test_an_except_holding_the_cidr_host_bits_only_is_inside() -> None:
    [np] = cluster(
        network_policy(ingress_from({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.2.3/16"]}}))
    ).policies
    assert np.ingress[0].peers is not None
    block = np.ingress[0].peers[0].ip_block
    assert block is not None and [str(e) for e in block.excepts] == ["10.1.0.0/16"]


def test_a_cidr_with_host_bits_is_accepted_with_the_api_servers_warning() -> None:
    c = cluster(network_policy(ingress_from({"ipBlock": {"cidr": "10.0.0.1/24"}})))
    assert c.warnings == [
        f'warning: {NP}: spec.ingress[0].from[0].ipBlock.cidr: CIDR value "10.0.0.1/24" is ambiguous in this '
        'context (should be "10.0.0.0/24" or "10.0.0.1/32"?)'
    ]
    block = c.policies[0].ingress[0].peers[0].ip_block  # type: ignore[index]
    assert block is not None and str(block.cidr) == "10.0.0.0/24"


def test_an_egress_rule_with_from_is_rejected_not_read_as_allow_all() -> None:
    spec = {"podSelector": {}, "egress": [{"from": [{"podSelector": {"matchLabels": {"a": "b"}}}]}]}
    assert np_problems(spec) == ["spec.egress[0].from: unknown field"]


def test_unknown_spec_fields() -> None:
    assert np_problems({"podSelector": {}, "policyType": ["Egress"], "ingres": []}) == [
        "spec.policyType: unknown field",
        "spec.ingres: unknown field",
    ]


# -- policy types and shapes ---------------------------------------------------------------------
def test_unknown_policy_types() -> None:
    assert np_problems({"podSelector": {}, "policyTypes": ["Ingress", "egress"]}) == [
        'spec.policyTypes[1]: Unsupported value: \'egress\': supported values: "Ingress", "Egress"'
    ]


def test_more_than_two_policy_types() -> None:
    assert np_problems({"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]}) == [
        "spec.policyTypes: Invalid value: ['Ingress', 'Egress', 'Ingress']: may not specify more than two policyTypes"
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"podSelector": {}, "ingress": {"from": []}}, ["spec.ingress: must be a list"]),
        ({"podSelector": {}, "ingress": ["x"]}, ["spec.ingress[0]: must be an object"]),
        ({"podSelector": {}, "ingress": [{"from": {}}]}, ["spec.ingress[0].from: must be a list"]),
        ({"podSelector": {}, "policyTypes": "Ingress"}, ["spec.policyTypes: must be a list"]),
        ({"podSelector": "app=web"}, ["spec.podSelector: must be an object"]),
    ],
)
def test_wrong_shapes(spec: dict[str, Any], expected: list[str]) -> None:
    assert np_problems(spec) == expected


def test_a_spec_that_is_not_an_object() -> None:
    raw = network_policy({})
    raw["spec"] = ["x"]
    assert problems(raw) == [f"{NP}: spec: must be an object"]


# -- metadata, kinds, duplicates -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Web", f"metadata.name: Invalid value: 'Web': {SUBDOMAIN}"),
        ("web_1", f"metadata.name: Invalid value: 'web_1': {SUBDOMAIN}"),
        ("-web", f"metadata.name: Invalid value: '-web': {SUBDOMAIN}"),
        ("web\n", f"metadata.name: Invalid value: 'web\\n': {SUBDOMAIN}"),
        ("a" * 254, f"metadata.name: Invalid value: '{'a' * 254}': must be no more than 253 characters"),
        ("", "metadata.name: Required value: name or generateName is required"),
        (None, "metadata.name: Required value: name or generateName is required"),
        (7, "metadata.name: Required value: name or generateName is required"),
    ],
)
def test_bad_names(name: Any, expected: str) -> None:
    raw = pod("x")
    raw["metadata"]["name"] = name
    shown = name if isinstance(name, str) else ""
    assert problems(raw) == [f"t.yaml[doc 0]: Pod default/{shown}: {expected}"]


def test_a_dotted_name_is_fine_for_a_pod_but_not_for_a_namespace() -> None:
    assert [p.name for p in cluster(pod("web.v1")).pods] == ["web.v1"]
    assert problems(namespace("team.a")) == [
        f"t.yaml[doc 0]: Namespace team.a: metadata.name: Invalid value: 'team.a': {LABEL}"
    ]
    assert problems(namespace("a" * 64)) == [
        f"t.yaml[doc 0]: Namespace {'a' * 64}: metadata.name: Invalid value: '{'a' * 64}': "
        f"must be no more than 63 characters"
    ]


def test_a_cron_job_name_has_at_most_52_characters() -> None:
    name = "c" * 53
    assert problems(workload("CronJob", name)) == [
        f"t.yaml[doc 0]: CronJob default/{name}: metadata.name: Invalid value: '{name}': "
        f"must be no more than 52 characters"
    ]


def test_bad_namespace_and_labels() -> None:
    raw = pod("p", "Shop", {"app": "web shop", "-x": "y"})
    assert problems(raw) == [
        f"t.yaml[doc 0]: Pod Shop/p: metadata.namespace: Invalid value: 'Shop': {LABEL}",
        "t.yaml[doc 0]: Pod Shop/p: metadata.labels: Invalid value: 'web shop': a valid label must be an empty "
        "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character",
        "t.yaml[doc 0]: Pod Shop/p: metadata.labels: Invalid value: '-x': name part must consist of alphanumeric "
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ]


def test_metadata_problems_do_not_hide_spec_problems() -> None:
    raw = network_policy({"podSelector": {}, "policyTypes": ["Sideways"]}, name="Bad")
    assert problems(raw) == [
        f"t.yaml[doc 0]: NetworkPolicy default/Bad: metadata.name: Invalid value: 'Bad': {SUBDOMAIN}",
        "t.yaml[doc 0]: NetworkPolicy default/Bad: spec.policyTypes[0]: Unsupported value: 'Sideways': "
        'supported values: "Ingress", "Egress"',
    ]


def test_missing_kind_api_version_and_metadata() -> None:
    assert problems({"apiVersion": "v1", "metadata": {"name": "x"}}) == [
        "t.yaml[doc 0]: kind: Required value: kind must be set"
    ]
    assert problems({"kind": "Pod", "metadata": {"name": "x"}}) == [
        "t.yaml[doc 0]: Pod default/x: apiVersion: Required value: apiVersion must be set"
    ]
    assert problems({"apiVersion": "v1", "kind": "Pod"}) == [
        "t.yaml[doc 0]: Pod default/: metadata: Required value",
        "t.yaml[doc 0]: Pod default/: metadata.name: Required value: name or generateName is required",
    ]


def test_duplicate_names_name_both_documents() -> None:
    assert problems(pod("a", "x"), pod("a", "y"), pod("a", "x")) == [
        "t.yaml[doc 2]: Pod x/a: metadata.name: Duplicate value: 'a': already defined in t.yaml[doc 0]"
    ]


def test_the_default_namespace_is_the_same_whether_written_or_not() -> None:
    assert problems(network_policy({}, "np"), network_policy({}, "np", "default")) == [
        "t.yaml[doc 1]: NetworkPolicy default/np: metadata.name: Duplicate value: 'np': "
        "already defined in t.yaml[doc 0]"
    ]


def test_the_same_name_in_another_kind_or_namespace_is_not_a_duplicate() -> None:
    c = cluster(
        pod("web"),
        network_policy({}, "web"),
        workload("Deployment", "web"),
        pod("web", "other"),
        namespace("web"),
    )
    assert len(c.pods) == 3 and len(c.policies) == 1 and "web" in c.namespaces


def test_duplicates_across_files_and_list_items() -> None:
    text_a = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    text_b = (
        "kind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n"
    )
    with pytest.raises(ManifestError) as info:
        build_cluster(parse_text(text_a, "a.yaml") + parse_text(text_b, "b.yaml"))
    assert info.value.problems == [
        "b.yaml[doc 0].items[1]: Namespace shop: metadata.name: Duplicate value: 'shop': "
        "already defined in a.yaml[doc 0]"
    ]


# -- pods and workloads --------------------------------------------------------------------------
def test_bad_pod_fields() -> None:
    raw = pod(
        "p",
        ports=[
            {"name": "http", "containerPort": 80},
            {"name": "http", "containerPort": 81},
            {"name": "Bad", "containerPort": 82},
            {"containerPort": 0},
            {"containerPort": 83, "protocol": "ICMP"},
        ],
        status={"podIPs": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.300"}], "podIP": "10.0.0.1"},
        owners=[
            {"kind": "ReplicaSet", "name": "a", "controller": True},
            {"kind": "ReplicaSet", "name": "b", "controller": True},
        ],
    )
    assert problems(raw) == [
        "t.yaml[doc 0]: Pod default/p: metadata.ownerReferences: Invalid value: 2 controllers: Only one reference "
        "can have Controller set to true",
        "t.yaml[doc 0]: Pod default/p: status.podIPs[1].ip: Invalid value: '10.0.0.300': must be a valid IP "
        "address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        "t.yaml[doc 0]: Pod default/p: spec.containers[0].ports[1].name: Duplicate value: 'http'",
        "t.yaml[doc 0]: Pod default/p: spec.containers[0].ports[2].name: Invalid value: 'Bad': must contain only "
        "lowercase alphanumeric characters and '-', no '--', and not start or end with '-'",
        f"t.yaml[doc 0]: Pod default/p: spec.containers[0].ports[3].containerPort: Invalid value: 0: {RANGE}",
        "t.yaml[doc 0]: Pod default/p: spec.containers[0].ports[4].protocol: Unsupported value: 'ICMP': supported "
        'values: "SCTP", "TCP", "UDP"',
    ]


def test_a_bad_pod_ip_is_reported_at_its_own_field() -> None:
    assert problems(pod("p", status={"podIP": "nope"})) == [
        "t.yaml[doc 0]: Pod default/p: status.podIP: Invalid value: 'nope': must be a valid IP address, "
        "(e.g. 10.9.8.7 or 2001:db8::ffff)"
    ]


def test_workload_selector_must_exist_be_non_empty_and_match_the_template() -> None:
    missing = workload("Deployment", "a")
    del missing["spec"]["selector"]
    empty = workload("StatefulSet", "b")
    empty["spec"]["selector"] = {}
    mismatch = workload("DaemonSet", "c", labels={"app": "c"})
    mismatch["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    bad = workload("ReplicaSet", "d")
    bad["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "Is"}]}
    assert problems(missing, empty, mismatch, bad) == [
        "t.yaml[doc 0]: Deployment default/a: spec.selector: Required value",
        "t.yaml[doc 1]: StatefulSet default/b: spec.selector: Invalid value: {}: "
        "empty selector is invalid for statefulset",
        "t.yaml[doc 2]: DaemonSet default/c: spec.template.metadata.labels: Invalid value: {'app': 'c'}: "
        "`selector` does not match template `labels`",
        "t.yaml[doc 3]: ReplicaSet default/d: spec.selector.matchExpressions[0].operator: Invalid value: 'Is': "
        "not a valid selector operator",
    ]


def test_workload_template_is_required_and_checked() -> None:
    no_template = workload("Job", "j")
    del no_template["spec"]["template"]
    cron = workload("CronJob", "c")
    cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] = {"app": "-c"}
    assert problems(no_template, cron) == [
        "t.yaml[doc 0]: Job default/j: spec.template: Required value",
        "t.yaml[doc 1]: CronJob default/c: spec.jobTemplate.spec.template.metadata.labels: Invalid value: '-c': a "
        "valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character",
    ]


def test_every_problem_of_every_document_is_reported_in_order() -> None:
    found = problems(
        pod("ok"),
        network_policy(ingress_ports({"port": 0}), "a"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ignored"}},
        network_policy(ingress_from({"ipBlock": {"cidr": "x"}}), "b"),
        pod("ok"),
    )
    assert found == [
        f"t.yaml[doc 1]: NetworkPolicy default/a: spec.ingress[0].ports[0].port: Invalid value: 0: {RANGE}",
        f"t.yaml[doc 3]: NetworkPolicy default/b: spec.ingress[0].from[0].ipBlock.cidr: Invalid value: 'x': {CIDR_MSG}",
        "t.yaml[doc 4]: Pod default/ok: metadata.name: Duplicate value: 'ok': already defined in t.yaml[doc 0]",
    ]


def test_ipv6_blocks_and_excepts() -> None:
    [np] = cluster(network_policy(ingress_from({"ipBlock": {"cidr": "fd00::/64", "except": ["fd00::/80"]}}))).policies
    assert np.ingress[0].peers is not None
    block = np.ingress[0].peers[0].ip_block
    assert block is not None and (str(block.cidr), [str(e) for e in block.excepts]) == ("fd00::/64", ["fd00::/80"])
    assert np_problems(ingress_from({"ipBlock": {"cidr": "fd00::/64", "except": ["10.0.0.0/8", "fd01::/80"]}})) == [
        "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: '10.0.0.0/8': must be a strict subset of `cidr`",
        "spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: 'fd01::/80': must be a strict subset of `cidr`",
    ]


def test_replication_controller_selector_is_a_label_map_matching_the_template() -> None:
    no_selector = workload("ReplicationController", "a")
    del no_selector["spec"]["selector"]
    assert [p.ref for p in cluster(no_selector).pods] == ["default/a"]
    mismatch = workload("ReplicationController", "b", labels={"app": "b"})
    mismatch["spec"]["selector"] = {"app": "c"}
    bad = workload("ReplicationController", "c")
    bad["spec"]["selector"] = {"app": "-"}
    assert problems(mismatch, bad) == [
        "t.yaml[doc 0]: ReplicationController default/b: spec.template.metadata.labels: Invalid value: "
        "{'app': 'b'}: `selector` does not match template `labels`",
        "t.yaml[doc 1]: ReplicationController default/c: spec.selector: Invalid value: '-': a valid label must be "
        "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character",
    ]
