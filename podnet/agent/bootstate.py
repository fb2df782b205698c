"""Which boot the agent's state belongs to, so the hot path can skip fsync and stay crash-safe.

Durability rule: the agent writes ``ipam.json`` and ``endpoints.json`` on every ADD and DEL by atomic
rename (:mod:`podnet.statefile`) *without* fsync. A killed agent (SIGKILL, OOM, a bug) loses nothing:
its writes are in the kernel's page cache, which outlives the process, and a rename leaves the old or
the new document. Only a crash of the whole machine can lose or tear an unsynced file, and a machine
crash also destroys every pod network namespace and veth the state describes. So the state dir
records the kernel's boot id (``boot.json``, written with fsync once per agent start); an agent that
starts under another boot id than the recorded one moves the previous boot's state files aside
(``<name>.boot-<old boot id>``) and starts empty, which is exactly what the node has after a reboot.
The runtime's DEL of the old sandboxes then finds nothing and succeeds, as DEL of an unknown
attachment does. A state dir without ``boot.json`` (first start, or state written by an earlier
podnet that fsynced every write) is kept as it is.

Call :func:`claim_state_dir` with the agent's state-dir lock held (:mod:`podnet.agent.guard`),
before the stores read anything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from podnet.errors import StateCorrupt
from podnet.statefile import AtomicJsonFile

log = logging.getLogger("podnet.agent")

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
STATE_FILES = ("ipam.json", "endpoints.json")
FORMAT_VERSION = 1


def current_boot_id(path: Path = BOOT_ID_PATH) -> str:
    return path.read_text().strip()


def claim_state_dir(
    state_dir: Path, boot_id: str | None = None, state_files: Sequence[str] = STATE_FILES
) -> list[Path]:
    """Record this boot in ``state_dir``; move a previous boot's state files aside and return them."""
    boot = boot_id if boot_id is not None else current_boot_id()
    marker = AtomicJsonFile(state_dir / "boot.json", fsync=True)
    with marker.locked():
        doc = marker.read()
        recorded = None
        if doc is not None:
            recorded = doc.get("boot_id")
            if doc.get("version") != FORMAT_VERSION or not isinstance(recorded, str) or not recorded:
                raise StateCorrupt(f"state file {marker.path}: expected {{'version': 1, 'boot_id': ...}}, got {doc!r}")
        moved: list[Path] = []
        if recorded is not None and recorded != boot:
            for name in state_files:
                path = state_dir / name
                if path.exists():
                    aside = path.with_name(f"{name}.boot-{recorded}")
                    os.replace(path, aside)
                    moved.append(aside)
            log.warning(
                "state from an earlier boot set aside: its pods ended with that boot",
                extra={"boot_id": recorded, "files": [str(p) for p in moved]},
            )
        if recorded != boot:
            marker.write({"version": FORMAT_VERSION, "boot_id": boot})
            _fsync_dir(state_dir)
    return moved


def _fsync_dir(path: Path) -> None:
    """Make the renames in ``path`` durable (the marker's, and the state files moved aside)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
