#!/usr/bin/env bash
# The split example (kafka-components/examples/split.rs) run as its user would against the
# AWS emulator: the Kafka stack is refused before the network stack exists, then the network
# stack and the Kafka stack in it are applied, and destroyed in the reverse order. Part of
# scripts/test.sh (which builds the example with the workspace's tests); needs
# AWS_ENDPOINT_URL (the emulator). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AWS_ENDPOINT_URL:?the emulator must run: eval \"\$(scripts/moto.sh start)\"}"
cargo build --quiet --locked -p kafka-components --example split
program="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/examples/split"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
name="split$$"
fail() {
  printf 'split-stacks: %s\n' "$1" >&2
  echo "split-stacks: 0 passed, 1 failed"
  exit 1
}
expect() { # expect <what> <text> <command...>: the command succeeds and prints <text>
  local what="$1" text="$2"
  shift 2
  local out
  if ! out="$("$@" 2>&1)" || ! grep -qF -- "$text" <<<"$out"; then
    fail "$what: expected \"$text\" in:"$'\n'"$out"
  fi
}
if out="$("$program" preview "$name-kafka" 2>&1)"; then
  fail "the Kafka stack was planned before its network existed:"$'\n'"$out"
fi
grep -qF "stack \`$name-network\` has no state in this backend: apply it first" <<<"$out" ||
  fail "no clear refusal before the network exists:"$'\n'"$out"
expect "apply network" "Stack $name-network: 10 created" "$program" apply "$name-network" --yes
expect "network outputs" "subnet_id_eu-central-1a: \"subnet-" "$program" outputs "$name-network"
expect "apply kafka" "Stack $name-kafka: 30 created, 0 updated, 0 replaced, 0 deleted, 0 unchanged, 0 failed" "$program" apply "$name-kafka" --yes
expect "apply kafka again" "Resources: 2 to read, 30 unchanged" "$program" preview "$name-kafka"
expect "destroy kafka" "30 deleted" "$program" destroy "$name-kafka" --yes
expect "destroy network" "10 deleted" "$program" destroy "$name-network" --yes
echo "split-stacks: 1 passed, 0 failed (refused first, network, kafka, destroyed in reverse)"
