#!/usr/bin/env bash
# The poll economy of one workflow: 1,000 subscribers (the graphql-ws reference client) follow
# demo-succeeds.com from pending to succeeded, against a real-clock simulator and a gateway with
# default settings; prints the simulator's request count. Takes about 40 s; not part of CI.
# Usage: tests/interop/thousand-subscribers.sh [path/to/registrar-gateway]   (default: target/release)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../target/release/registrar-gateway}")"
logs="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$logs"' EXIT
source "$here/lib.sh"
install_clients

export NO_COLOR=1 RUST_LOG=info
"$binary" simulate --listen 127.0.0.1:0 >"$logs/simulator.log" 2>&1 &
pids+=($!)
base_url="$(logged "$logs/simulator.log" base_url)"
env -u CLOUDFLARE_EMAIL -u CLOUDFLARE_API_KEY \
    CLOUDFLARE_BASE_URL="$base_url" CLOUDFLARE_API_TOKEN=interop-token \
    CLOUDFLARE_ACCOUNT_ID=023e105f4ecef8ad9ca31a8372d0c353 \
    "$binary" --listen 127.0.0.1:0 >"$logs/gateway.log" 2>&1 &
pids+=($!)
address="$(logged "$logs/gateway.log" address)"
cd "$here"
GATEWAY_WS_URL="ws://$address" SIMULATOR_URL="${base_url%/client/v4}" node thousand-subscribers.mjs
