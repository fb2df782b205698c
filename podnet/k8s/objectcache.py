"""The cluster source's objects, each validated once when it changes instead of on every read.

:func:`podnet.k8s.source.cluster` validates every cached object whenever it is called; the agent calls it on
every change, so a burst of N pod starts cost N² validations. :class:`ParsedObjects` follows the same
changes as they arrive (an informer's local store) and keeps each object's validated model, so building
the :class:`~podnet.k8s.model.Cluster` costs one dict walk. The result equals ``cluster(source)`` for the
same objects, apart from each object's ``source`` (here ``cluster:<Kind>``, with no position, so an
unchanged object stays equal to itself while others come and go); a unit test checks this.

Workloads are left out, as :func:`~podnet.k8s.source.cluster` does by default: in a live cluster their
pods exist as Pods. Pure logic, no I/O; one thread uses an instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podnet.errors import ManifestError
from podnet.k8s.manifests import Document
from podnet.k8s.model import AdminNetworkPolicy, Cluster, Namespace, NetworkPolicy, Pod, Source
from podnet.k8s.parse import build_cluster, finish_cluster
from podnet.k8s.source import KINDS, WORKLOAD_KINDS, Change, Obj

Model = Namespace | Pod | NetworkPolicy | AdminNetworkPolicy


@dataclass(frozen=True, slots=True)
class _Parsed:
    model: Model | None  # None: the validator rejected the object, or it stands for nothing podnet models
    warnings: tuple[str, ...] = field(default=())


def parse_object(kind: str, obj: Obj) -> _Parsed:
    """Validate one object alone; an invalid one becomes warnings (as :func:`podnet.k8s.source.cluster` does)."""
    try:
        built = build_cluster([Document(Source(f"cluster:{kind}", 0), obj)])
    except ManifestError as exc:
        return _Parsed(None, tuple(f"warning: ignoring invalid object: {p}" for p in exc.problems))
    model: Model | None = None
    if kind == "Namespace" and built.namespaces:
        model = next(n for n in built.namespaces.values() if n.defined)
    elif kind == "Pod" and built.pods:
        model = built.pods[0]
    elif kind == "NetworkPolicy" and built.policies:
        model = built.policies[0]
    elif kind == "AdminNetworkPolicy" and built.admin_policies:
        model = built.admin_policies[0]
    elif kind == "BaselineAdminNetworkPolicy":
        model = built.baseline
    return _Parsed(model, tuple(built.warnings))


class ParsedObjects:
    """Validated models of the objects seen in a stream of :class:`~podnet.k8s.source.Change`."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[tuple[str, str], _Parsed]] = {k: {} for k in KINDS if k not in WORKLOAD_KINDS}
        self._cluster: Cluster | None = None
        self.version = 0  # counts the changes that altered a model or a warning

    def apply(self, change: Change) -> bool:
        """Take one change; True when the cluster it describes may differ."""
        by_key = self._objects.get(change.kind)
        if by_key is None:  # SYNCED, workloads
            return False
        key = (change.namespace, change.name)
        if change.type == "DELETED":
            if by_key.pop(key, None) is None:
                return False
        else:
            parsed = parse_object(change.kind, change.obj)
            if by_key.get(key) == parsed:
                return False
            by_key[key] = parsed
        self._cluster = None
        self.version += 1
        return True

    def cluster(self) -> Cluster:
        """The cluster of the current objects; the same object until a change alters it."""
        if self._cluster is not None:
            return self._cluster
        out = Cluster()
        for kind in KINDS:
            for key in sorted(self._objects.get(kind, {})):
                parsed = self._objects[kind][key]
                out.warnings.extend(parsed.warnings)
                model = parsed.model
                if isinstance(model, Namespace):
                    out.namespaces[model.name] = model
                elif isinstance(model, Pod):
                    out.pods.append(model)
                elif isinstance(model, NetworkPolicy):
                    out.policies.append(model)
                elif isinstance(model, AdminNetworkPolicy):
                    if model.baseline:
                        out.baseline = model
                    else:
                        out.admin_policies.append(model)
        finish_cluster(out)
        self._cluster = out
        return out
