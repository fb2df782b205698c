// Flows: a service map of namespaces and workloads with edges from observed flows, coloured by verdict and
// updated live (server-sent events); a flow table with `podnet observe`'s filters; "suggest policy".
import { useEffect, useMemo, useState } from "preact/hooks";
import type { Flow, MapEdge, MapNode, ServiceMap, Suggestion } from "./flowtypes";
import { policyRefs, ruleText } from "./flowtypes";

const COL_W = 170;
const COL_GAP = 40;
const NODE_H = 36;
const NODE_GAP = 14;
const ARC = 110; // room above and below the namespaces for the edges' arcs

function endText(e: Flow["source"], ip?: string): string {
  if (e?.namespace && e.pod_name) return `${e.namespace}/${e.pod_name}`;
  return ip ?? "?";
}

function portOf(f: Flow): string {
  const [proto, l4] = Object.entries(f.l4 ?? {})[0] ?? ["", {}];
  return proto ? `${proto}/${l4.destination_port ?? ""}` : "";
}

/** Namespaces as columns, ordered so that traffic mostly flows left to right; outside addresses last. */
function layout(nodes: MapNode[], edges: MapEdge[]) {
  const columns = new Map<string, MapNode[]>();
  const colOf = new Map<string, string>();
  for (const n of nodes) {
    if (n.kind === "namespace") {
      if (!columns.has(n.id)) columns.set(n.id, []);
      continue;
    }
    const col = n.kind === "workload" && n.parent ? n.parent : "outside";
    if (!columns.has(col)) columns.set(col, []);
    columns.get(col)!.push(n);
    colOf.set(n.id, col);
  }
  const score = new Map<string, number>();
  for (const e of edges) {
    const a = colOf.get(e.source);
    const b = colOf.get(e.target);
    if (!a || !b || a === b) continue;
    score.set(a, (score.get(a) ?? 0) + 1);
    score.set(b, (score.get(b) ?? 0) - 1);
  }
  const order = [...columns.keys()].sort((a, b) =>
    a === "outside" ? 1 : b === "outside" ? -1 : (score.get(b) ?? 0) - (score.get(a) ?? 0) || a.localeCompare(b),
  );
  const pos = new Map<string, { x: number; y: number; col: number }>();
  let rows = 1;
  order.forEach((col, i) => {
    const items = columns.get(col)!.sort((a, b) => a.name.localeCompare(b.name));
    rows = Math.max(rows, items.length);
    items.forEach((n, j) =>
      pos.set(n.id, { x: 20 + i * (COL_W + COL_GAP) + 10, y: ARC + 30 + j * (NODE_H + NODE_GAP), col: i }),
    );
  });
  const boxH = 40 + rows * (NODE_H + NODE_GAP);
  return { order, columns, pos, boxH, width: 40 + order.length * (COL_W + COL_GAP), height: 2 * ARC + boxH };
}

