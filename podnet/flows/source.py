"""Where flows come from, behind one small protocol: a flows file, one or more agent sockets, or a lab.

Used by the web UI's flow routes (and open to any reader that wants history plus a live follow):

- :meth:`FlowSource.history` answers a :class:`~podnet.flows.query.FlowQuery` (filters, ``last``, ``since``)
  with flows sorted by time: what ``podnet observe`` answers for the same source and flags.
- :meth:`FlowSource.follow` starts following: a :class:`Follower` whose :meth:`~Follower.poll` returns, first,
  the history the query asks for, then new flows as they come. :meth:`~Follower.close` ends it at once from
  any thread (it shuts the sockets its reader threads block on).

Sources:

- :class:`FileSource`: a JSON-lines file (``podnet observe -o json``, the agents' ``--flows-export``). It is
  read again on every history query; following tails it (a rotated, shorter file is read from its start).
- :class:`SocketSource`: agents' unix sockets (``GET /v1/flows``), their answers merged by time; following
  keeps one streaming request per agent. An agent that cannot be reached is :class:`TryAgainLater`.
- :class:`LabSource`: every node of a lab, by name (or the only lab running), looked up on every call, so a
  lab started or restarted after the source was made is found.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from podnet.errors import PodnetError, TryAgainLater, UsageError

from .model import Flow, from_line
from .query import FlowQuery


class SourceError(PodnetError):
    """The source cannot be read: a missing file, a line that is no flow, an agent's broken answer."""


class SourceEnded(PodnetError):
    """The source stopped: every agent closed its stream (the agents stopped)."""


class Follower(Protocol):
    def poll(self, timeout: float) -> list[Flow]:
        """The flows that arrived (waits up to ``timeout`` s for the first); raises :class:`SourceEnded`."""
        ...

    def close(self) -> None: ...


class FlowSource(Protocol):
    def describe(self) -> str: ...

    def history(self, query: FlowQuery) -> list[Flow]: ...

    def follow(self, query: FlowQuery) -> Follower: ...


