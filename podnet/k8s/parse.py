"""Turning documents into a validated :class:`Cluster`, rejecting what the API server would reject.

Every problem names the file, the document index, the object and the field path, e.g.
``np.yaml[doc 1]: NetworkPolicy default/web: spec.ingress[0].ports[1].endPort: Invalid value: 79: must be >= port``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import IO, Any

from podnet.errors import ManifestError
from podnet.k8s.fieldpath import Problems
from podnet.k8s.manifests import Document
from podnet.k8s.model import (
    NS_NAME_LABEL,
    PROTOCOLS,
    AdminAction,
    AdminNetworkPolicy,
    AdminPeer,
    AdminRule,
    Cluster,
    ContainerPort,
    IPAddress,
    IPBlock,
    IPNetwork,
    Namespace,
    NetworkPolicy,
    Peer,
    Pod,
    PortSpec,
    Protocol,
    Rule,
    Source,
)
from podnet.k8s.selectors import label_key_error, label_value_error, parse_selector

AUDIT_ANNOTATION = "podnet.io/audit"
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController")
ANP_API = "policy.networking.k8s.io/v1alpha1"
# The API group each supported kind belongs to ("" is the core group, apiVersion ``v1``). A kind of the
# same name from another group (Calico's NetworkPolicy, say) is another kind: it is ignored with a warning.
KIND_GROUPS: dict[str, str] = {
    "Namespace": "",
    "Pod": "",
    "ReplicationController": "",
    "Deployment": "apps",
    "ReplicaSet": "apps",
    "StatefulSet": "apps",
    "DaemonSet": "apps",
    "Job": "batch",
    "CronJob": "batch",
    "NetworkPolicy": "networking.k8s.io",
    "AdminNetworkPolicy": "policy.networking.k8s.io",
    "BaselineAdminNetworkPolicy": "policy.networking.k8s.io",
}
CLUSTER_SCOPED = ("Namespace", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy")
SELECTOR_REQUIRED = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
_CIDR_TEXT = re.compile(r"[0-9A-Fa-f:.]+/[0-9]+")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA_SVC = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def port_name_error(name: object) -> str | None:
    """Why ``name`` is not an IANA service name (a valid named port), or None."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > 15:
        return "must be no more than 15 characters"
    if not _IANA_SVC.fullmatch(name) or "--" in name:
        return "must contain only lowercase alphanumeric characters and '-', no '--', and not start or end with '-'"
    if not any(c.isalpha() for c in name):
        return "must contain at least one letter"
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _protocol(raw: object, path: str, problems: Problems, default: Protocol | None = "TCP") -> Protocol | None:
    if raw is None:
        return default
    for p in PROTOCOLS:
        if raw == p:
            return p
    problems.add(path, f'Unsupported value: {raw!r}: supported values: "SCTP", "TCP", "UDP"')
    return default


