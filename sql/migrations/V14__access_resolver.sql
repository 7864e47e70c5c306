-- One permission resolver. Who may do what in an organization was decided in three places
-- (V6 _require_permission and has_permission, V10 member_access), each with its own copy of
-- "a tenant admin counts as an owner". Now roster._access answers it once, and every check
-- goes through it: the actor-checked functions (roster._require_permission), the lookups
-- other services call (has_permission, member_role, caller_identity) and what the API's cache
-- reads (member_access). Widening the model (custom roles, wildcards, groups) changes
-- _access and the grant helpers below, nothing else.
--
-- A user id that exists in two tenants (only raw SQL can make one: the id indexes are not
-- unique, see V3) is refused with RAMBG by every lookup by id, rather than picking a tenant.

-- ============================================================================================
-- Types
-- ============================================================================================
create type roster.access as (
  tenant_id       uuid,    -- the user's tenant; null when there is no such user
  is_tenant_admin boolean,
  user_live       boolean, -- a live user of a live tenant: may act
  user_version    bigint,  -- 0 when there is no such user
  tenant_version  bigint,  -- 0 when there is no such user
  org_version     bigint,  -- 0 when the user's tenant has no organization of that id (live or deleted)
  org_slug        text,
  role            text,    -- the user's live membership (invited, active or suspended), if any
  status          text,
  visible         boolean, -- the user may see the organization: a live user, a live organization of its tenant, an active membership or tenant admin
  effective_role  text,    -- the role whose grants apply: owner for a tenant admin, else the active membership's; null unless visible
  grants          text[]   -- what the effective role grants; empty unless visible
);
comment on type roster.access is
  'A user''s standing in an organization, as roster._access resolves it for every check.';

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* The grants of a role. Built-in roles only, for now: the list lives in role_permissions. */
create function roster._role_grants(p_tenant_id uuid, p_org_id uuid, p_role text) returns text[]
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(rp.permission order by rp.permission), '{}')
    from roster.role_permissions rp
   where rp.role = p_role
$$;
comment on function roster._role_grants(uuid, uuid, text) is
  'Internal: the grants of a role available in the organization (sorted).';

/* Whether p_grants grant p_permission. Grants are exact names for now. */
create function roster._grants_allow(p_grants text[], p_permission text) returns boolean
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select p_permission = any (p_grants)
$$;
comment on function roster._grants_allow(text[], text) is
  'Internal: whether a set of grants grants the permission.';

/* Every permission name the grants give, sorted: what the API caches and shows. */
create function roster._expand_grants(p_tenant_id uuid, p_grants text[]) returns text[]
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(p.name order by p.name), '{}')
    from roster.permissions p
   where roster._grants_allow(p_grants, p.name)
$$;
comment on function roster._expand_grants(uuid, text[]) is
  'Internal: the permission names of the tenant''s catalogue that the grants give, sorted.';

/* A typo must never silently deny (or allow): an unknown name is the caller's bug. */
create function roster._require_known_permission(p_tenant_id uuid, p_permission text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from roster.permissions p where p.name = p_permission) then
    raise exception using errcode = 'RUPRM',
      message = format('unknown permission %s', coalesce(quote_literal(p_permission), 'null'));
  end if;
end
$$;
comment on function roster._require_known_permission(uuid, text) is
  'Internal: RUPRM unless the permission is in the tenant''s catalogue.';

/* The resolver. Two queries by primary key or id index; no exception block, so no
   subtransaction on the hot path. */
create function roster._access(p_user_id uuid, p_org_id uuid) returns roster.access
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v roster.access;
  v_rows bigint;
  v_org_live boolean;
begin
  select u.tenant_id, u.is_tenant_admin, u.deleted_at is null and t.deleted_at is null,
         u.authz_version, t.authz_version, count(*) over ()
    into v.tenant_id, v.is_tenant_admin, v.user_live, v.user_version, v.tenant_version, v_rows
    from roster.users u
    join roster.tenants t on t.id = u.tenant_id
   where u.id = p_user_id
   limit 1;
  if v_rows > 1 then
    raise exception using errcode = 'RAMBG',
      message = format('user id %s exists in more than one tenant: refusing to guess which', p_user_id);
  end if;
  v.is_tenant_admin := coalesce(v.is_tenant_admin, false);
  v.user_live := coalesce(v.user_live, false);
  v.user_version := coalesce(v.user_version, 0);
  v.tenant_version := coalesce(v.tenant_version, 0);

  select o.authz_version, o.slug, o.deleted_at is null, m.role, m.status
    into v.org_version, v.org_slug, v_org_live, v.role, v.status
    from roster.organizations o
    left join roster.organization_memberships m
      on m.tenant_id = o.tenant_id and m.organization_id = o.id and m.user_id = p_user_id
     and m.deleted_at is null
   where o.tenant_id = v.tenant_id and o.id = p_org_id;
  v.org_version := coalesce(v.org_version, 0);
  if not coalesce(v_org_live, false) then
    v.role := null;
    v.status := null;
  end if;

  v.effective_role := case
    when not v.user_live or not coalesce(v_org_live, false) then null
    when v.is_tenant_admin then 'owner'
    when v.status = 'active' then v.role
  end;
  v.visible := v.effective_role is not null;
  v.grants := case when v.visible then roster._role_grants(v.tenant_id, p_org_id, v.effective_role)
                   else '{}' end;
  return v;
