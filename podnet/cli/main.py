"""Entry point of the ``podnet`` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from podnet import __version__
from podnet.errors import ManifestError, PodnetError

# Each module has register(subparsers) adding its commands; set ``func`` on every parser.
COMMAND_MODULES: tuple[str, ...] = ("policy", "cni", "agent", "lab", "kube", "observe", "ui")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podnet", description="Kubernetes pod networking")
    parser.add_argument("--version", action="version", version=f"podnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(f"podnet.cli.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ManifestError as exc:
        print(f"error: invalid manifests ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except PodnetError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
