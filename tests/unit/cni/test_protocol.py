import json

import pytest

from podnet.cni import protocol
from podnet.errors import DecodeFailure, IncompatibleCniVersion, InvalidConfig, InvalidEnvironment

BASE = {"cniVersion": "1.0.0", "name": "net", "type": "podnet"}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc-1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0"}

RESULT = {
    "interfaces": [{"name": "pn123", "mac": "0e:00:00:00:00:01"}, {"name": "eth0", "sandbox": "/n", "mtu": 1400}],
    "ips": [
        {"address": "10.0.0.2/32", "gateway": "169.254.1.1", "interface": 1},
        {"address": "fd00::2/128", "gateway": "fe80::1", "interface": 1},
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1", "priority": 5}],
    "dns": {},
}


def test_decode_rejects_non_json_and_non_objects() -> None:
    with pytest.raises(DecodeFailure) as exc:
        protocol.decode_config(b"{nope")
    assert exc.value.cni_code == 6
    with pytest.raises(DecodeFailure):
        protocol.decode_config(b"[1]")


@pytest.mark.parametrize("version", protocol.SUPPORTED_VERSIONS)
def test_every_supported_version_validates(version: str) -> None:
    conf = protocol.validate_config({**BASE, "cniVersion": version, "unknownKey": [1]}, "ADD")
    assert conf.cni_version == version
    assert conf.agent_socket == protocol.DEFAULT_SOCKET


@pytest.mark.parametrize(
    ("doc", "error", "code", "needle"),
    [
        ({**BASE, "cniVersion": "0.2.0"}, IncompatibleCniVersion, 1, "0.2.0"),
        ({k: v for k, v in BASE.items() if k != "cniVersion"}, InvalidConfig, 7, "cniVersion"),
        ({k: v for k, v in BASE.items() if k != "name"}, InvalidConfig, 7, "'name'"),
        ({**BASE, "mtu": "big"}, InvalidConfig, 7, "'mtu'"),
        ({**BASE, "mtu": 20}, InvalidConfig, 7, "'mtu'"),
        ({**BASE, "mtu": True}, InvalidConfig, 7, "'mtu'"),
        ({**BASE, "agentSocket": "rel.sock"}, InvalidConfig, 7, "'agentSocket'"),
        ({**BASE, "logFile": 3}, InvalidConfig, 7, "'logFile'"),
    ],
)
def test_bad_config_names_the_field(doc: dict[str, object], error: type, code: int, needle: str) -> None:
    with pytest.raises(error) as exc:
        protocol.validate_config(doc, "ADD")
    assert exc.value.cni_code == code
    assert needle in exc.value.message


def test_verbs_need_their_version() -> None:
    with pytest.raises(IncompatibleCniVersion, match="CHECK"):
        protocol.validate_config({**BASE, "cniVersion": "0.3.1"}, "CHECK")
    with pytest.raises(IncompatibleCniVersion, match="GC"):
        protocol.validate_config(BASE, "GC")
    protocol.validate_config({**BASE, "cniVersion": "0.4.0"}, "CHECK")


def test_gc_attachments() -> None:
    doc = {**BASE, "cniVersion": "1.1.0", "cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]}
    assert protocol.validate_config(doc, "GC").valid_attachments == (("a", "eth0"),)
    with pytest.raises(InvalidConfig, match=r"valid-attachments\[0\]"):
        protocol.validate_config({**doc, "cni.dev/valid-attachments": [{"containerID": 1}]}, "GC")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"CNI_COMMAND": "FROB"}, "CNI_COMMAND"),
        ({"CNI_CONTAINERID": ""}, "CNI_CONTAINERID"),
        ({"CNI_CONTAINERID": "-bad"}, "CNI_CONTAINERID"),
        ({"CNI_NETNS": ""}, "CNI_NETNS"),
        ({"CNI_NETNS": "relative"}, "CNI_NETNS"),
        ({"CNI_IFNAME": "a" * 16}, "CNI_IFNAME"),
        ({"CNI_IFNAME": "a/b"}, "CNI_IFNAME"),
        ({"CNI_ARGS": "novalue"}, "CNI_ARGS"),
    ],
)
def test_bad_env_names_the_variable(change: dict[str, str], needle: str) -> None:
    with pytest.raises(InvalidEnvironment) as exc:
        protocol.validate_env({**ENV, **change})
    assert exc.value.cni_code == 4
    assert needle in exc.value.message


def test_del_tolerates_empty_netns_and_reads_args() -> None:
    env = protocol.validate_env(
        {**ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": "", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web"}
    )
    assert env.netns == ""
    assert env.arg("K8S_POD_NAME") == "web"
    assert protocol.validate_env({"CNI_COMMAND": "GC"}).command == "GC"


def test_result_shapes_per_version() -> None:
    old = protocol.format_result(RESULT, "0.3.1")
    assert [ip["version"] for ip in old["ips"]] == ["4", "6"]
    assert "mtu" not in old["interfaces"][1]
    assert "priority" not in old["routes"][0]
    v1 = protocol.format_result(RESULT, "1.0.0")
    assert all("version" not in ip for ip in v1["ips"])
    assert "mtu" not in v1["interfaces"][1]
    v11 = protocol.format_result(RESULT, "1.1.0")
    assert v11["interfaces"][1]["mtu"] == 1400
    assert v11["routes"][0]["priority"] == 5
    assert v11["cniVersion"] == "1.1.0"
    assert protocol.normalize_result(old) == {**RESULT, "interfaces": old["interfaces"], "routes": old["routes"]}


def test_error_and_version_documents() -> None:
    doc = protocol.error_document("9.9.9", 7, "bad", "why")
    assert doc == {"cniVersion": "1.1.0", "code": 7, "msg": "bad", "details": "why"}
    assert json.loads(json.dumps(protocol.version_document("0.4.0")))["cniVersion"] == "0.4.0"
