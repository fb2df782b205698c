"""The endpoint registry: one record per pod attachment, persisted in ``<state-dir>/endpoints.json``.

Ownership rule: the agent's single worker thread is the only writer; every write goes through
:class:`podnet.statefile.AtomicJsonFile` (flock + atomic rename), so a reader in another process
(``podnet endpoints`` on a stopped agent, a second agent refusing to start) never sees a torn file.
Invariant kept by the CNI service: an endpoint exists only while IPAM holds its addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from podnet.errors import StateCorrupt
from podnet.ipam.allocator import IPAddress, Owner
from podnet.statefile import AtomicJsonFile

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Endpoint:
    container_id: str
    ifname: str
    netns: str
    network: str
    host_veth: str
    addresses: tuple[IPAddress, ...]
    mac: str
    mtu: int
    pod_namespace: str = ""
    pod_name: str = ""
    created: float = 0.0
    host_mac: str = ""  # the host veth's MAC ("" in records written before it was kept)

    @property
    def owner(self) -> Owner:
        return Owner(self.container_id, self.ifname)

    def to_json(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["addresses"] = [str(a) for a in self.addresses]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Endpoint:
        fields = dict(doc)
        fields["addresses"] = tuple(ipaddress.ip_address(a) for a in doc["addresses"])
        return cls(**fields)


class EndpointRegistry:
    """Endpoints keyed by owner, cached in memory and written through to disk (``path=None``: memory only)."""

    def __init__(self, path: Path | None, *, fsync: bool = True) -> None:
        self.file = AtomicJsonFile(path, fsync=fsync) if path is not None else None
        self._items: dict[Owner, Endpoint] = {}
        self._json: dict[Owner, dict[str, Any]] = {}  # each record's JSON, encoded once at put
        if self.file is not None:
            with self.file.locked():
                doc = self.file.read()
            if doc is not None:
                self._items = self._decode(doc)
                self._json = {o: e.to_json() for o, e in self._items.items()}

    def _decode(self, doc: dict[str, Any]) -> dict[Owner, Endpoint]:
        if doc.get("version") != FORMAT_VERSION:
            raise StateCorrupt(f"endpoint registry: unsupported format version {doc.get('version')!r}")
        try:
            endpoints = [Endpoint.from_json(e) for e in doc["endpoints"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise StateCorrupt(f"endpoint registry: malformed record: {exc!r}") from exc
        return {e.owner: e for e in endpoints}

    def _flush(self) -> None:
        if self.file is None:
            return
        doc = {"version": FORMAT_VERSION, "endpoints": [self._json[o] for o in sorted(self._json)]}
        with self.file.locked():
            self.file.write(doc)

    def get(self, owner: Owner) -> Endpoint | None:
        return self._items.get(owner)

    def put(self, endpoint: Endpoint) -> None:
        self._items[endpoint.owner] = endpoint
        self._json[endpoint.owner] = endpoint.to_json()
        self._flush()

    def remove(self, owner: Owner) -> Endpoint | None:
        gone = self._items.pop(owner, None)
        if gone is not None:
            del self._json[owner]
            self._flush()
        return gone

    def all(self) -> list[Endpoint]:
        return [e for _, e in sorted(self._items.items())]
