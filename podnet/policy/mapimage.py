"""The userspace image of a pod's kernel policy map, and the diff between two images.

An image maps (direction, peer identity, protocol, port range) to a decision. Peer 0 is the
wildcard: a packet whose peer has no entry of its own in that direction is decided by the wildcard
entries. Each explicit peer carries its full table, so a lookup needs no precedence rules: exact
peer first, else the wildcard — what a kernel hash/LPM lookup does in two probes.
"""

from __future__ import annotations

from dataclasses import dataclass

from podnet.k8s.model import PROTOCOLS, Direction, Protocol
from podnet.policy.compiler import DIRECTIONS, CompiledPolicy, Decision, build_table
from podnet.policy.identity import HOST, Identity
from podnet.policy.ports import PortTable

WILDCARD = 0
PROTO_NUMBERS: dict[Protocol, int] = {"TCP": 6, "UDP": 17, "SCTP": 132}


@dataclass(frozen=True, slots=True, order=True)
class MapKey:
    direction: Direction
    peer: int
    protocol: int
    lo: int
    hi: int


MapImage = dict[MapKey, Decision]


def _rows(direction: Direction, peer: int, table: PortTable[Decision]) -> list[tuple[MapKey, Decision]]:
    return [(MapKey(direction, peer, PROTO_NUMBERS[proto], iv.lo, iv.hi), iv.value) for proto, iv in table.items()]


def _signature(table: PortTable[Decision]) -> tuple[object, ...]:
    return tuple((proto, iv.lo, iv.hi, iv.value) for proto, iv in table.items())


def map_image(compiled: CompiledPolicy, subject: int) -> MapImage:
    """The map image of pod identity ``subject``: wildcard rows plus rows for peers that differ."""
    ids = compiled.identities
    image: MapImage = {}
    for direction in DIRECTIONS:
        dpol = compiled.direction(subject, direction)
        nobody = Identity(WILDCARD, "world")
        dest = ids.by_id[subject] if direction == "ingress" else nobody
        wildcard = build_table(dpol, WILDCARD, dest)
        image.update(_rows(direction, WILDCARD, wildcard))
        explicit: set[int] = set()
        for rule in dpol.rules():
            if rule.peers is not None:
                explicit |= rule.peers
            elif direction == "egress" and rule.named:
                explicit |= {i.id for i in ids.by_id.values() if any(n[0] in rule.named for n in i.named_ports)}
        if direction == "ingress" and HOST in ids.by_id:
            explicit.add(HOST)  # always allowed in: see CompiledPolicy.table
        base = _signature(wildcard)
        for peer in sorted(explicit):
            table = compiled.table(subject, direction, peer)
            if _signature(table) != base:
                image.update(_rows(direction, peer, table))
    return image


def lookup(image: MapImage, direction: Direction, peer: int, protocol: Protocol, port: int) -> Decision:
    """Reference lookup with the kernel's semantics (exact peer, else wildcard); linear, for tests."""
    number = PROTO_NUMBERS[protocol]
    exact = [k for k in image if k.direction == direction and k.peer == peer]
    keys = exact or [k for k in image if k.direction == direction and k.peer == WILDCARD]
    for key in keys:
        if key.protocol == number and key.lo <= port <= key.hi:
            return image[key]
    raise KeyError((direction, peer, protocol, port))


@dataclass(frozen=True, slots=True)
class ImageDiff:
    upsert: MapImage
    delete: frozenset[MapKey]

    @property
    def empty(self) -> bool:
        return not self.upsert and not self.delete


def diff_images(old: MapImage, new: MapImage) -> ImageDiff:
    """What to write and what to delete to turn ``old`` into ``new``."""
    upsert = {k: v for k, v in new.items() if old.get(k) != v}
    delete = frozenset(k for k in old if k not in new)
    return ImageDiff(upsert, delete)


def apply_diff(image: MapImage, diff: ImageDiff) -> MapImage:
    out = {k: v for k, v in image.items() if k not in diff.delete}
    out.update(diff.upsert)
    return out


__all__ = [
    "PROTOCOLS",
    "WILDCARD",
    "ImageDiff",
    "MapImage",
    "MapKey",
    "apply_diff",
    "diff_images",
    "lookup",
    "map_image",
]
