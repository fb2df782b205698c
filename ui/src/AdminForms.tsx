// Forms for AdminNetworkPolicy and BaselineAdminNetworkPolicy: the subject (with the ANP's priority and its
// rules' list), a peer (namespaces, pods in namespaces, and for egress networks or nodes), a rule (name,
// action, ports as portNumber, portRange or namedPort). Like the NetworkPolicy forms (Forms.tsx), every
// change is written into the YAML at once and only the edited document is rewritten.
import { useState } from "preact/hooks";
import type { Selection } from "./Graph";
import { asObj, commaList, Expressions, numberOrText, withLabels, type FormProps, type Obj } from "./formkit";
import { appendValue, deleteValue, getValue, labelsText, parsePath, setValue, type Path } from "./yamldoc";

type PeerKind = "namespaces" | "pods" | "networks" | "nodes";

const KIND_TITLE: Record<PeerKind, string> = {
  namespaces: "namespaces (all their pods)",
  pods: "pods in namespaces",
  networks: "networks (CIDRs)",
  nodes: "nodes",
};

interface PeerText {
  kind: PeerKind;
  ns: string;
  pods: string;
  networks: string;
  nodes: string;
}

function peerKind(peer: Obj): PeerKind {
  if (peer.pods) return "pods";
  if (peer.networks) return "networks";
  if (peer.nodes) return "nodes";
  return "namespaces";
}

function nsSelector(peer: Obj): unknown {
  return peer.namespaces ?? asObj(peer.pods).namespaceSelector;
}

function readPeer(peer: Obj): PeerText {
  const nets = peer.networks;
  return {
    kind: peerKind(peer),
    ns: labelsText(asObj(nsSelector(peer)).matchLabels),
    pods: labelsText(asObj(asObj(peer.pods).podSelector).matchLabels),
    networks: Array.isArray(nets) && nets.length ? nets.join(", ") : "0.0.0.0/0",
    nodes: labelsText(asObj(peer.nodes).matchLabels),
  };
}

/** The YAML of a subject or peer as the form shows it; matchExpressions of the selectors kept. */
function peerYaml(old: Obj, t: PeerText): Obj {
  switch (t.kind) {
    case "namespaces":
      return { namespaces: withLabels(nsSelector(old), t.ns) };
    case "pods":
      return {
        pods: {
          namespaceSelector: withLabels(nsSelector(old), t.ns),
          podSelector: withLabels(asObj(old.pods).podSelector, t.pods),
        },
      };
    case "networks":
      return { networks: commaList(t.networks) };
    case "nodes":
      return { nodes: withLabels(old.nodes, t.nodes) };
  }
}

/** Kind radios and the fields of one admin peer or subject; `id` prefixes the test ids ("subject", "peer"). */
function PeerFields(props: { id: string; kinds: PeerKind[]; old: Obj; onChange: (yaml: Obj) => void }) {
  const { id, old } = props;
  const [t, setT] = useState<PeerText>(readPeer(old));
  const update = (change: Partial<PeerText>) => {
    const next = { ...t, ...change };
    setT(next);
    props.onChange(peerYaml(old, next));
  };
  const oldPods = asObj(old.pods).podSelector;
  return (
    <>
      <fieldset>
        {props.kinds.map((k) => (
          <label class="inline">
            <input
              type="radio"
              name={`${id}-kind`}
              data-testid={`${id}-kind-${k}`}
              checked={t.kind === k}
              onChange={() => update({ kind: k })}
            />
            {KIND_TITLE[k]}
          </label>
        ))}
      </fieldset>
      {(t.kind === "namespaces" || t.kind === "pods") && (
        <label>
          {t.kind === "namespaces" ? "namespaces" : "pods.namespaceSelector"} labels{" "}
          <span class="hint">(key=value, …; empty: every namespace)</span>
          <input data-testid={`${id}-ns-labels`} value={t.ns} onInput={(e) => update({ ns: e.currentTarget.value })} />
          <Expressions selector={nsSelector(old)} />
        </label>
      )}
      {t.kind === "pods" && (
        <label>
          pods.podSelector labels <span class="hint">(empty: every pod of those namespaces)</span>
          <input
            data-testid={`${id}-pod-labels`}
            value={t.pods}
            onInput={(e) => update({ pods: e.currentTarget.value })}
          />
          <Expressions selector={oldPods} />
        </label>
      )}
      {t.kind === "networks" && (
        <label>
          networks <span class="hint">(CIDRs, comma separated; 1 to 25)</span>
          <input
            data-testid={`${id}-networks`}
            value={t.networks}
            onInput={(e) => update({ networks: e.currentTarget.value })}
          />
        </label>
      )}
      {t.kind === "nodes" && (
        <label>
          nodes labels <span class="hint">(empty: every node)</span>
          <input
            data-testid={`${id}-node-labels`}
            value={t.nodes}
            onInput={(e) => update({ nodes: e.currentTarget.value })}
          />
          <Expressions selector={old.nodes} />
          <span class="hint">podnet models no nodes offline: a nodes peer selects nothing in the what-if matrix.</span>
        </label>
      )}
    </>
  );
}

