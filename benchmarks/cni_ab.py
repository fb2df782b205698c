"""CNI ADD/DEL latency: this podnet against an earlier podnet tree, calls interleaved in one run.

Two agents (this tree's and ``--base``'s, each with its own installed plugin, socket, state dir and
pod CIDRs) run in one private "node" namespace; 100 pods each get ADD, then DEL, the two sides taking
turns call by call (alternating which goes first), so load on the shared machine hits both alike.
Prints one JSON object: p50/p95 per verb per side and this/base ratios (below 1.0: faster now).

    git archive <commit> | tar -x -C /tmp/podnet-base     # the tree to compare with
    sudo .venv/bin/python benchmarks/cni_ab.py --base /tmp/podnet-base [--pods 100] [--hide-in-base httptools]

``--hide-in-base MODULE`` makes MODULE unimportable for the base side (for a dependency the base did
not have, e.g. httptools, which uvicorn would otherwise pick up from the shared venv).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from cni_latency import HERE, run_inside_node, run_plugin, summary, wait_for_socket

INSTALL = (
    "import sys; from pathlib import Path; from podnet.cni.install import install; "
    "install(Path(sys.argv[1]), Path(sys.argv[2]), socket_path=sys.argv[3])"
)
CIDRS = {"this": ("10.250.0.0/22", "fd50::/112"), "base": ("10.251.0.0/22", "fd51::/112")}


def inside(args: argparse.Namespace) -> dict[str, Any]:
    work, suffix = Path(args.work), args.suffix
    trees = {"this": HERE, "base": Path(args.base).resolve()}
    agents: dict[str, subprocess.Popen[bytes]] = {}
    plugins: dict[str, tuple[Path, bytes]] = {}
    try:
        for side, tree in trees.items():
            d = work / side
            d.mkdir()
            path = [str(tree)]
            if side == "base" and args.hide_in_base:
                for module in args.hide_in_base:
                    (work / "hidden" / module).mkdir(parents=True, exist_ok=True)
                    (work / "hidden" / module / "__init__.py").write_text(f"raise ImportError('{module} hidden')\n")
                path.append(str(work / "hidden"))
            env = {**os.environ, "PYTHONPATH": ":".join(path)}
            cmd = [sys.executable, "-m", "podnet.cli.main", "agent", "--node-name", side, "--socket", str(d / "s")]
            cmd += ["--state-dir", str(d / "state"), "--log-format", "json"]
            for cidr in CIDRS[side]:
                cmd += ["--pod-cidr", cidr]
            with open(d / "agent.log", "wb") as log:
                agents[side] = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=tree, env=env)
            install = [sys.executable, "-c", INSTALL, str(d / "bin"), str(d / "net.d"), str(d / "s")]
            subprocess.run(install, cwd=tree, env=env, check=True)  # the tree's own install-cni
            conf = {"cniVersion": "1.0.0", "name": f"ab-{side}", "type": "podnet", "agentSocket": str(d / "s")}
            plugins[side] = (d / "bin" / "podnet", json.dumps(conf).encode())
        for side in trees:
            wait_for_socket(work / side / "s", agents[side])
        times: dict[str, dict[str, list[float]]] = {side: {"ADD": [], "DEL": []} for side in trees}
        order = list(trees)
        for command in ("ADD", "DEL"):
            for i in range(args.pods):
                for side in order if i % 2 == 0 else order[::-1]:
                    exe, data = plugins[side]
                    netns = f"/run/netns/pnab-{suffix}-{side[0]}{i}"
                    times[side][command].append(run_plugin(exe, command, data, f"{side}-{i}", netns, "/usr/lib/cni"))
    finally:
        for agent in agents.values():
            agent.send_signal(signal.SIGTERM)
            agent.wait(10)
    result: dict[str, Any] = {side: {verb: summary(v) for verb, v in t.items()} for side, t in times.items()}
    result["ratio_this_over_base"] = {
        f"{verb}_{q}": round(result["this"][verb][f"{q}_ms"] / result["base"][verb][f"{q}_ms"], 3)
        for verb in ("ADD", "DEL")
        for q in ("p50", "p95")
    }
    return {"benchmark": "cni_ab", "pods": args.pods, "base": str(trees["base"]), **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="source tree of the podnet to compare with")
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--hide-in-base", action="append", default=[], metavar="MODULE")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--suffix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(args), indent=2))
        return 0
    if os.geteuid() != 0:
        print("cni_ab: needs root (network namespaces)", file=sys.stderr)
        return 1
    if not (Path(args.base) / "podnet" / "cni" / "shim.py").exists():
        print(f"cni_ab: --base {args.base} is not a podnet source tree", file=sys.stderr)
        return 1
    extra = ["--base", args.base]
    for module in args.hide_in_base:
        extra += ["--hide-in-base", module]
    return run_inside_node("pnab", ("t", "b"), args.pods, Path(__file__), extra)


if __name__ == "__main__":
    sys.exit(main())
