-- The invitation functions: inviting by email (one or up to 100 at once), resending,
-- revoking and listing (permission invitations:manage, new, held by owners and admins), the
-- invitee's accept, decline and list, accepting as a new user (the identity service, through
-- the provisioning role), the tenant's default lifetime, and writing expiries in bulk.
-- accept_invitation (v1) now goes through the same acceptance as a token does.
--
-- Tokens: an expired one gets RIEXP (409); one that is unknown, used, declined or revoked gets
-- RIVNF (404), the same whatever the reason, so that a guess learns nothing; one that is valid
-- but was sent to another address RIEML (403). Tokens are compared by hash only.

-- ============================================================================================
-- Types
-- ============================================================================================
create type roster.invitation_row as (
  id                  uuid,
  organization_id     uuid,
  organization_name   text,
  organization_slug   text,
  email               text,
  role                text,
  status              text,        -- as of now: a pending one past expires_at is expired
  invited_by_user_id  uuid,
  invited_by_email    text,        -- null once the inviter is deleted
  user_id             uuid,        -- the invitee's user, once known
  membership_id       uuid,
  expires_at          timestamptz,
  sent_at             timestamptz,
  accepted_at         timestamptz,
  accepted_by_user_id uuid,
  declined_at         timestamptz,
  revoked_at          timestamptz,
  created_at          timestamptz,
  updated_at          timestamptz
);
comment on type roster.invitation_row is 'An invitation as the invitation functions show it (never with its token).';

-- The same, with the plain token: what invite and resend_invitation return, and the only place
-- a token ever appears.
create type roster.issued_invitation as (
  id                  uuid,
  organization_id     uuid,
  organization_name   text,
  organization_slug   text,
  email               text,
  role                text,
  status              text,
  invited_by_user_id  uuid,
  invited_by_email    text,
  user_id             uuid,
  membership_id       uuid,
  expires_at          timestamptz,
  sent_at             timestamptz,
  accepted_at         timestamptz,
  accepted_by_user_id uuid,
  declined_at         timestamptz,
  revoked_at          timestamptz,
  created_at          timestamptz,
  updated_at          timestamptz,
  token               text
);
comment on type roster.issued_invitation is 'An invitation with its plain token, as invite and resend_invitation return it, once.';

-- ============================================================================================
-- Data: the permission, and the built-in admin role holding it
-- ============================================================================================
insert into roster.permissions (name, description) values
  ('invitations:manage', 'invite people by email, resend, revoke and list invitations');

/* V24's definition (groups:manage, grants:manage for admins), with invitations:manage too (owners hold `*`). */
create or replace function roster._builtin_roles()
  returns table (key text, name text, description text, permissions text[])
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  values
    ('owner', 'Owner', 'Everything, including deleting the organization and managing owners and roles.',
     array['*']),
    ('admin', 'Admin', 'Reads, updates the organization, and manages members who are not owners, invitations, groups and grants. Only owners change roles.',
     array['organization:read', 'organization:update', 'members:read', 'members:invite',
           'members:suspend', 'members:remove', 'audit:read', 'groups:manage', 'grants:manage',
           'invitations:manage']),
    ('member', 'Member', 'Reads the organization and its members.',
     array['organization:read', 'members:read'])
$$;

update roster.roles r set name = b.name, description = b.description, permissions = b.permissions
  from roster._builtin_roles() b
 where r.builtin and r.key = b.key
   and (r.name, r.description, r.permissions) is distinct from (b.name, b.description, b.permissions);

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* An invitation as shown: with its organization, its inviter's email and its status now. */
create function roster._invitation_row(p_invitation roster.invitations) returns roster.invitation_row
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select p_invitation.id, p_invitation.organization_id, o.name, o.slug, p_invitation.email,
         p_invitation.role, roster._invitation_status(p_invitation.status, p_invitation.expires_at),
         p_invitation.invited_by_user_id, inviter.email, p_invitation.user_id,
         p_invitation.membership_id, p_invitation.expires_at, p_invitation.sent_at,
         p_invitation.accepted_at, p_invitation.accepted_by_user_id, p_invitation.declined_at,
         p_invitation.revoked_at, p_invitation.created_at, p_invitation.updated_at
    from roster.organizations o
    left join roster.users inviter
      on inviter.tenant_id = p_invitation.tenant_id and inviter.id = p_invitation.invited_by_user_id
   where o.tenant_id = p_invitation.tenant_id and o.id = p_invitation.organization_id
