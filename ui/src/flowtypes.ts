// The JSON of the UI's flow routes (podnet/ui/flows.py; Hubble's flow field names).

export interface PolicyRule {
  kind: string; // NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, or "isolation"
  name: string;
  namespace?: string;
  direction?: string;
  rule?: number;
  isolated_by?: string[];
}

export interface FlowEnd {
  identity?: number;
  namespace?: string;
  pod_name?: string;
  labels?: string[];
  workloads?: { name: string }[];
}

export interface Flow {
  time: string;
  verdict: "FORWARDED" | "DROPPED" | "AUDIT" | string;
  IP?: { source: string; destination: string };
  l4?: Record<string, { source_port?: number; destination_port?: number }>;
  source?: FlowEnd;
  destination?: FlowEnd;
  node_name?: string;
  traffic_direction?: string;
  drop_reason_desc?: string;
  Summary?: string;
  is_reply?: boolean;
  allowed_by?: PolicyRule[];
  denied_by?: PolicyRule[];
}

export interface MapNode {
  id: string;
  kind: "namespace" | "workload" | "world" | "host" | "unknown";
  name: string;
  namespace?: string;
  parent?: string;
  pods?: string[];
  addresses?: string[];
}

export interface MapEdge {
  id: string;
  source: string;
  target: string;
  protocol: string;
  port: number;
  verdict: "FORWARDED" | "DROPPED" | "AUDIT" | "MIXED";
  flows: number;
  verdicts: Record<string, number>;
  drop_reasons: Record<string, number>;
  allowed_by: { rule: PolicyRule; text: string; flows: number }[];
  denied_by: { rule: PolicyRule; text: string; flows: number }[];
  first_seen: string;
  last_seen: string;
}

export interface ServiceMap {
  source?: string;
  flows: number;
  nodes: MapNode[];
  edges: MapEdge[];
}

export interface Suggestion {
  yaml: string;
  notes: string[];
  warnings: string[];
  check: { ok: boolean; summary: string; missing: string[]; broader: string[] };
}

/** The editor's policy refs a rule names: ns/name for NetworkPolicies, the name for admin tiers. */
export function policyRefs(rule: PolicyRule): string[] {
  if (rule.kind === "isolation") return rule.isolated_by ?? [];
  if (rule.kind === "NetworkPolicy") return [`${rule.namespace}/${rule.name}`];
  return [rule.name];
}

export function ruleText(rule: PolicyRule): string {
  if (rule.kind === "isolation")
    return `default deny (${rule.direction} isolated by ${(rule.isolated_by ?? []).join(", ")})`;
  const where = rule.kind === "NetworkPolicy" ? `${rule.namespace}/${rule.name}` : rule.name;
  return `${rule.kind} ${where} ${rule.direction ?? ""}${rule.rule !== undefined ? `[${rule.rule}]` : ""}`.trim();
}
