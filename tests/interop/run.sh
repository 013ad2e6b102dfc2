#!/usr/bin/env bash
# Interop: the reference GraphQL-over-HTTP audit, the reference websocket clients
# (graphql-ws, subscriptions-transport-ws) and the clients of subscriptions over HTTP
# (graphql-sse, Apollo Client's HttpLink, the status page in Debian's Chromium; their
# own package in streaming/) against a real gateway in front of a
# manual-clock simulator, both started here on loopback ports and stopped at exit.
# Usage: tests/interop/run.sh [path/to/registrar-gateway]   (default: target/debug)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../target/debug/registrar-gateway}")"
source "$here/lib.sh"
install_clients
install_clients streaming
command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

start_simulator --manual-clock
start_gateway --poll-initial 50ms --poll-max 50ms
cd "$here"
status=0
node audit.mjs || status=1
node transport-ws.mjs || status=1
node legacy.cjs || status=1
node streaming/streaming.mjs || status=1
node streaming/status-page.mjs || status=1
exit $status
