// The JSON the UI's API answers (podnet/ui/analysis.py, graph.py, problems.py).

export interface ManifestFile {
  name: string;
  text: string;
}

export interface Problem {
  text: string;
  file: string | null;
  doc: number | null;
  items: number[];
  kind: string | null;
  object: string | null;
  path: string | null;
  message: string;
  line: number | null;
  column: number | null;
}

export interface Finding {
  code: string;
  policy: string;
  field: string;
  message: string;
  fix: string;
}

export type Scope = "namespace" | "cluster" | "cidr" | "any" | "nodes";

export interface PeerBox {
  id: string;
  path: string;
  rule: number;
  scope: Scope;
  label: string;
  selects: string[];
}

export interface Edge {
  id: string;
  direction: "ingress" | "egress";
  peer: string;
  rule: number;
  path: string;
  ports: string;
  action: "Allow" | "Deny" | "Pass";
  name?: string;
}

export interface PolicyGraph {
  kind: "NetworkPolicy" | "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy";
  name: string;
  namespace: string | null;
  ref: string;
  priority?: number | null;
  file: string | null;
  doc: number | null;
  items: number[];
  subject: { path: string; label: string; selects: string[] };
  isolation: { ingress: boolean; egress: boolean };
  peers: { ingress: PeerBox[]; egress: PeerBox[] };
  edges: Edge[];
}

export interface Endpoint {
  ref: string;
  kind: string;
  is_pod: boolean;
  address: string | null;
}

export interface Cell {
  from: string;
  to: string;
  connections: string;
}

export interface Workload {
  ref: string;
  kind: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ports: { name: string | null; port: number; protocol: string }[];
}

export interface Analysis {
  valid: boolean;
  errors: Problem[];
  warnings: Problem[];
  lint: Finding[] | null;
  namespaces: { name: string; labels: Record<string, string>; defined: boolean }[];
  workloads: Workload[];
  policies: PolicyGraph[];
  matrix: { endpoints: Endpoint[]; cells: Cell[] } | null;
}

export interface ExplainStep {
  rule: string;
  action: string;
  outcome: string;
  peers: string;
  ports: string;
}

export interface Explanation {
  from: string;
  to: string;
  protocol: string;
  port: number;
  verdict: "allowed" | "denied";
  sides: { direction: string; pod: string; steps: ExplainStep[]; verdict: string; decided_by: string }[];
  text: string;
}

export interface Template {
  id: string;
  title: string;
  description: string;
  yaml: string;
}

export interface ApiError {
  error: string;
  problems: Problem[];
}
