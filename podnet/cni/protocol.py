"""The CNI specification as pure functions: versions, environment and config validation, results, errors.

Standard library only (plus :mod:`podnet.errors`): this module is packed into the plugin executable.
Nothing here does I/O; callers pass the environment mapping and the stdin bytes in.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from podnet.errors import (
    DecodeFailure,
    IncompatibleCniVersion,
    InvalidConfig,
    InvalidEnvironment,
    PodnetError,
)

SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"
DEFAULT_SOCKET = "/run/podnet/agent.sock"
GATEWAY_V4 = "169.254.1.1"
GATEWAY_V6 = "fe80::1"

Command = Literal["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"]
COMMANDS: tuple[str, ...] = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
# The first spec version that knows each verb.
VERB_SINCE: dict[str, str] = {"CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}

# Spec-defined code for STATUS: "the plugin is not available".
CODE_PLUGIN_NOT_AVAILABLE = 50

_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise IncompatibleCniVersion(f"cniVersion {version!r} is not a version", f"supported: {SUPPORTED_VERSIONS}")
    return int(parts[0]), int(parts[1]), int(parts[2])


# --- errors and VERSION ---------------------------------------------------------------------------


def error_document(version: str, code: int, msg: str, details: str = "") -> dict[str, Any]:
    """The spec's error object. ``version`` falls back to the latest when the caller's is unusable."""
    if version not in SUPPORTED_VERSIONS:
        version = LATEST_VERSION
    doc: dict[str, Any] = {"cniVersion": version, "code": code, "msg": msg}
    if details:
        doc["details"] = details
    return doc


def error_from(exc: PodnetError, version: str) -> dict[str, Any]:
    return error_document(version, exc.cni_code, exc.message, exc.details)


def version_document(requested: str | None) -> dict[str, Any]:
    version = requested if requested in SUPPORTED_VERSIONS else LATEST_VERSION
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}


# --- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetConf:
    """podnet's part of a network configuration; unknown keys are ignored as the spec says."""

    cni_version: str
    name: str
    type: str
    agent_socket: str = DEFAULT_SOCKET
    mtu: int | None = None
    log_file: str | None = None
    prev_result: dict[str, Any] | None = None
    valid_attachments: tuple[tuple[str, str], ...] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def decode_config(data: bytes) -> dict[str, Any]:
    """Parse stdin; DecodeFailure (6) when it is not a JSON object."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeFailure("network configuration on stdin is not valid JSON", str(exc)) from exc
    if not isinstance(doc, dict):
        raise DecodeFailure("network configuration on stdin must be a JSON object", type(doc).__name__)
    return doc


def requested_version(doc: Mapping[str, Any]) -> str:
    """The config's cniVersion if podnet speaks it, else the latest (used for error output)."""
    value = doc.get("cniVersion")
    return value if isinstance(value, str) and value in SUPPORTED_VERSIONS else LATEST_VERSION


def _field(doc: Mapping[str, Any], key: str, kind: type, required: bool = False) -> Any:
    value = doc.get(key)
    if value is None:
        if required:
            raise InvalidConfig(f"network configuration: field {key!r} is required")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidConfig(f"network configuration: field {key!r} must be a {kind.__name__}", repr(value))
    return value


def validate_config(doc: Mapping[str, Any], command: str) -> NetConf:
    """Check the fields podnet uses; raise the spec's error naming the first bad field."""
    version = _field(doc, "cniVersion", str, required=True)
    if version not in SUPPORTED_VERSIONS:
        raise IncompatibleCniVersion(
            f"cniVersion {version!r} is not supported by podnet", f"supported: {', '.join(SUPPORTED_VERSIONS)}"
        )
    since = VERB_SINCE.get(command)
    if since is not None and version_tuple(version) < version_tuple(since):
        raise IncompatibleCniVersion(f"{command} needs cniVersion {since} or later, the configuration has {version}")
    name = _field(doc, "name", str, required=True)
    if not name:
        raise InvalidConfig("network configuration: field 'name' must not be empty")
    plugin_type = _field(doc, "type", str, required=True)
    socket_path = _field(doc, "agentSocket", str) or DEFAULT_SOCKET
    if not socket_path.startswith("/"):
        raise InvalidConfig("network configuration: field 'agentSocket' must be an absolute path", socket_path)
    mtu = _field(doc, "mtu", int)
    if mtu is not None and not 68 <= mtu <= 65535:
        raise InvalidConfig("network configuration: field 'mtu' must be between 68 and 65535", str(mtu))
    log_file = _field(doc, "logFile", str)
    if log_file is not None and not log_file.startswith("/"):
        raise InvalidConfig("network configuration: field 'logFile' must be an absolute path", log_file)
    prev = _field(doc, "prevResult", dict)
    attachments = None
    if command == "GC":
        attachments = _valid_attachments(doc.get("cni.dev/valid-attachments"))
    return NetConf(version, name, plugin_type, socket_path, mtu, log_file, prev, attachments, dict(doc))


