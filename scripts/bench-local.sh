#!/usr/bin/env bash
# Measures the local platform (stacks/envs/local.toml: 3 KRaft controllers, 3 brokers,
# Connect and the services) as a user meets it:
#   - from nothing (after a destroy: no data) and from stopped-with-data (every process
#     stopped, as by a reboot; `stacks refresh local` notices): the time from
#     `stacks apply local` to every Prometheus target UP,
#   - the resident memory of all its processes,
#   - the time of a no-op `stacks apply local` (the median of five).
#
#   scripts/bench-local.sh          # destroys a running local platform first, and at the end
#   scripts/bench-local.sh --keep   # leaves it running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
KAFKA_PLATFORM_MONITORING=1 KAFKA_PLATFORM_KAFKA=1 source scripts/setup.sh
source scripts/passphrase.sh

# The same build as local.build, so the apply finds the programs up to date.
cargo build -q -p stacks
cargo build -q -p services --bins
stacks="${CARGO_TARGET_DIR:-target}"/debug/stacks
prometheus="http://127.0.0.1:$(sed -n 's/^prometheus = \([0-9]*\)$/\1/p' stacks/envs/local.toml)"

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# One apply from the state left by `prepare`: until every target is UP.
measure() {
  local what="$1" start applied up
  start=$(now)
  $stacks apply local --yes >/dev/null
  applied=$(since "$start")
  until curl -sf "$prometheus/api/v1/targets" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
sys.exit(0 if targets and all(t["health"] == "up" for t in targets) else 1)'; do
    sleep 0.1
  done
  up=$(since "$start")
  printf 'apply local %s: %.2f s; all targets UP %.2f s after the apply began\n' "$what" "$applied" "$up"
}

# Every process the stack started carries its mark in its environment.
marked() {
  for environ in /proc/[0-9]*/environ; do
    if { tr '\0' '\n' < "$environ"; } 2>/dev/null | grep -qx 'IAC_STACK=local'; then
      pid=${environ#/proc/}
      echo "${pid%/environ}"
    fi
  done
}

$stacks destroy local --yes >/dev/null
measure "from nothing"
# shellcheck disable=SC2046 # one pid a word
kill $(marked)
while [ -n "$(marked)" ]; do sleep 0.2; done
$stacks refresh local >/dev/null
measure "from stopped-with-data"

rss=0
count=0
for pid in $(marked); do
  kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
  rss=$((rss + ${kib:-0}))
  count=$((count + 1))
done

noops=()
for _ in 1 2 3 4 5; do
  t=$(now)
  $stacks apply local --yes >/dev/null
  noops+=("$(since "$t")")
done
median=$(printf '%s\n' "${noops[@]}" | sort -n | sed -n 3p)

printf 'resident memory: %d MiB in %d processes\n' "$((rss / 1024))" "$count"
printf 'no-op apply local: median %.3f s of 5\n' "$median"

if [ "${1:-}" != "--keep" ]; then
  $stacks destroy local --yes >/dev/null
fi
