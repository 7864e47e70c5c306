#!/usr/bin/env bash
# Makes sure Redis answers on 127.0.0.1:$REDIS_PORT, in this order of preference: one already
# running, `docker compose up -d redis`, or a local redis-server (installed with apt-get when
# running as root and it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

HOST=127.0.0.1
PORT=${REDIS_PORT:-6379}

# Speaks RESP over bash's /dev/tcp, so it needs no redis-cli.
redis_ready() {
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r reply <&3
        [[ "$reply" == "+PONG"* ]]
    ' "$HOST" "$PORT" 2>/dev/null
}

if redis_ready; then
    log "Redis is up on $HOST:$PORT"
    exit 0
fi

if docker_usable; then
    log "starting Redis with docker compose"
    docker compose up -d redis
    wait_for 60 redis_ready || { log "the redis container did not come up"; exit 1; }
    exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server"
    apt_install redis-server
    # Debian's package may have started its own server on the default port: fine if so.
    if redis_ready; then exit 0; fi
fi

log "starting redis-server on $HOST:$PORT"
redis-server --daemonize yes --bind "$HOST" --port "$PORT" --save "" --appendonly no \
    --logfile "/tmp/roster-redis-$PORT.log"
wait_for 30 redis_ready || { log "Redis did not come up"; exit 1; }
