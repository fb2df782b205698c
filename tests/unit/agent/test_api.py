"""The agent's HTTP API in process: POST /v1/cni through the ASGI fast path, the rest through FastAPI."""

import json

from fastapi.testclient import TestClient

from podnet.agent.api import create_app
from podnet.agent.endpoints import EndpointRegistry
from podnet.agent.service import CniService
from podnet.ipam.allocator import parse_cidr
from podnet.ipam.service import Ipam
from podnet.ipam.store import MemoryIpamStore
from tests.unit.agent.test_service import NETNS, FakeDatapath, conf


def client() -> tuple[TestClient, CniService]:
    ipam = Ipam(MemoryIpamStore(), [parse_cidr("10.0.0.0/28")])
    svc = CniService("node1", ipam, EndpointRegistry(None), FakeDatapath(), 1500)
    return TestClient(create_app(svc)), svc


def cni_headers(command: str, netns: str = NETNS, cid: str = "c1") -> dict[str, bytes]:
    return {
        "Cni-Command": command.encode(),
        "Cni-Containerid": cid.encode(),
        "Cni-Netns": netns.encode(),
        "Cni-Ifname": b"eth0",
    }


def test_cni_calls_reach_the_service_and_come_back_verbatim() -> None:
    http, svc = client()
    add = http.post("/v1/cni", content=conf(), headers=cni_headers("ADD"))
    assert add.status_code == 200 and add.headers["content-type"] == "application/json"
    assert json.loads(add.content)["ips"][0]["address"] == "10.0.0.1/32"
    assert [e.container_id for e in svc.registry.all()] == ["c1"]
    bad = http.post("/v1/cni", content=b"{", headers=cni_headers("ADD"))
    assert bad.status_code == 400 and json.loads(bad.content)["code"] == 6
    # the CNI variables arrive as the plugin sends them: UTF-8
    gone = http.post("/v1/cni", content=conf(), headers=cni_headers("ADD", "/run/netns/pod-é", "c2"))
    assert "CNI_NETNS /run/netns/pod-é does not exist" in json.loads(gone.content)["msg"]


def test_other_routes_still_go_through_fastapi() -> None:
    http, _ = client()
    assert http.get("/healthz").text == "ok\n"
    assert http.get("/v1/status").json()["node"] == "node1"
    assert http.get("/v1/cni").status_code in (404, 405)
