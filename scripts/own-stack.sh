#!/usr/bin/env bash
# The example crate outside the workspace (examples/own-stack), built with its own lock file
# and run as its user would against the AWS emulator, through the command line iac-cli gives
# it: preview, apply, an update (one more broker), refresh, outputs --json, a targeted apply,
# a state verb, destroy. Part of scripts/test.sh; needs AWS_ENDPOINT_URL (the emulator).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AWS_ENDPOINT_URL:?the emulator must run: eval \"\$(scripts/moto.sh start)\"}"
manifest=examples/own-stack/Cargo.toml
cargo fmt --manifest-path "$manifest" -- --check
cargo build --quiet --locked --manifest-path "$manifest"
program="$(realpath "${CARGO_TARGET_DIR:-examples/own-stack/target}")/debug/own-stack"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
stack="own$$"
expect() { # expect <what> <text> <command...>: the command succeeds and prints <text>
  local what="$1" text="$2"
  shift 2
  local out
  if ! out="$("$@" 2>&1)" || ! grep -qF -- "$text" <<<"$out"; then
    printf 'own-stack: %s: expected "%s" in:\n%s\n' "$what" "$text" "$out" >&2
    echo "own-stack: 0 passed, 1 failed"
    exit 1
  fi
}
expect preview "Resources: 41 to create, 1 to read" "$program" preview "$stack"
expect apply "Stack $stack: 41 created, 0 updated, 0 replaced, 0 deleted, 0 unchanged, 0 failed" "$program" apply "$stack" --yes
expect "apply again (outputs)" "partner_rule: \"sgr-" "$program" apply "$stack" --yes
expect "update (its progress)" "+  broker-4: creating done" env OWN_STACK_BROKERS=4 "$program" apply "$stack" --yes
expect refresh "0 changed, 42 unchanged, 0 unreadable" env OWN_STACK_BROKERS=4 "$program" refresh "$stack"
expect "outputs --json" "\"partner_rule\": \"sgr-" "$program" outputs "$stack" --json
expect "a targeted apply" "0 created, 0 updated, 0 replaced, 0 deleted, 3 unchanged, 0 failed, 0 skipped, 39 not targeted" env OWN_STACK_BROKERS=4 "$program" apply "$stack" --yes --target partner-clients
expect "state show" "\"type\": \"aws:ec2:SecurityGroupRule\"" "$program" state show "$stack" partner-clients
expect destroy "42 deleted" "$program" destroy "$stack" --yes
echo "own-stack: 1 passed, 0 failed (preview, apply, update, refresh, outputs --json, a targeted apply, state show, destroy)"
