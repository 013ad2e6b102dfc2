#!/usr/bin/env python3
"""Issue 10's slow-client flood and greedy-client scenarios, against a gateway this
script starts itself (with the simulator, both on free 127.0.0.1 ports).

1. Slow clients: 500 connections each send half a request's headers and stop;
   meanwhile /healthz is asked 300 times on fresh connections. Prints /healthz
   latency without and with the flood, and when the flood's sockets are closed
   (--header-read-timeout, 10 s by default).
2. Greedy vs polite: one client (X-Forwarded-For 198.51.100.1, the gateway trusting
   127.0.0.1 as its proxy) looks up distinct domains as fast as 8 threads can, while
   nine polite clients each look one up every 4 s, for 20 s, against the default
   budget (1,200 requests / 5 min: a burst of 120). Run with fair shares (the
   default --client-budget-share 0.25) and without (1). Prints each side's answers
   and the greedy client's share of the upstream requests.

    cargo build --release --bin registrar-gateway
    python3 bench/fair_shares.py target/release/registrar-gateway
"""
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} never answered")


def start(binary, flags):
    """The simulator and a gateway in front of it; returns (processes, gateway port, simulator URL)."""
    sim_port, gw_port = free_port(), free_port()
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"RUST_LOG": "error"})
    simulator = subprocess.Popen(
        [binary, "simulate", "--listen", f"127.0.0.1:{sim_port}", "--rate-limit", "0"], **quiet)
    simulator_url = f"http://127.0.0.1:{sim_port}"
    wait_ready(simulator_url + "/__sim/stats")
    gateway = subprocess.Popen(
        [binary, "--listen", f"127.0.0.1:{gw_port}", "--base-url", simulator_url + "/client/v4",
         "--api-token", "bench-token", "--account-id", ACCOUNT, *flags], **quiet)
    wait_ready(f"http://127.0.0.1:{gw_port}/healthz")
    return [gateway, simulator], gw_port, simulator_url


def stop(processes):
    for process in processes:
        process.terminate()
        process.wait()


def healthz_latencies(port, count):
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b"ok"
        connection.close()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def percentiles(latencies):
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms"


def slow_clients(binary, flood=500):
    processes, port, _ = start(binary, [])
    try:
        quiet = healthz_latencies(port, 300)
        sockets = []
        for _ in range(flood):
            slow = socket.create_connection(("127.0.0.1", port))
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            sockets.append(slow)
        flooded_at = time.monotonic()
        during = healthz_latencies(port, 300)
        print(f"slow clients: /healthz without the flood: {percentiles(quiet)}")
        print(f"slow clients: /healthz with {flood} half-sent requests held open: {percentiles(during)}")
        for slow in sockets:
            slow.settimeout(30)
        closed = 0
        for slow in sockets:
            try:
                # Read whatever the gateway says (a 408, or nothing) until it closes.
                while slow.recv(1024):
                    pass
                closed += 1
            except socket.timeout:
                pass
            except OSError:
                closed += 1
        print(f"slow clients: {closed} of {flood} closed by the gateway "
              f"{time.monotonic() - flooded_at:.1f} s after they stalled (--header-read-timeout 10s)")
        for slow in sockets:
            slow.close()
    finally:
        stop(processes)


def lookup(port, client, domain):
    body = json.dumps({"query": "query($d:String!){registrationStatus(domain:$d){state}}",
                       "variables": {"d": domain}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body,
        headers={"content-type": "application/json", "x-forwarded-for": client})
    try:
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
    except urllib.error.HTTPError as error:
        answer = json.loads(error.read())
    errors = answer.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else "ok"


def greedy_vs_polite(binary, share, seconds=20):
    processes, port, simulator_url = start(
        binary, ["--trusted-proxies", "127.0.0.1", "--client-budget-share", str(share)])
    outcomes = {"greedy": {}, "polite": {}}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    def record(who, outcome):
        with lock:
            outcomes[who][outcome] = outcomes[who].get(outcome, 0) + 1

    def greedy():
        while time.monotonic() < deadline:
            with lock:
                n = next(counter)
            record("greedy", lookup(port, "198.51.100.1", f"greedy-{n}.com"))

    def polite(i):
        n = 0
        while time.monotonic() < deadline:
            record("polite", lookup(port, f"203.0.113.{i}", f"polite-{i}-{n}.com"))
            n += 1
            time.sleep(4)

    try:
        threads = [threading.Thread(target=greedy) for _ in range(8)]
        threads += [threading.Thread(target=polite, args=(i,)) for i in range(1, 10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        upstream = json.loads(urllib.request.urlopen(simulator_url + "/__sim/stats").read())
        total = upstream["requests_total"]
        greedy_calls = outcomes["greedy"].get("ok", 0)
        polite = outcomes["polite"]
        polite_ok = polite.get("ok", 0)
        print(f"--client-budget-share {share}: greedy {outcomes['greedy']}; "
              f"polite {polite} ({100 * polite_ok / max(1, sum(polite.values())):.0f} % answered); "
              f"upstream requests {total}, greedy's share {100 * greedy_calls / max(1, total):.0f} %")
    finally:
        stop(processes)


def main(binary):
    slow_clients(binary)
    greedy_vs_polite(binary, 0.25)
    greedy_vs_polite(binary, 1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/release/registrar-gateway")
