-- The role functions, and memberships taking any role available to their organization.
--
-- Organization roles are managed with roles:manage (owners, not admins, by default);
-- tenant-wide roles (p_org_id null) by tenant admins. No privilege escalation: an actor may
-- create or change a role, or give someone a role (add_member, update_member, delete_role's
-- reassignment), only if it holds every permission the role grants, wildcards expanded against
-- the catalogue at that moment (RESCL otherwise); and it may change only the role of a member
-- whose current role it could have given. Owners and tenant admins hold everything.

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Unique violations of roles, re-raised with a message naming the key. */
create function roster._raise_role_conflict(p_constraint text, p_key text) returns void
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception using errcode = '23505', constraint = p_constraint,
    message = format('role key %L is already taken (in this organization, its tenant, or by a built-in role)', p_key);
end
$$;
comment on function roster._raise_role_conflict(text, text) is
  'Internal: a role key conflict (23505), naming the key.';

/* The custom role an actor manages at p_org_id (null: the tenant's), locked; and the actor's
   standing. Built-in roles are refused (RBLTN), a tenant-wide role from an organization's
   door too (RDNID), a key that names nothing there RRLNF. */
create function roster._managed_role(p_actor_id uuid, p_org_id uuid, p_key text,
                                     out managed roster.roles, out access roster.access)
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant uuid;
begin
  if p_org_id is null then
    v_tenant := roster._require_tenant_manager(null, p_actor_id);
    access := roster._access(p_actor_id, null);
  else
    access := roster._require_permission(p_actor_id, p_org_id, 'roles:manage');
    v_tenant := access.tenant_id;
  end if;
  select r.* into managed from roster.roles r
   where r.tenant_id = v_tenant and r.key = p_key
     and (r.organization_id is null or r.organization_id is not distinct from p_org_id)
   order by r.organization_id nulls last
   limit 1
     for update;
  if managed.key is null then
    raise exception using errcode = 'RRLNF',
      message = format('role %s not found', coalesce(quote_literal(p_key), 'null'));
  end if;
  if managed.builtin then
    raise exception using errcode = 'RBLTN',
      message = format('%s is a built-in role: it cannot be changed or deleted', p_key);
  end if;
  if managed.organization_id is distinct from p_org_id then
    raise exception using errcode = 'RDNID',
      message = format('role %s is tenant-wide: a tenant admin manages it (p_org_id null, /tenant/roles)', p_key);
  end if;
end
$$;
comment on function roster._managed_role(uuid, uuid, text) is
  'Internal: the custom role an actor may manage in the organization (or tenant), locked, with the actor''s roster.access.';

-- ============================================================================================
-- Public functions: roles
-- ============================================================================================

create function roster.create_role(
  p_actor_id uuid,
  p_org_id uuid,
  p_key text,
  p_name text,
  p_description text default null,
  p_permissions text[] default '{}'
) returns roster.roles
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access;
  v_tenant uuid;
  v_role roster.roles;
  v_state text;
  v_constraint text;
begin
  if p_org_id is null then
    v_tenant := roster._require_tenant_manager(null, p_actor_id);
  else
    v_access := roster._require_permission(p_actor_id, p_org_id, 'roles:manage');
    v_tenant := v_access.tenant_id;
    perform roster._check_grants(v_tenant, p_permissions);
    perform roster._require_grants_held(v_access, p_permissions, format('role %s', p_key));
  end if;
  insert into roster.roles (tenant_id, organization_id, key, name, description, permissions)
  values (v_tenant, p_org_id, p_key, btrim(p_name), p_description, coalesce(p_permissions, '{}'))
  returning * into v_role;
  return v_role;
exception when unique_violation or check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  if v_state = '23505' then
    perform roster._raise_role_conflict(v_constraint, p_key);
  end if;
  raise exception using errcode = v_state, constraint = v_constraint,
    message = case v_constraint
      when 'ck_roles_key_format' then format('role key %L must be 2 to 50 characters of a-z, 0-9, _ and -, starting with a letter', p_key)
      when 'ck_roles_name_length' then format('role name %L must not be blank and must be at most 100 characters', left(p_name, 120))
      when 'ck_roles_description_length' then 'role description must be at most 1000 characters'
      when 'ck_roles_permissions_count' then 'a role grants at most 500 permissions'
      else format('the role violates constraint %s', coalesce(v_constraint, '(not null)')) end;