def _valid_attachments(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    key = "cni.dev/valid-attachments"
    if not isinstance(value, list):
        raise InvalidConfig(f"network configuration: field {key!r} must be a list")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidConfig(f"network configuration: field {key}[{i}] must be an object")
        cid, ifname = item.get("containerID"), item.get("ifname")
        if not isinstance(cid, str) or not isinstance(ifname, str):
            raise InvalidConfig(f"network configuration: field {key}[{i}] needs string 'containerID' and 'ifname'")
        out.append((cid, ifname))
    return tuple(out)


# --- environment ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CniEnv:
    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: tuple[tuple[str, str], ...] = ()
    path: str = ""

    def arg(self, key: str) -> str | None:
        return dict(self.args).get(key)


_NEEDS: dict[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
}


def validate_ifname(name: str) -> None:
    if (
        not name
        or len(name) > 15
        or name in (".", "..")
        or any(c in name for c in "/:")
        or any(c.isspace() for c in name)
    ):
        raise InvalidEnvironment(
            f"CNI_IFNAME {name!r} is not a valid interface name (1-15 chars, no '/', ':' or space)"
        )


def parse_cni_args(text: str) -> tuple[tuple[str, str], ...]:
    """``K1=V1;K2=V2`` → pairs; InvalidEnvironment naming CNI_ARGS when a pair has no '='."""
    pairs = []
    for item in filter(None, text.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidEnvironment(f"CNI_ARGS: {item!r} is not KEY=VALUE")
        pairs.append((key, value))
    return tuple(pairs)


def validate_env(env: Mapping[str, str]) -> CniEnv:
    """Check the ``CNI_*`` variables the verb needs; InvalidEnvironment (4) names the variable."""
    command = env.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise InvalidEnvironment(f"CNI_COMMAND {command!r} is not one of {', '.join(COMMANDS)}")
    for var in _NEEDS.get(command, ()):
        if not env.get(var):
            raise InvalidEnvironment(f"{var} is required for {command}")
    cid = env.get("CNI_CONTAINERID", "")
    if command in _NEEDS and not _CONTAINER_ID.match(cid):
        raise InvalidEnvironment(f"CNI_CONTAINERID {cid!r} must be alphanumeric plus '_', '.' and '-'")
    ifname = env.get("CNI_IFNAME", "")
    if command in _NEEDS:
        validate_ifname(ifname)
    netns = env.get("CNI_NETNS", "")
    if netns and not netns.startswith("/"):
        raise InvalidEnvironment(f"CNI_NETNS {netns!r} must be an absolute path")
    args = parse_cni_args(env.get("CNI_ARGS", ""))
    return CniEnv(command, cid, netns, ifname, args, env.get("CNI_PATH", ""))


# --- results --------------------------------------------------------------------------------------


def format_result(result: Mapping[str, Any], version: str) -> dict[str, Any]:
    """Render podnet's internal result (the 1.1.0 shape, no cniVersion) in ``version``'s shape.

    0.3.x and 0.4.0 carry ``"version": "4"|"6"`` on each IP; fields 1.1.0 added to interfaces
    (``mtu``, ``socketPath``, ``pciID``) and routes (``mtu``, ``advmss``, ``priority``, ``table``,
    ``scope``) are dropped for older versions.
    """
    vt = version_tuple(version)
    if version not in SUPPORTED_VERSIONS:
        raise IncompatibleCniVersion(f"cannot write a result in cniVersion {version!r}")
    out: dict[str, Any] = {"cniVersion": version}
    new_if_keys = {"mtu", "socketPath", "pciID"}
    new_route_keys = {"mtu", "advmss", "priority", "table", "scope"}
    interfaces = [dict(i) for i in result.get("interfaces", [])]
    routes = [dict(r) for r in result.get("routes", [])]
    if vt < (1, 1, 0):
        interfaces = [{k: v for k, v in i.items() if k not in new_if_keys} for i in interfaces]
        routes = [{k: v for k, v in r.items() if k not in new_route_keys} for r in routes]
    ips = []
    for ip in result.get("ips", []):
        entry = dict(ip)
        if vt < (1, 0, 0):
            entry = {"version": str(ipaddress.ip_interface(entry["address"]).version), **entry}
        ips.append(entry)
    if interfaces:
        out["interfaces"] = interfaces
    out["ips"] = ips
    if routes:
        out["routes"] = routes
    out["dns"] = dict(result.get("dns", {}))
    return out


def normalize_result(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Bring a result of any supported version (e.g. a prevResult) to the internal shape."""
    out = {k: v for k, v in doc.items() if k != "cniVersion"}
    out["ips"] = [{k: v for k, v in ip.items() if k != "version"} for ip in doc.get("ips", [])]
    return out
