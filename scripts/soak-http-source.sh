#!/usr/bin/env bash
# The HTTP source connector's crash soak, long version (on demand; `.ci/run` runs the short
# one): `kill -9` of the real binary at seeded random moments for paged and unpaged sources
# polled at 0, 50 and 1000 ms, a restart after each, then an independent read of the topic:
# every item once, in order per key, and no ERROR log line.
#
#   scripts/soak-http-source.sh [kills per shape, default 6] [seed, default: the time]
set -euo pipefail
cd "$(dirname "$0")/.."
export HTTP_SOURCE_SOAK_KILLS="${1:-6}"
[ $# -ge 2 ] && export HTTP_SOURCE_SOAK_SEED="$2"
eval "$(scripts/kafka.sh start)"
[ "$KAFKA_PLATFORM_KAFKA_STARTED" = 1 ] && trap 'scripts/kafka.sh stop' EXIT
cargo test -q -p services --test http_source -- kill_9_at_seeded_random_moments --nocapture \
  | grep -E '^crash soak|test result'
