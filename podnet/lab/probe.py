"""The lab's probe: a server answering on a pod's declared ports, and a client that probes them.

The client runs inside a pod's network namespace (``ip netns exec``). The server answers every TCP
connection and every UDP datagram with ``podnet-probe <ns/pod>``, so a client knows it reached the pod
it meant and not something else on that address. Two ways to serve:

- ``serve``: one process inside one pod's namespace (used by tests and by hand);
- ``host``: one process per lab node, in the host's namespace, told over a unix socket to serve a pod:
  it opens that pod's listening sockets *inside the pod's namespace* (``setns`` on its own thread for
  the ``socket()`` call only, see :func:`podnet.datapath.netns.entered`), so they are still real sockets
  in the pod's netns, but 100 pods cost one process instead of 100 Python interpreters.

    python -m podnet.lab.probe serve --name NS/POD [--tcp 80,443] [--udp 53] [--sctp 9]
    python -m podnet.lab.probe host --control SOCKET   (requests: JSON lines, see ``host_request``)
    python -m podnet.lab.probe check --to ADDR --protocol TCP --port 80 [--timeout 1] ...  (JSON lines out)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
from dataclasses import dataclass
from typing import cast

BANNER = b"podnet-probe "
IPPROTO_SCTP = 132


@dataclass(frozen=True, slots=True)
class ProbeResult:
    to: str
    protocol: str
    port: int
    reachable: bool
    answer: str
    rtt_ms: float | None
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "to": self.to,
            "protocol": self.protocol,
            "port": self.port,
            "reachable": self.reachable,
            "answer": self.answer,
            "rtt_ms": self.rtt_ms,
            "error": self.error,
        }


class _UDPAnswer(asyncio.DatagramProtocol):
    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.reply, addr)


async def serve(name: str, tcp: list[int], udp: list[int], sctp: list[int]) -> None:
    reply = BANNER + name.encode() + b"\n"

    async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        try:
            await writer.drain()
        finally:
            writer.close()

    loop = asyncio.get_running_loop()
    servers: list[object] = []
    for port in tcp:
        servers.append(await asyncio.start_server(on_tcp, "0.0.0.0", port, reuse_address=True))
    for port in udp:
        transport, _ = await loop.create_datagram_endpoint(lambda: _UDPAnswer(reply), local_addr=("0.0.0.0", port))
        servers.append(transport)
    for port in sctp:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
        except OSError as exc:
            print(f"probe {name}: SCTP port {port} not served: this kernel has no SCTP ({exc})", file=sys.stderr)
            continue
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        servers.append(await asyncio.start_server(on_tcp, sock=sock))
    print(f"probe {name}: serving tcp={tcp} udp={udp} sctp={sctp}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()


def _listening_sockets(netns: str, tcp: list[int], udp: list[int], sctp: list[int]) -> list[socket.socket]:
    """Bound sockets in the namespace at ``netns`` (a path): stream ones listening, UDP ones bound.

    Synchronous on purpose: the thread is switched into the pod's namespace only for these calls.
    """
    from podnet.datapath.netns import entered

    out: list[socket.socket] = []
    try:
        with entered(netns):
            for kind, ports in (
                (socket.IPPROTO_TCP, tcp),
                (socket.IPPROTO_UDP, udp),
                (IPPROTO_SCTP, sctp),
            ):
                for port in ports:
                    stype = socket.SOCK_DGRAM if kind == socket.IPPROTO_UDP else socket.SOCK_STREAM
                    try:
                        sock = socket.socket(socket.AF_INET, stype, kind)
                    except OSError as exc:
                        if kind != IPPROTO_SCTP:
                            raise
                        print(f"probe: SCTP port {port} not served: no SCTP in this kernel ({exc})", file=sys.stderr)
                        continue
                    out.append(sock)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("0.0.0.0", port))
                    if stype == socket.SOCK_STREAM:
                        sock.listen(64)
                    sock.setblocking(False)
    except BaseException:
        for sock in out:
            sock.close()
        raise
    return out


class ProbeHost:
    """Serves many pods from one process: per pod, its sockets (in its namespace) and their servers."""

    def __init__(self) -> None:
        self.pods: dict[str, list[asyncio.AbstractServer | asyncio.BaseTransport]] = {}

    async def add(self, name: str, netns: str, tcp: list[int], udp: list[int], sctp: list[int]) -> None:
        await self.remove(name)
        reply = BANNER + name.encode() + b"\n"

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(reply)
            try:
                await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        loop = asyncio.get_running_loop()
        served: list[asyncio.AbstractServer | asyncio.BaseTransport] = []
        try:
            for sock in _listening_sockets(netns, tcp, udp, sctp):
                if sock.type == socket.SOCK_DGRAM:
                    transport, _ = await loop.create_datagram_endpoint(lambda: _UDPAnswer(reply), sock=sock)
                    served.append(transport)
                else:
                    served.append(await asyncio.start_server(on_tcp, sock=sock))
        except BaseException:
            for s in served:
                s.close()
            raise
        self.pods[name] = served

    async def remove(self, name: str) -> None:
        for s in self.pods.pop(name, []):
            s.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    if req["op"] == "add":
                        await self.add(req["name"], req["netns"], req["tcp"], req["udp"], req["sctp"])
                    elif req["op"] == "remove":
                        await self.remove(req["name"])
                    answer: dict[str, object] = {"ok": True, "pods": len(self.pods)}
                except (OSError, KeyError, ValueError, TypeError) as exc:
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()


async def host(control: str) -> None:
    """Serve pods on request over the unix socket ``control`` (mode 0600) until killed."""
    import os

    with contextlib.suppress(FileNotFoundError):
        os.unlink(control)
    probes = ProbeHost()
    server = await asyncio.start_unix_server(probes.handle, control)
    os.chmod(control, 0o600)
    print(f"probe host: serving on {control}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def host_request(control: str, request: dict[str, object], timeout: float = 10.0) -> dict[str, object]:
    """One request to a probe host: ``{"op": "add", "name", "netns", "tcp", "udp", "sctp"}`` or
    ``{"op": "remove", "name"}``; the answer is ``{"ok": true}`` or ``{"ok": false, "error"}``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(control)
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    answer: dict[str, object] = json.loads(data) if data else {"ok": False, "error": "no answer"}
    return answer


