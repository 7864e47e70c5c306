-- Roster's schema, its roles, and the helpers every later migration uses.
--
-- Conventions (see ../ERRORS.md for the error catalogue):
--   * all logic lives in functions of schema roster; the tables are not for direct writes;
--   * public functions are `security definer` with a pinned search_path and schema-qualified
--     names, and are granted one by one; names starting with `_` are internal helpers;
--   * every table carries tenant_id and every foreign key includes it, except the global
--     catalogues of permissions (reference tables, identical for every tenant).

-- ============================================================================================
-- Schema and roles
-- ============================================================================================
create schema if not exists roster;
comment on schema roster is
  'Roster: organizations, memberships and role-based access. Call the functions (\df roster.*); the tables are written only through them and their triggers.';

do $$
begin
  -- The role the HTTP API and other services act as: it may call the public functions and
  -- nothing else (no table privileges at all).
  if not exists (select from pg_catalog.pg_roles where rolname = 'roster_app') then
    create role roster_app nologin;
  end if;
  -- Identity services and DBAs that create tenants and users.
  if not exists (select from pg_catalog.pg_roles where rolname = 'roster_provisioner') then
    create role roster_provisioner nologin;
  end if;
end
$$;

revoke all on schema roster from public;
grant usage on schema roster to roster_app, roster_provisioner;

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Shared by every table with an updated_at column. */
create function roster.tg__touch_updated_at() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function roster.tg__touch_updated_at() is
  'Trigger: keeps updated_at current on every update.';

/* Raised by every function that takes a page: one place for the bounds and the message. */
create function roster._check_page(p_limit integer, p_offset integer) returns void
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception using errcode = 'RINVL',
      message = format('limit must be between 1 and 1000, got %s', coalesce(p_limit::text, 'null'));
  end if;
  if p_offset is null or p_offset < 0 then
    raise exception using errcode = 'RINVL',
      message = format('offset must be 0 or more, got %s', coalesce(p_offset::text, 'null'));
  end if;
end
$$;
comment on function roster._check_page(integer, integer) is
  'Internal: rejects a page size outside 1..1000 or a negative offset with RINVL.';

revoke execute on all functions in schema roster from public;
