from __future__ import annotations

import subprocess
import sys

import pytest

from podnet.errors import UsageError
from podnet.flows.filters import DIMENSIONS, FilterTerm, build, parse_terms

from .helpers import sample


def pick(*terms: FilterTerm) -> list[int]:
    match = build(terms)
    return [i for i, f in enumerate(sample()) if match(f)]


def t(dim: str, value: str, negated: bool = False) -> FilterTerm:
    return FilterTerm(dim, value, negated)


def test_no_terms_keeps_everything() -> None:
    assert pick() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("term", "want"),
    [
        (t("verdict", "dropped"), [1, 3]),
        (t("verdict", "FORWARDED"), [0, 2, 4, 5]),
        (t("namespace", "data"), [1, 3]),
        (t("namespace", "web"), [0, 1, 2, 3, 4, 5]),
        (t("pod", "api/backend-0"), [0, 2, 4, 5]),
        (t("pod", "postgres-0"), [1, 3]),
        (t("from-pod", "web/frontend-0"), [0, 1, 2, 3, 4, 5]),
        (t("to-pod", "web/frontend-0"), []),
        (t("to-pod", "data/postgres-0"), [1, 3]),
        (t("ip", "10.246.0.4"), [1, 3]),
        (t("ip", "10.246.1.0/24"), [0, 2, 4, 5]),
        (t("ip", "fd00::/8"), []),
        (t("label", "app=backend"), [0, 2, 4, 5]),
        (t("label", "k8s:app=postgres"), [1, 3]),
        (t("label", "app"), [0, 1, 2, 3, 4, 5]),
        (t("protocol", "udp"), [4]),
        (t("protocol", "TCP"), [0, 1, 2, 3, 5]),
        (t("port", "5432"), [1, 3]),
        (t("port", "40002"), [2]),
        (t("type", "drop"), [1, 3]),
        (t("type", "policy-verdict"), [0, 2, 4, 5]),
        (t("type", "trace"), []),
    ],
)
def test_each_dimension(term: FilterTerm, want: list[int]) -> None:
    assert pick(term) == want
    negated = FilterTerm(term.dimension, term.value, True)
    assert pick(negated) == [i for i in range(6) if i not in want]


def test_values_of_one_dimension_are_ored_and_dimensions_anded() -> None:
    assert pick(t("port", "53"), t("port", "5432")) == [1, 3, 4]
    assert pick(t("port", "53"), t("port", "5432"), t("verdict", "DROPPED")) == [1, 3]
    assert pick(t("verdict", "FORWARDED"), t("port", "9000", True)) == [4]
    assert pick(t("to-pod", "api/backend-0"), t("protocol", "udp", True), t("port", "40000", True)) == [2, 5]


def test_parse_terms_reads_query_parameters_in_order() -> None:
    terms = parse_terms([("verdict", "DROPPED"), ("last", "5"), ("not-port", "53"), ("bogus", "x")])
    assert terms == [t("verdict", "DROPPED"), t("port", "53", True)]
    assert [term.query_key for term in terms] == ["verdict", "not-port"]


@pytest.mark.parametrize(
    "term",
    [t("verdict", "MAYBE"), t("port", "0"), t("port", "http"), t("ip", "nope"), t("protocol", "gre"), t("type", "x")],
)
def test_bad_values_are_usage_errors(term: FilterTerm) -> None:
    with pytest.raises(UsageError):
        build([term])


def test_filters_import_nothing_that_touches_the_kernel_or_network() -> None:
    code = (
        "import sys, podnet.flows.filters; "
        "print([m for m in sys.modules if m.startswith(('podnet.datapath', 'podnet.agent', 'podnet.lab', 'pyroute2'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(DIMENSIONS) == {
        "verdict", "namespace", "pod", "from-pod", "to-pod", "ip", "label", "protocol", "port", "type",
    }  # fmt: skip
