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
source scripts/server.sh

port="${TANSU_PORT:-19092}"
case "${1:-}" in
  start)
    server_main start tansu "$port" "$KAFKA_PLATFORM_TANSU" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine memory://tansu/
    echo "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
    ;;
  stop) server_main stop tansu "$port" ;;
  *)
    echo "usage: scripts/tansu.sh start|stop" >&2
    exit 2
    ;;
esac