$$;
comment on function roster._invitation_row(roster.invitations) is
  'Internal: an invitation as the functions show it (organization, inviter''s email, status as of now).';

create function roster._issued(p_invitation roster.invitations, p_token text) returns roster.issued_invitation
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select r.*, p_token from roster._invitation_row(p_invitation) r
$$;
comment on function roster._issued(roster.invitations, text) is
  'Internal: an invitation as shown, with its plain token.';

/* When an invitation made now expires: after p_expires_in, or the tenant's lifetime. */
create function roster._invitation_expiry(p_tenant_id uuid, p_expires_in interval) returns timestamptz
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_expires_in is null then
    return now() + (select t.invitation_lifetime from roster.tenants t where t.id = p_tenant_id);
  end if;
  if p_expires_in not between interval '1 hour' and interval '90 days' then
    raise exception using errcode = 'RINVL',
      message = format('an invitation must expire in 1 hour to 90 days, not %s', p_expires_in);
  end if;
  return now() + p_expires_in;
end
$$;
comment on function roster._invitation_expiry(uuid, interval) is
  'Internal: now plus p_expires_in (1 hour to 90 days, RINVL otherwise) or plus the tenant''s invitation_lifetime.';

/* The checks of giving p_role, in add_member's order (V21): the role exists there, owner needs
   members:manage_owners, and the actor holds every permission it grants. */
