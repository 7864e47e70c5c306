#!/usr/bin/env bash
# The write path without the API: add_member + remove_member pairs through the roster.*
# functions, each its own transaction as over HTTP, by pgbench at 1 and at 16 clients (#13's
# "the database alone" figure). Each client works on its own share of the organizations, so that
# no two clients add the same user at once.
#
#   .ci/bench/pgbench_pairs.sh DATABASE_URL [SECONDS]
#
# DATABASE_URL: a database `make bench` loaded (roster_bench_off or _on; 200 organizations).
# Leaves the memberships as it found them (every pair removes what it added) and a table
# public.bench_pairs behind. Prints pgbench's tps lines: each "transaction" there is one pair.
set -euo pipefail
url=${1:?usage: pgbench_pairs.sh DATABASE_URL [SECONDS]}
seconds=${2:-15}
psql "$url" -q -v ON_ERROR_STOP=1 <<'SQL'
set client_min_messages = warning;
drop table if exists public.bench_pairs;
-- One (owner, organization, non-member) per organization.
create table public.bench_pairs as
select row_number() over (order by o.id) as n, owner.user_id as owner_id, o.id as org_id, u.id as user_id
  from roster.organizations o
  cross join lateral (select m.user_id from roster.organization_memberships m
                       where m.tenant_id = o.tenant_id and m.organization_id = o.id
                         and m.role = 'owner' and m.status = 'active' and m.deleted_at is null
                       order by m.user_id limit 1) owner
  cross join lateral (select u.id from roster.users u
                       where u.tenant_id = o.tenant_id and u.deleted_at is null
                         and not exists (select from roster.organization_memberships m
                                          where m.tenant_id = o.tenant_id and m.organization_id = o.id
                                            and m.user_id = u.id and m.deleted_at is null)
                       order by u.id limit 1) u
 where o.deleted_at is null;
SQL
clients_most=16
pairs=$(psql "$url" -Atc "select count(*) from public.bench_pairs")
share=$(( pairs / clients_most ))
[ "$share" -ge 1 ] || { echo "pgbench_pairs.sh: $pairs organizations, fewer than $clients_most clients" >&2; exit 2; }
script=$(mktemp)
trap 'rm -f "$script"' EXIT
# pgbench substitutes :name inside quotes too.
cat >"$script" <<'EOF'
\set n :client_id * :share + random(1, :share)
select owner_id, org_id, user_id from public.bench_pairs where n = :n \gset
select 1 from roster.add_member(':owner_id', ':org_id', ':user_id');
select 1 from roster.remove_member(':owner_id', ':org_id', ':user_id');
EOF
for clients in 1 "$clients_most"; do
    echo "pgbench, $clients client(s), ${seconds} s, add+remove pairs:"
    pgbench -n -D share="$share" -f "$script" -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T "$seconds" "$url" 2>&1 \
        | grep -E '^(tps|latency average|number of failed)'
done
