#!/usr/bin/env bash
# Runs every example against a running gateway (GATEWAY_URL, GATEWAY_WS_URL), as
# tests/interop/run.sh does in CI: installs each one's pinned dependencies first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${GATEWAY_URL:?the gateway, e.g. http://127.0.0.1:8080}"
export GATEWAY_WS_URL="${GATEWAY_WS_URL:-${GATEWAY_URL/http/ws}}"
status=0

"$here/curl/status.sh" demo-succeeded.com || status=1

(cd "$here/node-subscription" && npm ci --no-audit --no-fund --loglevel=error && node watch.mjs demo-succeeded.com) || status=1

venv="$here/python-gql/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python-gql/requirements.txt"
"$venv/bin/python" "$here/python-gql/watch.py" demo-succeeded.com || status=1

exit $status
