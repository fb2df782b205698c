// Builds the editor into podnet/ui/static, where `podnet ui` serves it (no CDN: everything is bundled).
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { outDir: "../podnet/ui/static", emptyOutDir: true, sourcemap: false },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
