// The policy editor: files on the right (YAML), policies drawn in the middle, problems on the left,
// the what-if matrix and explanations below. The analyzer on the server answers every question.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import * as api from "./api";
import { ExplainView } from "./Explain";
import { FlowsView } from "./Flows";
import { EditForm } from "./Forms";
import { PolicyGraphView, type Selection } from "./Graph";
import { cellKey, cellMap, MatrixView, type MatrixData } from "./Matrix";
import { ProblemsView } from "./Problems";
import type { Analysis, Explanation, Finding, ManifestFile, PolicyGraph, Problem, Template } from "./types";
import { appendDocument, itemsPrefix, lineOffset, locate, parsePath } from "./yamldoc";

const FIRST = "\u0000first"; // pendingPolicy: the first policy drawn, once there is one
const POLICY_KINDS = /^kind:\s*(NetworkPolicy|AdminNetworkPolicy|BaselineAdminNetworkPolicy)\s*$/m;

interface Pending {
  file: string;
  start: number;
  end: number;
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

function uniqueName(files: ManifestFile[], name: string): string {
  if (!files.some((f) => f.name === name)) return name;
  for (let i = 2; ; i++) {
    const candidate = name.replace(/(\.ya?ml)?$/, `-${i}$1`);
    if (!files.some((f) => f.name === candidate)) return candidate;
  }
}

export function App() {
  const [view, setView] = useState<"policies" | "flows">("policies");
  const [files, setFiles] = useState<ManifestFile[]>([]);
  const [active, setActive] = useState<string | null>(null);
  const [analysis, setAnalysis] = useState<Analysis | null>(null);
  const [pending, setPending] = useState(false);
  const [lastMatrix, setLastMatrix] = useState<MatrixData | null>(null);
  const [baseline, setBaseline] = useState<Map<string, string> | null>(null);
  const baselineNext = useRef(true);
  const [graphs, setGraphs] = useState<Map<string, PolicyGraph>>(new Map());
  const [policyRef, setPolicyRef] = useState<string | null>(null);
  const [selection, setSelection] = useState<Selection | null>(null);
  const [formRev, setFormRev] = useState(0);
  const [cell, setCell] = useState<{ from: string; to: string } | null>(null);
  const [explanation, setExplanation] = useState<Explanation | null>(null);
  const [explainError, setExplainError] = useState<string | null>(null);
  const [message, setMessage] = useState<string>("Load manifests: open files, paste, load from the lab, or start from a template.");
  const [paste, setPaste] = useState<string | null>(null);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [templateNs, setTemplateNs] = useState("default");
  const [lab, setLab] = useState<{ available: boolean; name: string | null; error: string | null } | null>(null);
  const textarea = useRef<HTMLTextAreaElement>(null);
  const [reveal, setReveal] = useState<Pending | null>(null);
  const seq = useRef(0);
  const pendingPolicy = useRef<string | null>(null);
  const [flowsOpened, setFlowsOpened] = useState(false);

  useEffect(() => {
    api.labStatus().then(setLab, () => setLab(null));
  }, []);

  useEffect(() => {
    api.templates("default", "ingress-nginx").then(setTemplates, (e: Error) => setMessage(e.message));
  }, []);

  // Every change of the files is analyzed (debounced); late answers to older texts are dropped.
  useEffect(() => {
    if (!files.length) {
      setAnalysis(null);
      return;
    }
    const mine = ++seq.current;
    setPending(true);
    const timer = setTimeout(() => {
      api.analyze(files).then(
        (a) => {
          if (mine !== seq.current) return;
          setPending(false);
          setAnalysis(a);
          setGraphs((old) => {
            const next = new Map(old);
            for (const g of a.policies) next.set(g.ref, g);
            const live = new Set(a.policies.map((g) => g.ref));
            if (a.valid) for (const k of [...next.keys()]) if (!live.has(k)) next.delete(k);
            return next;
          });
          if (a.matrix) {
            setLastMatrix(a.matrix);
            if (baselineNext.current) {
              setBaseline(cellMap(a.matrix));
              baselineNext.current = false;
            }
          }
        },
        (e: Error) => {
          if (mine !== seq.current) return;
          setPending(false);
          setMessage(e.message);
        },
      );
    }, 150);
    return () => clearTimeout(timer);
  }, [files]);

  // Re-explain the open cell whenever the analysis changes.
  useEffect(() => {
    if (cell && analysis?.valid) ask(cell.from, cell.to, explanation?.protocol, explanation ? String(explanation.port) : undefined);
  }, [analysis]);

  // Selecting text in the textarea once it shows the right file.
  useEffect(() => {
    const ta = textarea.current;
    if (!reveal || !ta || reveal.file !== active) return;
    ta.focus();
    ta.setSelectionRange(reveal.start, reveal.end);
    const line = ta.value.slice(0, reveal.start).split("\n").length;
    ta.scrollTop = Math.max(0, (line - 4) * 17);
    setReveal(null);
  }, [reveal, active, files]);

  // A policy asked for from the flows view opens once its manifests are loaded.
  useEffect(() => {
    if (pendingPolicy.current === FIRST && graphs.size) {
      const all = [...graphs.values()];
      pendingPolicy.current = (all.find((g) => g.kind === "NetworkPolicy") ?? all[0]).ref;
    }
    const ref = pendingPolicy.current;
    if (ref && graphs.has(ref)) {
      pendingPolicy.current = null;
      selectPolicy(ref);
    }
  }, [graphs]);

  function openPolicy(ref: string) {
    setView("policies");
    if (graphs.has(ref)) {
      selectPolicy(ref);
      return;
    }
    pendingPolicy.current = ref;
    if (lab?.available) fromLab();
    else setMessage(`policy ${ref} is not loaded: open its manifests (or load them from the lab) and it opens`);
  }

  const activeFile = files.find((f) => f.name === active) ?? null;
  const graph = policyRef ? graphs.get(policyRef) ?? null : null;
  const graphFile = graph?.file ? files.find((f) => f.name === graph.file) ?? null : null;
  const graphBroken = !!graph && !!analysis && !analysis.policies.some((g) => g.ref === graph.ref);
  const policyList = useMemo(() => [...graphs.values()], [graphs]);
  // policies whose document has errors and that were never drawn: listed so that a click shows them
  const brokenPolicies = useMemo(() => {
    const out = new Map<string, Problem>();
    for (const p of analysis?.errors ?? []) {
      if (!p.file || p.doc === null || !p.kind?.endsWith("NetworkPolicy") || !p.object) continue;
      if (!graphs.has(p.object)) out.set(`${p.file}#${p.doc}#${p.items.join(".")}`, p);
    }
    return [...out.values()];
  }, [analysis, graphs]);

  function load(next: ManifestFile[], how: string, open: string = FIRST) {
    baselineNext.current = true;
    pendingPolicy.current = open;
    setBaseline(null);
    setLastMatrix(null);
    setGraphs(new Map());
    setFiles(next);
    setSelection(null);
    setPolicyRef(null);
    setCell(null);
    setExplanation(null);
    const first = next.find((f) => POLICY_KINDS.test(f.text)) ?? next[0];
    setActive(first ? first.name : null);
    setMessage(`${how}: ${next.map((f) => f.name).join(", ")}`);
  }

  function addFile(name: string, text: string) {
    setFiles((old) => {
      const unique = uniqueName(old, name);
      setActive(unique);
      return [...old, { name: unique, text }];
    });
  }

  function setText(name: string, text: string) {
    setFiles((old) => old.map((f) => (f.name === name ? { ...f, text } : f)));
  }

  function showSpan(file: string, doc: number | null, path: string | null, items: number[] = [], line?: number | null) {
    const f = files.find((x) => x.name === file);
    if (!f) return;
    setActive(file);
    if (line) {
      const start = lineOffset(f.text, line);
      const end = f.text.indexOf("\n", start);
      setReveal({ file, start, end: end < 0 ? f.text.length : end });
      return;
    }
    const span = locate(f.text, doc ?? 0, [...itemsPrefix(items), ...(path ? parsePath(path) : [])]);
    if (span) setReveal({ file, start: span[0], end: span[1] });
  }

  function onProblem(p: Problem) {
    if (p.file) showSpan(p.file, p.doc, p.path, p.items, p.line);
  }

  function onFinding(f: Finding) {
    const ref = f.policy.replace(/^[A-Za-z]+ /, "");
    const g = graphs.get(ref);
    if (g?.file) {
      setPolicyRef(ref);
      showSpan(g.file, g.doc, f.field, g.items);
    }
  }

  function selectPolicy(ref: string) {
    pendingPolicy.current = null; // a choice made here wins over one still waiting for its manifests
    setPolicyRef(ref);
    setSelection({ type: "subject" });
    setFormRev((r) => r + 1);
    const g = graphs.get(ref);
    if (g?.file) showSpan(g.file, g.doc, null, g.items);
  }

  function select(s: Selection) {
    setSelection(s);
    setFormRev((r) => r + 1);
    if (graph?.file) showSpan(graph.file, graph.doc, s.type === "subject" ? graph.subject.path : s.path, graph.items);
  }

  /** Open the rule an explanation names: its policy drawn, the rule's edge selected, its YAML shown. */
  function openRule(ref: string, direction: "ingress" | "egress", index: number) {
    const g = graphs.get(ref);
    if (!g) return;
    const path = `spec.${direction}[${index}]`;
    setPolicyRef(ref);
    setSelection({ type: "edge", path, direction, rule: index });
    setFormRev((r) => r + 1);
    if (g.file) showSpan(g.file, g.doc, path, g.items);
  }

  function ask(from: string, to: string, protocol?: string, port?: string) {
    setCell({ from, to });
    setExplainError(null);
    api.explain(files, from, to, protocol, port).then(
      (r) => setExplanation(r),
      (e: Error) => setExplainError(e.message),
    );
  }

  async function fromLab() {
    try {
      const { files: labFiles } = await api.labObjects();
      load(labFiles, `loaded from lab ${lab?.name ?? ""}`.trim(), pendingPolicy.current ?? FIRST);
    } catch (e) {
      setMessage((e as Error).message);
    }
  }

  async function applyToLab() {
    try {
      const { applied } = await api.labApply(files);
      setMessage(`applied to lab: ${applied.map((a) => `${a.object} ${a.result}`).join(", ") || "no policy"}`);
    } catch (e) {
      const err = e as api.RequestError;
      setMessage(`apply refused: ${err.message.split("\n")[0]}`);
    }
  }

  async function openFiles(list: FileList | null) {
    if (!list || !list.length) return;
    const read = await Promise.all([...list].map(async (f) => ({ name: f.name, text: await f.text() })));
    load(read, "opened");
  }

  async function addTemplate(id: string) {
    let t: Template | undefined;
    try {
      // rendered by the server for the namespace asked for (it refuses a namespace that is not a valid name)
      t = (await api.templates(templateNs, "ingress-nginx")).find((x) => x.id === id);
    } catch (e) {
      const err = e as api.RequestError;
      setMessage(`template: ${err.body?.problems[0]?.message ?? err.message}`);
      return;
    }
    if (!t) return;
    const yaml = t.yaml;
    setFiles((old) => {
      const target = old.find((f) => f.name === "new-policies.yaml");
      if (target) return old.map((f) => (f === target ? { ...f, text: appendDocument(f.text, yaml) } : f));
      return [...old, { name: "new-policies.yaml", text: yaml }];
    });
    setActive("new-policies.yaml");
    const name = /^  name: (\S+)$/m.exec(yaml)?.[1];
    if (name) pendingPolicy.current = `${templateNs}/${name}`;
    setMessage(`added template "${t.title}" (namespace ${templateNs}) to new-policies.yaml`);
  }

  const matrix = analysis?.matrix ?? lastMatrix;
  return (
    <div class="app">
      <header>
        <h1>podnet</h1>
        <nav>
          <button class={view === "policies" ? "on" : ""} data-testid="nav-policies" onClick={() => setView("policies")}>
            Policy editor
          </button>
          <button
            class={view === "flows" ? "on" : ""}
            data-testid="nav-flows"
            onClick={() => {
              setView("flows");
              setFlowsOpened(true);
            }}
          >
            Flows
          </button>
        </nav>
        {view === "policies" && (
          <div class="toolbar">
            <label class="button">
              Open files…
              <input
                type="file"
                multiple
                accept=".yaml,.yml,.json"
                data-testid="open-files"
                onChange={(e) => openFiles(e.currentTarget.files)}
              />
            </label>
            <button data-testid="paste" onClick={() => setPaste(paste === null ? "" : null)}>
              Paste…
            </button>
            <button
              data-testid="load-lab"
              disabled={!lab?.available}
              title={lab?.available ? `load the objects of lab ${lab.name}` : lab?.error ?? "no lab"}
              onClick={fromLab}
            >
              Load from lab
            </button>
            <span class="group">
              <select
                data-testid="template-select"
                value=""
                onChange={(e) => {
                  addTemplate(e.currentTarget.value);
                  e.currentTarget.value = "";
                }}
              >
                <option value="">Add template…</option>
                {templates.map((t) => (
                  <option value={t.id} title={t.description}>
                    {t.title}
                  </option>
                ))}
              </select>
              in namespace
              <datalist id="namespaces">
                {(analysis?.namespaces ?? []).map((n) => (
                  <option value={n.name} />
                ))}
              </datalist>
              <input
                data-testid="template-namespace"
                list="namespaces"
                size={10}
                value={templateNs}
                onInput={(e) => setTemplateNs(e.currentTarget.value)}
              />
            </span>
            <button data-testid="download" disabled={!activeFile} onClick={() => activeFile && download(activeFile.name, activeFile.text)}>
              Download YAML
            </button>
            <button
              data-testid="apply-lab"
              disabled={!lab?.available || !analysis?.valid}
              title="create or update the policies of these files in the lab"
              onClick={applyToLab}
            >
              Apply to lab
            </button>
            <button
              data-testid="reset-baseline"
              disabled={!analysis?.matrix}
              title="compare the matrix with what it is now"
              onClick={() => analysis?.matrix && setBaseline(cellMap(analysis.matrix))}
            >
              Set baseline
            </button>
          </div>
        )}
      </header>
      <p class="message" data-testid="message">
        {message}
      </p>
      {flowsOpened && (
        <div style={{ display: view === "flows" ? "" : "none" }} data-testid="flows-view">
          <FlowsView
            onOpenPolicy={openPolicy}
            onSuggested={(yaml) => {
              addFile("suggested.yaml", yaml);
              setView("policies");
              setMessage("added the suggested policies as suggested.yaml");
            }}
          />
        </div>
      )}
      {view === "flows" ? null : (
        <>
          {paste !== null && (
            <div class="paste">
              <textarea
                data-testid="paste-text"
                placeholder="paste YAML or JSON manifests"
                value={paste}
                onInput={(e) => setPaste(e.currentTarget.value)}
              />
              <button
                data-testid="paste-add"
                onClick={() => {
                  addFile("pasted.yaml", paste);
                  setPaste(null);
                }}
              >
                Add as pasted.yaml
              </button>
            </div>
          )}
          <main>
            <aside class="left">
              <h2>Policies</h2>
              <ul class="policies" data-testid="policy-list">
                {policyList.map((g) => (
                  <li
                    class={g.ref === policyRef ? "on" : ""}
                    data-testid={`policy-${g.ref}`}
                    onClick={() => selectPolicy(g.ref)}
                  >
                    <span class="kind">{g.kind.replace("NetworkPolicy", "NP").replace("BaselineAdmin", "BA").replace("Admin", "A")}</span>{" "}
                    {g.ref}
                  </li>
                ))}
                {brokenPolicies.map((p) => (
                  <li
                    class="broken"
                    data-testid={`broken-${p.object}`}
                    title="this document has errors"
                    onClick={() => p.file && showSpan(p.file, p.doc, null, p.items)}
                  >
                    <span class="kind">✗</span> {p.object}
                  </li>
                ))}
              </ul>
              <h2>Problems</h2>
              <ProblemsView analysis={analysis} pending={pending} onProblem={onProblem} onFinding={onFinding} />
            </aside>
            <section class="center">
              {graph ? (
                <>
                  <h2>
                    {graph.kind} {graph.ref}
                    {graph.priority !== undefined && graph.priority !== null ? ` (priority ${graph.priority})` : ""}
                    {graphBroken && <span class="badge bad"> has errors: drawn as last valid</span>}
                  </h2>
                  <PolicyGraphView graph={graph} selection={selection} onSelect={select} />
                  {selection && graphFile && graph.doc !== null && !graphBroken && (
                    <EditForm
                      key={`${graph.ref}|${JSON.stringify(selection)}|${formRev}`}
                      graph={graph}
                      selection={selection}
                      text={graphFile.text}
                      doc={graph.doc}
                      prefix={itemsPrefix(graph.items)}
                      onText={(text, next) => {
                        setText(graphFile.name, text);
                        setActive(graphFile.name);
                        if (next !== undefined) {
                          setSelection(next ?? { type: "subject" });
                          setFormRev((r) => r + 1);
                        }
                      }}
                    />
                  )}
                </>
              ) : (
                <p class="hint">{files.length ? "Pick a policy on the left." : ""}</p>
              )}
            </section>
            <section class="right">
              <div class="tabs">
                {files.map((f) => (
                  <button class={f.name === active ? "on" : ""} data-testid={`tab-${f.name}`} onClick={() => setActive(f.name)}>
                    {f.name}
                  </button>
                ))}
              </div>
              {activeFile && (
                <textarea
                  ref={textarea}
                  class="yaml"
                  spellcheck={false}
                  data-testid="yaml"
                  value={activeFile.text}
                  onInput={(e) => {
                    setText(activeFile.name, e.currentTarget.value);
                    setFormRev((r) => r + 1);
                  }}
                />
              )}
            </section>
          </main>
          <section class="bottom">
            <div>
              <h2>What-if matrix</h2>
              {matrix ? (
                <MatrixView
                  matrix={matrix}
                  baseline={baseline}
                  stale={!analysis?.matrix}
                  selected={cell ? cellKey(cell.from, cell.to) : null}
                  onCell={(from, to) => ask(from, to)}
                />
              ) : (
                <p class="hint">No valid manifests yet.</p>
              )}
            </div>
            <div>
              <h2>Explain</h2>
              {cell ? (
                <ExplainView
                  key={explanation ? `${explanation.from}|${explanation.to}|${explanation.protocol}|${explanation.port}` : "none"}
                  result={explanation}
                  error={explainError}
                  onAsk={(protocol, port) => ask(cell.from, cell.to, protocol, port)}
                  onRule={openRule}
                />
              ) : (
                <p class="hint">Click a matrix cell to see why it is allowed or denied.</p>
              )}
            </div>
          </section>
        </>
      )}
    </div>
  );
}
