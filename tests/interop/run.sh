#!/usr/bin/env bash
# Interop: the reference GraphQL-over-HTTP audit and the reference websocket clients
# (graphql-ws, subscriptions-transport-ws) against a real gateway in front of a
# manual-clock simulator, both started here on loopback ports and stopped at exit.
# Usage: tests/interop/run.sh [path/to/registrar-gateway]   (default: target/debug)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../target/debug/registrar-gateway}")"
logs="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$logs"' EXIT

source "$here/lib.sh"
install_clients

export NO_COLOR=1 RUST_LOG=info
"$binary" simulate --listen 127.0.0.1:0 --manual-clock >"$logs/simulator.log" 2>&1 &
pids+=($!)
base_url="$(logged "$logs/simulator.log" base_url)"
env -u CLOUDFLARE_EMAIL -u CLOUDFLARE_API_KEY \
    CLOUDFLARE_BASE_URL="$base_url" CLOUDFLARE_API_TOKEN=interop-token \
    CLOUDFLARE_ACCOUNT_ID=023e105f4ecef8ad9ca31a8372d0c353 \
    "$binary" --listen 127.0.0.1:0 --poll-initial 50ms --poll-max 50ms >"$logs/gateway.log" 2>&1 &
pids+=($!)
address="$(logged "$logs/gateway.log" address)"

export GATEWAY_URL="http://$address" GATEWAY_WS_URL="ws://$address" SIMULATOR_URL="${base_url%/client/v4}"
cd "$here"
status=0
node audit.mjs || status=1
node transport-ws.mjs || status=1
node legacy.cjs || status=1
exit $status
