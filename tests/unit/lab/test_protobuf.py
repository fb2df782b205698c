"""Reading the protobuf bodies of kubectl's typed commands; anything unknown and non-zero is refused."""

from __future__ import annotations

import pytest

from podnet.lab.apiserver.protobuf import MAGIC, ProtobufError, decode


def varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(field << 3 | 2) + varint(len(data)) + data


def vi(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + ld(3, "") + ld(4, "")


def test_namespace_as_kubectl_create_namespace_sends_it() -> None:
    meta = ld(1, "shop") + ld(2, "") + ld(8, b"") + ld(11, ld(1, "team") + ld(2, "a"))
    status = ld(3, ld(1, ""))  # NamespaceStatus{Phase: ""}: Go writes the empty string
    body = envelope("v1", "Namespace", ld(1, meta) + ld(2, b"") + status)
    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"team": "a"}},
        "spec": {},
    }


def test_deployment_with_replicas_selector_and_ports() -> None:
    port = ld(1, "") + vi(2, 0) + vi(3, 80) + ld(4, "TCP")
    container = ld(1, "nginx") + ld(2, "nginx:1") + ld(6, port) + ld(8, b"")
    template = ld(1, ld(11, ld(1, "app") + ld(2, "web"))) + ld(2, ld(2, container))
    spec = vi(1, 0) + ld(2, ld(1, ld(1, "app") + ld(2, "web"))) + ld(3, template) + ld(4, ld(1, ""))
    obj = decode(envelope("apps/v1", "Deployment", ld(1, ld(1, "web")) + ld(2, spec)))
    assert obj["spec"]["replicas"] == 0  # a pointer in Go: an explicit 0 is kept
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert obj["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
    ]


def test_unknown_fields_with_values_and_unknown_kinds_are_refused() -> None:
    pod_spec = ld(2, ld(1, "c") + ld(2, "i")) + ld(31, "some-runtime-class")
    with pytest.raises(ProtobufError, match="field 31 of PodSpec"):
        decode(envelope("v1", "Pod", ld(1, ld(1, "p")) + ld(2, pod_spec)))
    with pytest.raises(ProtobufError, match="kind Secret"):
        decode(envelope("v1", "Secret", ld(1, ld(1, "s"))))
    with pytest.raises(ProtobufError):
        decode(b'{"kind": "Namespace"}')
