#!/usr/bin/env bash
# Redis from Debian's redis-server, on loopback only.
#
#   scripts/redis.sh start           one server on REDIS_PORT (6379)
#   scripts/redis.sh stop            stop the server this script started
#   scripts/redis.sh cluster-start   a three-node Redis Cluster on ports 7101-7103
#   scripts/redis.sh cluster-stop    stop that cluster
#
# Data lives under REDIS_HOME (.local/redis). Only processes whose pid files this
# script wrote are ever stopped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_HOME=${REDIS_HOME:-$root/.local/redis}
CLUSTER_PORTS=${REDIS_CLUSTER_PORTS:-"7101 7102 7103"}

log() { echo "redis: $*" >&2; }

require_server() {
  command -v redis-server >/dev/null || { log "redis-server missing: run scripts/bootstrap.sh"; exit 1; }
}

start_node() {  # port, extra args...
  local port=$1; shift
  local dir=$REDIS_HOME/$port
  mkdir -p "$dir"
  if redis-cli -p "$port" ping >/dev/null 2>&1; then log "already answering on $port"; return; fi
  redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --save "" --appendonly no "$@"
  wait_ping "$port"
}

wait_ping() {
  for _ in $(seq 100); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && { log "ready on 127.0.0.1:$1"; return; }
    sleep 0.1
  done
  log "no answer on port $1"; exit 1
}

stop_node() {
  local pidfile=$REDIS_HOME/$1/redis.pid
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
  log "stopped $1"
}

cluster_start() {
  local nodes=()
  for port in $CLUSTER_PORTS; do
    start_node "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
      --cluster-node-timeout 5000
    nodes+=("127.0.0.1:$port")
  done
  local first=${nodes[0]#*:}
  if ! redis-cli -p "$first" cluster info | grep -q cluster_state:ok; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  fi
  for _ in $(seq 100); do
    redis-cli -p "$first" cluster info | grep -q cluster_state:ok && { log "cluster ok"; return; }
    sleep 0.1
  done
  log "cluster did not reach state ok"; exit 1
}

cluster_stop() {
  for port in $CLUSTER_PORTS; do stop_node "$port"; rm -rf "${REDIS_HOME:?}/$port"; done
}

require_server
case "${1:-}" in
  start) start_node "$REDIS_PORT" ;;
  stop) stop_node "$REDIS_PORT" ;;
  cluster-start) cluster_start ;;
  cluster-stop) cluster_stop ;;
  *) echo "usage: $0 start|stop|cluster-start|cluster-stop" >&2; exit 2 ;;
esac
