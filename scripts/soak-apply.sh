#!/usr/bin/env bash
# The apply/destroy crash soak, long version (on demand; `.ci/run` runs the short one):
# `kill -9` of `stacks apply dev` / `stacks destroy dev` at seeded random moments with every
# AWS call slowed to 300-900 ms by the fault-injecting proxy, the same command again after
# each kill, then an independent (boto3) count of what the emulator holds.
#
#   scripts/soak-apply.sh [kills, default 20] [seed, default: the time]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
export CRASH_SOAK_KILLS="${1:-20}"
[ $# -ge 2 ] && export CRASH_SOAK_SEED="$2"
export CRASH_SOAK_LATENCY_MS="${CRASH_SOAK_LATENCY_MS:-300-900}"
eval "$(scripts/moto.sh start)"
[ "$KAFKA_PLATFORM_MOTO_STARTED" = 1 ] && trap 'scripts/moto.sh stop' EXIT
cargo test -q -p stacks --test crash -- --nocapture | grep -E '^crash soak|test result|panicked|kill [0-9]'
