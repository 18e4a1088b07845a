#!/usr/bin/env bash
# Load run of the admin API on loopback (on demand; not part of the tests): 100 topics,
# 64 connections, `GET /topics` and `GET /topics/{name}` with wrk (Debian package), beside
# the raw rdkafka metadata call measured in the same run (the floor).
#
#   scripts/bench-admin-api.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections=64

if ! command -v wrk >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "bench: install wrk (sudo apt-get install wrk)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
eval "$(scripts/tansu.sh start)"
[ "$KAFKA_PLATFORM_TANSU_STARTED" = 1 ] && trap 'scripts/tansu.sh stop' EXIT

cargo build --release --quiet -p services --bin kafka-admin-api --example metadata_floor
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn target/release/kafka-admin-api --listen "127.0.0.1:$port" \
  --bootstrap-servers "$KAFKA_BOOTSTRAP_SERVERS" >/dev/null 2>&1 &
api=$!
trap 'kill $api 2>/dev/null; [ "$KAFKA_PLATFORM_TANSU_STARTED" = 1 ] && scripts/tansu.sh stop' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

prefix="bench-$$"
for i in $(seq 0 99); do
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d "{\"name\": \"$prefix-$i\", \"partitions\": 3, \"replication_factor\": 1}" \
    "http://127.0.0.1:$port/topics"
done
echo "100 topics created (${prefix}-0 … ${prefix}-99); $connections connections, ${seconds}s per run"

for path in /topics "/topics/$prefix-42"; do
  echo "== GET $path"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port$path" \
    | grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors'
done
echo "== floor"
target/release/examples/metadata_floor "$KAFKA_BOOTSTRAP_SERVERS" "$prefix-42" "$connections" "$seconds"

for i in $(seq 0 99); do
  curl -sf -o /dev/null -X DELETE "http://127.0.0.1:$port/topics/$prefix-$i" || true
done
