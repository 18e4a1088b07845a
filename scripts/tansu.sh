#!/usr/bin/env bash
# Starts or stops the test Kafka broker (tansu, in-memory) on 127.0.0.1, by PID.
#
#   scripts/tansu.sh start   # prints `export KAFKA_BOOTSTRAP_SERVERS=...` lines; eval them
#   scripts/tansu.sh stop
#
# TANSU_PORT (default 19092) chooses the port; the PID and log live in the cache folder.
set -euo pipefail
cd "$(dirname "$0")/.."
KAFKA_PLATFORM_BROKER=1 source scripts/setup.sh >&2

port="${TANSU_PORT:-19092}"
run_dir="$KAFKA_PLATFORM_CACHE/run"
pid_file="$run_dir/tansu-$port.pid"
log_file="$run_dir/tansu-$port.log"
mkdir -p "$run_dir"

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }
answering() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then
      echo "export KAFKA_PLATFORM_TANSU_STARTED=0"
    else
      echo "export KAFKA_PLATFORM_TANSU_STARTED=1"
      "$KAFKA_PLATFORM_TANSU" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$log_file" 2>&1 &
      echo $! > "$pid_file"
      for _ in $(seq 1 100); do
        if answering; then break; fi
        running || { cat "$log_file" >&2; echo "tansu.sh: tansu exited" >&2; exit 1; }
        sleep 0.1
      done
      answering \
        || { echo "tansu.sh: tansu did not answer on 127.0.0.1:$port (log: $log_file)" >&2; exit 1; }
    fi
    echo "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
    ;;
  stop)
    if running; then
      kill "$(cat "$pid_file")"
    fi
    rm -f "$pid_file"
    ;;
  *)
    echo "usage: scripts/tansu.sh start|stop" >&2
    exit 2
    ;;
esac
