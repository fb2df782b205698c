"""Run ``podnet`` in-process on manifests: the exit code and what it printed."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from podnet.cli.main import main

REPO = Path(__file__).resolve().parents[3]
SHOP = REPO / "examples" / "shop"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Podnet = Callable[..., Run]


@pytest.fixture
def podnet(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Podnet:
    """``podnet("policy", "matrix", ..., stdin="...")``; argparse exits become exit codes."""

    def run(*argv: str | Path, stdin: str = "") -> Run:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
