// `podnet policy explain` for one matrix cell: both sides' rules in order, which matched and which decided.
import { useState } from "preact/hooks";
import type { Explanation } from "./types";

const RULE = /^(?:NetworkPolicy|AdminNetworkPolicy|BaselineAdminNetworkPolicy) (\S+) (ingress|egress)\[(\d+)\]/;

/** A rule named by explain, e.g. "NetworkPolicy web/frontend egress[0]": a link that opens it in the editor. */
function RuleName(props: { rule: string; onRule: (ref: string, direction: "ingress" | "egress", index: number) => void }) {
  const m = RULE.exec(props.rule);
  if (!m) return <code>{props.rule}</code>;
  return (
    <a
      href="#"
      data-testid="explain-rule"
      title="open this rule in the editor"
      onClick={(e) => {
        e.preventDefault();
        props.onRule(m[1], m[2] as "ingress" | "egress", Number(m[3]));
      }}
    >
      <code>{props.rule}</code>
    </a>
  );
}

export function ExplainView(props: {
  result: Explanation | null;
  error: string | null;
  onAsk: (protocol: string, port: string) => void;
  onRule: (ref: string, direction: "ingress" | "egress", index: number) => void;
}) {
  const r = props.result;
  const [protocol, setProtocol] = useState(r?.protocol ?? "TCP");
  const [port, setPort] = useState(r ? String(r.port) : "");
  return (
    <div class="explain" data-testid="explain">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          props.onAsk(protocol, port);
        }}
      >
        <strong>
          {r ? `${r.from} → ${r.to}` : ""}
        </strong>{" "}
        <select data-testid="explain-protocol" value={protocol} onChange={(e) => setProtocol(e.currentTarget.value)}>
          {["TCP", "UDP", "SCTP"].map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
        <input data-testid="explain-port" size={8} value={port} onInput={(e) => setPort(e.currentTarget.value)} />
        <button type="submit" data-testid="explain-go">
          Explain
        </button>
      </form>
      {props.error && <p class="error" data-testid="explain-error">{props.error}</p>}
      {r && (
        <>
          <p class={`verdict ${r.verdict}`} data-testid="explain-verdict">
            {r.verdict.toUpperCase()}: {r.from} → {r.to} {r.protocol}/{r.port}
          </p>
          {r.sides.map((s) => (
            <div class="side">
              <h4>
                {s.direction === "egress" ? "egress from" : "ingress to"} {s.pod}: {s.verdict} ({s.decided_by})
              </h4>
              <ol>
                {s.steps.map((st) => (
                  <li class={st.outcome.startsWith("matched") ? "matched" : st.outcome.startsWith("not") ? "skipped" : ""}>
                    <RuleName rule={st.rule} onRule={props.onRule} /> [{st.action}]: {st.outcome}
                    <div class="hint">
                      peers: {st.peers}; ports: {st.ports}
                    </div>
                  </li>
                ))}
              </ol>
            </div>
          ))}
          <details>
            <summary>as the CLI prints it</summary>
            <pre data-testid="explain-text">{r.text}</pre>
          </details>
        </>
      )}
    </div>
  );
}