create function roster._require_may_give_role(p_access roster.access, p_org_id uuid, p_role text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform roster._check_role(p_access.tenant_id, p_org_id, p_role);
  if p_role = 'owner' then
    perform roster._deny_unless(p_access, 'members:manage_owners');
  end if;
  perform roster._require_grants_held(p_access, roster._role_grants(p_access.tenant_id, p_org_id, p_role),
                                      format('role %s', p_role));
end
$$;
comment on function roster._require_may_give_role(roster.access, uuid, text) is
  'Internal: RINVL/RDNID/RESCL unless the actor may give the role in the organization (as add_member checks it).';

/* One invitation, the actor's access already checked (invite, invite_many). */
create function roster._invite(p_access roster.access, p_org_id uuid, p_email text, p_role text,
                               p_expires_in interval)
  returns roster.issued_invitation
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_role text := coalesce(p_role, 'member');
  v_email text;
  v_expires timestamptz;
  v_status text;
  v_token text;
  v_invitation roster.invitations;
  v_constraint text;
begin
  perform roster._require_may_give_role(p_access, p_org_id, v_role);
  v_email := roster._normalize_email(p_email);
  v_expires := roster._invitation_expiry(p_access.tenant_id, p_expires_in);

  perform roster._expire_stale_invitations(p_access.tenant_id, p_org_id, v_email);
  if exists (select from roster.invitations i
              where i.tenant_id = p_access.tenant_id and i.organization_id = p_org_id
                and i.email = v_email and i.status = 'pending') then
    raise exception using errcode = '23505', constraint = 'uq_invitations_pending_email',
      message = format('an invitation to %s is already pending in organization %s', v_email, p_access.org_slug);
  end if;
  select m.status into v_status
    from roster.organization_memberships m
    join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id and u.deleted_at is null
   where m.tenant_id = p_access.tenant_id and m.organization_id = p_org_id and m.deleted_at is null
     and lower(u.email) = v_email;
  if found then
    raise exception using errcode = 'RISMB',
      message = format('%s is already a member of organization %s (status %s)', v_email, p_access.org_slug, v_status);
  end if;

  v_token := roster._new_token();
  insert into roster.invitations
    (tenant_id, organization_id, email, role, token_hash, expires_at, invited_by_user_id)
  values (p_access.tenant_id, p_org_id, v_email, v_role, roster._token_hash(v_token), v_expires,
          roster._audit_actor())
  returning * into v_invitation;
  return roster._issued(v_invitation, v_token);
exception when unique_violation then
  -- A concurrent invitation of the same address won the race.
  get stacked diagnostics v_constraint = constraint_name;
  raise exception using errcode = '23505', constraint = v_constraint,
    message = format('an invitation to %s is already pending in organization %s', coalesce(v_email, p_email), p_access.org_slug);
end
$$;
comment on function roster._invite(roster.access, uuid, text, text, interval) is
  'Internal: makes one invitation for an actor already allowed to invite; returns it with its token.';

/* The invitation of p_id in the organization, locked; RIVNF when there is none. */
create function roster._lock_invitation(p_tenant_id uuid, p_org_id uuid, p_id uuid, p_org_slug text)
  returns roster.invitations
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_invitation roster.invitations;
begin
  select i.* into v_invitation from roster.invitations i
   where i.tenant_id = p_tenant_id and i.organization_id = p_org_id and i.id = p_id
     for update;
  if not found then
    raise exception using errcode = 'RIVNF',
      message = format('invitation %s not found in organization %s', coalesce(p_id::text, 'null'), p_org_slug);
  end if;
  return v_invitation;
end
$$;
comment on function roster._lock_invitation(uuid, uuid, uuid, text) is
  'Internal: an invitation of the organization by id, locked; RIVNF when there is none.';

/* The invitation a token names, locked, if it is still pending or expired, in a live
   organization of a live tenant (and of p_tenant_id when given). Anything else is RIVNF,
   whatever the reason. */
create function roster._invitation_by_token(p_tenant_id uuid, p_token text) returns roster.invitations
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_invitation roster.invitations;
begin
  select i.* into v_invitation
    from roster.invitations i
    join roster.organizations o
      on o.tenant_id = i.tenant_id and o.id = i.organization_id and o.deleted_at is null
    join roster.tenants t on t.id = i.tenant_id and t.deleted_at is null
   where i.token_hash = roster._token_hash(coalesce(p_token, ''))
     and (p_tenant_id is null or i.tenant_id = p_tenant_id)
     and i.status in ('pending', 'expired')
   limit 1
     for update of i;
  if not found then
    raise exception using errcode = 'RIVNF',
      message = 'no pending invitation has this token (unknown, used, declined or revoked)';
  end if;
  return v_invitation;
end
$$;
comment on function roster._invitation_by_token(uuid, text) is
  'Internal: the pending or expired invitation of a token, locked; RIVNF for any other token.';

/* The token was sent to the user's address, and is still valid. */
create function roster._require_token_for(p_invitation roster.invitations, p_user roster.users) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if lower(p_user.email) <> p_invitation.email then
    raise exception using errcode = 'RIEML',
      message = format('this invitation was sent to another address than %s', p_user.email);
  end if;
  if roster._invitation_status(p_invitation.status, p_invitation.expires_at) = 'expired' then
    raise exception using errcode = 'RIEXP',
      message = format('this invitation expired at %s: ask for it to be resent', p_invitation.expires_at);
  end if;
end
$$;
comment on function roster._require_token_for(roster.invitations, roster.users) is
  'Internal: RIEML unless the invitation was sent to the user''s email; RIEXP when it has expired.';

/* The one acceptance, whichever door: the user becomes an active member with the invitation's
   role. An invited membership (add_member) is activated; otherwise the membership is created.
   Either way the membership trigger (V27) settles the invitation as accepted, and the seat
   limit (V29) applies. */
create function roster._accept(p_invitation roster.invitations, p_user roster.users)
  returns roster.organization_memberships
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_membership roster.organization_memberships;
  v_slug text;
begin
  select m.* into v_membership from roster.organization_memberships m
   where m.tenant_id = p_invitation.tenant_id and m.organization_id = p_invitation.organization_id
     and m.user_id = p_user.id and m.deleted_at is null
     for update;
  if found then
    if v_membership.status = 'invited' then
      update roster.organization_memberships m set status = 'active', role = p_invitation.role
       where m.tenant_id = v_membership.tenant_id and m.id = v_membership.id
      returning m.* into v_membership;
      return v_membership;
    end if;
    select o.slug into v_slug from roster.organizations o
     where o.tenant_id = p_invitation.tenant_id and o.id = p_invitation.organization_id;
    raise exception using errcode = 'RISMB',
      message = format('user %s is already a member of organization %s (status %s)', p_user.id, v_slug, v_membership.status);
  end if;
  insert into roster.organization_memberships
    (tenant_id, organization_id, user_id, role, status, invited_by_user_id)
  values (p_invitation.tenant_id, p_invitation.organization_id, p_user.id, p_invitation.role,
          'active', p_invitation.invited_by_user_id)
  returning * into v_membership;
  return v_membership;
end
$$;
comment on function roster._accept(roster.invitations, roster.users) is
  'Internal: accepts an invitation for a user: activates their invited membership or creates an active one; RISMB when they are a member already.';

-- ============================================================================================
-- Public functions: who invites
-- ============================================================================================

create function roster.invite(
  p_actor_id uuid,
  p_org_id uuid,
  p_email text,
  p_role text default 'member',
  p_expires_in interval default null
) returns roster.issued_invitation
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'invitations:manage');
begin
  return roster._invite(v_access, p_org_id, p_email, p_role, p_expires_in);
