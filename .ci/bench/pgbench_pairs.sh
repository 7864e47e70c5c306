#!/usr/bin/env bash
# The write path without the API: add_member + remove_member pairs through the roster.*
# functions, each its own transaction as over HTTP, by pgbench at 1 and at 16 clients (#13's
# "the database alone" figure). Each client works on its own share of the organizations, so that
# no two clients add the same user to the same organization at once; a pair is a random one of
# the client's organizations and one of 20 users who are not its members.
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
-- Per organization, its owner and 20 users who are not members, each organization starting at
-- a different place among the users, as S4's random pairs do: one non-member per organization
-- would be the same user or two for all of them, and every pair would then wait on those users'
-- rows instead of measuring a write.
create table public.bench_pairs as
with orgs as (
  select row_number() over (order by o.id) as org_n, o.tenant_id, o.id
    from roster.organizations o where o.deleted_at is null),
users as (
  select row_number() over (order by u.id) as user_n, count(*) over () as users, u.tenant_id, u.id
    from roster.users u where u.deleted_at is null)
select o.org_n, row_number() over (partition by o.org_n order by u.id) as k,
       owner.user_id as owner_id, o.id as org_id, u.id as user_id
  from orgs o
  cross join lateral (select m.user_id from roster.organization_memberships m
                       where m.tenant_id = o.tenant_id and m.organization_id = o.id
                         and m.role = 'owner' and m.status = 'active' and m.deleted_at is null
                       order by m.user_id limit 1) owner
  cross join lateral (select u.id from users u
                       where u.tenant_id = o.tenant_id
                         and not exists (select from roster.organization_memberships m
                                          where m.tenant_id = o.tenant_id and m.organization_id = o.id
                                            and m.user_id = u.id and m.deleted_at is null)
                       order by (u.user_n + o.org_n * 37) % u.users limit 20) u;
SQL
clients_most=16
orgs=$(psql "$url" -Atc "select count(distinct org_n) from public.bench_pairs")
share=$(( orgs / clients_most ))
[ "$share" -ge 1 ] || { echo "pgbench_pairs.sh: $orgs organizations, fewer than $clients_most clients" >&2; exit 2; }
per_org=$(psql "$url" -Atc "select min(n) from (select count(*) n from public.bench_pairs group by org_n) c")
script=$(mktemp)
trap 'rm -f "$script"' EXIT
# Prepared statements (-M prepared), as the API sends them (prepare_cached): :name is a
# parameter there, not text pasted into the statement.
cat >"$script" <<'EOF'
\set org :client_id * :share + random(1, :share)
\set k random(1, :per_org)
select owner_id, org_id, user_id from public.bench_pairs where org_n = :org and k = :k \gset
select 1 from roster.add_member(:owner_id, :org_id, :user_id);
select 1 from roster.remove_member(:owner_id, :org_id, :user_id);
EOF
for clients in 1 "$clients_most"; do
    echo "pgbench, $clients client(s), ${seconds} s, add+remove pairs:"
    pgbench -n -M prepared -D share="$share" -D per_org="$per_org" -f "$script" -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T "$seconds" "$url" 2>&1 \
        | grep -E '^(tps|latency average|number of failed)'
done
