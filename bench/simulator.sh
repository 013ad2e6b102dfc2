#!/usr/bin/env bash
# Benchmarks the simulator's hot path: GET registration-status of a demo domain.
# Builds --release, starts `registrar-gateway simulate` with rate limiting off
# (the default 1200 requests / 5 min would turn the run into 429s), runs wrk
# (2 threads, 64 connections, 10 s) and prints requests/s.
#
# Usage: bench/simulator.sh [port]   (env: DURATION=10s THREADS=2 CONNECTIONS=64)
set -euo pipefail

cd "$(dirname "$0")/.."
PORT="${1:-18787}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
URL="http://127.0.0.1:${PORT}/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/registrar/registrations/demo-succeeds.com/registration-status"

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
fi

cargo build --release --quiet
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
"${TARGET_DIR}/release/registrar-gateway" simulate --listen "127.0.0.1:${PORT}" --rate-limit 0 &
SIMULATOR=$!
trap 'kill "$SIMULATOR" 2>/dev/null; wait "$SIMULATOR" 2>/dev/null || true' EXIT

# Wait (bounded) until the simulator answers.
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null -H 'Authorization: Bearer bench-token' "$URL"; then break; fi
    sleep 0.1
done

wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -H 'Authorization: Bearer bench-token' "$URL" | tee /tmp/simulator-wrk.txt
echo "requests/s: $(awk '/Requests\/sec/ {print $2}' /tmp/simulator-wrk.txt)"
