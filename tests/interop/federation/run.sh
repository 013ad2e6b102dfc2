#!/usr/bin/env bash
# Federation interop: the gateway started with --federation (in front of its own
# manual-clock simulator) composed into a supergraph with a tiny Domain subgraph and
# served by Hive Gateway, all on loopback ports, all stopped at exit. Its Node
# packages are the interop clients' (tests/interop/package.json, one lockfile at the root).
# Usage: tests/interop/federation/run.sh [path/to/registrar-gateway]   (default: target/debug)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../../target/debug/registrar-gateway}")"
source "$here/../lib.sh"
install_clients
# Nothing reads a Hive or Apollo account from the environment here.
unset HIVE_REGISTRY_TOKEN HIVE_USAGE_TARGET HIVE_TARGET HIVE_ACCESS_TOKEN \
    HIVE_USAGE_ACCESS_TOKEN HIVE_TRACE_ACCESS_TOKEN HIVE_CDN_ENDPOINT HIVE_CDN_KEY \
    APOLLO_KEY APOLLO_GRAPH_REF OTEL_EXPORTER_OTLP_ENDPOINT

start_simulator --manual-clock
start_gateway --federation
cd "$here"
node federation.mjs
