#!/usr/bin/env bash
# Start a private PostgreSQL server for the tests and print the database URL to use.
#
#   export EDGE_STATION_TEST_PG_URL="$(bash scripts/ci_postgres.sh)"
#   bash scripts/ci_postgres.sh --stop
#
# Installs PostgreSQL with apt-get when no server binaries are found (as root), creates a
# cluster in $EDGE_PG_DIR (default /tmp/edge-station-pg) owned by the postgres user (or by
# you when not root), listening on 127.0.0.1:$EDGE_PG_PORT (default 55432) only, with
# trust authentication for local connections, and a database $EDGE_PG_DB (default
# edge_station_test). Idempotent: a server that already runs is reused. Everything but the
# URL goes to stderr.
set -euo pipefail

PG_DIR="${EDGE_PG_DIR:-/tmp/edge-station-pg}"
PG_PORT="${EDGE_PG_PORT:-55432}"
PG_DB="${EDGE_PG_DB:-edge_station_test}"
DATA="$PG_DIR/data"
LOG="$PG_DIR/server.log"

say() { echo "ci_postgres: $*" >&2; }

find_bin() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$found" ] && [ -x "$found/pg_ctl" ]; then echo "$found"; return 0; fi
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return 0; fi
  return 1
}

if ! PG_BIN="$(find_bin)"; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "PostgreSQL is not installed and cannot be installed here (needs root and apt-get)"
    exit 1
  fi
  say "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql postgresql-client >&2
  PG_BIN="$(find_bin)" || { say "PostgreSQL binaries not found after installing"; exit 1; }
fi

# Run a command as the cluster's owner: the postgres user when we are root (the server refuses root).
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
  as_owner() { runuser -u postgres -- "$@"; }
  OWNER=postgres
else
  as_owner() { "$@"; }
  OWNER="$(id -un)"
fi

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
  fi
  say "stopped"
  exit 0
fi

mkdir -p "$PG_DIR"
chown "$OWNER" "$PG_DIR"
chmod 700 "$PG_DIR"

if [ ! -f "$DATA/PG_VERSION" ]; then
  say "creating a cluster in $DATA"
  as_owner "$PG_BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
fi

if ! as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  say "starting the server on 127.0.0.1:$PG_PORT"
  as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c max_connections=200" start >&2 \
    || { tail -n 30 "$LOG" >&2; exit 1; }
fi

PSQL=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
for _ in $(seq 1 50); do
  if "${PSQL[@]}" -d postgres -c "SELECT 1" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
if [ "$("${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]; then
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE \"$PG_DB\"" >&2
  say "created database $PG_DB"
fi

echo "postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/$PG_DB"
