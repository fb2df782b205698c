"""One agent per state dir and per socket: locks held for the agent's life, a careful socket takeover.

Locking rule: before it reads any state or touches the kernel, an agent takes ``flock(LOCK_EX)`` on
``<state-dir>/agent.lock`` and on ``<socket>.lock`` and holds both until it exits. A second agent on
the same state dir or the same socket fails at once with an error naming the holder's pid, before it
reconciles anything (a second agent's start-up reconcile would remove the first one's veths). The
kernel drops the locks when the process dies, however it dies, so a SIGKILLed agent never blocks its
restart. Lock files are never deleted (deleting one would let two agents lock different inodes).

Socket rule: only an agent holding the socket lock unlinks the socket file, only when it is a socket
and nobody answers on it (a stale file left by a killed agent), and at shutdown only the file it bound
itself (same inode).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from podnet.errors import UsageError


def _holder(fd: int) -> str:
    """The pid the lock's holder wrote into the lock file, as text for an error message."""
    with contextlib.suppress(OSError):
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if pid.isdigit():
            return f" (pid {pid})"
    return ""


@contextlib.contextmanager
def held_lock(path: Path, what: str, hint: str) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on ``path`` for the block; UsageError at once if another process has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UsageError(f"another podnet agent{_holder(fd)} holds {what} (lock {path}); {hint}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock


@contextlib.contextmanager
def agent_locks(state_dir: Path, socket_path: Path) -> Iterator[None]:
    """The state dir's and the socket's locks, for the agent's lifetime (see the module docstring)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    with (
        held_lock(state_dir / "agent.lock", f"state dir {state_dir}", "stop it or pass another --state-dir"),
        held_lock(
            socket_path.with_name(socket_path.name + ".lock"),
            f"socket {socket_path}",
            "stop it or pass another --socket",
        ),
    ):
        remove_stale_socket(socket_path)  # refuse a live or foreign file before anything else happens
        yield


@dataclass(frozen=True)
class BoundSocket:
    """A listening unix socket and the identity (device, inode) of the file it is bound to."""

    sock: socket.socket
    path: Path
    identity: tuple[int, int]

    def unlink(self) -> None:
        """Remove the socket file if it is still the one bound here."""
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self.identity:
                os.unlink(self.path)


def remove_stale_socket(path: Path) -> None:
    """Unlink ``path`` if it is a socket nobody answers on; refuse a live socket or anything else.

    Call with the socket lock held (:func:`agent_locks`).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise UsageError(f"--socket {path} exists and is not a socket; podnet will not remove it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno != errno.ECONNREFUSED:
            raise UsageError(f"--socket {path}: cannot tell whether an agent serves it ({exc})") from exc
    else:
        raise UsageError(f"a process already answers on --socket {path}; podnet will not remove it")
    finally:
        probe.close()
    os.unlink(path)


def bind_unix(path: Path) -> BoundSocket:
    """A listening socket at ``path`` with mode 0600; a stale socket file is replaced (see above)."""
    remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    st = os.stat(path)
    sock.listen(128)
    return BoundSocket(sock, path, (st.st_dev, st.st_ino))