end
$$;
comment on function roster.invite(uuid, uuid, text, text, interval) is
  'Invites an email address (stored lowercase) to the organization with a role; returns the invitation with its plain token, which appears nowhere else (send it to the invitee: Roster sends no email). Expires after p_expires_in (1 hour to 90 days) or the tenant''s invitation_lifetime (7 days unless set). Needs invitations:manage, and may give the role (as add_member: members:manage_owners for owner, every permission the role grants). Errors: RNFND, RDNID, RESCL, RINVL, RISMB (a live member has that address), 23505 uq_invitations_pending_email (already invited), RSEAT.';

/* Up to 100 invitations; each item stands alone: valid ones are made even when others are
   refused. Errors that are no item's fault (a serialization failure, a timeout) still fail the
   whole call. */
create function roster.invite_many(p_actor_id uuid, p_org_id uuid, p_invites jsonb)
  returns table (
    item_index integer, item_email text, result text, error_sqlstate text, error_constraint text,
    error_message text, id uuid, organization_id uuid, organization_name text, organization_slug text, email text,
    role text, status text, invited_by_user_id uuid, invited_by_email text, user_id uuid,
    membership_id uuid, expires_at timestamptz, sent_at timestamptz, accepted_at timestamptz,
    accepted_by_user_id uuid, declined_at timestamptz, revoked_at timestamptz,
    created_at timestamptz, updated_at timestamptz, token text
  )
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'invitations:manage');
  v_item jsonb;
  v_index bigint;
  v_issued roster.issued_invitation;
  v_state text;
  v_message text;
  v_constraint text;
