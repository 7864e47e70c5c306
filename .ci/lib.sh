# Helpers sourced by the .ci scripts.

log() { echo "[$(basename "$0")] $*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# apt_install PACKAGE...: install Debian packages when running as root; fail clearly otherwise.
apt_install() {
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        log "missing $*: install it yourself (needs root and apt-get to do it here)"
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -qq
    fi
    # Stale package lists make downloads fail: refresh once and retry.
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

# tcp_open HOST PORT: true when something accepts connections there (bash's /dev/tcp, no tools).
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# docker_usable: a Docker engine (not just the CLI) with compose is available.
docker_usable() {
    command -v docker >/dev/null 2>&1 \
        && docker compose version >/dev/null 2>&1 \
        && timeout 10 docker info >/dev/null 2>&1
}

# wait_for SECONDS CMD...: retry CMD every half second until it succeeds or time runs out.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
        sleep 0.5
    done
}