end
$$;
comment on function roster._access(uuid, uuid) is
  'Internal: the one permission resolver: a user''s standing in an organization (roster.access). RAMBG when the user id exists in two tenants.';

/* The acting user, resolved once at the top of every actor-checked function that needs no
   organization. Refuses an ambiguous id like _access. */
create or replace function roster._actor(p_actor_id uuid) returns roster.users
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_actor_id, null);
  v_actor roster.users;
begin
  if not v_access.user_live then
    raise exception using errcode = 'RNACT',
      message = format('user %s does not exist or has been deleted', coalesce(p_actor_id::text, 'null'));
  end if;
  select u.* into v_actor from roster.users u
   where u.tenant_id = v_access.tenant_id and u.id = p_actor_id;
  perform set_config('roster.actor_id', v_actor.id::text, true);
  return v_actor;
end
$$;
comment on function roster._actor(uuid) is
  'Internal: the live user p_actor_id of a live tenant, or RNACT (RAMBG for an id in two tenants); records it as roster.actor_id for the audit trail.';

/* RDNID unless the access grants the permission; RUPRM for a name in no catalogue. */
drop function roster._deny_unless(text, text, text);
create function roster._deny_unless(p_access roster.access, p_permission text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform roster._require_known_permission(p_access.tenant_id, p_permission);
  if not roster._grants_allow(p_access.grants, p_permission) then
    raise exception using errcode = 'RDNID',
      message = format('role %s may not %s (permission %s) in organization %s',
                       p_access.effective_role,
                       (select p.description from roster.permissions p where p.name = p_permission),
                       p_permission, p_access.org_slug);
  end if;
end
$$;
comment on function roster._deny_unless(roster.access, text) is
  'Internal: raises RDNID unless the access grants the permission (RUPRM for an unknown permission).';

/* The entry point of every actor-checked function on an organization: RNACT for an actor that
   cannot act, RNFND when it may not see the organization (the same error as a missing id, so
   that non-members learn nothing), RDNID when it lacks the permission. Records the actor for
   the audit trail. */
drop function roster._require_permission(uuid, uuid, text);
create function roster._require_permission(p_actor_id uuid, p_org_id uuid, p_permission text)
  returns roster.access
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_actor_id, p_org_id);
begin
  if not v_access.user_live then
    raise exception using errcode = 'RNACT',
      message = format('user %s does not exist or has been deleted', coalesce(p_actor_id::text, 'null'));
  end if;
  perform set_config('roster.actor_id', p_actor_id::text, true);
  if not v_access.visible then
    raise exception using errcode = 'RNFND',
      message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
  end if;
  perform roster._deny_unless(v_access, p_permission);
  return v_access;
end
$$;
comment on function roster._require_permission(uuid, uuid, text) is
  'Internal: RNACT/RNFND/RDNID unless the actor holds the permission in the organization; returns its roster.access (tenant_id, org_slug, effective_role, grants...).';

/* Validation of a role argument, with a message that lists the roles available. The
   membership constraints remain the final guard. */
