"""The CNI service's orchestration with memory stores and a fake datapath (no root, no kernel)."""

import json
import os
from pathlib import Path

import pytest

from podnet.agent.endpoints import EndpointRegistry
from podnet.agent.service import CniService, env_from_headers, mac_differences
from podnet.datapath.backend import CheckReport, Wiring, WiringRequest, host_veth_name
from podnet.errors import DatapathError, InterfaceExists
from podnet.ipam.allocator import Owner, parse_cidr
from podnet.ipam.service import Ipam
from podnet.ipam.store import DiskIpamStore, MemoryIpamStore

HOST_MAC, POD_MAC = "0e:00:00:00:00:01", "0a:00:00:00:00:02"


class FakeDatapath:
    def __init__(self) -> None:
        self.links: dict[str, WiringRequest] = {}
        self.macs: dict[str, str] = {}  # live MAC by interface name, when not the one wire() set
        self.fail_next = False

    def prepare(self) -> None:
        pass

    def wire(self, request: WiringRequest) -> Wiring:
        if self.fail_next:
            self.fail_next = False
            raise DatapathError("injected failure")
        for other in self.links.values():
            if other.netns == request.netns and other.ifname == request.ifname:
                raise InterfaceExists(f"interface {request.ifname} already exists")
        name = host_veth_name(request.container_id, request.ifname)
        self.links[name] = request
        return Wiring(name, HOST_MAC, POD_MAC)

    def unwire(self, host_veth: str) -> bool:
        return self.links.pop(host_veth, None) is not None

    def check(self, request: WiringRequest, host_veth: str) -> CheckReport:
        if host_veth not in self.links:
            return CheckReport([f"host veth {host_veth} is missing"])
        return CheckReport([], self.macs.get(host_veth, HOST_MAC), self.macs.get(request.ifname, POD_MAC))

    def host_veths(self) -> dict[str, str]:
        return {n: f"podnet:{r.container_id}:{r.ifname}" for n, r in self.links.items()}


NETNS = "/proc/self/ns/net"  # exists; the fake datapath never enters it


def conf(version: str = "1.0.0", **extra: object) -> bytes:
    return json.dumps({"cniVersion": version, "name": "pn", "type": "podnet", **extra}).encode()


def env(command: str, cid: str = "c1", **extra: str) -> dict[str, str]:
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": NETNS, "CNI_IFNAME": "eth0", **extra}


@pytest.fixture
def dp() -> FakeDatapath:
    return FakeDatapath()


@pytest.fixture
def svc(dp: FakeDatapath) -> CniService:
    ipam = Ipam(MemoryIpamStore(), [parse_cidr("10.0.0.0/28"), parse_cidr("fd00::/120")])
    return CniService("node1", ipam, EndpointRegistry(None), dp, 1500)


def test_headers_become_env() -> None:
    assert env_from_headers({"Cni-Containerid": "x", "cni-ifname": "eth0", "Host": "h"}) == {
        "CNI_CONTAINERID": "x",
        "CNI_IFNAME": "eth0",
    }


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_add_result_in_requested_version(svc: CniService, version: str) -> None:
    answer = svc.call(env("ADD", CNI_ARGS="K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web"), conf(version, mtu=1400))
    assert answer.status == 200
    result = json.loads(answer.body)
    assert result["cniVersion"] == version
    assert [ip["address"] for ip in result["ips"]] == ["10.0.0.1/32", "fd00::1/128"]
    assert result["interfaces"][1]["sandbox"] == NETNS
    assert ("version" in result["ips"][0]) == (version < "1.0.0")
    (ep,) = svc.registry.all()
    assert (ep.pod_namespace, ep.pod_name, ep.mtu) == ("ns", "web", 1400)


def test_bad_input_changes_nothing(svc: CniService, dp: FakeDatapath) -> None:
    cases = [
        (env("ADD"), b"{", 6),
        (env("ADD"), conf("0.1.0"), 1),
        (env("ADD", CNI_IFNAME=""), conf(), 4),
        (env("ADD"), conf(mtu="x"), 7),
        (env("ADD", CNI_NETNS="/nonexistent/netns"), conf(), 4),
    ]
    for e, body, code in cases:
        answer = svc.call(e, body)
        assert answer.status == 400
        assert json.loads(answer.body)["code"] == code
    assert svc.ipam.owners() == {} and svc.registry.all() == [] and dp.links == {}


