-- Organization and user versions in narrow tables of their own (#13, "cheaper writes").
--
-- Until now a version bump was an UPDATE of the wide organizations or users row: every CHECK of
-- the row was re-read and re-evaluated (PostgreSQL prepares a table's CHECKs per statement, and
-- the organizations' are regular expressions), a new row version was written, and its row
-- triggers (touch, audit, log) ran. A membership change bumps both. Now each version is one row
-- of roster.organization_versions or roster.user_versions (tenant_id, id, version), whose only
-- trigger logs the change (roster.change_log, as before, so raw SQL on them is logged too).
--
-- Locks stay as they were: a version row is only changed while its organization's or user's row
-- is locked FOR NO KEY UPDATE (the lock the old bump's UPDATE took), by this transaction, first.
-- So concurrent changes of one organization still run one after the other on the organization's
-- row (the last-owner guard's and the seat limit's serialization), and no new lock order (row,
-- then version row; never the reverse) can deadlock with the paths that lock the row itself.
--
-- The versions carry on from the old columns, so entries cached before this migration stay
-- exactly as valid as they were. Tenants keep authz_version on their row: tenant writes are rare.

create table roster.organization_versions (
  tenant_id uuid not null,
  organization_id uuid not null,
  version bigint not null default 1,
  constraint pk_organization_versions primary key (tenant_id, organization_id),
  constraint fk_organization_versions_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade on update cascade
) with (fillfactor = 50); -- room on each page for the updates (HOT) that bumps are
comment on table roster.organization_versions is
  'The authorization version of each organization: bumped by every change that can alter an answer about it (sql/CACHE.md), logged in roster.change_log (V42).';

create table roster.user_versions (
  tenant_id uuid not null,
  user_id uuid not null,
  version bigint not null default 1,
  constraint pk_user_versions primary key (tenant_id, user_id),
  constraint fk_user_versions_user foreign key (tenant_id, user_id)
    references roster.users (tenant_id, id) on delete cascade on update cascade
) with (fillfactor = 50);
comment on table roster.user_versions is
  'The authorization version of each user: bumped by every change that can alter an answer about it (sql/CACHE.md), logged in roster.change_log (V42).';

insert into roster.organization_versions (tenant_id, organization_id, version)
select o.tenant_id, o.id, o.authz_version from roster.organizations o;
insert into roster.user_versions (tenant_id, user_id, version)
select u.tenant_id, u.id, u.authz_version from roster.users u;

-- ============================================================================================
-- The log: every change of a version row, whoever makes it
-- ============================================================================================

/* Its argument names the kind, 'organization' or 'user'. A deleted row (its organization or
   user was deleted) logs the highest version; a row moved to another key (an update of the
   organization's or user's id, cascaded) logs its old key as deleted. */
create function roster.tg__log_version_row() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_old_id uuid;
  v_new_id uuid;
begin
  if tg_argv[0] = 'organization' then
    if tg_op <> 'INSERT' then v_old_id := old.organization_id; end if;
    if tg_op <> 'DELETE' then v_new_id := new.organization_id; end if;
  else
    if tg_op <> 'INSERT' then v_old_id := old.user_id; end if;
    if tg_op <> 'DELETE' then v_new_id := new.user_id; end if;
  end if;
  if tg_op = 'DELETE' or (tg_op = 'UPDATE' and (old.tenant_id, v_old_id) <> (new.tenant_id, v_new_id)) then
    perform roster._log_change(tg_argv[0], old.tenant_id, v_old_id, 9223372036854775807);
  end if;
  if tg_op <> 'DELETE' then
    perform roster._log_change(tg_argv[0], new.tenant_id, v_new_id, new.version);
  end if;
  return null;
end
$$;
comment on function roster.tg__log_version_row() is
  'Trigger: logs a new version of an organization or user (roster.organization_versions, roster.user_versions) in roster.change_log.';

create trigger tg_organization_versions__log_change
  after insert or update or delete on roster.organization_versions
  for each row execute function roster.tg__log_version_row('organization');
create trigger tg_user_versions__log_change
  after insert or update or delete on roster.user_versions
  for each row execute function roster.tg__log_version_row('user');
create trigger tg_organization_versions__log_truncate after truncate on roster.organization_versions
  for each statement execute function roster.tg__log_everything_changed();
create trigger tg_user_versions__log_truncate after truncate on roster.user_versions
  for each statement execute function roster.tg__log_everything_changed();

-- ============================================================================================
-- Bumping
-- ============================================================================================

create or replace function roster._bump_organization(p_tenant_id uuid, p_org_id uuid) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- The organization's row first, as every other path locks it (see the head of V42).
  perform from roster.organizations o
   where o.tenant_id = p_tenant_id and o.id = p_org_id
     for no key update;
  update roster.organization_versions v set version = v.version + 1
   where v.tenant_id = p_tenant_id and v.organization_id = p_org_id;
end
$$;
comment on function roster._bump_organization(uuid, uuid) is
  'Internal: raises an organization''s authorization version (roster.organization_versions), its row locked first.';

create or replace function roster._bump_user(p_tenant_id uuid, p_user_id uuid) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- The user's row first, as every other path locks it (see the head of V42).
  perform from roster.users u
   where u.tenant_id = p_tenant_id and u.id = p_user_id
     for no key update;
  update roster.user_versions v set version = v.version + 1
   where v.tenant_id = p_tenant_id and v.user_id = p_user_id;
end
$$;
comment on function roster._bump_user(uuid, uuid) is
  'Internal: raises a user''s authorization version (roster.user_versions), its row locked first.';

/* On organizations and users: a new row gets its version row (version 1), and any edit of the
   row bumps it, as the in-row version did (V3, V4). Its argument names the kind. */
create function roster.tg__bump_own_version() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_argv[0] = 'organization' then
    if tg_op = 'INSERT' then
      insert into roster.organization_versions (tenant_id, organization_id) values (new.tenant_id, new.id);
    else
      perform roster._bump_organization(new.tenant_id, new.id);
    end if;
  elsif tg_op = 'INSERT' then
    insert into roster.user_versions (tenant_id, user_id) values (new.tenant_id, new.id);
  else
    perform roster._bump_user(new.tenant_id, new.id);
  end if;
  return null;
end
$$;
comment on function roster.tg__bump_own_version() is
  'Trigger: gives a new organization or user its version row, and bumps it on every edit of the row.';

drop trigger tg_organizations__log_change on roster.organizations;
drop trigger tg_users__log_change on roster.users;
create trigger tg_organizations__bump_version after insert or update on roster.organizations
  for each row execute function roster.tg__bump_own_version('organization');
create trigger tg_users__bump_version after insert or update on roster.users
  for each row execute function roster.tg__bump_own_version('user');

-- The touch triggers no longer bump an in-row version.
drop trigger tg_organizations__touch on roster.organizations;
drop trigger tg_users__touch on roster.users;
create trigger tg_organizations__touch before update on roster.organizations
  for each row execute function roster.tg__touch_updated_at();
create trigger tg_users__touch before update on roster.users
  for each row execute function roster.tg__touch_updated_at();

-- Tenants alone still carry their version in their row.
create or replace function roster.tg__log_version_change() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' then
    perform roster._log_change('tenant', old.id, old.id, 9223372036854775807);
  else
    perform roster._log_change('tenant', new.id, new.id, new.authz_version);
  end if;
  return null;
end
$$;
comment on function roster.tg__log_version_change() is
  'Trigger: logs a change of a tenant with its new authz_version (roster.change_log).';

-- ============================================================================================
-- The bumps of V5/V23, V10, V20, V27 and V30, through the helpers
-- ============================================================================================

create or replace function roster.tg_organization_memberships__bump_authz_version() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    perform roster._bump_organization(old.tenant_id, old.organization_id);
    perform roster._bump_user(old.tenant_id, old.user_id);
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.organization_id <> old.organization_id) then
    perform roster._bump_organization(new.tenant_id, new.organization_id);
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.user_id <> old.user_id) then
    perform roster._bump_user(new.tenant_id, new.user_id);
  end if;
  return null;
end
$$;

/* V27's and V30's functions for invitations and domains were the same, and are one now. */
create function roster.tg__bump_row_organization() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    perform roster._bump_organization(old.tenant_id, old.organization_id);
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.organization_id <> old.organization_id) then
    perform roster._bump_organization(new.tenant_id, new.organization_id);
  end if;
  return null;
