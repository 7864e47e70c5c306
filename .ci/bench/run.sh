#!/usr/bin/env bash
# `make bench`: load a data set into a fresh database, start the release server, and drive it
# with wrk at 64 connections, once with the authorization cache off (no REDIS_URL) and once
# with it on (REDIS_URL set), each server on its own port and database. Prints one table:
# scenario | cache | req/s | p50 ms | p99 ms | non-2xx | db round trips/req.
#
# Expects target/release/roster to be built and PostgreSQL and Redis to answer (`make bench`
# sees to all three). Settings (environment):
#   BENCH_DURATION=15     seconds measured per scenario
#   BENCH_WARMUP=3        seconds of warm-up before each (0: none); with the cache on, repeated
#                         until the cache is warm (see warm_up)
#   BENCH_CONNECTIONS=64  BENCH_THREADS=2 (wrk)  BENCH_TIMEOUT=5 (wrk's per-request timeout, s)
#   BENCH_USERS=1000      BENCH_ORGS=200 (20 members each)
#   BENCH_CACHE="off on"  which servers to run
#   BENCH_SCENARIOS="s1 s12 s2 s3 s5 s5b s6 s6b s7 s7l s8 s8l s9 s11 s4 s10"   (s11, s4 and
#                         s10 write: last; s12 right after s1, which it is compared with)
#   BENCH_MODELS=100      models per organization (S8)   BENCH_BIG=10000  models S9 lists
#   BENCH_LATENCY_CONNECTIONS=2  connections of the latency figures S7l, S8l and S9: one per
#                         core, not 64, so that their p99 is the request's and not the queue's
#                         (at 64 connections a p99 is at least 64 / throughput by Little's law)
#   BENCH_DELAY_PROBES=200  psql changes made during S1 (cache on), each timed from its commit
#                         to the API serving it (.ci/bench/invalidation_delay.py), and by the
#                         server from its write to its invalidation (roster_change_stream_delay_seconds)
#   BENCH_PORT=18181      the cache-off server; the cache-on one uses BENCH_PORT+1
#   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432   server for the roster_bench_{off,on} databases
#                         (default: DATABASE_URL without its database name, when set)
#   BENCH_REDIS_URL=redis://127.0.0.1:6379
#   BENCH_BIN=target/release/roster       the server binary
#   BENCH_AUTOGROUP=off   turns the kernel's autogroup scheduling off for the runs, when root
#                         (see below why); keep: leave it
#   BENCH_ACCESS_TOKEN_TTL=7200  ACCESS_TOKEN_TTL_SECONDS of the servers (S12's access tokens,
#                         exchanged just before S12, must outlive its warm-up and run)
# Raw wrk output, server logs and data files go to target/bench/<timestamp>/.
# Exit status 1 when any measured scenario had a non-2xx response or a socket error.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
TIMEOUT=${BENCH_TIMEOUT:-5}
USERS=${BENCH_USERS:-1000}
ORGS=${BENCH_ORGS:-200}
PER_ORG=20
BATCH=20
CACHES=${BENCH_CACHE:-off on}
SCENARIOS=${BENCH_SCENARIOS:-s1 s12 s2 s3 s5 s5b s6 s6b s7 s7l s8 s8l s9 s11 s4 s10}
MODELS=${BENCH_MODELS:-100}
LATENCY_CONNECTIONS=${BENCH_LATENCY_CONNECTIONS:-2}
DELAY_PROBES=${BENCH_DELAY_PROBES:-200}
BIG=${BENCH_BIG:-10000}
PORT=${BENCH_PORT:-18181}
# The PostgreSQL server `make db` made sure of: DATABASE_URL minus its database name, if set.
DEFAULT_PG_URL=postgres://postgres@127.0.0.1:5432
[ -z "${DATABASE_URL:-}" ] || DEFAULT_PG_URL=${DATABASE_URL%/*}
PG_URL=${BENCH_PG_URL:-$DEFAULT_PG_URL}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
BIN=${BENCH_BIN:-target/release/roster}
ACCESS_TOKEN_TTL=${BENCH_ACCESS_TOKEN_TTL:-7200}
# Fixed, and only ever used for these throwaway databases.
JWT_SECRET_BENCH=roster-bench-secret-not-for-production-7f3a9c1e
OUT=target/bench/$(date +%Y%m%d-%H%M%S)
LUA=.ci/bench/scenario.lua

for n in DURATION WARMUP CONNECTIONS THREADS TIMEOUT USERS ORGS PORT MODELS BIG LATENCY_CONNECTIONS ACCESS_TOKEN_TTL DELAY_PROBES; do
    [[ ${!n} =~ ^[0-9]+$ ]] || { log "BENCH_$n must be a whole number, got '${!n}'"; exit 2; }
done
[ "$DURATION" -ge 1 ] || { log "BENCH_DURATION must be at least 1"; exit 2; }
[ "$ACCESS_TOKEN_TTL" -ge $((WARMUP + DURATION + 60)) ] && [ "$ACCESS_TOKEN_TTL" -le 86400 ] \
    || { log "BENCH_ACCESS_TOKEN_TTL must be from BENCH_WARMUP + BENCH_DURATION + 60 to 86400"; exit 2; }
[ "$CONNECTIONS" -ge "$THREADS" ] && [ "$LATENCY_CONNECTIONS" -ge "$THREADS" ] || { log "BENCH_CONNECTIONS and BENCH_LATENCY_CONNECTIONS must be >= BENCH_THREADS"; exit 2; }
# Users in BATCH organizations each, for the S5 batch: 50 for 200 organizations, 5 per organization.
HEAVY_USERS=$(( ORGS / 4 > 0 ? ORGS / 4 : 1 ))

declare -A TITLE=(
    [s1]="S1 GET /organizations/{id}"
    [s2]="S2 GET /organizations/{id}/members?limit=20"
    [s3]="S3 GET /organizations"
    [s4]="S4 add + remove member (POST, DELETE)"
    [s5]="S5 POST /authz/check, 1 check"
    [s5b]="S5 POST /authz/check, batch of 20"
    [s6]="S6 /authz/check, service, custom role"
    [s6b]="S6 /authz/check, service, batch of 20"
    [s7]="S7 POST /authz/explain"
    [s7l]="S7l S7 at ${LATENCY_CONNECTIONS} connections (latency)"
    [s8]="S8 POST /authz/check, on a resource"
    [s8l]="S8l S8 at ${LATENCY_CONNECTIONS} connections (latency)"
    [s9]="S9 GET .../resources (${LATENCY_CONNECTIONS} connections)"
    [s10]="S10 add + remove group member"
    [s11]="S11 POST /auth/token, organization_id given"
    [s12]="S12 S1 with an access token (staleness)"
)
for s in $SCENARIOS; do
    [ -n "${TITLE[$s]:-}" ] || { log "unknown scenario '$s' in BENCH_SCENARIOS"; exit 2; }
done

# --------------------------------------------------------------------------------------------
# Prerequisites
# --------------------------------------------------------------------------------------------
command -v wrk >/dev/null 2>&1 || { log "installing wrk"; apt_install wrk; }
command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
command -v psql >/dev/null 2>&1 || apt_install postgresql-client
command -v python3 >/dev/null 2>&1 || apt_install python3
[ -x "$BIN" ] || { log "$BIN is missing: run cargo build --release (make bench does)"; exit 1; }
mkdir -p "$OUT"

export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" "$@"; }
psql_db() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 "$PG_URL/$db" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# --------------------------------------------------------------------------------------------
# The server under test (one at a time; the trap stops it however the script ends)
# --------------------------------------------------------------------------------------------
SERVER_PID=
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        # Graceful shutdown waits for in-flight requests; there are none by now.
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
trap 'exit 130' INT TERM

# --------------------------------------------------------------------------------------------
# The kernel's autogroup scheduler, off while the runs last
# --------------------------------------------------------------------------------------------
# With autogroup on, Linux shares the CPU between sessions rather than threads, and every
# PostgreSQL backend opens a session of its own (setsid): the roster server, one session for
# all its threads, competes as one against each backend. On this machine backends then went
# unscheduled for up to a second at a time. The listener lost its stream every 5-15 s in S7 at
# 2 connections, and the server did 18-42k req/s; with autogroup off, no loss and 58-65k.
# BENCH_AUTOGROUP=keep leaves it as it is.
AUTOGROUP=/proc/sys/kernel/sched_autogroup_enabled
AUTOGROUP_BEFORE=
[[ ${BENCH_AUTOGROUP:-off} =~ ^(off|keep)$ ]] || { log "BENCH_AUTOGROUP must be off or keep"; exit 2; }
if [ "${BENCH_AUTOGROUP:-off}" = off ] && [ -w "$AUTOGROUP" ] && [ "$(cat "$AUTOGROUP")" != 0 ]; then
    AUTOGROUP_BEFORE=$(cat "$AUTOGROUP")
    echo 0 >"$AUTOGROUP"
fi
restore_autogroup() { [ -z "$AUTOGROUP_BEFORE" ] || echo "$AUTOGROUP_BEFORE" >"$AUTOGROUP"; }
trap 'stop_server; restore_autogroup' EXIT

start_server() { # cache port database_url
    local cache=$1 port=$2 url=$3 redis=
    [ "$cache" = on ] && redis=$REDIS
    if tcp_open 127.0.0.1 "$port"; then
        log "127.0.0.1:$port is already in use: set BENCH_PORT"; exit 1
    fi
    # env -u: a REDIS_URL or JWT_* from the caller's environment must not leak in; the cache-off
    # server must not see them, and the tokens must match this script's secret. No TOKEN_*
    # either: each server signs its access tokens with a key of its own, generated at start-up.
    env -u REDIS_URL -u JWT_PUBLIC_KEY -u JWT_ISSUER -u JWT_AUDIENCE -u BIND_ADDR \
        -u TOKEN_SIGNING_KEY -u TOKEN_SIGNING_ALG -u TOKEN_PREVIOUS_KEYS -u TOKEN_ISSUER -u TOKEN_AUDIENCE \
        ACCESS_TOKEN_TTL_SECONDS="$ACCESS_TOKEN_TTL" \
        DATABASE_URL="$url" BIND_ADDR="127.0.0.1:$port" JWT_SECRET="$JWT_SECRET_BENCH" \
        RUST_LOG=warn ${redis:+REDIS_URL="$redis"} CACHE_KEY=roster-bench-cache-key-0123456789abcdef \
        "$BIN" serve >"$OUT/server-$cache.log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60))
    until curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            log "the cache-$cache server did not become ready; its log ($OUT/server-$cache.log):"
            tail -20 "$OUT/server-$cache.log" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# The counters read from GET /metrics before and after each measured run, summed over their
# label sets. A counter (or /metrics itself) that is missing is simply left out: n/a.
METRICS="roster_db_round_trips_total roster_cache_hits_total roster_cache_misses_total roster_cache_errors_total"
metrics() { # port: one "name value" line per counter of METRICS that /metrics has
    curl -fsS -m 5 "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v names="$METRICS" '
        BEGIN { n = split(names, list, " "); for (i = 1; i <= n; i++) wanted[list[i]] = 1 }
        /^[a-z_]+([{ ]|$)/ {
            name = $0; sub(/[{ ].*/, "", name)
            if (!(name in wanted)) next
            value = $0; sub(/^[a-z_]+(\{[^}]*\})?[ \t]+/, "", value); split(value, v, /[ \t]/)
            total[name] += v[1]
        }
        END { for (name in total) printf "%s %.0f\n", name, total[name] }' || true
}
metric() { # "name value" lines, name: the value, or nothing
    awk -v name="$2" '$1 == name { print $2 }' <<<"$1"
}
metric0() { local v; v=$(metric "$@"); echo "${v:-0}"; }

