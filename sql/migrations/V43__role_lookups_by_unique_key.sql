-- The role a key names for an organization, found by the two unique keys instead of a sort.
--
-- V20's _find_role was an SQL function (not inlined, because of its SET clause, so planned again
-- in every transaction) whose generic plan scans every role of that key in the tenant and sorts
-- them: with a custom role key used by 200 organizations, about 30 µs a call. Each membership
-- change calls it or _role_grants three to five times (the actor's access, the role's check, the
-- role's grants). As PL/pgSQL (plans kept for the session) looking up the organization's own role
-- (uq_roles_organization_key), then the tenant-wide one (uq_roles_tenant_key): about 6–9 µs.
-- Same answers: a key is never both an organization's own and tenant-wide (V20).

create or replace function roster._find_role(p_tenant_id uuid, p_org_id uuid, p_key text) returns roster.roles
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_role roster.roles;
begin
  if p_org_id is not null then
    select r.* into v_role from roster.roles r
     where r.tenant_id = p_tenant_id and r.organization_id = p_org_id and r.key = p_key;
    if found then
      return v_role;
    end if;
  end if;
  select r.* into v_role from roster.roles r
   where r.tenant_id = p_tenant_id and r.organization_id is null and r.key = p_key;
  return v_role;
end
$$;

create or replace function roster._role_grants(p_tenant_id uuid, p_org_id uuid, p_role text) returns text[]
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  return coalesce((roster._find_role(p_tenant_id, p_org_id, p_role)).permissions, '{}');
end
$$;
