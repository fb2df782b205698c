"""Every shell example in docs/*.md runs, and prints exactly what the page says it prints.

An example is a fenced block with the info string ``console``. A line starting with ``$ `` is a
command (a following line starting with ``> `` continues it, as a shell's PS2 prompt would show);
the lines up to the next command are its expected output, stdout and stderr together, blank lines
included. All commands of a block run in one bash, in order, from the repository root, so ``$ echo $?``
shows the exit code of the command before it. ``podnet`` is this test run's podnet
(``sys.executable -m podnet.cli.main``), wherever it appears in a command line.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
SHELL_INFO = {"", "sh", "bash", "shell", "shell-session", "zsh"}
MARK = "@@podnet-doc-command-{}@@"


@dataclass(frozen=True)
class Command:
    line: int  # 1-based line of the ``$ `` line in its file
    text: str
    expected: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    body: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.line}"


def fenced_blocks(path: Path, text: str) -> list[Block]:
    """Every fenced code block of a Markdown text, with its info string and body lines."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m["fence"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (lines[i].startswith(fence) and not lines[i].strip().strip(fence[0])):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path.name}:{start + 1}: code block is never closed")
        blocks.append(Block(path, start + 1, m["info"], tuple(body)))
        i += 1
    return blocks


def commands(block: Block) -> list[Command]:
    """The commands of a console block, each with its expected output lines."""
    out: list[Command] = []
    text: str | None = None
    line = 0
    expected: list[str] = []
    for n, raw in enumerate(block.body, start=block.line + 1):
        if raw.startswith("$ "):
            if text is not None:
                out.append(Command(line, text, tuple(expected)))
            text, line, expected = raw[2:], n, []
        elif text is None:
            raise AssertionError(f"{block.path.name}:{n}: console output before any '$ ' command: {raw!r}")
        elif raw.startswith("> ") and not expected:
            text += "\n" + raw[2:]
        else:
            expected.append(raw)
    if text is None:
        raise AssertionError(f"{block.name}: console block without a '$ ' command")
    out.append(Command(line, text, tuple(expected)))
    return out


def doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def console_blocks() -> list[Block]:
    return [b for p in doc_files() for b in fenced_blocks(p, p.read_text(encoding="utf-8")) if b.info == "console"]


def script(cmds: list[Command]) -> str:
    """One bash script for a block; a marker line before each command splits the output again."""
    lines = [
        'podnet() { "$PODNET_PYTHON" -m podnet.cli.main "$@"; }',
        "__mark() { __rc=$?; printf '\\n%s\\n' \"$1\"; return $__rc; }",
    ]
    for i, cmd in enumerate(cmds):
        lines += [f"__mark '{MARK.format(i)}'", cmd.text]
    lines.append(f"__mark '{MARK.format(len(cmds))}'")
    return "\n".join(lines) + "\n"


def run(cmds: list[Command], cwd: Path = REPO) -> list[list[str]]:
    """Run a block's commands; the output lines of each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODNET_", "PYTHON"))}
    env.update(PODNET_PYTHON=sys.executable, PYTHONIOENCODING="utf-8", LC_ALL="C.UTF-8", COLUMNS="80")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script(cmds)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    outputs: list[list[str]] = []
    rest = proc.stdout
    for i in range(len(cmds) + 1):
        before, sep, rest = rest.partition(f"\n{MARK.format(i)}\n")
        assert sep, f"the output lost its marker {i}: {proc.stdout!r}"
        if i:
            outputs.append(before.splitlines())
        else:
            assert before == "", f"output before the first command: {before!r}"
    assert rest == "", f"output after the last command: {rest!r}"
    return outputs


def mismatches(block: Block, cmds: list[Command], outputs: list[list[str]]) -> list[str]:
    problems = []
    for cmd, got in zip(cmds, outputs, strict=True):
        if list(cmd.expected) != got:
            diff = "\n".join(difflib.unified_diff(list(cmd.expected), got, "documented", "actual", lineterm=""))
            problems.append(f"{block.path.name}:{cmd.line}: $ {cmd.text}\n{diff}")
    return problems


BLOCKS = console_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_console_example_prints_what_the_docs_say(block: Block) -> None:
    cmds = commands(block)
    problems = mismatches(block, cmds, run(cmds))
    assert not problems, "documented output drifted:\n\n" + "\n\n".join(problems)


def test_the_docs_have_examples_and_every_shell_example_is_tested() -> None:
    names = {p.name for p in doc_files()}
    assert {"policy.md", "concepts.md"} <= names
    assert sum(b.path.name == "policy.md" for b in BLOCKS) >= 10
    untested = [
        b.name
        for p in doc_files()
        for b in fenced_blocks(p, p.read_text(encoding="utf-8"))
        if b.info != "console"
        and any(
            line.startswith("$ ") or (b.info in SHELL_INFO and line.startswith(("podnet ", "make ", "sudo ")))
            for line in b.body
        )
    ]
    assert not untested, f"shell examples outside a console block are never run: {untested}"


def test_readme_podnet_commands_run() -> None:
    """The README shows commands without their output; each must still run (denied is fine: exit 1)."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    cmds = [line.split("#")[0].strip() for line in lines if line.startswith(".venv/bin/podnet ")]
    assert cmds, "the README should show one podnet command"
    for cmd in cmds:
        argv = [sys.executable, "-m", "podnet.cli.main", *cmd.split()[1:]]
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode in (0, 1), f"{cmd}: {proc.stderr}"
        assert proc.stdout and not proc.stderr, cmd


# ---- the harness itself ----------------------------------------------------------------------------------------------

SAMPLE = """# A page

```console
$ podnet policy lint -f examples/shop
no problems found
$ echo one; echo
one

$ printf 'a\\n' | \\
> cat
a
$ false
$ echo $?
1
```

```yaml
$ not a command
```
"""


def test_harness_parses_commands_continuations_and_blank_lines(tmp_path: Path) -> None:
    blocks = fenced_blocks(tmp_path / "x.md", SAMPLE)
    assert [(b.line, b.info) for b in blocks] == [(3, "console"), (17, "yaml")]
    cmds = commands(blocks[0])
    assert [(c.line, c.text, c.expected) for c in cmds] == [
        (4, "podnet policy lint -f examples/shop", ("no problems found",)),
        (6, "echo one; echo", ("one", "")),
        (9, "printf 'a\\n' | \\\ncat", ("a",)),
        (12, "false", ()),
        (13, "echo $?", ("1",)),
    ]
    assert mismatches(blocks[0], cmds, run(cmds)) == []


def test_harness_fails_when_an_example_drifts(tmp_path: Path) -> None:
    drifted = SAMPLE.replace("no problems found", "no problem found").replace("\n1\n```", "\n0\n```")
    block = fenced_blocks(tmp_path / "x.md", drifted)[0]
    cmds = commands(block)
    problems = mismatches(block, cmds, run(cmds))
    assert [p.splitlines()[0] for p in problems] == [
        "x.md:4: $ podnet policy lint -f examples/shop",
        "x.md:13: $ echo $?",
    ]
    assert "-no problem found\n+no problems found" in problems[0]


def test_harness_rejects_output_without_a_command(tmp_path: Path) -> None:
    block = fenced_blocks(tmp_path / "x.md", "```console\nstray output\n$ true\n```\n")[0]
    with pytest.raises(AssertionError, match="output before any"):
        commands(block)
