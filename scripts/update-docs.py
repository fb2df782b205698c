"""Rewrite the expected output of every ``console`` example in docs/*.md with what it prints now.

    .venv/bin/python scripts/update-docs.py [docs/policy.md ...]

Run it after a deliberate change of output, then read the diff (git diff docs/) before committing:
tests/unit/test_docs.py fails on any example whose output drifted.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.test_docs import DOCS, commands, fenced_blocks, run


def update(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    changed = 0
    # Work bottom-up so earlier line numbers stay valid while later blocks change length.
    for block in reversed([b for b in fenced_blocks(path, "\n".join(lines)) if b.info == "console"]):
        cmds = commands(block)
        outputs = run(cmds)
        body: list[str] = []
        for cmd, got in zip(cmds, outputs, strict=True):
            first, *rest = cmd.text.split("\n")
            body.append(f"$ {first}")
            body += [f"> {r}" for r in rest]
            body += got
        start = block.line  # index of the first body line (block.line is the 1-based fence line)
        if lines[start : start + len(block.body)] != body:
            lines[start : start + len(block.body)] = body
            changed += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(DOCS.glob("*.md"))
    for path in paths:
        print(f"{path}: {update(path)} example block(s) updated")


if __name__ == "__main__":
    main()
