"""``podnet policy ...``: the offline analyzer over manifests."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from typing import Any

from podnet.analyzer import diff as diff_mod
from podnet.analyzer import lint as lint_mod
from podnet.analyzer import matrix as matrix_mod
from podnet.analyzer.endpoints import Resolver
from podnet.analyzer.explanation import explain
from podnet.analyzer.verdict import answer, batch, protocol_of
from podnet.errors import PodnetError, UsageError
from podnet.k8s.manifests import load_documents
from podnet.k8s.model import Protocol
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import compile_cluster


def _resolver(paths: list[str]) -> Resolver:
    cluster = build_cluster(load_documents(paths))
    for warning in cluster.warnings:
        print(warning, file=sys.stderr)
    return Resolver(compile_cluster(cluster))


def _port(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _protocol(text: str) -> Protocol:
    try:
        return protocol_of(text)
    except PodnetError as exc:  # argparse reports it with the usage line, exit code 2
        raise argparse.ArgumentTypeError(exc.message) from exc


def _add_files(p: argparse.ArgumentParser, dest: str = "files", flag: str = "-f") -> None:
    p.add_argument(
        *((flag, "--filename") if flag == "-f" else (flag,)),
        dest=dest,
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file, directory (recursive) or - for stdin; repeatable",
    )


def _add_query(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--from", dest="src", required=required, metavar="REF", help="ns/name or ip:ADDR")
    p.add_argument("--to", dest="dst", required=required, metavar="REF", help="ns/name or ip:ADDR")
    p.add_argument("--protocol", default="TCP", type=_protocol, help="TCP, UDP or SCTP (default TCP)")
    p.add_argument("--port", type=_port, required=required, help="number, or a named port of the destination")


def register(sub: Any) -> None:
    policy = sub.add_parser("policy", help="analyze network policies offline")
    psub = policy.add_subparsers(dest="policy_command", metavar="COMMAND")
    psub.required = True

    p = psub.add_parser("verdict", help="is one connection allowed? (or a batch with --queries)")
    _add_files(p)
    _add_query(p, required=False)
    p.add_argument("--queries", metavar="FILE", help="JSON lines of {from,to,protocol,port}; - for stdin")
    p.add_argument("-o", "--output", choices=("text", "json", "jsonl"), default="text")
    p.set_defaults(func=cmd_verdict)

    p = psub.add_parser("matrix", help="every endpoint pair with the connections it allows")
    _add_files(p)
    p.add_argument("-o", "--output", choices=matrix_mod.FORMATS, default="table")
    p.set_defaults(func=cmd_matrix)

    p = psub.add_parser("explain", help="why a connection is allowed or denied")
    _add_files(p)
    _add_query(p, required=True)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_explain)

    p = psub.add_parser("diff", help="connections gained and lost between two sets of manifests")
    _add_files(p)
    _add_files(p, dest="against", flag="--against")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_diff)

    p = psub.add_parser("lint", help="common policy mistakes, each with its fix")
    _add_files(p)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_lint)

    p = psub.add_parser("suggest", help="NetworkPolicies that allow exactly the observed forwarded flows")
    p.add_argument("--from-flows", required=True, metavar="FILE", help="JSON lines of flows (observe -o json); - stdin")
    p.add_argument("--namespace", "-n", default=None, metavar="NS", help="only policies for workloads in NS")
    p.add_argument("--include-audit", action="store_true", help="AUDIT flows (would-be drops) count as allowed")
    p.add_argument("--cidr-prefix", type=int, default=32, metavar="N", help="group outside IPv4 addresses into /N")
    p.add_argument("--cidr-prefix-v6", type=int, default=128, metavar="N", help="group outside IPv6 addresses")
    p.add_argument("--no-check", action="store_true", help="skip the analyzer's check of the suggestion")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    p.set_defaults(func=cmd_suggest)


def cmd_verdict(args: argparse.Namespace) -> int:
    resolver = _resolver(args.files)
    if args.queries:
        # The compiled cluster lives as long as the process: out of the collector's sight, a batch does not
        # pay full collections that walk all of it (10-20% of a cold batch at 5,000 pods).
        gc.freeze()
        if args.output == "text":
            args.output = "jsonl"
        try:
            stream = sys.stdin if args.queries == "-" else open(args.queries, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"--queries {args.queries}: {exc.strerror}") from exc
        with stream:
            out = sys.stdout
            for line in batch(resolver, stream):
                out.write(line + "\n")
        return 0
    if args.src is None or args.dst is None or args.port is None:
        raise UsageError("verdict needs --from, --to and --port (or --queries FILE)")
    ans = answer(resolver, args.src, args.dst, args.protocol, args.port)
    if args.output == "text":
        print(ans.text())
    else:
        print(json.dumps(ans.to_json(), indent=None if args.output == "jsonl" else 2))
    return 0 if ans.verdict.allowed else 1


def cmd_matrix(args: argparse.Namespace) -> int:
    resolver = _resolver(args.files)
    print(matrix_mod.render(matrix_mod.matrix(resolver), args.output))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    resolver = _resolver(args.files)
    out = explain(resolver, args.src, args.dst, args.protocol, args.port)
    if args.output == "json":
        print(json.dumps(out.to_json(), indent=2))
    else:
        print(out.text())
    return 0 if out.answer.verdict.allowed else 1


def cmd_diff(args: argparse.Namespace) -> int:
    old = _resolver(args.files)
    new = _resolver(args.against)
    print(diff_mod.render(diff_mod.diff(old, new), args.output))
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    resolver = _resolver(args.files)
    findings = lint_mod.lint(resolver.compiled)
    print(lint_mod.render(findings, args.output))
    return 1 if findings else 0


SHOW_BROADER = 10  # unobserved pairs a suggestion allows, listed on stderr


def cmd_suggest(args: argparse.Namespace) -> int:
    """Policies on stdout; notes, warnings and the analyzer's check on stderr. Exit 1 if the check fails."""
    from podnet.analyzer.suggest import suggest
    from podnet.analyzer.suggest_check import check, to_yaml
    from podnet.flows.export import read_jsonl

    try:
        if args.from_flows == "-":
            flows = read_jsonl(sys.stdin)
        else:
            with open(args.from_flows, encoding="utf-8") as fh:
                flows = read_jsonl(fh)
    except OSError as exc:
        raise UsageError(f"--from-flows {args.from_flows}: {exc.strerror}") from exc
    except (ValueError, KeyError) as exc:
        raise UsageError(f"--from-flows {args.from_flows}: not a file of flows: {exc}") from exc
    prefix = (args.cidr_prefix, args.cidr_prefix_v6)
    if not 0 <= prefix[0] <= 32 or not 0 <= prefix[1] <= 128:
        raise UsageError("--cidr-prefix is 0-32 and --cidr-prefix-v6 0-128")
    result = suggest(flows, args.namespace, args.include_audit, prefix)
    if not result.policies:
        raise UsageError(
            "no workload to write a policy for: the flows name no pods"
            + (f" in namespace {args.namespace}" if args.namespace else "")
        )
    for line in result.notes:
        print(f"note: {line}", file=sys.stderr)
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    code = 0
    if not args.no_check:
        report = check(result, args.namespace, prefix)
        print(report.summary(), file=sys.stderr)
        for line in report.missing:
            print(f"error: observed but denied by the suggestion: {line}", file=sys.stderr)
        for line in report.broader[:SHOW_BROADER]:
            print(f"warning: allowed by the suggestion but never observed: {line}", file=sys.stderr)
        if len(report.broader) > SHOW_BROADER:
            print(f"warning: … and {len(report.broader) - SHOW_BROADER} more such pairs", file=sys.stderr)
        code = 0 if report.ok else 1
    if args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": result.policies}, indent=2))
    else:
        print(to_yaml(result.policies), end="")
    return code
