// One policy drawn as SVG: ingress peers on the left, the selected pods in the middle, egress peers on the right.
import type { Edge, PeerBox, PolicyGraph } from "./types";

export type Selection =
  | { type: "subject" }
  | { type: "peer"; path: string; direction: "ingress" | "egress"; rule: number; scope: string }
  | { type: "edge"; path: string; direction: "ingress" | "egress"; rule: number };

const W = 780;
const BOX_W = 215;
const MID_W = 170;
const BOX_H = 58;
const GAP = 16;
const LEFT_X = 8;
const MID_X = (W - MID_W) / 2;
const RIGHT_X = W - BOX_W - 8;
const TOP = 34;

function clip(text: string, n: number): string {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

function lines(text: string, width: number, max: number): string[] {
  const words = text.split(" ");
  const out: string[] = [];
  let cur = "";
  for (const w of words) {
    if ((cur + " " + w).trim().length > width && cur) {
      out.push(cur);
      cur = w;
    } else cur = (cur + " " + w).trim();
  }
  if (cur) out.push(cur);
  if (out.length > max) {
    out.length = max;
    out[max - 1] = clip(out[max - 1] + " …", width);
  }
  return out.map((l) => clip(l, width));
}

const SCOPE_TITLE: Record<string, string> = {
  namespace: "in namespace",
  cluster: "in cluster",
  cidr: "outside (CIDR)",
  any: "anywhere",
  nodes: "nodes",
};

function Box(props: {
  x: number;
  y: number;
  w: number;
  box: PeerBox;
  selected: boolean;
  onClick: () => void;
}) {
  const { x, y, w, box } = props;
  const label = lines(box.label, 32, 2);
  const selects = box.selects.length ? `selects ${box.selects.join(", ")}` : box.scope === "any" ? "" : "selects no pod";
  return (
    <g
      class={`box scope-${box.scope}${props.selected ? " selected" : ""}`}
      data-testid={`peer-${box.path}`}
      data-direction={box.id.split(":")[0]}
      onClick={props.onClick}
    >
      <title>{`${box.label}\n${selects}\n${box.path}`}</title>
      <rect x={x} y={y} width={w} height={BOX_H} rx={6} />
      <text x={x + 8} y={y + 14} class="scope">
        {SCOPE_TITLE[box.scope]}
      </text>
      {label.map((l, i) => (
        <text x={x + 8} y={y + 29 + i * 13}>
          {l}
        </text>
      ))}
      {selects && (
        <text x={x + 8} y={y + BOX_H - 4} class="selects">
          {clip(selects, 36)}
        </text>
      )}
    </g>
  );
}

function EdgeLine(props: {
  edge: Edge;
  from: [number, number];
  to: [number, number];
  selected: boolean;
  onClick: () => void;
}) {
  const { edge, from, to } = props;
  const mx = (from[0] + to[0]) / 2;
  const my = (from[1] + to[1]) / 2;
  const d = `M${from[0]},${from[1]} C${mx},${from[1]} ${mx},${to[1]} ${to[0]},${to[1]}`;
  const label = clip(edge.action === "Allow" ? edge.ports : `${edge.action}: ${edge.ports}`, 26);
  return (
    <g
      class={`edge action-${edge.action.toLowerCase()}${props.selected ? " selected" : ""}`}
      data-testid={`edge-${edge.peer.split(":")[1]}`}
      onClick={props.onClick}
    >
      <title>{`${edge.name ? edge.name + ": " : ""}${edge.action} ${edge.ports}\n${edge.path}`}</title>
      <path d={d} class="hit" />
      <path d={d} class="line" marker-end="url(#arrow)" />
      <rect x={mx - label.length * 3.3 - 4} y={my - 9} width={label.length * 6.6 + 8} height={16} rx={3} />
      <text x={mx} y={my + 3} text-anchor="middle">
        {label}
      </text>
    </g>
  );
}

export function PolicyGraphView(props: {
  graph: PolicyGraph;
  selection: Selection | null;
  onSelect: (s: Selection) => void;
}) {
  const { graph, selection } = props;
  const ing = graph.peers.ingress;
  const eg = graph.peers.egress;
  const rows = Math.max(ing.length, eg.length, 1);
  const height = TOP + rows * (BOX_H + GAP) + 10;
  const midY = TOP + (rows * (BOX_H + GAP) - GAP) / 2 - BOX_H / 2;
  const yOf = (i: number, n: number) => TOP + ((rows - n) * (BOX_H + GAP)) / 2 + i * (BOX_H + GAP);
  const pos = new Map<string, [number, number]>();
  ing.forEach((b, i) => pos.set(b.id, [LEFT_X, yOf(i, ing.length)]));
  eg.forEach((b, i) => pos.set(b.id, [RIGHT_X, yOf(i, eg.length)]));
  const isSel = (type: string, path: string) =>
    selection !== null && selection.type === type && "path" in selection && selection.path === path;
  const subjectLabel = lines(graph.subject.label, 25, 2);
  const subjectSelects = graph.subject.selects.length ? graph.subject.selects : ["no pod"];
  const note = (dir: "ingress" | "egress") => {
    if (graph.kind !== "NetworkPolicy") return null;
    const count = dir === "ingress" ? ing.length : eg.length;
    if (count) return null;
    const x = dir === "ingress" ? LEFT_X : RIGHT_X;
    if (graph.isolation[dir])
      return (
        <g class="note deny" data-testid={`deny-all-${dir}`}>
          <rect x={x} y={midY} width={BOX_W} height={BOX_H} rx={6} />
          <text x={x + 8} y={midY + 24}>{`all ${dir} denied`}</text>
          <text x={x + 8} y={midY + 40} class="selects">
            isolated, no rule allows anything
          </text>
        </g>
      );
    return (
      <g class="note open">
        <text x={x + 8} y={midY + 30}>{`${dir} not isolated by this policy`}</text>
      </g>
    );
  };
  return (
    <svg class="graph" viewBox={`0 0 ${W} ${height}`} style={{ maxWidth: `${W}px` }} data-testid="policy-graph">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" />
        </marker>
      </defs>
      <text x={LEFT_X} y={16} class="column">
        INGRESS: who may connect
      </text>
      <text x={MID_X} y={16} class="column">
        SELECTED PODS
      </text>
      <text x={RIGHT_X} y={16} class="column">
        EGRESS: where they may connect
      </text>
      {graph.edges.map((e) => {
        const p = pos.get(e.peer)!;
        const peerPoint: [number, number] = e.direction === "ingress" ? [p[0] + BOX_W, p[1] + BOX_H / 2] : [p[0], p[1] + BOX_H / 2];
        const subjPoint: [number, number] =
          e.direction === "ingress" ? [MID_X, midY + BOX_H / 2] : [MID_X + MID_W, midY + BOX_H / 2];
        const [from, to] = e.direction === "ingress" ? [peerPoint, subjPoint] : [subjPoint, peerPoint];
        return (
          <EdgeLine
            edge={e}
            from={from}
            to={to}
            selected={isSel("edge", e.path) && selection?.type === "edge"}
            onClick={() => props.onSelect({ type: "edge", path: e.path, direction: e.direction, rule: e.rule })}
          />
        );
      })}
      {[...ing, ...eg].map((b) => {
        const [x, y] = pos.get(b.id)!;
        const direction = b.id.startsWith("ingress") ? "ingress" : "egress";
        return (
          <Box
            x={x}
            y={y}
            w={BOX_W}
            box={b}
            selected={isSel("peer", b.path)}
            onClick={() => props.onSelect({ type: "peer", path: b.path, direction, rule: b.rule, scope: b.scope })}
          />
        );
      })}
      <g
        class={`box subject${selection?.type === "subject" ? " selected" : ""}`}
        data-testid="subject"
        onClick={() => props.onSelect({ type: "subject" })}
      >
        <title>{`${graph.subject.label}\nselects ${subjectSelects.join(", ")}`}</title>
        <rect x={MID_X} y={midY} width={MID_W} height={BOX_H + 8} rx={8} />
        {subjectLabel.map((l, i) => (
          <text x={MID_X + 8} y={midY + 16 + i * 13}>
            {l}
          </text>
        ))}
        <text x={MID_X + 8} y={midY + BOX_H + 2} class="selects">
          {clip(subjectSelects.join(", "), 28)}
        </text>
      </g>
      {note("ingress")}
      {note("egress")}
    </svg>
  );
}
