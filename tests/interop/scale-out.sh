#!/usr/bin/env bash
# Scaling out, with the proxy users deploy: three gateway replicas sharing a real Redis behind
# Debian's nginx running deploy/scale-out/nginx.conf (only its upstream addresses and listen port
# rewritten for loopback). Through the proxy: queries landing on each replica, the graphql-ws
# client following a registration through every state over a websocket (the upgrade config), and
# Chromium's view (behind-proxy.mjs: the explorer, a query and a subscription with the browser's
# Origin and a Host carrying the port).
# Then the benchmark's replicas mode, tiny (`loadgen --replicas 3 collapse`, BENCHMARKS.md section 8):
# polling clients spread over three replicas sharing a Redis cost one upstream call per
# registration per cache TTL, as one gateway does (without the shared cache it would be three).
# nginx and redis-server are installed when missing.
# Usage: tests/interop/scale-out.sh [path/to/registrar-gateway]   (default: target/debug)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../target/debug/registrar-gateway}")"
source "$here/lib.sh"
install_clients
for tool in nginx redis-server; do
    if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
        apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
    fi
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$logs/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "Ready to accept connections" "$logs/redis.log" && break; sleep 0.1; done

start_simulator --manual-clock
conf="$logs/nginx.conf"
cp "$here/../../deploy/scale-out/nginx.conf" "$conf"
for replica in 1 2 3; do
    env -u CLOUDFLARE_EMAIL -u CLOUDFLARE_API_KEY \
        CLOUDFLARE_BASE_URL="$base_url" CLOUDFLARE_API_TOKEN=interop-token \
        CLOUDFLARE_ACCOUNT_ID=023e105f4ecef8ad9ca31a8372d0c353 REDIS_URL="redis://127.0.0.1:$redis_port" \
        "$binary" --listen 127.0.0.1:0 --poll-initial 50ms --poll-max 50ms \
        >"$logs/gateway-$replica.log" 2>&1 &
    pids+=($!)
    address="$(logged "$logs/gateway-$replica.log" address)"
    sed -i "s/server gateway-$replica:8080/server $address/" "$conf"
done
proxy_port="$(free_port)"
sed -i "s/listen 8080;/listen 127.0.0.1:$proxy_port;/; s/^http {/http {\n    access_log off;/" "$conf"
"$nginx_bin" -t -q -c "$conf" -g "pid $logs/nginx.pid; error_log $logs/nginx-error.log; daemon off;"
"$nginx_bin" -c "$conf" -g "pid $logs/nginx.pid; error_log $logs/nginx-error.log; daemon off;" &
pids+=($!)
for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$proxy_port/healthz" 2>/dev/null && break
    sleep 0.1
done
export GATEWAY_URL="http://127.0.0.1:$proxy_port" GATEWAY_WS_URL="ws://127.0.0.1:$proxy_port"

status=0
# Every replica joined the shared store.
for replica in 1 2 3; do
    grep -q "sharing state with other replicas through redis" "$logs/gateway-$replica.log" || {
        echo "scale-out: replica $replica did not join Redis" >&2
        cat "$logs/gateway-$replica.log" >&2
        status=1
    }
done
# A query through the proxy, three times (round robin: each replica once).
for _ in 1 2 3; do
    answer="$(curl -fsS "$GATEWAY_URL/graphql" -H 'content-type: application/json' \
        -d '{"query":"{ registrationStatus(domain: \"demo-succeeded.com\") { state } }"}')"
    [[ "$answer" == *'"state":"SUCCEEDED"'* ]] || { echo "scale-out: query answered $answer" >&2; status=1; }
done
cd "$here"
node transport-ws.mjs || status=1
# The browser's view: Chromium sends Origin and a Host with the proxy's port.
install_chromium
GATEWAY_URL="http://localhost:$proxy_port" node behind-proxy.mjs || status=1

bin_dir="$(dirname "$binary")"
if [ ! -x "$bin_dir/loadgen" ]; then
    echo "scale-out: no loadgen beside $binary (cargo build --workspace builds both)" >&2
    status=1
elif ! "$bin_dir/loadgen" --bin-dir "$bin_dir" --replicas 3 --json-out "$logs/collapse.json" collapse \
    --clients 30 --registrations 6 --interval 100ms --duration 2s --ttl-active 500ms \
    >"$logs/collapse.txt" 2>&1; then
    echo "scale-out: loadgen --replicas 3 collapse failed" >&2
    cat "$logs/collapse.txt" >&2
    status=1
else
    python3 - "$logs/collapse.json" <<'PY' || { cat "$logs/collapse.txt" >&2; status=1; }
import json, sys
for scenario in json.load(open(sys.argv[1]))["scenarios"]:
    metrics = scenario["metrics"]
    ratio = metrics["ratio upstream / ideal"]
    assert metrics["gateway replicas"] == 3, metrics
    assert metrics["client requests"] > 0 and metrics["client requests failed"] == 0, metrics
    assert ratio <= 1.2, f"{scenario['scenario']}: upstream / ideal = {ratio:.3f} on 3 replicas (1 = one call per TTL)"
    print(f"ok: {scenario['scenario']} on 3 replicas: upstream / ideal = {ratio:.3f}")
PY
fi
[ $status -eq 0 ] && echo "ok: three replicas sharing Redis behind nginx (deploy/scale-out/nginx.conf)"
exit $status
