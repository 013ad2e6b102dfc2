#!/usr/bin/env bash
# Interop: real clients against a real gateway in front of a manual-clock
# simulator, both started here on loopback ports and stopped at exit: the
# GraphQL-over-HTTP audit, the websocket clients (graphql-ws,
# subscriptions-transport-ws), graphql-js and graphql-core introspection against
# the committed SDL, Apollo Client and urql, GraphiQL in Debian's Chromium, and
# the whole registration flow with graphql-ws, Apollo Client and urql;
# subscriptions over HTTP (graphql-sse, Apollo Client's HttpLink, the live status
# page in Chromium, in streaming/); the examples (examples/run.sh, against a
# sandbox gateway of their own); then federation/run.sh (a supergraph served by
# Hive Gateway), prometheus.sh (a real Prometheus scraping a gateway of its own)
# and scale-out.sh (three replicas sharing a real Redis behind nginx with
# deploy/scale-out/nginx.conf). The Node packages: one lockfile at the
# repository's root (package.json there; this folder's package.json is a workspace).
# Usage: tests/interop/run.sh [path/to/registrar-gateway]   (default: target/debug)
# Screenshots of failed browser checks go to $ARTEFACTS (default tests/interop/artefacts).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../target/debug/registrar-gateway}")"
source "$here/lib.sh"
install_clients
install_python_clients
install_chromium
export ARTEFACTS="${ARTEFACTS:-$here/artefacts}"
echo "interop: browser screenshots on failure go to $ARTEFACTS"

start_simulator --manual-clock
# Every client here connects from 127.0.0.1, so fair shares would count them as one:
# the whole budget is theirs (--client-budget-share 1).
start_gateway --poll-initial 50ms --poll-max 50ms --upstream-retry-initial 1ms --upstream-retry-max 20ms \
    --enable-registration --client-budget-share 1
cd "$here"
status=0
for script in audit.mjs transport-ws.mjs legacy.cjs introspection.mjs clients.mjs explorer.mjs \
    registration-flow.mjs registration-clients.mjs \
    streaming/streaming.mjs streaming/status-page.mjs; do
    node "$script" || status=1
done
.venv/bin/python introspection.py || status=1
"$here/../../examples/run.sh" "$binary" || status=1
"$here/federation/run.sh" "$binary" || status=1
"$here/prometheus.sh" "$binary" || status=1
"$here/scale-out.sh" "$binary" || status=1
exit $status
