"""The CNI verbs as the agent executes them: IPAM + endpoint registry + datapath, all or nothing.

Threading rule: one instance is driven by one thread at a time (the API's worker thread), so the
in-memory registry and the datapath's netlink sockets need no locks; the state files carry their own
file locks against other processes.

Crash rule: ADD allocates (durable) → wires the kernel → records the endpoint (durable). DEL unwires →
drops the endpoint → releases. So "allocation without endpoint" is exactly "a verb was cut short", and
:meth:`CniService.reconcile` at start removes those veths and frees those addresses. Endpoints are
never dropped on start (their pod may live on); GC with the runtime's valid attachments removes them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from podnet import __version__
from podnet.agent.endpoints import Endpoint, EndpointRegistry
from podnet.cni import protocol
from podnet.cni.protocol import GATEWAY_V4, GATEWAY_V6, CniEnv, NetConf
from podnet.datapath.backend import DatapathBackend, WiringRequest, host_veth_name
from podnet.errors import (
    CheckFailed,
    CniSpecError,
    InterfaceExists,
    InvalidEnvironment,
    PluginNotAvailable,
    PodnetError,
    UnknownContainer,
)
from podnet.ipam.allocator import Owner
from podnet.ipam.service import Ipam

log = logging.getLogger("podnet.agent")


@dataclass(frozen=True)
class Answer:
    """What goes back to the plugin: an HTTP status and the bytes it prints."""

    status: int
    body: bytes


def env_from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``Cni-Containerid: x`` → ``CNI_CONTAINERID=x`` (the plugin sends the CNI variables as headers)."""
    out = {}
    for key, value in headers.items():
        if key.lower().startswith("cni-"):
            out["CNI_" + key[4:].upper()] = value
    return out


class PolicyHook(Protocol):
    def nudge(self) -> int: ...

    def nudge_and_wait(self, pod: tuple[str, str], timeout: float = 3.0) -> bool: ...


