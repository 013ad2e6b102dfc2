#!/usr/bin/env python3
"""Renders BENCHMARKS.md's plots from a `loadgen --json-out` file.

Usage: python3 bench/plots.py bench.json docs/bench
Installs matplotlib with pip when it is missing. Plots only what the run measured:
latency percentiles of the query scenario (gateway vs floor), the gateway's RSS
over subscribers (fan-out) and over time (soak).
"""
import json
import subprocess
import sys
from pathlib import Path

try:
    import matplotlib
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
    import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def scenario(document, prefix):
    return next((s for s in document["scenarios"] if s["scenario"].startswith(prefix)), None)


def query_latency(document, out):
    query = scenario(document, "query throughput")
    if not query or "gateway" not in query["series"]:
        return
    names = ["p50_ms", "p90_ms", "p99_ms", "max_ms"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for offset, server in [(-0.2, "gateway"), (0.2, "floor")]:
        latency = query["series"][server]["latency"] or {}
        values = [latency.get(name, 0) for name in names]
        ax.bar([i + offset for i in range(len(names))], values, width=0.4, label=server)
    ax.set_xticks(range(len(names)), [name.removesuffix("_ms") for name in names])
    ax.set_ylabel("latency (ms)")
    ax.set_title("Cached registrationStatus: gateway vs floor")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "query-latency.png", dpi=120)


def rss_curve(document, out, prefix, key, xlabel, title, filename):
    found = scenario(document, prefix)
    points = found and found["series"].get(key)
    if not points:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([x for x, _ in points], [kib / 1024 for _, kib in points], marker="o")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gateway RSS (MiB)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out / filename, dpi=120)


def main():
    document = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    query_latency(document, out)
    rss_curve(document, out, "fan-out", "rss_curve", "subscribers", "RSS over subscribers", "fanout-rss.png")
    rss_curve(document, out, "soak", "rss", "seconds", "RSS during the soak", "soak-rss.png")


if __name__ == "__main__":
    main()
