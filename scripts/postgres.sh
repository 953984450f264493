#!/usr/bin/env bash
# A local PostgreSQL cluster from Debian's `postgresql` package, in .postgres/ of the project, for
# the PostgreSQL Dagster home (deploy/postgres/dagster.yaml) in development and CI.
#
#   bash scripts/postgres.sh start    # install if missing (as root), init, start, create the database
#   bash scripts/postgres.sh stop
#   bash scripts/postgres.sh url      # the DAGSTER_POSTGRES_URL to export
#
# BREADTH_PG_PORT (default 54329) and BREADTH_PG_DIR (default .postgres) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${BREADTH_PG_PORT:-54329}"
DIR="$(realpath -m "${BREADTH_PG_DIR:-.postgres}")"
DATABASE=dagster
URL="postgresql+psycopg2://postgres@127.0.0.1:${PORT}/${DATABASE}"

bin_dir() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$found" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    found="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  [ -n "$found" ] || { echo "postgres.sh: install Debian's postgresql package" >&2; exit 1; }
  echo "$found"
}

# PostgreSQL refuses to run as root: root runs it as the package's postgres user (from /, since
# the project's folder may be closed to that user).
as_owner() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# As root, the cluster lives in the project unless the postgres user cannot reach the project's
# folder (a checkout under a private temporary folder): then in /tmp, one per port.
if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 \
    && ! (cd / && runuser -u postgres -- test -x "$(dirname "$DIR")"); then
  DIR="/tmp/breadth-assets-postgres-$PORT"
fi

case "${1:-}" in
  start)
    BIN="$(bin_dir)"
    mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      as_owner "$BIN/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 >/dev/null
    fi
    if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
    fi
    if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
        "select 1 from pg_database where datname = '$DATABASE'" | grep -q 1; then
      as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DATABASE"
    fi
    echo "PostgreSQL on 127.0.0.1:$PORT ($DIR); export DAGSTER_POSTGRES_URL=$URL"
    ;;
  stop)
    BIN="$(bin_dir)"
    if [ -f "$DIR/data/PG_VERSION" ]; then
      as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  url)
    echo "$URL"
    ;;
  *)
    echo "usage: bash scripts/postgres.sh start|stop|url" >&2
    exit 2
    ;;
esac
