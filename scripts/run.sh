#!/usr/bin/env bash
# The main job: the dev platform on the local AWS emulator, and the local platform running
# for real on this machine (3 KRaft controllers and 3 brokers, Connect, the admin API, the
# connector, Prometheus, Alertmanager, node_exporter), end to end.
#
#   scripts/run.sh              # apply dev, then apply local; prints what to open
#   scripts/run.sh destroy      # destroy local, then dev, and stop the emulator
#   scripts/run.sh preview      # any other verb for both: preview, refresh, outputs
#
# Installs what they need (scripts/setup.sh: the emulator, Kafka, the monitoring programs)
# and leaves the emulator and the local platform running on 127.0.0.1, so later commands
# see the same resources.
set -euo pipefail
cd "$(dirname "$0")/.."
KAFKA_PLATFORM_MONITORING=1 KAFKA_PLATFORM_KAFKA=1 source scripts/setup.sh
source scripts/passphrase.sh
eval "$(scripts/moto.sh start)"
verb="${1:-apply}"
[ $# -gt 0 ] && shift

stacks() {
  case "$1" in
    apply | destroy) cargo run -q -p stacks -- "$1" "$2" --yes "${@:3}" ;;
    *) cargo run -q -p stacks -- "$@" ;;
  esac
}

# A fresh emulator has forgotten what the state file records: refresh first, so apply
# recreates what is missing instead of trusting stale state.
if [ "$KAFKA_PLATFORM_MOTO_STARTED" = 1 ] && [ -f "${IAC_STATE_DIR:-.iac/state}/dev.json" ]; then
  echo "The emulator was just started: refreshing the recorded state of dev first."
  stacks refresh dev
fi

case "$verb" in
  destroy)
    echo "== local"
    stacks destroy local "$@"
    echo "== dev"
    stacks destroy dev "$@"
    scripts/moto.sh stop
    ;;
  *)
    echo "== dev (EC2 on the AWS emulator)"
    stacks "$verb" dev "$@"
    echo
    echo "== local (processes on this machine)"
    # Processes end with the machine, or by hand: look first, so apply starts again what
    # the state records but no longer runs.
    case "$verb" in
      apply | preview) stacks "$verb" local --refresh "$@" ;;
      *) stacks "$verb" local "$@" ;;
    esac
    ;;
esac
