-- Memberships: who belongs to which organization, with which role and status, and the
-- invariants on them that hold whoever writes (functions, psql, other services):
--   * one live membership per (tenant, organization, user);
--   * a membership never joins a user and an organization of different tenants (composite
--     foreign keys; this replaces the seed spec's ck_orgmembers_tenant_consistency);
--   * a live organization always has at least one active owner (the last-owner guard).

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.organization_memberships (
  tenant_id          uuid        not null,
  id                 uuid        not null default gen_random_uuid(),
  organization_id    uuid        not null,
  user_id            uuid        not null,
  role               text        not null default 'member',
  status             text        not null default 'active', -- invited -> active <-> suspended
  invited_by_user_id uuid,        -- who added or invited the user; null once that user is hard-deleted
  joined_at          timestamptz, -- when the membership first became active; null while invited
  last_active_at     timestamptz, -- reported by services that track activity; Roster never guesses it
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  deleted_at         timestamptz, -- soft delete: removed or left
  constraint pk_organization_memberships primary key (tenant_id, id),
  constraint fk_organization_memberships_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade,
  constraint fk_organization_memberships_user foreign key (tenant_id, user_id)
    references roster.users (tenant_id, id) on delete cascade,
  constraint fk_organization_memberships_invited_by foreign key (tenant_id, invited_by_user_id)
    references roster.users (tenant_id, id) on delete set null (invited_by_user_id),
  constraint ck_organization_memberships_role check (role in ('owner', 'admin', 'member')),
  constraint ck_organization_memberships_status check (status in ('invited', 'active', 'suspended')),
  constraint ck_organization_memberships_joined_at check (status = 'invited' or joined_at is not null)
);
comment on table roster.organization_memberships is
  'Who belongs to which organization. Write through roster.add_member / update_member / remove_member / accept_invitation.';

create unique index uq_organization_memberships_tenant_org_user
  on roster.organization_memberships (tenant_id, organization_id, user_id)
  where deleted_at is null;
-- A user's organizations (list_user_organizations, user deletion).
create index ix_organization_memberships_tenant_user
  on roster.organization_memberships (tenant_id, user_id)
  where deleted_at is null;

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* joined_at is set the first time a membership is active, whoever activates it. */
create function roster.tg_organization_memberships__touch() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  if new.status <> 'invited' and new.joined_at is null then
    new.joined_at := now();
  end if;
  return new;
end
$$;
comment on function roster.tg_organization_memberships__touch() is
  'Trigger: keeps updated_at current and sets joined_at when a membership first leaves the invited status.';

create trigger tg_organization_memberships__touch
  before insert or update on roster.organization_memberships
  for each row execute function roster.tg_organization_memberships__touch();

/* Every membership change bumps the authz_version of its organization and of its user. Besides
   telling caches that authorization there changed, the organization row update serializes
   concurrent membership changes of one organization: under READ COMMITTED the second writer
   waits and then sees the first one's commit; under REPEATABLE READ or SERIALIZABLE it fails
   with a serialization error (40001) instead of acting on a stale snapshot. The last-owner guard
   relies on this. */
create function roster.tg_organization_memberships__bump_authz_version() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    update roster.organizations o set authz_version = o.authz_version + 1
     where o.tenant_id = old.tenant_id and o.id = old.organization_id;
    update roster.users u set authz_version = u.authz_version + 1
     where u.tenant_id = old.tenant_id and u.id = old.user_id;
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.organization_id <> old.organization_id) then
    update roster.organizations o set authz_version = o.authz_version + 1
     where o.tenant_id = new.tenant_id and o.id = new.organization_id;
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.user_id <> old.user_id) then
    update roster.users u set authz_version = u.authz_version + 1
     where u.tenant_id = new.tenant_id and u.id = new.user_id;
  end if;
  return null;
end
$$;
comment on function roster.tg_organization_memberships__bump_authz_version() is
  'Trigger: bumps organizations.authz_version and users.authz_version for every membership change (cache keys and write serialization point).';

