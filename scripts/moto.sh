#!/usr/bin/env bash
# Starts or stops the local AWS API emulator (moto_server) on 127.0.0.1, by PID.
#
#   scripts/moto.sh start   # prints `export AWS_ENDPOINT_URL=...` lines; eval them
#   scripts/moto.sh stop
#
# MOTO_PORT (default 5127) chooses the port; the PID and log live in the cache folder.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh >&2

port="${MOTO_PORT:-5127}"
run_dir="$KAFKA_PLATFORM_CACHE/run"
pid_file="$run_dir/moto-$port.pid"
log_file="$run_dir/moto-$port.log"
mkdir -p "$run_dir"

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }
answering() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then
      echo "export KAFKA_PLATFORM_MOTO_STARTED=0"
    else
      echo "export KAFKA_PLATFORM_MOTO_STARTED=1"
      # Validate AMI ids against moto's catalogue, as AWS does.
      MOTO_ENABLE_AMI_VALIDATION=true "$KAFKA_PLATFORM_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" \
        >"$log_file" 2>&1 &
      echo $! > "$pid_file"
      for _ in $(seq 1 100); do
        if answering; then break; fi
        running || { cat "$log_file" >&2; echo "moto.sh: moto_server exited" >&2; exit 1; }
        sleep 0.1
      done
      answering \
        || { echo "moto.sh: moto_server did not answer on 127.0.0.1:$port (log: $log_file)" >&2; exit 1; }
    fi
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
    echo "export AWS_REGION=\${AWS_REGION:-eu-central-1}"
    echo "export AWS_ACCESS_KEY_ID=\${AWS_ACCESS_KEY_ID:-testing}"
    echo "export AWS_SECRET_ACCESS_KEY=\${AWS_SECRET_ACCESS_KEY:-testing}"
    ;;
  stop)
    if running; then
      kill "$(cat "$pid_file")"
    fi
    rm -f "$pid_file"
    ;;
  *)
    echo "usage: scripts/moto.sh start|stop" >&2
    exit 2
    ;;
esac
