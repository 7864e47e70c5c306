#!/usr/bin/env bash
# Makes sure the API's own database login exists, and prints its URL on stdout (for `make run`,
# which serves with it as DATABASE_APP_URL). The login (APP_LOGIN, default roster_api) may log
# in, is no superuser and creates nothing, and is a member of roster_app that inherits its
# grants: it may call the functions roster_app may call and touch no table, and it has no
# stronger identity to `reset role` back to. Idempotent.
#
# Runs as DATABASE_URL (the owner, default postgres://postgres@127.0.0.1:5432/roster), after
# the migrations (they create roster_app). The URL printed is DATABASE_URL with the login and
# APP_PASSWORD in place of its user: a development password, for servers that ask for one
# (trust authentication ignores it). Needs psql (installed with apt-get when root and missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh

URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/roster}
LOGIN=${APP_LOGIN:-roster_api}
PASSWORD=${APP_PASSWORD:-roster-dev-password}

[[ $URL =~ ^postgres(ql)?:// ]] || { log "DATABASE_URL must be a postgres:// URL here"; exit 2; }
[[ $LOGIN =~ ^[a-z_][a-z0-9_]*$ ]] || { log "APP_LOGIN must be a lowercase identifier, got '$LOGIN'"; exit 2; }
# It goes into a URL unescaped.
[[ $PASSWORD =~ ^[A-Za-z0-9._~-]+$ ]] || { log "APP_PASSWORD: letters, digits and . _ ~ - only"; exit 2; }
command -v psql >/dev/null 2>&1 || apt_install postgresql-client >&2

psql -X -q -v ON_ERROR_STOP=1 -v login="$LOGIN" -v password="$PASSWORD" "$URL" >&2 <<'SQL'
set client_min_messages = warning;
select not exists (select from pg_catalog.pg_roles where rolname = :'login') as missing \gset
\if :missing
create role :"login" login;
\endif
alter role :"login" login nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit
  password :'password';
grant roster_app to :"login";
SQL
log "login $LOGIN is a member of roster_app only"

scheme=${URL%%://*}
rest=${URL#*://}
authority=${rest%%[/?]*}
echo "$scheme://$LOGIN:$PASSWORD@${authority##*@}${rest#"$authority"}"
