#!/usr/bin/env bash
# Starts or stops the test Kafka: one Apache Kafka node in combined mode (KRaft controller and
# broker in one JVM) on 127.0.0.1, by PID, with fresh storage at every start.
#
#   scripts/kafka.sh start   # prints `export KAFKA_BOOTSTRAP_SERVERS=...` lines; eval them
#   scripts/kafka.sh stop
#
# KAFKA_PORT (default 19092) chooses the client port; the brokers' own listener and the
# controller's take the next two. With KAFKA_TLS_DIR set, the client listener speaks TLS with
# that folder's broker.key (PKCS#8) and broker.crt, and clients are told to come back to
# `localhost` (the name the certificate must carry). The node's folder (properties, data, log)
# is the cache's run/kafka-<port>/.
set -euo pipefail
cd "$(dirname "$0")/.."
KAFKA_PLATFORM_KAFKA=1 source scripts/setup.sh >&2
source scripts/server.sh

port="${KAFKA_PORT:-19092}"
internal=$((port + 1))
controller=$((port + 2))
host=127.0.0.1
protocol=PLAINTEXT
if [ -n "${KAFKA_TLS_DIR:-}" ]; then
  host=localhost
  protocol=SSL
fi
dir="$KAFKA_PLATFORM_CACHE/run/kafka-$port"

# The node's settings: sized for a shared 2-core machine (small heap, few threads, few
# partitions of the internal topics); one replica of everything.
write_properties() {
  cat > "$dir/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=CLIENT://127.0.0.1:$port,INTERNAL://127.0.0.1:$internal,CONTROLLER://127.0.0.1:$controller
advertised.listeners=CLIENT://$host:$port,INTERNAL://127.0.0.1:$internal
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CLIENT:$protocol,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
PROPERTIES
  if [ -n "${KAFKA_TLS_DIR:-}" ]; then
    cat "$KAFKA_TLS_DIR/broker.key" "$KAFKA_TLS_DIR/broker.crt" > "$dir/keystore.pem"
    printf 'listener.name.client.ssl.keystore.type=PEM\nlistener.name.client.ssl.keystore.location=%s\n' \
      "$dir/keystore.pem" >> "$dir/server.properties"
  fi
}

java=("$KAFKA_PLATFORM_JAVA" -Xms384m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$KAFKA_PLATFORM_KAFKA_HOME/config/log4j2.yaml"
  "-Dkafka.logs.dir=$dir" -cp "$KAFKA_PLATFORM_KAFKA_HOME/libs/*")

case "${1:-}" in
  start)
    if ! { [ -f "$KAFKA_PLATFORM_CACHE/run/kafka-$port.pid" ] && kill -0 "$(cat "$KAFKA_PLATFORM_CACHE/run/kafka-$port.pid")" 2>/dev/null; }; then
      rm -rf "$dir"
      mkdir -p "$dir"
      write_properties
      # As Kafka's own Uuid.randomUuid: never one starting with `-`, which the storage tool
      # would read as an option.
      cluster_id="$(python3 -c 'import base64, uuid
while (id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(id)')"
      "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" > "$dir/format.log" 2>&1 \
        || { cat "$dir/format.log" >&2; echo "kafka: formatting $dir/data failed" >&2; exit 1; }
    fi
    SERVER_START_SECONDS=90 server_main start kafka "$port" "${java[@]}" kafka.Kafka "$dir/server.properties"
    echo "export KAFKA_BOOTSTRAP_SERVERS=$host:$port"
    ;;
  stop) server_main stop kafka "$port" ;;
  *)
    echo "usage: scripts/kafka.sh start|stop" >&2
    exit 2
    ;;
esac