function MapView(props: { map: ServiceMap; fresh: Set<string>; selected: string | null; onEdge: (e: MapEdge) => void }) {
  const { map } = props;
  const { order, columns, pos, boxH, width, height } = useMemo(() => layout(map.nodes, map.edges), [map.nodes, map.edges]);
  const byId = new Map(map.nodes.map((n) => [n.id, n]));
  const w = COL_W - 20;
  const seen = new Map<string, number>(); // edges between the same two nodes fan out
  return (
    <svg class="servicemap" viewBox={`0 0 ${width} ${height}`} style={{ maxWidth: `${width}px` }} data-testid="service-map">
      <defs>
        {["forwarded", "dropped", "audit", "mixed"].map((v) => (
          <marker id={`m-${v}`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class={`head ${v}`} />
          </marker>
        ))}
      </defs>
      {order.map((col, i) => (
        <g class="column" data-testid={`mapcolumn-${col}`}>
          <rect x={20 + i * (COL_W + COL_GAP)} y={ARC} width={COL_W} height={boxH} rx={8} />
          <text x={30 + i * (COL_W + COL_GAP)} y={ARC + 18}>
            {col === "outside" ? "outside the cluster" : `namespace ${byId.get(col)?.name ?? col}`}
          </text>
          {columns.get(col)!.length === 0 && (
            <text x={30 + i * (COL_W + COL_GAP)} y={ARC + 50} class="hint">
              (no workload seen)
            </text>
          )}
        </g>
      ))}
      {map.edges.map((e) => {
        const a = pos.get(e.source);
        const b = pos.get(e.target);
        if (!a || !b) return null;
        const pair = [e.source, e.target].sort().join("|");
        const k = seen.get(pair) ?? 0;
        seen.set(pair, k + 1);
        let d: string;
        let lx: number;
        let ly: number;
        if (a.col === b.col) {
          // same namespace (or the same workload): an arc out to the right side of the column
          const x = a.x + w;
          const y1 = a.y + NODE_H / 2 - 6;
          const y2 = b.y + NODE_H / 2 + (a === b ? 6 : 0);
          const out = 30 + k * 14;
          d = `M${x},${y1} C${x + out},${y1 - 20} ${x + out},${y2 + 20} ${x},${y2}`;
          lx = x + out * 0.75;
          ly = (y1 + y2) / 2 + 3;
        } else {
          // rightwards: from the top, arcing above; leftwards: from the bottom, arcing below
          const right = b.col > a.col;
          const shift = (k % 3) * 12 - 12;
          const x1 = a.x + w / 2 + shift;
          const x2 = b.x + w / 2 + shift;
          const y1 = right ? a.y : a.y + NODE_H;
          const y2 = right ? b.y : b.y + NODE_H;
          const span = Math.abs(b.col - a.col);
          const lift = Math.min(ARC + (right ? a.y - ARC : boxH - (a.y - ARC) - NODE_H) - 10, 28 + span * 24 + k * 14);
          const hy = right ? Math.min(y1, y2) - lift : Math.max(y1, y2) + lift;
          d = `M${x1},${y1} C${x1},${hy} ${x2},${hy} ${x2},${y2}`;
          lx = (x1 + x2) / 2;
          ly = right ? hy + lift * 0.25 + 3 : hy - lift * 0.25 + 3;
        }
        const v = e.verdict.toLowerCase();
        const label = `${e.protocol}/${e.port}`;
        return (
          <g
            class={`mapedge ${v}${props.fresh.has(e.id) ? " fresh" : ""}${props.selected === e.id ? " selected" : ""}`}
            data-testid={`mapedge-${e.id}`}
            data-verdict={e.verdict}
            onClick={() => props.onEdge(e)}
          >
            <title>{`${e.source} → ${e.target} ${label}: ${e.verdict} (${e.flows} flows)`}</title>
            <path d={d} class="hit" />
            <path d={d} class="line" marker-end={`url(#m-${v})`} style={{ strokeWidth: Math.min(1.5 + Math.log2(e.flows + 1), 5) }} />
            <rect x={lx - label.length * 3.2 - 3} y={ly - 10} width={label.length * 6.4 + 6} height={14} rx={3} />
            <text x={lx} y={ly + 1} text-anchor="middle">
              {label}
            </text>
          </g>
        );
      })}
      {map.nodes
        .filter((n) => n.kind !== "namespace")
        .map((n) => {
          const p = pos.get(n.id)!;
          return (
            <g class={`mapnode ${n.kind}`} data-testid={`mapnode-${n.id}`}>
              <title>{`${n.id}${n.pods ? `\npods: ${n.pods.join(", ")}` : ""}${n.addresses ? `\n${n.addresses.join(", ")}` : ""}`}</title>
              <rect x={p.x} y={p.y} width={w} height={NODE_H} rx={6} />
              <text x={p.x + 8} y={p.y + 15}>
                {n.name}
              </text>
              <text x={p.x + 8} y={p.y + 29} class="sub">
                {n.kind === "workload" ? `${n.pods?.length ?? 0} pod${n.pods?.length === 1 ? "" : "s"}` : n.kind}
              </text>
            </g>
          );
        })}
    </svg>
  );
}

function PolicyLinks(props: { rules: { kind: string; name: string }[] | undefined; onOpen: (ref: string) => void; testid: string }) {
  return (
    <>
      {(props.rules ?? []).map((r) => (
        <span class="rule">
          {ruleText(r as never)}{" "}
          {policyRefs(r as never).map((ref) => (
            <a href="#" data-testid={props.testid} data-policy={ref} onClick={(e) => (e.preventDefault(), props.onOpen(ref))}>
              open {ref}
            </a>
          ))}
        </span>
      ))}
    </>
  );
}

export function FlowsView(props: { onOpenPolicy: (ref: string) => void; onSuggested: (yaml: string) => void }) {
  const [map, setMap] = useState<ServiceMap | null>(null);
  const [mapState, setMapState] = useState("connecting…");
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [edge, setEdge] = useState<MapEdge | null>(null);
  const [filter, setFilter] = useState("");
  const [applied, setApplied] = useState(""); // the filter of the rows shown (set by Show)
  const [last, setLast] = useState("50");
  const [flows, setFlows] = useState<Flow[]>([]);
  const [flowError, setFlowError] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const [picked, setPicked] = useState<Set<number>>(new Set());
  const [suggestion, setSuggestion] = useState<Suggestion | null>(null);
  const [suggestError, setSuggestError] = useState<string | null>(null);

  // the live service map
  useEffect(() => {
    const es = new EventSource("/api/servicemap/stream");
    es.addEventListener("snapshot", (ev) => {
      setMap(JSON.parse((ev as MessageEvent).data));
      setMapState("live");
    });
    es.addEventListener("update", (ev) => {
      const u = JSON.parse((ev as MessageEvent).data) as { nodes: MapNode[]; edge: MapEdge; edge_new: boolean };
      setMap((m) => {
        if (!m) return m;
        const nodes = [...m.nodes, ...u.nodes.filter((n) => !m.nodes.some((o) => o.id === n.id))];
        const edges = m.edges.some((e) => e.id === u.edge.id)
          ? m.edges.map((e) => (e.id === u.edge.id ? u.edge : e))
          : [...m.edges, u.edge];
        return { ...m, flows: m.flows + 1, nodes, edges };
      });
      setFresh((s) => new Set([...s, u.edge.id]));
      setTimeout(() => setFresh((s) => new Set([...s].filter((x) => x !== u.edge.id))), 4000);
    });
    es.addEventListener("end", (ev) => {
      setMapState(`ended: ${JSON.parse((ev as MessageEvent).data).reason}`);
      es.close();
    });
    es.addEventListener("error", (ev) => {
      const data = (ev as MessageEvent).data;
      setMapState(data ? `error: ${JSON.parse(data).error}` : "disconnected, retrying…");
    });
    return () => es.close();
  }, []);

  const params = (text: string) => {
    const q = new URLSearchParams();
    for (const term of text.split(/\s+/).filter(Boolean)) {
      const eq = term.indexOf("=");
      if (eq > 0) q.append(term.slice(0, eq), term.slice(eq + 1));
      else q.append("pod", term);
    }
    return q;
  };

  async function refresh() {
    setApplied(filter);
    const q = params(filter);
    if (last) q.set("last", last);
    setFlowError(null);
    const resp = await fetch(`/api/flows?${q}`);
    const body = await resp.json();
    if (!resp.ok) {
      setFlowError(body.error ?? `HTTP ${resp.status}`);
      return;
    }
    setFlows(body.flows);
    setPicked(new Set());
  }

  useEffect(() => {
    refresh();
  }, []);

  // following: new flows are appended as they come
  useEffect(() => {
    if (!follow) return;
    const es = new EventSource(`/api/flows/stream?${params(applied)}`);
    es.addEventListener("flow", (ev) => setFlows((fs) => [...fs, JSON.parse((ev as MessageEvent).data)]));
    es.addEventListener("end", () => es.close());
    return () => es.close();
  }, [follow, applied]);

  async function suggest() {
    setSuggestError(null);
    const resp = await fetch("/api/suggest", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ flows: [...picked].map((i) => flows[i]) }),
    });
    const body = await resp.json();
    if (!resp.ok) setSuggestError(body.error ?? `HTTP ${resp.status}`);
    else setSuggestion(body);
  }

  return (
    <div class="flowsview">
      <section class="panel">
        <h2>
          Service map <span class="hint" data-testid="map-state">{mapState}</span>
          {map && <span class="hint"> · {map.flows} flows · {map.source}</span>}
        </h2>
        <p class="legend">
          <span class="forwarded">forwarded</span> <span class="dropped">dropped</span> <span class="audit">audit</span>{" "}
          <span class="mixed">mixed</span>
        </p>
        {map && <MapView map={map} fresh={fresh} selected={edge?.id ?? null} onEdge={setEdge} />}
        {edge && (
          <div class="edgeinfo" data-testid="edge-info">
            <strong>
              {edge.source} → {edge.target} {edge.protocol}/{edge.port}
            </strong>
            : {edge.verdict} ({Object.entries(edge.verdicts).filter(([, n]) => n).map(([v, n]) => `${n} ${v.toLowerCase()}`).join(", ")})
            {Object.keys(edge.drop_reasons).length > 0 && <div>drop reasons: {Object.keys(edge.drop_reasons).join(", ")}</div>}
            {edge.denied_by.length > 0 && (
              <div>
                denied by: <PolicyLinks rules={edge.denied_by.map((d) => d.rule)} onOpen={props.onOpenPolicy} testid="edge-policy" />
              </div>
            )}
            {edge.allowed_by.length > 0 && (
              <div>
                allowed by: <PolicyLinks rules={edge.allowed_by.map((d) => d.rule)} onOpen={props.onOpenPolicy} testid="edge-policy" />
              </div>
            )}
          </div>
        )}
      </section>
      <section class="panel">
        <h2>Flows</h2>
        <form
          class="filters"
          onSubmit={(e) => {
            e.preventDefault();
            refresh();
          }}
        >
          <input
            data-testid="flow-filter"
            size={50}
            placeholder="filters as podnet observe takes them: verdict=DROPPED namespace=web not-port=53"
            value={filter}
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
          last <input data-testid="flow-last" size={4} value={last} onInput={(e) => setLast(e.currentTarget.value)} />
          <button type="submit" data-testid="flow-refresh">
            Show
          </button>
          <label class="inline">
            <input type="checkbox" data-testid="flow-follow" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
            follow
          </label>
          <button type="button" data-testid="suggest" disabled={!picked.size} onClick={suggest}>
            Suggest policy from {picked.size} selected
          </button>
        </form>
        {flowError && <p class="error" data-testid="flow-error">{flowError}</p>}
        <table class="flowtable" data-testid="flow-table">
          <thead>
            <tr>
              <th />
              <th>time</th>
              <th>source</th>
              <th>destination</th>
              <th>port</th>
              <th>verdict</th>
              <th>decided by</th>
            </tr>
          </thead>
          <tbody>
            {flows.map((f, i) => (
              <tr class={f.verdict.toLowerCase()} data-testid="flow-row" data-verdict={f.verdict}>
                <td>
                  <input
                    type="checkbox"
                    data-testid={`pick-${i}`}
                    checked={picked.has(i)}
                    onChange={(e) => {
                      const next = new Set(picked);
                      if (e.currentTarget.checked) next.add(i);
                      else next.delete(i);
                      setPicked(next);
                    }}
                  />
                </td>
                <td>{f.time.slice(11, 23)}</td>
                <td>{endText(f.source, f.IP?.source)}</td>
                <td>{endText(f.destination, f.IP?.destination)}</td>
                <td>{portOf(f)}</td>
                <td class="verdict">
                  {f.verdict}
                  {f.drop_reason_desc ? ` (${f.drop_reason_desc})` : ""}
                </td>
                <td>
                  <PolicyLinks rules={f.verdict === "DROPPED" ? f.denied_by : f.allowed_by} onOpen={props.onOpenPolicy} testid="flow-policy" />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {suggestError && <p class="error" data-testid="suggest-error">{suggestError}</p>}
        {suggestion && (
          <div class="suggestion" data-testid="suggestion">
            <h3>Suggested policies</h3>
            <p class={suggestion.check.ok ? "ok" : "error"}>{suggestion.check.summary}</p>
            {suggestion.notes.map((n) => (
              <p class="hint">{n}</p>
            ))}
            <pre data-testid="suggestion-yaml">{suggestion.yaml}</pre>
            <button data-testid="suggestion-open" onClick={() => props.onSuggested(suggestion.yaml)}>
              Open in the policy editor
            </button>
          </div>
        )}
      </section>
    </div>
  );
}
