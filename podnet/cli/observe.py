"""``podnet observe``: flows from every node of a lab (or one agent, or a file), filtered, merged by time.

The filters are :mod:`podnet.flows.filters`, the same code the agent runs; the agents filter before
sending, and the answer is filtered again here when several sources are merged (``--last`` is global).
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podnet.errors import PodnetError, UsageError

if TYPE_CHECKING:
    from podnet.flows.model import Flow

HEAD_QUIET_S = 0.3  # --follow: the history is complete when the streams are quiet this long
HEAD_MAX_S = 3.0
DEFAULT_LAST = 20  # like `hubble observe`: without --last, --since or --follow, the newest 20 flows


class _Term(argparse.Action):
    """A filter flag: appends (dimension, value, negated-by-a-preceding---not) to ``args.terms`` in order."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        from podnet.flows.filters import FilterTerm

        terms = list(getattr(namespace, "terms", None) or [])
        terms.append(FilterTerm(self.dest, str(values), bool(getattr(namespace, "negate_next", False))))
        namespace.terms = terms
        namespace.negate_next = False


class _Not(argparse.Action):
    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        namespace.negate_next = True


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("observe", help="show flows: what the kernel allowed and dropped")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--last",
        type=int,
        default=None,
        help=f"the newest N flows (default {DEFAULT_LAST}; with --follow, then new ones)",
    )
    when.add_argument("--since", default=None, help="flows since an RFC 3339 time or a duration ago (5m, 30s)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new flows")
    ns = p.add_mutually_exclusive_group()
    ns.add_argument("--namespace", "-n", dest="namespace", action=_Term, metavar="NS", help="either side in NS")
    ns.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (the default)")
    for flag, metavar, what in (
        ("--pod", "[NS/]POD", "either side is this pod"),
        ("--from-pod", "[NS/]POD", "the source is this pod"),
        ("--to-pod", "[NS/]POD", "the destination is this pod"),
        ("--ip", "CIDR", "either address is in CIDR"),
        ("--label", "K=V", "either side has this label"),
        ("--verdict", "V", "FORWARDED, DROPPED or AUDIT"),
        ("--protocol", "P", "tcp, udp, sctp or icmp"),
        ("--port", "N", "either L4 port"),
        ("--type", "T", "drop, policy-verdict or trace"),
    ):
        p.add_argument(flag, dest=flag[2:], action=_Term, metavar=metavar, help=what)
    p.add_argument("--not", nargs=0, action=_Not, help="negate the filter that follows")
    p.add_argument("-o", "--output", choices=("compact", "json", "table"), default="compact")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input-file", default=None, help="read flows from a JSON-lines file ('-': stdin)")
    src.add_argument("--socket", default=None, help="ask this one agent (its unix socket)")
    src.add_argument("--name", default=None, help="the lab (default: the only one running)")
    p.set_defaults(func=_observe, terms=[], negate_next=False)


def _observe(args: argparse.Namespace) -> int:
    from podnet.flows.query import FlowQuery, parse_since

    if args.negate_next:
        raise UsageError("--not must be followed by a filter")
    since = parse_since(args.since) if args.since is not None else None
    last = args.last
    if last is None and since is None and args.input_file is None:
        last = DEFAULT_LAST
    query = FlowQuery.make(args.terms, last, since, args.follow)
    if args.input_file is not None:
        if args.follow:
            raise UsageError("--follow does not go with --input-file")
        return _from_file(args, query)
    sockets = [args.socket] if args.socket else _lab_sockets(args.name)
    return _follow(args, query, sockets) if args.follow else _history(args, query, sockets)


def _lab_sockets(name: str | None) -> list[str]:
    from podnet.lab import manager

    lab = manager.pick(name)
    return [str(lab.agent_socket(node)) for node in lab.plan.nodes]


def _print(args: argparse.Namespace, flows: list[Any]) -> None:
    from podnet.flows import printer
    from podnet.flows.model import to_line

    if args.output == "table":
        for row in printer.table(flows):
            print(row)
        return
    for f in flows:
        print(to_line(f) if args.output == "json" else printer.compact(f))


def _from_file(args: argparse.Namespace, query: Any) -> int:
    from podnet.flows.export import read_jsonl

    try:
        if args.input_file == "-":
            flows = read_jsonl(sys.stdin)
        else:
            with open(Path(args.input_file), encoding="utf-8") as fh:
                flows = read_jsonl(fh)
    except OSError as exc:
        raise UsageError(f"--input-file {args.input_file}: {exc.strerror}") from exc
    except (ValueError, KeyError) as exc:
        raise UsageError(f"--input-file {args.input_file}: not a file of flows: {exc}") from exc
    flows.sort(key=lambda f: f.time_ns)
    _print(args, query.select(flows))
    return 0


def _history(args: argparse.Namespace, query: Any, sockets: list[str]) -> int:
    from podnet.agent.client import stream_lines
    from podnet.flows.model import from_line

    once = query.make(query.terms, query.last, query.since_ns, follow=False)
    flows: list[Flow] = []
    for sock in sockets:
        flows.extend(from_line(line) for line in stream_lines(sock, f"/v1/flows?{once.params()}") if line.strip())
    flows.sort(key=lambda f: f.time_ns)
    _print(args, query.select(flows))
    return 0


def _follow(args: argparse.Namespace, query: Any, sockets: list[str]) -> int:
    """One streaming request per agent. What they send first (each node's history) is gathered until
    the streams go quiet, merged by time and cut to the global ``--last``; then flows print as they come."""
    from podnet.agent.client import stream_lines
    from podnet.flows.model import from_line

    lines: queue.Queue[str | PodnetError | None] = queue.Queue()  # None: one agent's stream ended

    def read(sock: str) -> None:
        try:
            for line in stream_lines(sock, f"/v1/flows?{query.params()}", timeout=None):
                lines.put(line)
        except PodnetError as exc:
            lines.put(exc)
        else:
            lines.put(None)

    for sock in sockets:
        threading.Thread(target=read, args=(sock,), daemon=True).start()

    ended = 0

    def take(item: str | PodnetError | None) -> Flow | None:
        nonlocal ended
        if isinstance(item, PodnetError):
            raise item
        if item is None:
            ended += 1
            return None
        return from_line(item) if item.strip() else None

    try:
        head: list[Flow] = []
        deadline = time.monotonic() + HEAD_MAX_S
        while time.monotonic() < deadline:
            try:
                flow = take(lines.get(timeout=HEAD_QUIET_S))
            except queue.Empty:
                break
            if flow is not None:
                head.append(flow)
        head.sort(key=lambda f: f.time_ns)
        _print(args, query.select(head))
        sys.stdout.flush()
        while ended < len(sockets):
            flow = take(lines.get())
            if flow is not None:
                _print(args, [flow])
                sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    print("podnet observe: the agents closed their streams (stopped?)", file=sys.stderr)
    return 1