begin
  if jsonb_typeof(p_invites) is distinct from 'array' then
    raise exception using errcode = 'RINVL',
      message = format('invitations must be a JSON array of {"email", "role"}, got %s', coalesce(jsonb_typeof(p_invites), 'null'));
  end if;
  if jsonb_array_length(p_invites) not between 1 and 100 then
    raise exception using errcode = 'RINVL',
      message = format('invitations must hold 1 to 100 items, got %s', jsonb_array_length(p_invites));
  end if;
  for v_item, v_index in select a.value, a.n - 1 from jsonb_array_elements(p_invites) with ordinality a(value, n) loop
    item_index := v_index;
    item_email := case when jsonb_typeof(v_item -> 'email') = 'string' then v_item ->> 'email' end;
    begin
      if jsonb_typeof(v_item) <> 'object' or jsonb_typeof(v_item -> 'email') is distinct from 'string'
         or coalesce(jsonb_typeof(v_item -> 'role'), 'null') not in ('string', 'null')
         or exists (select from jsonb_object_keys(v_item) k where k not in ('email', 'role')) then
        raise exception using errcode = 'RINVL',
          message = format('invitations[%s] must be {"email": string, "role": string}, got %s', v_index, v_item);
      end if;
      v_issued := roster._invite(v_access, p_org_id, v_item ->> 'email', v_item ->> 'role', null);
      result := 'invited';
      error_sqlstate := null;
      error_constraint := null;
      error_message := null;
      select (v_issued).* into id, organization_id, organization_name, organization_slug, email, role,
             status, invited_by_user_id, invited_by_email, user_id, membership_id, expires_at,
             sent_at, accepted_at, accepted_by_user_id, declined_at, revoked_at, created_at,
             updated_at, token;
    exception
      when sqlstate 'RISMB' or sqlstate 'RINVL' or sqlstate 'RDNID' or sqlstate 'RESCL'
        or sqlstate 'RSEAT' or unique_violation or check_violation or not_null_violation
        or string_data_right_truncation then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
          v_constraint = constraint_name;
        result := case
          when v_state = 'RISMB' then 'already_member'
          when v_state = '23505' and v_constraint = 'uq_invitations_pending_email' then 'already_invited'
          else 'invalid' end;
        error_sqlstate := v_state;
        error_constraint := nullif(v_constraint, '');
        error_message := v_message;
        select (null::roster.issued_invitation).* into id, organization_id, organization_name,
               organization_slug, email, role, status, invited_by_user_id, invited_by_email,
               user_id, membership_id, expires_at, sent_at, accepted_at, accepted_by_user_id,
               declined_at, revoked_at, created_at, updated_at, token;
    end;
    return next;
  end loop;
end
$$;
comment on function roster.invite_many(uuid, uuid, jsonb) is
  'Invites up to 100 addresses: p_invites = [{"email": ..., "role": ...}] (role defaults to member). One row per item, in order: result invited (with the invitation and its token), already_member, already_invited or invalid (error_sqlstate, error_constraint and error_message say why: a bad address or role, privilege escalation, no seat left). Valid items are made even when others are refused. Needs invitations:manage (RNFND, RDNID for the whole call).';

create function roster.resend_invitation(
  p_actor_id uuid,
  p_org_id uuid,
  p_invitation_id uuid,
  p_expires_in interval default null
) returns roster.issued_invitation
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'invitations:manage');
  v_invitation roster.invitations;
  v_token text;
  v_expires timestamptz;
  v_linked boolean;
  v_constraint text;
begin
  v_invitation := roster._lock_invitation(v_access.tenant_id, p_org_id, p_invitation_id, v_access.org_slug);
  if v_invitation.status not in ('pending', 'expired') then
    raise exception using errcode = 'RNINV',
      message = format('invitation %s is %s: only a pending or expired invitation can be resent', v_invitation.id, v_invitation.status);
  end if;
  -- Resending is inviting again: the same checks of the role.
  perform roster._require_may_give_role(v_access, p_org_id, v_invitation.role);
  v_expires := roster._invitation_expiry(v_access.tenant_id, p_expires_in);
  -- An invited membership removed when the expiry was written is gone: the invitation is by
  -- email from now on.
  v_linked := exists (select from roster.organization_memberships m
                       where m.tenant_id = v_invitation.tenant_id and m.id = v_invitation.membership_id
                         and m.status = 'invited' and m.deleted_at is null);
  if not v_linked and exists (
    select from roster.organization_memberships m
      join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id and u.deleted_at is null
     where m.tenant_id = v_invitation.tenant_id and m.organization_id = p_org_id
       and m.deleted_at is null and lower(u.email) = v_invitation.email) then
    raise exception using errcode = 'RISMB',
      message = format('%s is already a member of organization %s', v_invitation.email, v_access.org_slug);
  end if;
  v_token := roster._new_token();
  update roster.invitations i set
    status = 'pending',
    token_hash = roster._token_hash(v_token),
    expires_at = v_expires,
    sent_at = now(),
    membership_id = case when v_linked then i.membership_id end,
    user_id = case when v_linked then i.user_id end
   where i.tenant_id = v_invitation.tenant_id and i.id = v_invitation.id
  returning i.* into v_invitation;
  return roster._issued(v_invitation, v_token);
