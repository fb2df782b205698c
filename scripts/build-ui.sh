#!/usr/bin/env bash
# Builds the web UI's front end (ui/) into podnet/ui/static, where `podnet ui` serves it.
# Its libraries come from the npm registry, pinned by ui/package-lock.json (npm ci); node and npm
# come from Debian (scripts/bootstrap.sh installs them when missing).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here/ui"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
touch "$here/podnet/ui/static/.built"
