"""``podnet policy`` on the example shop: every output format parses and says what the policies mean."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.unit.analyzer.conftest import SHOP, Podnet

PODS = ["api/backend", "data/postgres", "kube-system/coredns", "monitoring/prometheus", "web/frontend"]
RANGES = ["203.0.113.0/24 except 203.0.113.128/25", "203.0.113.128/25", "world"]
PAYMENTS = "203.0.113.0/24 except 203.0.113.128/25"

# What the shop's policies allow, by hand from examples/shop/policies.yaml; every other pair has nothing.
EXPECTED_OPEN = {
    ("api/backend", "data/postgres"): "TCP 5432",  # backend egress rule 0, postgres ingress on named port pg
    ("api/backend", "kube-system/coredns"): "TCP 53,UDP 53",  # the ANP's DNS rule, before NetworkPolicy
    ("api/backend", PAYMENTS): "TCP 443",  # ipBlock minus its except
    ("web/frontend", "api/backend"): "TCP 9000",  # named port http resolves against the backend
    ("web/frontend", "kube-system/coredns"): "TCP 53,UDP 53",
    ("monitoring/prometheus", "api/backend"): "TCP 9100",  # ANP namedPort metrics: only the backend declares it
    ("monitoring/prometheus", "web/frontend"): "TCP 8080",  # frontend ingress: any peer on http
    ("data/postgres", "web/frontend"): "TCP 8080",
    ("kube-system/coredns", "web/frontend"): "TCP 8080",
    ("203.0.113.0/24 except 203.0.113.128/25", "web/frontend"): "TCP 8080",
    ("203.0.113.128/25", "web/frontend"): "TCP 8080",
    ("world", "web/frontend"): "TCP 8080",
    # A workload to itself is one replica to another, which policy governs:
    ("kube-system/coredns", "kube-system/coredns"): "All Connections",
    ("monitoring/prometheus", "monitoring/prometheus"): "All Connections",  # no team label: no baseline
}
# Pods no NetworkPolicy isolates, and the BaselineAdminNetworkPolicy, leave these open:
for _src in ["data/postgres", "kube-system/coredns", "monitoring/prometheus"]:
    for _dst in RANGES:
        EXPECTED_OPEN[(_src, _dst)] = "All Connections"
for _src in [*RANGES, "data/postgres", "monitoring/prometheus"]:
    EXPECTED_OPEN[(_src, "kube-system/coredns")] = "All Connections"
for _src in RANGES:  # the baseline denies pods of other namespaces, not addresses
    EXPECTED_OPEN[(_src, "monitoring/prometheus")] = "All Connections"


def expected_matrix() -> dict[tuple[str, str], str]:
    eps = PODS + RANGES
    return {
        (a, b): EXPECTED_OPEN.get((a, b), "No Connections")
        for a in eps
        for b in eps
        if (a != b and (a in PODS or b in PODS)) or (a == b and a in PODS)  # every shop pod is a workload
    }


def test_matrix_json_loads_and_holds_every_pair(podnet: Podnet) -> None:
    r = podnet("policy", "matrix", "-f", SHOP, "-o", "json")
    assert r.code == 0
    cells = json.loads(r.out)
    assert {(c["from"], c["to"]): c["connections"] for c in cells} == expected_matrix()
    assert len(cells) == 8 * 7 - 3 * 2 + 5  # ordered pairs with a pod, plus each workload to itself
    by_pair = {(c["from"], c["to"]): c["ports"] for c in cells}
    assert by_pair[("api/backend", "kube-system/coredns")] == {"TCP": ["53"], "UDP": ["53"]}
    assert by_pair[("world", "kube-system/coredns")] == "all"
    assert by_pair[("world", "data/postgres")] == {}


def test_matrix_csv_rows_match_json(podnet: Podnet) -> None:
    r = podnet("policy", "matrix", "-f", SHOP, "-o", "csv")
    assert r.code == 0
    rows = list(csv.reader(io.StringIO(r.out)))
    assert rows[0] == ["from", "to", "connections"]
    assert all(len(row) == 3 for row in rows)
    assert {(a, b): c for a, b, c in rows[1:]} == expected_matrix()
    assert len(rows) - 1 == len(expected_matrix())


def test_matrix_md_is_a_table_with_one_row_per_pair(podnet: Podnet) -> None:
    r = podnet("policy", "matrix", "-f", SHOP, "-o", "md")
    lines = r.out.splitlines()
    assert lines[:2] == ["| from | to | connections |", "|---|---|---|"]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert {(a, b): c for a, b, c in cells} == expected_matrix()


def test_matrix_table_columns_line_up(podnet: Podnet) -> None:
    r = podnet("policy", "matrix", "-f", SHOP)
    lines = r.out.splitlines()
    assert lines[0].split() == ["FROM", "TO", "CONNECTIONS"]
    to_col, conn_col = lines[0].index("TO"), lines[0].index("CONNECTIONS")
    got = {(line[:to_col].strip(), line[to_col:conn_col].strip()): line[conn_col:] for line in lines[1:]}
    assert got == expected_matrix()


DOT_EDGE = re.compile(r'^  "(?P<src>[^"\\]+)" -> "(?P<dst>[^"\\]+)" \[label="(?P<label>[^"\\]+)"\];$')


def test_matrix_dot_is_a_digraph_of_the_open_pairs(podnet: Podnet) -> None:
    r = podnet("policy", "matrix", "-f", SHOP, "-o", "dot")
    lines = r.out.splitlines()
    assert lines[0] == "digraph reachability {"
    assert lines[1] == "  rankdir=LR;"
    assert lines[-1] == "}"
    edges = {}
    for line in lines[2:-1]:
        m = DOT_EDGE.match(line)
        assert m, f"not a DOT edge statement: {line!r}"
        edges[(m["src"], m["dst"])] = m["label"]
    assert edges == {k: v for k, v in expected_matrix().items() if v != "No Connections"}


def test_matrix_range_endpoints_are_never_pod_addresses(podnet: Podnet, tmp_path: Path) -> None:
    # 10.0.0.1 (the first address of the range) is a pod's: the range's endpoint must be another address,
    # or "10.0.0.0/24 -> ns/p" would show the pod talking to itself.
    (tmp_path / "c.yaml").write_text(
        """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns, labels: {app: p}}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.0.1}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-pods, namespace: ns}
