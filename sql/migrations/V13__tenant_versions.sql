-- Tenants get an authz_version like organizations and users, announced on every change, so that
-- a cache can make every entry of one tenant depend on it: a change to one tenant's data (its
-- deletion today; its permission catalogue and tenant-wide roles later) invalidates that
-- tenant's entries only, instead of starting a new epoch for every tenant.
--
-- Payload (channel roster_changes, see V10): {"kind": "tenant", "tenant_id": ..., "version": n}.
-- Which cached read depends on which version, and which trigger bumps each: sql/CACHE.md.

-- ============================================================================================
-- Tables
-- ============================================================================================
alter table roster.tenants add column authz_version bigint not null default 1;
comment on column roster.tenants.authz_version is
  'Bumped by every change to the tenant (and, later, to its permission catalogue and tenant-wide roles): every cache entry of the tenant depends on it.';

-- ============================================================================================
-- Triggers
-- ============================================================================================

-- The shared V3 trigger function touches updated_at and bumps authz_version, as for users and
-- organizations.
drop trigger tg_tenants__touch_updated_at on roster.tenants;
create trigger tg_tenants__touch before update on roster.tenants
  for each row execute function roster.tg__touch_and_bump_version();

/* V10's trigger function, now for tenants too: a tenant row has no tenant_id column, its own id
   is its tenant. */
create or replace function roster.tg__notify_version_change() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row jsonb := to_jsonb(case when tg_op = 'DELETE' then old else new end);
begin
  perform pg_notify('roster_changes', jsonb_build_object(
    'kind', tg_argv[0],
    'tenant_id', coalesce(v_row -> 'tenant_id', v_row -> 'id'),
    tg_argv[0] || '_id', v_row -> 'id',
    'version', case when tg_op = 'DELETE' then 9223372036854775807
                    else (v_row ->> 'authz_version')::bigint end)::text);
  return null;
end
$$;
comment on function roster.tg__notify_version_change() is
  'Trigger: announces a change of a tenant, organization or user (with its new authz_version) on channel roster_changes.';

drop trigger tg_tenants__notify on roster.tenants;
drop function roster.tg_tenants__notify();
create trigger tg_tenants__notify after insert or update or delete on roster.tenants
  for each row execute function roster.tg__notify_version_change('tenant');

revoke execute on all functions in schema roster from public;