class CniService:
    """The verbs over one IPAM, one endpoint registry and one datapath backend (see module docstring)."""

    def __init__(
        self, node_name: str, ipam: Ipam, registry: EndpointRegistry, datapath: DatapathBackend, default_mtu: int
    ) -> None:
        self.node_name = node_name
        self.ipam = ipam
        self.registry = registry
        self.datapath = datapath
        self.default_mtu = default_mtu
        self.started = time.time()
        # The policy loop, when the agent enforces policy: ADD waits (bounded) until the new pod is
        # enforced, DEL lets it forget the endpoint.
        self.policy: PolicyHook | None = None

    # --- entry point ------------------------------------------------------------------------------

    def call(self, env_vars: Mapping[str, str], body: bytes) -> Answer:
        """Validate and run one plugin call; every error becomes the spec's error document."""
        started = time.perf_counter()
        version = protocol.LATEST_VERSION
        command = env_vars.get("CNI_COMMAND", "?")
        fields = {
            "verb": command,
            "containerID": env_vars.get("CNI_CONTAINERID", ""),
            "ifname": env_vars.get("CNI_IFNAME", ""),
        }
        log_file = None
        try:
            doc = protocol.decode_config(body)
            version = protocol.requested_version(doc)
            log_file = doc.get("logFile") if isinstance(doc.get("logFile"), str) else None
            env = protocol.validate_env(env_vars)
            conf = protocol.validate_config(doc, env.command)
            result = self.dispatch(env, conf)
        except PodnetError as exc:
            ms = round((time.perf_counter() - started) * 1000, 2)
            log.warning("%s failed: %s", command, exc.message, extra={**fields, "code": exc.cni_code, "ms": ms})
            _append_log(log_file, {**fields, "code": exc.cni_code, "msg": exc.message, "ms": ms})
            status = 400 if isinstance(exc, CniSpecError) else 500
            return Answer(status, json.dumps(protocol.error_from(exc, version)).encode())
        except Exception as exc:  # a bug or an unexpected OS error: the verb's undo stack already ran
            log.exception("%s crashed", command, extra=fields)
            doc = protocol.error_document(version, PodnetError.cni_code, f"podnet agent: {exc!r}")
            return Answer(500, json.dumps(doc).encode())
        ms = round((time.perf_counter() - started) * 1000, 2)
        log.info("%s ok", command, extra={**fields, "ms": ms})
        _append_log(conf.log_file, {**fields, "code": 0, "ms": ms})
        return Answer(200, json.dumps(result).encode() if result is not None else b"")

    def dispatch(self, env: CniEnv, conf: NetConf) -> dict[str, Any] | None:
        if env.command == "ADD":
            return self.add(env, conf)
        if env.command == "DEL":
            self.delete(env, conf)
        elif env.command == "CHECK":
            self.check(env, conf)
        elif env.command == "STATUS":
            self.status_verb()
        elif env.command == "GC":
            self.gc(conf)
        else:
            return protocol.version_document(conf.cni_version)
        return None

    # --- verbs ------------------------------------------------------------------------------------

    def add(self, env: CniEnv, conf: NetConf) -> dict[str, Any]:
        owner = Owner(env.container_id, env.ifname)
        if self.registry.get(owner) is not None:
            raise InterfaceExists(f"attachment {owner.key()} already exists; DEL it first")
        if not os.path.exists(env.netns):
            raise InvalidEnvironment(f"CNI_NETNS {env.netns} does not exist")
        mtu = conf.mtu or self.default_mtu
        with contextlib.ExitStack() as undo:
            addresses = tuple(self.ipam.allocate(owner))
            undo.callback(self.ipam.release, owner)
            request = WiringRequest(env.container_id, env.ifname, env.netns, addresses, mtu)
            wiring = self.datapath.wire(request)
            undo.callback(self.datapath.unwire, wiring.host_veth)
            endpoint = Endpoint(
                container_id=env.container_id,
                ifname=env.ifname,
                netns=env.netns,
                network=conf.name,
                host_veth=wiring.host_veth,
                addresses=addresses,
                mac=wiring.pod_mac,
                mtu=mtu,
                pod_namespace=env.arg("K8S_POD_NAMESPACE") or "",
                pod_name=env.arg("K8S_POD_NAME") or "",
                created=time.time(),
                host_mac=wiring.host_mac,
            )
            self.registry.put(endpoint)
            undo.pop_all()
        pod = (endpoint.pod_namespace, endpoint.pod_name)
        if self.policy is not None and endpoint.pod_name and not self.policy.nudge_and_wait(pod):
            log.warning("pod %s/%s not under policy yet", endpoint.pod_namespace, endpoint.pod_name)
        result = {
            "interfaces": [
                {"name": wiring.host_veth, "mac": wiring.host_mac},
                {"name": env.ifname, "mac": wiring.pod_mac, "sandbox": env.netns, "mtu": mtu},
            ],
            "ips": [
                {
                    "address": f"{a}/{a.max_prefixlen}",
                    "gateway": GATEWAY_V4 if a.version == 4 else GATEWAY_V6,
                    "interface": 1,
                }
                for a in addresses
            ],
            "routes": [
                {"dst": "0.0.0.0/0" if a.version == 4 else "::/0", "gw": GATEWAY_V4 if a.version == 4 else GATEWAY_V6}
                for a in addresses
            ],
            "dns": {},
        }
        return protocol.format_result(result, conf.cni_version)

    def delete(self, env: CniEnv, conf: NetConf) -> None:
        """Idempotent: unknown attachments, vanished namespaces and an empty CNI_NETNS all succeed."""
        owner = Owner(env.container_id, env.ifname)
        endpoint = self.registry.get(owner)
        self._teardown(owner, endpoint.host_veth if endpoint else host_veth_name(*_key(owner)))
        if self.policy is not None and endpoint is not None:
            self.policy.nudge()

    def _teardown(self, owner: Owner, host_veth: str) -> None:
        self.datapath.unwire(host_veth)
        self.registry.remove(owner)
        freed = self.ipam.release(owner)
        if freed:
            log.info("released", extra={"owner": owner.key(), "addresses": [str(a) for a in freed]})

    def check(self, env: CniEnv, conf: NetConf) -> None:
        owner = Owner(env.container_id, env.ifname)
        endpoint = self.registry.get(owner)
        if endpoint is None:
            raise UnknownContainer(f"no podnet attachment {owner.key()}")
        problems = []
        held = set(self.ipam.owners().get(owner, []))
        problems += [f"IPAM no longer holds {a} for {owner.key()}" for a in endpoint.addresses if a not in held]
        prev = protocol.normalize_result(conf.prev_result) if conf.prev_result is not None else None
        if prev is not None:
            listed = {ipaddress.ip_interface(ip["address"]).ip for ip in prev.get("ips", [])}
            problems += [f"prevResult lacks {a}" for a in endpoint.addresses if a not in listed]
            problems += [f"prevResult lists {a}, podnet did not assign it" for a in listed - set(endpoint.addresses)]
        request = WiringRequest(endpoint.container_id, endpoint.ifname, env.netns, endpoint.addresses, endpoint.mtu)
        report = self.datapath.check(request, endpoint.host_veth)
        problems += report.problems
        problems += mac_differences(endpoint, env.netns, prev, report.host_mac, report.pod_mac)
        if problems:
            raise CheckFailed(f"attachment {owner.key()} is not as podnet wired it", "; ".join(problems))

    def status_verb(self) -> None:
        for pool in self.ipam.usage():
            if pool.used >= pool.size and any(str(c) == pool.cidr for c in self.ipam.cidrs):
                raise PluginNotAvailable(f"pod CIDR {pool.cidr} has no free address")

    def gc(self, conf: NetConf) -> dict[str, int]:
        """Remove this network's attachments that the runtime no longer lists, and stray podnet state."""
        valid = {Owner(c, i) for c, i in conf.valid_attachments or ()}
        removed = 0
        for endpoint in self.registry.all():
            if endpoint.network == conf.name and endpoint.owner not in valid:
                self._teardown(endpoint.owner, endpoint.host_veth)
                removed += 1
        keep = valid | {e.owner for e in self.registry.all()}
        freed = self.ipam.collect_garbage(keep)
        strays = self._remove_stray_veths()
        log.info("gc", extra={"network": conf.name, "endpoints": removed, "addresses": len(freed), "veths": strays})
        return {"endpoints": removed, "addresses": len(freed), "veths": strays}

    # --- start-up and queries ---------------------------------------------------------------------

    def _remove_stray_veths(self) -> int:
        known = {e.host_veth for e in self.registry.all()}
        count = 0
        for name in self.datapath.host_veths():
            if name not in known and self.datapath.unwire(name):
                count += 1
        return count

    def reconcile(self) -> dict[str, int]:
        """Finish what a killed agent left half-done: see the crash rule in the module docstring."""
        registered = {e.owner for e in self.registry.all()}
        orphans = [o for o in self.ipam.owners() if o not in registered]
        for owner in orphans:
            self._teardown(owner, host_veth_name(*_key(owner)))
        strays = self._remove_stray_veths()
        summary = {"endpoints": len(registered), "orphan_allocations": len(orphans), "stray_veths": strays}
        log.info("reconciled", extra=summary)
        return summary

    def endpoints(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.registry.all()]

    def status(self) -> dict[str, Any]:
        return {
            "node": self.node_name,
            "version": __version__,
            "healthy": True,
            "uptime_s": round(time.time() - self.started, 1),
            "endpoints": len(self.registry.all()),
            "ipam": [{"cidr": u.cidr, "size": u.size, "used": u.used} for u in self.ipam.usage()],
        }