async def _check_stream(addr: str, port: int, proto: int, timeout: float) -> bytes:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (addr, port)), timeout)
        return await asyncio.wait_for(loop.sock_recv(sock, 256), timeout)
    finally:
        sock.close()


async def _check_udp(addr: str, port: int, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()

    class _Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, _addr: tuple[str | object, ...]) -> None:
            if not fut.done():
                fut.set_result(data)

        def error_received(self, exc: Exception) -> None:
            if not fut.done():
                fut.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(_Client, remote_addr=(addr, port))
    try:
        transport.sendto(b"probe")
        return await asyncio.wait_for(fut, timeout)
    finally:
        transport.close()


async def check(addr: str, protocol: str, port: int, timeout: float) -> ProbeResult:
    start = time.perf_counter()
    try:
        if protocol == "UDP":
            data = await _check_udp(addr, port, timeout)
        elif protocol == "SCTP":
            data = await _check_stream(addr, port, IPPROTO_SCTP, timeout)
        else:
            data = await _check_stream(addr, port, socket.IPPROTO_TCP, timeout)
    except TimeoutError:
        return ProbeResult(addr, protocol, port, False, "", None, "timeout")
    except OSError as exc:
        return ProbeResult(addr, protocol, port, False, "", None, exc.strerror or str(exc))
    rtt = round((time.perf_counter() - start) * 1000, 3)
    if not data.startswith(BANNER):
        return ProbeResult(addr, protocol, port, False, data[:64].decode(errors="replace"), rtt, "not a probe")
    return ProbeResult(addr, protocol, port, True, data[len(BANNER) :].decode().strip(), rtt)


async def check_many(targets: list[tuple[str, str, int]], timeout: float) -> list[ProbeResult]:
    return list(await asyncio.gather(*(check(a, p, n, timeout) for a, p, n in targets)))


def _ports(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="podnet-probe")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--name", required=True)
    s.add_argument("--tcp", type=_ports, default=[])
    s.add_argument("--udp", type=_ports, default=[])
    s.add_argument("--sctp", type=_ports, default=[])
    h = sub.add_parser("host", help="serve many pods' ports, told which over a unix socket")
    h.add_argument("--control", required=True)
    c = sub.add_parser("check", help="probe targets given as ADDR/PROTO/PORT, print JSON lines")
    c.add_argument("targets", nargs="+", metavar="ADDR/PROTO/PORT")
    c.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        try:
            asyncio.run(serve(args.name, args.tcp, args.udp, args.sctp))
        except KeyboardInterrupt:
            return 0
        return 0
    if args.cmd == "host":
        try:
            asyncio.run(host(args.control))
        except KeyboardInterrupt:
            return 0
        return 0
    targets = []
    for t in args.targets:
        addr, proto, port = t.rsplit("/", 2)
        targets.append((addr, proto.upper(), int(port)))
    for result in asyncio.run(check_many(targets, args.timeout)):
        print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