# --------------------------------------------------------------------------------------------
# Data: the seed through the roster.* functions, then the wrk data file with signed tokens
# --------------------------------------------------------------------------------------------
LOAD_NOTES=()
load_data() { # cache database
    local cache=$1 db=$2 t0 t1 counts
    t0=$(now)
    psql_db "$db" -v users="$USERS" -v orgs="$ORGS" -v per_org="$PER_ORG" \
        -v heavy_users="$HEAVY_USERS" -v batch="$BATCH" -f .ci/bench/seed.sql >/dev/null
    t1=$(now)
    SEEDED_AT=$(psql_db "$db" -Atc "select now()")
    counts=$(psql_db "$db" -At -F ' ' -c "select
        (select count(*) from roster.users),
        (select count(*) from roster.organizations),
        (select count(*) from roster.organization_memberships where deleted_at is null)")
    read -r n_users n_orgs n_members <<<"$counts"
    LOAD_NOTES+=("load (cache $cache): $n_users users, $n_orgs organizations, $n_members memberships in $(elapsed "$t0" "$t1") s (roster.* functions, then vacuum analyze)")
    log "${LOAD_NOTES[-1]}"
    t0=$(now)
    psql_db "$db" -v models="$MODELS" -v big="$BIG" -f .ci/bench/seed_authz.sql >/dev/null
    t1=$(now)
    counts=$(psql_db "$db" -At -F ' ' -c "select
        (select count(*) from roster.group_members where deleted_at is null),
        (select count(*) from roster.grants where deleted_at is null),
        (select count(*) from roster.resource_parents)")
    read -r n_group_members n_grants n_parents <<<"$counts"
    LOAD_NOTES+=("load (cache $cache): $n_group_members group members, $n_grants grants, $n_parents resource parents in $(elapsed "$t0" "$t1") s (seed_authz.sql)")
    log "${LOAD_NOTES[-1]}"
    psql_db "$db" -At -F $'\t' -f .ci/bench/export.sql \
        | JWT_SECRET="$JWT_SECRET_BENCH" python3 .ci/bench/gen_data.py \
            --out "$OUT/data-$cache.txt" --batch "$BATCH" --models "$MODELS" --ttl 7200
}

# S4 leaves the pairs it added but had not removed yet when wrk stopped: remove them, as their
# owners, so that the next run starts from the seeded memberships again. Requests that were in
# flight when wrk stopped still complete on the server, so first wait for the database to go
# quiet, and let a removal that lost the race to one of them pass (RMBNF).
cleanup_writes() { # database
    local deadline=$((SECONDS + 10))
    until [ "$(psql_admin -Atc "select count(*) from pg_stat_activity
                                 where datname = '$1' and state <> 'idle' and pid <> pg_backend_pid()")" = 0 ]; do
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.1
    done
    psql_db "$1" -v seeded_at="$SEEDED_AT" >/dev/null <<'SQL'
select set_config('bench.seeded_at', :'seeded_at', false);
-- S10's group members: the group s10 starts empty.
update roster.group_members gm set deleted_at = now()
  from roster.groups g
 where g.tenant_id = gm.tenant_id and g.id = gm.group_id and g.key = 's10' and gm.deleted_at is null;
do $$
declare
  r record;
begin
  for r in select m.invited_by_user_id, m.organization_id, m.user_id
             from roster.organization_memberships m
            where m.deleted_at is null
              and m.created_at > current_setting('bench.seeded_at')::timestamptz
  loop
    begin
      perform roster.remove_member(r.invited_by_user_id, r.organization_id, r.user_id);
    exception when sqlstate 'RMBNF' then
      null; -- removed meanwhile by a request that was still in flight
    end;
  end loop;
end
$$;
SQL
}

# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------
RESULTS=$OUT/results.tsv
: >"$RESULTS"
NOTES=()
FAILED=0

field() { # file key: the value of key=... on the BENCH lines
    grep -hE '^BENCH(_S4)? ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

run_wrk() { # port scenario cache seconds output [probe]
    local connections=$CONNECTIONS requests=$2
    # A latency figure (s7l, s8l, s9): the requests of its scenario (s7l is s7's) at few connections.
    [[ $2 == s9 || $2 == s?l ]] && connections=$LATENCY_CONNECTIONS
    [[ $2 == s?l ]] && requests=${2%l}
    wrk -t"$THREADS" -c"$connections" -d"$4"s --timeout "$TIMEOUT"s --latency -s "$LUA" \
        "http://127.0.0.1:$1" -- "$requests" "$OUT/data-$3.txt" "$THREADS" ${6:-} >"$5" 2>&1 \
        || { log "wrk failed ($5):"; tail -5 "$5" >&2; exit 1; }
    grep -q '^BENCH ' "$5" || { log "no BENCH line from wrk ($5):"; tail -5 "$5" >&2; exit 1; }
}

# The first membership's user and organization, for a one-off request with curl.
probe_authz() { # port cache: the HTTP status of POST /authz/check
    local data=$OUT/data-$2.txt user org token org_id
    read -r user org < <(awk '$1 == "M" { print $2, $3; exit }' "$data")
    token=$(awk -v u="$user" '$1 == "U" && $2 == u { print $4; exit }' "$data")
    org_id=$(awk -v o="$org" '$1 == "O" && $2 == o { print $3; exit }' "$data")
    curl -s -m 5 -o "$OUT/authz-probe-$2.json" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"checks\": [{\"organization_id\": \"$org_id\", \"permission\": \"organization:read\"}]}" \
        "http://127.0.0.1:$1/authz/check" || true
}

# The first membership's user and organization, exchanged once with curl.
probe_exchange() { # port cache: the HTTP status of POST /auth/token
    local data=$OUT/data-$2.txt user org token org_id
    read -r user org < <(awk '$1 == "M" { print $2, $3; exit }' "$data")
    token=$(awk -v u="$user" '$1 == "U" && $2 == u { print $4; exit }' "$data")
    org_id=$(awk -v o="$org" '$1 == "O" && $2 == o { print $3; exit }' "$data")
    curl -s -m 5 -o "$OUT/exchange-probe-$2.json" -w '%{http_code}' -X POST \
        --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
        --data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:jwt \
        --data-urlencode "subject_token=$token" --data-urlencode "organization_id=$org_id" \
        "http://127.0.0.1:$1/auth/token" || true
}

# S12's access tokens: one per membership, exchanged now (not at load time: S4 and S10 change
# the organizations' access, which makes the tokens issued before stale).
access_tokens() { # port cache
    local t0 t1
    t0=$(now)
    python3 .ci/bench/access_tokens.py --data "$OUT/data-$2.txt" --origin "http://127.0.0.1:$1" \
        2>"$OUT/access-tokens-$2.log" || return 1
    t1=$(now)
    NOTES+=("s12 (cache $2): $(grep -c '^A ' "$OUT/data-$2.txt") access tokens from POST /auth/token in $(elapsed "$t0" "$t1") s before the run (ACCESS_TOKEN_TTL_SECONDS=$ACCESS_TOKEN_TTL)")
}

not_run() { # scenario cache reason note [fails]
    log "$1 (cache $2): skipped, $3"
    printf '%s\t%s\t-\t-\t-\t-\tnot run: %s\n' "$1" "$2" "$3" >>"$RESULTS"
    NOTES+=("$1 (cache $2): $4")
    [ -z "${5:-}" ] || FAILED=1
}

delay_buckets() { # port: the "le count" lines of roster_change_stream_delay_seconds
    curl -fsS -m 5 "http://127.0.0.1:$1/metrics" 2>/dev/null \
        | sed -n 's/^roster_change_stream_delay_seconds_bucket{le="\([^"]*\)"} \([0-9]*\)$/\1 \2/p' || true
}
delay_percentiles() { # before after: the changes between the two readings, p50 and p99 bounds
    python3 - "$1" "$2" <<'PY'
import sys
def read(path):
    return {le: int(n) for le, n in (line.split() for line in open(path) if line.strip())}
before, after = read(sys.argv[1]), read(sys.argv[2])
bounds = sorted(after, key=lambda le: float(le))
counts = [after[le] - before.get(le, 0) for le in bounds]
total = counts[-1] if counts else 0
if total == 0:
    print("no change applied"); sys.exit()
def bound(q):
    for le, n in zip(bounds, counts):
        if n >= q * total:
            return "over 2.5 s" if le == "+Inf" else f"<= {float(le) * 1000:g} ms"
below50 = dict(zip(bounds, counts)).get("0.05", 0)
print(f"n={total} p50 {bound(0.5)}, p99 {bound(0.99)}, {100 * below50 / total:.1f}% within 50 ms")
PY
}

# BENCH_WARMUP seconds of the scenario, and with the cache on, for a scenario that only reads,
# again (5 passes at most) until a pass needs the database for under 1% of its requests: its
# measured run then measures the cache, not the cache's first fill. S7 has 4,000 different
# explanations, which one 3 s pass at the miss path's speed did not all reach: its measured run
# then made 1,044 misses, and they alone put its p99 at 50 ms against 1.2 ms for S7l after it.
warm_up() { # port scenario cache base
    local pass before after trips requests rt=roster_db_round_trips_total
    for pass in 1 2 3 4 5; do
        before=$(metrics "$1")
        run_wrk "$1" "$2" "$3" "$WARMUP" "$4.warmup.txt" probe
        after=$(metrics "$1")
        if grep -q '^BENCH_FAILURE ' "$4.warmup.txt"; then
            log "warm-up: $(grep '^BENCH_FAILURE ' "$4.warmup.txt" | cut -c1-300)"
        fi
        [ "$3" = on ] && [[ $2 != s4 && $2 != s10 && $2 != s11 ]] || return 0
        trips=$(( $(metric0 "$after" $rt) - $(metric0 "$before" $rt) ))
        requests=$(field "$4.warmup.txt" requests)
        [ $(( trips * 100 )) -lt "$requests" ] && return 0
        log "$2 (cache $3): warm-up pass $pass made $trips database round trips in $requests requests"
    done
}

run_scenario() { # cache port database scenario
    local cache=$1 port=$2 db=$3 s=$4 base=$OUT/$4-$1 before after rt c
    log "$s (cache $cache): ${TITLE[$s]}"
    [ "$WARMUP" -gt 0 ] && warm_up "$port" "$s" "$cache" "$base"
    local writes=; [[ $s == s4 || $s == s10 ]] && writes=1
    [ -n "$writes" ] && cleanup_writes "$db"
    before=$(metrics "$port")
    # Beside S1 with the cache on: how long a psql change takes to be served.
    local delay_probe=
    if [ "$s" = s1 ] && [ "$cache" = on ]; then
        python3 .ci/bench/invalidation_delay.py --data "$OUT/data-$cache.txt" \
            --origin "http://127.0.0.1:$port" --database-url "$PG_URL/$db" \
            --count "$DELAY_PROBES" >"$OUT/delay-$cache.txt" 2>&1 &
        delay_probe=$!
        delay_buckets "$port" >"$OUT/delay-buckets-before.txt"
    fi
    run_wrk "$port" "$s" "$cache" "$DURATION" "$base.txt"
    after=$(metrics "$port")
    if [ -n "$delay_probe" ]; then
        if wait "$delay_probe" && grep -q '^BENCH_DELAY ' "$OUT/delay-$cache.txt"; then
            NOTES+=("s1 (cache on): a psql change's commit to the API serving it, meanwhile: $(sed -n 's/^BENCH_DELAY //p' "$OUT/delay-$cache.txt") (.ci/bench/invalidation_delay.py)")
            delay_buckets "$port" >"$OUT/delay-buckets-after.txt"
            NOTES+=("s1 (cache on): the same changes from their write to the listener applying them, by the server's roster_change_stream_delay_seconds: $(delay_percentiles "$OUT/delay-buckets-before.txt" "$OUT/delay-buckets-after.txt")")
        else
            FAILED=1
            NOTES+=("s1 (cache on): the invalidation delay probe failed: $(tail -c 300 "$OUT/delay-$cache.txt")")
        fi
    fi
    [ -n "$writes" ] && cleanup_writes "$db"

    local requests rps p50 p99 non2xx sockerr
    requests=$(field "$base.txt" requests)
    rps=$(field "$base.txt" rps)
    p50=$(awk -v us="$(field "$base.txt" p50_us)" 'BEGIN { printf "%.2f", us / 1000 }')
    p99=$(awk -v us="$(field "$base.txt" p99_us)" 'BEGIN { printf "%.2f", us / 1000 }')
    non2xx=$(field "$base.txt" non2xx)
    sockerr=$(( $(field "$base.txt" connect) + $(field "$base.txt" read) + $(field "$base.txt" write) + $(field "$base.txt" timeout) ))
    local rt_before rt_after
    rt_before=$(metric "$before" roster_db_round_trips_total)
    rt_after=$(metric "$after" roster_db_round_trips_total)
    if [ -n "$rt_before" ] && [ -n "$rt_after" ] && [ "${requests:-0}" -gt 0 ]; then
        rt=$(awk -v a="$rt_before" -v b="$rt_after" -v n="$requests" 'BEGIN { printf "%.2f", (b - a) / n }')
    else
        rt=n/a
    fi
    if [ "$cache" = on ] && [ -n "$(metric "$after" roster_cache_hits_total)" ]; then
        local counts=
        for c in hits misses errors; do
            counts+=" $c $(( $(metric0 "$after" roster_cache_${c}_total) - $(metric0 "$before" roster_cache_${c}_total) )),"
        done
        NOTES+=("$s (cache $cache): cache${counts%,} (roster_cache_*_total over the measured run)")
    fi
    if [ -n "$writes" ]; then
        NOTES+=("${s^^} (cache $cache): $(field "$base.txt" pairs_per_s) add+remove pairs/s; responses 201: $(field "$base.txt" created), 204: $(field "$base.txt" removed), other: $(field "$base.txt" other)")
    fi
    if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then
        FAILED=1
        NOTES+=("$s (cache $cache): $non2xx non-2xx, $sockerr socket errors (connect/read/write/timeout) $(grep -h '^BENCH_FAILURE ' "$base.warmup.txt" 2>/dev/null | cut -c15-300)")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$cache" "$rps" "$p50" "$p99" "$non2xx" "$rt" >>"$RESULTS"
}

bench_server() { # cache
    local cache=$1 port=$PORT db=roster_bench_$1 url
    [ "$cache" = on ] && port=$((PORT + 1))
    url=$PG_URL/$db
    log "cache $cache: database $db, server on 127.0.0.1:$port"
    psql_admin -c "drop database if exists $db with (force)"
    DATABASE_URL=$url "$BIN" migrate >"$OUT/migrate-$cache.log" 2>&1 \
        || { log "roster migrate failed:"; tail -5 "$OUT/migrate-$cache.log" >&2; exit 1; }
    start_server "$cache" "$port" "$url"
    load_data "$cache" "$db"
    local authz_status= exchange_status=
    for s in $SCENARIOS; do
        if [[ $s == s11 || $s == s12 ]]; then
            [ -n "$exchange_status" ] || exchange_status=$(probe_exchange "$port" "$cache")
            if [ "$exchange_status" = 404 ]; then
                not_run "$s" "$cache" "HTTP 404" "POST /auth/token answered 404 (not served by this build), not run"
                continue
            elif [[ $exchange_status != 2?? ]]; then
                not_run "$s" "$cache" "HTTP $exchange_status" \
                    "POST /auth/token answered $exchange_status, not run: $(head -c 300 "$OUT/exchange-probe-$cache.json")" fail
                continue
            fi
            if [ "$s" = s12 ] && ! access_tokens "$port" "$cache"; then
                not_run "$s" "$cache" "no access tokens" \
                    "the access tokens could not be had: $(tail -c 300 "$OUT/access-tokens-$cache.log")" fail
                continue
            fi
        fi
        if [[ $s == s5* ]]; then
            [ -n "$authz_status" ] || authz_status=$(probe_authz "$port" "$cache")
            if [[ $authz_status != 2?? ]]; then
                log "$s (cache $cache): skipped, POST /authz/check answered $authz_status"
                printf '%s\t%s\t-\t-\t-\t-\tnot run: HTTP %s\n' "$s" "$cache" "$authz_status" >>"$RESULTS"
                if [ "$authz_status" = 404 ]; then
                    NOTES+=("$s (cache $cache): POST /authz/check answered 404 (not served by this build), not run")
                else
                    FAILED=1
                    NOTES+=("$s (cache $cache): POST /authz/check answered $authz_status, not run: $(head -c 300 "$OUT/authz-probe-$cache.json")")
                fi
                continue
            fi
        fi
        run_scenario "$cache" "$port" "$db" "$s"
    done
    if [ -z "$(metric "$(metrics "$port")" roster_db_round_trips_total)" ]; then
        NOTES+=("cache $cache: GET /metrics has no roster_db_round_trips_total, so db round trips/req is n/a")
    fi
    stop_server
}

# --------------------------------------------------------------------------------------------
# Machine state, the runs, the table
# --------------------------------------------------------------------------------------------
machine_state() {
    local dirty=
    [ -z "$(git status --porcelain 2>/dev/null)" ] || dirty=" (with uncommitted changes)"
    echo "commit:   $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty (at $(date '+%H:%M:%S'))"
    echo "machine:  $(nproc) cores, $(awk '{ print int($2 / 1024) " MiB" }' /proc/meminfo | head -1) RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    local pg redis
    pg=$(pgrep -x postgres >/dev/null && echo "PostgreSQL ($(pgrep -xc postgres) processes)" || echo "no local PostgreSQL")
    redis=$(pgrep -x redis-server >/dev/null && echo "Redis" || echo "no local Redis")
    echo "sharing:  the roster server, wrk (-t$THREADS), $pg and $redis all run on these cores"
    echo "kernel:   sched_autogroup_enabled $(cat "$AUTOGROUP" 2>/dev/null || echo 'not there')"
    echo "versions: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), PostgreSQL $(psql_admin -Atc 'show server_version' 2>/dev/null | cut -d' ' -f1), $(redis-cli -u "$REDIS" info server 2>/dev/null | tr -d '\r' | sed -n 's/^redis_version:/Redis /p')"
    if command -v top >/dev/null 2>&1; then
        # top's second frame: CPU use over the last second, not since each process started.
        echo "busiest processes over one second:"
        top -b -n 2 -d 1 -o %CPU -w 200 | awk '/^top -/ { frame++ } frame == 2' \
            | awk '/^%Cpu/ { print "  " $0 } /^ *PID/ { table = 1; next } table && shown < 6 { printf "  %7s %6s%%  %s\n", $1, $9, $12; shown++ }'
    else
        echo "busiest processes (%CPU since each started):"
        ps -eo pid=,pcpu=,comm= --sort=-pcpu | head -6 | awk '{ printf "  %7s %6s%%  %s\n", $1, $2, $3 }'
    fi
}

echo "== roster benchmark: $DURATION s per scenario after $WARMUP s of warm-up, $CONNECTIONS connections, $THREADS wrk threads"
machine_state
echo

for cache in $CACHES; do
    bench_server "$cache"
done

echo
echo "== results ($OUT)"
table_row() { printf '%-44s | %-5s | %9s | %7s | %7s | %7s | %s\n' "$@"; }
table_row scenario cache "req/s" "p50 ms" "p99 ms" non-2xx "db round trips/req"
table_row "$(printf '%.0s-' {1..44})" ----- --------- ------- ------- ------- ------------------
for s in $SCENARIOS; do
    for cache in $CACHES; do
        while IFS=$'\t' read -r rs rc rps p50 p99 non2xx rt; do
            [ "$rs" = "$s" ] && [ "$rc" = "$cache" ] || continue
            table_row "${TITLE[$s]}" "$cache" "$rps" "$p50" "$p99" "$non2xx" "$rt"
        done <"$RESULTS"
    done
done
# S12 against S1, the same requests with an identity token: the cost of the staleness check.
for cache in $CACHES; do
    s1=$(awk -F'\t' -v c="$cache" '$1 == "s1" && $2 == c { print $3 }' "$RESULTS")
    s12=$(awk -F'\t' -v c="$cache" '$1 == "s12" && $2 == c { print $3 }' "$RESULTS")
    if [[ $s1 =~ ^[0-9.]+$ && $s12 =~ ^[0-9.]+$ ]] && awk -v a="$s1" 'BEGIN { exit !(a > 0) }'; then
        NOTES+=("S12 vs S1 (cache $cache): $(awk -v a="$s1" -v b="$s12" 'BEGIN { printf "%.1f%% of S1'"'"'s req/s (%+.1f%%; target: within 10%%)", 100 * b / a, 100 * (b - a) / a }')")
    fi
done
echo
for note in "${LOAD_NOTES[@]}" "${NOTES[@]}"; do echo "- $note"; done
echo
echo "== machine state after the runs"
machine_state
exit "$FAILED"
