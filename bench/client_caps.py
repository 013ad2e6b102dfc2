#!/usr/bin/env python3
"""One client holding its maximum of websockets, and what a second client then gets,
against a gateway this script starts itself with default settings (and the simulator,
both on free 127.0.0.1 ports).

One client (127.0.0.1) opens graphql-transport-ws websockets, each initialised
(connection_init, connection_ack), until it has tried 520: it holds its maximum
(--max-websockets-per-client) and the rest are refused 429. A second client
(127.0.0.2, on loopback on Linux) then asks /healthz and a cached registrationStatus
300 times each on fresh connections. Prints both latencies with nothing held and with
the websockets held, and how many websockets the first client got.

    cargo build --release --bin registrar-gateway
    python3 bench/client_caps.py target/release/registrar-gateway
"""
import base64
import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from fair_shares import percentiles, start, stop  # noqa: E402

SECOND = "127.0.0.2"
QUERY = json.dumps({"query": '{ registrationStatus(domain: "demo-succeeded.com") { state } }'})


class From(http.client.HTTPConnection):
    """An HTTP connection whose socket is bound to the second client's address."""

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), self.timeout, (SECOND, 0))


def latencies(port, method, path, body=None, count=300):
    measured = []
    for _ in range(count):
        started = time.perf_counter()
        connection = From("127.0.0.1", port, timeout=10)
        headers = {"content-type": "application/json"} if body else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        assert response.status == 200, (response.status, answer)
        connection.close()
        measured.append((time.perf_counter() - started) * 1000)
    return measured


def websocket(port):
    """An initialised graphql-transport-ws socket from 127.0.0.1, or the refusal's status line."""
    sock = socket.create_connection(("127.0.0.1", port), 10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((
        f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status = head.split(b"\r\n", 1)[0].decode()
    if " 101 " not in status:
        sock.close()
        return None, status
    payload = json.dumps({"type": "connection_init"}).encode()
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    frame = sock.recv(4096)
    assert b"connection_ack" in frame, frame
    return sock, status


def main(binary):
    processes, port, _ = start(binary, [])
    try:
        latencies(port, "POST", "/graphql", QUERY, count=5)  # the status is cached from here on
        quiet_health = latencies(port, "GET", "/healthz")
        quiet_query = latencies(port, "POST", "/graphql", QUERY)
        held, refused = [], {}
        for _ in range(520):
            sock, status = websocket(port)
            if sock:
                held.append(sock)
            else:
                refused[status] = refused.get(status, 0) + 1
        busy_health = latencies(port, "GET", "/healthz")
        busy_query = latencies(port, "POST", "/graphql", QUERY)
        print(f"first client: {len(held)} websockets held of 520 tried; refused: {refused}")
        print(f"second client /healthz, nothing held: {percentiles(quiet_health)}")
        print(f"second client /healthz, first client at its maximum: {percentiles(busy_health)}")
        print(f"second client query, nothing held: {percentiles(quiet_query)}")
        print(f"second client query, first client at its maximum: {percentiles(busy_query)}")
        for sock in held:
            sock.close()
    finally:
        stop(processes)


if __name__ == "__main__":
    main(sys.argv[1])
