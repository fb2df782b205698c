// `podnet policy explain` for one matrix cell: both sides' rules in order, which matched and which decided.
import { useState } from "preact/hooks";
import type { Explanation } from "./types";

export function ExplainView(props: {
  result: Explanation | null;
  error: string | null;
  onAsk: (protocol: string, port: string) => void;
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
                    <code>{st.rule}</code> [{st.action}]: {st.outcome}
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
