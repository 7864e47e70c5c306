-- The resolver's helpers without per-call planning. A `language sql` function with a SET
-- clause is never inlined, and PostgreSQL plans its body afresh for every statement that calls
-- it: with groups and grants (V25), one check called such helpers a dozen times, and spent most
-- of its time planning them (measured: member_access 0.9 ms, resource_access 1.8 ms). Same
-- answers, two ways:
--   * expressions and single queries become inlinable: no SET clause, every name and operator
--     schema-qualified, so that they are planned once inside their callers' cached plans;
--   * the others become PL/pgSQL, whose statements are planned once per session.
-- And the functions that return one row say so (below).

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* V19's, inlinable. */
create or replace function roster._grants_allow(p_grants text[], p_permission text) returns boolean
  language sql immutable
as $$
  select p_grants operator(pg_catalog.&&) array[
           p_permission, '*',
           pg_catalog.split_part(p_permission, ':', 1) operator(pg_catalog.||) ':*',
           '*:' operator(pg_catalog.||) pg_catalog.split_part(p_permission, ':', 2)]
$$;

/* V19's, inlinable. */
create or replace function roster._catalogue(p_tenant_id uuid) returns table (name text, description text, builtin boolean)
  language sql stable
as $$
  select p.name, p.description, true from roster.permissions p
  union all
  select tp.name, tp.description, false from roster.tenant_permissions tp
   where tp.tenant_id operator(pg_catalog.=) p_tenant_id
$$;

/* V19's, in PL/pgSQL. */
create or replace function roster._expand_grants(p_tenant_id uuid, p_grants text[]) returns text[]
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_grants = '{}' then
    return '{}';
  end if;
  return (select coalesce(array_agg(c.name order by c.name), '{}')
            from roster._catalogue(p_tenant_id) c
           where roster._grants_allow(p_grants, c.name));
end
$$;

/* V20's, in PL/pgSQL. */
create or replace function roster._find_role(p_tenant_id uuid, p_org_id uuid, p_key text) returns roster.roles
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_role roster.roles;
begin
  select r.* into v_role from roster.roles r
   where r.tenant_id = p_tenant_id and r.key = p_key
     and (r.organization_id is null or r.organization_id is not distinct from p_org_id)
   order by r.organization_id nulls last
   limit 1;
  return v_role;
end
$$;

/* V20's, in PL/pgSQL. */
create or replace function roster._role_grants(p_tenant_id uuid, p_org_id uuid, p_role text) returns text[]
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_grants text[];
begin
  select r.permissions into v_grants from roster.roles r
   where r.tenant_id = p_tenant_id and r.key = p_role
     and (r.organization_id is null or r.organization_id is not distinct from p_org_id)
   order by r.organization_id nulls last
   limit 1;
  return coalesce(v_grants, '{}');
end
$$;

-- ============================================================================================
-- Row estimates
-- ============================================================================================
-- The functions that return one row say so: PostgreSQL assumes 1000 rows of any set-returning
-- function, so a statement joining three of them was estimated at 10^9 rows, and compiled by
-- JIT (6 ms for a statement that runs in 1) in every session that leaves JIT on.
alter function roster.caller_identity(uuid) rows 1;
alter function roster.permission_catalogue(uuid) rows 1;
alter function roster.member_access(uuid, uuid) rows 1;
alter function roster.resource_access(uuid, uuid, text, text) rows 1;
alter function roster.get_member(uuid, uuid, uuid) rows 1;
alter function roster.get_organization(uuid, uuid) rows 1;
alter function roster.get_grant(uuid, uuid, uuid) rows 1;
alter function roster.purge_expired() rows 1;
alter function roster.list_resources(uuid, uuid, text, text, integer, text) rows 100;