def _listed_mac(prev: Mapping[str, Any] | None, name: str, in_sandbox: bool) -> str | None:
    """The MAC that ``prevResult`` lists for interface ``name`` (pod side: with a sandbox), if any."""
    for iface in (prev or {}).get("interfaces") or []:
        if isinstance(iface, dict) and iface.get("name") == name and bool(iface.get("sandbox")) == in_sandbox:
            mac = iface.get("mac")
            return mac.lower() if isinstance(mac, str) and mac else None
    return None


def mac_differences(
    endpoint: Endpoint, netns: str, prev: Mapping[str, Any] | None, host_mac: str | None, pod_mac: str | None
) -> list[str]:
    """Where the live MACs of an attachment differ from podnet's record and from ``prevResult``.

    ``prevResult`` is the chain's final word: a chained plugin (``tuning``) may have set the pod's MAC
    after podnet and said so in the result, so when ``prevResult`` lists a MAC for an interface the
    live one must equal it; otherwise it must equal podnet's record. A side whose live MAC is None
    (missing, reported elsewhere) or that nobody recorded is not compared.
    """
    problems = []
    sides = (
        (f"host veth {endpoint.host_veth}", host_mac, endpoint.host_mac, _listed_mac(prev, endpoint.host_veth, False)),
        (f"{endpoint.ifname} in {netns}", pod_mac, endpoint.mac, _listed_mac(prev, endpoint.ifname, True)),
    )
    for what, live, recorded, listed in sides:
        if live is None:
            continue
        live, recorded = live.lower(), recorded.lower()
        expected = listed or recorded
        if not expected or live == expected:
            continue
        if listed is None:
            source = f"podnet recorded {recorded}"
        elif listed == recorded:
            source = f"podnet recorded and prevResult lists {listed}"
        else:
            source = f"prevResult lists {listed}" + (f" (podnet set {recorded})" if recorded else "")
        problems.append(f"{what} has MAC {live}, {source}")
    return problems


def _append_log(path: str | None, fields: dict[str, Any]) -> None:
    """The network config's ``logFile``: one JSON line per plugin call. Never fails the call."""
    if not path or not path.startswith("/"):
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"ts": round(time.time(), 3), **fields}) + "\n")
    except OSError as exc:
        log.warning("cannot write logFile %s: %s", path, exc)


def _key(owner: Owner) -> tuple[str, str]:
    return owner.container_id, owner.ifname