end
$$;
comment on function roster.tg__bump_row_organization() is
  'Trigger: bumps the organization a changed row belongs to (both, when it moved): invitations, domains.';

drop trigger tg_invitations__bump_organization on roster.invitations;
create trigger tg_invitations__bump_organization after insert or update or delete on roster.invitations
  for each row execute function roster.tg__bump_row_organization();
drop trigger tg_organization_domains__bump_organization on roster.organization_domains;
create trigger tg_organization_domains__bump_organization
  after insert or update or delete on roster.organization_domains
  for each row execute function roster.tg__bump_row_organization();
drop function roster.tg_invitations__bump_organization();
drop function roster.tg_organization_domains__bump_organization();

create or replace function roster.tg_roles__bump_version() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.roles := case when tg_op = 'DELETE' then old else new end;
begin
  if v_row.organization_id is null then
    update roster.tenants t set authz_version = t.authz_version + 1 where t.id = v_row.tenant_id;
  else
    perform roster._bump_organization(v_row.tenant_id, v_row.organization_id);
  end if;
  return null;
end
$$;

-- The two fan-outs lock their rows in id order, so that two of them never wait on each other.
create or replace function roster.tg_users__bump_organizations() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform roster._bump_organization(new.tenant_id, o.organization_id)
     from (select distinct m.organization_id from roster.organization_memberships m
            where m.tenant_id = new.tenant_id and m.deleted_at is null
              and (m.user_id = new.id or m.invited_by_user_id = new.id)
            order by m.organization_id) o;
  return null;
