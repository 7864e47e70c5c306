-- The membership functions: add or invite, accept an invitation, change role or status,
-- remove or leave, list members. The last-owner guard is not here but in V5's triggers, so
-- that it holds for raw SQL too; these functions only decide who may ask for a change.

-- ============================================================================================
-- Types
-- ============================================================================================
create type roster.member_row as (
  membership_id      uuid,
  user_id            uuid,
  email              text,
  display_name       text,
  role               text,
  status             text,
  invited_by_user_id uuid,
  invited_by_email   text, -- null once the inviter is deleted
  joined_at          timestamptz,
  last_active_at     timestamptz,
  created_at         timestamptz
);
comment on type roster.member_row is 'A row of an organization''s member list (list_members, get_member).';

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Validation of the role and status arguments, with messages that list what is allowed. The
   check constraints remain the final guard. */
create function roster._check_role(p_role text) returns void
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_role is null or p_role not in ('owner', 'admin', 'member') then
    raise exception using errcode = 'RINVL',
      message = format('unknown role %s: expected owner, admin or member', coalesce(quote_literal(p_role), 'null'));
  end if;
end
$$;
comment on function roster._check_role(text) is 'Internal: RINVL unless p_role is owner, admin or member.';

/* The live membership that update_member and remove_member act on, locked for the change;
   RMBNF when the user is not a member. */
create function roster._lock_membership(p_tenant_id uuid, p_org_id uuid, p_user_id uuid, p_org_slug text)
  returns roster.organization_memberships
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_membership roster.organization_memberships;
begin
  select m.* into v_membership from roster.organization_memberships m
   where m.tenant_id = p_tenant_id and m.organization_id = p_org_id
     and m.user_id = p_user_id and m.deleted_at is null
     for update;
  if not found then
    raise exception using errcode = 'RMBNF',
      message = format('user %s is not a member of organization %s', coalesce(p_user_id::text, 'null'), p_org_slug);
  end if;
  return v_membership;
end
$$;
comment on function roster._lock_membership(uuid, uuid, uuid, text) is
  'Internal: the live membership of a user in an organization, locked; RMBNF when there is none.';

-- ============================================================================================
-- Public functions
-- ============================================================================================

/* Adding with status 'invited' is how a user is invited; 'active' adds them outright. Only an
   owner (or tenant admin) may make someone an owner. */
