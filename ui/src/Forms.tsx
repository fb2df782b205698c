// Forms for the box or edge selected in the graph. Each change is written straight into the YAML text
// (only the edited document is rewritten); the analyzer then redraws the graph and recomputes the matrix.
import { useState } from "preact/hooks";
import { AdminPeerForm, AdminRuleForm, AdminSubjectForm } from "./AdminForms";
import type { Selection } from "./Graph";
import { asObj, commaList, Expressions, numberOrText, withLabels, type FormProps, type Obj } from "./formkit";
import { appendValue, deleteValue, getValue, labelsText, parsePath, setValue, type Path } from "./yamldoc";

export type { FormProps } from "./formkit";

function SubjectForm(p: FormProps) {
  const at = (path: Path) => getValue(p.text, p.doc, [...p.prefix, ...path]);
  const write = (path: Path, value: unknown) => p.onText(setValue(p.text, p.doc, [...p.prefix, ...path], value));
  const selector = at(["spec", "podSelector"]);
  const types = (at(["spec", "policyTypes"]) as string[] | undefined) ?? [];
  const setType = (t: string, on: boolean) => {
    const now = new Set(types.length ? types : ["Ingress"]);
    if (on) now.add(t);
    else now.delete(t);
    write(["spec", "policyTypes"], ["Ingress", "Egress"].filter((x) => now.has(x)));
  };
  return (
    <div class="form" data-testid="subject-form">
      <h3>Pods the policy selects (namespace {p.graph.namespace})</h3>
      <label>
        podSelector labels <span class="hint">(key=value, …; empty: every pod of the namespace)</span>
        <input
          data-testid="subject-labels"
          defaultValue={labelsText(asObj(selector).matchLabels)}
          onInput={(e) => write(["spec", "podSelector"], withLabels(selector, e.currentTarget.value))}
        />
      </label>
      <Expressions selector={selector} />
      <fieldset>
        <legend>policyTypes {types.length ? "" : "(not set: Ingress, plus Egress when egress rules exist)"}</legend>
        {["Ingress", "Egress"].map((t) => (
          <label class="inline">
            <input
              type="checkbox"
              data-testid={`type-${t}`}
              checked={types.length ? types.includes(t) : t === "Ingress" || p.graph.isolation.egress}
              onChange={(e) => setType(t, e.currentTarget.checked)}
            />
            {t}
          </label>
        ))}
      </fieldset>
      <div class="buttons">
        <AddRule {...p} direction="ingress" />
        <AddRule {...p} direction="egress" />
      </div>
    </div>
  );
}

function AddRule(p: FormProps & { direction: "ingress" | "egress" }) {
  const field = p.direction === "ingress" ? "from" : "to";
  return (
    <button
      data-testid={`add-${p.direction}-rule`}
      onClick={() => {
        const [text, index] = appendValue(p.text, p.doc, [...p.prefix, "spec", p.direction], {
          [field]: [{ podSelector: {} }],
          ports: [{ protocol: "TCP", port: 80 }],
        });
        p.onText(text, { type: "edge", path: `spec.${p.direction}[${index}]`, direction: p.direction, rule: index });
      }}
    >
      + {p.direction} rule
    </button>
  );
}

type PeerKind = "pods" | "namespaces" | "cidr";