exception when unique_violation then
  get stacked diagnostics v_constraint = constraint_name;
  raise exception using errcode = '23505', constraint = v_constraint,
    message = format('another invitation to %s is pending in organization %s: resend that one', v_invitation.email, v_access.org_slug);
end
$$;
comment on function roster.resend_invitation(uuid, uuid, uuid, interval) is
  'Issues a new token for a pending or expired invitation (the old token stops working) and renews its expiry (p_expires_in, or the tenant''s lifetime); returns it with the new token. Needs invitations:manage and may give its role. Errors: RIVNF, RNINV (accepted, declined or revoked), RISMB, 23505 uq_invitations_pending_email, RSEAT.';

create function roster.revoke_invitation(p_actor_id uuid, p_org_id uuid, p_invitation_id uuid)
  returns roster.invitation_row
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'invitations:manage');
  v_invitation roster.invitations;
begin
  v_invitation := roster._lock_invitation(v_access.tenant_id, p_org_id, p_invitation_id, v_access.org_slug);
  if v_invitation.status not in ('pending', 'expired') then
    raise exception using errcode = 'RNINV',
      message = format('invitation %s is %s: only a pending or expired invitation can be revoked', v_invitation.id, v_invitation.status);
  end if;
  -- As removing an owner (remove_member) does.
  if v_invitation.role = 'owner' then
    perform roster._deny_unless(v_access, 'members:manage_owners');
  end if;
  update roster.invitations i set status = 'revoked'
   where i.tenant_id = v_invitation.tenant_id and i.id = v_invitation.id
  returning i.* into v_invitation;
  return roster._invitation_row(v_invitation);
end
$$;
comment on function roster.revoke_invitation(uuid, uuid, uuid) is
  'Revokes a pending or expired invitation: its token stops working, and an invited membership it belongs to is removed. Needs invitations:manage (and members:manage_owners for an owner invitation). Errors: RIVNF, RNINV.';

create function roster.list_invitations(
  p_actor_id uuid,
  p_org_id uuid,
  p_status text default 'pending',
  p_limit integer default 50,
  p_offset integer default 0
)
  returns setof roster.invitation_row
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'invitations:manage');
begin
  perform roster._check_page(p_limit, p_offset);
  if p_status is not null and p_status not in ('pending', 'accepted', 'declined', 'revoked', 'expired') then
    raise exception using errcode = 'RINVL',
      message = format('unknown invitation status %L: expected pending, accepted, declined, revoked, expired, or null for all', p_status);
  end if;
  return query
  select r.* from roster.invitations i
   cross join lateral roster._invitation_row(i) r
   where i.tenant_id = v_access.tenant_id and i.organization_id = p_org_id
     and (p_status is null or r.status = p_status)
   order by i.created_at desc, i.id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_invitations(uuid, uuid, text, integer, integer) is
  'The organization''s invitations, newest first: those of p_status (pending by default; a pending one past its expiry is expired), or all with p_status null. Invited memberships (add_member) are among them. Never the tokens. Needs invitations:manage. p_limit 1..1000.';

-- ============================================================================================
-- Public functions: the invitee
-- ============================================================================================

create function roster.accept_invitation_token(p_user_id uuid, p_token text)
  returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_user roster.users := roster._actor(p_user_id);
  v_invitation roster.invitations := roster._invitation_by_token(v_user.tenant_id, p_token);
begin
  perform roster._require_token_for(v_invitation, v_user);
  return roster._accept(v_invitation, v_user);
end
$$;
comment on function roster.accept_invitation_token(uuid, text) is
  'The user accepts the invitation of a token sent to their address (compared case-insensitively): they become an active member with its role, at once; returns the membership. Errors: RNACT, RIVNF (unknown, used, declined or revoked token), RIEML (403: sent to another address), RIEXP (409: expired), RISMB, RSEAT.';