create function roster.add_member(
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
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:invite');
  v_existing roster.organization_memberships;
  v_membership roster.organization_memberships;
  v_state text;
  v_constraint text;
begin
  perform roster._check_role(p_role);
  if p_status is null or p_status not in ('active', 'invited') then
    raise exception using errcode = 'RINVL',
      message = format('a new membership''s status must be active or invited, got %s', coalesce(quote_literal(p_status), 'null'));
  end if;
  if p_role = 'owner' then
    perform roster._deny_unless(v_access.actor_role, 'members:manage_owners', v_access.org_slug);
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
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  raise exception using errcode = 'RISMB', constraint = v_constraint,
    message = format('user %s is already a member of organization %s', p_user_id, v_access.org_slug);
end
$$;
comment on function roster.add_member(uuid, uuid, uuid, text, text) is
  'Adds (p_status ''active'') or invites (''invited'') a user of the tenant to an organization; returns the membership. Needs members:invite, and members:manage_owners for role owner. Errors: RNFND, RDNID, RINVL, RUSNF, RISMB.';

create function roster.accept_invitation(p_actor_id uuid, p_org_id uuid)
  returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
  v_membership roster.organization_memberships;
begin
  select m.* into v_membership
    from roster.organization_memberships m
    join roster.organizations o
      on o.tenant_id = m.tenant_id and o.id = m.organization_id and o.deleted_at is null
   where m.tenant_id = v_actor.tenant_id and m.organization_id = p_org_id
     and m.user_id = v_actor.id and m.deleted_at is null
     for update of m;
  if not found then
    raise exception using errcode = 'RNFND',
      message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
  end if;
  if v_membership.status <> 'invited' then
    raise exception using errcode = 'RNINV',
      message = format('there is no pending invitation to organization %s: the membership is %s', p_org_id, v_membership.status);
  end if;
  update roster.organization_memberships m set status = 'active'
   where m.tenant_id = v_membership.tenant_id and m.id = v_membership.id
  returning m.* into v_membership;
  return v_membership;
end
$$;
comment on function roster.accept_invitation(uuid, uuid) is
  'The actor accepts its own pending invitation: the membership becomes active. Errors: RNFND (no membership), RNINV (not invited).';

/* Role and status change separately checked permissions; anything touching the owner role
   (granting it, or changing an owner) needs members:manage_owners. An invitation cannot be
   activated by someone else: the invited user accepts it. */
create function roster.update_member(
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
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
  v_target roster.organization_memberships;
begin
  if p_role is null and p_status is null then
    raise exception using errcode = 'RINVL', message = 'nothing to change: give a role, a status or both';
  end if;
  if p_role is not null then
    perform roster._deny_unless(v_access.actor_role, 'members:update_role', v_access.org_slug);
    perform roster._check_role(p_role);
  end if;
  if p_status is not null then
    perform roster._deny_unless(v_access.actor_role, 'members:suspend', v_access.org_slug);
    if p_status not in ('active', 'suspended') then
      raise exception using errcode = 'RINVL',
        message = format('status can be changed to active or suspended, not %L', p_status);
    end if;
  end if;

  v_target := roster._lock_membership(v_access.tenant_id, p_org_id, p_user_id, v_access.org_slug);
  if 'owner' in (v_target.role, coalesce(p_role, v_target.role)) then
    perform roster._deny_unless(v_access.actor_role, 'members:manage_owners', v_access.org_slug);
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
  'Changes a member''s role and/or status (active/suspended); returns the membership. Needs members:update_role / members:suspend, and members:manage_owners when an owner is involved. The last-owner guard applies (RLOWN).';

/* Removing yourself is leaving: it needs no permission, only a live membership (an invited user
   declines this way). Everyone else needs members:remove, and members:manage_owners to remove
   an owner. The last-owner guard applies either way. */
create function roster.remove_member(p_actor_id uuid, p_org_id uuid, p_user_id uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users;
  v_access record;
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
    perform roster._deny_unless(v_access.actor_role, 'members:manage_owners', v_access.org_slug);
  end if;
  update roster.organization_memberships m set deleted_at = now()
   where m.tenant_id = v_target.tenant_id and m.id = v_target.id;
end
$$;
comment on function roster.remove_member(uuid, uuid, uuid) is
  'Removes a member (soft delete); removing yourself is leaving. Needs members:remove (and members:manage_owners for an owner) unless leaving. The last-owner guard applies (RLOWN).';

/* The rows list_members and get_member show: one query for both. Plain language sql with no
   SET clause (its names are schema-qualified), so that the planner inlines it. */
create function roster._member_rows(p_tenant_id uuid, p_org_id uuid)
  returns setof roster.member_row
  language sql stable
as $$
  select m.id, m.user_id, u.email, u.display_name, m.role, m.status,
         m.invited_by_user_id, inviter.email, m.joined_at, m.last_active_at, m.created_at
    from roster.organization_memberships m
    join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id
    left join roster.users inviter
      on inviter.tenant_id = m.tenant_id and inviter.id = m.invited_by_user_id
   where m.tenant_id = p_tenant_id and m.organization_id = p_org_id and m.deleted_at is null
$$;
comment on function roster._member_rows(uuid, uuid) is
  'Internal: the live memberships of an organization with user and inviter emails.';

/* One member, as list_members shows it: what a 201's Location header points to. */
create function roster.get_member(p_actor_id uuid, p_org_id uuid, p_user_id uuid)
  returns setof roster.member_row
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:read');
begin
  return query
  select * from roster._member_rows(v_access.tenant_id, p_org_id) r where r.user_id = p_user_id;
  if not found then
    raise exception using errcode = 'RMBNF',
      message = format('user %s is not a member of organization %s', coalesce(p_user_id::text, 'null'), v_access.org_slug);
  end if;
end
$$;
comment on function roster.get_member(uuid, uuid, uuid) is
  'One live membership of an organization (invited, active or suspended), with user and inviter emails. Needs members:read. RMBNF when the user is not a member.';

create function roster.list_members(
  p_actor_id uuid,
  p_org_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns setof roster.member_row
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:read');
begin
  perform roster._check_page(p_limit, p_offset);
  return query
  select * from roster._member_rows(v_access.tenant_id, p_org_id) r
   order by r.created_at, r.membership_id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_members(uuid, uuid, integer, integer) is
  'The live memberships (invited, active, suspended) of an organization, oldest first, with user and inviter emails. Needs members:read. p_limit 1..1000.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.add_member(uuid, uuid, uuid, text, text),
  roster.accept_invitation(uuid, uuid),
  roster.update_member(uuid, uuid, uuid, text, text),
  roster.remove_member(uuid, uuid, uuid),
  roster.get_member(uuid, uuid, uuid),
  roster.list_members(uuid, uuid, integer, integer)
to roster_app;
