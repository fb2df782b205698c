"""The ``podnet`` CNI plugin executable: forward the call to the agent, print its answer.

Standard library only, and as little of it as possible: the file runs as ``python3.11 -I -S`` for
every CNI call, so its import cost is paid on every pod. On this class of machine ``http.client``
alone costs ~27 ms to import (it pulls in ``email`` and ``ssl``) and ``json`` ~5 ms, against ~7 ms for
the interpreter itself, so the fast path imports neither: it speaks a fixed HTTP/1.1 request over the
agent's unix socket with the raw stdin as body and the ``CNI_*`` variables as headers, and prints the
agent's answer (already the spec's JSON, validated and rendered by the agent with
:mod:`podnet.cni.protocol`) byte for byte. ``json`` is imported only on the rare local paths:
VERSION, and the error answered when the agent cannot be reached (code 11; 50 for STATUS). For the
same reason it imports neither ``os`` nor ``__future__``: annotations naming typing-only names are
strings. It ends with ``posix._exit``, skipping the interpreter's teardown, and ``podnet install-cni``
installs it precompiled (:mod:`podnet.cni.install`).
"""

import _socket
import posix  # builtin and already loaded: ``os`` would cost ~1 ms more of imports per call
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"
DEFAULT_SOCKET = "/run/podnet/agent.sock"
API_PATH = "/v1/cni"
TIMEOUT = 120.0
CODE_INVALID_ENV = 4
CODE_UNDECODABLE = 6
CODE_TRY_AGAIN = 11
CODE_NOT_AVAILABLE = 50
CODE_AGENT_PROTOCOL = 999
CNI_VARS = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")


class AgentUnreachable(Exception):
    """The agent's socket is missing, refuses us, or drops the connection mid-answer."""


class Undecodable(Exception):
    """stdin is not a JSON object."""


def scan_string_field(data: bytes, key: str) -> str | None:
    """The value of a top-level string field, found without a JSON parser when the text allows.

    The fast path takes the plain ``"key": "value"`` form; anything else (escapes, a repeated or
    absent key, a non-string value) falls back to ``json``. Returns None when the field is absent or
    not a string; raises Undecodable when the fallback finds no JSON object.
    """
    needle = f'"{key}"'.encode()
    at = data.find(needle)
    if at >= 0 and data.count(needle) == 1:
        rest = data[at + len(needle) :].lstrip()
        if rest[:1] == b":":
            rest = rest[1:].lstrip()
            end = rest.find(b'"', 1)
            value = rest[1:end]
            if rest[:1] == b'"' and end > 0 and b"\\" not in value:
                return value.decode("utf-8", "replace")
    import json

    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise Undecodable(str(exc)) from exc
    if not isinstance(doc, dict):
        raise Undecodable(f"a JSON {type(doc).__name__}, not an object")
    found = doc.get(key)
    return found if isinstance(found, str) else None


def build_request(environ: "Mapping[str, str]", body: bytes) -> bytes:
    """The HTTP/1.1 request: CNI variables as ``Cni-*`` headers, stdin as the body."""
    lines = [f"POST {API_PATH} HTTP/1.1", "Host: podnet-agent", "Connection: close", "Content-Type: application/json"]
    for var in CNI_VARS:
        value = environ.get(var)
        if value is None:
            continue
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"{var} contains a control character")
        lines.append(f"Cni-{var[4:].title()}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """(status, body) of an HTTP/1.1 answer read to EOF; AgentUnreachable if it is cut short."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise AgentUnreachable("connection closed before the answer's headers ended")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise AgentUnreachable(f"not an HTTP answer: {lines[0][:60]!r}")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
            if len(body) < length:
                raise AgentUnreachable(f"answer cut short ({len(body)} of {length} bytes)")
            body = body[:length]
    return int(parts[1]), body


def call_agent(path: str, request: bytes) -> tuple[int, bytes]:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as exc:
        raise AgentUnreachable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        sock.close()
    return parse_response(b"".join(chunks))


def error_document(data: bytes, code: int, msg: str, details: str) -> bytes:
    import json

    try:
        version = scan_string_field(data, "cniVersion")
    except Undecodable:
        version = None
    doc: dict[str, Any] = {"cniVersion": version if version in SUPPORTED_VERSIONS else LATEST_VERSION}
    doc.update(code=code, msg=msg, details=details)
    return json.dumps(doc).encode() + b"\n"


def version_document(data: bytes) -> bytes:
    import json

    try:
        version = scan_string_field(data, "cniVersion") if data.strip() else None
    except Undecodable:
        version = None
    doc = {"cniVersion": version if version in SUPPORTED_VERSIONS else LATEST_VERSION}
    return json.dumps({**doc, "supportedVersions": list(SUPPORTED_VERSIONS)}).encode() + b"\n"


def handle(environ: "Mapping[str, str]", data: bytes) -> tuple[int, bytes]:
    """One plugin call: (exit code, bytes for stdout)."""
    command = environ.get("CNI_COMMAND", "")
    if command == "VERSION":
        return 0, version_document(data)
    try:
        socket_path = scan_string_field(data, "agentSocket") or DEFAULT_SOCKET
    except Undecodable as exc:
        return 1, error_document(data, CODE_UNDECODABLE, "network configuration on stdin is not valid JSON", str(exc))
    try:
        request = build_request(environ, data)
    except ValueError as exc:
        return 1, error_document(data, CODE_INVALID_ENV, str(exc), "")
    try:
        status, body = call_agent(socket_path, request)
    except AgentUnreachable as exc:
        code = CODE_NOT_AVAILABLE if command == "STATUS" else CODE_TRY_AGAIN
        return 1, error_document(data, code, f"podnet agent at {socket_path} is not reachable", str(exc))
    if status == 200:
        return 0, body
    if not body.lstrip().startswith(b"{"):
        return 1, error_document(data, CODE_AGENT_PROTOCOL, f"podnet agent answered HTTP {status}", repr(body[:200]))
    return 1, body


def cni_environ() -> dict[str, str]:
    """The ``CNI_*`` variables, decoded as ``os.environ`` would (from the builtin ``posix``)."""
    return {
        k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
        for k, v in posix.environ.items()
        if k.startswith(b"CNI_")
    }


def run() -> int:
    data = b"" if sys.stdin is None else sys.stdin.buffer.read()
    code, out = handle(cni_environ(), data)
    if out:
        sys.stdout.buffer.write(out if out.endswith(b"\n") else out + b"\n")
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    # Leave without the interpreter's teardown (a garbage collection, freeing every object and
    # module): ~1 ms of a call. run() has flushed stdout; nothing else is open or buffered.
    posix._exit(run())
