"""Access to a Kubernetes API server through the official ``kubernetes`` client: a real cluster's or the lab's.

Kept out of :mod:`podnet.k8s`, whose modules (model, parse, selectors, source) touch no network and never
import it. :class:`KubeTransport` is the :class:`~podnet.k8s.source.Transport` that
:class:`~podnet.k8s.source.WatchSource` uses against a live API server.

Only the official client's plumbing is used (kubeconfig or in-cluster loading, TLS, auth, the generated
``list_*`` operations); responses are read raw (``_preload_content=False``) and kept as plain dicts, so every
field reaches podnet's own validator as the server sent it, and a watch is a stream of JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from podnet.errors import PodnetError
from podnet.k8s.source import Expired, NotServed

Obj = dict[str, Any]
ListFunction = Callable[..., object]


class ClusterError(PodnetError):
    """The API server could not be reached or answered with an error."""

    cni_code = 11  # try again later

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class KindAPI:
    """How to list and watch one kind across all namespaces."""

    kind: str
    api_version: str
    list_all: ListFunction

    def call(self, **params: Any) -> urllib3.HTTPResponse:
        """Call the list operation with ``params`` and return the raw response (not yet read)."""
        try:
            resp = self.list_all(_preload_content=False, **params)
        except ApiException as exc:
            raise ClusterError(f"{self.kind}: {exc.status} {exc.reason}", exc.status) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{self.kind}: {exc}") from exc
        return cast(urllib3.HTTPResponse, resp)

    def list(self, **params: Any) -> tuple[list[Obj], str]:
        """Every object (following ``continue``) and the list's resourceVersion."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            resp = self.call(**params, **({"_continue": token} if token else {}))
            try:
                body = json.loads(resp.data)
            except (ValueError, urllib3.exceptions.HTTPError, OSError) as exc:
                raise ClusterError(f"{self.kind}: unreadable list response: {exc}") from exc
            finally:
                resp.release_conn()
            for item in body.get("items") or []:
                item.setdefault("kind", self.kind)
                item.setdefault("apiVersion", self.api_version)
                items.append(item)
            meta = body.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                return items, str(meta.get("resourceVersion", ""))


def watch_lines(resp: urllib3.HTTPResponse) -> Iterator[Obj]:
    """The events of a watch response, each a dict with ``type`` and ``object``."""
    for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ClusterError(f"unreadable watch event: {line[:200]!r}") from exc
        if isinstance(event, dict):
            yield event


def api_client(kubeconfig: str | Path | None = None, context: str | None = None) -> k8s.ApiClient:
    """An ApiClient for the kubeconfig file (else $KUBECONFIG or ~/.kube/config), or the in-cluster service
    account when no file is given and the process runs in a pod."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ and "KUBECONFIG" not in os.environ:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig is not None else None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise ClusterError(f"cannot load kubeconfig {kubeconfig or '(default)'}: {exc}") from exc
    return k8s.ApiClient(configuration)


def kind_apis(api: k8s.ApiClient) -> dict[str, KindAPI]:
    """The kinds podnet reads, by kind name."""
    core, apps, net, custom = (
        k8s.CoreV1Api(api),
        k8s.AppsV1Api(api),
        k8s.NetworkingV1Api(api),
        k8s.CustomObjectsApi(api),
    )

    def cluster_custom(group: str, version: str, plural: str) -> ListFunction:
        def call(**params: Any) -> object:
            return custom.list_cluster_custom_object(group, version, plural, **params)

        return call

    anp = "policy.networking.k8s.io"
    return {
        "Namespace": KindAPI("Namespace", "v1", core.list_namespace),
        "Pod": KindAPI("Pod", "v1", core.list_pod_for_all_namespaces),
        "Deployment": KindAPI("Deployment", "apps/v1", apps.list_deployment_for_all_namespaces),
        "StatefulSet": KindAPI("StatefulSet", "apps/v1", apps.list_stateful_set_for_all_namespaces),
        "NetworkPolicy": KindAPI("NetworkPolicy", "networking.k8s.io/v1", net.list_network_policy_for_all_namespaces),
        "AdminNetworkPolicy": KindAPI(
            "AdminNetworkPolicy", f"{anp}/v1alpha1", cluster_custom(anp, "v1alpha1", "adminnetworkpolicies")
        ),
        "BaselineAdminNetworkPolicy": KindAPI(
            "BaselineAdminNetworkPolicy",
            f"{anp}/v1alpha1",
            cluster_custom(anp, "v1alpha1", "baselineadminnetworkpolicies"),
        ),
    }


class _Stream:
    def __init__(self, resp: urllib3.HTTPResponse) -> None:
        self._resp = resp

    def __iter__(self) -> Iterator[Obj]:
        try:
            yield from watch_lines(self._resp)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"watch interrupted: {exc}") from exc

    def close(self) -> None:
        """Stop the stream, also from another thread blocked reading it."""
        with contextlib.suppress(AttributeError, OSError, RuntimeError):  # RuntimeError: already released
            self._resp.shutdown()
        self._resp.release_conn()


def _translated(exc: ClusterError) -> PodnetError:
    if exc.status == 410:
        return Expired(exc.message)
    if exc.status == 404:
        return NotServed(exc.message)
    return exc


class KubeTransport:
    """Lists and watches through the official client (see :func:`api_client`)."""

    def __init__(self, api: k8s.ApiClient, request_timeout: float = 30.0) -> None:
        self._kinds = kind_apis(api)
        self._timeout = request_timeout
        self.api = api

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | Path | None = None, context: str | None = None) -> KubeTransport:
        return cls(api_client(kubeconfig, context))

    def _kind(self, kind: str) -> KindAPI:
        try:
            return self._kinds[kind]
        except KeyError:
            raise ClusterError(f"unsupported kind {kind}") from None

    def list(self, kind: str) -> tuple[list[Obj], str]:
        try:
            return self._kind(kind).list(_request_timeout=self._timeout)
        except ClusterError as exc:
            raise _translated(exc) from exc

    def watch(self, kind: str, resource_version: str, timeout_seconds: int) -> _Stream:
        try:
            resp = self._kind(kind).call(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                _request_timeout=(self._timeout, timeout_seconds + self._timeout),
            )
        except ClusterError as exc:
            raise _translated(exc) from exc
        return _Stream(resp)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]
