"""The cluster source: desired state (namespaces, pods, workloads, policies) kept current by list + watch.

:class:`WatchSource` follows the informer pattern of client-go: per kind, list once, then watch from the
list's resourceVersion; every event updates a local cache and is handed on as a :class:`Change`. When the
server says the resourceVersion is too old (410 Gone, in the response or as an ERROR event), it lists again
and turns the difference between cache and list into ADDED/MODIFIED/DELETED changes, so a consumer never
misses a deletion. A kind the server does not serve (404: e.g. no AdminNetworkPolicy CRD) counts as empty
and is listed again now and then. Once every kind has been listed, one ``SYNCED`` change is emitted.

The network is behind :class:`Transport` (:class:`podnet.kube.client.KubeTransport` for a live server), so
this module is pure logic and threads; :class:`StaticSource` is the in-memory source for tests.

Threads: one per kind, each the only writer of its kind's cache; ``_lock`` guards the caches for readers.
Changes of one kind arrive in the server's order; kinds interleave.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from podnet.errors import ManifestError, PodnetError
from podnet.k8s.manifests import Document
from podnet.k8s.model import Cluster, Source
from podnet.k8s.parse import build_cluster

Obj = dict[str, Any]
ChangeType = Literal["ADDED", "MODIFIED", "DELETED", "SYNCED"]
KINDS: tuple[str, ...] = (
    "Namespace",
    "Pod",
    "Deployment",
    "StatefulSet",
    "NetworkPolicy",
    "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy",
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the desired state. ``obj`` is the object after it (its last state for DELETED);
    ``SYNCED`` (kind "", no object) says every kind has been listed at least once."""

    type: ChangeType
    kind: str
    namespace: str
    name: str
    obj: Obj = field(default_factory=dict, compare=False)
    resource_version: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


class Expired(PodnetError):
    """The resourceVersion a watch asked for is gone (410): list again."""


class NotServed(PodnetError):
    """The server does not serve this kind (404)."""


class WatchStream(Protocol):
    def __iter__(self) -> Iterator[Obj]: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """List and watch one kind across all namespaces. ``list`` and ``watch`` raise :class:`Expired` or
    :class:`NotServed` where those apply, or another PodnetError with ``status`` for other failures."""

    def list(self, kind: str) -> tuple[list[Obj], str]: ...

    def watch(self, kind: str, resource_version: str, timeout_seconds: int) -> WatchStream: ...


class ClusterSource(Protocol):
    """What the agent reads desired state from."""

    def start(self) -> None: ...

    def next_change(self, timeout: float | None = None) -> Change | None: ...

    def objects(self, kind: str) -> list[Obj]: ...

    def close(self) -> None: ...


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