spec:
  podSelector: {}
  ingress:
    - from: [{namespaceSelector: {}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lan-out, namespace: ns}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
""",
        encoding="utf-8",
    )
    r = podnet("policy", "matrix", "-f", tmp_path, "-o", "json")
    got = {(c["from"], c["to"]): c["connections"] for c in json.loads(r.out)}
    assert got == {
        ("ns/p", "10.0.0.0/24"): "All Connections",
        ("ns/p", "world"): "No Connections",
        ("10.0.0.0/24", "ns/p"): "No Connections",  # outside addresses are no pods of any namespace
        ("world", "ns/p"): "No Connections",
    }


# ---- verdict and explain ----------------------------------------------------------------------------------------


def test_verdict_exit_codes_and_named_ports(podnet: Podnet) -> None:
    allowed = podnet("policy", "verdict", "-f", SHOP, "--from", "web/frontend", "--to", "api/backend", "--port", "http")
    assert allowed.code == 0
    assert allowed.out.splitlines()[0] == "allowed: web/frontend -> api/backend TCP/9000"
    denied = podnet("policy", "verdict", "-f", SHOP, "--from", "web/frontend", "--to", "data/postgres", "--port", "pg")
    assert denied.code == 1
    assert denied.out.splitlines()[0] == "denied: web/frontend -> data/postgres TCP/5432"
    udp = podnet(
        "policy", "verdict", "-f", SHOP, "--from", "api/backend", "--to", "data/postgres", "--protocol", "udp",
        "--port", "5432",
    )  # fmt: skip
    assert udp.code == 1  # a TCP rule never lets UDP through


def test_verdict_json_names_the_deciding_rules(podnet: Podnet) -> None:
    r = podnet(
        "policy", "verdict", "-f", SHOP, "--from", "monitoring/prometheus", "--to", "api/backend", "--port", "metrics",
        "-o", "json",
    )  # fmt: skip
    assert r.code == 0
    got = json.loads(r.out)
    assert got["verdict"] == "allowed"
    assert got["port"] == 9100
    assert got["ingress"]["tier"] == "admin"
    assert got["ingress"]["rule"]["rule_name"] == "monitoring-scrapes-metrics"
    assert got["egress"] == {"verdict": "allow", "tier": "default"}


def test_a_pod_may_talk_to_itself_by_any_of_its_names(podnet: Podnet, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        """
apiVersion: v1
kind: Pod
metadata:
  name: web-7d4-abcde
  namespace: shop
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d4, uid: u1, controller: true}]
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 10.1.0.5}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
""",
        encoding="utf-8",
    )
    for src, dst in [("shop/web-7d4-abcde", "ip:10.1.0.5"), ("ip:10.1.0.5", "shop/web-7d4"), ("shop/web-7d4", "")]:
        dst = dst or src
        r = podnet("policy", "verdict", "-f", tmp_path, "--from", src, "--to", dst, "--port", "http")
        assert r.code == 0, r.out
        assert r.out.startswith("allowed: ")
        assert r.out.endswith(" TCP/80\n  same pod on both ends: a pod may always talk to itself\n")
        e = podnet("policy", "explain", "-f", tmp_path, "--from", src, "--to", dst, "--port", "80")
        assert e.code == 0
        assert "both ends are the same pod" in e.out
    other = podnet("policy", "verdict", "-f", tmp_path, "--from", "shop/web-7d4", "--to", "ip:10.1.0.6", "--port", "80")
    assert other.code == 1


def test_explain_walks_each_side(podnet: Podnet) -> None:
    r = podnet("policy", "explain", "-f", SHOP, "--from", "kube-system/coredns", "--to", "monitoring/prometheus",
               "--port", "9090")  # fmt: skip
    assert r.code == 1
    assert "egress from kube-system/coredns" in r.out
    assert "BaselineAdminNetworkPolicy default applies" in r.out
    assert r.out.rstrip().endswith("verdict: DENIED")
    j = podnet(
        "policy", "explain", "-f", SHOP, "--from", "kube-system/coredns", "--to", "monitoring/prometheus",
        "--port", "9090", "-o", "json",
    )  # fmt: skip
    got = json.loads(j.out)
    assert [s["direction"] for s in got["sides"]] == ["egress", "ingress"]
    assert got["sides"][1]["baseline_applies"] is True
    assert got["sides"][1]["steps"][0]["outcome"] == "matched"


def test_explain_with_no_pod_on_either_end(podnet: Podnet) -> None:
    r = podnet("policy", "explain", "-f", SHOP, "--from", "ip:192.0.2.1", "--to", "ip:192.0.2.2", "--port", "80")
    assert r.code == 0
    assert "neither end is a pod" in r.out
    assert "same pod" not in r.out


# ---- batch verdicts -----------------------------------------------------------------------------------------------

QUERIES = [
    {"from": "web/frontend", "to": "api/backend", "protocol": "TCP", "port": "http"},
    {"from": "web/frontend", "to": "data/postgres", "protocol": "TCP", "port": 5432},
    {"from": "ip:203.0.113.9", "to": "web/frontend", "port": 8080},
    {"from": "web/frontend", "to": "kube-system/coredns", "protocol": "udp", "port": 53},
    {"from": "web/missing", "to": "api/backend", "port": 80},
    {"from": "web/frontend", "to": "api/backend"},
    {"from": "web/frontend", "to": "api/backend", "port": 0},
    {"from": "web/frontend", "to": "api/backend", "port": True},
    {"from": "web/frontend", "to": "api/backend", "port": "grpc"},
    {"from": "web/frontend", "to": "api/backend", "port": 80, "protocol": "ICMP"},
]


def test_batch_over_stdin_answers_one_line_per_query(podnet: Podnet) -> None:
    lines = [json.dumps(q) for q in QUERIES]
    lines[3:3] = ["", "not json", "[1, 2]"]
    r = podnet("policy", "verdict", "-f", SHOP, "--queries", "-", "-o", "jsonl", stdin="\n".join(lines) + "\n")
    assert r.code == 0
    out = [json.loads(line) for line in r.out.splitlines()]
    assert len(out) == len(lines) - 1  # the blank line is no query
    verdicts = [o.get("verdict") or "error" for o in out]
    assert verdicts == ["allowed", "denied", "allowed", "error", "error", "allowed"] + ["error"] * 6
    assert {k: out[0][k] for k in ("from", "to", "protocol", "port")} == QUERIES[0]  # fields come back as given
    assert out[0]["decided_by"][0] == {
        "kind": "NetworkPolicy",
        "name": "frontend",
        "namespace": "web",
        "direction": "egress",
        "rule": 0,
    }
    assert out[1]["decided_by"][0]["kind"] == "isolation"
    errors = [o["error"] for o in out if "error" in o]
    assert errors[0].startswith("Expecting value")
    assert errors[1] == "each query must be a JSON object"
    assert "no Pod or workload web/missing" in errors[2]
    assert errors[3] == "missing field 'port'"
    assert errors[4] == "port 0: must be between 1 and 65535"
    assert errors[5] == "port true: must be a number or a port name"
    assert errors[6] == "named port 'grpc': api/backend declares no TCP port of that name"
    assert errors[7] == "protocol 'ICMP': must be TCP, UDP or SCTP"
    assert all(json.loads(o["query"]) == QUERIES[i] for o, i in zip(out[6:], range(4, 10), strict=True))


def test_batch_from_a_file_agrees_with_single_verdicts(podnet: Podnet, tmp_path: Path) -> None:
    pairs = [(a, b) for a in PODS for b in PODS if a != b]
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"from": a, "to": b, "port": 8080}) + "\n" for a, b in pairs))
    r = podnet("policy", "verdict", "-f", SHOP, "--queries", queries)
    batch = [json.loads(line)["verdict"] for line in r.out.splitlines()]
    single = []
    for a, b in pairs:
        code = podnet("policy", "verdict", "-f", SHOP, "--from", a, "--to", b, "--port", "8080").code
        single.append("allowed" if code == 0 else "denied")
    assert batch == single
    # postgres, coredns and prometheus to the frontend's http port; postgres and prometheus to unisolated coredns
    assert batch.count("allowed") == 5


# ---- diff ------------------------------------------------------------------------------------------------------------


def _changed_shop(tmp_path: Path) -> Path:
    new = tmp_path / "shop"
    shutil.copytree(SHOP, new)
    policies = new / "policies.yaml"
    text = policies.read_text(encoding="utf-8")
    https = "        - {protocol: TCP, port: 443}\n"
    edits = [
        # the backend may also reach the payment provider on 8443
        (https, https + "        - {protocol: TCP, port: 8443}\n"),
        # monitoring scrapes port 9090 instead of the named port metrics (9100, declared by the backend only)
        ("        - namedPort: metrics\n", "        - portNumber: {protocol: TCP, port: 9090}\n"),
    ]
    for old, replacement in edits:
        assert text.count(old) == 1
        text = text.replace(old, replacement)
    policies.write_text(text, encoding="utf-8")
    return new


CHANGES = [
    f"+ api/backend => ip:203.0.113.1 ({PAYMENTS}) : TCP 8443",
    "+ monitoring/prometheus => api/backend : TCP 9090",
    "- monitoring/prometheus => api/backend : TCP 9100",
    "+ monitoring/prometheus => web/frontend : TCP 9090",
]


def test_diff_shows_exactly_the_gained_and_lost_connections(podnet: Podnet, tmp_path: Path) -> None:
    new = _changed_shop(tmp_path)
    r = podnet("policy", "diff", "-f", SHOP, "--against", new)
    assert r.code == 0
    assert r.out.splitlines() == CHANGES
    back = podnet("policy", "diff", "-f", new, "--against", SHOP)
    flipped = [("-" if c[0] == "+" else "+") + c[1:] for c in CHANGES]
    assert back.out.splitlines() == [flipped[0], flipped[2], flipped[1], flipped[3]]
    j = json.loads(podnet("policy", "diff", "-f", SHOP, "--against", new, "-o", "json").out)
    assert j == [
        {"from": "api/backend", "to": f"ip:203.0.113.1 ({PAYMENTS})", "gained": "TCP 8443", "lost": None},
        {"from": "monitoring/prometheus", "to": "api/backend", "gained": "TCP 9090", "lost": "TCP 9100"},
        {"from": "monitoring/prometheus", "to": "web/frontend", "gained": "TCP 9090", "lost": None},
    ]


def test_diff_of_identical_sets_and_of_moved_ranges(podnet: Podnet, tmp_path: Path) -> None:
    same = podnet("policy", "diff", "-f", SHOP, "--against", SHOP)
    assert (same.code, same.out) == (0, "no connection gained or lost\n")
    moved = tmp_path / "moved"
    shutil.copytree(SHOP, moved)
    policies = moved / "policies.yaml"
    policies.write_text(policies.read_text().replace("203.0.113.", "198.51.100."))
    r = podnet("policy", "diff", "-f", SHOP, "--against", moved)
    assert r.out.splitlines() == [
        "+ api/backend => ip:198.51.100.1 (198.51.100.0/24 except 198.51.100.128/25) : TCP 443",
        f"- api/backend => ip:203.0.113.1 ({PAYMENTS}) : TCP 443",
    ]


# ---- lint ------------------------------------------------------------------------------------------------------------

BAD_POLICIES = """
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {team: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: app, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 10.1.0.5}
---
# or-selectors + unknown-named-port
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ored, namespace: app}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: b}}
        - podSelector: {matchLabels: {app: client}}
      ports:
        - port: htp