create function roster.decline_invitation_token(p_user_id uuid, p_token text)
  returns roster.invitation_row
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_user roster.users := roster._actor(p_user_id);
  v_invitation roster.invitations := roster._invitation_by_token(v_user.tenant_id, p_token);
begin
  perform roster._require_token_for(v_invitation, v_user);
  update roster.invitations i set status = 'declined', user_id = v_user.id
   where i.tenant_id = v_invitation.tenant_id and i.id = v_invitation.id
  returning i.* into v_invitation;
  return roster._invitation_row(v_invitation);
end
$$;
comment on function roster.decline_invitation_token(uuid, text) is
  'The user declines the invitation of a token sent to their address; returns the invitation. An invited membership it belongs to is removed. Errors: RNACT, RIVNF, RIEML, RIEXP.';

create function roster.list_my_invitations(
  p_user_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns setof roster.invitation_row
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_user roster.users := roster._actor(p_user_id);
begin
  perform roster._check_page(p_limit, p_offset);
  return query
  select r.* from roster.invitations i
    join roster.organizations o
      on o.tenant_id = i.tenant_id and o.id = i.organization_id and o.deleted_at is null
   cross join lateral roster._invitation_row(i) r
   where i.tenant_id = v_user.tenant_id and i.status = 'pending' and i.expires_at > now()
     and (i.email = lower(v_user.email) or i.user_id = v_user.id)
   order by i.created_at desc, i.id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_my_invitations(uuid, integer, integer) is
  'The user''s pending invitations, newest first: those sent to their address and those of their invited memberships (add_member). Never the tokens. p_limit 1..1000.';

/* v1's door, now the same acceptance as a token's: the actor's invited membership, or else the
   invitation pending for the actor's address in that organization. */
create or replace function roster.accept_invitation(p_actor_id uuid, p_org_id uuid)
  returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
  v_membership roster.organization_memberships;
  v_invitation roster.invitations;
begin
  select m.* into v_membership
    from roster.organization_memberships m
    join roster.organizations o
      on o.tenant_id = m.tenant_id and o.id = m.organization_id and o.deleted_at is null
   where m.tenant_id = v_actor.tenant_id and m.organization_id = p_org_id
     and m.user_id = v_actor.id and m.deleted_at is null
     for update of m;
  if found then
    if v_membership.status <> 'invited' then
      raise exception using errcode = 'RNINV',
        message = format('there is no pending invitation to organization %s: the membership is %s', p_org_id, v_membership.status);
    end if;
    select i.* into v_invitation from roster.invitations i
     where i.tenant_id = v_membership.tenant_id and i.membership_id = v_membership.id
       and i.status = 'pending'
       for update;
  else
    select i.* into v_invitation
      from roster.invitations i
      join roster.organizations o
        on o.tenant_id = i.tenant_id and o.id = i.organization_id and o.deleted_at is null
     where i.tenant_id = v_actor.tenant_id and i.organization_id = p_org_id
       and i.email = lower(v_actor.email) and i.status in ('pending', 'expired')
     order by i.created_at desc
     limit 1
       for update of i;
    if not found then
      raise exception using errcode = 'RNFND',
        message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
    end if;
  end if;
  if v_invitation.id is not null and roster._invitation_status(v_invitation.status, v_invitation.expires_at) = 'expired' then
    raise exception using errcode = 'RIEXP',
      message = format('the invitation to organization %s expired at %s: ask for it to be resent', p_org_id, v_invitation.expires_at);
  end if;
  if v_invitation.id is null then
    -- An invited membership without an invitation (none exist since V27): accept it as v1 did.
    update roster.organization_memberships m set status = 'active'
     where m.tenant_id = v_membership.tenant_id and m.id = v_membership.id
    returning m.* into v_membership;
    return v_membership;
  end if;
  return roster._accept(v_invitation, v_actor);
end
$$;
comment on function roster.accept_invitation(uuid, uuid) is
  'The actor accepts its own pending invitation to the organization: its invited membership (add_member), or an invitation sent to its address (invite); the membership becomes active. Errors: RNFND (no invitation there), RNINV (a member already), RIEXP (expired), RSEAT.';

-- ============================================================================================
-- Public functions: provisioning
-- ============================================================================================

/* For the identity service that has just signed the person up: in one transaction, the
   tenant's user of the invitation's address (found, or created) accepts it. */
create function roster.accept_invitation_as_new_user(p_token text, p_display_name text default null)
  returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_invitation roster.invitations := roster._invitation_by_token(null, p_token);
  v_user roster.users;
  v_user_id uuid;
begin
  if roster._invitation_status(v_invitation.status, v_invitation.expires_at) = 'expired' then
    raise exception using errcode = 'RIEXP',
      message = format('this invitation expired at %s: ask for it to be resent', v_invitation.expires_at);
  end if;
  select u.id into v_user_id from roster.users u
   where u.tenant_id = v_invitation.tenant_id and lower(u.email) = v_invitation.email
     and u.deleted_at is null;
  if v_user_id is null then
    v_user_id := roster.create_user(v_invitation.tenant_id, v_invitation.email, p_display_name);
  end if;
  -- The person accepting is the actor of what follows, in the trail too.
  v_user := roster._actor(v_user_id);
  return roster._accept(v_invitation, v_user);
end
$$;
comment on function roster.accept_invitation_as_new_user(text, text) is
  'For identity services (provisioning role): finds or creates the tenant''s user with the invitation''s email (p_display_name for a new one) and accepts the invitation for them, in one transaction; returns the membership. Errors: RIVNF, RIEXP, RISMB, RSEAT, 23514 ck_users_display_name_length.';

create function roster.set_invitation_lifetime(p_tenant_id uuid, p_lifetime interval, p_actor_id uuid default null)
  returns interval
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_tenant uuid := roster._require_tenant_manager(p_tenant_id, p_actor_id);
begin
  if p_lifetime is null or p_lifetime not between interval '1 hour' and interval '90 days' then
    raise exception using errcode = 'RINVL',
      message = format('an invitation lifetime must be 1 hour to 90 days, not %s', coalesce(p_lifetime::text, 'null'));
  end if;
  update roster.tenants t set invitation_lifetime = p_lifetime where t.id = v_tenant;
  return p_lifetime;
end
$$;
comment on function roster.set_invitation_lifetime(uuid, interval, uuid) is
  'Sets how long the tenant''s invitations last unless their inviter says otherwise (1 hour to 90 days; 7 days until set). Invitations made earlier keep their expiry. p_actor_id, when given, must be a tenant admin (p_tenant_id null: the actor''s tenant). Errors: RTNNF, RNACT, RDNID, RINVL.';

/* For a periodic job (pg_cron, the identity service): writes the expiry of every pending
   invitation past it, which also removes the invited memberships they belong to. Reads never
   need it: they see those invitations as expired already. */
create function roster.expire_invitations(p_tenant_id uuid default null) returns bigint
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_count bigint;
begin
  update roster.invitations i set status = 'expired'
   where i.status = 'pending' and i.expires_at <= now()
     and (p_tenant_id is null or i.tenant_id = p_tenant_id);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function roster.expire_invitations(uuid) is
  'Writes the expiry of the pending invitations past their expires_at (of one tenant, or all): they become expired and their invited memberships are removed. Returns how many. For a periodic job; provisioning role.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.invite(uuid, uuid, text, text, interval),
  roster.invite_many(uuid, uuid, jsonb),
  roster.resend_invitation(uuid, uuid, uuid, interval),
  roster.revoke_invitation(uuid, uuid, uuid),
  roster.list_invitations(uuid, uuid, text, integer, integer),
  roster.accept_invitation_token(uuid, text),
  roster.decline_invitation_token(uuid, text),
  roster.list_my_invitations(uuid, integer, integer)
to roster_app;
grant execute on function
  roster.accept_invitation_as_new_user(text, text),
  roster.expire_invitations(uuid)
to roster_provisioner;
grant execute on function roster.set_invitation_lifetime(uuid, interval, uuid) to roster_app, roster_provisioner;
