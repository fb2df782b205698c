"""The few system calls the eBPF datapath needs besides libbpf: bpffs mounts and entering a netns."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from podnet.errors import PodnetError

CLONE_NEWNET = 0x40000000
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _fs_type(path: Path) -> str | None:
    """The type of the filesystem ``path`` lives on (the longest enclosing mount point wins)."""
    target = os.path.realpath(path)
    best: tuple[int, str] | None = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mnt = fields[4].encode().decode("unicode_escape")
            fstype = fields[sep + 1]
            inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
            if inside and (best is None or len(mnt) >= best[0]):
                best = (len(mnt), fstype)
    return best[1] if best else None


def is_bpffs(path: Path) -> bool:
    return _fs_type(path) == "bpf"


def ensure_bpffs(mountpoint: Path) -> bool:
    """Mount a bpffs at ``mountpoint`` unless one is there already; True when this call mounted it."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    if _fs_type(mountpoint) == "bpf" and os.path.ismount(mountpoint):
        return False
    rc = _libc.mount(b"bpf", str(mountpoint).encode(), b"bpf", 0, b"mode=0700")
    if rc != 0:
        err = ctypes.get_errno()
        raise PodnetError(f"mount bpffs at {mountpoint}: {os.strerror(err)}")
    return True


def unmount(mountpoint: Path) -> None:
    if _libc.umount2(str(mountpoint).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise PodnetError(f"unmount {mountpoint}: {os.strerror(err)}")


@contextmanager
def in_netns(name: str | None) -> Iterator[None]:
    """Run the body with this thread in network namespace ``name`` (``/run/netns/NAME``); None: stay."""
    if name is None:
        yield
        return
    with open("/proc/thread-self/ns/net") as here, open(f"/run/netns/{name}") as there:
        if _libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise PodnetError(f"enter network namespace {name}: {os.strerror(err)}")
        try:
            yield
        finally:
            if _libc.setns(here.fileno(), CLONE_NEWNET) != 0:  # pragma: no cover - cannot recover
                raise PodnetError("cannot return to the original network namespace")
