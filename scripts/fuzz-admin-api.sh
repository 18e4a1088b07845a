#!/usr/bin/env bash
# The admin API fuzzed from its own OpenAPI document with schemathesis (all checks, every
# phase), against the real binary and the test broker, once without a token and once with
# one. A consumer group lagging on a topic is made first (services/examples/fuzz_fixtures.rs),
# and scripts/schemathesis.toml has half the group ids tried name it. Part of scripts/test.sh;
# bounded in examples and time. Exits non-zero on any failure.
#
#   scripts/fuzz-admin-api.sh [examples per operation, default 25] [seed, default 1]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh >&2
examples="${1:-25}"
seed="${2:-1}"
eval "$(scripts/kafka.sh start)"
api=""
cleanup() {
  [ -n "$api" ] && kill "$api" 2>/dev/null && wait "$api" 2>/dev/null
  [ "$KAFKA_PLATFORM_KAFKA_STARTED" = 1 ] && scripts/kafka.sh stop
  return 0
}
trap cleanup EXIT
cargo build -q -p services --bin kafka-admin-api
cargo run -q -p services --example fuzz_fixtures
log="${TMPDIR:-/tmp}/kafka-platform-fuzz-admin-api.log"
config="$PWD/scripts/schemathesis.toml"
failed=0
for mode in open token; do
  # Each mode its own seed: the same one would create the same topics twice, and the second
  # mode would meet mostly 409s.
  [ "$mode" = token ] && seed=$((seed + 1))
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  args=(--listen "127.0.0.1:$port" --bootstrap-servers "$KAFKA_BOOTSTRAP_SERVERS" --max-partitions 20)
  auth=()
  if [ "$mode" = token ]; then
    args+=(--token fuzz-token)
    auth=(-H "Authorization: Bearer fuzz-token")
  fi
  RUST_LOG=warn "${CARGO_TARGET_DIR:-target}"/debug/kafka-admin-api "${args[@]}" >"$log" 2>&1 &
  api=$!
  echo "== schemathesis: admin API $mode (127.0.0.1:$port), $examples examples per operation, seed $seed"
  status=0
  (cd "${TMPDIR:-/tmp}" && timeout 600 "$KAFKA_PLATFORM_VENV/bin/schemathesis" --config-file "$config" run \
    "http://127.0.0.1:$port/openapi.json" --wait-for-schema 15 --checks all \
    --max-examples "$examples" --seed "$seed" --no-color "${auth[@]}") || status=$?
  kill "$api" 2>/dev/null && wait "$api" 2>/dev/null || true
  api=""
  if [ "$status" != 0 ]; then
    echo "schemathesis found failures against the admin API ($mode); its log: $log" >&2
    failed=$((failed + 1))
  fi
done
echo "schemathesis: $((2 - failed)) passed, $failed failed"
[ "$failed" = 0 ]
