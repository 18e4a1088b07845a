#!/usr/bin/env bash
# Throughput of the HTTP source connector (on demand; not part of the tests): records/s end
# to end from a fast local paged source into the broker, beside a raw rdkafka producer with
# the same delivery settings to the same broker in the same run (target: >= 80% of it). When
# the local platform runs (scripts/run.sh), the same again on its 3 + 3 cluster: over
# SASL_SSL, 3 replicas and 2 in sync, as the platform's connector writes.
#
#   scripts/bench-http-source.sh [records, default 200000] [rounds, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
# A broker of its own (fresh storage, so it starts empty): the numbers do not depend on what
# earlier runs left in the test broker.
export KAFKA_PORT="${BENCH_KAFKA_PORT:-19292}"
eval "$(scripts/kafka.sh start)"
[ "$KAFKA_PLATFORM_KAFKA_STARTED" = 1 ] && trap 'scripts/kafka.sh stop' EXIT
cargo build --release --quiet -p services --example bench_http_source
bench="${CARGO_TARGET_DIR:-target}/release/examples/bench_http_source"
echo "== one broker of its own (plaintext, 1 replica)"
RUST_LOG=warn "$bench" "${1:-200000}" "${2:-15}"

local_port() { sed -n "s/^$1 = \([0-9]*\)$/\1/p" stacks/envs/local.toml; }
credentials="${XDG_STATE_HOME:-$HOME/.local/state}/kafka-platform/local"
if ! curl -sf "http://127.0.0.1:$(local_port admin_api)/ready" >/dev/null; then
  echo "the local platform is not running: scripts/run.sh starts it, for the 3 + 3 cluster's numbers"
  exit 0
fi
echo "== the local platform's 3 + 3 cluster (SASL_SSL as the connector's principal, 3 replicas, 2 in sync)"
client=$(local_port broker_client)
KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$client,127.0.0.1:$((client + 100)),127.0.0.1:$((client + 200))" \
  BENCH_KAFKA_SETTINGS="security.protocol=sasl_ssl sasl.mechanisms=SCRAM-SHA-512 sasl.username=http-source-connector ssl.ca.location=$credentials/ca.crt" \
  BENCH_KAFKA_PASSWORD="$(cat "$credentials/http-source-connector.password")" \
  BENCH_REPLICATION=3 KAFKA_PLATFORM_KAFKA_PID="" \
  RUST_LOG=warn "$bench" "${1:-200000}" "${2:-15}"
