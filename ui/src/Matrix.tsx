// The what-if reachability matrix: rows are sources, columns destinations; cells changed since the baseline
// are outlined and tell what they were. Every cell opens its explanation.
import type { Analysis } from "./types";

export type MatrixData = NonNullable<Analysis["matrix"]>;

export const cellKey = (from: string, to: string) => `${from} → ${to}`;

export function cellMap(m: MatrixData): Map<string, string> {
  return new Map(m.cells.map((c) => [cellKey(c.from, c.to), c.connections]));
}

function short(conns: string): string {
  if (conns === "All Connections") return "all";
  if (conns === "No Connections") return "none";
  return conns;
}

function tone(conns: string): string {
  if (conns === "All Connections") return "all";
  if (conns === "No Connections") return "none";
  return "some";
}

export function MatrixView(props: {
  matrix: MatrixData;
  baseline: Map<string, string> | null;
  stale: boolean;
  selected: string | null;
  onCell: (from: string, to: string) => void;
}) {
  const { matrix, baseline } = props;
  const cells = cellMap(matrix);
  const eps = matrix.endpoints;
  const changed = baseline ? [...cells].filter(([k, v]) => baseline.has(k) && baseline.get(k) !== v).length : 0;
  return (
    <div class={`matrix${props.stale ? " stale" : ""}`} data-testid="matrix">
      <p class="summary">
        {props.stale
          ? "The manifests have errors: this is the last valid matrix."
          : `${eps.length} endpoints; ${changed} cell${changed === 1 ? "" : "s"} changed since the baseline.`}
      </p>
      <table>
        <thead>
          <tr>
            <th class="corner">from ↓ to →</th>
            {eps.map((e) => (
              <th class="col" title={e.ref}>
                <span>{e.ref}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {eps.map((src) => (
            <tr>
              <th class="row" title={`${src.ref} (${src.kind})`}>
                {src.ref}
              </th>
              {eps.map((dst) => {
                const key = cellKey(src.ref, dst.ref);
                const conns = cells.get(key);
                if (conns === undefined) return <td class="empty" />;
                const was = baseline?.get(key);
                const isChanged = was !== undefined && was !== conns;
                return (
                  <td
                    class={`cell ${tone(conns)}${isChanged ? " changed" : ""}${props.selected === key ? " selected" : ""}`}
                    data-testid={`cell-${src.ref}|${dst.ref}`}
                    data-changed={isChanged ? "yes" : "no"}
                    title={`${key}: ${conns}${isChanged ? `\nwas: ${was}` : ""}\nclick to explain`}
                    onClick={() => props.onCell(src.ref, dst.ref)}
                  >
                    {short(conns)}
                    {isChanged && <span class="was">was {short(was)}</span>}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
