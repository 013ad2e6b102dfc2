#!/usr/bin/env bash
# The poll economy of one workflow: 1,000 subscribers (the graphql-ws reference client) follow
# demo-succeeds.com from pending to succeeded, against a real-clock simulator and a gateway with
# default settings (but one client's subscription cap); prints the simulator's request count.
# Takes about 40 s; not part of CI.
# The client script, thousand-subscribers.mjs, stays in tests/interop: Node resolves its
# graphql-ws import from the npm project beside it, and lib.sh's helpers expect that folder.
# Usage: bench/thousand-subscribers.sh [path/to/registrar-gateway]   (default: target/release)
set -euo pipefail
bench="$(cd "$(dirname "$0")" && pwd)"
here="$bench/../tests/interop"
binary="$(realpath "${1:-$bench/../target/release/registrar-gateway}")"
source "$here/lib.sh"
install_clients

start_simulator
# Default settings, except that the 1,000 subscribers all come from 127.0.0.1: one client,
# as fair shares count them, whose cap (--max-subscriptions-per-client) is not measured here.
start_gateway --max-subscriptions-per-client 100000
cd "$here"
node thousand-subscribers.mjs