-- Only columns that decide access or what readers see: activity reports (last_active_at) must
-- not churn caches nor contend on the organization row.
create trigger tg_organization_memberships__bump_authz_version
  after insert or delete
     or update of organization_id, user_id, role, status, deleted_at, invited_by_user_id
  on roster.organization_memberships
  for each row execute function roster.tg_organization_memberships__bump_authz_version();

/* The last-owner guard's check, shared by the membership and the organization triggers (which
   are security definer: a deferred trigger runs at commit as the session's role, e.g.
   roster_app, which may not call internal helpers). It
   locks the organization row before counting, so that two transactions removing different
   owners of one organization cannot both see the other's owner still there (write skew): the
   second waits for the first to commit and then counts afresh. */
create function roster._assert_has_owner(p_tenant_id uuid, p_org_id uuid) returns void
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
  ) then
    raise exception using errcode = 'RLOWN',
      message = format('organization %s must keep at least one active owner', v_slug),
      hint = 'Make another member an owner first, or delete the organization.';
  end if;
end
$$;
comment on function roster._assert_has_owner(uuid, uuid) is
  'Internal: raises RLOWN unless the live organization has an active owner; locks the organization row first.';

create function roster.tg_organization_memberships__keep_an_owner() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- Only reached when an active owner changed (see the trigger's when clause).
  if tg_op = 'UPDATE' and new.role = 'owner' and new.status = 'active' and new.deleted_at is null
     and new.organization_id = old.organization_id and new.user_id = old.user_id then
    return null;
  end if;
  perform roster._assert_has_owner(old.tenant_id, old.organization_id);
  return null;
end
$$;
comment on function roster.tg_organization_memberships__keep_an_owner() is
  'Trigger: the last-owner guard for demoting, suspending, removing or deleting an active owner.';

-- A constraint trigger, so that a DBA swapping owners in one transaction can defer it with
-- `set constraints roster.tg_organization_memberships__keep_an_owner deferred`.
create constraint trigger tg_organization_memberships__keep_an_owner
  after update or delete on roster.organization_memberships
  deferrable initially immediate
  for each row
  when (old.role = 'owner' and old.status = 'active' and old.deleted_at is null)
  execute function roster.tg_organization_memberships__keep_an_owner();

/* Row triggers do not fire on TRUNCATE: emptying the memberships would leave every live
   organization without an owner, so it is refused while any exists. */
create function roster.tg_organization_memberships__refuse_truncate() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_slug text;
begin
  select o.slug into v_slug from roster.organizations o where o.deleted_at is null limit 1;
  if found then
    raise exception using errcode = 'RLOWN',
      message = format('truncating memberships would leave organization %s (and any other live one) without an active owner', v_slug);
  end if;
  return null;
end
$$;
comment on function roster.tg_organization_memberships__refuse_truncate() is
  'Trigger: the last-owner guard for TRUNCATE of memberships.';

create trigger tg_organization_memberships__refuse_truncate
  before truncate on roster.organization_memberships
  for each statement execute function roster.tg_organization_memberships__refuse_truncate();

create function roster.tg_organizations__require_owner() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform roster._assert_has_owner(new.tenant_id, new.id);
  return null;
end
$$;
comment on function roster.tg_organizations__require_owner() is
  'Trigger: a new or restored organization must have an active owner by the end of its transaction.';

-- Deferred to commit: create_organization inserts the organization before its owner.
create constraint trigger tg_organizations__require_owner
  after insert or update of deleted_at on roster.organizations
  deferrable initially deferred
  for each row
  when (new.deleted_at is null)
  execute function roster.tg_organizations__require_owner();

/* A deleted user's memberships end with it, through the same guard: deleting the last owner of
   an organization fails with RLOWN. */
create function roster.tg_users__end_memberships() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  update roster.organization_memberships m set deleted_at = now()
   where m.tenant_id = new.tenant_id and m.user_id = new.id and m.deleted_at is null;
  return null;
end
$$;
comment on function roster.tg_users__end_memberships() is
  'Trigger: soft-deleting a user soft-deletes their memberships (subject to the last-owner guard).';

create trigger tg_users__end_memberships
  after update of deleted_at on roster.users
  for each row
  when (old.deleted_at is null and new.deleted_at is not null)
  execute function roster.tg_users__end_memberships();

revoke execute on all functions in schema roster from public;
