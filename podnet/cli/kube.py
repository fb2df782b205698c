"""``podnet apply | delete | label | get``: objects in a lab's API server (kubectl's everyday verbs)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from podnet.errors import UsageError
from podnet.k8s.manifests import load_documents
from podnet.k8s.parse import build_cluster
from podnet.k8s.source import KINDS
from podnet.kube.objects import ObjectClient, resource

ORDER = {"Namespace": 0, "AdminNetworkPolicy": 1, "BaselineAdminNetworkPolicy": 1, "NetworkPolicy": 2}


def _client(name: str | None) -> ObjectClient:
    from podnet.kube.client import api_client
    from podnet.lab import manager

    lab = manager.pick(name)
    return ObjectClient(api_client(lab.kubeconfig))


def _lab(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=None, help="the lab (default: the only one running)")


def register(sub: Any) -> None:
    p = sub.add_parser("apply", help="create or update objects from manifests in the lab")
    p.add_argument("-f", "--filename", dest="files", action="append", required=True, metavar="PATH")
    _lab(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("delete", help="delete objects: -f PATH, or KIND NAME")
    p.add_argument("-f", "--filename", dest="files", action="append", metavar="PATH")
    p.add_argument("kind", nargs="?")
    p.add_argument("names", nargs="*")
    p.add_argument("-n", "--namespace", default="default")
    _lab(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("label", help="set (k=v) or remove (k-) labels of an object")
    p.add_argument("kind")
    p.add_argument("object_name", metavar="NAME")
    p.add_argument("labels", nargs="+", metavar="KEY=VALUE|KEY-")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--overwrite", action="store_true", help="allow changing an existing label's value")
    _lab(p)
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("get", help="list objects of a kind")
    p.add_argument("kind")
    p.add_argument("-n", "--namespace", default=None)
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector", default=None, help="label query, e.g. app=web,tier!=db")
    p.add_argument("-o", "--output", choices=("table", "wide", "json", "yaml"), default="table")
    _lab(p)
    p.set_defaults(func=cmd_get)


def _docs(paths: list[str]) -> list[dict[str, Any]]:
    docs = load_documents(paths)
    build_cluster(docs)  # the analyzer's validation: a bad manifest changes nothing
    objs = [d.obj for d in docs if d.obj.get("kind") in KINDS]
    return sorted(objs, key=lambda o: ORDER.get(str(o.get("kind")), 3))


def _title(obj: dict[str, Any]) -> str:
    return f"{str(obj['kind']).lower()}/{obj['metadata']['name']}"


def cmd_apply(args: argparse.Namespace) -> int:
    objs = _docs(args.files)
    client = _client(args.name)
    for obj in objs:
        print(f"{_title(obj)} {client.apply(obj)}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    client = _client(args.name)
    targets: list[tuple[str, str, str | None]] = []
    if args.files:
        for obj in reversed(_docs(args.files)):
            targets.append((obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace") or "default"))
    elif args.kind and args.names:
        kind = resource(args.kind).kind
        targets = [(kind, n, args.namespace) for n in args.names]
    else:
        raise UsageError("delete needs -f PATH or KIND NAME...")
    code = 0
    for kind, name, ns in targets:
        if client.delete(kind, name, ns):
            print(f"{kind.lower()}/{name} deleted")
        else:
            print(f"{kind.lower()}/{name} not found", file=sys.stderr)
            code = 1
    return code


def cmd_label(args: argparse.Namespace) -> int:
    client = _client(args.name)
    kind = resource(args.kind).kind
    obj = client.get(kind, args.object_name, args.namespace)
    labels = dict(obj["metadata"].get("labels") or {})
    for item in args.labels:
        if item.endswith("-") and "=" not in item:
            labels.pop(item[:-1], None)
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"label {item!r}: write KEY=VALUE or KEY-")
        if key in labels and labels[key] != value and not args.overwrite:
            raise UsageError(f"label {key!r} already has the value {labels[key]!r} (use --overwrite)")
        labels[key] = value
    obj["metadata"]["labels"] = labels
    client.replace(obj)
    print(f"{kind.lower()}/{args.object_name} labeled")
    return 0


def _age(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("creationTimestamp", ""))


def cmd_get(args: argparse.Namespace) -> int:
    client = _client(args.name)
    res = resource(args.kind)
    namespace = None if (args.all_namespaces or not res.namespaced) else (args.namespace or "default")
    items = client.list(res.kind, namespace, args.selector)
    if args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
        return 0
    if args.output == "yaml":
        print(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=False), end="")
        return 0
    wide = args.output == "wide"
    header = (["NAMESPACE"] if res.namespaced and namespace is None else []) + ["NAME"]
    if res.kind == "Pod":
        header += ["STATUS", "IP", "NODE"] + (["LABELS"] if wide else [])
    elif res.kind == "Namespace":
        header += ["LABELS"]
    elif res.kind in ("Deployment", "StatefulSet"):
        header += ["REPLICAS"]
    elif res.kind == "NetworkPolicy":
        header += ["POD-SELECTOR"]
    rows = []
    for obj in items:
        meta = obj["metadata"]
        row = ([meta.get("namespace", "")] if res.namespaced and namespace is None else []) + [meta["name"]]
        labels = ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or "<none>"
        if res.kind == "Pod":
            status = obj.get("status") or {}
            row += [
                status.get("phase", "Pending"),
                status.get("podIP") or "<none>",
                (obj.get("spec") or {}).get("nodeName") or "<none>",
            ] + ([labels] if wide else [])
        elif res.kind == "Namespace":
            row += [labels]
        elif res.kind in ("Deployment", "StatefulSet"):
            row += [str((obj.get("spec") or {}).get("replicas", 1))]
        elif res.kind == "NetworkPolicy":
            sel = ((obj.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
            row += [",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<all>"]
        rows.append(row)
    if not rows:
        print(f"No resources found{' in ' + namespace + ' namespace' if namespace else ''}.", file=sys.stderr)
        return 0
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0
