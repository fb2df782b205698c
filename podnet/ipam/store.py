"""Where IPAM keeps its state: a narrow protocol, an in-memory store and a file-locked disk store.

A transaction hands out a private copy of the whole state; it is written back only when the block
ends without an exception, so a failed allocation changes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from podnet.errors import StateCorrupt
from podnet.ipam.allocator import IPAddress, Owner, PoolState, parse_cidr
from podnet.statefile import AtomicJsonFile

# Pools keyed by their CIDR text ("10.244.0.0/24").
IpamState = dict[str, PoolState]

FORMAT_VERSION = 1


class IpamStore(Protocol):
    """Storage of IPAM state. ``transaction`` yields a copy that is committed when the block succeeds."""

    def transaction(self) -> contextlib.AbstractContextManager[IpamState]: ...

    def snapshot(self) -> IpamState: ...


class MemoryIpamStore:
    """IPAM state in memory, for tests and for callers that persist elsewhere. Not thread-safe."""

    def __init__(self) -> None:
        self._state: IpamState = {}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[IpamState]:
        work = copy.deepcopy(self._state)
        yield work
        self._state = work

    def snapshot(self) -> IpamState:
        return copy.deepcopy(self._state)


@functools.lru_cache(maxsize=65536)
def _text(address: IPAddress) -> str:
    """str() of an address, cached: formatting IPv6 addresses dominates encoding otherwise."""
    return str(address)


def encode_state(state: IpamState) -> dict[str, Any]:
    pools: dict[str, Any] = {}
    for key, pool in sorted(state.items()):
        pools[key] = {
            "last": str(pool.last) if pool.last is not None else None,
            "allocations": {
                _text(a): {"containerID": o.container_id, "ifname": o.ifname}
                for a, o in sorted(pool.allocations.items(), key=lambda item: int(item[0]))
            },
        }
    return {"version": FORMAT_VERSION, "pools": pools}


def decode_state(doc: dict[str, Any], where: str) -> IpamState:
    if doc.get("version") != FORMAT_VERSION:
        raise StateCorrupt(f"{where}: unsupported format version {doc.get('version')!r}")
    state: IpamState = {}
    try:
        for key, raw in doc["pools"].items():
            cidr = parse_cidr(key)
            allocations: dict[IPAddress, Owner] = {}
            for addr, owner in raw["allocations"].items():
                allocations[ipaddress.ip_address(addr)] = Owner(owner["containerID"], owner["ifname"])
            last = ipaddress.ip_address(raw["last"]) if raw.get("last") else None
            state[key] = PoolState(cidr, allocations, last)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateCorrupt(f"{where}: malformed IPAM state: {exc!r}") from exc
    return state


class DiskIpamStore:
    """IPAM state in ``<dir>/ipam.json``; see :mod:`podnet.statefile` for the locking rule.

    Each transaction holds the file lock from read to write, so two processes sharing a state dir
    never hand out the same address. The decoded state is cached with the file's signature (inode,
    size, mtime): while no other process has replaced the file, a transaction reuses the cache
    instead of parsing the JSON again. A failed transaction drops the cache (the file is untouched).
    """

    def __init__(self, state_dir: Path, *, fsync: bool = True) -> None:
        self.file = AtomicJsonFile(state_dir / "ipam.json", fsync=fsync)
        self._cache: tuple[tuple[int, int, int] | None, IpamState, dict[str, Any]] | None = None

    def _load(self) -> tuple[IpamState, dict[str, Any]]:
        signature = self.file.signature()
        if self._cache is not None and self._cache[0] == signature and signature is not None:
            return self._cache[1], self._cache[2]
        doc = self.file.read()
        state = {} if doc is None else decode_state(doc, str(self.file.path))
        encoded = encode_state(state)
        self._cache = (signature, state, encoded)
        return state, encoded

    @contextlib.contextmanager
    def transaction(self) -> Iterator[IpamState]:
        with self.file.locked():
            state, before = self._load()
            self._cache = None  # the state is lent out: only a committed transaction may cache it
            yield state
            after = encode_state(state)
            if after != before:
                self.file.write(after)
            self._cache = (self.file.signature(), state, after)

    def snapshot(self) -> IpamState:
        with self.file.locked():
            return copy.deepcopy(self._load()[0])
