#!/usr/bin/env bash
# Prometheus interop: 100 identical concurrent queries against a real gateway, then
# `promtool check metrics` lints its /metrics exposition, and a real Prometheus server
# (Debian's package, started here on a free loopback port with a generated config and
# a temporary TSDB; never the system service) scrapes the gateway and answers the
# poll economy in PromQL: client lookups per upstream call, which must be 100.
# It also checks deploy/: promtool checks its Prometheus config, and the compose file and
# Grafana provisioning parse as YAML wired to each other (docker itself is not run here).
# Usage: tests/interop/prometheus.sh [path/to/registrar-gateway]   (default: target/debug)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../target/debug/registrar-gateway}")"
source "$here/lib.sh"

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    apt-get update -qq && apt-get install -y -qq prometheus >/dev/null
fi
if ! command -v curl >/dev/null; then
    apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi

# deploy/: the compose file runs the gateway, Prometheus and Grafana, wired together.
deploy="$here/../../deploy"
promtool check config "$deploy/prometheus/prometheus.yml" >/dev/null
if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-yaml >/dev/null
fi
/usr/bin/python3 - "$deploy" <<'PY'
import json, pathlib, sys, yaml
deploy = pathlib.Path(sys.argv[1])
compose = yaml.safe_load((deploy / "compose.yaml").read_text())
services = compose["services"]
assert {"gateway", "prometheus", "grafana"} <= services.keys(), services.keys()
metrics_address = services["gateway"]["environment"]["GATEWAY_METRICS_LISTEN"]
port = metrics_address.rsplit(":", 1)[1]
scrape = yaml.safe_load((deploy / "prometheus/prometheus.yml").read_text())
targets = [t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
assert targets == [f"gateway:{port}"], targets
for mount in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
    source = mount.split(":")[0]
    if source.startswith("./"):
        assert (deploy / source).exists(), source
datasources = yaml.safe_load((deploy / "grafana/provisioning/datasources/prometheus.yaml").read_text())
assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
yaml.safe_load((deploy / "grafana/provisioning/dashboards/dashboards.yaml").read_text())
json.loads((deploy / "grafana/dashboards/registrar-gateway.json").read_text())
PY
echo "ok: deploy/ parses and is wired together (compose, Prometheus config, Grafana provisioning)"

start_simulator --manual-clock
# A long freshness, so the count does not depend on how fast this machine starts 100 curls.
# Every curl comes from 127.0.0.1, one client to fair shares: the whole budget is its,
# and so are as many connections as it opens at once.
start_gateway --cache-ttl-active 1h --client-budget-share 1 --max-connections-per-client 1000
queries=100

# The known work: $queries identical lookups at once, which the gateway answers with one call.
body='{"query":"{ registrationStatus(domain: \"demo-pending.com\") { state } }"}'
clients=()
for _ in $(seq "$queries"); do
    curl -fsS -H 'content-type: application/json' -d "$body" "$GATEWAY_URL/graphql" >/dev/null &
    clients+=($!)
done
for client in "${clients[@]}"; do
    wait "$client"
done
calls="$(curl -fsS "$SIMULATOR_URL/__sim/stats" | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).requests_total))')"
if [ "$calls" != 1 ]; then
    echo "FAIL: $queries identical queries made $calls upstream calls, expected 1" >&2
    exit 1
fi

curl -fsS "$GATEWAY_URL/metrics" >"$logs/exposition.txt"
if ! promtool check metrics <"$logs/exposition.txt"; then
    echo "FAIL: promtool check metrics rejected the exposition" >&2
    exit 1
fi
echo "ok: promtool check metrics accepts the exposition ($(grep -vc '^#' "$logs/exposition.txt") samples)"

# A free loopback port for Prometheus (the OS picks it; the gap before Prometheus binds is tiny).
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
cat >"$logs/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: registrar-gateway
    static_configs:
      - targets: ["${GATEWAY_URL#http://}"]
YAML
promtool check config "$logs/prometheus.yml" >/dev/null
prometheus --config.file="$logs/prometheus.yml" --storage.tsdb.path="$logs/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$logs/prometheus.log" 2>&1 &
pids+=($!)

# Asks Prometheus `$1` until it answers one sample, then prints its value.
promql() {
    local query=$1
    for _ in $(seq 150); do
        local answer
        answer="$(curl -fsS --get --data-urlencode "query=$query" \
            "http://127.0.0.1:$port/api/v1/query" 2>/dev/null || true)"
        local value
        value="$(printf '%s' "$answer" | node -e '
            let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
                try { const r = JSON.parse(s).data.result; if (r.length === 1) console.log(r[0].value[1]); } catch {}
            })')"
        if [ -n "$value" ]; then
            echo "$value"
            return 0
        fi
        sleep 0.2
    done
    echo "FAIL: Prometheus never answered $query; its log:" >&2
    cat "$logs/prometheus.log" >&2
    return 1
}

economy='sum(registrar_gateway_cache_lookups_total) / sum(registrar_gateway_upstream_requests_total)'
up="$(promql 'up{job="registrar-gateway"}')"
value="$(promql "$economy")"
echo "Prometheus: up=$up; $economy = $value"
if [ "$up" != 1 ] || [ "$value" != "$queries" ]; then
    echo "FAIL: expected up=1 and $queries client lookups per upstream call" >&2
    exit 1
fi
echo "ok: a real Prometheus scraped the gateway: $value client lookups per upstream call"
