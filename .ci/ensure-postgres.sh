#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable, in this order of preference:
#   1. DATABASE_URL is set, or something answers on 127.0.0.1:$PG_PORT: use it;
#   2. a Docker engine is available: `docker compose up -d db`;
#   3. a private cluster in .pgdata/ (trust auth, superuser postgres), installing PostgreSQL with
#      apt-get when running as root and it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

HOST=127.0.0.1
PORT=${PG_PORT:-5432}
PGDATA_DIR=${ROSTER_PGDATA:-$PWD/.pgdata}

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$HOST" -p "$PORT" -t 2
    else
        tcp_open "$HOST" "$PORT"
    fi
}

if [ -n "${DATABASE_URL:-}" ]; then
    if command -v pg_isready >/dev/null 2>&1 && ! wait_for 10 pg_isready -q -d "$DATABASE_URL"; then
        log "DATABASE_URL is set but its server does not answer"
        exit 1
    fi
    log "using the server at DATABASE_URL"
    exit 0
fi

if pg_ready; then
    log "PostgreSQL is up on $HOST:$PORT"
    exit 0
fi

if docker_usable; then
    log "starting PostgreSQL with docker compose"
    docker compose up -d db
    wait_for 60 pg_ready || { log "the db container did not come up"; exit 1; }
    exit 0
fi

# Newest installed server binaries, e.g. /usr/lib/postgresql/15/bin.
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bindir)" ]; then
    log "installing PostgreSQL"
    # Debian's package would create and start a cluster of its own (password auth for TCP) on
    # this port: ask it not to, the cluster below is configured for tests.
    apt_install postgresql-common
    sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf
    apt_install postgresql
fi
BIN=$(pg_bindir)
[ -n "$BIN" ] || { log "no PostgreSQL server binaries under /usr/lib/postgresql"; exit 1; }

# PostgreSQL refuses to run as root: run the private cluster as the postgres OS user.
as_owner() { "$@"; }
if is_root; then
    id -u postgres >/dev/null 2>&1 \
        || useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    as_owner() { runuser -u postgres -- "$@"; }
fi

if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
    log "creating a cluster in $PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    if is_root; then chown postgres: "$PGDATA_DIR"; fi
    chmod 700 "$PGDATA_DIR"
    as_owner "$BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C >/dev/null
    # A throwaway cluster for development and tests: durability buys nothing here and makes
    # every `create database` wait for the disk.
    cat >>"$PGDATA_DIR/postgresql.conf" <<CONF
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
fi

log "starting PostgreSQL from $PGDATA_DIR on $HOST:$PORT"
as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$PGDATA_DIR/server.log" >&2; exit 1; }
wait_for 30 pg_ready || { log "PostgreSQL did not come up"; exit 1; }