function PeerForm(p: FormProps & { selection: Extract<Selection, { type: "peer" }> }) {
  const path = [...p.prefix, ...parsePath(p.selection.path)];
  const peer = asObj(getValue(p.text, p.doc, path));
  const initial: PeerKind = peer.ipBlock ? "cidr" : peer.namespaceSelector ? "namespaces" : "pods";
  const [kind, setKind] = useState<PeerKind>(initial);
  const field = p.selection.direction === "ingress" ? "from" : "to";
  const rulePath = [...p.prefix, "spec", p.selection.direction, p.selection.rule];
  const block = asObj(peer.ipBlock);
  const [pods, setPods] = useState(labelsText(asObj(peer.podSelector).matchLabels));
  const [nss, setNss] = useState(labelsText(asObj(peer.namespaceSelector).matchLabels));
  const [cidr, setCidr] = useState(String(block.cidr ?? "0.0.0.0/0"));
  const [except, setExcept] = useState(Array.isArray(block.except) ? block.except.join(", ") : "");
  if (p.selection.scope === "any") {
    return (
      <div class="form" data-testid="peer-form">
        <h3>Every {p.selection.direction === "ingress" ? "source" : "destination"}</h3>
        <p>
          This rule has no <code>{field}</code>: it admits every peer, in and outside the cluster.
        </p>
        <button
          data-testid="restrict-peers"
          onClick={() =>
            p.onText(setValue(p.text, p.doc, [...rulePath, field], [{ podSelector: {} }]), {
              type: "peer",
              path: `spec.${p.selection.direction}[${p.selection.rule}].${field}[0]`,
              direction: p.selection.direction,
              rule: p.selection.rule,
              scope: "namespace",
            })
          }
        >
          Restrict to pods of this namespace
        </button>
      </div>
    );
  }
  const write = (next: Obj) => p.onText(setValue(p.text, p.doc, path, next));
  const form = (k: PeerKind, podText: string, nsText: string, cidr: string, except: string): Obj => {
    if (k === "cidr") {
      const ex = commaList(except);
      return { ipBlock: ex.length ? { cidr, except: ex } : { cidr } };
    }
    if (k === "pods") return { podSelector: withLabels(peer.podSelector, podText) };
    const out: Obj = { namespaceSelector: withLabels(peer.namespaceSelector, nsText) };
    if (podText.trim() || asObj(peer.podSelector).matchExpressions)
      out.podSelector = withLabels(peer.podSelector, podText);
    return out;
  };
  const update = (k: PeerKind, a: string, b: string, c: string, d: string) => {
    setKind(k);
    setPods(a);
    setNss(b);
    setCidr(c);
    setExcept(d);
    write(form(k, a, b, c, d));
  };
  return (
    <div class="form" data-testid="peer-form">
      <h3>
        {p.selection.direction === "ingress" ? "Source" : "Destination"} peer <code>{p.selection.path}</code>
      </h3>
      <fieldset>
        {(
          [
            ["pods", "pods in this namespace"],
            ["namespaces", "pods in other namespaces"],
            ["cidr", "addresses (CIDR)"],
          ] as [PeerKind, string][]
        ).map(([k, title]) => (
          <label class="inline">
            <input
              type="radio"
              name="peer-kind"
              data-testid={`peer-kind-${k}`}
              checked={kind === k}
              onChange={() => update(k, pods, nss, cidr, except)}
            />
            {title}
          </label>
        ))}
      </fieldset>
      {kind === "namespaces" && (
        <label>
          namespaceSelector labels <span class="hint">(empty: every namespace)</span>
          <input
            data-testid="peer-ns-labels"
            value={nss}
            onInput={(e) => update(kind, pods, e.currentTarget.value, cidr, except)}
          />
          <Expressions selector={peer.namespaceSelector} />
        </label>
      )}
      {kind !== "cidr" && (
        <label>
          podSelector labels <span class="hint">(empty: every pod)</span>
          <input
            data-testid="peer-pod-labels"
            value={pods}
            onInput={(e) => update(kind, e.currentTarget.value, nss, cidr, except)}
          />
          <Expressions selector={peer.podSelector} />
        </label>
      )}
      {kind === "cidr" && (
        <>
          <label>
            cidr
            <input data-testid="peer-cidr" value={cidr} onInput={(e) => update(kind, pods, nss, e.currentTarget.value, except)} />
          </label>
          <label>
            except <span class="hint">(comma separated)</span>
            <input
              data-testid="peer-except"
              value={except}
              onInput={(e) => update(kind, pods, nss, cidr, e.currentTarget.value)}
            />
          </label>
        </>
      )}
      <div class="buttons">
        <button
          data-testid="delete-peer"
          onClick={() => {
            const list = getValue(p.text, p.doc, [...rulePath, field]);
            const last = Array.isArray(list) && list.length <= 1;
            p.onText(deleteValue(p.text, p.doc, last ? rulePath : path), null);
          }}
        >
          Delete peer
        </button>
        <button
          data-testid="add-peer"
          onClick={() => {
            const [text, index] = appendValue(p.text, p.doc, [...rulePath, field], { podSelector: {} });
            p.onText(text, {
              type: "peer",
              path: `spec.${p.selection.direction}[${p.selection.rule}].${field}[${index}]`,
              direction: p.selection.direction,
              rule: p.selection.rule,
              scope: "namespace",
            });
          }}
        >
          + peer in this rule
        </button>
      </div>
    </div>
  );
}

