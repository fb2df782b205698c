"""``podnet ui``: the web UI (policy editor) on a loopback address."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from typing import Any

from podnet.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser("ui", help="serve the web UI (policy editor) on loopback")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--lab", default=None, metavar="NAME", help="lab to load from and apply to (default: the only one)")
    p.add_argument(
        "--kubeconfig", default=None, metavar="PATH", help="use this API server instead of a lab (e.g. lab apiserver)"
    )
    p.add_argument(
        "--flows-file",
        default=None,
        metavar="PATH",
        help="show flows from a JSON-lines file (default: the lab's agents)",
    )
    p.set_defaults(func=cmd_ui)


def loopback_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; only loopback addresses are accepted (the UI can apply to a lab
    and has no login)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from exc
    family, _, _, _, addr = infos[0]
    if not ipaddress.ip_address(addr[0]).is_loopback:
        raise UsageError(f"--host {host}: not a loopback address (the UI has no login: it listens on loopback only)")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: must be between 0 and 65535")
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--port {port}: cannot listen on {host}: {exc.strerror}") from exc
    sock.listen(128)
    return sock


def cmd_ui(args: argparse.Namespace) -> int:
    import uvicorn

    from podnet.flows.source import make_source
    from podnet.ui.app import STATIC_DIR, create_app
    from podnet.ui.lab import LabLink

    sock = loopback_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    if not (STATIC_DIR / "index.html").is_file():
        print("warning: the front end is not built (run `make setup`); only the JSON API is served", file=sys.stderr)
    flows = make_source(lab=None if args.flows_file else args.lab, file=args.flows_file)
    holder: list[uvicorn.Server] = []
    app = create_app(LabLink(args.lab, args.kubeconfig), flows=flows, stopping=lambda: holder[0].should_exit)
    shown = f"[{host}]" if ":" in host else host
    print(f"podnet ui: serving http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    holder.append(server)
    server.run(sockets=[sock])
    return 0
