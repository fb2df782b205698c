"""Reading the Kubernetes protobuf encoding that kubectl's typed commands send (``kubectl create namespace``,
``kubectl create deployment``): ``k8s\\x00`` + ``runtime.Unknown`` wrapping the object's generated message.

Only the fields those commands fill in are known (see ``SCHEMAS``). A field that is not known is accepted only
when it holds its zero value (Go's protobuf writes empty sub-messages such as ``creationTimestamp`` and
``resources``); anything else makes the whole body unsupported (415), so nothing is ever dropped silently.
Answers are always JSON, which kubectl accepts.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not protobuf this server can read."""


# message: field number -> (json name, type, repeated); type is "string", "int", "bool", "map", or a message name
Field = tuple[str, str, bool]
SCHEMAS: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "bytes", False),
                3: ("contentEncoding", "string", False), 4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {1: ("name", "string", False), 2: ("generateName", "string", False),
                   3: ("namespace", "string", False), 11: ("labels", "map", False),
                   12: ("annotations", "map", False)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False)},
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "Pod": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "PodSpec", False)},
    "PodSpec": {2: ("containers", "Container", True), 3: ("restartPolicy", "string", False),
                10: ("nodeName", "string", False)},
    "Container": {1: ("name", "string", False), 2: ("image", "string", False), 3: ("command", "string", True),
                  4: ("args", "string", True), 6: ("ports", "ContainerPort", True)},
    "ContainerPort": {1: ("name", "string", False), 3: ("containerPort", "int", False),
                      4: ("protocol", "string", False)},
    "Deployment": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "DeploymentSpec", False)},
    "DeploymentSpec": {1: ("replicas", "int", False), 2: ("selector", "LabelSelector", False),
                       3: ("template", "PodTemplateSpec", False)},
    "LabelSelector": {1: ("matchLabels", "map", False)},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "PodSpec", False)},
}  # fmt: skip
TOP_LEVEL = ("Namespace", "Pod", "Deployment")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    out: list[tuple[int, int, int | bytes]] = []
    i = 0
    while i < len(data):
        tag, i = _varint(data, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((number, wire, value))
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > len(data):
                raise ProtobufError("truncated field")
            out.append((number, wire, data[i : i + length]))
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((number, wire, int.from_bytes(data[i : i + size], "little")))
            i += size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _is_zero(value: int | bytes) -> bool:
    """0, an empty string, or a message all of whose fields are zero (Go writes ``""`` strings too)."""
    if isinstance(value, int):
        return value == 0
    if not value:
        return True
    try:
        return all(_is_zero(v) for _, _, v in _fields(value))
    except ProtobufError:
        return False


def _message(data: bytes, schema_name: str, path: str) -> dict[str, Any]:
    schema = SCHEMAS[schema_name]
    out: dict[str, Any] = {}
    for number, _wire, value in _fields(data):
        field = schema.get(number)
        if field is None:
            if _is_zero(value):
                continue  # a zero value Go wrote for a non-pointer field
            raise ProtobufError(f"{path}: field {number} of {schema_name} is not supported")
        name, type_, repeated = field
        if type_ == "map":
            assert isinstance(value, bytes)
            entry = {n: v for n, _, v in _fields(value)}
            key, val = entry.get(1, b""), entry.get(2, b"")
            assert isinstance(key, bytes) and isinstance(val, bytes)
            out.setdefault(name, {})[key.decode()] = val.decode()
            continue
        if type_ == "string":
            decoded: Any = value.decode() if isinstance(value, bytes) else str(value)
            if decoded == "" and not repeated:
                continue  # Go writes unset strings as ""; JSON omits them
        elif type_ == "bytes":
            decoded = value
        elif type_ == "int":
            if not isinstance(value, int):
                raise ProtobufError(f"{path}.{name}: expected an integer")
            decoded = value - (1 << 64) if value >= 1 << 63 else value
        elif type_ == "bool":
            decoded = bool(value)
        else:
            if not isinstance(value, bytes):
                raise ProtobufError(f"{path}.{name}: expected a message")
            decoded = _message(value, type_, f"{path}.{name}")
        if repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded Namespace, Pod or Deployment; raises ProtobufError otherwise."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf prefix")
    unknown = _message(body[len(MAGIC) :], "Unknown", "")
    type_meta = unknown.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in TOP_LEVEL:
        raise ProtobufError(f"protobuf bodies of kind {kind or '(none)'} are not supported")
    if unknown.get("contentEncoding"):
        raise ProtobufError(f"content encoding {unknown['contentEncoding']} is not supported")
    raw = unknown.get("raw", b"")
    assert isinstance(raw, bytes)
    obj = _message(raw, kind, "")
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
