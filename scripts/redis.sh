#!/usr/bin/env bash
# A private Redis server from Debian's `redis-server` package, in .redis/ of the project, for the
# shared Upstox rate limiter (BREADTH_UPSTOX_LIMITER_URL) in development and CI. Its data is kept
# in an append-only file in its own directory, .redis/data-$PORT (appendonly yes, fsync every
# second, no RDB snapshots), so a restart does not forget the requests of the last 30 minutes and let the next
# run spend Upstox's allowance again (docs/design.md, "Pacing"). A stop (SIGTERM) writes
# everything; a crash may lose the last second, which the limiter then assumes was full.
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
DATA="$DIR/data-$PORT"
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
    mkdir -p "$DATA"
    if ! running_pid >/dev/null; then
      "$BIN" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
        --dir "$DATA" --daemonize yes --pidfile "$PIDFILE" --logfile "$DIR/redis-$PORT.log"
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