function AddAdminRule(p: FormProps & { direction: "ingress" | "egress" }) {
  const field = p.direction === "ingress" ? "from" : "to";
  const listPath = [...p.prefix, "spec", p.direction];
  return (
    <button
      data-testid={`add-${p.direction}-rule`}
      onClick={() => {
        const list = getValue(p.text, p.doc, listPath);
        const n = Array.isArray(list) ? list.length : 0;
        const [text, index] = appendValue(p.text, p.doc, listPath, {
          name: `${p.direction}-rule-${n}`,
          action: "Allow",
          [field]: [{ namespaces: {} }],
          ports: [{ portNumber: { protocol: "TCP", port: 80 } }],
        });
        p.onText(text, { type: "edge", path: `spec.${p.direction}[${index}]`, direction: p.direction, rule: index });
      }}
    >
      + {p.direction} rule
    </button>
  );
}

export function AdminSubjectForm(p: FormProps) {
  const isAnp = p.graph.kind === "AdminNetworkPolicy";
  const spec: Path = [...p.prefix, "spec"];
  const subject = asObj(getValue(p.text, p.doc, [...spec, "subject"]));
  const [priority, setPriority] = useState(String(getValue(p.text, p.doc, [...spec, "priority"]) ?? ""));
  return (
    <div class="form" data-testid="subject-form">
      <h3>
        Subject of {p.graph.kind} {p.graph.name}: the pods its rules apply to
      </h3>
      <PeerFields
        id="subject"
        kinds={["namespaces", "pods"]}
        old={subject}
        onChange={(yaml) => p.onText(setValue(p.text, p.doc, [...spec, "subject"], yaml))}
      />
      {isAnp && (
        <label>
          priority <span class="hint">(0 to 1000; the lowest number is evaluated first)</span>
          <input
            data-testid="priority"
            inputMode="numeric"
            value={priority}
            onInput={(e) => {
              const v = e.currentTarget.value;
              setPriority(v);
              p.onText(setValue(p.text, p.doc, [...spec, "priority"], v.trim() ? numberOrText(v) : undefined));
            }}
          />
        </label>
      )}
      <div class="buttons">
        <AddAdminRule {...p} direction="ingress" />
        <AddAdminRule {...p} direction="egress" />
      </div>
    </div>
  );
}

export function AdminPeerForm(p: FormProps & { selection: Extract<Selection, { type: "peer" }> }) {
  const { direction, rule } = p.selection;
  const path = [...p.prefix, ...parsePath(p.selection.path)];
  const field = direction === "ingress" ? "from" : "to";
  const rulePath = [...p.prefix, "spec", direction, rule];
  const peer = asObj(getValue(p.text, p.doc, path));
  const kinds: PeerKind[] = direction === "ingress" ? ["namespaces", "pods"] : ["namespaces", "pods", "networks", "nodes"];
  return (
    <div class="form" data-testid="peer-form">
      <h3>
        {direction === "ingress" ? "Source" : "Destination"} peer <code>{p.selection.path}</code>
      </h3>
      <PeerFields id="peer" kinds={kinds} old={peer} onChange={(yaml) => p.onText(setValue(p.text, p.doc, path, yaml))} />
      {direction === "ingress" && <p class="hint">Ingress peers are namespaces or pods; networks and nodes are egress only.</p>}
      <div class="buttons">
        <button
          data-testid="delete-peer"
          onClick={() => {
            const list = getValue(p.text, p.doc, [...rulePath, field]);
            const last = Array.isArray(list) && list.length <= 1; // a rule needs a peer: delete the rule
            p.onText(deleteValue(p.text, p.doc, last ? rulePath : path), null);
          }}
        >
          Delete peer
        </button>
        <button
          data-testid="add-peer"
          onClick={() => {
            const [text, index] = appendValue(p.text, p.doc, [...rulePath, field], { namespaces: {} });
            p.onText(text, {
              type: "peer",
              path: `spec.${direction}[${rule}].${field}[${index}]`,
              direction,
              rule,
              scope: "cluster",
            });
          }}
        >
          + peer in this rule
        </button>
      </div>
    </div>
  );
}

type PortType = "portNumber" | "portRange" | "namedPort";

interface AdminPortRow {
  type: PortType;
  protocol: string;
  port: string; // the port, the range's start, or the name
  end: string;
}

function readPort(raw: unknown): AdminPortRow {
  const o = asObj(raw);
  if (o.namedPort !== undefined) return { type: "namedPort", protocol: "TCP", port: String(o.namedPort), end: "" };
  if (o.portRange !== undefined) {
    const r = asObj(o.portRange);
    return { type: "portRange", protocol: String(r.protocol ?? "TCP"), port: String(r.start ?? ""), end: String(r.end ?? "") };
  }
  const n = asObj(o.portNumber);
  return { type: "portNumber", protocol: String(n.protocol ?? "TCP"), port: String(n.port ?? ""), end: "" };
}

