#!/usr/bin/env bash
# The main job: stand up the dev platform on the local AWS emulator, end to end.
#
#   scripts/run.sh              # cargo run -p stacks -- apply dev --yes
#   scripts/run.sh preview      # any other verb for dev: preview, refresh, outputs, destroy
#
# Installs the emulator (scripts/setup.sh) and leaves it running on 127.0.0.1 so later
# commands see the same resources; `scripts/moto.sh stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/moto.sh start)"
verb="${1:-apply}"
[ $# -gt 0 ] && shift

# A fresh emulator has forgotten what the state file records: refresh first, so apply
# recreates what is missing instead of trusting stale state.
if [ "$KAFKA_PLATFORM_MOTO_STARTED" = 1 ] && [ -f "${IAC_STATE_DIR:-.iac/state}/dev.json" ]; then
  echo "The emulator was just started: refreshing the recorded state of dev first."
  cargo run -q -p stacks -- refresh dev
fi
case "$verb" in
  apply | destroy) exec cargo run -q -p stacks -- "$verb" dev --yes "$@" ;;
  *) exec cargo run -q -p stacks -- "$verb" dev "$@" ;;
esac
