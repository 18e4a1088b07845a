#!/usr/bin/env bash
# The project's test command: formatting, lints, the API docs, then every test of the workspace.
# Runs on a clean checkout with nothing installed by hand; whatever the tests need is
# installed by scripts/setup.sh (idempotent, cached outside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/setup.sh
KAFKA_PLATFORM_MONITORING=1 KAFKA_PLATFORM_KAFKA=1 source scripts/setup.sh

# The AWS API emulator (the AWS provider's tests) and a Kafka node (the services' tests);
# each is stopped on exit if this run started it.
stops=()
stop_servers() { for stop in "${stops[@]}"; do $stop || true; done; }
trap stop_servers EXIT
started=$(scripts/moto.sh start) || { echo "test: the AWS emulator did not start" >&2; exit 1; }
eval "$started"
[ "$KAFKA_PLATFORM_MOTO_STARTED" = 1 ] && stops+=("scripts/moto.sh stop")
started=$(scripts/kafka.sh start) || { echo "test: the Kafka node did not start" >&2; exit 1; }
eval "$started"
[ "$KAFKA_PLATFORM_KAFKA_STARTED" = 1 ] && stops+=("scripts/kafka.sh stop")

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Build outputs are cached outside the clone, like every install: a fresh clone on a machine
# that ran the tests before compiles only the workspace's own crates, not its dependencies
# (the AWS SDK alone takes minutes). CARGO_TARGET_DIR overrides it. Each clone's own crates
# add a few GiB, so a cache grown past 40 GiB is emptied first. Incremental compilation
# only pays for a tree that is built again, so CI (a clone built once) goes without.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KAFKA_PLATFORM_CACHE/target}"
if [ -d "$CARGO_TARGET_DIR" ] && [ "$(du -s --block-size=1G "$CARGO_TARGET_DIR" | cut -f1)" -gt 40 ]; then
  echo "test: $CARGO_TARGET_DIR is over 40 GiB; emptying it"
  rm -rf "$CARGO_TARGET_DIR"
fi
[ "${CI:-}" = true ] && export CARGO_INCREMENTAL=0
# insta: never write snapshots during a test run; a changed snapshot fails the run.
export INSTA_UPDATE=no

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== no import circle between a crate's modules"
python3 scripts/module-cycles.py .
echo "== cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee "${TMPDIR:-/tmp}/kafka-platform-test.log"
status=${PIPESTATUS[0]}
echo "== schemathesis against the admin API"
scripts/fuzz-admin-api.sh || status=1
echo "== the example crate outside the workspace, against the emulator"
scripts/own-stack.sh || status=1
echo "== the split example (a network stack and a Kafka stack referencing it), against the emulator"
scripts/split-stacks.sh || status=1
echo "== a damaged jar in the Kafka cache is named and fetched again"
scripts/damaged-kafka-cache.sh || status=1

# One summary line for the whole run, counted from every test binary's own summary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, i }' \
  "${TMPDIR:-/tmp}/kafka-platform-test.log"
exit "$status"
