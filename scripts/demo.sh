#!/usr/bin/env bash
# `make demo`: a 2-node lab running the example shop, what podnet's analyzer says about it, and real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
podnet=.venv/bin/podnet
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "make demo needs root: the lab creates network namespaces" >&2
    exit 1
fi

say podnet lab up --name demo --nodes 2
$podnet lab down --name demo >/dev/null 2>&1 || true
$podnet lab up --name demo --nodes 2

say podnet apply -f examples/shop
$podnet apply -f examples/shop --name demo

printf 'waiting for the pods to run'
for _ in $(seq 1 120); do
    running=$($podnet get pods -A --name demo 2>/dev/null | grep -c Running || true)
    [ "$running" -ge 6 ] && break
    printf '.'
    sleep 0.5
done
echo

say podnet get pods -A
$podnet get pods -A --name demo

say podnet policy matrix -f examples/shop -o md
$podnet policy matrix -f examples/shop -o md | grep -v 'No Connections'

say podnet policy explain -f examples/shop --from web/frontend --to data/postgres --port 5432
$podnet policy explain -f examples/shop --from web/frontend --to data/postgres --port 5432 || true

say podnet connectivity test
$podnet connectivity test --name demo --timeout 0.5 || true

cat <<'TXT'

The lab "demo" keeps running. Try next:
  .venv/bin/podnet lab probe --from web/frontend-0 --to api/backend-0 --port 9000
  .venv/bin/podnet lab exec web/frontend-0 -- ip addr
  .venv/bin/podnet connectivity matrix      # every pod pair and port, probed with real packets
  .venv/bin/podnet observe --verdict DROPPED --last 10   # which policy dropped what (flows)
  .venv/bin/podnet ui --lab demo           # policy editor + live service map on http://127.0.0.1:8080/
  .venv/bin/podnet delete networkpolicy backend -n api; .venv/bin/podnet connectivity test
  export KUBECONFIG=/run/podnet/labs/demo/apiserver/kubeconfig; .venv/bin/kubectl get pods -A
  .venv/bin/podnet lab down --name demo     # removes everything the lab made
The agents enforce the policies in the kernel (eBPF): `connectivity test` probes every pod pair and
declared port and shows where real traffic and the analyzer disagree.
docs/lab.md, docs/policy.md and docs/datapath.md explain it all.
TXT
