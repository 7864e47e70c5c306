-- Invitations by email: people are invited by address, usually before they have a user. An
-- invitation is a row of roster.invitations; its token (32 random bytes, URL-safe) is given
-- once to whoever invites, for the product's mailer, and stored only as its SHA-256 hash.
--
-- One concept. Contract v1 invites an existing user with a membership of status `invited`
-- (add_member); that membership now always has its invitation row here, linked by
-- membership_id, created by a trigger whoever writes. Both sides are kept in step by triggers
-- whichever side changes, so the two doors end in the same states:
--   * accepted: the membership is active and the invitation `accepted` (accept_invitation,
--     accept_invitation_token, an invited membership activated by raw SQL, or a user added
--     outright while an invitation to their address is pending);
--   * declined: no live membership, invitation `declined` (decline_invitation_token, or the
--     invited user leaving: remove_member on oneself);
--   * revoked: no live membership, invitation `revoked` (revoke_invitation, or anyone else
--     removing the invited membership);
--   * expired: past expires_at. Expiry is a time, so it needs no job: every function reads an
--     invitation past its expires_at as `expired`, and writes that status when it next acts on
--     it (a new invitation to that address, a resend, roster.expire_invitations); an invited
--     membership whose invitation has expired cannot be accepted and takes no seat, and is
--     removed once the expiry is written.
--
-- Rules held by the database: at most one pending invitation per (organization, email), and
-- none to the address of a live member of the organization; email
-- stored lowercase; accepted, declined and revoked are final (an expired invitation may only
-- be renewed or revoked); the role of a pending invitation is a role available to its
-- organization and cannot be deleted from under it. Every change bumps its organization's
-- authz_version (one row update), which announces it on roster_changes (V10) without the
-- token; and every change is audited (invitation.created|resent|accepted|declined|revoked|
-- expired|updated|purged). The tenant's default lifetime is tenants.invitation_lifetime.

-- ============================================================================================
-- Tables
-- ============================================================================================
alter table roster.tenants add column invitation_lifetime interval not null default interval '7 days';
alter table roster.tenants add constraint ck_tenants_invitation_lifetime
  check (invitation_lifetime between interval '1 hour' and interval '90 days');
comment on column roster.tenants.invitation_lifetime is
  'How long an invitation is valid unless its inviter says otherwise: 1 hour to 90 days, 7 days by default. Set with roster.set_invitation_lifetime.';

