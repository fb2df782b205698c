"""The UI's link to a lab's API server (or any Kubernetes API server): load its objects, apply the editor's.

Talks through :class:`podnet.kube.objects.ObjectClient`, the client ``podnet apply`` uses, so the UI writes
objects exactly as the CLI does: validated by the analyzer first, namespaces and admin tiers before
NetworkPolicies, and a bad manifest changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from podnet.errors import PodnetError
from podnet.kube.objects import RESOURCES, ObjectClient
from podnet.ui.analysis import ManifestFile, load_cluster, parse_files

POLICY_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "NetworkPolicy")
CLUSTER_KINDS = ("Namespace", "Deployment", "StatefulSet", "Pod")
APPLY_ORDER = {"Namespace": 0, "AdminNetworkPolicy": 1, "BaselineAdminNetworkPolicy": 1, "NetworkPolicy": 2}
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as a person would write it: no status, uid, resourceVersion or managed fields."""
    meta = obj.get("metadata") or {}
    out_meta: dict[str, Any] = {"name": meta.get("name")}
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    if meta.get("labels"):
        out_meta["labels"] = meta["labels"]
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    if notes:
        out_meta["annotations"] = notes
    out: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": out_meta}
    if "spec" in obj:
        out["spec"] = obj["spec"]
    return out


def _owned(obj: dict[str, Any]) -> bool:
    return any(ref.get("controller") for ref in (obj.get("metadata") or {}).get("ownerReferences") or ())


def to_yaml(objs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)


class LabLink:
    """A lab by name (the only running one when no name is given), or the API server of a kubeconfig."""

    def __init__(self, lab_name: str | None = None, kubeconfig: str | None = None) -> None:
        self.lab_name = lab_name
        self.kubeconfig = kubeconfig

    def _config(self) -> tuple[str, str]:
        """(display name, kubeconfig path); raises PodnetError when no lab is there."""
        if self.kubeconfig is not None:
            return self.kubeconfig, self.kubeconfig
        from podnet.lab import manager  # the lab manager pulls in the datapath: only when a lab is asked for

        lab = manager.pick(self.lab_name)
        return lab.name, str(lab.kubeconfig)

    def client(self) -> ObjectClient:
        from podnet.kube.client import api_client

        return ObjectClient(api_client(self._config()[1]))

    def status(self) -> dict[str, Any]:
        try:
            name, _ = self._config()
        except PodnetError as exc:
            return {"available": False, "name": self.lab_name, "error": exc.message}
        return {"available": True, "name": name, "error": None}

    def load(self) -> list[ManifestFile]:
        """The lab's objects as two files: ``lab-cluster.yaml`` (namespaces, workloads, bare pods) and
        ``lab-policies.yaml``. Pods a workload owns are left out: the workload's template stands for them."""
        client = self.client()
        files = []
        for name, kinds in (("lab-cluster.yaml", CLUSTER_KINDS), ("lab-policies.yaml", POLICY_KINDS)):
            objs: list[dict[str, Any]] = []
            for kind in kinds:
                items = client.list(kind, None)
                objs += [clean(o) for o in items if not (kind == "Pod" and _owned(o))]
            files.append(ManifestFile(name, to_yaml(objs)))
        return files

    def apply(self, files: Sequence[ManifestFile], policies_only: bool = False) -> list[dict[str, str]]:
        """Create or update every object of the files in the lab, as ``podnet apply -f`` does; with
        ``policies_only`` only the (Admin/Baseline)NetworkPolicies (the rest is context for validation)."""
        load_cluster(files)  # the analyzer's validation first: a bad manifest changes nothing
        docs, _ = parse_files(files)
        kinds = POLICY_KINDS if policies_only else tuple(RESOURCES)
        objs = sorted(
            (d.obj for d in docs if d.obj.get("kind") in kinds),
            key=lambda o: APPLY_ORDER.get(str(o.get("kind")), 3),
        )
        client = self.client()
        out = []
        for obj in objs:
            meta = obj.get("metadata") or {}
            title = f"{str(obj['kind']).lower()}/{meta.get('name')}"
            out.append({"object": title, "namespace": str(meta.get("namespace") or ""), "result": client.apply(obj)})
        return out
