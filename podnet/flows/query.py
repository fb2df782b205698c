"""A flow query: time window (``last``, ``since``), ``follow``, and filter terms; to and from URL parameters.

The agent's ``GET /v1/flows`` and ``podnet observe`` build the same :class:`FlowQuery`, so the same
filter code runs in the agent, in the CLI and over ``--input-file``.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from podnet.errors import UsageError

from .filters import FilterTerm, build, parse_terms
from .model import Flow, parse_time, to_line

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)$")
UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}


def parse_since(text: str, now_ns: int | None = None) -> int:
    """``since``: an RFC 3339 time, or a duration back from now (``30s``, ``5m``, ``2h``) → epoch ns."""
    m = DURATION.match(text.strip())
    if m:
        now = time.time_ns() if now_ns is None else now_ns
        return now - int(float(m.group(1)) * UNIT_NS[m.group(2)])
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: expected an RFC 3339 time or a duration such as 5m") from exc


@dataclass(frozen=True)
class FlowQuery:
    terms: tuple[FilterTerm, ...] = ()
    last: int | None = None
    since_ns: int | None = None
    follow: bool = False
    predicate: Callable[[Flow], bool] = field(default=lambda _f: True, compare=False)

    @classmethod
    def make(
        cls, terms: Sequence[FilterTerm], last: int | None = None, since_ns: int | None = None, follow: bool = False
    ) -> FlowQuery:
        if last is not None and last < 0:
            raise UsageError("--last must not be negative")
        return cls(tuple(terms), last, since_ns, follow, build(terms))

    @classmethod
    def from_params(cls, items: Iterable[tuple[str, str]]) -> FlowQuery:
        pairs = list(items)
        last = since = None
        follow = False
        for key, value in pairs:
            if key == "last":
                try:
                    last = int(value)
                except ValueError as exc:
                    raise UsageError(f"last={value!r}: not a number") from exc
            elif key == "since":
                since = parse_since(value)
            elif key == "follow":
                follow = value not in ("", "0", "false")
        return cls.make(parse_terms(pairs), last, since, follow)

    def params(self) -> str:
        """URL query string for the agent (``since`` as absolute nanoseconds, so every node agrees)."""
        pairs: list[tuple[str, str]] = [(t.query_key, t.value) for t in self.terms]
        if self.last is not None:
            pairs.append(("last", str(self.last)))
        if self.since_ns is not None:
            secs, nanos = divmod(self.since_ns, 10**9)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
            pairs.append(("since", f"{stamp}.{nanos:09d}Z"))
        if self.follow:
            pairs.append(("follow", "1"))
        return urllib.parse.urlencode(pairs)

    def select(self, flows: Iterable[Flow]) -> list[Flow]:
        """The answer over a list of flows (sorted by time): what the agent answers over its store."""
        out = [f for f in flows if (self.since_ns is None or f.time_ns >= self.since_ns) and self.predicate(f)]
        if self.last is not None:
            out = out[-self.last :] if self.last > 0 else []
        return out

    @staticmethod
    def line(flow: Flow) -> str:
        return to_line(flow) + "\n"
