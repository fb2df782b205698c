#!/usr/bin/env bash
# `make demo`: what podnet says about the example shop in examples/shop.
set -euo pipefail
cd "$(dirname "$0")/.."
podnet=.venv/bin/podnet
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say podnet policy matrix -f examples/shop
$podnet policy matrix -f examples/shop

say podnet policy explain -f examples/shop --from web/frontend --to data/postgres --port 5432
$podnet policy explain -f examples/shop --from web/frontend --to data/postgres --port 5432 || true

say podnet policy verdict -f examples/shop --from api/backend --to data/postgres --port pg
$podnet policy verdict -f examples/shop --from api/backend --to data/postgres --port pg

cat <<'TXT'

Try next:
  .venv/bin/podnet policy lint -f examples/shop
  .venv/bin/podnet policy matrix -f examples/shop -o dot
  .venv/bin/podnet policy diff -f examples/shop --against <your changed copy>
  docs/policy.md explains every command.
TXT
