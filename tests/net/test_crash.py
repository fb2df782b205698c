"""SIGKILL the agent during 200 ADD/DEL calls, restart it, GC: allocations equal the live pods exactly."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from tests.net.helpers import NODE_V4, Agent, Node, Plugin, addresses, links, ping, podnet_veths

PODS = 16
OPS = 200
KILLS = 4


@pytest.mark.timeout(180)
def test_sigkill_during_add_del_loop(plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]) -> None:
    rng = random.Random(4242)
    pods = [make_pod(f"k{i}") for i in range(PODS)]
    live: set[str] = set()  # pods whose ADD succeeded and that no DEL has removed since
    dirty: set[str] = set()  # a verb failed: the runtime owes this pod a DEL
    in_flight = threading.Event()
    done = threading.Event()
    results = {"ok": 0, "failed": 0}
    kills = 0

    def call(command: str, pod: str) -> bool:
        in_flight.set()
        try:
            r = plugin.exec(command, plugin.conf(), f"c-{pod}", f"/run/netns/{pod}")
        finally:
            in_flight.clear()
        results["ok" if r.returncode == 0 else "failed"] += 1
        if r.returncode != 0:
            assert r.doc["code"] == 11, r.doc  # the agent was gone: try again later
        return r.returncode == 0

    def runtime() -> None:
        # At least OPS calls, and on until every kill has happened (a fast machine could finish first).
        try:
            n = 0
            while (n < OPS or kills < KILLS) and n < 20 * OPS:
                n += 1
                pod = rng.choice(pods)
                if pod in dirty:
                    if call("DEL", pod):
                        dirty.discard(pod)
                elif pod in live:
                    if call("DEL", pod):
                        live.discard(pod)
                    else:
                        live.discard(pod)
                        dirty.add(pod)
                elif call("ADD", pod):
                    live.add(pod)
                else:
                    dirty.add(pod)  # a failed ADD is followed by DEL, as the spec asks of runtimes
        finally:
            done.set()

    worker = threading.Thread(target=runtime)
    worker.start()
    while not done.is_set() and kills < KILLS:
        time.sleep(rng.uniform(0.2, 0.8))
        if not in_flight.wait(5):
            continue
        time.sleep(rng.uniform(0.004, 0.02))  # past the plugin's start-up, into the agent's work
        agent.kill()
        kills += 1
        time.sleep(0.1)  # let a call or two find the agent gone
        agent.start()
    worker.join(150)
    assert not worker.is_alive()
    print("calls", results, "live", len(live), "dirty", len(dirty))
    assert kills == KILLS and results["failed"] > 0

    # the runtime retries the DELs it owes, then garbage-collects with the attachments it knows
    for pod in sorted(dirty):
        assert plugin.exec("DEL", plugin.conf(), f"c-{pod}", f"/run/netns/{pod}").returncode == 0
    valid = [{"containerID": f"c-{pod}", "ifname": "eth0"} for pod in sorted(live)]
    gc = plugin.exec("GC", plugin.conf("1.1.0", **{"cni.dev/valid-attachments": valid}))
    assert gc.returncode == 0, gc.doc

    held = agent.allocations()
    assert sorted(held) == sorted(f"c-{pod}/eth0" for pod in live)
    assert sorted(e["container_id"] for e in agent.get("/v1/endpoints")) == sorted(f"c-{p}" for p in live)
    assert len(podnet_veths(node.name)) == len(live)
    every = [a for owner in held.values() for a in owner]
    assert len(every) == len(set(every)) == 2 * len(live)
    for pod in live:
        got = sorted(a.split("/")[0] for a in addresses(pod, "eth0"))
        assert got == sorted(held[f"c-{pod}/eth0"]), pod
    for pod in sorted(live)[:3]:
        assert ping(pod, NODE_V4)
    for pod in set(pods) - live:
        assert [link["ifname"] for link in links(pod)] == ["lo"], pod
