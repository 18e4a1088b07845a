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
source scripts/server.sh

port="${MOTO_PORT:-5127}"
case "${1:-}" in
  start)
    # Validate AMI ids against moto's catalogue, as AWS does.
    export MOTO_ENABLE_AMI_VALIDATION=true
    server_main start moto "$port" \
      "$KAFKA_PLATFORM_VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
    echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
    echo "export AWS_REGION=\${AWS_REGION:-eu-central-1}"
    echo "export AWS_ACCESS_KEY_ID=\${AWS_ACCESS_KEY_ID:-testing}"
    echo "export AWS_SECRET_ACCESS_KEY=\${AWS_SECRET_ACCESS_KEY:-testing}"
    ;;
  stop) server_main stop moto "$port" ;;
  *)
    echo "usage: scripts/moto.sh start|stop" >&2
    exit 2
    ;;
esac
