// Calls to the UI's JSON API (same origin: `podnet ui` serves both).
import type { Analysis, ApiError, Explanation, ManifestFile, Template } from "./types";

export class RequestError extends Error {
  constructor(
    message: string,
    readonly body: ApiError | null,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const resp = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data: unknown = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = data as ApiError | { detail?: unknown } | null;
    const message =
      err && "error" in err ? err.error : `${method} ${path}: HTTP ${resp.status} ${JSON.stringify(data)}`;
    throw new RequestError(message, err && "error" in err ? err : null);
  }
  return data as T;
}

export const analyze = (files: ManifestFile[]) => call<Analysis>("POST", "/api/analyze", { files });

export const explain = (files: ManifestFile[], from: string, to: string, protocol?: string, port?: string) =>
  call<Explanation>("POST", "/api/explain", { files, from, to, protocol: protocol || null, port: port || null });

export const templates = (namespace: string, ingressNamespace: string) =>
  call<Template[]>(
    "GET",
    `/api/templates?namespace=${encodeURIComponent(namespace)}&ingress_namespace=${encodeURIComponent(ingressNamespace)}`,
  );

export const labStatus = () => call<{ available: boolean; name: string | null; error: string | null }>("GET", "/api/lab");

export const labObjects = () => call<{ files: ManifestFile[] }>("GET", "/api/lab/objects");

export const labApply = (files: ManifestFile[]) =>
  call<{ applied: { object: string; namespace: string; result: string }[] }>("POST", "/api/lab/apply", {
    files,
    policies_only: true,
  });
