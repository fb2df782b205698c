"""The state dir's boot record: same boot keeps the state, another boot sets it aside (no root)."""

import json
from pathlib import Path

import pytest

from podnet.agent.bootstate import claim_state_dir, current_boot_id
from podnet.errors import StateCorrupt


def write_state(state_dir: Path) -> None:
    (state_dir / "ipam.json").write_text('{"version": 1, "pools": {}}')
    (state_dir / "endpoints.json").write_text('{"version": 1, "endpoints": []}')


def test_first_start_keeps_existing_state_and_records_the_boot(tmp_path: Path) -> None:
    write_state(tmp_path)
    assert claim_state_dir(tmp_path, "boot-a") == []
    assert json.loads((tmp_path / "boot.json").read_text()) == {"version": 1, "boot_id": "boot-a"}
    assert (tmp_path / "ipam.json").exists() and (tmp_path / "endpoints.json").exists()


def test_restart_in_the_same_boot_keeps_state(tmp_path: Path) -> None:
    claim_state_dir(tmp_path, "boot-a")
    write_state(tmp_path)
    before = (tmp_path / "boot.json").stat().st_ino
    assert claim_state_dir(tmp_path, "boot-a") == []
    assert (tmp_path / "ipam.json").exists() and (tmp_path / "endpoints.json").exists()
    assert (tmp_path / "boot.json").stat().st_ino == before  # not rewritten


def test_start_after_a_reboot_sets_the_old_state_aside(tmp_path: Path) -> None:
    claim_state_dir(tmp_path, "boot-a")
    write_state(tmp_path)
    (tmp_path / "endpoints.json").unlink()  # only what exists is moved
    moved = claim_state_dir(tmp_path, "boot-b")
    assert moved == [tmp_path / "ipam.json.boot-boot-a"]
    assert not (tmp_path / "ipam.json").exists()
    assert (tmp_path / "ipam.json.boot-boot-a").read_text() == '{"version": 1, "pools": {}}'
    assert json.loads((tmp_path / "boot.json").read_text())["boot_id"] == "boot-b"


def test_a_damaged_boot_record_stops_the_agent(tmp_path: Path) -> None:
    write_state(tmp_path)
    (tmp_path / "boot.json").write_text('{"version": 1}')
    with pytest.raises(StateCorrupt, match=r"boot\.json"):
        claim_state_dir(tmp_path, "boot-a")
    assert (tmp_path / "ipam.json").exists()


def test_current_boot_id_is_the_kernels() -> None:
    boot = current_boot_id()
    assert len(boot) == 36 and boot == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