function portYaml(r: AdminPortRow): Obj {
  if (r.type === "namedPort") return { namedPort: r.port.trim() };
  if (r.type === "portRange") {
    return { portRange: { protocol: r.protocol, start: numberOrText(r.port), end: numberOrText(r.end) } };
  }
  return { portNumber: { protocol: r.protocol, port: numberOrText(r.port) } };
}

const PORT_HINT: Record<PortType, string> = { portNumber: "port", portRange: "start", namedPort: "port name" };

export function AdminRuleForm(p: FormProps & { selection: Extract<Selection, { type: "edge" }> }) {
  const rulePath = [...p.prefix, ...parsePath(p.selection.path)];
  const rule = asObj(getValue(p.text, p.doc, rulePath));
  const raw = Array.isArray(rule.ports) ? (rule.ports as unknown[]) : [];
  const [rows, setRows] = useState<AdminPortRow[]>(raw.map(readPort));
  const [name, setName] = useState(String(rule.name ?? ""));
  const actions = p.graph.kind === "AdminNetworkPolicy" ? ["Allow", "Deny", "Pass"] : ["Allow", "Deny"];
  const action = String(rule.action ?? "");
  const write = (next: AdminPortRow[]) => {
    setRows(next);
    const path = [...rulePath, "ports"];
    p.onText(next.length ? setValue(p.text, p.doc, path, next.map(portYaml)) : deleteValue(p.text, p.doc, path));
  };
  const edit = (i: number, change: Partial<AdminPortRow>) =>
    write(rows.map((r, j) => (j === i ? { ...r, ...change } : r)));
  return (
    <div class="form" data-testid="rule-form">
      <h3>
        Rule <code>{p.selection.path}</code> of {p.graph.kind} {p.graph.name}
      </h3>
      <label>
        name
        <input
          data-testid="rule-name"
          value={name}
          onInput={(e) => {
            const v = e.currentTarget.value;
            setName(v);
            p.onText(setValue(p.text, p.doc, [...rulePath, "name"], v ? v : undefined));
          }}
        />
      </label>
      <label>
        action{" "}
        <select
          data-testid="rule-action"
          value={action}
          onChange={(e) => p.onText(setValue(p.text, p.doc, [...rulePath, "action"], e.currentTarget.value))}
        >
          {actions.map((a) => (
            <option value={a}>{a}</option>
          ))}
          {!actions.includes(action) && <option value={action}>{action}</option>}
        </select>
      </label>
      <h4>Ports</h4>
      {rows.length === 0 && <p class="hint">No ports listed: the rule matches every port and protocol.</p>}
      <table class="ports">
        {rows.map((r, i) => (
          <tr>
            <td>
              <select
                data-testid={`port-type-${i}`}
                value={r.type}
                onChange={(e) => edit(i, { type: e.currentTarget.value as PortType })}
              >
                <option value="portNumber">portNumber</option>
                <option value="portRange">portRange</option>
                <option value="namedPort">namedPort</option>
              </select>
            </td>
            <td>
              {r.type !== "namedPort" && (
                <select
                  data-testid={`port-protocol-${i}`}
                  value={r.protocol}
                  onChange={(e) => edit(i, { protocol: e.currentTarget.value })}
                >
                  {["TCP", "UDP", "SCTP"].map((x) => (
                    <option value={x}>{x}</option>
                  ))}
                  {!["TCP", "UDP", "SCTP"].includes(r.protocol) && <option value={r.protocol}>{r.protocol}</option>}
                </select>
              )}
            </td>
            <td>
              <input
                data-testid={`port-${i}`}
                placeholder={PORT_HINT[r.type]}
                value={r.port}
                onInput={(e) => edit(i, { port: e.currentTarget.value })}
              />
            </td>
            <td>
              {r.type === "portRange" && (
                <input
                  data-testid={`endport-${i}`}
                  placeholder="end"
                  value={r.end}
                  onInput={(e) => edit(i, { end: e.currentTarget.value })}
                />
              )}
            </td>
            <td>
              <button data-testid={`remove-port-${i}`} onClick={() => write(rows.filter((_, j) => j !== i))}>
                ✕
              </button>
            </td>
          </tr>
        ))}
      </table>
      <div class="buttons">
        <button
          data-testid="add-port"
          onClick={() => write([...rows, { type: "portNumber", protocol: "TCP", port: "", end: "" }])}
        >
          + port
        </button>
        <button data-testid="delete-rule" onClick={() => p.onText(deleteValue(p.text, p.doc, rulePath), null)}>
          Delete rule
        </button>
      </div>
    </div>
  );
}
