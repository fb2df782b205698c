"""ARCHITECTURE's rule of the house: the pure packages import nothing that touches the kernel or the network."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = ["podnet/k8s", "podnet/policy", "podnet/flows/filters"]
# Modules (and their submodules) that reach the network or the kernel.
FORBIDDEN = (
    "socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx", "kubernetes", "pyroute2",
    "subprocess", "ctypes", "podnet.kube", "podnet.datapath", "podnet.agent", "podnet.lab", "podnet.ui",
)  # fmt: skip


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_pure_packages_import_nothing_networked() -> None:
    files = [f for d in PURE for f in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 10
    bad = {
        f"{f.relative_to(ROOT)}: {name}"
        for f in files
        for name in imports(f)
        if any(name == m or name.startswith(m + ".") for m in FORBIDDEN)
    }
    assert not bad, sorted(bad)


def test_the_rule_would_catch_a_networked_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import socket\nfrom podnet.kube.client import KubeTransport\n")
    found = imports(probe)
    assert {"socket", "podnet.kube.client"} <= found
