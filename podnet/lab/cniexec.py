"""Calling CNI plugins the way a container runtime does (libcni's conflist semantics).

ADD runs the plugins of a conflist in order, each given the previous one's result as
``prevResult``; when one fails, DEL runs over the whole list (in reverse) and the error is raised.
DEL runs in reverse order and goes on past failures, reporting the first. CHECK passes the cached
ADD result. Plugins are found in ``bin_dirs`` (CNI_PATH).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.errors import PodnetError


class CniExecError(PodnetError):
    """A plugin answered with a CNI error (or crashed); ``code`` is the CNI error code."""

    cni_code = 111

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"CNI {command} by {plugin} failed (code {code}): {msg}", details)
        self.plugin = plugin
        self.code = code


@dataclass
class Attachment:
    container_id: str
    netns: str
    ifname: str
    args: Sequence[tuple[str, str]] = ()
    result: dict[str, Any] = field(default_factory=dict)


class ConflistRunner:
    def __init__(
        self, conflist: dict[str, Any], bin_dirs: Sequence[Path], node_netns: str | None = None, timeout: float = 60.0
    ) -> None:
        """``node_netns``: run the plugins inside this named namespace (a lab node), not the caller's."""
        self.conflist = conflist
        self.bin_dirs = list(bin_dirs)
        self.node_netns = node_netns
        self.timeout = timeout

    def _plugin_conf(self, plugin: dict[str, Any], prev: dict[str, Any] | None) -> bytes:
        conf = dict(plugin)
        conf["cniVersion"] = self.conflist["cniVersion"]
        conf["name"] = self.conflist["name"]
        if prev is not None:
            conf["prevResult"] = prev
        return json.dumps(conf).encode()

    def _find(self, plugin_type: str) -> Path:
        for d in self.bin_dirs:
            candidate = d / plugin_type
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        raise CniExecError(plugin_type, "find", 8, f"plugin {plugin_type!r} not found in {self.bin_dirs}")

    def exec(self, plugin: dict[str, Any], command: str, att: Attachment, prev: dict[str, Any] | None) -> Any:
        kind = str(plugin["type"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": att.container_id,
            "CNI_NETNS": att.netns,
            "CNI_IFNAME": att.ifname,
            "CNI_PATH": os.pathsep.join(str(d) for d in self.bin_dirs),
        }
        if att.args:  # like kubelet and containerd: plugins that do not know a key must not fail on it
            env["CNI_ARGS"] = ";".join(f"{k}={v}" for k, v in (("IgnoreUnknown", "1"), *att.args))
        argv = [str(self._find(kind))]
        if self.node_netns is not None:
            argv = ["ip", "netns", "exec", self.node_netns, *argv]
        proc = subprocess.run(
            argv,
            input=self._plugin_conf(plugin, prev),
            env=env,
            capture_output=True,
            timeout=self.timeout,
            check=False,
        )
        out = proc.stdout.decode(errors="replace").strip()
        if proc.returncode != 0:
            try:
                doc = json.loads(out)
                raise CniExecError(
                    kind, command, int(doc.get("code", 999)), str(doc.get("msg", "")), str(doc.get("details", ""))
                )
            except (json.JSONDecodeError, AttributeError, ValueError):
                raise CniExecError(kind, command, 999, out or proc.stderr.decode(errors="replace").strip()) from None
        return json.loads(out) if out else None

    def add(self, att: Attachment) -> dict[str, Any]:
        prev: dict[str, Any] | None = None
        try:
            for plugin in self.conflist["plugins"]:
                prev = self.exec(plugin, "ADD", att, prev)
        except CniExecError:
            self.delete(att, prev)
            raise
        att.result = prev or {}
        return att.result

    def check(self, att: Attachment) -> None:
        for plugin in self.conflist["plugins"]:
            self.exec(plugin, "CHECK", att, att.result)

    def delete(self, att: Attachment, prev: dict[str, Any] | None = None) -> None:
        first: CniExecError | None = None
        for plugin in reversed(self.conflist["plugins"]):
            try:
                self.exec(plugin, "DEL", att, prev if prev is not None else (att.result or None))
            except CniExecError as exc:
                first = first or exc
        if first is not None:
            raise first