create table roster.invitations (
  tenant_id           uuid        not null,
  id                  uuid        not null default gen_random_uuid(),
  organization_id     uuid        not null,
  email               text        not null, -- lowercase (the trigger normalizes it)
  role                text        not null default 'member', -- the role the invitee gets
  status              text        not null default 'pending',
  token_hash          bytea,       -- SHA-256 of the token; null for add_member's invitations until resent
  expires_at          timestamptz not null,
  invited_by_user_id  uuid,        -- null once that user is hard-deleted
  user_id             uuid,        -- the invitee's user, once known: add_member's invitee, or who accepted
  -- The invited membership (add_member), or the membership accepting made. No foreign key: one
  -- would make TRUNCATE of memberships fail before the last-owner guard's trigger answers (V5);
  -- the trigger tg_invitations__check_membership holds it instead, tenant included.
  membership_id       uuid,
  sent_at             timestamptz not null default now(), -- when the current token was issued
  accepted_at         timestamptz,
  accepted_by_user_id uuid,
  declined_at         timestamptz,
  revoked_at          timestamptz,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  constraint pk_invitations primary key (tenant_id, id),
  constraint fk_invitations_tenant foreign key (tenant_id) references roster.tenants (id),
  constraint fk_invitations_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade,
  constraint fk_invitations_invited_by foreign key (tenant_id, invited_by_user_id)
    references roster.users (tenant_id, id) on delete set null (invited_by_user_id),
  constraint fk_invitations_user foreign key (tenant_id, user_id)
    references roster.users (tenant_id, id) on delete set null (user_id),
  constraint fk_invitations_accepted_by foreign key (tenant_id, accepted_by_user_id)
    references roster.users (tenant_id, id) on delete set null (accepted_by_user_id),
  constraint ck_invitations_status
    check (status in ('pending', 'accepted', 'declined', 'revoked', 'expired')),
  constraint ck_invitations_email_format
    check (email = lower(email) and length(email) <= 320
           and email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
  constraint ck_invitations_token_hash check (octet_length(token_hash) = 32),
  constraint ck_invitations_accepted check ((status = 'accepted') = (accepted_at is not null)),
  constraint ck_invitations_declined check ((status = 'declined') = (declined_at is not null)),
  constraint ck_invitations_revoked check ((status = 'revoked') = (revoked_at is not null))
);
comment on table roster.invitations is
  'Invitations to organizations by email, and the invitation of every invited membership. Write through roster.invite / resend_invitation / revoke_invitation / accept_invitation_token / decline_invitation_token.';

-- At most one pending invitation per address and organization: two concurrent invitations of
-- one address cannot both be made.
create unique index uq_invitations_pending_email on roster.invitations (tenant_id, organization_id, email)
  where status = 'pending';
-- Tokens arrive alone (accept_invitation_as_new_user does not know the tenant). Not unique:
-- see ix_users_id; a hash of 32 random bytes does not collide.
create index ix_invitations_token_hash on roster.invitations (token_hash) where token_hash is not null;
-- An organization's list, newest first.
create index ix_invitations_organization on roster.invitations (tenant_id, organization_id, created_at desc, id);
-- A user's pending invitations, by address.
create index ix_invitations_pending_by_email on roster.invitations (tenant_id, email) where status = 'pending';
-- The invitation of an invited membership.
create index ix_invitations_membership on roster.invitations (tenant_id, membership_id)
  where membership_id is not null;

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* What an invitation is now: a pending one past its expiry is expired, written or not. */
create function roster._invitation_status(p_status text, p_expires_at timestamptz) returns text
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select case when p_status = 'pending' and p_expires_at <= now() then 'expired' else p_status end
$$;
comment on function roster._invitation_status(text, timestamptz) is
  'Internal: an invitation''s status as of now (a pending one past expires_at is expired).';

/* 32 random bytes, URL-safe base64 without padding (43 characters). gen_random_uuid() draws
   from pg_strong_random; a version 4 uuid has 122 random bits, in bytes 1-6, 8 and 10-16 whole
   (14 bytes): three of them give 42 random bytes, of which the first 32 are kept. No
   extension needed. */
create function roster._new_token() returns text
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_bytes bytea := '';
  v_uuid bytea;
begin
  for i in 1..3 loop
    v_uuid := uuid_send(gen_random_uuid());
    v_bytes := v_bytes || substr(v_uuid, 1, 6) || substr(v_uuid, 8, 1) || substr(v_uuid, 10, 7);
  end loop;
  return rtrim(translate(encode(substr(v_bytes, 1, 32), 'base64'), '+/', '-_'), '=');
end
$$;
comment on function roster._new_token() is
  'Internal: a new secret token, 32 random bytes as URL-safe base64 (43 characters).';

/* Tokens are only ever compared by their hash. */
create function roster._token_hash(p_token text) returns bytea
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select sha256(convert_to(p_token, 'UTF8'))
$$;
comment on function roster._token_hash(text) is 'Internal: the SHA-256 of a token, as stored.';

/* An address as stored: lowercase; RINVL when it is no email address. */
create function roster._normalize_email(p_email text) returns text
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_email text := lower(p_email);
begin
  if v_email is null or length(v_email) > 320
     or v_email !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' then
    raise exception using errcode = 'RINVL',
      message = format('email %s is not a valid email address', coalesce(quote_literal(p_email), 'null'));
  end if;
  return v_email;
end
$$;
comment on function roster._normalize_email(text) is
  'Internal: the email address lowercased, or RINVL when it is not one.';

/* A pending invitation past its expiry becomes expired when something acts on that address
   again, which frees the address for a new invitation (the unique index counts stored
   statuses). */
create function roster._expire_stale_invitations(p_tenant_id uuid, p_org_id uuid, p_email text) returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  update roster.invitations i set status = 'expired'
   where i.tenant_id = p_tenant_id and i.organization_id = p_org_id and i.email = p_email
     and i.status = 'pending' and i.expires_at <= now();
end
$$;
comment on function roster._expire_stale_invitations(uuid, uuid, text) is
  'Internal: writes the expiry of the pending invitations of one address past their expires_at.';

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* Addresses are stored lowercase; a status change stamps its time; accepted, declined and
   revoked are final, and an expired invitation may only be renewed (resend) or revoked. */
create function roster.tg_invitations__touch() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  new.email := lower(new.email);
  if tg_op = 'UPDATE' then
    new.updated_at := now();
    if new.status is distinct from old.status then
      if old.status in ('accepted', 'declined', 'revoked')
         or (old.status = 'expired' and new.status not in ('pending', 'revoked')) then
        raise exception using errcode = 'RNINV',
          message = format('invitation %s is %s: it cannot become %s', old.id, old.status, new.status);
      end if;
    end if;
  end if;
  if new.status = 'accepted' then
    new.accepted_at := coalesce(new.accepted_at, now());
  elsif new.status = 'declined' then
    new.declined_at := coalesce(new.declined_at, now());
  elsif new.status = 'revoked' then
    new.revoked_at := coalesce(new.revoked_at, now());
  end if;
  return new;
end
$$;
comment on function roster.tg_invitations__touch() is
  'Trigger: lowercases the email, stamps updated_at and the time of each status, refuses leaving a final status (RNINV).';

create trigger tg_invitations__touch before insert or update on roster.invitations
  for each row execute function roster.tg_invitations__touch();

/* The role of a pending invitation must be available to its organization, as a membership's
   must (V20), whoever writes. */
create function roster.tg_invitations__check_role() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.status = 'pending'
     and (roster._find_role(new.tenant_id, new.organization_id, new.role)).key is null then
    raise exception using errcode = 'RINVL', constraint = 'fk_invitations_role',
      message = format('unknown role %L: no such role in this organization or its tenant', new.role);
  end if;
  return null;
end
$$;
comment on function roster.tg_invitations__check_role() is
  'Trigger: a pending invitation''s role is a role available to its organization (RINVL otherwise).';

create constraint trigger tg_invitations__check_role
  after insert or update of role, organization_id, status on roster.invitations
  deferrable initially immediate
  for each row execute function roster.tg_invitations__check_role();

/* membership_id names a membership of the same tenant and organization, as a composite
   foreign key would say (see the column's comment). */
create function roster.tg_invitations__check_membership() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.membership_id is not null
     and not exists (select from roster.organization_memberships m
                      where m.tenant_id = new.tenant_id and m.id = new.membership_id
                        and m.organization_id = new.organization_id) then
    raise exception using errcode = '23503', constraint = 'fk_invitations_membership',
      message = format('membership %s is no membership of organization %s in this tenant', new.membership_id, new.organization_id);
  end if;
  return null;
end
$$;
comment on function roster.tg_invitations__check_membership() is
  'Trigger: an invitation''s membership_id names a membership of its tenant and organization (23503 otherwise).';

create constraint trigger tg_invitations__check_membership
  after insert or update of membership_id, organization_id on roster.invitations
  deferrable initially immediate
  for each row execute function roster.tg_invitations__check_membership();

/* A live member's address cannot be invited to its organization, whoever writes (the
   invitation of an invited membership is that member's own). Fires after the organization's
   version bump, which waits for a concurrent writer of the organization: a member added at
   the same time is seen. */
create function roster.tg_invitations__refuse_live_member() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_status text;
begin
  select m.status into v_status
    from roster.organization_memberships m
    join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id and u.deleted_at is null
   where m.tenant_id = new.tenant_id and m.organization_id = new.organization_id
     and m.deleted_at is null and lower(u.email) = new.email
     and m.id is distinct from new.membership_id
   limit 1;
  if found then
    raise exception using errcode = 'RISMB',
      message = format('%s is already a member of this organization (status %s)', new.email, v_status);
  end if;
  return null;
end
$$;
comment on function roster.tg_invitations__refuse_live_member() is
  'Trigger: RISMB for a pending invitation to the address of a live member of its organization.';

create constraint trigger tg_invitations__refuse_live_member
  after insert or update of email, status, organization_id, membership_id on roster.invitations
  deferrable initially immediate
  for each row
  when (new.status = 'pending')
  execute function roster.tg_invitations__refuse_live_member();

/* What an organization's readers see changes with its invitations (its list, and the seats it
   reports): one bump of the organization's version, which announces the change (V10) without
   the token. */
create function roster.tg_invitations__bump_organization() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    update roster.organizations o set authz_version = o.authz_version + 1
     where o.tenant_id = old.tenant_id and o.id = old.organization_id;
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.organization_id <> old.organization_id) then
    update roster.organizations o set authz_version = o.authz_version + 1
     where o.tenant_id = new.tenant_id and o.id = new.organization_id;
  end if;
  return null;
