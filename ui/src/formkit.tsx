// Pieces shared by the NetworkPolicy forms (Forms.tsx) and the admin policy forms (AdminForms.tsx).
import type { Selection } from "./Graph";
import type { PolicyGraph } from "./types";
import { parseLabels, type Path } from "./yamldoc";

export interface FormProps {
  graph: PolicyGraph;
  selection: Selection;
  text: string;
  doc: number;
  prefix: Path;
  onText: (text: string, select?: Selection | null) => void;
}

export type Obj = Record<string, unknown>;

export function asObj(v: unknown): Obj {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}

/** A selector with its matchLabels replaced, its matchExpressions kept. */
export function withLabels(selector: unknown, labelText: string): Obj {
  const out: Obj = { ...asObj(selector) };
  const labels = parseLabels(labelText);
  if (Object.keys(labels).length) out.matchLabels = labels;
  else delete out.matchLabels;
  return out;
}

export function Expressions({ selector }: { selector: unknown }) {
  const exprs = asObj(selector).matchExpressions;
  if (!Array.isArray(exprs) || !exprs.length) return null;
  return <p class="hint">also matchExpressions ({exprs.length}): edit them in the YAML</p>;
}

/** "1.2.3.0/24, 10.0.0.0/8" → ["1.2.3.0/24", "10.0.0.0/8"]. */
export function commaList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A whole number as a number (so YAML writes it unquoted); anything else as typed, for the analyzer to name. */
export function numberOrText(text: string): number | string {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : t;
}