---
# selects-nothing (a typo in the label value)
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: typo, namespace: app}
spec:
  podSelector: {matchLabels: {app: wbe}}
---
# egress-without-dns + ipblock-on-pods
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lockdown, namespace: app}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 10.1.0.0/16}
      ports: [{port: 443}]
---
# selects-nothing for an AdminNetworkPolicy subject
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: nobody}
spec:
  priority: 3
  subject: {namespaces: {matchLabels: {team: z}}}
  ingress:
    - {name: deny, action: Deny, from: [{namespaces: {}}]}
"""


def test_lint_finds_each_mistake(podnet: Podnet, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_POLICIES, encoding="utf-8")
    r = podnet("policy", "lint", "-f", tmp_path, "-o", "json")
    assert r.code == 1
    found = {(f["code"], f["policy"], f["field"]) for f in json.loads(r.out)}
    assert found == {
        ("or-selectors", "NetworkPolicy app/ored", "spec.ingress[0].from[0], spec.ingress[0].from[1]"),
        ("unknown-named-port", "NetworkPolicy app/ored", "spec.ingress[0].ports[0].port"),
        ("selects-nothing", "NetworkPolicy app/typo", "spec.podSelector"),
        ("selects-nothing", "AdminNetworkPolicy nobody", "spec.subject"),
        ("egress-without-dns", "NetworkPolicy app/lockdown", "spec.policyTypes"),
        ("ipblock-on-pods", "NetworkPolicy app/lockdown", "spec.egress[0].to[0].ipBlock"),
    }
    assert all(f["fix"] for f in json.loads(r.out))
    text = podnet("policy", "lint", "-f", tmp_path)
    assert text.code == 1
    assert text.out.count("\n    fix: ") == 6
    assert "[ipblock-on-pods] NetworkPolicy app/lockdown: spec.egress[0].to[0].ipBlock: 10.1.0.0/16 contains " in (
        text.out
    )


def test_lint_is_quiet_on_the_shop_and_on_fixed_policies(podnet: Podnet, tmp_path: Path) -> None:
    r = podnet("policy", "lint", "-f", SHOP)
    assert (r.code, r.out) == (0, "no problems found\n")
    fixed = (
        BAD_POLICIES.replace("        - podSelector: {matchLabels: {app: client}}", "          podSelector: {}")
        .replace("port: htp", "port: http")
        .replace("{app: wbe}", "{app: web}")
        .replace("{cidr: 10.1.0.0/16}", "{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}")
        .replace("ports: [{port: 443}]", "ports: [{port: 443}, {protocol: UDP, port: 53}]")
        .replace("{team: z}", "{team: a}")
    )
    (tmp_path / "fixed.yaml").write_text(fixed, encoding="utf-8")
    r = podnet("policy", "lint", "-f", tmp_path)
    assert (r.code, r.out) == (0, "no problems found\n")


# ---- invalid input and usage errors: exit code 2, nothing on stdout ------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verdict", "--from", "web/x", "--to", "api/backend", "--port", "80"], "error: 'web/x': no Pod or workload"),
        (["verdict", "--from", "ip:300.1.1.1", "--to", "api/backend", "--port", "80"], "not an IP address"),
        (["verdict", "--from", "web/frontend", "--to", "api/backend"], "error: verdict needs --from, --to and --port"),
        (["verdict", "--from", "web/frontend", "--to", "ip:192.0.2.1", "--port", "http"], "is not a pod"),
        (["verdict", "--queries", "/nonexistent/q.jsonl"], "error: --queries /nonexistent/q.jsonl: No such file"),
        (["explain", "--from", "web/frontend", "--to", "api/backend", "--port", "80", "--protocol", "icmp"],
         "argument --protocol: protocol 'icmp': must be TCP, UDP or SCTP"),
        (["matrix", "-o", "svg"], "argument -o/--output: invalid choice: 'svg'"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(podnet: Podnet, argv: list[str], message: str) -> None:
    r = podnet("policy", argv[0], "-f", SHOP, *argv[1:])
    assert r.code == 2
    assert r.out == ""
    assert message in r.err
    assert "Traceback" not in r.err


def test_invalid_manifests_exit_2_with_field_paths(podnet: Podnet, tmp_path: Path) -> None:
    bad = tmp_path / "np.yaml"
    bad.write_text(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {}
  ingress:
    - ports: [{port: 80}, {port: 90, endPort: 85}]
""",
        encoding="utf-8",
    )
    for command in (["matrix"], ["lint"], ["verdict", "--from", "a/b", "--to", "c/d", "--port", "1"]):
        r = podnet("policy", *command, "-f", SHOP, "-f", bad)
        assert r.code == 2
        assert r.out == ""
        assert r.err.splitlines() == [
            "error: invalid manifests (1 problem(s)):",
            f"  {bad}[doc 0]: NetworkPolicy shop/web: spec.ingress[0].ports[1].endPort: Invalid value: 85: "
            "must be >= port (90)",
        ]