end
$$;
comment on function roster.create_role(uuid, uuid, text, text, text, text[]) is
  'Creates a custom role of the organization (needs roles:manage) or, with p_org_id null, of the tenant (tenant admins). p_permissions: names or wildcards of the catalogue, each held by the actor (RESCL otherwise). Key ^[a-z][a-z0-9_-]{1,49}$, unique across the tenant''s scopes, never a built-in''s (23505). Returns the role.';

create function roster.update_role(p_actor_id uuid, p_org_id uuid, p_key text, p_changes jsonb)
  returns roster.roles
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_managed record := roster._managed_role(p_actor_id, p_org_id, p_key);
  v_role roster.roles := v_managed.managed;
  v_permissions text[];
  v_key text;
  v_state text;
  v_constraint text;
begin
  if jsonb_typeof(p_changes) is distinct from 'object' then
    raise exception using errcode = 'RINVL',
      message = format('changes must be a JSON object, got %s', coalesce(jsonb_typeof(p_changes), 'null'));
  end if;
  for v_key in select jsonb_object_keys(p_changes) loop
    if v_key not in ('name', 'description', 'permissions') then
      raise exception using errcode = 'RINVL',
        message = format('unknown field %L: expected one of name, description, permissions', v_key);
    end if;
  end loop;
  if p_changes ? 'name' and jsonb_typeof(p_changes -> 'name') <> 'string' then
    raise exception using errcode = 'RINVL', message = 'name must be a string';
  end if;
  if p_changes ? 'description' and jsonb_typeof(p_changes -> 'description') not in ('string', 'null') then
    raise exception using errcode = 'RINVL', message = 'description must be a string or null';
  end if;
  if p_changes ? 'permissions' then
    if jsonb_typeof(p_changes -> 'permissions') <> 'array'
       or exists (select from jsonb_array_elements(p_changes -> 'permissions') e where jsonb_typeof(e) <> 'string') then
      raise exception using errcode = 'RINVL', message = 'permissions must be an array of strings';
    end if;
    v_permissions := array(select jsonb_array_elements_text(p_changes -> 'permissions'));
    if p_org_id is not null then
      perform roster._check_grants(v_role.tenant_id, v_permissions);
      -- Changing what a role grants needs both: holding what it grants now and what it will.
      perform roster._require_grants_held(v_managed.access, v_role.permissions, format('role %s', p_key));
      perform roster._require_grants_held(v_managed.access, v_permissions, format('role %s', p_key));
    end if;
  end if;

  update roster.roles r set
    name = case when p_changes ? 'name' then btrim(p_changes ->> 'name') else r.name end,
    description = case when p_changes ? 'description' then p_changes ->> 'description' else r.description end,
    permissions = coalesce(v_permissions, r.permissions)
   where r.tenant_id = v_role.tenant_id and r.id = v_role.id
  returning * into v_role;
  return v_role;
exception when check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  raise exception using errcode = v_state, constraint = v_constraint,
    message = case v_constraint
      when 'ck_roles_name_length' then 'role name must not be blank and must be at most 100 characters'
      when 'ck_roles_description_length' then 'role description must be at most 1000 characters'
      when 'ck_roles_permissions_count' then 'a role grants at most 500 permissions'
      else format('the role violates constraint %s', coalesce(v_constraint, '(not null)')) end;
end
$$;
comment on function roster.update_role(uuid, uuid, text, jsonb) is
  'Partial update of a custom role: name, description, permissions (each held by the actor, RESCL otherwise). Built-in roles are immutable (RBLTN); a tenant-wide role is changed with p_org_id null by a tenant admin. Returns the role.';

