#!/usr/bin/env bash
# Throughput of the HTTP source connector (on demand; not part of the tests): records/s end
# to end from a fast local paged source into the broker, beside a raw rdkafka producer with
# the same delivery settings to the same broker in the same run (target: >= 80% of it).
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
RUST_LOG=warn "${CARGO_TARGET_DIR:-target}"/release/examples/bench_http_source "${1:-200000}" "${2:-15}"
