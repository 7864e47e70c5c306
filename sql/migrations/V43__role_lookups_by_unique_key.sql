-- The role a key names for an organization, found by the two unique keys instead of a sort.
--
-- V31's bodies selected every role of that key in the tenant, tenant-wide and each
-- organization's own, and sorted them to keep the organization's first: after five calls
-- PL/pgSQL's generic plan is a bitmap scan of ix_roles_tenant_key and a sort, about 30 µs a call
-- with a custom role key used by 200 organizations. Each membership change calls one or the
-- other three to five times (the actor's access, the role's check, the role's grants). Looking
-- up the organization's own role (uq_roles_organization_key), then the tenant-wide one
-- (uq_roles_tenant_key), takes about 6-9 µs. _role_grants now reads through _find_role, so the
-- rule is written once. Same answers: a key is never both an organization's own and tenant-wide
-- (V20).

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
