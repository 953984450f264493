#!/usr/bin/env bash
# The several-machine deployment on one machine, from Debian's packages, in .cluster/ of the
# project: PostgreSQL (Dagster's storage and the market store), Redis (Celery's broker and result
# backend, and the Upstox rate limiter that every worker shares; scripts/redis.sh keeps its data
# in an append-only file, so `stop` then `start` does not forget the requests of the last 30
# minutes, nor Celery's queues), the Dagster webserver and daemon, and N Celery workers (README
# "Running on several machines").
#
#   bash scripts/cluster.sh start [N]   # N workers (default 2); http://127.0.0.1:$BREADTH_UI_PORT
#   bash scripts/cluster.sh env         # the environment of this deployment, for `eval`
#   bash scripts/cluster.sh status
#   bash scripts/cluster.sh stop        # every process above, PostgreSQL and Redis too
#
# BREADTH_PG_PORT (54329), BREADTH_REDIS_PORT (63799), BREADTH_UI_PORT (3000) and
# BREADTH_CLUSTER_DIR (.cluster) override the defaults; BREADTH_UNIVERSE names the universe file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIR="$(realpath -m "${BREADTH_CLUSTER_DIR:-.cluster}")"
PG_PORT="${BREADTH_PG_PORT:-54329}"
REDIS_PORT="${BREADTH_REDIS_PORT:-63799}"
UI_PORT="${BREADTH_UI_PORT:-3000}"
export BREADTH_PG_PORT="$PG_PORT" BREADTH_REDIS_PORT="$REDIS_PORT"

environment() {
  local pg="postgresql+psycopg2://postgres@127.0.0.1:${PG_PORT}/dagster"
  local redis="redis://127.0.0.1:${REDIS_PORT}"
  cat <<ENV
export DAGSTER_HOME="$DIR/dagster_home"
export DAGSTER_POSTGRES_URL="$pg"
export BREADTH_STORE=postgres
export BREADTH_POSTGRES_URL="$pg"
export BREADTH_EXECUTOR=celery
export BREADTH_CELERY_BROKER="$redis/0"
export BREADTH_CELERY_BACKEND="$redis/1"
export BREADTH_UPSTOX_LIMITER_URL="$redis/2"
export BREADTH_UNIVERSE="${BREADTH_UNIVERSE:-$ROOT/universe.yaml}"
ENV
}

# Starts a command in its own process group, its output in $DIR/<name>.log, its pid in <name>.pid.
launch() {
  local name="$1"
  shift
  setsid "$@" >"$DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$DIR/$name.pid"
}

stop_all() {
  local pidfile pid
  for pidfile in "$DIR"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pidfile in "$DIR"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "${1:-}" in
  start)
    WORKERS="${2:-2}"
    bash scripts/setup.sh
    mkdir -p "$DIR/dagster_home"
    cp deploy/postgres/dagster.yaml "$DIR/dagster_home/dagster.yaml"
    bash scripts/postgres.sh start
    bash scripts/redis.sh start
    eval "$(environment)"
    export PATH="$ROOT/.venv/bin:$PATH"
    stop_all
    # Dagster's tables exist before its processes start: the daemon and the webserver would
    # otherwise create them at once on a fresh database and race.
    python -c "from breadth_assets.runtime.instance import open_instance; open_instance().dispose()"
    launch daemon dagster-daemon run -m breadth_assets.definitions
    launch webserver dagster-webserver -m breadth_assets.definitions -h 127.0.0.1 -p "$UI_PORT"
    for i in $(seq 1 "$WORKERS"); do
      # breadth_assets.runtime.workers.celery_worker_args: the app reads broker and backend from the
      # environment, as the runs' executor does.
      BREADTH_WORKER_NAME="worker$i" launch "worker$i" celery -A breadth_assets.runtime.celery_worker \
        worker -n "worker$i@%h" --concurrency 1 --loglevel INFO
    done
    echo "started in $DIR: daemon, webserver on http://127.0.0.1:$UI_PORT, $WORKERS Celery workers"
    echo "their environment: eval \"\$(bash scripts/cluster.sh env)\""
    ;;
  env)
    environment
    ;;
  status)
    for pidfile in "$DIR"/*.pid; do
      [ -e "$pidfile" ] || continue
      name="$(basename "$pidfile" .pid)"
      if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$name: running"; else echo "$name: gone"; fi
    done
    ;;
  stop)
    stop_all
    bash scripts/redis.sh stop || true
    bash scripts/postgres.sh stop || true
    echo "stopped"
    ;;
  *)
    echo "usage: bash scripts/cluster.sh start [workers] | env | status | stop" >&2
    exit 2
    ;;
esac
