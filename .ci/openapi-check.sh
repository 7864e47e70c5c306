#!/usr/bin/env bash
# The OpenAPI document against outside tools, on a running server (`make openapi-check`, and the
# last step of `make test`):
#   1. openapi-spec-validator: the served document is valid OpenAPI 3.1;
#   2. openapi-python-client: a stock generator makes a client from it, and that client drives
#      the server (.ci/openapi/client_smoke.py);
#   3. PyJWT, a JWT library not ours, verifies an access token of POST /auth/token with
#      nothing but GET /.well-known/jwks.json, and refuses it with a signature byte changed
#      (.ci/openapi/jwks_check.py);
#   4. schemathesis: generated requests, valid and invalid, get only documented statuses,
#      content types, headers and bodies, and never a 5xx;
#   5. headless Chromium renders GET /docs, offline (.ci/openapi/check_page.py).
# The server is the debug `roster` binary on a fresh database (dropped at exit) with the demo
# data, a tenant admin's token, and Redis when it answers. The tools live in a private venv
# (target/openapi-check/venv, pinned by .ci/openapi/requirements.txt), installed once; Chromium
# comes from Debian's packages. Output and artefacts: target/openapi-check/.
#
# SCHEMATHESIS_EXAMPLES (default 100) examples per operation and phase; SCHEMATHESIS_SEED
# (default 1; "random" for a new one each run).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

REPO=$PWD
WORK=$REPO/target/openapi-check
VENV=$WORK/venv
REQUIREMENTS=.ci/openapi/requirements.txt
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-100}
SEED=${SCHEMATHESIS_SEED:-1}
mkdir -p "$WORK"
started=$SECONDS
passed=0
failed=0
step() {
    local name=$1
    shift
    log "$name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        log "FAILED: $name"
    fi
}

# ---- Tools ----------------------------------------------------------------------------------
if ! cmp -s "$REQUIREMENTS" "$VENV/installed-requirements.txt" 2>/dev/null; then
    log "installing the pinned tools into $VENV"
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/installed-requirements.txt"
fi
# openapi-python-client runs ruff, installed beside it, on what it generates.
export PATH="$VENV/bin:$PATH"
command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v psql >/dev/null 2>&1 || apt_install postgresql-client

# ---- A server on a fresh database -----------------------------------------------------------
cargo build --quiet --bin roster
ROSTER=$REPO/target/debug/roster

base=${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
base=${base%%\?*}
[[ $base =~ ^[a-z]+://[^/]+ ]] && base=${BASH_REMATCH[0]}
database=roster_openapi_check_$$
export DATABASE_URL=$base/$database
export JWT_SECRET=roster-openapi-check-secret-0123456789abcdef
export BIND_ADDR=127.0.0.1:0
export RUST_LOG=${RUST_LOG:-warn,roster=info}
# Access tokens: a signing key from a file (as in production, not the ephemeral one), and an
# issuer and an audience other than the defaults, which the JWKS check requires of the token.
"$ROSTER" keys generate >"$WORK/token-signing-key.pem"
export TOKEN_SIGNING_KEY=$WORK/token-signing-key.pem TOKEN_SIGNING_ALG=EdDSA \
    TOKEN_ISSUER=https://roster.openapi-check.test TOKEN_AUDIENCE=roster-openapi-check
if tcp_open 127.0.0.1 6379; then
    # CACHE_KEY is required with REDIS_URL (it authenticates the cache's entries).
    export REDIS_URL=redis://127.0.0.1:6379 CACHE_NAMESPACE=roster-openapi-check-$$ \
        CACHE_KEY=roster-openapi-check-cache-key-0123456789abcdef
fi

server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    psql "$base/postgres" -qAtc "drop database if exists $database with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$ROSTER" demo >"$WORK/demo.txt"
# ADA, GRACE, LINUS, BARBARA and ORG, as `roster demo` prints them.
eval "$(grep -o 'export ADA=.*' "$WORK/demo.txt")"
admin=$(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAtc \
    "select roster.create_user(id, 'tess@demo.test', 'Tess (tenant admin)', true) from roster.tenants where slug = 'demo'")
TOKEN=$("$ROSTER" token --user "$admin" --ttl 3600)
# A plain user of its own for the JWKS check, which makes it an organization to own.
jwks_user=$(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAtc \
    "select roster.create_user(id, 'pyjwt@demo.test', 'PyJWT check', false) from roster.tenants where slug = 'demo'")
JWKS_USER_TOKEN=$("$ROSTER" token --user "$jwks_user" --ttl 600)
export ROSTER_CHECK_USERS=$GRACE,$LINUS,$BARBARA,$ADA ROSTER_CHECK_ORG=$ORG
# Identity tokens for the fuzzed POST /auth/token (hooks.py): the admin's and two members'.
ROSTER_CHECK_SUBJECT_TOKENS=$TOKEN
for user in "$ADA" "$GRACE"; do
    ROSTER_CHECK_SUBJECT_TOKENS+=,$("$ROSTER" token --user "$user" --ttl 3600)
done
export ROSTER_CHECK_SUBJECT_TOKENS

"$ROSTER" serve >"$WORK/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 120); do
    port=$(grep -o 'serving on .*(port [0-9]*)' "$WORK/server.log" | grep -o '[0-9]*)$' | tr -d ')' || true)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.25
done
if [ -z "$port" ]; then
    log "the server did not start:"
    cat "$WORK/server.log" >&2
    exit 1
fi
ORIGIN=http://127.0.0.1:$port
"$VENV/bin/python" -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1]).read())' \
    "$ORIGIN/openapi.json" "$WORK/openapi.json"