end
$$;
comment on function roster.tg_invitations__bump_organization() is
  'Trigger: an invitation change bumps its organization''s authz_version (and so announces it on roster_changes).';

create trigger tg_invitations__bump_organization after insert or update or delete on roster.invitations
  for each row execute function roster.tg_invitations__bump_organization();

/* The invitation's side of the one concept: an invitation of an invited membership that ends
   ends the membership's invitation too. Only a membership still invited is touched, so the
   membership trigger below, reacting in turn, finds nothing pending and stops. */
create function roster.tg_invitations__sync_membership() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.membership_id is null then
    return null;
  end if;
  if old.status = 'pending' and new.status = 'accepted' then
    update roster.organization_memberships m set status = 'active'
     where m.tenant_id = new.tenant_id and m.id = new.membership_id
       and m.status = 'invited' and m.deleted_at is null;
  elsif old.status in ('pending', 'expired') and new.status in ('declined', 'revoked', 'expired') then
    update roster.organization_memberships m set deleted_at = now()
     where m.tenant_id = new.tenant_id and m.id = new.membership_id
       and m.status = 'invited' and m.deleted_at is null;
  elsif new.status = 'pending' and new.role is distinct from old.role then
    update roster.organization_memberships m set role = new.role
     where m.tenant_id = new.tenant_id and m.id = new.membership_id
       and m.status = 'invited' and m.deleted_at is null and m.role <> new.role;
  end if;
  return null;
