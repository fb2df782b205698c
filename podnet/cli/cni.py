"""``podnet install-cni``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from podnet.cni.install import CHAINABLE, install
from podnet.cni.protocol import DEFAULT_SOCKET, SUPPORTED_VERSIONS


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("install-cni", help="install the podnet CNI plugin and a conflist")
    p.add_argument("--bin-dir", type=Path, default=Path("/opt/cni/bin"), help="CNI plugin directory")
    p.add_argument("--conf-dir", type=Path, default=Path("/etc/cni/net.d"), help="CNI configuration directory")
    p.add_argument("--network-name", default="podnet", help="name of the network in the conflist")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="the agent's unix socket")
    p.add_argument("--cni-version", default="1.0.0", choices=SUPPORTED_VERSIONS, help="cniVersion of the conflist")
    p.add_argument("--mtu", type=int, default=None, help="MTU of pod interfaces")
    p.add_argument("--log-file", default=None, help="plugin log file (one JSON line per call)")
    p.add_argument("--chain", action="append", default=[], choices=sorted(CHAINABLE), help="append a plugin")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    exe, conf = install(
        args.bin_dir,
        args.conf_dir,
        name=args.network_name,
        socket_path=args.socket,
        cni_version=args.cni_version,
        mtu=args.mtu,
        log_file=args.log_file,
        chain=args.chain,
    )
    print(f"installed {exe}\nwrote {conf}")
    return 0
