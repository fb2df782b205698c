"""SQLite storage of the lab API server: objects, one global resourceVersion counter and the event log.

Every write (create, replace, delete) takes the next resourceVersion, stores the object and appends one
event in a single transaction, so the event log is the exact, gap-free history watchers replay. The log
keeps the last ``event_log_size`` events; a watch from a resourceVersion older than that is told 410 Gone.

Locking: one ``threading.Lock`` serialises every method, so the store may be shared by threads; the HTTP
server calls it from its event loop only. Listeners run under the lock, right after the commit: they must
be quick and must not call back into the store.
"""

from __future__ import annotations

import bisect
import copy
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Obj = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name));
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, type TEXT NOT NULL, resource TEXT NOT NULL, namespace TEXT NOT NULL,
    name TEXT NOT NULL, body TEXT NOT NULL, old TEXT);
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One change. ``obj`` is the object after it (for DELETED: its last state, stamped with the deletion's
    resourceVersion); ``old`` the object before (None for ADDED)."""

    rv: int
    type: EventType
    resource: str
    namespace: str
    name: str
    obj: Obj
    old: Obj | None


class Expired(Exception):
    """The requested resourceVersion is older than the oldest event the log still holds."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Store:
    """Objects by (resource key, namespace, name); ``path`` None keeps everything in memory (tests)."""

    def __init__(self, path: Path | None, event_log_size: int = 10000) -> None:
        if event_log_size < 1:
            raise ValueError("event_log_size must be at least 1")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._size = event_log_size
        self._listeners: list[Callable[[Event], None]] = []
        row = self._db.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
        self._rv = int(row[0]) if row else 0
        rows = self._db.execute(
            "SELECT rv, type, resource, namespace, name, body, old FROM events ORDER BY rv DESC LIMIT ?",
            (event_log_size,),
        ).fetchall()
        self._log: list[Event] = [
            Event(rv, t, res, ns, name, json.loads(body), json.loads(old) if old else None)
            for rv, t, res, ns, name, body, old in reversed(rows)
        ]
        self._log_rvs: list[int] = [e.rv for e in self._log]
        self._writes_since_trim = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading -----------------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        """The resourceVersion of the latest write (0 before any)."""
        return self._rv

    @property
    def oldest_resource_version(self) -> int:
        """The oldest resourceVersion a watch may start from: every event after it is still in the log."""
        with self._lock:
            return self._log_rvs[0] - 1 if self._log_rvs else self._rv

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                (resource, namespace, name),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def objects(self, resource: str, namespace: str | None = None) -> tuple[list[Obj], int]:
        """Objects ordered by namespace and name, with the resourceVersion they were read at."""
        with self._lock:
            if namespace is None:
                rows = self._db.execute(
                    "SELECT body FROM objects WHERE resource = ? ORDER BY namespace, name", (resource,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT body FROM objects WHERE resource = ? AND namespace = ? ORDER BY name",
                    (resource, namespace),
                ).fetchall()
            return [json.loads(r[0]) for r in rows], self._rv

    def events_after(self, rv: int, limit: int = 1000) -> list[Event]:
        """Events with a resourceVersion above ``rv``, oldest first; raises Expired if some are gone."""
        with self._lock:
            oldest = self._log_rvs[0] - 1 if self._log_rvs else self._rv
            if rv < oldest:
                raise Expired(rv, oldest)
            start = bisect.bisect_right(self._log_rvs, rv)
            return self._log[start : start + limit]

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` after every committed write; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # -- writing -----------------------------------------------------------------------------------------
    def write(self, type_: EventType, resource: str, namespace: str, name: str, obj: Obj, old: Obj | None) -> Obj:
        """Commit one change under the next resourceVersion and return the stored object.

        ``obj`` gets ``metadata.resourceVersion``; for DELETED the row is removed and ``obj`` is the
        final state the DELETED event carries. The caller has checked existence and preconditions.
        """
        with self._lock:
            rv = self._rv + 1
            stored = copy.deepcopy(obj)
            stored.setdefault("metadata", {})["resourceVersion"] = str(rv)
            body = json.dumps(stored, separators=(",", ":"))
            old_body = json.dumps(old, separators=(",", ":")) if old is not None else None
            with self._db:
                if type_ == "DELETED":
                    self._db.execute(
                        "DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                        (resource, namespace, name),
                    )
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO objects (resource, namespace, name, body) VALUES (?, ?, ?, ?)",
                        (resource, namespace, name, body),
                    )
                self._db.execute(
                    "INSERT INTO events (rv, type, resource, namespace, name, body, old) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (rv, type_, resource, namespace, name, body, old_body),
                )
                self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(rv),))
                self._writes_since_trim += 1
                if self._writes_since_trim >= 256 or self._size < 256:
                    self._db.execute("DELETE FROM events WHERE rv <= ?", (rv - self._size,))
                    self._writes_since_trim = 0
            self._rv = rv
            event = Event(rv, type_, resource, namespace, name, stored, old)
            self._log.append(event)
            self._log_rvs.append(rv)
            if len(self._log) > self._size:
                drop = len(self._log) - self._size
                del self._log[:drop]
                del self._log_rvs[:drop]
            for listener in list(self._listeners):
                listener(event)
            return copy.deepcopy(stored)
