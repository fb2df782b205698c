"""The plugin executable, installed by install-cni and exec'd as a runtime would (no agent needed)."""

import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from podnet.cni import shim
from podnet.cni.install import install, real_interpreter

CONF = b'{"cniVersion": "0.4.0", "name": "n", "type": "podnet", "agentSocket": "/nonexistent/agent.sock"}'
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0"}


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    exe, conf = install(tmp_path / "bin", tmp_path / "conf", socket_path="/run/x.sock", chain=["portmap"])
    doc = json.loads(conf.read_text())
    assert [p["type"] for p in doc["plugins"]] == ["podnet", "portmap"]
    assert doc["plugins"][0]["agentSocket"] == "/run/x.sock"
    return exe


def run(exe: Path, env: dict[str, str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(exe)], input=data, env=env, capture_output=True, timeout=10)


def test_executable_uses_the_real_interpreter_isolated(plugin: Path) -> None:
    first = plugin.read_bytes().split(b"\n", 1)[0].decode()
    assert first == f"#!{real_interpreter()} -IS"
    assert "/shims/" not in first
    assert os.access(plugin, os.X_OK)


def test_version_works_without_agent(plugin: Path) -> None:
    out = run(plugin, {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "0.3.1"}')
    assert out.returncode == 0
    assert json.loads(out.stdout) == {"cniVersion": "0.3.1", "supportedVersions": list(shim.SUPPORTED_VERSIONS)}


def test_unreachable_agent_is_error_11(plugin: Path) -> None:
    out = run(plugin, ENV, CONF)
    assert out.returncode != 0
    doc = json.loads(out.stdout)
    assert doc["code"] == 11 and doc["cniVersion"] == "0.4.0"
    assert "/nonexistent/agent.sock" in doc["msg"]
    status = run(plugin, {"CNI_COMMAND": "STATUS"}, CONF.replace(b"0.4.0", b"1.1.0"))
    assert json.loads(status.stdout)["code"] == 50


def test_forwards_env_and_body_and_prints_answer(plugin: Path, tmp_path: Path) -> None:
    path = str(tmp_path / "fake.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = srv.accept()
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            data += conn.recv(65536)
        seen.append(data)
        body = b'{"cniVersion": "0.4.0", "code": 7, "msg": "nope"}'
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    conf = CONF.replace(b"/nonexistent/agent.sock", path.encode())
    out = run(plugin, {**ENV, "CNI_ARGS": "K8S_POD_NAME=web"}, conf)
    t.join(5)
    srv.close()
    assert out.returncode == 1
    assert json.loads(out.stdout)["code"] == 7
    request = seen[0]
    assert request.startswith(b"POST /v1/cni HTTP/1.1\r\n")
    assert b"Cni-Containerid: c1\r\n" in request and b"Cni-Args: K8S_POD_NAME=web\r\n" in request
    assert request.endswith(conf)


def test_scan_string_field_falls_back_to_json() -> None:
    assert shim.scan_string_field(b'{"agentSocket" : "/a.sock"}', "agentSocket") == "/a.sock"
    assert shim.scan_string_field(b'{"agentSocket": "/a\\u002esock"}', "agentSocket") == "/a.sock"
    assert shim.scan_string_field(b'{"x": 1}', "agentSocket") is None
    assert shim.scan_string_field(b'{"agentSocket": 5}', "agentSocket") is None
    with pytest.raises(shim.Undecodable):
        shim.scan_string_field(b"{nope", "agentSocket")
    code, out = shim.handle(ENV, b"[1, 2]")
    assert code == 1 and json.loads(out)["code"] == 6


def test_parse_response_detects_truncation() -> None:
    assert shim.parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") == (200, b"{}")
    with pytest.raises(shim.AgentUnreachable):
        shim.parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}")
    with pytest.raises(shim.AgentUnreachable):
        shim.parse_response(b"HTTP/1.1 200")


def test_control_characters_in_env_are_rejected() -> None:
    code, out = shim.handle({**ENV, "CNI_ARGS": "A=1\r\nX: y"}, CONF)
    assert code == 1 and json.loads(out)["code"] == 4


def test_precompiled_shim_and_its_source_fallback_answer_alike(plugin: Path, tmp_path: Path) -> None:
    shebang, comment, imports, guard, fast, other, slow = plugin.read_text().splitlines()
    assert guard.startswith("if sys.modules['_frozen_importlib_external'].MAGIC_NUMBER == b")
    assert fast.startswith("    exec(marshal.loads(b") and slow.startswith("    exec(compile(")
    variants = {
        # the precompiled code runs: a broken fallback does not matter
        "fast": [shebang, comment, imports, guard, fast, other, "    raise SystemExit(42)"],
        # another interpreter's magic number: the source runs
        "slow": [shebang, comment, imports, "if sys.version_info < (3,):", "    raise SystemExit(43)", other, slow],
    }
    expected = run(plugin, {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "0.4.0"}')
    assert expected.returncode == 0
    for name, lines in variants.items():
        exe = tmp_path / name
        exe.write_text("\n".join(lines) + "\n")
        exe.chmod(0o755)
        out = run(exe, {"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "0.4.0"}')
        assert (name, out.returncode, out.stdout) == (name, 0, expected.stdout)
        unreachable = run(exe, ENV, CONF)
        assert json.loads(unreachable.stdout)["code"] == 11
