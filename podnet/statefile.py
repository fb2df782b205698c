"""Crash-safe JSON state files: an exclusive ``flock`` around read-modify-write, atomic replace.

Locking rule: every reader and writer of ``<name>.json`` takes ``flock(LOCK_EX)`` on the sibling
``<name>.lock`` for the whole transaction. A writer writes ``<name>.json.tmp``, fsyncs it (unless the
file was opened with ``fsync=False``) and renames it over the old file, so a process killed at any
moment leaves either the old or the new document, never a torn one. Without fsync that holds for a
killed process, not for a crash of the machine: the agent's state files go without it because
:mod:`podnet.agent.bootstate` sets aside the state of an earlier boot. The lock file is never deleted
(deleting it would let two processes lock different inodes).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from podnet.errors import StateCorrupt

RENAME_EXCHANGE = 2
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def _exchange(new: Path, path: Path) -> bool:
    """Swap ``new`` into ``path`` with ``renameat2(RENAME_EXCHANGE)`` and delete the old document.

    As atomic as a rename for readers (the name always holds a whole document), but ext4 does not
    flush the new file's data at it, as it does for a rename over an existing file (``auto_da_alloc``:
    ~0.1 ms, several ms on a busy disk). Only for files written without fsync. False when the
    document does not exist yet or the system cannot exchange (the caller renames then).
    """
    if _renameat2 is None:
        return False
    if _renameat2(AT_FDCWD, os.fsencode(new), AT_FDCWD, os.fsencode(path), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(err, f"renameat2 {new} <-> {path}: {os.strerror(err)}")
    os.unlink(new)  # now the old document; a leftover is overwritten by the next write
    return True


class AtomicJsonFile:
    """One JSON document on disk, read and replaced under an exclusive file lock."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.lock_path = path.with_suffix(".lock")
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock of this document (blocking)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def signature(self) -> tuple[int, int, int] | None:
        """(inode, size, mtime_ns) of the document, None when absent: equal signatures, same content.

        Every write renames a new inode into place, so a document replaced by any writer changes
        its signature even within one mtime tick.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def read(self) -> dict[str, Any] | None:
        """The document, or None when it does not exist yet. Call with the lock held."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise StateCorrupt(f"state file {self.path} is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise StateCorrupt(f"state file {self.path} does not hold a JSON object")
        return doc

    def write(self, doc: dict[str, Any]) -> None:
        """Replace the document atomically. Call with the lock held."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = json.dumps(doc, separators=(",", ":")).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self.fsync or not _exchange(tmp, self.path):
            os.replace(tmp, self.path)