create function roster.delete_role(p_actor_id uuid, p_org_id uuid, p_key text, p_reassign_to text default null)
  returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_managed record := roster._managed_role(p_actor_id, p_org_id, p_key);
  v_role roster.roles := v_managed.managed;
  v_target roster.roles;
begin
  if p_reassign_to is not null then
    v_target := roster._find_role(v_role.tenant_id, p_org_id, p_reassign_to);
    if v_target.key is null or v_target.key = p_key then
      raise exception using errcode = 'RINVL',
        message = format('cannot reassign to %L: expected another role available %s', p_reassign_to,
                         case when p_org_id is null then 'tenant-wide' else 'in the organization' end);
    end if;
    if p_org_id is not null then
      if v_target.key = 'owner' then
        perform roster._deny_unless(v_managed.access, 'members:manage_owners');
      end if;
      perform roster._require_grants_held(v_managed.access, v_target.permissions, format('role %s', v_target.key));
    end if;
    update roster.organization_memberships m set role = p_reassign_to
     where m.tenant_id = v_role.tenant_id and m.role = p_key and m.deleted_at is null
       and (p_org_id is null or m.organization_id = p_org_id);
  end if;
  delete from roster.roles r where r.tenant_id = v_role.tenant_id and r.id = v_role.id;
end
$$;
comment on function roster.delete_role(uuid, uuid, text, text) is
  'Deletes a custom role; refused (RRLUS) while memberships hold it, unless p_reassign_to names a role to move them to in the same transaction (held by the actor: RESCL otherwise). Built-in roles: RBLTN.';

create function roster.list_roles(p_actor_id uuid, p_org_id uuid)
  returns setof roster.roles
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_tenant uuid;
begin
  if p_org_id is null then
    v_tenant := roster._require_tenant_manager(null, p_actor_id);
  else
    v_tenant := (roster._require_permission(p_actor_id, p_org_id, 'organization:read')).tenant_id;
  end if;
  return query
  select r.* from roster.roles r
   where r.tenant_id = v_tenant and (r.organization_id is null or r.organization_id = p_org_id)
   order by r.builtin desc, r.organization_id nulls first, r.key;
end
$$;
comment on function roster.list_roles(uuid, uuid) is
  'The roles available in the organization (built-ins, tenant-wide, its own) with their permissions; needs organization:read. With p_org_id null: the tenant''s built-in and tenant-wide roles (tenant admins).';

create function roster.get_role(p_actor_id uuid, p_org_id uuid, p_key text)
  returns roster.roles
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_role roster.roles;
begin
  select r.* into v_role from roster.list_roles(p_actor_id, p_org_id) r where r.key = p_key;
  if v_role.key is null then
    raise exception using errcode = 'RRLNF',
      message = format('role %s not found', coalesce(quote_literal(p_key), 'null'));
  end if;
  return v_role;
end
$$;
comment on function roster.get_role(uuid, uuid, text) is
  'One role available in the organization (or, with p_org_id null, of the tenant), as list_roles shows it. RRLNF when there is none.';

-- ============================================================================================
-- Public functions: memberships take any available role, without escalation
-- ============================================================================================

create or replace function roster.add_member(
  p_actor_id uuid,
  p_org_id uuid,
  p_user_id uuid,
  p_role text default 'member',
  p_status text default 'active'
) returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'members:invite');
  v_existing roster.organization_memberships;
  v_membership roster.organization_memberships;
  v_constraint text;