log "server on $ORIGIN, database $database, document saved as $WORK/openapi.json"
# The admin's access token for ORG, which the fuzzed POST /auth/introspect asks about (hooks.py).
ROSTER_CHECK_ACCESS_TOKEN=$("$VENV/bin/python" -c '
import json, sys, urllib.parse, urllib.request
form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": sys.argv[2],
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "organization_id": sys.argv[3]}
answer = urllib.request.urlopen(sys.argv[1] + "/auth/token", urllib.parse.urlencode(form).encode())
print(json.load(answer)["access_token"])' "$ORIGIN" "$TOKEN" "$ORG") \
    || { log "POST /auth/token did not issue the admin an access token"; exit 1; }
export ROSTER_CHECK_ACCESS_TOKEN

# ---- The checks -----------------------------------------------------------------------------
validate() { openapi-spec-validator "$WORK/openapi.json"; }

generate_client() {
    rm -rf "$WORK/client"
    openapi-python-client generate --path "$WORK/openapi.json" --output-path "$WORK/client/roster_client" \
        --meta none --fail-on-warning \
        && python .ci/openapi/client_smoke.py "$WORK/client" "$ORIGIN" "$TOKEN"
}

fuzz() {
    local seed=()
    [ "$SEED" = random ] || seed=(--seed "$SEED")
    # NUL characters are not generated: a string holding one is schema-valid, but PostgreSQL
    # text cannot hold it and the server refuses it with 422 naming the field (tested in
    # tests/api/errors.rs), which schemathesis would count as a valid request rejected.
    # A bound on the whole run, should the server stop answering.
    (cd "$WORK" && SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$REPO/.ci/openapi" PYTHONDONTWRITEBYTECODE=1 timeout 900 \
        schemathesis --config-file "$REPO/.ci/openapi/schemathesis.toml" run "$ORIGIN/openapi.json" \
        --header "Authorization: Bearer $TOKEN" \
        --checks all \
        --max-examples "$EXAMPLES" "${seed[@]}" \
        --generation-allow-x00 false \
        --generation-database none \
        --request-timeout 10 \
        --report junit --report-dir "$WORK/schemathesis" \
        --no-color)
}

verify_with_jwks() { python .ci/openapi/jwks_check.py "$ORIGIN" "$JWKS_USER_TOKEN"; }

render_docs() {
    local profile
    profile=$(mktemp -d)
    # The proxy is a closed local port: nothing but loopback traffic can leave the browser.
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --proxy-server=http://127.0.0.1:9 \
        --virtual-time-budget=15000 --window-size=1280,2200 \
        --log-net-log="$WORK/docs-netlog.json" --screenshot="$WORK/docs.png" \
        --dump-dom "$ORIGIN/docs" >"$WORK/docs-dom.html" 2>"$WORK/chromium.log"
    local status=$?
    rm -rf "$profile"
    [ "$status" -eq 0 ] || { log "chromium exited with $status: see $WORK/chromium.log"; return 1; }
    python .ci/openapi/check_page.py "$ORIGIN" "$WORK/openapi.json" "$WORK/docs-dom.html" \
        "$WORK/docs-netlog.json" "$WORK/docs.png"
}

step "openapi-spec-validator: the document is valid OpenAPI" validate
step "openapi-python-client: generate a client and drive the server with it" generate_client
step "pyjwt: verify an access token with the JWKS alone" verify_with_jwks
step "schemathesis: $EXAMPLES examples per operation and phase, seed $SEED" fuzz
step "chromium: render /docs offline" render_docs

if grep -q 'internal error' "$WORK/server.log"; then
    log "the server logged internal errors:"
    grep 'internal error' "$WORK/server.log" | head -20 >&2
fi
log "done in $((SECONDS - started)) s; artefacts in $WORK"
echo "openapi-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