def _cidr(raw: object, path: str, problems: Problems, warn: bool = False) -> IPNetwork | None:
    """A CIDR as the API server parses it (``ParseCIDRSloppy``): ``addr/prefix``, host bits allowed.

    With ``warn``, host bits set beyond the prefix give the API server's "ambiguous" warning.
    """
    if raw is None or raw == "":
        problems.add(path, "Required value")
        return None
    net: IPNetwork | None = None
    if isinstance(raw, str) and _CIDR_TEXT.fullmatch(raw):
        try:
            net = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            net = None
    if net is None:
        problems.add(path, f"Invalid value: {raw!r}: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
        return None
    assert isinstance(raw, str)
    addr = ipaddress.ip_address(raw.split("/")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        # Go reads ::ffff:10.0.0.0/104 as 10.0.0.0/8, Python as an IPv6 network: refuse the ambiguity,
        # as the API server's strict CIDR validation does.
        problems.add(path, f"Invalid value: {raw!r}: must not have an IPv4-mapped IPv6 address")
        return None
    if warn and addr != net.network_address:
        problems.warn(
            path,
            f'CIDR value "{raw}" is ambiguous in this context (should be "{net}" or "{addr}/{net.max_prefixlen}"?)',
        )
    return net


def _unknown(obj: dict[str, Any], path: str, known: tuple[str, ...], problems: Problems) -> None:
    """Report fields the schema does not have, as strict field validation (kubectl's default) does."""
    for key in obj:
        if key not in known:
            problems.add(f"{path}.{key}", "unknown field")


def _list(raw: object, path: str, problems: Problems) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(path, "must be a list")
        return []
    return raw


def _dict(raw: object, path: str, problems: Problems) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(path, "must be an object")
        return {}
    return raw


def _labels(raw: object, path: str, problems: Problems) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _dict(raw, path, problems).items():
        kerr = label_key_error(k)
        verr = label_value_error(v)
        if kerr:
            problems.add(path, f"Invalid value: {k!r}: {kerr}")
        if verr:
            problems.add(path, f"Invalid value: {v!r}: {verr}")
        if not kerr and not verr:
            out[k] = v
    return out


def _group(api_version: str) -> str:
    group, _, _version = api_version.rpartition("/")
    return group


_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)


def _name_error(kind: str, name: str) -> str | None:
    """Why ``name`` is not a valid ``metadata.name`` for ``kind``, or None."""
    if kind == "Namespace":
        if len(name) > 63:
            return "must be no more than 63 characters"
        return None if _DNS1123_LABEL.fullmatch(name) else _LABEL_MSG
    if len(name) > 253:
        return "must be no more than 253 characters"
    if not _DNS1123_SUBDOMAIN.fullmatch(name):
        return _SUBDOMAIN_MSG
    if kind == "CronJob" and len(name) > 52:
        return "must be no more than 52 characters"
    return None


def _controller(meta: dict[str, Any], problems: Problems) -> tuple[str | None, str] | None:
    """The (kind, name) of the ``controller: true`` owner reference, if any; more than one is invalid."""
    found: list[tuple[str | None, str]] = []
    for i, ref in enumerate(_list(meta.get("ownerReferences"), "metadata.ownerReferences", problems)):
        if not isinstance(ref, dict):
            problems.add(f"metadata.ownerReferences[{i}]", "must be an object")
            continue
        ref_name = ref.get("name")
        ref_kind = ref.get("kind")
        if not isinstance(ref_name, str) or not ref_name:
            problems.add(f"metadata.ownerReferences[{i}].name", "Required value")
        elif ref.get("controller") is True:
            found.append((ref_kind if isinstance(ref_kind, str) and ref_kind else None, ref_name))
    if len(found) > 1:
        problems.add(
            "metadata.ownerReferences",
            f"Invalid value: {len(found)} controllers: Only one reference can have Controller set to true",
        )
    return found[0] if found else None


@dataclasses.dataclass(frozen=True, slots=True)
class _Object:
    """One document being added: what every kind's handler needs about it."""

    doc: Document
    kind: str
    ns: str
    name: str  # as shown in messages ("" when missing)
    meta: dict[str, Any]
    labels: dict[str, str]
    problems: Problems


class _Builder:
    def __init__(self) -> None:
        self.cluster = Cluster()
        self.problems: list[str] = []
        self.seen: dict[tuple[str, str, str], Source] = {}
        self.workload_pods: list[Pod] = []
        # (namespace, kind, name) -> the (kind, name) of its controller owner, when it has one
        self.controllers: dict[tuple[str, str, str], tuple[str | None, str] | None] = {}

    # -- documents -----------------------------------------------------------------------------
    def add(self, doc: Document) -> None:
        obj = doc.obj
        kind = obj.get("kind")
        if not isinstance(kind, str) or not kind:
            self.problems.append(f"{doc.source}: kind: Required value: kind must be set")
            return
        meta_raw = obj.get("metadata")
        meta = meta_raw if isinstance(meta_raw, dict) else {}
        name = meta.get("name")
        shown = name if isinstance(name, str) else ""
        api = obj.get("apiVersion")
        group = KIND_GROUPS.get(kind)
        if group is None or (isinstance(api, str) and _group(api) != group):
            what = f"{kind} ({api})" if group is not None else kind
            self.cluster.warnings.append(f"warning: {doc.source}: ignoring unsupported kind {what} {shown}".rstrip())
            return
        ns_raw = meta.get("namespace")
        namespace = "" if kind in CLUSTER_SCOPED else (ns_raw if isinstance(ns_raw, str) and ns_raw else "default")
        problems = Problems(f"{doc.source}: {kind} {namespace + '/' if namespace else ''}{shown}")
        if not isinstance(api, str) or not api:
            problems.add("apiVersion", "Required value: apiVersion must be set")
        if not isinstance(meta_raw, dict):
            problems.add("metadata", "Required value")
        if not isinstance(name, str) or not name:
            problems.add("metadata.name", "Required value: name or generateName is required")
        else:
            err = _name_error(kind, name)
            if err:
                problems.add("metadata.name", f"Invalid value: {name!r}: {err}")
        if (
            kind not in CLUSTER_SCOPED
            and ns_raw is not None
            and ns_raw != ""
            and (not isinstance(ns_raw, str) or len(ns_raw) > 63 or not _DNS1123_LABEL.fullmatch(ns_raw))
        ):
            problems.add("metadata.namespace", f"Invalid value: {ns_raw!r}: {_LABEL_MSG}")
        labels = _labels(meta.get("labels"), "metadata.labels", problems)
        key = (kind, namespace, shown)
        if not problems and key in self.seen:
            problems.add("metadata.name", f"Duplicate value: {shown!r}: already defined in {self.seen[key]}")
        elif not problems:
            self.seen[key] = doc.source
        # The spec is validated even when the metadata is not, so that every problem is reported at once.
        handler = {
            "Namespace": self._kind_Namespace,
            "Pod": self._kind_Pod,
            "NetworkPolicy": self._kind_NetworkPolicy,
            "AdminNetworkPolicy": self._kind_AdminNetworkPolicy,
            "BaselineAdminNetworkPolicy": self._kind_BaselineAdminNetworkPolicy,
        }.get(kind, self._workload)
        handler(_Object(doc, kind, namespace, shown, meta, labels, problems))
        self.problems.extend(problems.items)
        self.cluster.warnings.extend(problems.warnings)

    # -- kinds ---------------------------------------------------------------------------------
    def _kind_Namespace(self, o: _Object) -> None:
        name, labels = o.name, o.labels
        labels[NS_NAME_LABEL] = name
        annotations = o.meta.get("annotations")
        audit = isinstance(annotations, dict) and str(annotations.get(AUDIT_ANNOTATION, "")).lower() == "true"
        self.cluster.namespaces[name] = Namespace(name, labels, audit=audit)

    def _kind_Pod(self, o: _Object) -> None:
        doc, ns, name, meta, labels, problems = o.doc, o.ns, o.name, o.meta, o.labels, o.problems
        spec = _dict(doc.obj.get("spec"), "spec", problems)
        status = _dict(doc.obj.get("status"), "status", problems)
        controller = _controller(meta, problems)
        owner = controller[1] if controller is not None else None
        self.controllers[(ns, "Pod", name)] = controller
        ips: list[IPAddress] = []
        raw_ips: list[tuple[str, object]] = []
        for i, entry in enumerate(_list(status.get("podIPs"), "status.podIPs", problems)):
            if isinstance(entry, dict):
                raw_ips.append((f"status.podIPs[{i}].ip", entry.get("ip")))
            else:
                problems.add(f"status.podIPs[{i}]", "must be an object")
        if not raw_ips and status.get("podIP") is not None:
            raw_ips = [("status.podIP", status.get("podIP"))]
        for ip_path, ip in raw_ips:
            try:
                addr = ipaddress.ip_address(ip) if isinstance(ip, str) else None
            except ValueError:
                addr = None
            if addr is None:
                problems.add(
                    ip_path, f"Invalid value: {ip!r}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                )
            elif addr not in ips:
                ips.append(addr)
        node = spec.get("nodeName")
        self.cluster.namespace(ns)
        self.cluster.pods.append(
            Pod(
                ns,
                name,
                labels,
                self._container_ports(spec, "spec", problems),
                tuple(ips),
                "Pod",
                owner,
                node if isinstance(node, str) else None,
                doc.source,
            )
        )

    def _workload(self, o: _Object) -> None:
        doc, kind, ns, name, meta, problems = o.doc, o.kind, o.ns, o.name, o.meta, o.problems
        spec = _dict(doc.obj.get("spec"), "spec", problems)
        path = "spec.template"
        if kind == "CronJob":
            job = _dict(spec.get("jobTemplate"), "spec.jobTemplate", problems)
            spec = _dict(job.get("spec"), "spec.jobTemplate.spec", problems)
            path = "spec.jobTemplate.spec.template"
        if spec.get("template") is None:
            problems.add(path, "Required value")
        template = _dict(spec.get("template"), path, problems)
        tmeta = _dict(template.get("metadata"), f"{path}.metadata", problems)
        tspec = _dict(template.get("spec"), f"{path}.spec", problems)
        template_labels = _labels(tmeta.get("labels"), f"{path}.metadata.labels", problems)
        if kind in SELECTOR_REQUIRED:
            if spec.get("selector") is None:
                problems.add("spec.selector", "Required value")
            else:
                before = len(problems.items)
                sel = parse_selector(spec.get("selector"), "spec.selector", problems)
                if sel.is_empty and len(problems.items) == before:
                    problems.add("spec.selector", f"Invalid value: {{}}: empty selector is invalid for {kind.lower()}")
                elif len(problems.items) == before and not sel.matches(template_labels):
                    problems.add(
                        "spec.template.metadata.labels",
                        f"Invalid value: {template_labels!r}: `selector` does not match template `labels`",
                    )
        elif kind == "ReplicationController" and spec.get("selector") is not None:
            # A plain label map; when absent it defaults to the template's labels.
            before = len(problems.items)
            rc_selector = _labels(spec.get("selector"), "spec.selector", problems)
            if len(problems.items) == before and any(template_labels.get(k) != v for k, v in rc_selector.items()):
                problems.add(
                    "spec.template.metadata.labels",
                    f"Invalid value: {template_labels!r}: `selector` does not match template `labels`",
                )
        self.controllers[(ns, kind, name)] = _controller(meta, problems)
        self.cluster.namespace(ns)
        self.workload_pods.append(
            Pod(
                ns,
                name,
                template_labels,
                self._container_ports(tspec, f"{path}.spec", problems),
                (),
                kind,
                None,
                None,
                doc.source,
            )
        )

    def _container_ports(self, spec: dict[str, Any], path: str, problems: Problems) -> tuple[ContainerPort, ...]:
        out: list[ContainerPort] = []
        for field in ("initContainers", "containers"):
            for ci, c in enumerate(_list(spec.get(field), f"{path}.{field}", problems)):
                if not isinstance(c, dict):
                    problems.add(f"{path}.{field}[{ci}]", "must be an object")
                    continue
                names: set[str] = set()  # port names are unique within a container, as upstream checks
                for pi, p in enumerate(_list(c.get("ports"), f"{path}.{field}[{ci}].ports", problems)):
                    ppath = f"{path}.{field}[{ci}].ports[{pi}]"
                    if not isinstance(p, dict):
                        problems.add(ppath, "must be an object")
                        continue
                    number = _int(p.get("containerPort"))
                    if number is None or not 1 <= number <= 65535:
                        problems.add(
                            f"{ppath}.containerPort",
                            f"Invalid value: {p.get('containerPort')!r}: must be between 1 and 65535, inclusive",
                        )
                        continue
                    proto = _protocol(p.get("protocol"), f"{ppath}.protocol", problems)
                    pname = p.get("name")
                    if pname is not None:
                        err = port_name_error(pname)
                        if err:
                            problems.add(f"{ppath}.name", f"Invalid value: {pname!r}: {err}")
                            continue
                        if pname in names:
                            problems.add(f"{ppath}.name", f"Duplicate value: {pname!r}")
                            continue
                        names.add(pname)
                    out.append(ContainerPort(number, proto or "TCP", pname))
        return tuple(out)

    def _kind_NetworkPolicy(self, o: _Object) -> None:
        doc, ns, name, meta, problems = o.doc, o.ns, o.name, o.meta, o.problems
        spec = _dict(doc.obj.get("spec"), "spec", problems)
        _unknown(spec, "spec", ("podSelector", "policyTypes", "ingress", "egress"), problems)
        selector = parse_selector(spec.get("podSelector"), "spec.podSelector", problems)
        types = _list(spec.get("policyTypes"), "spec.policyTypes", problems)
        if len(types) > 2:
            problems.add("spec.policyTypes", f"Invalid value: {types!r}: may not specify more than two policyTypes")
        else:
            for i, t in enumerate(types):
                if t not in ("Ingress", "Egress"):
                    problems.add(
                        f"spec.policyTypes[{i}]",
                        f'Unsupported value: {t!r}: supported values: "Ingress", "Egress"',
                    )
        ingress = self._np_rules(spec, "ingress", "from", problems)
        egress = self._np_rules(spec, "egress", "to", problems)
        if types:
            ing_iso, eg_iso = "Ingress" in types, "Egress" in types
        else:
            ing_iso, eg_iso = True, bool(spec.get("egress"))
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        assert isinstance(annotations, dict)
        self.cluster.namespace(ns)
        self.cluster.policies.append(
            NetworkPolicy(
                ns,
                name,
                selector,
                ing_iso,
                eg_iso,
                ingress,
                egress,
                str(annotations.get(AUDIT_ANNOTATION, "")).lower() == "true",
                doc.source,
            )
        )

    def _np_rules(self, spec: dict[str, Any], direction: str, peer_field: str, problems: Problems) -> tuple[Rule, ...]:
        rules: list[Rule] = []
        for ri, raw in enumerate(_list(spec.get(direction), f"spec.{direction}", problems)):
            rpath = f"spec.{direction}[{ri}]"
            rule = _dict(raw, rpath, problems)
            _unknown(rule, rpath, (peer_field, "ports"), problems)
            peers: tuple[Peer, ...] | None = None
            if rule.get(peer_field) is not None:
                raw_peers = _list(rule.get(peer_field), f"{rpath}.{peer_field}", problems)
                parsed = [self._np_peer(p, f"{rpath}.{peer_field}[{pi}]", problems) for pi, p in enumerate(raw_peers)]
                peers = tuple(p for p in parsed if p is not None) if raw_peers else None
            ports: tuple[PortSpec, ...] | None = None
            if rule.get("ports") is not None:
                raw_ports = _list(rule.get("ports"), f"{rpath}.ports", problems)
                parsed_ports = [self._np_port(p, f"{rpath}.ports[{pi}]", problems) for pi, p in enumerate(raw_ports)]
                ports = tuple(p for p in parsed_ports if p is not None) if raw_ports else None
            rules.append(Rule(peers, ports))
        return tuple(rules)

    def _np_peer(self, raw: object, path: str, problems: Problems) -> Peer | None:
        peer = _dict(raw, path, problems)
        _unknown(peer, path, ("podSelector", "namespaceSelector", "ipBlock"), problems)
        pod_sel = (
            parse_selector(peer["podSelector"], f"{path}.podSelector", problems)
            if peer.get("podSelector") is not None
            else None
        )
        ns_sel = (
            parse_selector(peer["namespaceSelector"], f"{path}.namespaceSelector", problems)
            if peer.get("namespaceSelector") is not None
            else None
        )
        block = (
            self._ip_block(peer["ipBlock"], f"{path}.ipBlock", problems) if peer.get("ipBlock") is not None else None
        )
        if pod_sel is None and ns_sel is None and peer.get("ipBlock") is None:
            problems.add(path, "Required value: must specify a peer")
            return None
        if peer.get("ipBlock") is not None and (pod_sel is not None or ns_sel is not None):
            problems.add(path, "Forbidden: may not specify both ipBlock and another peer")
            return None
        if block is not None:
            return Peer(ip_block=block)
        return Peer(pod_sel, ns_sel) if pod_sel is not None or ns_sel is not None else None

    def _ip_block(self, raw: object, path: str, problems: Problems) -> IPBlock | None:
        block = _dict(raw, path, problems)
        _unknown(block, path, ("cidr", "except"), problems)
        cidr = _cidr(block.get("cidr"), f"{path}.cidr", problems, warn=True)
        excepts: list[IPNetwork] = []
        for ei, e in enumerate(_list(block.get("except"), f"{path}.except", problems)):
            net = _cidr(e, f"{path}.except[{ei}]", problems, warn=True)
            if net is None or cidr is None:
                continue
            # Upstream: the except network's address must lie inside cidr and its prefix be strictly longer.
            if net.version != cidr.version or net.network_address not in cidr or net.prefixlen <= cidr.prefixlen:
                problems.add(f"{path}.except[{ei}]", f"Invalid value: {e!r}: must be a strict subset of `cidr`")
                continue
            excepts.append(net)
        return IPBlock(cidr, tuple(excepts)) if cidr is not None else None

    def _np_port(self, raw: object, path: str, problems: Problems) -> PortSpec | None:
        port = _dict(raw, path, problems)
        _unknown(port, path, ("protocol", "port", "endPort"), problems)
        before = len(problems.items)
        proto = _protocol(port.get("protocol"), f"{path}.protocol", problems)
        value = port.get("port")
        end = port.get("endPort")
        number = _int(value)
        name: str | None = None
        if value is not None and number is None:
            # A string is a port name, even "80": the API server's IntOrString keeps it a string.
            err = port_name_error(value)
            if err:
                problems.add(f"{path}.port", f"Invalid value: {value!r}: {err}")
            else:
                name = str(value)
        if number is not None and not 1 <= number <= 65535:
            problems.add(f"{path}.port", f"Invalid value: {number}: must be between 1 and 65535, inclusive")
        end_num: int | None = None
        if end is not None:
            end_num = _int(end)
            if end_num is None:
                problems.add(f"{path}.endPort", f"Invalid value: {end!r}: must be an integer")
            elif value is None:
                problems.add(
                    f"{path}.endPort", f"Invalid value: {end_num}: may not be specified when `port` is not specified"
                )
            elif number is None:
                problems.add(
                    f"{path}.endPort", f"Invalid value: {end_num}: may not be specified when `port` is non-numeric"
                )
            else:
                if end_num < number:
                    problems.add(f"{path}.endPort", f"Invalid value: {end_num}: must be >= port ({number})")
                if not 1 <= end_num <= 65535:
                    problems.add(f"{path}.endPort", f"Invalid value: {end_num}: must be between 1 and 65535, inclusive")
        if len(problems.items) != before:
            return None
        return PortSpec(proto, number, end_num, name)

    # -- admin network policies ----------------------------------------------------------------
    def _kind_AdminNetworkPolicy(self, o: _Object, baseline: bool = False) -> None:
        doc, name, problems = o.doc, o.name, o.problems
        api = doc.obj.get("apiVersion")
        if isinstance(api, str) and api and api != ANP_API:
            problems.add(
                "apiVersion",
                f"Unsupported value: {doc.obj.get('apiVersion')!r}: supported values: {ANP_API!r}",
            )
        if doc.obj.get("spec") is None:
            problems.add("spec", "Required value")
        spec = _dict(doc.obj.get("spec"), "spec", problems)
        fields = ("subject", "ingress", "egress") if baseline else ("priority", "subject", "ingress", "egress")
        _unknown(spec, "spec", fields, problems)
        priority = 0
        if baseline:
            if name != "default":
                problems.add(
                    "metadata.name",
                    f"Invalid value: {name!r}: Only one baseline admin network policy with "
                    'metadata.name="default" can be created in the cluster',
                )
        else:
            raw_priority = spec.get("priority")
            pr = _int(raw_priority)
            if raw_priority is None:
                problems.add("spec.priority", "Required value")
            elif pr is None:
                problems.add("spec.priority", f"Invalid value: {raw_priority!r}: must be an integer")
            elif not 0 <= pr <= 1000:
                problems.add(
                    "spec.priority",
                    f"Invalid value: {pr}: should be less than or equal to 1000 and greater than or equal to 0",
                )
            else:
                priority = pr
        subject = self._admin_subject(spec.get("subject"), problems)
        actions: tuple[AdminAction, ...] = ("Allow", "Deny") if baseline else ("Allow", "Deny", "Pass")
        ingress = self._admin_rules(spec, "ingress", "from", actions, problems)
        egress = self._admin_rules(spec, "egress", "to", actions, problems)
        if problems or subject is None:
            return
        anp = AdminNetworkPolicy(name, priority, subject, ingress, egress, baseline, doc.source)
        if baseline:
            self.cluster.baseline = anp
        else:
            self.cluster.admin_policies.append(anp)

    def _kind_BaselineAdminNetworkPolicy(self, o: _Object) -> None:
        self._kind_AdminNetworkPolicy(o, baseline=True)

    def _admin_subject(self, raw: object, problems: Problems) -> AdminPeer | None:
        if raw is None:
            problems.add("spec.subject", "Required value")
            return None
        subj = _dict(raw, "spec.subject", problems)
        return self._admin_peer(subj, "spec.subject", ("namespaces", "pods"), problems)

    def _admin_peer(
        self, peer: dict[str, Any], path: str, allowed: tuple[str, ...], problems: Problems
    ) -> AdminPeer | None:
        _unknown(peer, path, ("namespaces", "pods", "nodes", "networks"), problems)
        forbidden = [
            k for k in ("namespaces", "pods", "nodes", "networks") if k not in allowed and peer.get(k) is not None
        ]
        for k in forbidden:
            problems.add(f"{path}.{k}", f"Forbidden: not allowed here (allowed: {', '.join(allowed)})")
        if forbidden:
            return None
        known = [k for k in allowed if peer.get(k) is not None]
        if len(known) != 1:
            problems.add(path, f"Invalid value: exactly one of {', '.join(allowed)} must be set")
            return None
        which = known[0]
        if which == "namespaces":
            return AdminPeer(parse_selector(peer["namespaces"], f"{path}.namespaces", problems))
        if which == "pods":
            pods = _dict(peer["pods"], f"{path}.pods", problems)
            _unknown(pods, f"{path}.pods", ("namespaceSelector", "podSelector"), problems)
            for req in ("namespaceSelector", "podSelector"):
                if pods.get(req) is None:
                    problems.add(f"{path}.pods.{req}", "Required value")
            return AdminPeer(
                parse_selector(pods.get("namespaceSelector"), f"{path}.pods.namespaceSelector", problems),
                parse_selector(pods.get("podSelector"), f"{path}.pods.podSelector", problems),
            )
        if which == "nodes":
            # No nodes are modelled offline: a nodes peer selects nothing.
            return AdminPeer(nodes=parse_selector(peer["nodes"], f"{path}.nodes", problems))
        nets: list[IPNetwork] = []
        raw_nets = _list(peer["networks"], f"{path}.networks", problems)
        if not 1 <= len(raw_nets) <= 25:
            problems.add(f"{path}.networks", "Invalid value: must have between 1 and 25 items")
        for ni, n in enumerate(raw_nets):
            net = _cidr(n, f"{path}.networks[{ni}]", problems)
            if net is not None:
                nets.append(net)
        return AdminPeer(networks=tuple(nets))

    def _admin_rules(
        self,
        spec: dict[str, Any],
        direction: str,
        peer_field: str,
        actions: tuple[AdminAction, ...],
        problems: Problems,
    ) -> tuple[AdminRule, ...]:
        rules: list[AdminRule] = []
        raw_rules = _list(spec.get(direction), f"spec.{direction}", problems)
        if len(raw_rules) > 100:
            problems.add(f"spec.{direction}", "Too many: must have at most 100 items")
        allowed = ("namespaces", "pods") if direction == "ingress" else ("namespaces", "pods", "nodes", "networks")
        for ri, raw in enumerate(raw_rules):
            rpath = f"spec.{direction}[{ri}]"
            rule = _dict(raw, rpath, problems)
            _unknown(rule, rpath, ("name", "action", peer_field, "ports"), problems)
            rname = rule.get("name")
            if rname is None:
                rname = ""
            elif not isinstance(rname, str) or len(rname) > 100:
                problems.add(f"{rpath}.name", "Invalid value: must be a string of at most 100 characters")
                rname = ""
            action = rule.get("action")
            if action is None:
                problems.add(f"{rpath}.action", "Required value")
            elif action not in actions:
                problems.add(
                    f"{rpath}.action",
                    f"Unsupported value: {action!r}: supported values: " + ", ".join(f'"{a}"' for a in actions),
                )
            raw_peers = _list(rule.get(peer_field), f"{rpath}.{peer_field}", problems)
            if not 1 <= len(raw_peers) <= 100:
                problems.add(f"{rpath}.{peer_field}", "Invalid value: must have between 1 and 100 items")
            peers = [
                self._admin_peer(
                    _dict(p, f"{rpath}.{peer_field}[{pi}]", problems),
                    f"{rpath}.{peer_field}[{pi}]",
                    allowed,
                    problems,
                )
                for pi, p in enumerate(raw_peers)
            ]
            ports: tuple[PortSpec, ...] | None = None
            if rule.get("ports") is not None:
                raw_ports = _list(rule.get("ports"), f"{rpath}.ports", problems)
                if isinstance(rule.get("ports"), list) and not 1 <= len(raw_ports) <= 100:
                    problems.add(f"{rpath}.ports", "Invalid value: must have between 1 and 100 items")
                ports = tuple(
                    p
                    for pi, x in enumerate(raw_ports)
                    if (p := self._admin_port(x, f"{rpath}.ports[{pi}]", problems)) is not None
                )
            if action not in actions:
                continue
            assert action in ("Allow", "Deny", "Pass")
            rules.append(AdminRule(rname, action, tuple(p for p in peers if p is not None), ports))
        return tuple(rules)

    def _admin_port(self, raw: object, path: str, problems: Problems) -> PortSpec | None:
        port = _dict(raw, path, problems)
        _unknown(port, path, ("portNumber", "namedPort", "portRange"), problems)
        present = [k for k in ("portNumber", "namedPort", "portRange") if port.get(k) is not None]
        if len(present) != 1:
            problems.add(path, "Invalid value: exactly one of portNumber, namedPort, portRange must be set")
            return None
        which = present[0]
        if which == "namedPort":
            err = port_name_error(port["namedPort"])
            if err:
                problems.add(f"{path}.namedPort", f"Invalid value: {port['namedPort']!r}: {err}")
                return None
            return PortSpec(None, name=port["namedPort"])
        body = _dict(port[which], f"{path}.{which}", problems)
        _unknown(
            body,
            f"{path}.{which}",
            ("protocol", "port") if which == "portNumber" else ("protocol", "start", "end"),
            problems,
        )
        proto = _protocol(body.get("protocol"), f"{path}.{which}.protocol", problems)
        if which == "portNumber":
            number = _int(body.get("port"))
            if number is None or not 1 <= number <= 65535:
                problems.add(
                    f"{path}.portNumber.port",
                    f"Invalid value: {body.get('port')!r}: must be between 1 and 65535, inclusive",
                )
                return None
            return PortSpec(proto, number)
        start, end = _int(body.get("start")), _int(body.get("end"))
        ok = True
        for fname, v in (("start", start), ("end", end)):
            if v is None or not 1 <= v <= 65535:
                problems.add(
                    f"{path}.portRange.{fname}",
                    f"Invalid value: {body.get(fname)!r}: must be between 1 and 65535, inclusive",
                )
                ok = False
        if ok and start is not None and end is not None and start >= end:
            problems.add(f"{path}.portRange", f"Invalid value: Start port {start} must be less than End port {end}")
            ok = False
        return PortSpec(proto, start, end) if ok else None

    # -- finish --------------------------------------------------------------------------------
    def finish(self) -> Cluster:
        cluster = self.cluster
        workloads = {(w.namespace, w.kind, w.name): w for w in self.workload_pods}
        by_name: dict[tuple[str, str], list[Pod]] = {}
        for w in self.workload_pods:
            by_name.setdefault((w.namespace, w.name), []).append(w)

        def owner_chain(ns: str, ref: tuple[str | None, str] | None) -> list[Pod]:
            """The workloads present in the manifests that control ``ref``, innermost first."""
            chain: list[Pod] = []
            while ref is not None:
                kind, name = ref
                if kind is not None:
                    found = workloads.get((ns, kind, name))
                else:  # an owner reference without kind: match by name alone
                    candidates = by_name.get((ns, name), [])
                    found = candidates[0] if len(candidates) == 1 else None
                if found is None or found in chain:
                    break
                chain.append(found)
                ref = self.controllers.get((ns, found.kind, found.name))
            return chain

        # A workload whose pods are present is not an endpoint of its own: its pods are, and they are also
        # named by the outermost present owner (the Deployment of their ReplicaSet, the CronJob of their Job).
        standing_for_pods: set[tuple[str, str, str]] = set()
        for i, pod in enumerate(cluster.pods):
            chain = owner_chain(pod.namespace, self.controllers.get((pod.namespace, "Pod", pod.name)))
            standing_for_pods.update((w.namespace, w.kind, w.name) for w in chain)
            if chain and chain[-1].name != pod.owner:
                cluster.pods[i] = dataclasses.replace(pod, owner=chain[-1].name)
        for w in self.workload_pods:
            key = (w.namespace, w.kind, w.name)
            # A workload controlled by another present workload (a ReplicaSet of a Deployment) is stood for by it.
            if key not in standing_for_pods and not owner_chain(w.namespace, self.controllers.get(key)):
                cluster.pods.append(w)
        finish_cluster(cluster)
        return cluster


def finish_cluster(cluster: Cluster) -> None:
    """The last step of building a cluster: AdminNetworkPolicies in evaluation order (with a warning for
    shared priorities), and every pod's namespace present (with only its name label when not defined)."""
    by_priority: dict[int, list[str]] = {}
    for anp in cluster.admin_policies:
        by_priority.setdefault(anp.priority, []).append(anp.name)
    for prio, names in sorted(by_priority.items()):
        if len(names) > 1:
            cluster.warnings.append(
                f"warning: AdminNetworkPolicies {', '.join(sorted(names))} share priority {prio}: "
                "their order is undefined (podnet orders them by name)"
            )
    cluster.admin_policies.sort(key=lambda a: (a.priority, a.name))
    for pod in cluster.pods:
        cluster.namespace(pod.namespace)


def build_cluster(docs: list[Document]) -> Cluster:
    """Validate every document and build the cluster; raises ManifestError listing every problem."""
    builder = _Builder()
    for doc in docs:
        builder.add(doc)
    if builder.problems:
        raise ManifestError(builder.problems)
    return builder.finish()


def load_cluster(paths: list[str], stdin: IO[str] | None = None) -> Cluster:
    """Read and validate manifests from files, directories or ``-`` (read from ``stdin``, default sys.stdin)."""
    from podnet.k8s.manifests import load_documents

    return build_cluster(load_documents(paths, stdin))
