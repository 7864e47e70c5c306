-- Memberships that end by themselves (contractors, guests, temporary elevation): an
-- expires_at past which the membership grants nothing, at once, with no job needed: every check
-- compares with the statement's time (the resolver, V25). roster.purge_expired (V26) tidies
-- expired rows for a scheduler; correctness never depends on it.
--
-- The last-owner guard counts lasting owners only: active, live, without an expiry. A live
-- organization always keeps one owner who will still be there tomorrow.

-- ============================================================================================
-- Types
-- ============================================================================================
alter type roster.member_row add attribute expires_at timestamptz;

-- ============================================================================================
-- Tables
-- ============================================================================================
alter table roster.organization_memberships add column expires_at timestamptz;
comment on column roster.organization_memberships.expires_at is
  'When the membership stops granting anything (null: never). Checks compare with the statement''s time.';

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* V5's version bump, now also for a changed expiry. */
drop trigger tg_organization_memberships__bump_authz_version on roster.organization_memberships;
create trigger tg_organization_memberships__bump_authz_version
  after insert or delete
     or update of organization_id, user_id, role, status, deleted_at, invited_by_user_id, expires_at
  on roster.organization_memberships
  for each row execute function roster.tg_organization_memberships__bump_authz_version();

create or replace function roster._assert_has_owner(p_tenant_id uuid, p_org_id uuid) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_slug text;
begin
  select o.slug into v_slug
    from roster.organizations o
   where o.tenant_id = p_tenant_id and o.id = p_org_id and o.deleted_at is null
     for update;
  if not found then
    return; -- a deleted or vanished organization needs no owner
  end if;
  if not exists (
    select from roster.organization_memberships m
      join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id and u.deleted_at is null
     where m.tenant_id = p_tenant_id and m.organization_id = p_org_id
       and m.role = 'owner' and m.status = 'active' and m.deleted_at is null
       and m.expires_at is null
  ) then
    raise exception using errcode = 'RLOWN',
      message = format('organization %s must keep at least one active owner without an expiry', v_slug),
      hint = 'Make another member a lasting owner first, or delete the organization.';
  end if;
end
$$;
comment on function roster._assert_has_owner(uuid, uuid) is
  'Internal: raises RLOWN unless the live organization has an active owner without an expiry; locks the organization row first.';

create or replace function roster.tg_organization_memberships__keep_an_owner() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- Only reached when an active owner changed (see the trigger's when clause).
  if tg_op = 'UPDATE' and new.role = 'owner' and new.status = 'active' and new.deleted_at is null
     and new.expires_at is null
     and new.organization_id = old.organization_id and new.user_id = old.user_id then
    return null;
  end if;
  perform roster._assert_has_owner(old.tenant_id, old.organization_id);
  return null;
end
$$;

/* The rows list_members and get_member show, with the expiry. */
create or replace function roster._member_rows(p_tenant_id uuid, p_org_id uuid)
  returns setof roster.member_row
  language sql stable
as $$
  select m.id, m.user_id, u.email, u.display_name, m.role, m.status,
         m.invited_by_user_id, inviter.email, m.joined_at, m.last_active_at, m.created_at,
         m.expires_at
    from roster.organization_memberships m
    join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id
    left join roster.users inviter
      on inviter.tenant_id = m.tenant_id and inviter.id = m.invited_by_user_id
   where m.tenant_id = p_tenant_id and m.organization_id = p_org_id and m.deleted_at is null
$$;

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* RINVL unless an expiry is in the future; 'infinity' means "no expiry" (null). */
create function roster._check_expiry(p_expires_at timestamptz) returns timestamptz
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_expires_at = 'infinity' then
    return null;
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception using errcode = 'RINVL',
      message = format('expires_at %s is not in the future', p_expires_at);
  end if;
  return p_expires_at;
end
$$;
comment on function roster._check_expiry(timestamptz) is
  'Internal: the expiry to store (null for none or ''infinity''); RINVL when it is not in the future.';

-- ============================================================================================
-- Public functions: add_member and update_member take an expiry
-- ============================================================================================

drop function roster.add_member(uuid, uuid, uuid, text, text);
create function roster.add_member(
  p_actor_id uuid,
  p_org_id uuid,
  p_user_id uuid,
  p_role text default 'member',
  p_status text default 'active',
  p_expires_at timestamptz default null
) returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'members:invite');
  v_expires_at timestamptz := roster._check_expiry(p_expires_at);
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
    (tenant_id, organization_id, user_id, role, status, invited_by_user_id, expires_at)
  values (v_access.tenant_id, p_org_id, p_user_id, p_role, p_status, p_actor_id, v_expires_at)
  returning * into v_membership;
  return v_membership;
exception when unique_violation then
  -- A concurrent add of the same user won the race.
  get stacked diagnostics v_constraint = constraint_name;
  raise exception using errcode = 'RISMB', constraint = v_constraint,
    message = format('user %s is already a member of organization %s', p_user_id, v_access.org_slug);
end
$$;
comment on function roster.add_member(uuid, uuid, uuid, text, text, timestamptz) is
  'Adds (p_status ''active'') or invites (''invited'') a user of the tenant with any role available to the organization, until p_expires_at (null: no expiry); returns the membership. Needs members:invite, members:manage_owners for role owner, and every permission the role grants (RESCL). Errors: RNFND, RDNID, RESCL, RINVL, RUSNF, RISMB.';

drop function roster.update_member(uuid, uuid, uuid, text, text);
create function roster.update_member(
  p_actor_id uuid,
  p_org_id uuid,
  p_user_id uuid,
  p_role text default null,
  p_status text default null,
  p_expires_at timestamptz default null
) returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
  v_expires_at timestamptz := roster._check_expiry(p_expires_at);
  v_target roster.organization_memberships;
begin
  if p_role is null and p_status is null and p_expires_at is null then
    raise exception using errcode = 'RINVL', message = 'nothing to change: give a role, a status, an expiry or several';
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
  if p_expires_at is not null then
    -- Setting when access ends is a suspension decided ahead of time.
    perform roster._deny_unless(v_access, 'members:suspend');
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
    status = coalesce(p_status, m.status),
    expires_at = case when p_expires_at is null then m.expires_at else v_expires_at end
   where m.tenant_id = v_target.tenant_id and m.id = v_target.id
  returning m.* into v_target;
  return v_target;
end
$$;
comment on function roster.update_member(uuid, uuid, uuid, text, text, timestamptz) is
  'Changes a member''s role (any role available to the organization), status (active/suspended) and/or expiry (a future time; ''infinity'' removes it); returns the membership. Needs members:update_role / members:suspend (also for the expiry), members:manage_owners when an owner is involved, and every permission of both the new and the current role (RESCL). The last-owner guard applies (RLOWN): the last lasting owner cannot get an expiry.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.add_member(uuid, uuid, uuid, text, text, timestamptz),
  roster.update_member(uuid, uuid, uuid, text, text, timestamptz)
to roster_app;
