"""Validation and defaulting of objects sent to the lab API server.

Validation is podnet's own manifest validator (:func:`podnet.k8s.parse.build_cluster`), which rejects what the
Kubernetes API server rejects with the same field paths, plus the few structural rules the lab needs that
the offline analyzer does not (containers with a name and an image, a Deployment's selector). Problems come
back as ``field.path: message`` strings, the form :func:`podnet.lab.apiserver.status.invalid` turns into
``details.causes``.
"""

from __future__ import annotations

import re
from typing import Any

from podnet.errors import ManifestError
from podnet.k8s.manifests import Document
from podnet.k8s.model import NS_NAME_LABEL, Source
from podnet.k8s.parse import build_cluster
from podnet.lab.apiserver.resources import Resource

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SOURCE = Source("request", 0)
WORKLOADS = ("Deployment", "StatefulSet")
POD_MUTABLE_SPEC = ("activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations")


def _where(obj: dict[str, Any]) -> str:
    """The prefix build_cluster puts before each problem (see ``_Builder.add``)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    ns = meta.get("namespace")
    return f"{_SOURCE}: {obj.get('kind')} {ns or ''}{'/' if ns else ''}{meta.get('name')}: "


def problems_of(resource: Resource, obj: dict[str, Any]) -> list[str]:
    """Every ``path: message`` problem of ``obj`` (an object of ``resource``); empty when it is valid."""
    problems: list[str] = []
    try:
        build_cluster([Document(_SOURCE, obj)])
    except ManifestError as exc:
        prefix = _where(obj)
        for line in exc.problems:
            problems.append(line[len(prefix) :] if line.startswith(prefix) else line.split(": ", 2)[-1])
    problems.extend(_structure(resource, obj))
    return problems


def _containers(spec: object, path: str) -> list[str]:
    if not isinstance(spec, dict):
        return []
    out: list[str] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        out.append(f"{path}.containers: Required value")
        return out
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            cpath = f"{path}.{field}[{i}]"
            if not isinstance(c, dict):
                out.append(f"{cpath}: Invalid value: must be an object")
                continue
            name = c.get("name")
            if not isinstance(name, str) or not name:
                out.append(f"{cpath}.name: Required value")
            elif not _DNS1123_LABEL.match(name) or len(name) > 63:
                out.append(f"{cpath}.name: Invalid value: {name!r}: a lowercase RFC 1123 label is required")
            elif name in names:
                out.append(f"{cpath}.name: Duplicate value: {name!r}")
            else:
                names.add(name)
            image = c.get("image")
            if not isinstance(image, str) or not image.strip():
                out.append(f"{cpath}.image: Required value")
    return out


def _structure(resource: Resource, obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec")
    if resource.kind == "Pod":
        return _containers(spec, "spec")
    if resource.kind in WORKLOADS:
        out: list[str] = []
        if not isinstance(spec, dict):
            return ["spec: Required value"]
        if not isinstance(spec.get("selector"), dict):
            out.append("spec.selector: Required value")
        replicas = spec.get("replicas")
        if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0):
            out.append(f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0")
        template = spec.get("template")
        tspec = template.get("spec") if isinstance(template, dict) else None
        if not isinstance(tspec, dict):
            out.append("spec.template.spec: Required value")
        else:
            out.extend(_containers(tspec, "spec.template.spec"))
        return out
    return []


def pod_update_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """A pod's spec may change only in container images and a few scheduling-free fields, as in Kubernetes."""

    def frozen(spec: object) -> object:
        if not isinstance(spec, dict):
            return spec
        out = {k: v for k, v in spec.items() if k not in POD_MUTABLE_SPEC}
        for field in ("containers", "initContainers"):
            if isinstance(out.get(field), list):
                out[field] = [
                    {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c for c in out[field]
                ]
        return out

    if frozen(old.get("spec")) != frozen(new.get("spec")):
        return [
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
            "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
            "(only additions to existing tolerations), `spec.terminationGracePeriodSeconds`"
        ]
    return []


def _default_ports(spec: object) -> None:
    if not isinstance(spec, dict):
        return
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        for c in items if isinstance(items, list) else []:
            ports = c.get("ports") if isinstance(c, dict) else None
            for p in ports if isinstance(ports, list) else []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")


def apply_defaults(resource: Resource, obj: dict[str, Any]) -> None:
    """Fill in the defaults the Kubernetes API server fills in, for the fields podnet reads."""
    meta = obj["metadata"]
    spec = obj.get("spec")
    if resource.kind == "Namespace":
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        meta["labels"] = {**labels, NS_NAME_LABEL: meta["name"]}
        obj["spec"] = spec if isinstance(spec, dict) else {}
        obj["spec"].setdefault("finalizers", ["kubernetes"])
    elif resource.kind == "Pod":
        _default_ports(spec)
    elif resource.kind in WORKLOADS and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        template = spec.get("template")
        if isinstance(template, dict):
            _default_ports(template.get("spec"))
    elif resource.kind == "NetworkPolicy" and isinstance(spec, dict):
        spec.setdefault("podSelector", {})
        if not spec.get("policyTypes"):
            spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
        for direction in ("ingress", "egress"):
            rules = spec.get(direction)
            for rule in rules if isinstance(rules, list) else []:
                ports = rule.get("ports") if isinstance(rule, dict) else None
                for p in ports if isinstance(ports, list) else []:
                    if isinstance(p, dict):
                        p.setdefault("protocol", "TCP")