create or replace function roster._check_role(p_role text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_role is null or not exists (select from roster.role_permissions rp where rp.role = p_role) then
    raise exception using errcode = 'RINVL',
      message = format('unknown role %s: expected %s', coalesce(quote_literal(p_role), 'null'),
                       (select string_agg(distinct rp.role, ', ') from roster.role_permissions rp));
  end if;
end
$$;

-- ============================================================================================
-- Public functions: the actor-checked ones that test further permissions
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
  perform roster._check_role(p_role);
  if p_status is null or p_status not in ('active', 'invited') then
    raise exception using errcode = 'RINVL',
      message = format('a new membership''s status must be active or invited, got %s', coalesce(quote_literal(p_status), 'null'));
  end if;
  if p_role = 'owner' then
    perform roster._deny_unless(v_access, 'members:manage_owners');
  end if;
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
    perform roster._check_role(p_role);
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

create or replace function roster.remove_member(p_actor_id uuid, p_org_id uuid, p_user_id uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users;
  v_access roster.access;
  v_target roster.organization_memberships;
begin
  if p_user_id = p_actor_id then
    -- Resolved here only: the other path resolves the actor in _require_permission.
    v_actor := roster._actor(p_actor_id);
    update roster.organization_memberships m set deleted_at = now()
      from roster.organizations o
     where o.tenant_id = m.tenant_id and o.id = m.organization_id and o.deleted_at is null
       and m.tenant_id = v_actor.tenant_id and m.organization_id = p_org_id
       and m.user_id = v_actor.id and m.deleted_at is null;
    if not found then
      raise exception using errcode = 'RNFND',
        message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
    end if;
    return;
  end if;

  v_access := roster._require_permission(p_actor_id, p_org_id, 'members:remove');
  v_target := roster._lock_membership(v_access.tenant_id, p_org_id, p_user_id, v_access.org_slug);
  if v_target.role = 'owner' then
    perform roster._deny_unless(v_access, 'members:manage_owners');
  end if;
  update roster.organization_memberships m set deleted_at = now()
   where m.tenant_id = v_target.tenant_id and m.id = v_target.id;
end
$$;

-- ============================================================================================
-- Public functions: lookups, for other services and the API's cache
-- ============================================================================================

create or replace function roster.member_role(p_user_id uuid, p_org_id uuid) returns text
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
begin
  return case when v_access.user_live and v_access.status = 'active' then v_access.role end;
end
$$;

create or replace function roster.has_permission(p_user_id uuid, p_org_id uuid, p_permission text)
  returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
begin
  perform roster._require_known_permission(v_access.tenant_id, p_permission);
  return roster._grants_allow(v_access.grants, p_permission);
end
$$;
comment on function roster.has_permission(uuid, uuid, text) is
  'True when the live user holds the permission in the live organization: through an active membership''s role, or as a tenant admin (owner''s permissions). RUPRM for an unknown permission name; RAMBG for a user id in two tenants.';

/* Always one row, so that a cache can remember "no such user" too (user_version 0). */
drop function roster.caller_identity(uuid);
create function roster.caller_identity(p_user_id uuid)
  returns table (
    tenant_id uuid, is_tenant_admin boolean, user_live boolean, user_version bigint,
    tenant_version bigint
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, null);
begin
  return query select v_access.tenant_id, v_access.is_tenant_admin, v_access.user_live,
                      v_access.user_version, v_access.tenant_version;
end
$$;
comment on function roster.caller_identity(uuid) is
  'Who a user is, for caches: tenant, tenant admin flag, whether it may act (live user of a live tenant), and the authz_version of the user and of its tenant (0 when there is no such user). RAMBG for a user id in two tenants. No actor check.';

/* Always one row: everything the API needs to decide a request in one organization, with the
   versions it was read at. The decision is the resolver's (visible, permissions); the API
   only reports it. */
drop function roster.member_access(uuid, uuid);
create function roster.member_access(p_user_id uuid, p_org_id uuid)
  returns table (
    tenant_id uuid, is_tenant_admin boolean, user_live boolean, user_version bigint,
    tenant_version bigint, org_version bigint, org_slug text, visible boolean, role text,
    status text, permissions text[]
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
begin
  return query select v_access.tenant_id, v_access.is_tenant_admin, v_access.user_live,
                      v_access.user_version, v_access.tenant_version, v_access.org_version,
                      v_access.org_slug, v_access.visible, v_access.role, v_access.status,
                      roster._expand_grants(v_access.tenant_id, v_access.grants);
end
$$;
comment on function roster.member_access(uuid, uuid) is
  'A user''s access to an organization, for caches and the API: tenant, tenant admin flag, live, the versions of user, tenant and organization (org_version 0: no such organization in the user''s tenant), whether it may see the organization, the role and status of its live membership, its effective permissions (empty unless visible). RAMBG for a user id in two tenants. No actor check.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.caller_identity(uuid),
  roster.member_access(uuid, uuid)
to roster_app;

/* For caches: the names a check may use in a tenant, with the version they were read at. */
create function roster.permission_catalogue(p_tenant_id uuid)
  returns table (names text[], tenant_version bigint)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select (select coalesce(array_agg(p.name order by p.name), '{}') from roster.permissions p),
         coalesce((select t.authz_version from roster.tenants t where t.id = p_tenant_id), 0);
end
$$;
comment on function roster.permission_catalogue(uuid) is
  'For caches: every permission name a check may use in the tenant (sorted) and the tenant''s authz_version. No actor check.';

grant execute on function roster.permission_catalogue(uuid) to roster_app;

revoke execute on all functions in schema roster from public;
