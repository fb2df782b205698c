"""AdminNetworkPolicy and BaselineAdminNetworkPolicy validation, after the v1alpha1 CRD schema."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.k8s.helpers import ALL_NAMESPACES, admin_policy, anp_spec, cluster, problems

ANP = "t.yaml[doc 0]: AdminNetworkPolicy anp"
BANP = "t.yaml[doc 0]: BaselineAdminNetworkPolicy default"
RANGE = "must be between 1 and 65535, inclusive"


def anp_problems(spec: dict[str, Any]) -> list[str]:
    found = problems(admin_policy(spec))
    assert all(p.startswith(ANP + ": ") for p in found), found
    return [p[len(ANP) + 2 :] for p in found]


def egress(*rules: dict[str, Any]) -> dict[str, Any]:
    return anp_spec(egress=list(rules))


def ingress(*rules: dict[str, Any]) -> dict[str, Any]:
    return anp_spec(ingress=list(rules))


def allow_to(*peers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"action": "Allow", "to": list(peers), **extra}


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        (None, "spec.priority: Required value"),
        (-1, "spec.priority: Invalid value: -1: should be less than or equal to 1000 and greater than or equal to 0"),
        (
            1001,
            "spec.priority: Invalid value: 1001: should be less than or equal to 1000 and greater than or equal to 0",
        ),
        ("5", "spec.priority: Invalid value: '5': must be an integer"),
        (1.5, "spec.priority: Invalid value: 1.5: must be an integer"),
    ],
)
def test_priority(priority: Any, expected: str) -> None:
    spec = anp_spec(priority)
    if priority is None:
        del spec["priority"]
    assert anp_problems(spec) == [expected]


@pytest.mark.parametrize("priority", [0, 1000])
def test_priority_bounds_are_inclusive(priority: int) -> None:
    assert [a.priority for a in cluster(admin_policy(anp_spec(priority))).admin_policies] == [priority]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (None, ["spec.subject: Required value"]),
        ({}, ["spec.subject: Invalid value: exactly one of namespaces, pods must be set"]),
        (
            {"namespaces": {}, "pods": {"namespaceSelector": {}, "podSelector": {}}},
            ["spec.subject: Invalid value: exactly one of namespaces, pods must be set"],
        ),
        (
            {"networks": ["10.0.0.0/8"]},
            ["spec.subject.networks: Forbidden: not allowed here (allowed: namespaces, pods)"],
        ),
        (
            {"pods": {"podSelector": {}}},
            ["spec.subject.pods.namespaceSelector: Required value"],
        ),
        (
            {"namespaces": {"matchLabels": {"a": "-"}}},
            [
                "spec.subject.namespaces.matchLabels: Invalid value: '-': a valid label must be an empty string or "
                "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                "character"
            ],
        ),
    ],
)
def test_subject(subject: Any, expected: list[str]) -> None:
    spec = anp_spec()
    if subject is None:
        del spec["subject"]
    else:
        spec["subject"] = subject
    assert anp_problems(spec) == expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (None, "spec.ingress[0].action: Required value"),
        ("Drop", 'spec.ingress[0].action: Unsupported value: \'Drop\': supported values: "Allow", "Deny", "Pass"'),
        ("allow", 'spec.ingress[0].action: Unsupported value: \'allow\': supported values: "Allow", "Deny", "Pass"'),
    ],
)
def test_anp_actions(action: Any, expected: str) -> None:
    rule: dict[str, Any] = {"from": [ALL_NAMESPACES]}
    if action is not None:
        rule["action"] = action
    assert anp_problems(ingress(rule)) == [expected]


def test_a_bad_action_does_not_hide_the_rules_other_problems() -> None:
    assert anp_problems(ingress({"action": "Nope", "from": []})) == [
        'spec.ingress[0].action: Unsupported value: \'Nope\': supported values: "Allow", "Deny", "Pass"',
        "spec.ingress[0].from: Invalid value: must have between 1 and 100 items",
    ]


def test_baseline_has_no_pass_and_no_priority_and_must_be_named_default() -> None:
    spec = {
        "priority": 1,
        "subject": ALL_NAMESPACES,
        "egress": [{"action": "Pass", "to": [ALL_NAMESPACES]}],
    }
    assert problems(admin_policy(spec, "base", baseline=True)) == [
        "t.yaml[doc 0]: BaselineAdminNetworkPolicy base: spec.priority: unknown field",
        "t.yaml[doc 0]: BaselineAdminNetworkPolicy base: metadata.name: Invalid value: 'base': Only one baseline "
        'admin network policy with metadata.name="default" can be created in the cluster',
        "t.yaml[doc 0]: BaselineAdminNetworkPolicy base: spec.egress[0].action: Unsupported value: 'Pass': "
        'supported values: "Allow", "Deny"',
    ]


def test_two_baselines_are_duplicates_and_pass_is_not_a_baseline_action() -> None:
    spec = {"subject": ALL_NAMESPACES}
    found = problems(admin_policy(spec, "default", baseline=True), admin_policy(spec, "default", baseline=True))
    assert found == [
        "t.yaml[doc 1]: BaselineAdminNetworkPolicy default: metadata.name: Duplicate value: 'default': already "
        "defined in t.yaml[doc 0]"
    ]
    spec = {"subject": ALL_NAMESPACES, "ingress": [{"action": "Pass"}]}
    assert problems(admin_policy(spec, "default", baseline=True)) == [
        f'{BANP}: spec.ingress[0].action: Unsupported value: \'Pass\': supported values: "Allow", "Deny"',
        f"{BANP}: spec.ingress[0].from: Invalid value: must have between 1 and 100 items",
    ]


def test_an_unsupported_api_version_of_the_group() -> None:
    raw = admin_policy(anp_spec())
    raw["apiVersion"] = "policy.networking.k8s.io/v1"
    assert problems(raw) == [
        f"{ANP}: apiVersion: Unsupported value: 'policy.networking.k8s.io/v1': supported values: "
        "'policy.networking.k8s.io/v1alpha1'"
    ]


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ({}, ["spec.egress[0].to[0]: Invalid value: exactly one of namespaces, pods, nodes, networks must be set"]),
        (
            {"namespaces": {}, "networks": ["10.0.0.0/8"]},
            ["spec.egress[0].to[0]: Invalid value: exactly one of namespaces, pods, nodes, networks must be set"],
        ),
        ({"networks": []}, ["spec.egress[0].to[0].networks: Invalid value: must have between 1 and 25 items"]),
        (
            {"networks": [f"10.0.{i}.0/24" for i in range(26)]},
            ["spec.egress[0].to[0].networks: Invalid value: must have between 1 and 25 items"],
        ),
        (
            {"networks": ["10.0.0.0/8", "10.0.0.0"]},
            [
                "spec.egress[0].to[0].networks[1]: Invalid value: '10.0.0.0': must be a valid CIDR value, "
                "(e.g. 10.9.8.0/24 or 2001:db8::/64)"
            ],
        ),
        (
            {"domainNames": ["example.com"]},
            [
                "spec.egress[0].to[0].domainNames: unknown field",
                "spec.egress[0].to[0]: Invalid value: exactly one of namespaces, pods, nodes, networks must be set",
            ],
        ),
        (
            {"pods": {"namespaceSelector": {}, "podSelector": {}, "nodeSelector": {}}},
            ["spec.egress[0].to[0].pods.nodeSelector: unknown field"],
        ),
        ({"pods": {"namespaceSelector": {}}}, ["spec.egress[0].to[0].pods.podSelector: Required value"]),
    ],
)
def test_egress_peers(peer: dict[str, Any], expected: list[str]) -> None:
    assert anp_problems(egress(allow_to(peer))) == expected


def test_networks_and_nodes_are_egress_only() -> None:
    spec = ingress(
        {
            "action": "Deny",
            "from": [
                {"networks": ["10.0.0.0/8"]},
                {"nodes": {}},
                {"pods": {"namespaceSelector": {}, "podSelector": {}}},
            ],
        }
    )
    assert anp_problems(spec) == [
        "spec.ingress[0].from[0].networks: Forbidden: not allowed here (allowed: namespaces, pods)",
        "spec.ingress[0].from[1].nodes: Forbidden: not allowed here (allowed: namespaces, pods)",
    ]


def test_rule_shapes() -> None:
    spec = anp_spec(
        ingress=[{"name": "x" * 101, "action": "Allow", "from": [ALL_NAMESPACES], "form": []}],
        egress=[{"action": "Allow"}],
    )
    assert anp_problems(spec) == [
        "spec.ingress[0].form: unknown field",
        "spec.ingress[0].name: Invalid value: must be a string of at most 100 characters",
        "spec.egress[0].to: Invalid value: must have between 1 and 100 items",
    ]


def test_at_most_100_rules() -> None:
    rule = {"action": "Allow", "from": [ALL_NAMESPACES]}
    assert anp_problems(ingress(*[rule] * 101)) == ["spec.ingress: Too many: must have at most 100 items"]


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ({}, ["spec.egress[0].ports[0]: Invalid value: exactly one of portNumber, namedPort, portRange must be set"]),
        (
            {"portNumber": {"port": 80}, "namedPort": "http"},
            ["spec.egress[0].ports[0]: Invalid value: exactly one of portNumber, namedPort, portRange must be set"],
        ),
        ({"portNumber": {"port": 0}}, [f"spec.egress[0].ports[0].portNumber.port: Invalid value: 0: {RANGE}"]),
        ({"portNumber": {}}, [f"spec.egress[0].ports[0].portNumber.port: Invalid value: None: {RANGE}"]),
        (
            {"portNumber": {"port": 80, "protocol": "ICMP"}},
            [
                "spec.egress[0].ports[0].portNumber.protocol: Unsupported value: 'ICMP': supported values: "
                '"SCTP", "TCP", "UDP"'
            ],
        ),
        (
            {"namedPort": "Web"},
            [
                "spec.egress[0].ports[0].namedPort: Invalid value: 'Web': must contain only lowercase alphanumeric "
                "characters and '-', no '--', and not start or end with '-'"
            ],
        ),
        (
            {"portRange": {"start": 90, "end": 80}},
            ["spec.egress[0].ports[0].portRange: Invalid value: Start port 90 must be less than End port 80"],
        ),
        (
            {"portRange": {"start": 80, "end": 80}},
            ["spec.egress[0].ports[0].portRange: Invalid value: Start port 80 must be less than End port 80"],
        ),
        (
            {"portRange": {"start": 0, "end": 70000}},
            [
                f"spec.egress[0].ports[0].portRange.start: Invalid value: 0: {RANGE}",
                f"spec.egress[0].ports[0].portRange.end: Invalid value: 70000: {RANGE}",
            ],
        ),
        (
            {"portRange": {"start": 1, "end": 2, "step": 1}},
            ["spec.egress[0].ports[0].portRange.step: unknown field"],
        ),
        (
            {"port": 80},
            [
                "spec.egress[0].ports[0].port: unknown field",
                "spec.egress[0].ports[0]: Invalid value: exactly one of portNumber, namedPort, portRange must be set",
            ],
        ),
    ],
)
def test_ports(port: dict[str, Any], expected: list[str]) -> None:
    assert anp_problems(egress(allow_to(ALL_NAMESPACES, ports=[port]))) == expected


def test_an_empty_port_list_is_rejected_as_the_crd_requires_at_least_one() -> None:
    assert anp_problems(egress(allow_to(ALL_NAMESPACES, ports=[]))) == [
        "spec.egress[0].ports: Invalid value: must have between 1 and 100 items"
    ]


def test_a_missing_spec() -> None:
    raw = admin_policy({})
    del raw["spec"]
    assert problems(raw) == [
        f"{ANP}: spec: Required value",
        f"{ANP}: spec.priority: Required value",
        f"{ANP}: spec.subject: Required value",
    ]
