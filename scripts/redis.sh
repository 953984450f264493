#!/usr/bin/env bash
# A private Redis server from Debian's `redis-server` package, in .redis/ of the project, for the
# shared Upstox rate limiter (BREADTH_UPSTOX_LIMITER_URL) in development and CI. In memory only
# (no snapshots, no append-only file): the limiter's state is seconds to minutes of request times.
#
#   bash scripts/redis.sh start    # install if missing (as root), start on 127.0.0.1
#   bash scripts/redis.sh stop
#   bash scripts/redis.sh url      # the BREADTH_UPSTOX_LIMITER_URL to export
#
# BREADTH_REDIS_PORT (default 63799) and BREADTH_REDIS_DIR (default .redis) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${BREADTH_REDIS_PORT:-63799}"
DIR="$(realpath -m "${BREADTH_REDIS_DIR:-.redis}")"
PIDFILE="$DIR/redis-$PORT.pid"
URL="redis://127.0.0.1:${PORT}/0"

server_bin() {
  if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  command -v redis-server || { echo "redis.sh: install Debian's redis-server package" >&2; exit 1; }
}

# Whether our server answers on the port (redis-cli comes with the package).
answering() {
  redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG
}

running_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

case "${1:-}" in
  start)
    BIN="$(server_bin)"
    mkdir -p "$DIR"
    if ! running_pid >/dev/null; then
      "$BIN" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$DIR" --daemonize yes --pidfile "$PIDFILE" --logfile "$DIR/redis-$PORT.log"
    fi
    for _ in $(seq 100); do
      answering && break
      sleep 0.1
    done
    answering || { echo "redis.sh: no answer on 127.0.0.1:$PORT; see $DIR/redis-$PORT.log" >&2; exit 1; }
    echo "Redis on 127.0.0.1:$PORT ($DIR); export BREADTH_UPSTOX_LIMITER_URL=$URL"
    ;;
  stop)
    if pid="$(running_pid)"; then
      kill "$pid"
      for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    rm -f "$PIDFILE"
    ;;
  url)
    echo "$URL"
    ;;
  *)
    echo "usage: bash scripts/redis.sh start|stop|url" >&2
    exit 2
    ;;
esac
