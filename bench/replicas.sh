#!/usr/bin/env bash
# Three replicas against one (issue 13): loadgen's collapse and fan-out scenarios, each run with
# `--replicas 1` (one gateway, no Redis) and `--replicas 3` (three gateways sharing a redis-server
# that loadgen starts, clients and subscribers spread round-robin over them), interleaved over
# ROUNDS rounds. Prints every run and a Markdown table of the medians (BENCHMARKS.md section 8).
#
# Usage: bench/replicas.sh [bin-dir]   (default: target/release; needs registrar-gateway and loadgen,
#        `cargo build --release --bins`, and Debian's redis-server)
# env: ROUNDS=3, REPLICAS=3, COLLAPSE="" (extra `loadgen collapse` flags),
#      FANOUT="--subscribers 10000 --registrations 100" (extra `loadgen fanout` flags; websockets)
set -euo pipefail
bin_dir="$(realpath "${1:-$(dirname "$0")/../target/release}")"
rounds="${ROUNDS:-3}"
replicas="${REPLICAS:-3}"
collapse_flags="${COLLAPSE:-}"
fanout_flags="${FANOUT:---subscribers 10000 --registrations 100}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
command -v redis-server >/dev/null || [ -x /usr/sbin/redis-server ] || apt-get install -y redis-server >/dev/null

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
    for n in 1 "$replicas"; do
        # shellcheck disable=SC2086
        "$bin_dir/loadgen" --bin-dir "$bin_dir" --replicas "$n" --json-out "$out/collapse-$n-$round.json" \
            collapse $collapse_flags >/dev/null
        # shellcheck disable=SC2086
        "$bin_dir/loadgen" --bin-dir "$bin_dir" --replicas "$n" --json-out "$out/fanout-$n-$round.json" \
            fanout --transports websocket $fanout_flags >/dev/null
        echo "round $round, $n replica(s) done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$rounds" 1 "$replicas" <<'PY'
import json, statistics, sys
out, rounds, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def scenarios(kind, n):
    for r in range(1, rounds + 1):
        yield {s["scenario"]: s["metrics"] for s in json.load(open(f"{out}/{kind}-{n}-{r}.json"))["scenarios"]}

rows = [
    ("collapse", "collapse (moving states)", "ratio upstream / ideal", "collapse ratio, moving states (upstream / ideal)", "{:.3f}"),
    ("collapse", "collapse (mixed states)", "ratio upstream / ideal", "collapse ratio, mixed states (upstream / ideal)", "{:.3f}"),
    ("collapse", "collapse (moving states)", "upstream requests", "upstream requests, moving (ideal {ideal})", "{:.0f}"),
    ("collapse", "collapse (moving states)", "client requests", "client requests answered, moving", "{:,.0f}"),
    ("collapse", "collapse (moving states)", "client requests failed", "client requests failed, moving", "{:.0f}"),
    ("fanout", "fan-out (websocket subscriptions)", "polls per registration per interval", "fan-out: polls per registration per interval", "{:.2f}"),
    ("fanout", "fan-out (websocket subscriptions)", "change events received", "fan-out: change events received", "{:,.0f}"),
    ("fanout", "fan-out (websocket subscriptions)", "change-to-event p50 ms", "fan-out: change-to-event p50 ms", "{:.1f}"),
    ("fanout", "fan-out (websocket subscriptions)", "change-to-event p99 ms", "fan-out: change-to-event p99 ms", "{:.1f}"),
    ("fanout", "fan-out (websocket subscriptions)", "poll answer to event p50 ms", "fan-out: poll answer to event p50 ms", "{:.1f}"),
    ("fanout", "fan-out (websocket subscriptions)", "poll answer to event p99 ms", "fan-out: poll answer to event p99 ms", "{:.1f}"),
    ("fanout", "fan-out (websocket subscriptions)", "RSS per idle subscriber KiB", "fan-out: RSS per idle subscriber KiB (summed over replicas)", "{:.2f}"),
    ("fanout", "fan-out (websocket subscriptions)", "failures", "fan-out: failures", "{:.0f}"),
]
ideal = next(scenarios("collapse", configs[0]))["collapse (moving states)"]["ideal upstream requests"]
print("\n| figure | " + " | ".join(f"{n} replica{'s' if n != '1' else ''} (median; per round)" for n in configs) + " |")
print("|---|" + "---:|" * len(configs))
for kind, scenario, metric, label, fmt in rows:
    cells = []
    for n in configs:
        values = [m[scenario][metric] for m in scenarios(kind, n)]
        known = [v for v in values if v is not None]
        median = fmt.format(statistics.median(known)) if known else "-"
        each = " / ".join(fmt.format(v) if v is not None else "-" for v in values)
        cells.append(f"**{median}** ({each})")
    print(f"| {label.format(ideal=ideal)} | " + " | ".join(cells) + " |")
PY
