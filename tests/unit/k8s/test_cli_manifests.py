"""The CLI path: invalid manifests exit 2, print every problem on stderr and no verdict on stdout."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from podnet.cli.main import main

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
"""
BAD_POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchExpressions: [{key: app, operator: Equals, values: [b]}]}
  ingress:
  - ports:
    - port: 80
    - {port: 80, endPort: 79}
"""
VERDICT = ["policy", "verdict", "--from", "default/a", "--to", "default/b", "--port", "80"]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "command",
    [
        VERDICT,
        [*VERDICT, "-o", "json"],
        ["policy", "matrix"],
        ["policy", "explain", "--from", "default/a", "--to", "default/b", "--port", "80"],
        ["policy", "lint"],
    ],
)
def test_invalid_manifests_exit_2_with_every_problem_on_stderr_and_nothing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    pods = write(tmp_path, "pods.yaml", PODS)
    bad = write(tmp_path, "np.yaml", "---\n" + PODS.split("---\n")[0] + "---\n" + BAD_POLICY)
    assert main([*command, "-f", pods, "-f", bad]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "error: invalid manifests (3 problem(s)):",
        f"  {bad}[doc 0]: Pod default/a: metadata.name: Duplicate value: 'a': already defined in {pods}[doc 0]",
        f"  {bad}[doc 1]: NetworkPolicy default/web: spec.podSelector.matchExpressions[0].operator: Invalid value: "
        "'Equals': not a valid selector operator",
        f"  {bad}[doc 1]: NetworkPolicy default/web: spec.ingress[0].ports[1].endPort: Invalid value: 79: "
        "must be >= port (80)",
    ]


def test_diff_rejects_an_invalid_new_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.yaml", PODS)
    bad = write(tmp_path, "bad.yaml", PODS + "---\n" + BAD_POLICY)
    assert main(["policy", "diff", "-f", good, "--against", bad]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: invalid manifests (2 problem(s)):\n")


def test_unreadable_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "broken.yaml", "kind: [\n")
    assert main([*VERDICT, "-f", bad]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[0] == "error: invalid manifests (1 problem(s)):"
    assert err.splitlines()[1].startswith(f"  {bad}[doc 0]: invalid YAML: line ")


def test_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*VERDICT, "-f", "/nonexistent/podnet.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: invalid manifests (1 problem(s)):\n  /nonexistent/podnet.yaml: no such file or directory\n"


def test_valid_manifests_from_stdin_print_the_verdict_and_warnings_go_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PODS + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"))
    assert main([*VERDICT, "-f", "-"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "allowed: default/a -> default/b TCP/80"
    assert err == "warning: -[doc 2]: ignoring unsupported kind Service s\n"


OWNED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-7d9f
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u, controller: true}]
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-7d9f-abc
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d9f, uid: u2, controller: true}]
status: {podIP: 10.0.0.5}
"""


def test_a_deployment_is_named_through_its_replica_set_pods_and_is_no_extra_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "owned.yaml", OWNED)
    assert main(["policy", "verdict", "-f", path, "--from", "ip:1.2.3.4", "--to", "default/web", "--port", "80"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "allowed: ip:1.2.3.4 -> default/web-7d9f-abc TCP/80"
    assert main(["policy", "matrix", "-f", path, "-o", "csv"]) == 0
    out = capsys.readouterr().out
    assert "default/web-7d9f-abc" in out
    assert "default/web," not in out and "default/web-7d9f," not in out
