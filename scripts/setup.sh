#!/usr/bin/env bash
# Installs what the tests need, idempotently, caching outside the repository
# (KAFKA_PLATFORM_CACHE, default ~/.cache/kafka-platform). Source it or run it.
#
#   - the Rust toolchain must already be there (cargo, rustfmt, clippy);
#   - a Python virtualenv with moto[server] (the AWS API emulator), pinned below.
set -euo pipefail

export KAFKA_PLATFORM_CACHE="${KAFKA_PLATFORM_CACHE:-$HOME/.cache/kafka-platform}"
mkdir -p "$KAFKA_PLATFORM_CACHE"

MOTO_VERSION="5.2.5"
VENV="$KAFKA_PLATFORM_CACHE/venv"
export KAFKA_PLATFORM_VENV="$VENV"

setup_fail() {
  echo "setup: $*" >&2
  return 1 2>/dev/null || exit 1
}

for tool in cargo rustfmt cargo-clippy python3; do
  command -v "$tool" >/dev/null 2>&1 || setup_fail "\`$tool\` is missing: install it first (Rust via rustup with rustfmt and clippy; python3 with venv)"
done

# The virtualenv is rebuilt only when the pinned requirements change.
requirements="moto[server]==$MOTO_VERSION"
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$requirements" ]; then
  echo "setup: creating $VENV with $requirements"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || setup_fail "python3 -m venv failed: install the python3-venv package"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$requirements" \
    || setup_fail "pip could not install $requirements"
  echo "$requirements" > "$VENV/.requirements"
fi
