import ipaddress
import multiprocessing
from pathlib import Path

import pytest

from podnet.errors import IpamExhausted, StateCorrupt
from podnet.ipam.allocator import Owner, parse_cidr
from podnet.ipam.service import Ipam
from podnet.ipam.store import DiskIpamStore, IpamStore, MemoryIpamStore

V4 = parse_cidr("10.1.0.0/29")
V6 = parse_cidr("fd00:1::/120")


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> IpamStore:
    if request.param == "memory":
        return MemoryIpamStore()
    return DiskIpamStore(tmp_path)


def test_dual_stack_allocation_and_release(store: IpamStore) -> None:
    ipam = Ipam(store, [V4, V6])
    got = ipam.allocate(Owner("c1", "eth0"))
    assert [a.version for a in got] == [4, 6]
    assert ipam.owners() == {Owner("c1", "eth0"): got}
    assert sorted(ipam.release(Owner("c1", "eth0")), key=str) == sorted(got, key=str)
    assert ipam.owners() == {}
    assert ipam.release(Owner("c1", "eth0")) == []


def test_exhaustion_rolls_back_the_whole_attachment(store: IpamStore) -> None:
    ipam = Ipam(store, [parse_cidr("fd00:2::/128"), parse_cidr("10.2.0.0/32")])
    ipam.allocate(Owner("c1", "eth0"))
    with pytest.raises(IpamExhausted):
        ipam.allocate(Owner("c2", "eth0"))
    assert list(ipam.owners()) == [Owner("c1", "eth0")]


def test_gc_and_usage(store: IpamStore) -> None:
    ipam = Ipam(store, [V4])
    for i in range(4):
        ipam.allocate(Owner(f"c{i}", "eth0"))
    freed = ipam.collect_garbage([Owner("c0", "eth0"), Owner("c3", "eth0")])
    assert sorted(o.container_id for o in freed.values()) == ["c1", "c2"]
    assert [(u.cidr, u.size, u.used) for u in ipam.usage()] == [("10.1.0.0/29", 6, 2)]


def test_disk_store_survives_a_new_instance(tmp_path: Path) -> None:
    first = Ipam(DiskIpamStore(tmp_path), [V4, V6]).allocate(Owner("c1", "eth0"))
    again = Ipam(DiskIpamStore(tmp_path), [V4, V6])
    assert again.owners() == {Owner("c1", "eth0"): first}
    # round-robin cursor persisted too
    second = again.allocate(Owner("c2", "eth0"))
    assert int(second[0]) == int(first[0]) + 1


def test_removed_pool_keeps_its_allocations(tmp_path: Path) -> None:
    Ipam(DiskIpamStore(tmp_path), [V4]).allocate(Owner("old", "eth0"))
    ipam = Ipam(DiskIpamStore(tmp_path), [V6])
    assert ipaddress.ip_address("10.1.0.1") in ipam.owners()[Owner("old", "eth0")]
    assert ipam.release(Owner("old", "eth0")) == [ipaddress.ip_address("10.1.0.1")]


def test_corrupt_state_is_reported(tmp_path: Path) -> None:
    (tmp_path / "ipam.json").write_text("{not json")
    with pytest.raises(StateCorrupt, match=r"ipam\.json"):
        Ipam(DiskIpamStore(tmp_path), [V4]).owners()


def test_failed_transaction_leaves_file_untouched(tmp_path: Path) -> None:
    store = DiskIpamStore(tmp_path)
    Ipam(store, [V4]).allocate(Owner("c1", "eth0"))
    before = (tmp_path / "ipam.json").read_bytes()
    with pytest.raises(RuntimeError), store.transaction() as state:
        state.clear()
        raise RuntimeError("boom")
    assert (tmp_path / "ipam.json").read_bytes() == before


def _worker(state_dir: str, prefix: str, n: int) -> None:
    ipam = Ipam(DiskIpamStore(Path(state_dir), fsync=False), [parse_cidr("10.9.0.0/24")])
    for i in range(n):
        ipam.allocate(Owner(f"{prefix}{i}", "eth0"))


def test_processes_sharing_a_state_dir_never_collide(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), f"p{k}-", 25)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    owners = Ipam(DiskIpamStore(tmp_path), [parse_cidr("10.9.0.0/24")]).owners()
    assert len(owners) == 100
    addresses = [a for addrs in owners.values() for a in addrs]
    assert len(set(addresses)) == 100
