// Validation errors (as the analyzer reports them, with file, document and field path), warnings and lint.
import type { Analysis, Finding, Problem } from "./types";

export function ProblemsView(props: {
  analysis: Analysis | null;
  pending: boolean;
  onProblem: (p: Problem) => void;
  onFinding: (f: Finding) => void;
}) {
  const a = props.analysis;
  if (!a) return <div class="problems" />;
  const lint = a.lint ?? [];
  return (
    <div class="problems" data-testid="problems">
      <p class={`status ${a.valid ? "ok" : "bad"}`} data-testid="validity">
        {a.valid ? "valid" : `${a.errors.length} error${a.errors.length === 1 ? "" : "s"}`}
        {a.valid && lint.length ? `, ${lint.length} lint finding${lint.length === 1 ? "" : "s"}` : ""}
        {props.pending ? " …" : ""}
      </p>
      <ul>
        {a.errors.map((p) => (
          <li class="error" data-testid="error" onClick={() => props.onProblem(p)} title="show in the YAML">
            <span class="where">
              {p.file}
              {p.doc !== null ? ` doc ${p.doc}` : ""}
              {p.object ? ` · ${p.kind} ${p.object}` : ""}
            </span>
            {p.path && <code>{p.path}</code>} {p.message}
          </li>
        ))}
        {a.warnings.map((p) => (
          <li class="warning" onClick={() => props.onProblem(p)}>
            <span class="where">warning · {p.file}</span> {p.path && <code>{p.path}</code>} {p.message}
          </li>
        ))}
        {lint.map((f) => (
          <li class="lint" data-testid="lint" onClick={() => props.onFinding(f)} title="show in the YAML">
            <span class="where">
              [{f.code}] {f.policy}
            </span>
            {f.field && <code>{f.field}</code>} {f.message}
            <div class="fix">fix: {f.fix}</div>
          </li>
        ))}
      </ul>
    </div>
  );
}