end
$$;

create or replace function roster.tg_organizations__bump_members() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform roster._bump_user(new.tenant_id, m.user_id)
     from (select m.user_id from roster.organization_memberships m
            where m.tenant_id = new.tenant_id and m.organization_id = new.id
              and m.deleted_at is null
            order by m.user_id) m;
  return null;
end
$$;

-- ============================================================================================
-- The readers
-- ============================================================================================

create or replace function roster._access(p_user_id uuid, p_org_id uuid) returns roster.access
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v roster.access;
  v_rows bigint;
  v_member_expires timestamptz;
  v_grant record;
begin
  select u.tenant_id, u.is_tenant_admin, u.deleted_at is null and t.deleted_at is null,
         uv.version, t.authz_version, count(*) over ()
    into v.tenant_id, v.is_tenant_admin, v.user_live, v.user_version, v.tenant_version, v_rows
    from roster.users u
    join roster.tenants t on t.id = u.tenant_id
    left join roster.user_versions uv on uv.tenant_id = u.tenant_id and uv.user_id = u.id
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

  select ov.version, o.slug, o.deleted_at is null, m.role, m.status, m.expires_at
    into v.org_version, v.org_slug, v.org_live, v.role, v.status, v_member_expires
    from roster.organizations o
    left join roster.organization_versions ov on ov.tenant_id = o.tenant_id and ov.organization_id = o.id
    left join roster.organization_memberships m
      on m.tenant_id = o.tenant_id and m.organization_id = o.id and m.user_id = p_user_id
     and m.deleted_at is null
   where o.tenant_id = v.tenant_id and o.id = p_org_id;
  v.org_version := coalesce(v.org_version, 0);
  v.org_live := coalesce(v.org_live, false);
  if not v.org_live then
    v.role := null;
    v.status := null;
    v_member_expires := null;
  end if;
  v.expired := v_member_expires is not null and v_member_expires <= now();

  v.effective_role := case
    when not v.user_live or not v.org_live then null
    when v.is_tenant_admin then 'owner'
    when v.status = 'active' and not v.expired then v.role
  end;
  v.visible := v.effective_role is not null;
  v.grants := '{}';
  if v.visible then
    v.grants := roster._role_grants(v.tenant_id, p_org_id, v.effective_role);
    if not v.is_tenant_admin then
      v.valid_until := v_member_expires;
      -- Organization-wide grants add to the membership's role.
      for v_grant in
        select g.permissions, g.expires_at from roster._reaching_grants(v.tenant_id, p_org_id, p_user_id) g
         where g.resource_type is null
      loop
        v.grants := v.grants || v_grant.permissions;
        if v_grant.expires_at is not null then
          v.valid_until := least(coalesce(v.valid_until, 'infinity'), v_grant.expires_at);
        end if;
      end loop;
    end if;
  end if;
  return v;
end
$$;

create or replace function roster.list_user_organizations(
  p_actor_id uuid, p_user_id uuid, p_limit integer default 50, p_offset integer default 0)
  returns table (id uuid, tenant_id uuid, name text, slug text, description text, domain text,
                 billing_email text, billing_address jsonb, stripe_customer_id text, metadata jsonb,
                 created_at timestamptz, updated_at timestamptz, created_by uuid, role text,
                 status text, joined_at timestamptz, member_count bigint, authz_version bigint)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = ''
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
begin
  perform roster._check_page(p_limit, p_offset);
  if p_user_id is distinct from v_actor.id then
    if not v_actor.is_tenant_admin then
      raise exception using errcode = 'RDNID',
        message = 'only a tenant admin may list another user''s organizations';
    end if;
    perform roster._require_tenant_user(v_actor.tenant_id, p_user_id);
  end if;

  -- Only active members see an organization's details; an invited or suspended one sees which
  -- organization it is (id, name, slug) and its own membership.
  return query
  select o.id, o.tenant_id, o.name, o.slug,
         case when m.status = 'active' then o.description end,
         case when m.status = 'active' then o.domain end,
         case when m.status = 'active' then o.billing_email end,
         case when m.status = 'active' then o.billing_address end,
         case when m.status = 'active' then o.stripe_customer_id end,
         case when m.status = 'active' then o.metadata else '{}'::jsonb end,
         o.created_at, o.updated_at, o.created_by, m.role, m.status, m.joined_at,
         case when m.status = 'active' then roster._member_count(o.tenant_id, o.id) end,
         coalesce(ov.version, 0)
    from roster.organization_memberships m
    join roster.organizations o
      on o.tenant_id = m.tenant_id and o.id = m.organization_id and o.deleted_at is null
    left join roster.organization_versions ov on ov.tenant_id = o.tenant_id and ov.organization_id = o.id
   where m.tenant_id = v_actor.tenant_id and m.user_id = p_user_id and m.deleted_at is null
   order by lower(o.name), o.id
   limit p_limit offset p_offset;
end
$$;

alter table roster.organizations drop column authz_version;
alter table roster.users drop column authz_version;
