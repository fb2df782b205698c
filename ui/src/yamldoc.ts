// Reading and writing one field of one document of a multi-document YAML text, keeping everything else
// (other documents, comments, flow style) exactly as it was written.
import { Document, isMap, isPair, isScalar, isSeq, parseAllDocuments } from "yaml";
import type { Node } from "yaml";

export type Path = (string | number)[];
const STRING_OPTIONS = { flowCollectionPadding: false, lineWidth: 0 };

/** "spec.ingress[0].from[1]" → ["spec", "ingress", 0, "from", 1]; a lint field "a, b" takes its first path. */
export function parsePath(text: string): Path {
  const out: Path = [];
  const first = text.split(", ")[0];
  for (const m of first.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  }
  return out;
}

export function pathText(path: Path): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/** Prefix for an object inside `kind: List` documents (items indexes, outermost first). */
export function itemsPrefix(items: number[]): Path {
  return items.flatMap((i) => ["items", i]);
}

function docs(text: string): Document.Parsed[] {
  return parseAllDocuments(text) as Document.Parsed[];
}

/** The text span [start, end) of document `index`, comments before it included. */
function docSpan(all: Document.Parsed[], index: number, textLength: number): [number, number] {
  const start = index === 0 ? 0 : all[index].range[0];
  const end = index === all.length - 1 ? textLength : all[index + 1].range[0];
  return [start, end];
}

/** The value at `path` of document `doc` as plain data, or undefined. */
export function getValue(text: string, doc: number, path: Path): unknown {
  const all = docs(text);
  if (!all[doc]) return undefined;
  const node = all[doc].getIn(path, true) as Node | undefined;
  return node && typeof (node as { toJSON?: unknown }).toJSON === "function" ? (node as Node).toJSON() : node;
}

/** The text with document `doc` changed by `edit`; the other documents keep their exact text. */
export function editDoc(text: string, doc: number, edit: (d: Document.Parsed) => void): string {
  const all = docs(text);
  const target = all[doc];
  if (!target) throw new Error(`no document ${doc}`);
  if (target.errors.length) throw new Error(`document ${doc} has YAML errors: fix them in the YAML first`);
  edit(target);
  const [start, end] = docSpan(all, doc, text.length);
  let out = target.toString(STRING_OPTIONS);
  const tail = text.slice(end);
  if (tail && !out.endsWith("\n")) out += "\n";
  return text.slice(0, start) + out + tail;
}

export function setValue(text: string, doc: number, path: Path, value: unknown): string {
  return editDoc(text, doc, (d) => {
    if (value === undefined) d.deleteIn(path);
    else d.setIn(path, d.createNode(value));
  });
}

export function deleteValue(text: string, doc: number, path: Path): string {
  return editDoc(text, doc, (d) => d.deleteIn(path));
}

/** Append an item to the list at `path` (created when missing); returns the new text and the item's index. */
export function appendValue(text: string, doc: number, path: Path, value: unknown): [string, number] {
  let index = 0;
  const out = editDoc(text, doc, (d) => {
    const list = d.getIn(path, true);
    if (isSeq(list)) {
      index = list.items.length;
      list.items.push(d.createNode(value));
    } else {
      d.setIn(path, d.createNode([value]));
    }
  });
  return [out, index];
}

/** Append a whole document to a YAML text. */
export function appendDocument(text: string, docText: string): string {
  const body = docText.endsWith("\n") ? docText : docText + "\n";
  if (!text.trim()) return body;
  return (text.endsWith("\n") ? text : text + "\n") + "---\n" + body;
}

export function countDocuments(text: string): number {
  return docs(text).length;
}

/** The text span of the deepest part of `path` that exists in document `doc` (a map key with its value). */
export function locate(text: string, doc: number, path: Path): [number, number] | null {
  const all = docs(text);
  const d = all[doc];
  if (!d) return null;
  let node: unknown = d.contents;
  let span: [number, number] | null = d.contents && (d.contents as Node).range ? rangeOf(d.contents as Node) : null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      const key = pair.key as Node;
      const value = pair.value as Node | null;
      span = [key.range![0], value && value.range ? value.range[1] : key.range![1]];
      node = value;
    } else if (isSeq(node) && typeof seg === "number" && node.items[seg]) {
      const item = node.items[seg] as Node;
      span = rangeOf(item);
      node = item;
    } else {
      break;
    }
  }
  if (!span) {
    const [start] = docSpan(all, doc, text.length);
    return [start, start];
  }
  return span;
}

function rangeOf(node: Node): [number, number] {
  const r = node.range!;
  return [r[0], r[1]];
}

/** Start offset of 1-based line `line`. */
export function lineOffset(text: string, line: number): number {
  let offset = 0;
  for (let i = 1; i < line; i++) {
    const next = text.indexOf("\n", offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  return offset;
}

/** "app=web, tier=db" ↔ {app: "web", tier: "db"}. */
export function labelsText(labels: unknown): string {
  if (!labels || typeof labels !== "object") return "";
  return Object.entries(labels as Record<string, unknown>)
    .map(([k, v]) => `${k}=${v ?? ""}`)
    .join(", ");
}

export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(",")) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    if (eq < 0) out[item] = "";
    else out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}