def test_manifests_from_stdin_and_several_files(podnet: Podnet) -> None:
    text = "".join((SHOP / name).read_text() + "\n---\n" for name in ("namespaces.yaml", "workloads.yaml"))
    r = podnet("policy", "matrix", "-f", "-", "-f", SHOP / "policies.yaml", "-o", "json", stdin=text)
    assert {(c["from"], c["to"]): c["connections"] for c in json.loads(r.out)} == expected_matrix()


PASS_CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: a, labels: {app: p}}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: q, namespace: a, labels: {app: q}}
spec: {containers: [{name: c}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: pass-web}
spec:
  priority: 5
  subject: {namespaces: {}}
  ingress:
    - {name: pass-80, action: Pass, from: [{namespaces: {}}], ports: [{portNumber: {protocol: TCP, port: 80}}]}
    - {name: deny-rest, action: Deny, from: [{namespaces: {}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
    - {name: deny, action: Deny, from: [{namespaces: {}}]}
"""
ALLOW_Q_TO_P = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p-from-q, namespace: a}
spec:
  podSelector: {matchLabels: {app: p}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: q}}}]
"""


def test_pass_hands_over_to_networkpolicy_then_to_the_baseline(podnet: Podnet, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(PASS_CLUSTER, encoding="utf-8")
    query = ["--from", "a/q", "--to", "a/p", "--port"]
    # no NetworkPolicy isolates p: after Pass the baseline denies
    r = podnet("policy", "explain", "-f", tmp_path, *query, "80")
    assert r.code == 1
    assert "'pass-80' [pass]: matched: Pass, remaining admin rules skipped" in r.out
    assert "=> deny by BaselineAdminNetworkPolicy default ingress[0] 'deny'" in r.out
    # a NetworkPolicy isolating p decides after Pass, and the baseline no longer applies
    (tmp_path / "np.yaml").write_text(ALLOW_Q_TO_P, encoding="utf-8")
    r = podnet("policy", "explain", "-f", tmp_path, *query, "80")
    assert r.code == 0
    assert "=> allow by NetworkPolicy a/p-from-q ingress[0]" in r.out
    # other ports never reach NetworkPolicy: the admin Deny comes first
    r = podnet("policy", "verdict", "-f", tmp_path, *query, "81")
    assert r.code == 1
    assert "deny by AdminNetworkPolicy pass-web ingress[1] 'deny-rest'" in r.out
    m = podnet("policy", "matrix", "-f", tmp_path, "-o", "csv")
    assert "a/q,a/p,TCP 80" in m.out.splitlines()