end
$$;
comment on function roster.tg_invitations__sync_membership() is
  'Trigger: an accepted invitation activates its invited membership; a declined, revoked or expired one removes it; a role change follows.';

create trigger tg_invitations__sync_membership after update of status, role on roster.invitations
  for each row execute function roster.tg_invitations__sync_membership();

/* The membership's side of the one concept, whoever writes:
     * an invited membership is created with its pending invitation (RISMB when the address
       has one pending already);
     * a membership that becomes live and not invited (added outright, accepted, restored)
       settles the invitation pending for it or for its user's address: accepted;
     * an invited membership removed ends its invitation: declined when the invitee removed
       it (leaving is declining, V9), revoked otherwise;
     * an invited membership's role change follows to its invitation. */
create function roster.tg_organization_memberships__invitation_sync() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_email text;
  v_lifetime interval;
  v_pending roster.invitations;
begin
  if tg_op = 'DELETE' then
    -- What a foreign key's `on delete set null` would do, and the purge of an invited
    -- membership revokes its invitation.
    update roster.invitations i
       set membership_id = null,
           status = case when old.status = 'invited' and old.deleted_at is null and i.status = 'pending'
                         then 'revoked' else i.status end
     where i.tenant_id = old.tenant_id and i.membership_id = old.id;
    return null;
  end if;

  select lower(u.email) into v_email from roster.users u
   where u.tenant_id = new.tenant_id and u.id = new.user_id;

  if new.deleted_at is not null then
    if tg_op = 'UPDATE' and old.deleted_at is null and old.status = 'invited' then
      update roster.invitations i
         set status = case when roster._audit_actor() = old.user_id then 'declined' else 'revoked' end
       where i.tenant_id = old.tenant_id and i.membership_id = old.id and i.status = 'pending';
    end if;
    return null;
  end if;

  if new.status = 'invited' then
    if tg_op = 'INSERT' or old.deleted_at is not null or old.status <> 'invited'
       or old.organization_id <> new.organization_id then
      perform roster._expire_stale_invitations(new.tenant_id, new.organization_id, v_email);
      select i.* into v_pending from roster.invitations i
       where i.tenant_id = new.tenant_id and i.organization_id = new.organization_id
         and i.email = v_email and i.status = 'pending';
      if found then
        raise exception using errcode = 'RISMB',
          message = format('an invitation to %s is already pending in this organization (invitation %s)', v_email, v_pending.id);
      end if;
      select t.invitation_lifetime into v_lifetime from roster.tenants t where t.id = new.tenant_id;
      insert into roster.invitations
        (tenant_id, organization_id, email, role, expires_at, invited_by_user_id, user_id, membership_id)
      values (new.tenant_id, new.organization_id, v_email, new.role, now() + v_lifetime,
              new.invited_by_user_id, new.user_id, new.id);
    elsif new.role <> old.role then
      update roster.invitations i set role = new.role
       where i.tenant_id = new.tenant_id and i.membership_id = new.id and i.status = 'pending'
         and i.role <> new.role;
    end if;
    return null;
  end if;

  -- Live and not invited: a member now. Newly so?
  if tg_op = 'INSERT' or old.deleted_at is not null or old.status = 'invited'
     or old.organization_id <> new.organization_id then
    update roster.invitations i
       set status = 'accepted', accepted_by_user_id = new.user_id, user_id = new.user_id,
           membership_id = new.id
     where i.tenant_id = new.tenant_id and i.organization_id = new.organization_id
       and i.status = 'pending'
       and (i.membership_id = new.id or (i.email = v_email and i.expires_at > now()));
  end if;
  return null;
