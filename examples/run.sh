#!/usr/bin/env bash
# Runs every example at once against a sandbox gateway started here (the embedded
# simulator on its real clock, as `cargo run` gives a newcomer), as CI does from
# tests/interop/run.sh: installs the pinned packages first where they are missing or
# stale (npm ci at the repository's root, pip in python-gql/.venv, Debian's Chromium),
# generates the codegen types, type-checks and builds the React page, then follows
# demo-succeeds.com with each client in a fresh account (so its demo starts when
# they ask) and prints each one's output. About a minute after the installs.
# Usage: examples/run.sh [path/to/registrar-gateway]   (default: target/debug)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../target/debug/registrar-gateway}")"
source "$here/../tests/interop/lib.sh"
install_clients
install_chromium
venv="$here/python-gql/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python-gql/requirements.txt"

# The sandbox: no Cloudflare credentials. The React page is served from its own
# origin, which the gateway must allow (--cors-origins).
page_port="$(free_port)"
env -u CLOUDFLARE_API_TOKEN -u CLOUDFLARE_API_TOKEN_FILE -u CLOUDFLARE_API_KEY -u CLOUDFLARE_API_KEY_FILE \
    -u CLOUDFLARE_EMAIL -u CLOUDFLARE_EMAIL_FILE -u CLOUDFLARE_ACCOUNT_ID -u CLOUDFLARE_BASE_URL \
    "$binary" --listen 127.0.0.1:0 --cors-origins "http://127.0.0.1:$page_port" >"$logs/gateway.log" 2>&1 &
pids+=($!)

cd "$here"
npm run --silent codegen >"$logs/codegen.log" 2>&1 || { cat "$logs/codegen.log"; exit 1; }
npm run --silent typecheck
npm run --silent build

address="$(logged "$logs/gateway.log" address)"
export GATEWAY_URL="http://$address" GATEWAY_WS_URL="ws://$address"
# A fresh account: its demo workflows start on its first request, so each run sees
# demo-succeeds.com move (PENDING 10 s, IN_PROGRESS 20 s, SUCCEEDED).
ACCOUNT_ID="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export ACCOUNT_ID PAGE_PORT="$page_port"

# Each example, bounded in time, its output kept for the report below.
names=()
declare -A example_pid
run() {
    local name=$1
    shift
    names+=("$name")
    timeout 120 "$@" >"$logs/$name.out" 2>&1 &
    example_pid[$name]=$!
    pids+=($!)
}
run curl curl/status.sh demo-succeeded.com
run node-subscription node node-subscription/watch.mjs demo-succeeds.com
run graphql-sse node graphql-sse/watch.mjs demo-succeeds.com
run urql node urql/watch.mjs demo-succeeds.com
run codegen node codegen/dist/status.mjs demo-succeeds.com
run python-gql "$venv/bin/python" python-gql/watch.py demo-succeeds.com
run apollo-react node apollo-react/check.mjs demo-succeeds.com

passed=0
failed=0
for name in "${names[@]}"; do
    if wait "${example_pid[$name]}"; then result=ok passed=$((passed + 1)); else result=FAIL failed=$((failed + 1)); fi
    echo "== $result example $name"
    sed 's/^/   /' "$logs/$name.out"
done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
