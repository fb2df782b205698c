"""Port tables: painting (first claim wins) against a port-by-port reading of the claims."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from podnet.k8s.model import PROTOCOLS, Protocol
from podnet.policy.ports import MAX_PORT, MIN_PORT, PortTable, paint

# Ports near the edges and near each other, so claims touch, overlap and nest.
PORTS = st.sampled_from([1, 2, 79, 80, 81, 100, 443, 1000, 1024, 65534, 65535])


@st.composite
def claims(draw: st.DrawFn) -> list[tuple[Protocol, int, int, str]]:
    out: list[tuple[Protocol, int, int, str]] = []
    for _ in range(draw(st.integers(0, 7))):
        a, b = draw(PORTS), draw(PORTS)
        out.append((draw(st.sampled_from(PROTOCOLS)), min(a, b), max(a, b), draw(st.sampled_from("abcr"))))
    return out


def expected(cs: list[tuple[Protocol, int, int, str]], rest: str, proto: Protocol, port: int) -> str:
    return next((v for p, lo, hi, v in cs if p == proto and lo <= port <= hi), rest)


@settings(max_examples=400)
@given(claims())
def test_paint_gives_each_port_its_first_claim(cs: list[tuple[Protocol, int, int, str]]) -> None:
    table = paint(cs, "r")
    probes = {MIN_PORT, MAX_PORT} | {x for _, lo, hi, _ in cs for x in (lo - 1, lo, hi, hi + 1)}
    for proto in PROTOCOLS:
        for port in sorted(p for p in probes if MIN_PORT <= p <= MAX_PORT):
            assert table.lookup(proto, port) == expected(cs, "r", proto, port), (proto, port)
        ivs = table.intervals(proto)
        # the intervals tile 1-65535 in order, and two neighbours never hold the same value
        assert ivs[0].lo == MIN_PORT and ivs[-1].hi == MAX_PORT
        for left, right in pairwise(ivs):
            assert left.hi + 1 == right.lo and left.value != right.value
        for iv in ivs:
            assert iv.lo <= iv.hi
            assert expected(cs, "r", proto, iv.lo) == iv.value == expected(cs, "r", proto, iv.hi)


def test_a_table_reads_back_as_rows() -> None:
    table = paint([("TCP", 80, 80, "a"), ("TCP", 70, 90, "b"), ("UDP", 53, 53, "a")], "r")
    assert [(p, iv.lo, iv.hi, iv.value) for p, iv in table.items()] == [
        ("TCP", 1, 69, "r"),
        ("TCP", 70, 79, "b"),
        ("TCP", 80, 80, "a"),
        ("TCP", 81, 90, "b"),
        ("TCP", 91, 65535, "r"),
        ("UDP", 1, 52, "r"),
        ("UDP", 53, 53, "a"),
        ("UDP", 54, 65535, "r"),
        ("SCTP", 1, 65535, "r"),
    ]
    assert table.lookup("TCP", 85) == "b" and table.lookup("SCTP", 9) == "r"


def test_a_claim_equal_to_the_rest_leaves_one_interval() -> None:
    assert [(iv.lo, iv.hi) for iv in paint([("TCP", 5, 9, "r")], "r").intervals("TCP")] == [(1, 65535)]
    uniform = PortTable.uniform("x")
    assert [(p, iv.lo, iv.hi, iv.value) for p, iv in uniform.items()] == [(p, 1, 65535, "x") for p in PROTOCOLS]
