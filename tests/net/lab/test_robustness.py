"""The lab survives its processes dying: an agent killed and restarted, every process killed at once."""

from __future__ import annotations

import json
import os
import signal
import time

from podnet.lab import fabric, manager, procs
from podnet.lab.apiserver import process as apiserver_process
from tests.net.lab.helpers import podnet, pods, wait_for


def _shop_running(lab: manager.Lab) -> None:
    podnet("apply", "-f", "examples/shop", "--name", lab.name)

    def running() -> bool:
        items = pods(lab)
        return len(items) == 6 and all((p.get("status") or {}).get("phase") == "Running" for p in items)

    wait_for(running, "6 running pods")


def _test(lab: manager.Lab) -> dict[str, object]:
    out = podnet("connectivity", "test", "-o", "json", "--name", lab.name, "--timeout", "1", check=False).stdout
    doc: dict[str, object] = json.loads(out)
    return doc


def _kill(proc: procs.Proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while procs.alive(proc) and time.monotonic() < deadline:
        procs.reap(proc.pid)
        time.sleep(0.02)
    assert not procs.alive(proc)


def test_a_killed_agent_restarts_with_every_pod_reachable_and_policy_enforced(lab: manager.Lab) -> None:
    _shop_running(lab)
    assert _test(lab) == {"probes": 66, "differences": []}
    old = manager.load(lab.name).procs["agent/node0"]
    _kill(old)
    # while it is dead the pinned programs and maps keep enforcing
    assert _test(lab)["differences"] == []
    out = podnet("lab", "restart-agent", "--node", "node0", "--name", lab.name).stdout
    assert "restarted" in out
    new = manager.load(lab.name).procs["agent/node0"]
    assert new.pid != old.pid and procs.alive(new)
    assert _test(lab) == {"probes": 66, "differences": []}
    # the restarted agent wires new pods and puts them under policy
    old_uid = manager.load(lab.name).pods["data/postgres-0"]["uid"]
    podnet("delete", "pod", "postgres-0", "-n", "data", "--name", lab.name)

    def replaced() -> bool:
        # The controller may remove and re-create the sandbox between two polls: look for a new uid.
        record = manager.load(lab.name).pods.get("data/postgres-0")
        return record is not None and record.get("uid") not in (None, old_uid)

    wait_for(replaced, "postgres-0 to come back as a new pod")
    wait_for(lambda: _test(lab) == {"probes": 66, "differences": []}, "0 differences with the new pod", 20)
    # the controller's later saves did not bring the dead agent's pid back into the record
    assert manager.load(lab.name).procs["agent/node0"] == new
    assert "2/2" in podnet("lab", "list").stdout


def test_lab_up_after_every_process_was_killed_cleans_up_and_comes_up(lab: manager.Lab) -> None:
    _shop_running(lab)
    before = manager.load(lab.name)
    server = apiserver_process.running(before.apiserver_dir)
    assert server is not None
    for proc in [*before.procs.values(), procs.Proc(server.pid, "apiserver")]:
        os.kill(proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    assert len(fabric.list_netns(before.plan.prefix)) == 1 + 2 + 6  # the namespaces are left behind
    r = podnet("lab", "up", "--name", lab.name, "--nodes", "2", "--pod-cidr", "10.243.0.0/16")
    assert "cleaning up what an earlier lab" in r.stderr
    after = manager.load(lab.name)
    assert after.pods == {}
    assert sorted(fabric.list_netns(after.plan.prefix)) == sorted(
        [after.plan.fabric_netns, *(n.netns for n in after.plan.nodes)]
    )
    assert all(procs.alive(p) for p in after.procs.values())
    assert not any(procs.alive(p) for p in before.procs.values())
    _shop_running(after)
    assert _test(after) == {"probes": 66, "differences": []}