def test_failed_wiring_rolls_back_allocation(svc: CniService, dp: FakeDatapath) -> None:
    dp.fail_next = True
    answer = svc.call(env("ADD"), conf())
    assert answer.status == 500 and json.loads(answer.body)["code"] == 114
    assert svc.ipam.owners() == {} and svc.registry.all() == [] and dp.links == {}


def test_second_add_fails_and_keeps_the_first(svc: CniService, dp: FakeDatapath) -> None:
    assert svc.call(env("ADD"), conf()).status == 200
    answer = svc.call(env("ADD"), conf())
    assert json.loads(answer.body)["code"] == 113
    assert len(svc.ipam.owners()) == 1 and len(dp.links) == 1
    # another container, same netns and ifname: the datapath refuses, nothing leaks
    answer = svc.call(env("ADD", cid="c2"), conf())
    assert json.loads(answer.body)["code"] == 113
    assert list(svc.ipam.owners()) == [Owner("c1", "eth0")]


def test_del_is_idempotent(svc: CniService, dp: FakeDatapath) -> None:
    svc.call(env("ADD"), conf())
    for extra in ({}, {"CNI_NETNS": ""}, {"CNI_NETNS": "/gone"}):
        assert svc.call(env("DEL", **extra), conf()).status == 200
    assert svc.call(env("DEL", cid="never-added"), conf()).status == 200
    assert svc.ipam.owners() == {} and dp.links == {}


def test_check(svc: CniService, dp: FakeDatapath) -> None:
    result = json.loads(svc.call(env("ADD"), conf()).body)
    assert svc.call(env("CHECK"), conf(prevResult=result)).status == 200
    wrong = {**result, "ips": [{"address": "10.9.9.9/32"}]}
    answer = json.loads(svc.call(env("CHECK"), conf(prevResult=wrong)).body)
    assert answer["code"] == 115 and "10.9.9.9" in answer["details"]
    dp.links.clear()
    answer = json.loads(svc.call(env("CHECK"), conf()).body)
    assert "host veth" in answer["details"]
    assert json.loads(svc.call(env("CHECK", cid="zz"), conf()).body)["code"] == 3
    assert json.loads(svc.call(env("CHECK"), conf("0.3.1")).body)["code"] == 1


def test_add_records_both_macs_as_the_result_lists_them(svc: CniService) -> None:
    result = json.loads(svc.call(env("ADD"), conf()).body)
    (ep,) = svc.registry.all()
    assert [i["mac"] for i in result["interfaces"]] == [ep.host_mac, ep.mac] == [HOST_MAC, POD_MAC]


def test_check_compares_live_macs_with_record_and_prev_result(svc: CniService, dp: FakeDatapath) -> None:
    result = json.loads(svc.call(env("ADD"), conf()).body)
    host_veth = result["interfaces"][0]["name"]
    dp.macs["eth0"] = "02:aa:bb:cc:dd:ee"
    answer = json.loads(svc.call(env("CHECK"), conf(prevResult=result)).body)
    assert answer["code"] == 115
    assert answer["details"] == (
        f"eth0 in {NETNS} has MAC 02:aa:bb:cc:dd:ee, podnet recorded and prevResult lists {POD_MAC}"
    )
    # a chained plugin (tuning) set that MAC and said so in the result: CHECK accepts it
    tuned = {**result, "interfaces": [result["interfaces"][0], {**result["interfaces"][1], "mac": "02:AA:BB:CC:DD:EE"}]}
    assert svc.call(env("CHECK"), conf(prevResult=tuned)).status == 200
    dp.macs.clear()
    answer = json.loads(svc.call(env("CHECK"), conf(prevResult=tuned)).body)
    assert (
        answer["details"]
        == f"eth0 in {NETNS} has MAC {POD_MAC}, prevResult lists 02:aa:bb:cc:dd:ee (podnet set {POD_MAC})"
    )
    dp.macs[host_veth] = "02:00:00:00:00:09"
    answer = json.loads(svc.call(env("CHECK"), conf()).body)
    assert answer["details"] == f"host veth {host_veth} has MAC 02:00:00:00:00:09, podnet recorded {HOST_MAC}"


