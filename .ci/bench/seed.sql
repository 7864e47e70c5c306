-- Benchmark data set, loaded by .ci/bench/run.sh into a freshly migrated database:
--   psql -v users=1000 -v orgs=200 -v per_org=20 -v heavy_users=50 -v batch=20 -f seed.sql
--
-- One tenant, :users users and :orgs organizations of :per_org members each (slot 0 the owner,
-- slots 1-2 admins, the rest members). The first :heavy_users users are each a member of :batch
-- organizations (the S5 batch check needs a user with that many); the others fill the remaining
-- slots round-robin (with the defaults, every user belongs to 3 to 20 organizations).
--
-- Everything goes through the public roster.* functions, as the API would, so every trigger
-- and invariant applies. The DO block commits after the users, after each organization with its
-- members (the deferred owner check runs at each of those commits) and after each heavy user's
-- memberships. In one single transaction the same load took 25-45 s here instead of 4-6 s:
-- every membership bumps its organization's and its user's version, and (most likely the
-- cause) rows updated many times by one open transaction pile up versions that nothing can prune
-- until it commits. The database is recreated for every run, so a load that fails halfway leaves
-- nothing behind that matters. Users are user<i>@bench.example, organizations bench-org-<i>.
\set ON_ERROR_STOP on
set bench.users = :'users';
set bench.orgs = :'orgs';
set bench.per_org = :'per_org';
set bench.heavy_users = :'heavy_users';
set bench.batch = :'batch';

do $$
declare
  v_users       integer := current_setting('bench.users')::integer;
  v_orgs        integer := current_setting('bench.orgs')::integer;
  v_per_org     integer := current_setting('bench.per_org')::integer;
  v_heavy       integer := current_setting('bench.heavy_users')::integer;
  v_batch       integer := current_setting('bench.batch')::integer;
  v_tenant      uuid;
  v_user        uuid[];   -- index 1..v_users
  v_owner       uuid[];   -- index 1..v_orgs: the owner's id
  v_org         uuid[];   -- index 1..v_orgs
  v_heavy_count integer[];
  v_cursor      integer := 0;
  v_regular     integer := v_users - v_heavy;
  v_slots       integer;
  v_o           integer;
  v_u           integer;
begin
  if v_heavy < 0 or v_regular < v_per_org or v_batch > v_orgs then
    raise exception 'bench seed: need users - heavy_users >= per_org and batch <= orgs (got users %, heavy %, per_org %, batch %, orgs %)',
      v_users, v_heavy, v_per_org, v_batch, v_orgs;
  end if;
  v_tenant := roster.create_tenant('bench', 'Benchmark tenant');
  for i in 1..v_users loop
    v_user[i] := roster.create_user(v_tenant, format('user%s@bench.example', i - 1), format('Bench user %s', i - 1));
  end loop;
  commit;

  -- Heavy user h (0-based) joins organizations (h * batch + j) mod orgs, j = 0..batch-1.
  v_heavy_count := array_fill(0, array[v_orgs]);
  for h in 0..v_heavy - 1 loop
    for j in 0..v_batch - 1 loop
      v_o := (h * v_batch + j) % v_orgs + 1;
      v_heavy_count[v_o] := v_heavy_count[v_o] + 1;
    end loop;
  end loop;

  -- Regular users (indexes heavy+1 .. users) fill the other slots from a cyclic cursor: slot 0
  -- creates the organization (and so owns it), slots 1 and 2 are admins.
  for o in 1..v_orgs loop
    v_slots := greatest(v_per_org - v_heavy_count[o], 1);
    for s in 0..v_slots - 1 loop
      v_u := v_heavy + (v_cursor % v_regular) + 1;
      v_cursor := v_cursor + 1;
      if s = 0 then
        v_owner[o] := v_user[v_u];
        v_org[o] := (roster.create_organization(v_user[v_u], format('Bench org %s', o - 1),
                                                format('bench-org-%s', o - 1))).id;
      else
        perform roster.add_member(v_owner[o], v_org[o], v_user[v_u],
                                  case when s <= 2 then 'admin' else 'member' end, 'active');
      end if;
    end loop;
    commit;
  end loop;

  for h in 0..v_heavy - 1 loop
    for j in 0..v_batch - 1 loop
      v_o := (h * v_batch + j) % v_orgs + 1;
      perform roster.add_member(v_owner[v_o], v_org[v_o], v_user[h + 1], 'member', 'active');
    end loop;
    commit;
  end loop;
end
$$;

vacuum analyze;
