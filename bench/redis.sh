#!/usr/bin/env bash
# What Redis costs per cached query: three gateways in front of one simulator —
#   local     no --redis-url: the in-process cache alone
#   redis     --redis-url: a cached query is a hit in the in-process cache, Redis is not asked
#   redis-l2  --redis-url and --cache-capacity 0: the in-process cache keeps nothing, so every
#             query is answered from the Redis level (one GET round trip) — what a query costs
#             on a replica that has not seen the registration while another one has
# each measured with `loadgen query` (which also measures the bare floor server), interleaved over
# ROUNDS rounds; prints each run and the medians. Starts its own redis-server on a free port.
#
# Usage: bench/redis.sh [bin-dir]   (default: target/release; env ROUNDS=3 DURATION=10s)
# The bin-dir needs registrar-gateway and loadgen (cargo build --release --bins).
source "$(dirname "$0")/query_configs.sh"

command -v redis-server >/dev/null || apt-get install -y redis-server >/dev/null
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$logs/redis.log" 2>&1 &
pids+=($!)

extra_flags= start local -u REDIS_URL
extra_flags= start redis REDIS_URL="redis://127.0.0.1:$redis_port"
extra_flags="--cache-capacity 0" start redis-l2 REDIS_URL="redis://127.0.0.1:$redis_port"
compare local redis redis-l2