def _parse_lines(lines: Sequence[str], where: str) -> list[Flow]:
    out: list[Flow] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(from_line(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"{where}: line {n}: not a flow: {exc}") from exc
    return out


class FileSource:
    """Flows of a JSON-lines file."""

    POLL_S = 0.1

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"file {self.path}"

    def _read(self) -> tuple[list[Flow], int]:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise SourceError(f"flows file {self.path}: {exc.strerror}") from exc
        end = data.rfind(b"\n") + 1  # a half-written last line waits for its newline
        flows = _parse_lines(data[:end].decode("utf-8", errors="replace").splitlines(), str(self.path))
        return flows, end

    def history(self, query: FlowQuery) -> list[Flow]:
        flows, _ = self._read()
        flows.sort(key=lambda f: f.time_ns)
        return query.select(flows)

    def follow(self, query: FlowQuery) -> Follower:
        flows, offset = self._read()
        flows.sort(key=lambda f: f.time_ns)
        return _FileFollower(self.path, offset, query.select(flows), query, self.POLL_S)


class _FileFollower:
    def __init__(self, path: Path, offset: int, head: list[Flow], query: FlowQuery, poll_s: float) -> None:
        self.path = path
        self.offset = offset
        self.pending = head
        self.query = query
        self.poll_s = poll_s
        self.closed = threading.Event()

    def _new(self) -> list[Flow]:
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return []
        if size < self.offset:  # rotated or truncated: start over on the new file
            self.offset = 0
        if size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        end = data.rfind(b"\n") + 1
        self.offset += end
        flows = _parse_lines(data[:end].decode("utf-8", errors="replace").splitlines(), str(self.path))
        since = self.query.since_ns
        return [f for f in flows if (since is None or f.time_ns >= since) and self.query.predicate(f)]

    def poll(self, timeout: float) -> list[Flow]:
        if self.pending:
            out, self.pending = self.pending, []
            return out
        deadline = time.monotonic() + timeout
        while not self.closed.is_set():
            found = self._new()
            if found or time.monotonic() >= deadline:
                return found
            self.closed.wait(min(self.poll_s, max(0.0, deadline - time.monotonic())))
        return []

    def close(self) -> None:
        self.closed.set()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost")
        self.timeout = timeout
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def _get(socket_path: str, path: str, timeout: float | None) -> tuple[_UnixConnection, http.client.HTTPResponse]:
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
    except OSError as exc:
        conn.close()
        raise TryAgainLater(f"podnet agent at {socket_path} is not reachable: {exc}") from exc
    if response.status != 200:
        detail = response.read().decode(errors="replace").strip()
        conn.close()
        if response.status == 400:
            raise UsageError(f"podnet agent at {socket_path}: {detail}")
        raise TryAgainLater(f"podnet agent at {socket_path} answered HTTP {response.status}: {detail}")
    return conn, response


class SocketSource:
    """Flows of one or more agents, by their unix sockets."""

    def __init__(self, sockets: Sequence[str | Path], timeout: float = 10.0) -> None:
        self.sockets = [str(s) for s in sockets]
        self.timeout = timeout

    def describe(self) -> str:
        return "agent " + ", ".join(self.sockets)

    def history(self, query: FlowQuery) -> list[Flow]:
        once = FlowQuery.make(query.terms, query.last, query.since_ns, follow=False)
        flows: list[Flow] = []
        for sock in self.sockets:
            conn, response = _get(sock, f"/v1/flows?{once.params()}", self.timeout)
            try:
                body = response.read().decode()
            except OSError as exc:
                raise TryAgainLater(f"podnet agent at {sock}: reading flows: {exc}") from exc
            finally:
                conn.close()
            flows.extend(_parse_lines(body.splitlines(), sock))
        flows.sort(key=lambda f: f.time_ns)
        return query.select(flows)

    def follow(self, query: FlowQuery) -> Follower:
        live = FlowQuery.make(query.terms, query.last, query.since_ns, follow=True)
        return _SocketFollower(self.sockets, live, self.timeout)


class _SocketFollower:
    """One streaming request per agent, each read by a daemon thread into one queue."""

    def __init__(self, sockets: list[str], query: FlowQuery, timeout: float) -> None:
        self.items: queue.Queue[Flow | PodnetError | None] = queue.Queue()  # None: one stream ended
        self.conns: list[_UnixConnection] = []
        self.query = query
        self.ended = 0
        self.total = len(sockets)
        self.closed = False
        self.lock = threading.Lock()
        try:
            for sock in sockets:
                conn, response = _get(sock, f"/v1/flows?{query.params()}", timeout)
                if conn.sock is not None:
                    conn.sock.settimeout(None)  # a stream may be quiet for long
                self.conns.append(conn)
                threading.Thread(target=self._read, args=(sock, conn, response), daemon=True).start()
        except PodnetError:
            self.close()
            raise

    def _read(self, sock: str, conn: _UnixConnection, response: http.client.HTTPResponse) -> None:
        """Reads one agent's stream; owns its connection (``close`` only shuts the socket down under it)."""
        try:
            while True:
                line = response.readline()
                if not line:
                    break
                if line.strip():
                    self.items.put(from_line(line.decode()))
        except (OSError, ValueError, KeyError, http.client.HTTPException) as exc:
            if not self.closed:
                self.items.put(SourceError(f"podnet agent at {sock}: flow stream broke: {exc}"))
        finally:
            conn.close()
            self.items.put(None)

    def poll(self, timeout: float) -> list[Flow]:
        out: list[Flow] = []
        deadline = time.monotonic() + timeout
        while True:
            if self.ended >= self.total and not out and self.items.empty():
                raise SourceEnded("the agents closed their flow streams (stopped?)")
            wait = 0.0 if out else max(0.0, deadline - time.monotonic())
            try:
                item = self.items.get(timeout=wait) if wait > 0 else self.items.get_nowait()
            except queue.Empty:
                return out
            if item is None:
                self.ended += 1
                continue
            if isinstance(item, PodnetError):
                raise item
            if self.query.predicate(item):
                out.append(item)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for conn in self.conns:
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # the reader thread wakes up and closes the connection


class LabSource:
    """Every node of a lab (``name`` None: the only lab running), looked up on each call."""

    def __init__(self, name: str | None = None, timeout: float = 10.0) -> None:
        self.name = name
        self.timeout = timeout

    def _sockets(self) -> SocketSource:
        from podnet.lab import manager

        lab = manager.pick(self.name)
        return SocketSource([lab.agent_socket(node) for node in lab.plan.nodes], self.timeout)

    def describe(self) -> str:
        return f"lab {self.name}" if self.name else "the running lab"

    def history(self, query: FlowQuery) -> list[Flow]:
        return self._sockets().history(query)

    def follow(self, query: FlowQuery) -> Follower:
        return self._sockets().follow(query)


def make_source(lab: str | None = None, sockets: Sequence[str] = (), file: str | None = None) -> FlowSource:
    """The source for command-line flags: a file, agent sockets, or a lab (by default the only one running)."""
    given = (lab is not None) + (file is not None) + bool(sockets)
    if given > 1:
        raise UsageError("flows come from one source: a lab, agent sockets, or a file")
    if file is not None:
        return FileSource(file)
    if sockets:
        return SocketSource(list(sockets))
    return LabSource(lab)
