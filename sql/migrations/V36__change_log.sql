-- The change stream without NOTIFY. Until now every version change was announced with
-- pg_notify on roster_changes (V10, V13, V25). In PostgreSQL 15 (and up to 18) a notifying
-- transaction takes a lock on database 0 that is held through its commit's WAL flush, so every
-- notifying transaction of the whole server commits one at a time, other services' included.
--
-- Now each change is a row of roster.change_log, written in the changing transaction (so a
-- rolled-back change records nothing), and readers follow the log by snapshot arithmetic, the
-- technique of PgQ and of SpiceDB's PostgreSQL watch: a reader keeps the snapshot of its last
-- read and asks for the rows its new snapshot sees and the old one did not
-- (roster.changes_after). Each row carries the top-level xid of its transaction, so the order in
-- which identity values or xids were handed out does not matter, only visibility.
--
-- Measured on the bench data, pgbench with 16 clients, add_member + remove_member pairs,
-- each pair in two transactions, two runs each: NOTIFY 251 and 266 pairs/s; this log 306 and
-- 311; pg_logical_emit_message (logical decoding's candidate) 302 and 322; nothing at all 350
-- and 357. The log is as cheap as logical messages and needs no server setting (wal_level,
-- replication slots, a replication login), so it works as is on any managed PostgreSQL.
--
-- Bounded: rows are deleted once every live reader has read them, and when no reader is alive,
-- by the writers themselves (the writer of every 1024th row prunes), so nothing grows while
-- every Roster instance is down. A reader that misses its heartbeat for 10 s is no longer
-- waited for; the API's listener gives up its stream (and starts a new cache epoch) long
-- before that.
--
-- Invitations keep their own NOTIFY for the product's mailer (V32): that is its documented
-- contract, and invitations are rare, human-paced writes.

-- ============================================================================================
-- Tables
-- ============================================================================================

create table roster.change_log (
  -- Null only for kind 'all' (the built-in catalogue changed: everything of every tenant).
  tenant_id uuid,
  -- Counts rows, so that every 1024th one's writer prunes (no index: nothing looks rows up by it).
  id bigint generated always as identity,
  kind text not null,
  -- The tenant's, organization's or user's id; the organization's for kind 'resources'.
  object_id uuid,
  -- Its new version; 9223372036854775807 when the row was deleted.
  version bigint,
  xid xid8 not null default pg_catalog.pg_current_xact_id(),
  recorded_at timestamptz not null default pg_catalog.now(),
  constraint ck_change_log_kind
    check (kind in ('tenant', 'organization', 'user', 'resources', 'all')),
  constraint ck_change_log_names_what_changed
    check (case when kind = 'all' then tenant_id is null and object_id is null and version is null
                else tenant_id is not null and object_id is not null and version is not null end)
);
comment on table roster.change_log is
  'Changes of versioned rows, for caches: read with roster.changes_after, pruned once read (V36).';
create index ix_change_log_xid on roster.change_log (xid);

create table roster.change_readers (
  id uuid primary key,
  -- Every change this snapshot sees has been read.
  read_through pg_snapshot not null,
  heartbeat_at timestamptz not null default pg_catalog.now()
);
comment on table roster.change_readers is
  'Readers of roster.change_log (one per API instance''s listener session) and how far each has read.';

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Deletes the rows every live reader has read (that its read_through snapshot sees); with no
   live reader, every row this snapshot sees, of transactions older than this one (so that a
   long transaction never rescans its own rows, and never deletes them). That is safe: a reader
   registers (and commits) before it takes the snapshot it reads from, so a pruner that does not
   see a reader only deletes rows that reader's first snapshot already sees, which it never asks
   for. At most 10,000 rows at a time, skipping rows another pruner holds. */
create function roster._prune_change_log() returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_below xid8;
begin
  select max(pg_snapshot_xmax(r.read_through)) into v_below
    from roster.change_readers r
   where r.heartbeat_at > now() - interval '10 seconds';
  v_below := coalesce(v_below, pg_snapshot_xmax(pg_current_snapshot()));
  delete from roster.change_log c
   where c.ctid = any (array(
           select l.ctid from roster.change_log l
            where l.xid < least(v_below, pg_current_xact_id())
              and not exists (select from roster.change_readers r
                               where r.heartbeat_at > now() - interval '10 seconds'
                                 and not pg_visible_in_snapshot(l.xid, r.read_through))
            limit 10000
              for update skip locked));
  delete from roster.change_readers r where r.heartbeat_at < now() - interval '1 hour';
end
$$;
comment on function roster._prune_change_log() is
  'Internal: deletes the change_log rows every live reader has read (all it sees when no reader is alive), and readers silent for an hour.';

/* Records one change; the writer of every 1024th row also prunes the log. */
create function roster._log_change(p_kind text, p_tenant_id uuid, p_object_id uuid, p_version bigint)
  returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_id bigint;
begin
  insert into roster.change_log (tenant_id, kind, object_id, version)
  values (p_tenant_id, p_kind, p_object_id, p_version)
  returning id into v_id;
  if v_id % 1024 = 0 then
    perform roster._prune_change_log();
  end if;
end
$$;
comment on function roster._log_change(text, uuid, uuid, bigint) is
  'Internal: records a change in roster.change_log (and prunes it, at every 1024th row).';

-- ============================================================================================
-- Triggers: the same changes V10, V13 and V25 announced, now logged
-- ============================================================================================

/* Its argument names the kind: 'tenant' (whose own id is its tenant), 'organization' or
   'user'. Each branch reads only columns its table has (PL/pgSQL plans a statement when it
   first runs, per table). */
create function roster.tg__log_version_change() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_argv[0] = 'tenant' then
    if tg_op = 'DELETE' then
      perform roster._log_change('tenant', old.id, old.id, 9223372036854775807);
    else
      perform roster._log_change('tenant', new.id, new.id, new.authz_version);
    end if;
  elsif tg_op = 'DELETE' then
    perform roster._log_change(tg_argv[0], old.tenant_id, old.id, 9223372036854775807);
  else
    perform roster._log_change(tg_argv[0], new.tenant_id, new.id, new.authz_version);
  end if;
  return null;
end
$$;
comment on function roster.tg__log_version_change() is
  'Trigger: logs a change of a tenant, organization or user with its new authz_version (roster.change_log).';

create function roster.tg_resource_versions__log_change() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' then
    perform roster._log_change('resources', old.tenant_id, old.organization_id, 9223372036854775807);
  else
    perform roster._log_change('resources', new.tenant_id, new.organization_id, new.version);
  end if;
  return null;
end
$$;
comment on function roster.tg_resource_versions__log_change() is
  'Trigger: logs a new resource version of an organization (roster.change_log).';

/* For what row triggers cannot see: the built-in catalogue (changed by migrations) and a
   TRUNCATE of a versioned table. Versions start again from 1 after a TRUNCATE, so nothing read
   before it can be trusted: everything is stale. */
create function roster.tg__log_everything_changed() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform roster._log_change('all', null, null, null);
  return null;
end
$$;
comment on function roster.tg__log_everything_changed() is
  'Trigger: logs that everything cached is stale (the built-in catalogue changed, or a versioned table was truncated).';

drop trigger tg_tenants__notify on roster.tenants;
drop trigger tg_organizations__notify on roster.organizations;
drop trigger tg_users__notify on roster.users;
drop trigger tg_resource_versions__notify on roster.resource_versions;
drop trigger tg_permissions__notify on roster.permissions;
drop function roster.tg__notify_version_change();
drop function roster.tg_resource_versions__notify();
drop function roster.tg_permissions__notify();

create trigger tg_tenants__log_change after insert or update or delete on roster.tenants
  for each row execute function roster.tg__log_version_change('tenant');
create trigger tg_organizations__log_change after insert or update or delete on roster.organizations
  for each row execute function roster.tg__log_version_change('organization');
create trigger tg_users__log_change after insert or update or delete on roster.users
  for each row execute function roster.tg__log_version_change('user');
create trigger tg_resource_versions__log_change after insert or update or delete on roster.resource_versions
  for each row execute function roster.tg_resource_versions__log_change();

create trigger tg_permissions__log_change after insert or update or delete or truncate on roster.permissions
  for each statement execute function roster.tg__log_everything_changed();
create trigger tg_tenants__log_truncate after truncate on roster.tenants
  for each statement execute function roster.tg__log_everything_changed();
create trigger tg_organizations__log_truncate after truncate on roster.organizations
  for each statement execute function roster.tg__log_everything_changed();
create trigger tg_users__log_truncate after truncate on roster.users
  for each statement execute function roster.tg__log_everything_changed();
create trigger tg_resource_versions__log_truncate after truncate on roster.resource_versions
  for each statement execute function roster.tg__log_everything_changed();

-- ============================================================================================
-- Public functions: following the log
-- ============================================================================================

/* A reader's first call, committed before it takes its first snapshot (see _prune_change_log). */
create function roster.register_change_reader(p_reader uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_reader is null then
    raise exception using errcode = '22004', message = 'p_reader must not be null';
  end if;
  insert into roster.change_readers (id, read_through)
  values (p_reader, pg_current_snapshot())
  on conflict (id) do update set read_through = excluded.read_through, heartbeat_at = now();
end
$$;
comment on function roster.register_change_reader(uuid) is
  'Registers a reader of roster.change_log: call it, commit, then follow with changes_after(null). Rows are kept for it while it calls change_reader_heartbeat at least every 10 s.';

/* The current snapshot in the first row (its other columns null), then every change committed
   since p_after was taken: the rows this statement's snapshot sees whose transaction p_after
   did not (in progress then, or not begun). Null p_after: the snapshot alone. In one
   statement, so the snapshot returned is the one the rows were read with. */
create function roster.changes_after(p_after pg_snapshot)
  returns table (snapshot pg_snapshot, kind text, tenant_id uuid, object_id uuid, version bigint)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select pg_current_snapshot(), null::text, null::uuid, null::uuid, null::bigint
    union all
    select null, c.kind, c.tenant_id, c.object_id, c.version
      from roster.change_log c
     where p_after is not null
       and (c.xid >= pg_snapshot_xmax(p_after)
            or c.xid = any (array(select pg_snapshot_xip(p_after))));
end
$$;
comment on function roster.changes_after(pg_snapshot) is
  'The change log since snapshot p_after: the current snapshot first (pass it next time), then each change (kind, tenant_id, object_id, version) committed since. Null p_after: the snapshot alone.';

/* Says how far a reader has read (everything p_seen sees) and prunes what every live reader
   has read. False when the reader is unknown (never registered, or silent for an hour): it
   must register again and start afresh. */
create function roster.change_reader_heartbeat(p_reader uuid, p_seen pg_snapshot) returns boolean
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_reader is null or p_seen is null then
    raise exception using errcode = '22004', message = 'p_reader and p_seen must not be null';
  end if;
  update roster.change_readers r
     set read_through = p_seen, heartbeat_at = now()
   where r.id = p_reader;
  if not found then
    return false;
  end if;
  perform roster._prune_change_log();
  return true;
end
$$;
comment on function roster.change_reader_heartbeat(uuid, pg_snapshot) is
  'A reader of roster.change_log reports that it has read everything p_seen sees (at least every 10 s); prunes what every live reader has read. False: unknown reader, register again.';

grant execute on function roster.register_change_reader(uuid) to roster_app;
grant execute on function roster.changes_after(pg_snapshot) to roster_app;
grant execute on function roster.change_reader_heartbeat(uuid, pg_snapshot) to roster_app;
