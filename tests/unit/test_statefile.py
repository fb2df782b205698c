"""Atomic JSON state files: with fsync (rename) and without (exchange, then unlink the old one)."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podnet.statefile import AtomicJsonFile


@pytest.mark.parametrize("fsync", [True, False])
def test_each_write_replaces_the_whole_document_and_leaves_no_temporary(tmp_path: Path, fsync: bool) -> None:
    f = AtomicJsonFile(tmp_path / "s.json", fsync=fsync)
    inodes = []
    for n in range(5):
        with f.locked():
            f.write({"n": n, "pad": "x" * (n * 100)})
            assert f.read() == {"n": n, "pad": "x" * (n * 100)}
        inodes.append(os.stat(f.path).st_ino)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.lock"]
    assert all(a != b for a, b in itertools.pairwise(inodes))  # a new inode each time: the cache key


def test_reader_in_another_process_never_sees_a_torn_document(tmp_path: Path) -> None:
    path, stop = tmp_path / "s.json", tmp_path / "stop"
    f = AtomicJsonFile(path, fsync=False)
    with f.locked():
        f.write({"n": -1, "pad": ""})
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None and reader.stdout.readline() == "reading\n"  # it reads while we write
    for n in range(2000):
        f.write({"n": n, "pad": "y" * (n % 7 * 300)})  # no lock: the reader does not take it either
    stop.touch()
    out, err = reader.communicate(timeout=120)
    assert (reader.returncode, err) == (0, ""), err
    torn, reads = map(int, out.split())
    assert torn == 0 and reads > 0, out
    assert json.loads(path.read_text())["n"] == 1999


READER = """
import json, os, sys
torn = reads = 0
json.loads(open(sys.argv[1]).read())
print("reading", flush=True)
while not os.path.exists(sys.argv[2]):
    try:
        json.loads(open(sys.argv[1]).read())
        reads += 1
    except ValueError:
        torn += 1
print(torn, reads)
"""