interface PortRow {
  protocol: string;
  port: string;
  endPort: string;
}

function RuleForm(p: FormProps & { selection: Extract<Selection, { type: "edge" }> }) {
  const rulePath = [...p.prefix, ...parsePath(p.selection.path)];
  const rule = asObj(getValue(p.text, p.doc, rulePath));
  const raw = Array.isArray(rule.ports) ? (rule.ports as unknown[]) : [];
  const [rows, setRows] = useState<PortRow[]>(
    raw.map((r) => {
      const o = asObj(r);
      return {
        protocol: String(o.protocol ?? "TCP"),
        port: String(o.port ?? ""),
        endPort: o.endPort === undefined ? "" : String(o.endPort),
      };
    }),
  );
  const toYaml = (r: PortRow): Obj => {
    const out: Obj = { protocol: r.protocol };
    if (r.port.trim()) out.port = numberOrText(r.port);
    if (r.endPort.trim()) out.endPort = numberOrText(r.endPort);
    return out;
  };
  const write = (next: PortRow[]) => {
    setRows(next);
    const path = [...rulePath, "ports"];
    p.onText(next.length ? setValue(p.text, p.doc, path, next.map(toYaml)) : deleteValue(p.text, p.doc, path));
  };
  const edit = (i: number, change: Partial<PortRow>) => write(rows.map((r, j) => (j === i ? { ...r, ...change } : r)));
  return (
    <div class="form" data-testid="rule-form">
      <h3>
        Ports of rule <code>{p.selection.path}</code>
      </h3>
      {rows.length === 0 && <p class="hint">No ports listed: the rule allows every port and protocol.</p>}
      <table class="ports">
        {rows.map((r, i) => (
          <tr>
            <td>
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
            </td>
            <td>
              <input
                data-testid={`port-${i}`}
                placeholder="port or name"
                value={r.port}
                onInput={(e) => edit(i, { port: e.currentTarget.value })}
              />
            </td>
            <td>
              <input
                data-testid={`endport-${i}`}
                placeholder="endPort"
                value={r.endPort}
                onInput={(e) => edit(i, { endPort: e.currentTarget.value })}
              />
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
        <button data-testid="add-port" onClick={() => write([...rows, { protocol: "TCP", port: "", endPort: "" }])}>
          + port
        </button>
        <button
          data-testid="delete-rule"
          onClick={() => p.onText(deleteValue(p.text, p.doc, rulePath), null)}
        >
          Delete rule
        </button>
      </div>
    </div>
  );
}

export function EditForm(p: FormProps) {
  const s = p.selection;
  if (p.graph.kind !== "NetworkPolicy") {
    if (s.type === "subject") return <AdminSubjectForm {...p} />;
    if (s.type === "peer") return <AdminPeerForm {...p} selection={s} />;
    return <AdminRuleForm {...p} selection={s} />;
  }
  if (s.type === "subject") return <SubjectForm {...p} />;
  if (s.type === "peer") return <PeerForm {...p} selection={s} />;
  return <RuleForm {...p} selection={s} />;
}
