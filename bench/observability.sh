#!/usr/bin/env bash
# The cost of metrics and tracing on cached query throughput: three gateways in front of
# one simulator, identical but for observability —
#   off      --disable-metrics, no OTEL_* variables
#   metrics  the default: /metrics recorded and served
#   traces   metrics, and every span exported (OTEL_EXPORTER_OTLP_ENDPOINT to a local sink
#            that accepts and drops OTLP/HTTP JSON; the SDK's default always-on sampler)
# each measured with `loadgen query` (which also measures the bare floor server in the same
# run), interleaved over ROUNDS rounds; prints each run and the medians.
#
# Usage: bench/observability.sh [bin-dir]   (default: target/release; env ROUNDS=3 DURATION=10s)
# The bin-dir needs registrar-gateway and loadgen (cargo build --release --bins).
source "$(dirname "$0")/query_configs.sh"

# An OTLP/HTTP sink: 200 to every export, nothing kept.
sink_port="$(free_port)"
python3 - "$sink_port" >"$logs/sink.log" 2>&1 <<'PY' &
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
pids+=($!)

extra_flags=--disable-metrics start off -u OTEL_EXPORTER_OTLP_ENDPOINT
extra_flags= start metrics -u OTEL_EXPORTER_OTLP_ENDPOINT
extra_flags= start traces OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port"
compare off metrics traces
