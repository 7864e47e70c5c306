-- How long a change takes to reach the caches, measured where it happens: each change_log row
-- records the moment it was written (clock_timestamp(), not the transaction's start), and
-- changes_after returns it, so that a reader can tell how old each change is when it reads it
-- (the API exports that as roster_change_stream_delay_seconds). The new column is last, so a
-- reader that names the columns it reads is unaffected.

alter table roster.change_log
  alter column recorded_at set default pg_catalog.clock_timestamp();

drop function roster.changes_after(pg_snapshot);

/* As in V36, with each change's recorded_at. */
create function roster.changes_after(p_after pg_snapshot)
  returns table (snapshot pg_snapshot, kind text, tenant_id uuid, object_id uuid, version bigint,
                 recorded_at timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select pg_current_snapshot(), null::text, null::uuid, null::uuid, null::bigint,
           null::timestamptz
    union all
    select null, c.kind, c.tenant_id, c.object_id, c.version, c.recorded_at
      from roster.change_log c
     where p_after is not null
       and (c.xid >= pg_snapshot_xmax(p_after)
            or c.xid = any (array(select pg_snapshot_xip(p_after))));
end
$$;
comment on function roster.changes_after(pg_snapshot) is
  'The change log since snapshot p_after: the current snapshot first (pass it next time), then each change (kind, tenant_id, object_id, version, recorded_at: when it was written) committed since. Null p_after: the snapshot alone.';

grant execute on function roster.changes_after(pg_snapshot) to roster_app;
