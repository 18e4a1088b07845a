#!/usr/bin/env bash
# Installs what the tests need, idempotently, caching outside the repository
# (KAFKA_PLATFORM_CACHE, default ~/.cache/kafka-platform). Source it or run it.
#
# Today the workspace needs only the Rust toolchain the machine has (cargo, rustfmt,
# clippy). External test servers and validators are added here as the crates that use them
# arrive, so a fresh machine always gets them from this one place.
set -euo pipefail

export KAFKA_PLATFORM_CACHE="${KAFKA_PLATFORM_CACHE:-$HOME/.cache/kafka-platform}"
mkdir -p "$KAFKA_PLATFORM_CACHE"

for tool in cargo rustfmt cargo-clippy; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup: \`$tool\` is missing: install the Rust toolchain with rustup (with rustfmt and clippy)" >&2
    return 1 2>/dev/null || exit 1
  fi
done