begin
  perform roster._check_role(v_access.tenant_id, p_org_id, p_role);
  if p_status is null or p_status not in ('active', 'invited') then
    raise exception using errcode = 'RINVL',
      message = format('a new membership''s status must be active or invited, got %s', coalesce(quote_literal(p_status), 'null'));
  end if;
  if p_role = 'owner' then
    perform roster._deny_unless(v_access, 'members:manage_owners');
  end if;
  perform roster._require_grants_held(v_access, roster._role_grants(v_access.tenant_id, p_org_id, p_role),
                                      format('role %s', p_role));
  perform roster._require_tenant_user(v_access.tenant_id, p_user_id);
  select m.* into v_existing from roster.organization_memberships m
   where m.tenant_id = v_access.tenant_id and m.organization_id = p_org_id
     and m.user_id = p_user_id and m.deleted_at is null;
  if found then
    raise exception using errcode = 'RISMB',
      message = format('user %s is already a member of organization %s (status %s)', p_user_id, v_access.org_slug, v_existing.status);
  end if;

  insert into roster.organization_memberships
    (tenant_id, organization_id, user_id, role, status, invited_by_user_id)
  values (v_access.tenant_id, p_org_id, p_user_id, p_role, p_status, p_actor_id)
  returning * into v_membership;
  return v_membership;
exception when unique_violation then
  -- A concurrent add of the same user won the race.
  get stacked diagnostics v_constraint = constraint_name;
  raise exception using errcode = 'RISMB', constraint = v_constraint,
    message = format('user %s is already a member of organization %s', p_user_id, v_access.org_slug);
end
$$;
comment on function roster.add_member(uuid, uuid, uuid, text, text) is
  'Adds (p_status ''active'') or invites (''invited'') a user of the tenant with any role available to the organization; returns the membership. Needs members:invite, members:manage_owners for role owner, and every permission the role grants (RESCL). Errors: RNFND, RDNID, RESCL, RINVL, RUSNF, RISMB.';

create or replace function roster.update_member(
  p_actor_id uuid,
  p_org_id uuid,
  p_user_id uuid,
  p_role text default null,
  p_status text default null
) returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
  v_target roster.organization_memberships;
begin
  if p_role is null and p_status is null then
    raise exception using errcode = 'RINVL', message = 'nothing to change: give a role, a status or both';
  end if;
  if p_role is not null then
    perform roster._deny_unless(v_access, 'members:update_role');
    perform roster._check_role(v_access.tenant_id, p_org_id, p_role);
  end if;
  if p_status is not null then
    perform roster._deny_unless(v_access, 'members:suspend');
    if p_status not in ('active', 'suspended') then
      raise exception using errcode = 'RINVL',
        message = format('status can be changed to active or suspended, not %L', p_status);
    end if;
  end if;

  v_target := roster._lock_membership(v_access.tenant_id, p_org_id, p_user_id, v_access.org_slug);
  if 'owner' in (v_target.role, coalesce(p_role, v_target.role)) then
    perform roster._deny_unless(v_access, 'members:manage_owners');
  end if;
  if p_role is not null then
    -- Neither give more than one holds, nor change a member who holds more.
    perform roster._require_grants_held(v_access, roster._role_grants(v_access.tenant_id, p_org_id, p_role),
                                        format('role %s', p_role));
    perform roster._require_grants_held(v_access, roster._role_grants(v_access.tenant_id, p_org_id, v_target.role),
                                        format('the member''s current role %s', v_target.role));
  end if;
  if v_target.status = 'invited' and p_status is not null then
    raise exception using errcode = 'RINVL',
      message = format('user %s has not accepted the invitation yet: only they can activate it, and removing the membership withdraws it', p_user_id);
  end if;

  update roster.organization_memberships m set
    role = coalesce(p_role, m.role),
    status = coalesce(p_status, m.status)
   where m.tenant_id = v_target.tenant_id and m.id = v_target.id
  returning m.* into v_target;
  return v_target;
end
$$;
comment on function roster.update_member(uuid, uuid, uuid, text, text) is
  'Changes a member''s role (any role available to the organization) and/or status (active/suspended); returns the membership. Needs members:update_role / members:suspend, members:manage_owners when an owner is involved, and every permission of both the new and the current role (RESCL). The last-owner guard applies (RLOWN).';

drop function roster._check_role(text);

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.create_role(uuid, uuid, text, text, text, text[]),
  roster.update_role(uuid, uuid, text, jsonb),
  roster.delete_role(uuid, uuid, text, text),
  roster.list_roles(uuid, uuid),
  roster.get_role(uuid, uuid, text)
to roster_app;
