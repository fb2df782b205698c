"""Flow filters: one small pure predicate per dimension, composed by :func:`build`.

Shared by the agent's ``/v1/flows``, ``podnet observe`` and ``--input-file`` reading, so live and offline
answers agree. Semantics (as Hubble's): values of one dimension are OR'ed, dimensions are AND'ed, and a
negated dimension (``--not``) keeps the flows that match none of its values. No I/O here.
"""

from __future__ import annotations

from .base import DIMENSIONS, FilterTerm, Predicate, build, parse_terms

__all__ = ["DIMENSIONS", "FilterTerm", "Predicate", "build", "parse_terms"]