end
$$;
comment on function roster.tg_organization_memberships__invitation_sync() is
  'Trigger: keeps invited memberships and their invitations one concept (creation, acceptance, decline or revocation, role), whoever writes.';

create trigger tg_organization_memberships__invitation_sync
  after insert or delete or update of status, deleted_at, role, organization_id
  on roster.organization_memberships
  for each row execute function roster.tg_organization_memberships__invitation_sync();

/* Every invitation event in the trail, whoever writes; the token's hash stays out of it. */
create function roster.tg_invitations__audit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_before jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) - 'token_hash' end;
  v_after jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) - 'token_hash' end;
  v_action text;
begin
  if tg_op = 'INSERT' then
    v_action := 'invitation.created';
  elsif tg_op = 'DELETE' then
    v_action := 'invitation.purged';
  elsif new.status is distinct from old.status and new.status <> 'pending' then
    v_action := 'invitation.' || new.status;
  elsif new.token_hash is distinct from old.token_hash or new.status is distinct from old.status then
    v_action := 'invitation.resent';
  elsif not roster._audited_change(v_before, v_after) then
    return null;
  else
    v_action := 'invitation.updated';
  end if;
  perform roster._record_audit_event(
    coalesce(new.tenant_id, old.tenant_id), v_action,
    coalesce(new.organization_id, old.organization_id),
    coalesce(new.user_id, old.user_id), v_before, v_after);
  return null;
end
$$;
comment on function roster.tg_invitations__audit() is
  'Trigger: records invitation changes in roster.audit_events (without the token hash).';

create trigger tg_invitations__audit after insert or update or delete on roster.invitations
  for each row execute function roster.tg_invitations__audit();

-- Invitation and domain (V30) events join the trail: every existing prefix is kept.
alter table roster.audit_events drop constraint ck_audit_events_action;
alter table roster.audit_events add constraint ck_audit_events_action
  check (action ~ '^(organization|membership|user|tenant|group|group_member|grant|invitation|domain)\.[a-z_]+$');

/* A role that pending invitations give cannot be deleted, as one that memberships hold (V20):
   revoke or accept them first. Invitations of a deleted organization do not count (its
   deletion cascades to both). */
create function roster.tg_roles__refuse_delete_held_by_invitations() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_held bigint;
begin
  select count(*) into v_held
    from roster.invitations i
   where i.tenant_id = old.tenant_id and i.role = old.key and i.status = 'pending'
     and (old.organization_id is null or i.organization_id = old.organization_id)
     and exists (select from roster.organizations o
                  where o.tenant_id = i.tenant_id and o.id = i.organization_id);
  if v_held > 0 then
    raise exception using errcode = 'RRLUS',
      message = format('role %s is the role of %s pending invitation(s): revoke them first', old.key, v_held);
  end if;
  return old;
end
$$;
comment on function roster.tg_roles__refuse_delete_held_by_invitations() is
  'Trigger: RRLUS when a deleted role is the role of pending invitations.';

create trigger tg_roles__refuse_delete_held_by_invitations before delete on roster.roles
  for each row when (not old.builtin)
  execute function roster.tg_roles__refuse_delete_held_by_invitations();

-- ============================================================================================
-- Data: the invitations of the invited memberships that exist already
-- ============================================================================================
insert into roster.invitations
  (tenant_id, organization_id, email, role, expires_at, invited_by_user_id, user_id, membership_id,
   sent_at, created_at)
select m.tenant_id, m.organization_id, lower(u.email), m.role, now() + t.invitation_lifetime,
       m.invited_by_user_id, m.user_id, m.id, m.created_at, m.created_at
  from roster.organization_memberships m
  join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id
  join roster.tenants t on t.id = m.tenant_id
 where m.status = 'invited' and m.deleted_at is null;

revoke execute on all functions in schema roster from public;
