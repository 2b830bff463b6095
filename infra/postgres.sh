#!/usr/bin/env bash
# Throwaway local PostgreSQL for the ledger tests (CI and development), without Docker.
#
#   infra/postgres.sh start    # install if needed, init once, start, create db + user
#   infra/postgres.sh stop
#   infra/postgres.sh status
#   infra/postgres.sh url      # SQLAlchemy URL for METERLINE_TEST_POSTGRES_URL
#
# The cluster lives in <repo>/.cache/pg (git-ignored) and listens on 127.0.0.1:54329
# only (METERLINE_PG_PORT to move it: two clones side by side), so it never collides
# with a system PostgreSQL on 5432. Durability is switched
# off (fsync etc.): the data is disposable, speed matters more.
set -euo pipefail

PORT="${METERLINE_PG_PORT:-54329}"
DB=meterline_test
APP_USER=meterline
APP_PASSWORD=meterline
URL="postgresql+psycopg://${APP_USER}:${APP_PASSWORD}@127.0.0.1:${PORT}/${DB}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="${METERLINE_PG_DIR:-$repo/.cache/pg}"
[[ "$base" == /* ]] || base="$PWD/$base"
cd /  # all paths are absolute; 'postgres' may not be allowed into the caller's cwd

die() { echo "postgres.sh: $*" >&2; exit 1; }
note() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local dir
  dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
  return 0
}

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

install_postgres() {
  command -v apt-get >/dev/null || die "pg_ctl not found and no apt-get to install PostgreSQL"
  note "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  # No default 'main' cluster on 5432: we only ever run our own cluster.
  as_root apt-get install -y -q --no-install-recommends postgresql-common
  as_root sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
    /etc/postgresql-common/createcluster.conf
  as_root apt-get install -y -q --no-install-recommends postgresql
}

case "${1:-}" in
  start | stop | status) ;;
  url) echo "$URL"; exit 0 ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac

BIN="$(find_bindir)"
if [[ -z "$BIN" ]]; then
  case "$1" in
    stop) note "not running (PostgreSQL is not installed)"; exit 0 ;;
    status) echo "not running"; exit 3 ;;
  esac
  install_postgres
  BIN="$(find_bindir)"
  [[ -n "$BIN" ]] || die "PostgreSQL installed but no pg_ctl under /usr/lib/postgresql/*/bin"
fi

# PostgreSQL refuses to run as root: as root, run the server tools as 'postgres'.
if [[ $EUID -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is the postgresql package installed?)"
  if command -v runuser >/dev/null; then RUN_AS=(runuser -u postgres --)
  else RUN_AS=(sudo -u postgres --)
  fi
  owner=postgres
  # 'postgres' must be able to enter every folder above the cluster; a checkout under
  # /root is out of its reach, so such a checkout keeps its cluster under /tmp instead.
  mkdir -p "$base" && chown postgres: "$base"
  if ! "${RUN_AS[@]}" test -x "$base" 2>/dev/null; then
    base="/tmp/meterline-pg-$(printf %s "$repo" | cksum | cut -d' ' -f1)"
    mkdir -p "$base" && chown postgres: "$base"
    [[ "$1" == start ]] && note "user postgres cannot enter $repo; cluster kept in $base"
  fi
else
  RUN_AS=()
  owner="$(id -un)"
fi

data="$base/data"
sock="$base/run"
logfile="$base/postgres.log"

pg() { "${RUN_AS[@]}" "$BIN/$1" "${@:2}"; }
psql_admin() { pg psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$PORT" -U postgres -d postgres; }

running() { pg pg_ctl -D "$data" status >/dev/null 2>&1; }

init_cluster() {
  mkdir -p "$base" "$sock"
  chown "$owner:" "$base" "$sock"
  chmod 0700 "$base"
  [[ -f "$data/PG_VERSION" ]] && return 0
  note "initdb in $data"
  rm -rf "$data"
  pg initdb -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 \
    || { cat "$base/initdb.log" >&2; die "initdb failed"; }
  # Written once at init so that a bare 'pg_ctl start' gives the same server.
  cat >>"$data/postgresql.conf" <<EOF

# --- infra/postgres.sh: local throwaway test cluster ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
}

wait_ready() {
  local _
  for _ in $(seq 1 60); do
    pg pg_isready -q -h 127.0.0.1 -p "$PORT" -d postgres && return 0
    sleep 0.5
  done
  tail -n 40 "$logfile" >&2 || true
  die "PostgreSQL not ready on 127.0.0.1:$PORT after 30 s"
}

ensure_db() {
  psql_admin <<EOF
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$APP_USER', '$APP_PASSWORD')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER')
\\gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$DB', '$APP_USER')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB')
\\gexec
EOF
}

cmd_start() {
  init_cluster
  if running; then
    note "already running ($data)"
  else
    touch "$logfile" && chown "$owner:" "$logfile"
    pg pg_ctl -D "$data" -l "$logfile" -w -t 60 start >/dev/null \
      || { tail -n 40 "$logfile" >&2 || true; die "pg_ctl start failed"; }
  fi
  wait_ready
  ensure_db
  echo "$URL"
}

cmd_stop() {
  if [[ -f "$data/PG_VERSION" ]] && running; then
    pg pg_ctl -D "$data" -m fast -w -t 60 stop >/dev/null
    note "stopped"
  else
    note "not running"
  fi
}

cmd_status() {
  if [[ -f "$data/PG_VERSION" ]] && running; then
    echo "running $URL"
  else
    echo "not running"
    return 3
  fi
}

case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
esac
