"""A bounded ring of flows (Hubble's observer ring): the newest ``capacity`` flows, oldest dropped.

Thread-safe: one writer (the agent's policy loop thread) and any number of readers (API handlers).
Every flow gets a sequence number, so a follower asks for what came after the last one it saw.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from .model import Flow


class FlowStore:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("flow store capacity must be at least 1")
        self.capacity = capacity
        self._ring: deque[tuple[int, Flow]] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self.overwritten = 0  # flows pushed out of the ring by newer ones

    def add(self, flow: Flow) -> None:
        with self._lock:
            if len(self._ring) == self.capacity:
                self.overwritten += 1
            self._seq += 1
            self._ring.append((self._seq, flow))

    def add_all(self, flows: list[Flow]) -> None:
        """:meth:`add` for a batch, under one lock."""
        with self._lock:
            ring, seq = self._ring, self._seq
            self.overwritten += max(0, len(ring) + len(flows) - self.capacity)
            for flow in flows:
                seq += 1
                ring.append((seq, flow))
            self._seq = seq

    def __len__(self) -> int:
        with self._lock:
            return len(self._ring)

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def query(
        self,
        match: Callable[[Flow], bool] = lambda _f: True,
        *,
        since_ns: int | None = None,
        last: int | None = None,
        after_seq: int = 0,
    ) -> tuple[list[Flow], int]:
        """Matching flows, oldest first (``last``: only the newest N of them), and the sequence number seen."""
        with self._lock:
            items = list(self._ring)
            seq = self._seq
        out = [f for s, f in items if s > after_seq and (since_ns is None or f.time_ns >= since_ns) and match(f)]
        if last is not None:
            out = out[-last:] if last > 0 else []
        return out, seq