class _Cache:
    """Objects of every kind by (namespace, name), and the changes for the consumer."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {k: {} for k in kinds}
        self.changes: queue.Queue[Change | None] = queue.Queue()

    def emit(self, type_: ChangeType, kind: str, obj: Obj) -> None:
        ns, name = _key(obj)
        self.changes.put(Change(type_, kind, ns, name, obj, _rv(obj)))

    def apply(self, kind: str, type_: str, obj: Obj) -> None:
        key = _key(obj)
        with self.lock:
            cached = self.objects[kind]
            if type_ == "DELETED":
                if cached.pop(key, None) is None:
                    return
            else:
                type_ = "MODIFIED" if key in cached else "ADDED"
                cached[key] = obj
        self.emit("DELETED" if type_ == "DELETED" else "MODIFIED" if type_ == "MODIFIED" else "ADDED", kind, obj)

    def replace(self, kind: str, items: list[Obj]) -> None:
        """Make the cache equal to a fresh list, emitting the difference."""
        fresh = {_key(o): o for o in items}
        out: list[tuple[ChangeType, Obj]] = []
        with self.lock:
            cached = self.objects[kind]
            for key, old in list(cached.items()):
                if key not in fresh:
                    out.append(("DELETED", old))
            for key, obj in fresh.items():
                old_obj = cached.get(key)
                if old_obj is None:
                    out.append(("ADDED", obj))
                elif _rv(old_obj) != _rv(obj) or old_obj != obj:
                    out.append(("MODIFIED", obj))
            self.objects[kind] = fresh
        for type_, obj in out:
            self.emit(type_, kind, obj)


class WatchSource:
    """List + watch of ``kinds`` through ``transport``, with a local cache (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        kinds: Iterable[str] = KINDS,
        watch_timeout: int = 300,
        retry_seconds: float = 1.0,
        not_served_retry_seconds: float = 30.0,
    ) -> None:
        self.transport = transport
        self.kinds = tuple(kinds)
        self.watch_timeout = watch_timeout
        self.retry_seconds = retry_seconds
        self.not_served_retry_seconds = not_served_retry_seconds
        self._cache = _Cache(self.kinds)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: dict[str, WatchStream] = {}
        self._streams_lock = threading.Lock()
        self._listed: set[str] = set()
        self.synced = threading.Event()
        self.relists: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self.errors: list[str] = []

    # -- consumer side ------------------------------------------------------------------------------------
    def start(self) -> None:
        for kind in self.kinds:
            t = threading.Thread(target=self._run, args=(kind,), name=f"podnet-watch-{kind}", daemon=True)
            t.start()
            self._threads.append(t)

    def next_change(self, timeout: float | None = None) -> Change | None:
        """The next change, waiting up to ``timeout`` seconds (None: until one comes or the source closes)."""
        if self._stop.is_set() and self._cache.changes.empty():
            return None
        try:
            return self._cache.changes.get(timeout=timeout)
        except queue.Empty:
            return None

    def changes(self) -> Iterator[Change]:
        """Every change until :meth:`close`."""
        while True:
            change = self.next_change()
            if change is None:
                return
            yield change

    def objects(self, kind: str) -> list[Obj]:
        with self._cache.lock:
            return [self._cache.objects[kind][k] for k in sorted(self._cache.objects[kind])]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        with self._cache.lock:
            return self._cache.objects[kind].get((namespace, name))

    def close(self) -> None:
        self._stop.set()
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()
        for t in self._threads:
            t.join(timeout=5)
        self._cache.changes.put(None)

    # -- per-kind threads ---------------------------------------------------------------------------------
    def _mark_listed(self, kind: str) -> None:
        if kind in self._listed:
            return
        self._listed.add(kind)
        if self._listed >= set(self.kinds) and not self.synced.is_set():
            self.synced.set()
            self._cache.changes.put(Change("SYNCED", "", "", ""))

    def _run(self, kind: str) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    items, rv = self.transport.list(kind)
                    self._cache.replace(kind, items)
                    self._mark_listed(kind)
                rv = self._watch(kind, rv)
            except Expired:
                self.relists[kind] += 1
                rv = None
            except NotServed:
                self._cache.replace(kind, [])
                self._mark_listed(kind)
                rv = None
                self._stop.wait(self.not_served_retry_seconds)
            except PodnetError as exc:
                if self._stop.is_set():
                    return
                if _status(exc) == 410:
                    self.relists[kind] += 1
                    rv = None
                    continue
                self._error(f"{kind}: {exc.message}")
            except Exception as exc:  # a bug or an unexpected client error must not end the kind's thread
                if self._stop.is_set():
                    return
                self._error(f"{kind}: {type(exc).__name__}: {exc}")

    def _error(self, message: str) -> None:
        self.errors.append(message)
        del self.errors[:-100]
        self._stop.wait(self.retry_seconds)

    def _watch(self, kind: str, rv: str) -> str:
        """Follow one watch until the server ends it; returns the resourceVersion to continue from."""
        stream = self.transport.watch(kind, rv, self.watch_timeout)
        with self._streams_lock:
            self._streams[kind] = stream
        try:
            if self._stop.is_set():
                return rv
            for event in stream:
                type_ = event.get("type")
                obj = event.get("object")
                if not isinstance(obj, dict):
                    continue
                if type_ == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired(str(obj.get("message", "resourceVersion too old")))
                    raise PodnetError(f"{kind}: watch error: {obj.get('message')}")
                rv = _rv(obj) or rv
                if type_ in ("ADDED", "MODIFIED", "DELETED"):
                    obj.setdefault("kind", kind)
                    self._cache.apply(kind, str(type_), obj)
                if self._stop.is_set():
                    break
            return rv
        finally:
            with self._streams_lock:
                self._streams.pop(kind, None)
            stream.close()


class StaticSource:
    """An in-memory source: the given objects as ADDED, then SYNCED, then whatever :meth:`push` adds."""

    def __init__(self, objects: Iterable[Obj] = ()) -> None:
        self._cache = _Cache(KINDS)
        self._initial = list(objects)
        self._closed = False

    def start(self) -> None:
        for obj in self._initial:
            self.push("ADDED", obj)
        self._cache.changes.put(Change("SYNCED", "", "", ""))

    def push(self, type_: Literal["ADDED", "MODIFIED", "DELETED"], obj: Obj) -> None:
        self._cache.apply(str(obj.get("kind")), type_, obj)

    def next_change(self, timeout: float | None = None) -> Change | None:
        try:
            return self._cache.changes.get(timeout=timeout)
        except queue.Empty:
            return None

    def objects(self, kind: str) -> list[Obj]:
        with self._cache.lock:
            return [self._cache.objects[kind][k] for k in sorted(self._cache.objects[kind])]

    def close(self) -> None:
        self._closed = True
        self._cache.changes.put(None)


def documents(source: ClusterSource, include_workloads: bool = False) -> list[Document]:
    """The cached objects as documents for :func:`podnet.k8s.parse.build_cluster` (``Source`` names the kind).

    Workloads are left out unless asked for: in a live cluster their pods exist as Pods, and a workload's
    template would stand for pods that may not be running."""
    docs: list[Document] = []
    for kind in KINDS:
        if kind in WORKLOAD_KINDS and not include_workloads:
            continue
        for i, obj in enumerate(source.objects(kind)):
            docs.append(Document(Source(f"cluster:{kind}", i), obj))
    return docs


def cluster(source: ClusterSource, include_workloads: bool = False) -> Cluster:
    """The validated cluster of the cached objects. An object the validator rejects is left out with a
    warning in ``Cluster.warnings`` (a real API server may accept what podnet does not model)."""
    docs = documents(source, include_workloads)
    try:
        return build_cluster(docs)
    except ManifestError:
        pass
    good: list[Document] = []
    warnings: list[str] = []
    for doc in docs:
        try:
            build_cluster([doc])
        except ManifestError as exc:
            warnings.extend(f"warning: ignoring invalid object: {p}" for p in exc.problems)
            continue
        good.append(doc)
    result = build_cluster(good)
    result.warnings.extend(warnings)
    return result
