"""Entering a network namespace from one thread, briefly.

``setns(2)`` with ``CLONE_NEWNET`` moves only the calling thread. :func:`entered` switches the current
thread into a namespace and always switches it back, so a netlink socket opened inside the block lives
in the pod's namespace while the rest of the process stays in the host's. Ownership rule: only code
that runs entirely inside the ``with`` block, on the same thread, may rely on the switched namespace;
never ``await`` or hand work to another thread inside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the block with this thread in the network namespace at ``path`` (a bind mount or /proc link)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def same_as_current(path: str) -> bool:
    """Whether ``path`` names the namespace this thread is in (a pod must never be the host)."""
    a, b = os.stat(path), os.stat("/proc/thread-self/ns/net")
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
