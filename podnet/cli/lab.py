"""``podnet lab ...``: the lab. For now its API server, runnable on its own."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _apiserver(args: argparse.Namespace) -> int:
    from podnet.lab.apiserver.app import serve

    serve(
        Path(args.state_dir),
        host=args.host,
        port=args.port,
        auth=not args.no_auth,
        event_log_size=args.event_log_size,
        name=args.name,
    )
    return 0


def register(sub: Any) -> None:
    lab = sub.add_parser("lab", help="a Kubernetes network on this machine")
    lsub = lab.add_subparsers(dest="lab_command", metavar="COMMAND")
    lsub.required = True

    p = lsub.add_parser(
        "apiserver",
        help="run the lab's Kubernetes API server (loopback only, objects in SQLite)",
        description="Serve Namespaces, Pods, Deployments, NetworkPolicies and (Baseline)AdminNetworkPolicies "
        "over the Kubernetes REST API on a loopback port. Writes STATE_DIR/kubeconfig once listening.",
    )
    p.add_argument("--state-dir", required=True, metavar="DIR", help="where the SQLite store, token and kubeconfig go")
    p.add_argument(
        "--port", type=int, default=0, help="TCP port (default 0: the previous run's port if free, else any free port)"
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--name", default="podnet-lab", help="cluster/context name in the kubeconfig")
    p.add_argument("--no-auth", action="store_true", help="accept requests without the kubeconfig's token")
    p.add_argument(
        "--event-log-size",
        type=int,
        default=10000,
        metavar="N",
        help="events kept for watches; older resourceVersions get 410 Gone (default 10000)",
    )
    p.set_defaults(func=_apiserver)
