# Sourced by the benchmarks that compare cached query throughput across gateway
# configurations (bench/observability.sh, bench/redis.sh): one simulator, one gateway per
# configuration, each measured with `loadgen query` (which also measures the bare floor
# server in the same run), interleaved over ROUNDS rounds; prints each run and the medians.
#
# The sourcing script sets nothing first; it gets `bin_dir`, `logs`, `pids` (killed on exit),
# `free_port` (from tests/interop/lib.sh),
# `base_url` (the simulator), `start NAME [env assignments or -u VAR]...` (with `extra_flags`
# for additional gateway flags) and `compare BASELINE OTHER...`.
set -euo pipefail
bin_dir="$(realpath "${1:-$(dirname "$0")/../target/release}")"
rounds="${ROUNDS:-3}"
duration="${DURATION:-10s}"
account=023e105f4ecef8ad9ca31a8372d0c353
binary="$bin_dir/registrar-gateway"
# `logged`, `free_port`, `logs`, `pids` (killed on exit) and `start_simulator`.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/interop/lib.sh"

start_simulator --rate-limit 0 --manual-clock --max-workflows 1000000

declare -A urls gateway_pids
start() {
    local name=$1
    shift
    env "$@" "$binary" --listen 127.0.0.1:0 --base-url "$base_url" \
        --api-token bench-token --account-id "$account" --upstream-budget 100000000 \
        --cache-ttl-active 1h ${extra_flags:-} >"$logs/$name.log" 2>&1 &
    pids+=($!)
    gateway_pids[$name]=$!
    urls[$name]="http://$(logged "$logs/$name.log" address)"
}

# Measures every named configuration ROUNDS times, interleaved, the order rotated each round
# (so that no configuration always runs first, on a machine warming up or cooling down); the
# medians are given relative to the first named (the baseline).
compare() {
    printf '%-9s %5s %14s %12s %12s\n' config round 'requests/s' 'p99 ms' 'of floor'
    local names=("$@")
    for round in $(seq "$rounds"); do
        local shift_by=$(((round - 1) % ${#names[@]}))
        for name in "${names[@]:shift_by}" "${names[@]:0:shift_by}"; do
            "$bin_dir/loadgen" --bin-dir "$bin_dir" --gateway-url "${urls[$name]}" \
                --simulator-url "${base_url%/client/v4}" --gateway-pid "${gateway_pids[$name]}" \
                --json-out "$logs/$name-$round.json" query --duration "$duration" >/dev/null
            python3 - "$logs/$name-$round.json" "$name" "$round" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["scenarios"][0]["metrics"]
print(f'{sys.argv[2]:<9} {sys.argv[3]:>5} {m["gateway requests/s"]:>14,.0f} {m["gateway p99 ms"]:>12.2f} {m["ours / floor (requests/s)"]:>12.2f}')
PY
        done
    done
    python3 - "$logs" "$rounds" "$@" <<'PY'
import json, statistics, sys
logs, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def runs(name):
    return [json.load(open(f"{logs}/{name}-{r}.json"))["scenarios"][0]["metrics"] for r in range(1, rounds + 1)]
base = statistics.median(m["gateway requests/s"] for m in runs(names[0]))
print("\nmedians:")
for name in names:
    ms = runs(name)
    rps = statistics.median(m["gateway requests/s"] for m in ms)
    p99 = statistics.median(m["gateway p99 ms"] for m in ms)
    floor = statistics.median(m["ours / floor (requests/s)"] for m in ms)
    print(f"{name:<9} {rps:>10,.0f} requests/s  p99 {p99:6.2f} ms  {rps / base:6.1%} of {names[0]}  {floor:.2f} of floor")
PY
}
