#!/usr/bin/env bash
# A single-node Apache Kafka broker in KRaft mode, run from jars fetched with Maven.
#
#   scripts/kafka.sh fetch    resolve the broker's jars into $KAFKA_HOME/lib
#   scripts/kafka.sh start    format storage once, start, wait for a metadata answer
#   scripts/kafka.sh stop     stop the broker this script started (and nothing else)
#   scripts/kafka.sh status   exit 0 when the broker answers
#   scripts/kafka.sh tool CLASS ARGS...   run one of Kafka's own tools on the classpath
#
# Settings (environment): KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
# KAFKA_HOME (.local/kafka), KAFKA_DATA (.local/kafka/data), KAFKA_HEAP (512m),
# KAFKA_PARTITIONS (default partitions for new topics, 4).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HOME=${KAFKA_HOME:-$root/.local/kafka}
KAFKA_DATA=${KAFKA_DATA:-$KAFKA_HOME/data}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_PARTITIONS=${KAFKA_PARTITIONS:-4}
lib=$KAFKA_HOME/lib
pidfile=$KAFKA_HOME/broker.pid
bootstrap=127.0.0.1:$KAFKA_PORT

log() { echo "kafka: $*" >&2; }

fetch() {
  if [ -f "$lib/.complete" ]; then return; fi
  log "resolving broker jars with mvn into $lib"
  mkdir -p "$lib"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib"
  touch "$lib/.complete"
}

java_run() {
  java -Xshare:auto -cp "$lib/*" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_HOME/logs" "$@"
}

write_config() {
  mkdir -p "$KAFKA_HOME/logs" "$KAFKA_DATA"
  cat > "$KAFKA_HOME/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=$KAFKA_PARTITIONS
# Topics are created by votescore with the partition counts it needs, never on first use.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
CONF
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  # A real metadata request through Kafka's own admin client, not a port probe.
  java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --list \
    >/dev/null 2>&1
}

start() {
  fetch
  if running && answers; then log "already running on $bootstrap"; return; fi
  write_config
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    log "formatting storage in $KAFKA_DATA"
    java_run kafka.tools.StorageTool format -t "$(java_run kafka.tools.StorageTool random-uuid)" \
      -c "$KAFKA_HOME/server.properties" >/dev/null
  fi
  log "starting broker on $bootstrap (heap $KAFKA_HEAP)"
  KAFKA_HEAP_OPTS="-Xmx$KAFKA_HEAP -Xms$KAFKA_HEAP" \
    nohup java -Xmx"$KAFKA_HEAP" -Xms"$KAFKA_HEAP" -XX:+UseG1GC -cp "$lib/*" \
      -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$KAFKA_HOME/logs" \
      kafka.Kafka "$KAFKA_HOME/server.properties" > "$KAFKA_HOME/logs/stdout.log" 2>&1 &
  echo $! > "$pidfile"
  wait_ready
}

wait_ready() {
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until answers; do
    if ! running; then
      log "broker exited; last log lines:"; tail -20 "$KAFKA_HOME/logs/stdout.log" >&2; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then log "broker did not answer in time"; exit 1; fi
    sleep 1
  done
  log "ready on $bootstrap (pid $(cat "$pidfile"))"
}

stop() {
  if ! running; then log "not running"; rm -f "$pidfile"; return; fi
  local pid; pid=$(cat "$pidfile")
  log "stopping broker pid $pid"
  kill "$pid"
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$pidfile"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) answers ;;
  tool) shift; fetch; java_run "$@" ;;
  *) echo "usage: $0 fetch|start|stop|status|tool CLASS ARGS..." >&2; exit 2 ;;
esac