def test_mac_differences_skips_what_is_missing_or_unrecorded(svc: CniService) -> None:
    svc.call(env("ADD"), conf())
    (ep,) = svc.registry.all()
    assert mac_differences(ep, NETNS, None, None, None) == []
    assert mac_differences(ep, NETNS, None, HOST_MAC.upper(), POD_MAC) == []
    old = type(ep)(**{**ep.__dict__, "host_mac": ""})  # a record from before host MACs were kept
    assert mac_differences(old, NETNS, None, "02:00:00:00:00:09", POD_MAC) == []


def test_status_verb(svc: CniService) -> None:
    assert svc.call({"CNI_COMMAND": "STATUS"}, conf("1.1.0")).status == 200
    for i in range(14):
        svc.call(env("ADD", cid=f"c{i}", CNI_IFNAME=f"e{i}"), conf())
    answer = json.loads(svc.call({"CNI_COMMAND": "STATUS"}, conf("1.1.0")).body)
    assert answer["code"] == 50


def test_gc_keeps_valid_and_other_networks(svc: CniService, dp: FakeDatapath) -> None:
    for cid in ("a", "b", "c"):
        svc.call(env("ADD", cid=cid, CNI_IFNAME=f"e{cid}"), conf())
    other = json.dumps({"cniVersion": "1.0.0", "name": "other", "type": "podnet"}).encode()
    svc.call(env("ADD", cid="d", CNI_IFNAME="ed"), other)
    svc.ipam.allocate(Owner("orphan", "eth0"))
    dp.links["pnstray0000000"] = WiringRequest("x", "eth9", NETNS, (), 1500)
    valid = [{"containerID": "a", "ifname": "ea"}]
    assert svc.call({"CNI_COMMAND": "GC"}, conf("1.1.0", **{"cni.dev/valid-attachments": valid})).status == 200
    assert sorted(o.container_id for o in svc.ipam.owners()) == ["a", "d"]
    assert sorted(e.container_id for e in svc.registry.all()) == ["a", "d"]
    assert sorted(r.container_id for r in dp.links.values()) == ["a", "d"]


def test_reconcile_after_crash_and_persistence(tmp_path: Path, dp: FakeDatapath) -> None:
    def make() -> CniService:
        ipam = Ipam(DiskIpamStore(tmp_path), [parse_cidr("10.0.0.0/24")])
        return CniService("n", ipam, EndpointRegistry(tmp_path / "endpoints.json"), dp, 1500)

    svc = make()
    svc.call(env("ADD", cid="live"), conf())
    # a crash between allocation and endpoint record: allocation + veth without endpoint
    svc.ipam.allocate(Owner("half", "eth0"))
    dp.links[host_veth_name("half", "eth0")] = WiringRequest("half", "eth0", NETNS, (), 1500)
    again = make()
    assert again.reconcile() == {"endpoints": 1, "orphan_allocations": 1, "stray_veths": 0}
    assert list(again.ipam.owners()) == [Owner("live", "eth0")]
    assert [e.container_id for e in again.registry.all()] == ["live"]
    assert list(dp.links) == [host_veth_name("live", "eth0")]
    assert os.stat(tmp_path / "endpoints.json").st_mode & 0o777 == 0o600


def test_log_file_gets_one_line_per_call(svc: CniService, tmp_path: Path) -> None:
    log_file = tmp_path / "cni.log"
    svc.call(env("ADD"), conf(logFile=str(log_file)))
    svc.call(env("ADD"), conf(logFile=str(log_file)))
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(e["verb"], e["code"]) for e in lines] == [("ADD", 0), ("ADD", 113)]


def test_unexpected_errors_become_cni_errors(svc: CniService, dp: FakeDatapath) -> None:
    def boom(request: WiringRequest) -> Wiring:
        raise RuntimeError("surprise")

    dp.wire = boom  # type: ignore[method-assign]
    answer = svc.call(env("ADD"), conf())
    assert answer.status == 500 and "surprise" in json.loads(answer.body)["msg"]
    assert svc.ipam.owners() == {}
