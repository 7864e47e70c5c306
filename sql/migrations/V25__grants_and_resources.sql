-- Grants of a role to a user or a group, across the organization or on one resource, and a
-- resource hierarchy: the resolver now answers with memberships, expiries, groups and grants.
--
--   * Without a resource, a grant gives the role's permissions across the organization, in
--     addition to the membership's role; to a group, it reaches the members of that group and
--     of its descendants.
--   * With a resource (`model`/`42`; the type must be the resource part of some permission of
--     the catalogue), it gives them on that resource and its descendants only: services give a
--     resource a parent (`set_resource_parent`), at most 16 levels, no cycles.
--   * Expired memberships, group memberships and grants grant nothing (checks compare with the
--     statement's time); a suspended member's groups and grants grant nothing either.
--   * Versions stay bounded for writers: a grant to a user bumps that user; an
--     organization-wide grant to a group bumps the organization; a resource grant to a group,
--     and any change to the resource hierarchy, bump the organization's resource version
--     (roster.resource_versions), on which only resource checks depend.

-- ============================================================================================
-- Types
-- ============================================================================================
alter type roster.access add attribute expired boolean;        -- the live membership has expired
alter type roster.access add attribute valid_until timestamptz; -- the earliest expiry the grants depend on

create type roster.access_path as (
  allowed             boolean,
  reason              text,   -- allowed: member_role | tenant_admin | grant; denied: not_a_member | invitation_pending | suspended | expired | organization_deleted | user_deleted | role_lacks_permission
  via_role            text,
  via_grant           text,   -- the pattern that matched
  via_grant_id        uuid,   -- the grant, when a grant allowed
  via_groups          text[], -- the group chain from the user's group to the granted group (keys)
  via_resource_type   text,   -- the resource (or ancestor) the grant is on
  via_resource_id     text
);
comment on type roster.access_path is 'Why roster.explain_access (with a resource) answers what it does: the path that granted.';

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.grants (
  tenant_id       uuid        not null,
  id              uuid        not null default gen_random_uuid(),
  organization_id uuid        not null,
  subject_type    text        not null, -- user | group
  user_id         uuid,
  group_id        uuid,
  role_key        text        not null, -- a role available to the organization
  resource_type   text,                 -- null: the whole organization
  resource_id     text,
  expires_at      timestamptz,          -- grants nothing from then on (null: never)
  granted_by      uuid,
  created_at      timestamptz not null default now(),
  deleted_at      timestamptz,          -- revoked, or purged after expiry
  constraint pk_grants primary key (tenant_id, id),
  constraint fk_grants_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade,
  constraint fk_grants_user foreign key (tenant_id, user_id)
    references roster.users (tenant_id, id) on delete cascade,
  constraint fk_grants_group foreign key (tenant_id, organization_id, group_id)
    references roster.groups (tenant_id, organization_id, id) on delete cascade,
  constraint fk_grants_granted_by foreign key (tenant_id, granted_by)
    references roster.users (tenant_id, id) on delete set null (granted_by),
  constraint ck_grants_subject check (
    (subject_type = 'user' and user_id is not null and group_id is null)
    or (subject_type = 'group' and group_id is not null and user_id is null)),
  constraint ck_grants_resource check ((resource_type is null) = (resource_id is null)),
  constraint ck_grants_resource_type_format check (resource_type ~ '^[a-z][a-z0-9_-]*$' and length(resource_type) <= 100),
  constraint ck_grants_resource_id_length check (length(resource_id) between 1 and 255)
);
comment on table roster.grants is
  'Roles granted to a user or a group, across the organization or on a resource. Write through roster.grant_role / revoke_grant.';

create unique index uq_grants_live on roster.grants
  (tenant_id, organization_id, subject_type, coalesce(user_id, group_id), role_key,
   coalesce(resource_type, ''), coalesce(resource_id, ''))
  where deleted_at is null;
create index ix_grants_user on roster.grants (tenant_id, organization_id, user_id) where deleted_at is null and user_id is not null;
create index ix_grants_group on roster.grants (tenant_id, organization_id, group_id) where deleted_at is null and group_id is not null;
create index ix_grants_resource on roster.grants (tenant_id, organization_id, resource_type, resource_id)
  where deleted_at is null and resource_type is not null;

create table roster.resource_parents (
  tenant_id       uuid        not null,
  organization_id uuid        not null,
  resource_type   text        not null,
  resource_id     text        not null,
  parent_type     text        not null,
  parent_id       text        not null,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint pk_resource_parents primary key (tenant_id, organization_id, resource_type, resource_id),
  constraint fk_resource_parents_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade,
  constraint ck_resource_parents_types check (
    resource_type ~ '^[a-z][a-z0-9_-]*$' and length(resource_type) <= 100
    and parent_type ~ '^[a-z][a-z0-9_-]*$' and length(parent_type) <= 100),
  constraint ck_resource_parents_ids check (length(resource_id) between 1 and 255 and length(parent_id) between 1 and 255),
  constraint ck_resource_parents_not_own_parent check ((parent_type, parent_id) <> (resource_type, resource_id))
);
comment on table roster.resource_parents is
  'The resource hierarchy a service declares: a grant on a resource reaches its descendants. Write through roster.set_resource_parent.';

create index ix_resource_parents_parent on roster.resource_parents (tenant_id, organization_id, parent_type, parent_id);

create table roster.resource_versions (
  tenant_id       uuid   not null,
  organization_id uuid   not null,
  version         bigint not null default 1,
  constraint pk_resource_versions primary key (tenant_id, organization_id),
  constraint fk_resource_versions_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade
);
comment on table roster.resource_versions is
  'The version of an organization''s resource grants and hierarchy: what cached resource checks depend on (besides the organization and the user).';

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

create function roster._bump_resources(p_tenant_id uuid, p_org_id uuid) returns void
  language sql volatile
  set search_path = pg_catalog, pg_temp
as $$
  insert into roster.resource_versions as v (tenant_id, organization_id) values (p_tenant_id, p_org_id)
  on conflict on constraint pk_resource_versions do update set version = v.version + 1
$$;
comment on function roster._bump_resources(uuid, uuid) is
  'Internal: bumps (and so locks) an organization''s resource version.';

/* RINVL unless some permission of the tenant's catalogue is about this resource type. */
create function roster._check_resource_type(p_tenant_id uuid, p_type text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_type is null or not exists (select from roster._catalogue(p_tenant_id) c
                                    where split_part(c.name, ':', 1) = p_type) then
    raise exception using errcode = 'RINVL',
      message = format('resource type %s is the resource of no permission of the catalogue', coalesce(quote_literal(p_type), 'null'));
  end if;
end
$$;
comment on function roster._check_resource_type(uuid, text) is
  'Internal: RINVL unless a permission of the tenant''s catalogue names this resource type.';

/* The groups that reach a user: those it is in (unexpired) and their ancestors, each with the
   membership's expiry and the chain of keys from the user's group up to it.
   Inlined into its callers' plans (hence no SET clause): it runs under their pinned search_path. */
create function roster._reaching_groups(p_tenant_id uuid, p_org_id uuid, p_user_id uuid)
  returns table (group_id uuid, expires_at timestamptz, path text[])
  language sql stable
as $$
  with recursive chain(group_id, parent_id, expires_at, path) as (
    select g.id, g.parent_id, gm.expires_at, array[g.key]
      from roster.group_members gm
      join roster.groups g on g.tenant_id = gm.tenant_id and g.id = gm.group_id
     where gm.tenant_id = p_tenant_id and gm.organization_id = p_org_id and gm.user_id = p_user_id
       and gm.deleted_at is null and (gm.expires_at is null or gm.expires_at > now())
    union all
    select p.id, p.parent_id, c.expires_at, c.path || p.key
      from chain c
      join roster.groups p on p.tenant_id = p_tenant_id and p.id = c.parent_id
     where cardinality(c.path) < 8
  )
  select c.group_id, c.expires_at, c.path from chain c
$$;
comment on function roster._reaching_groups(uuid, uuid, uuid) is
  'Internal: the groups reaching a user in the organization (its own, unexpired, and their ancestors), with the membership''s expiry and the key chain.';

/* Every unexpired grant reaching a user: to it, or to a group reaching it; with the role's
   grants, the earliest expiry on the way, and the group chain.
   Inlined into its callers' plans (hence no SET clause): it runs under their pinned search_path. */
create function roster._reaching_grants(p_tenant_id uuid, p_org_id uuid, p_user_id uuid)
  returns table (grant_id uuid, role_key text, permissions text[], resource_type text,
                 resource_id text, expires_at timestamptz, via_groups text[])
  language sql stable
as $$
  select g.id, g.role_key, roster._role_grants(g.tenant_id, g.organization_id, g.role_key),
         g.resource_type, g.resource_id, g.expires_at, null::text[]
    from roster.grants g
   where g.tenant_id = p_tenant_id and g.organization_id = p_org_id and g.user_id = p_user_id
     and g.deleted_at is null and (g.expires_at is null or g.expires_at > now())
  union all
  select g.id, g.role_key, roster._role_grants(g.tenant_id, g.organization_id, g.role_key),
         g.resource_type, g.resource_id,
         nullif(least(coalesce(g.expires_at, 'infinity'), coalesce(r.expires_at, 'infinity')), 'infinity'),
         r.path
    from roster._reaching_groups(p_tenant_id, p_org_id, p_user_id) r
    join roster.grants g on g.tenant_id = p_tenant_id and g.organization_id = p_org_id
     and g.group_id = r.group_id and g.deleted_at is null
     and (g.expires_at is null or g.expires_at > now())
$$;
comment on function roster._reaching_grants(uuid, uuid, uuid) is
  'Internal: the unexpired grants reaching a user in the organization, directly or through groups, with the role''s grants, the earliest expiry and the group chain.';

/* A resource and its ancestors, nearest first (depth 0 is the resource itself).
   Inlined into its callers' plans (hence no SET clause): it runs under their pinned search_path. */
create function roster._resource_ancestors(p_tenant_id uuid, p_org_id uuid, p_type text, p_id text)
  returns table (resource_type text, resource_id text, depth integer)
  language sql stable
as $$
  with recursive up(resource_type, resource_id, depth) as (
    select p_type, p_id, 0
    union all
    select rp.parent_type, rp.parent_id, up.depth + 1
      from up
      join roster.resource_parents rp
        on rp.tenant_id = p_tenant_id and rp.organization_id = p_org_id
       and rp.resource_type = up.resource_type and rp.resource_id = up.resource_id
     where up.depth < 16
  )
  select up.resource_type, up.resource_id, up.depth from up
$$;
comment on function roster._resource_ancestors(uuid, uuid, text, text) is
  'Internal: a resource and its ancestors (depth 0: itself), at most 16 levels up.';

/* The resource types that are some resource's parent in the organization: a loose scan of
   ix_resource_parents_parent, one probe per type. Walking down the hierarchy, only resources
   of these types can have children, so the leaves (most resources) are not probed. */
create function roster._parent_types(p_tenant_id uuid, p_org_id uuid) returns text[]
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  return (
    with recursive t(parent_type) as (
      select min(rp.parent_type) from roster.resource_parents rp
       where rp.tenant_id = p_tenant_id and rp.organization_id = p_org_id
      union all
      select (select min(rp.parent_type) from roster.resource_parents rp
               where rp.tenant_id = p_tenant_id and rp.organization_id = p_org_id
                 and rp.parent_type > t.parent_type)
        from t where t.parent_type is not null
    )
    select coalesce(array_agg(t.parent_type), '{}') from t where t.parent_type is not null);
end
$$;
comment on function roster._parent_types(uuid, uuid) is
  'Internal: the resource types that have children in the organization (a loose index scan).';

/* The one resolver, now with expiry and organization-wide grants (V14's shape). */
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

  select o.authz_version, o.slug, o.deleted_at is null, m.role, m.status, m.expires_at
    into v.org_version, v.org_slug, v.org_live, v.role, v.status, v_member_expires
    from roster.organizations o
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

/* The permissions a user holds on a resource: organization-wide, plus every grant on the
   resource or an ancestor that reaches it; with the earliest expiry they depend on. */
create function roster._resource_access(p_access roster.access, p_org_id uuid, p_user_id uuid,
                                        p_type text, p_id text,
                                        out grants text[], out valid_until timestamptz)
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_grant record;
begin
  grants := p_access.grants;
  valid_until := p_access.valid_until;
  if not p_access.visible or p_access.is_tenant_admin or p_type is null or p_id is null then
    return;
  end if;
  for v_grant in
    select g.permissions, g.expires_at
      from roster._reaching_grants(p_access.tenant_id, p_org_id, p_user_id) g
      join roster._resource_ancestors(p_access.tenant_id, p_org_id, p_type, p_id) a
        on a.resource_type = g.resource_type and a.resource_id = g.resource_id
  loop
    grants := grants || v_grant.permissions;
    if v_grant.expires_at is not null then
      valid_until := least(coalesce(valid_until, 'infinity'), v_grant.expires_at);
    end if;
  end loop;
end
$$;
comment on function roster._resource_access(roster.access, uuid, uuid, text, text) is
  'Internal: the grants a user holds on a resource (organization-wide ones included) and the earliest expiry they depend on.';

/* Every grant a membership holds on the way to a decision goes: a member who leaves, is
   removed or deleted loses its grants (its groups go in V24). */
create function roster.tg_organization_memberships__drop_grants() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.organization_memberships := case when tg_op = 'DELETE' then old else new end;
begin
  update roster.grants g set deleted_at = now()
   where g.tenant_id = v_row.tenant_id and g.organization_id = v_row.organization_id
     and g.user_id = v_row.user_id and g.deleted_at is null;
  return null;
end
$$;
comment on function roster.tg_organization_memberships__drop_grants() is
  'Trigger: ending a membership revokes the user''s grants in the organization.';

create trigger tg_organization_memberships__drop_grants
  after update of deleted_at or delete on roster.organization_memberships
  for each row
  when (old.deleted_at is null)
  execute function roster.tg_organization_memberships__drop_grants();

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* A grant's role is available to its organization, its user a live member, its resource type
   one of the catalogue's; and the version its holders' answers depend on is bumped. */
create function roster.tg_grants__check() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.grants := case when tg_op = 'DELETE' then old else new end;
begin
  if v_row.user_id is not null then
    perform roster._bump_user(v_row.tenant_id, v_row.user_id);
  elsif v_row.resource_type is null then
    perform roster._bump_organization(v_row.tenant_id, v_row.organization_id);
  else
    perform roster._bump_resources(v_row.tenant_id, v_row.organization_id);
  end if;
  if tg_op = 'UPDATE' and (old.user_id, old.group_id, old.resource_type)
                          is distinct from (new.user_id, new.group_id, new.resource_type) then
    perform roster._bump_organization(old.tenant_id, old.organization_id);
    if old.user_id is not null then
      perform roster._bump_user(old.tenant_id, old.user_id);
    end if;
  end if;
  if tg_op = 'DELETE' or new.deleted_at is not null then
    return null;
  end if;
  if (roster._find_role(new.tenant_id, new.organization_id, new.role_key)).key is null then
    raise exception using errcode = 'RINVL', constraint = 'fk_grants_role',
      message = format('unknown role %L: no such role in this organization or its tenant', new.role_key);
  end if;
  if new.user_id is not null and not exists (
    select from roster.organization_memberships m
     where m.tenant_id = new.tenant_id and m.organization_id = new.organization_id
       and m.user_id = new.user_id and m.deleted_at is null
  ) then
    raise exception using errcode = 'RMBNF',
      message = format('user %s is not a member of the grant''s organization', new.user_id);
  end if;
  if new.resource_type is not null then
    perform roster._check_resource_type(new.tenant_id, new.resource_type);
  end if;
  return null;
end
$$;
comment on function roster.tg_grants__check() is
  'Trigger: a grant''s role, user and resource type are valid (RINVL, RMBNF); bumps the user, the organization or its resource version.';

create trigger tg_grants__check after insert or update or delete on roster.grants
  for each row execute function roster.tg_grants__check();

/* No cycle and at most 16 levels in the resource hierarchy, whoever writes. The resource
   version's row is bumped (and locked) first, so concurrent changes of one organization's
   hierarchy serialize. */
create function roster.tg_resource_parents__check() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.resource_parents := case when tg_op = 'DELETE' then old else new end;
  v_above integer;
  v_below integer;
  v_cycle boolean;
begin
  perform roster._bump_resources(v_row.tenant_id, v_row.organization_id);
  if tg_op = 'DELETE' then
    return null;
  end if;
  perform roster._check_resource_type(new.tenant_id, new.resource_type);
  perform roster._check_resource_type(new.tenant_id, new.parent_type);
  -- The new parent and its ancestors: if the resource is among them, a cycle.
  select count(*), coalesce(bool_or(a.resource_type = new.resource_type and a.resource_id = new.resource_id), false)
    into v_above, v_cycle
    from roster._resource_ancestors(new.tenant_id, new.organization_id, new.parent_type, new.parent_id) a;
  if v_cycle then
    raise exception using errcode = 'RHIER',
      message = format('%s %s cannot be under one of its own descendants', new.resource_type, new.resource_id);
  end if;
  with recursive down(resource_type, resource_id, depth) as (
    select new.resource_type, new.resource_id, 0
    union all
    select rp.resource_type, rp.resource_id, down.depth + 1
      from down
      join roster.resource_parents rp
        on rp.tenant_id = new.tenant_id and rp.organization_id = new.organization_id
       and rp.parent_type = down.resource_type and rp.parent_id = down.resource_id
     where down.depth < 17
  )
  select max(depth) into v_below from down;
  -- Parent links above the resource (one per node above it) and below it.
  if v_above + v_below > 16 then
    raise exception using errcode = 'RHIER',
      message = format('resources nest at most 16 levels: %s %s would make %s', new.resource_type, new.resource_id, v_above + v_below);
  end if;
  return null;
end
$$;
comment on function roster.tg_resource_parents__check() is
  'Trigger: refuses a cycle or more than 16 levels of resources (RHIER), or a type no permission names (RINVL); bumps the organization''s resource version.';

create trigger tg_resource_parents__check after insert or update or delete on roster.resource_parents
  for each row execute function roster.tg_resource_parents__check();

create trigger tg_resource_parents__touch before update on roster.resource_parents
  for each row execute function roster.tg__touch_updated_at();

/* Announced like the other versions (V10, V13). */
create function roster.tg_resource_versions__notify() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.resource_versions := case when tg_op = 'DELETE' then old else new end;
begin
  perform pg_notify('roster_changes', jsonb_build_object(
    'kind', 'resources', 'tenant_id', v_row.tenant_id, 'organization_id', v_row.organization_id,
    'version', case when tg_op = 'DELETE' then 9223372036854775807 else v_row.version end)::text);
  return null;
end
$$;
comment on function roster.tg_resource_versions__notify() is
  'Trigger: announces a new resource version of an organization on channel roster_changes.';

create trigger tg_resource_versions__notify after insert or update or delete on roster.resource_versions
  for each row execute function roster.tg_resource_versions__notify();

/* Roles held by grants cannot be deleted either (V20's rule, now counting grants). */
create or replace function roster.tg_roles__refuse_delete_in_use() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_held bigint;
begin
  select count(*) into v_held from (
    select from roster.organization_memberships m
     where m.tenant_id = old.tenant_id and m.role = old.key and m.deleted_at is null
       and (old.organization_id is null or m.organization_id = old.organization_id)
       and exists (select from roster.organizations o where o.tenant_id = m.tenant_id and o.id = m.organization_id)
    union all
    select from roster.grants g
     where g.tenant_id = old.tenant_id and g.role_key = old.key and g.deleted_at is null
       and (old.organization_id is null or g.organization_id = old.organization_id)
       and exists (select from roster.organizations o where o.tenant_id = g.tenant_id and o.id = g.organization_id)
  ) h;
  if v_held > 0 then
    raise exception using errcode = 'RRLUS',
      message = format('role %s is held by %s membership(s) or grant(s): reassign them first (delete_role''s p_reassign_to)', old.key, v_held);
  end if;
  return old;
end
$$;

-- ============================================================================================
-- Public functions: grants and the resource hierarchy
-- ============================================================================================

create function roster.grant_role(
  p_actor_id uuid,
  p_org_id uuid,
  p_subject_type text,
  p_subject_id text,
  p_role_key text,
  p_resource_type text default null,
  p_resource_id text default null,
  p_expires_at timestamptz default null
) returns roster.grants
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'grants:manage');
  v_expires_at timestamptz := roster._check_expiry(p_expires_at);
  v_user uuid;
  v_group uuid;
  v_grant roster.grants;
begin
  if p_subject_type = 'user' then
    begin
      v_user := p_subject_id::uuid;
    exception when invalid_text_representation then
      raise exception using errcode = 'RINVL', message = format('subject_id %L is not a user id', p_subject_id);
    end;
    perform roster._require_member(v_access.tenant_id, p_org_id, v_user);
  elsif p_subject_type = 'group' then
    v_group := (roster._group(v_access.tenant_id, p_org_id, p_subject_id)).id;
  else
    raise exception using errcode = 'RINVL',
      message = format('subject_type must be user or group, got %s', coalesce(quote_literal(p_subject_type), 'null'));
  end if;
  if (p_resource_type is null) <> (p_resource_id is null) then
    raise exception using errcode = 'RINVL', message = 'give resource_type and resource_id together, or neither';
  end if;
  if p_resource_type is not null then
    perform roster._check_resource_type(v_access.tenant_id, p_resource_type);
  end if;
  perform roster._check_role(v_access.tenant_id, p_org_id, p_role_key);
  if p_role_key = 'owner' then
    perform roster._deny_unless(v_access, 'members:manage_owners');
  end if;
  perform roster._require_grants_held(v_access, roster._role_grants(v_access.tenant_id, p_org_id, p_role_key),
                                      format('role %s', p_role_key));
  insert into roster.grants (tenant_id, organization_id, subject_type, user_id, group_id, role_key,
                             resource_type, resource_id, expires_at, granted_by)
  values (v_access.tenant_id, p_org_id, p_subject_type, v_user, v_group, p_role_key,
          p_resource_type, p_resource_id, v_expires_at, p_actor_id)
  returning * into v_grant;
  return v_grant;
exception when unique_violation then
  raise exception using errcode = '23505', constraint = 'uq_grants_live',
    message = format('%s %s already holds role %s there', p_subject_type, p_subject_id, p_role_key);
end
$$;
comment on function roster.grant_role(uuid, uuid, text, text, text, text, text, timestamptz) is
  'Grants a role to a user (subject_id: its id, a member) or a group (subject_id: its key), across the organization or on a resource (its type the resource of some permission), until p_expires_at. Needs grants:manage and every permission the role grants (RESCL); members:manage_owners for owner. Errors: RINVL, RGRNF, RMBNF, RESCL, 23505 uq_grants_live.';

create function roster.revoke_grant(p_actor_id uuid, p_org_id uuid, p_grant_id uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'grants:manage');
begin
  update roster.grants g set deleted_at = now()
   where g.tenant_id = v_access.tenant_id and g.organization_id = p_org_id and g.id = p_grant_id
     and g.deleted_at is null;
  if not found then
    raise exception using errcode = 'RGTNF',
      message = format('grant %s not found', coalesce(p_grant_id::text, 'null'));
  end if;
end
$$;
comment on function roster.revoke_grant(uuid, uuid, uuid) is
  'Revokes a grant. Needs grants:manage. RGTNF when the organization has no such live grant.';

/* The rows list_grants and get_grant show: the subject as a user id or a group key.
   Inlined into its callers' plans (hence no SET clause): it runs under their pinned search_path. */
create function roster._grant_rows(p_tenant_id uuid, p_org_id uuid)
  returns table (id uuid, subject_type text, subject_id text, role_key text, resource_type text,
                 resource_id text, expires_at timestamptz, granted_by uuid, created_at timestamptz)
  language sql stable
as $$
  select g.id, g.subject_type, coalesce(g.user_id::text, gr.key), g.role_key, g.resource_type,
         g.resource_id, g.expires_at, g.granted_by, g.created_at
    from roster.grants g
    left join roster.groups gr on gr.tenant_id = g.tenant_id and gr.id = g.group_id
   where g.tenant_id = p_tenant_id and g.organization_id = p_org_id and g.deleted_at is null
$$;
comment on function roster._grant_rows(uuid, uuid) is 'Internal: the organization''s live grants as list_grants shows them.';

/* Filters: subject_type, subject_id, role_key, resource_type, resource_id. */
create function roster.list_grants(
  p_actor_id uuid,
  p_org_id uuid,
  p_filters jsonb default '{}',
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (id uuid, subject_type text, subject_id text, role_key text, resource_type text,
                 resource_id text, expires_at timestamptz, granted_by uuid, created_at timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:read');
  v_key text;
begin
  perform roster._check_page(p_limit, p_offset);
  if jsonb_typeof(coalesce(p_filters, '{}')) <> 'object' then
    raise exception using errcode = 'RINVL', message = 'filters must be a JSON object';
  end if;
  for v_key in select jsonb_object_keys(coalesce(p_filters, '{}')) loop
    if v_key not in ('subject_type', 'subject_id', 'role_key', 'resource_type', 'resource_id')
       or jsonb_typeof(p_filters -> v_key) <> 'string' then
      raise exception using errcode = 'RINVL',
        message = format('unknown or non-text filter %L: expected subject_type, subject_id, role_key, resource_type, resource_id', v_key);
    end if;
  end loop;
  return query
  select * from roster._grant_rows(v_access.tenant_id, p_org_id) r
   where (p_filters ->> 'subject_type' is null or r.subject_type = p_filters ->> 'subject_type')
     and (p_filters ->> 'subject_id' is null or r.subject_id = p_filters ->> 'subject_id')
     and (p_filters ->> 'role_key' is null or r.role_key = p_filters ->> 'role_key')
     and (p_filters ->> 'resource_type' is null or r.resource_type = p_filters ->> 'resource_type')
     and (p_filters ->> 'resource_id' is null or r.resource_id = p_filters ->> 'resource_id')
   order by r.created_at, r.id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_grants(uuid, uuid, jsonb, integer, integer) is
  'The organization''s live grants (expired ones until purged), oldest first, filtered by subject_type, subject_id (a user id or a group key), role_key, resource_type, resource_id. Needs members:read. p_limit 1..1000.';

create function roster.get_grant(p_actor_id uuid, p_org_id uuid, p_grant_id uuid)
  returns table (id uuid, subject_type text, subject_id text, role_key text, resource_type text,
                 resource_id text, expires_at timestamptz, granted_by uuid, created_at timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:read');
begin
  return query select * from roster._grant_rows(v_access.tenant_id, p_org_id) r where r.id = p_grant_id;
  if not found then
    raise exception using errcode = 'RGTNF',
      message = format('grant %s not found', coalesce(p_grant_id::text, 'null'));
  end if;
end
$$;
comment on function roster.get_grant(uuid, uuid, uuid) is
  'One live grant of the organization, as list_grants shows it. Needs members:read. RGTNF when there is none.';

/* A service gives resources their parents: p_actor_id null with p_tenant_id (a service the API
   authenticated), or an actor with grants:manage. A null parent removes it. */
create function roster.set_resource_parent(
  p_actor_id uuid,
  p_org_id uuid,
  p_type text,
  p_id text,
  p_parent_type text,
  p_parent_id text,
  p_tenant_id uuid default null
) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_tenant uuid;
begin
  if p_actor_id is not null then
    v_tenant := (roster._require_permission(p_actor_id, p_org_id, 'grants:manage')).tenant_id;
  else
    select o.tenant_id into v_tenant from roster.organizations o
     where o.tenant_id = p_tenant_id and o.id = p_org_id and o.deleted_at is null;
    if v_tenant is null then
      raise exception using errcode = 'RNFND',
        message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
    end if;
  end if;
  if (p_parent_type is null) <> (p_parent_id is null) then
    raise exception using errcode = 'RINVL', message = 'give parent_type and parent_id together, or neither';
  end if;
  if p_parent_type is null then
    delete from roster.resource_parents rp
     where rp.tenant_id = v_tenant and rp.organization_id = p_org_id
       and rp.resource_type = p_type and rp.resource_id = p_id;
    return;
  end if;
  insert into roster.resource_parents as rp (tenant_id, organization_id, resource_type, resource_id, parent_type, parent_id)
  values (v_tenant, p_org_id, p_type, p_id, p_parent_type, p_parent_id)
  on conflict on constraint pk_resource_parents do update
    set parent_type = excluded.parent_type, parent_id = excluded.parent_id
  where (rp.parent_type, rp.parent_id) is distinct from (excluded.parent_type, excluded.parent_id);
exception when check_violation then
  raise exception using errcode = 'RINVL',
    message = format('resource %s %s and parent %s %s: types are lowercase identifiers, ids 1 to 255 characters, and a resource is not its own parent',
                     p_type, p_id, p_parent_type, p_parent_id);
end
$$;
comment on function roster.set_resource_parent(uuid, uuid, text, text, text, text, uuid) is
  'Gives a resource a parent (grants on the parent reach it), or removes it (null parent). An actor needs grants:manage; with p_actor_id null, p_tenant_id names the tenant (a service). Errors: RNFND, RINVL (types no permission names), RHIER (cycle, over 16 levels).';

-- ============================================================================================
-- Public functions: checks and lookups with resources
-- ============================================================================================

/* For other services' SQL and row-level-security policies: stable, security definer. */
create function roster.has_permission(p_user_id uuid, p_org_id uuid, p_permission text,
                                      p_resource_type text, p_resource_id text)
  returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
begin
  perform roster._require_known_permission(v_access.tenant_id, p_permission);
  if roster._grants_allow(v_access.grants, p_permission) then
    return true;
  end if;
  return roster._grants_allow(
    (roster._resource_access(v_access, p_org_id, p_user_id, p_resource_type, p_resource_id)).grants,
    p_permission);
end
$$;
comment on function roster.has_permission(uuid, uuid, text, text, text) is
  'True when the user holds the permission on the resource: organization-wide, or through a grant (its own or a group''s) on the resource or one of its ancestors. For services'' queries and row-level-security policies. RUPRM for an unknown permission.';

/* For caches: a user's permissions on one resource, with the versions they were read at. */
create function roster.resource_access(p_user_id uuid, p_org_id uuid, p_resource_type text, p_resource_id text)
  returns table (tenant_id uuid, is_tenant_admin boolean, user_live boolean, user_version bigint,
                 tenant_version bigint, org_version bigint, resources_version bigint,
                 permissions text[], valid_until timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
  v_resource record := roster._resource_access(v_access, p_org_id, p_user_id, p_resource_type, p_resource_id);
begin
  return query
  select v_access.tenant_id, v_access.is_tenant_admin, v_access.user_live, v_access.user_version,
         v_access.tenant_version,
         v_access.org_version,
         coalesce((select rv.version from roster.resource_versions rv
                    where rv.tenant_id = v_access.tenant_id and rv.organization_id = p_org_id), 0),
         roster._expand_grants(v_access.tenant_id, v_resource.grants), v_resource.valid_until;
end
$$;
comment on function roster.resource_access(uuid, uuid, text, text) is
  'For caches: every permission a user holds on a resource (organization-wide ones included, wildcards expanded), the versions of user, tenant, organization and its resources, and the earliest expiry. No actor check.';

create function roster.explain_access(p_user_id uuid, p_org_id uuid, p_permission text,
                                      p_resource_type text, p_resource_id text)
  returns roster.access_path
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v roster.access := roster._access(p_user_id, p_org_id);
  v_path roster.access_path := (false, null, null, null, null, null, null, null);
  v_grant record;
begin
  perform roster._require_known_permission(v.tenant_id, p_permission);
  if v.tenant_id is not null and not v.user_live then
    v_path.reason := 'user_deleted';
    return v_path;
  elsif v.tenant_id is null or v.org_version = 0 then
    v_path.reason := 'not_a_member';
    return v_path;
  elsif not v.org_live then
    v_path.reason := 'organization_deleted';
    return v_path;
  end if;
  if v.visible and roster._grants_allow(roster._role_grants(v.tenant_id, p_org_id, v.effective_role), p_permission) then
    v_path.allowed := true;
    v_path.reason := case when v.is_tenant_admin then 'tenant_admin' else 'member_role' end;
    v_path.via_role := v.effective_role;
    v_path.via_grant := roster._matching_grant(roster._role_grants(v.tenant_id, p_org_id, v.effective_role), p_permission);
    return v_path;
  end if;
  if v.visible then
    -- Organization-wide grants first, then the nearest resource.
    select g.grant_id, g.role_key, g.permissions, g.via_groups, a.resource_type, a.resource_id
      into v_grant
      from roster._reaching_grants(v.tenant_id, p_org_id, p_user_id) g
      left join roster._resource_ancestors(v.tenant_id, p_org_id, p_resource_type, p_resource_id) a
        on a.resource_type = g.resource_type and a.resource_id = g.resource_id
     where (g.resource_type is null or a.depth is not null)
       and roster._grants_allow(g.permissions, p_permission)
     order by a.depth nulls first, g.via_groups nulls first
     limit 1;
    if v_grant.grant_id is not null then
      return (true, 'grant', v_grant.role_key, roster._matching_grant(v_grant.permissions, p_permission),
              v_grant.grant_id, v_grant.via_groups, v_grant.resource_type, v_grant.resource_id)::roster.access_path;
    end if;
  end if;
  v_path.via_role := v.role;
  v_path.reason := case
    when v.status = 'invited' then 'invitation_pending'
    when v.status = 'suspended' then 'suspended'
    when v.status = 'active' and v.expired then 'expired'
    when v.status = 'active' or v.is_tenant_admin then 'role_lacks_permission'
    else 'not_a_member' end;
  return v_path;
end
$$;
comment on function roster.explain_access(uuid, uuid, text, text, text) is
  'Why has_permission (with a resource) answers what it does: the path that granted (the role, or the grant: its id, role, the group chain, the resource or ancestor it is on, and the pattern that matched), or on deny the reason (not_a_member, invitation_pending, suspended, expired, organization_deleted, user_deleted, role_lacks_permission). RUPRM for an unknown permission.';

/* V22's explanation, now knowing expiries and grants: the same answer as the five-argument
   one without a resource, in the four columns of its contract. */
create or replace function roster.explain_access(p_user_id uuid, p_org_id uuid, p_permission text)
  returns roster.access_explanation
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_path roster.access_path := roster.explain_access(p_user_id, p_org_id, p_permission, null, null);
begin
  return (v_path.allowed, v_path.reason, v_path.via_role, v_path.via_grant)::roster.access_explanation;
end
$$;

/* Resource ids of one type a user may act on through grants, keyset paginated by id. When it
   holds the permission organization-wide, one row (null, true): every resource is allowed. */
create function roster.list_resources(
  p_user_id uuid,
  p_org_id uuid,
  p_permission text,
  p_resource_type text,
  p_limit integer default 100,
  p_after text default null
)
  returns table (resource_id text, organization_wide boolean)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
  v_parent_types text[];
begin
  perform roster._require_known_permission(v_access.tenant_id, p_permission);
  perform roster._check_page(p_limit, 0);
  if roster._grants_allow(v_access.grants, p_permission) then
    return query select null::text, true;
    return;
  end if;
  if not v_access.visible or v_access.is_tenant_admin then
    return;
  end if;
  v_parent_types := roster._parent_types(v_access.tenant_id, p_org_id);
  return query
  with recursive granted as (
    select distinct g.resource_type, g.resource_id
      from roster._reaching_grants(v_access.tenant_id, p_org_id, p_user_id) g
     where g.resource_type is not null and roster._grants_allow(g.permissions, p_permission)
  ), down(resource_type, resource_id, depth) as (
    select granted.resource_type, granted.resource_id, 0 from granted
    union all -- a forest (one parent each, no cycles): only nested grants meet twice
    select rp.resource_type, rp.resource_id, down.depth + 1
      from down
      join roster.resource_parents rp
        on rp.tenant_id = v_access.tenant_id and rp.organization_id = p_org_id
       and rp.parent_type = down.resource_type and rp.parent_id = down.resource_id
     where down.depth < 16 and down.resource_type = any (v_parent_types)
  )
  select distinct d.resource_id, false
    from down d
   where d.resource_type = p_resource_type and (p_after is null or d.resource_id > p_after)
   order by d.resource_id
   limit p_limit;
end
$$;
comment on function roster.list_resources(uuid, uuid, text, text, integer, text) is
  'The ids of the resources of a type on which the user holds the permission through grants (on them or an ancestor), by id, after p_after, at most p_limit (1..1000), no cap overall. One row (null, true) when it holds the permission organization-wide: every resource of the type is allowed. RUPRM for an unknown permission.';

/* For other services' SQL: the set form of list_resources, without pages (not the
   organization-wide case: combine with the three-argument has_permission). */
create function roster.accessible_resource_ids(p_user_id uuid, p_org_id uuid, p_permission text, p_resource_type text)
  returns setof text
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
  v_parent_types text[];
begin
  perform roster._require_known_permission(v_access.tenant_id, p_permission);
  if not v_access.visible or v_access.is_tenant_admin then
    return;
  end if;
  v_parent_types := roster._parent_types(v_access.tenant_id, p_org_id);
  return query
  with recursive granted as (
    select distinct g.resource_type, g.resource_id
      from roster._reaching_grants(v_access.tenant_id, p_org_id, p_user_id) g
     where g.resource_type is not null and roster._grants_allow(g.permissions, p_permission)
  ), down(resource_type, resource_id, depth) as (
    select granted.resource_type, granted.resource_id, 0 from granted
    union all -- a forest (one parent each, no cycles): only nested grants meet twice
    select rp.resource_type, rp.resource_id, down.depth + 1
      from down
      join roster.resource_parents rp
        on rp.tenant_id = v_access.tenant_id and rp.organization_id = p_org_id
       and rp.parent_type = down.resource_type and rp.parent_id = down.resource_id
     where down.depth < 16 and down.resource_type = any (v_parent_types)
  )
  select distinct d.resource_id from down d where d.resource_type = p_resource_type;
end
$$;
comment on function roster.accessible_resource_ids(uuid, uuid, text, text) is
  'For services'' queries and row-level-security policies: the ids of the resources of a type the user may act on through grants. Not the organization-wide case: use it with the three-argument has_permission. RUPRM for an unknown permission.';

/* member_access and caller_identity now also report the earliest expiry. */
drop function roster.member_access(uuid, uuid);
create function roster.member_access(p_user_id uuid, p_org_id uuid)
  returns table (
    tenant_id uuid, is_tenant_admin boolean, user_live boolean, user_version bigint,
    tenant_version bigint, org_version bigint, org_slug text, visible boolean, role text,
    status text, permissions text[], valid_until timestamptz
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
                      roster._expand_grants(v_access.tenant_id, v_access.grants),
                      v_access.valid_until;
end
$$;
comment on function roster.member_access(uuid, uuid) is
  'A user''s access to an organization, for caches and the API: tenant, tenant admin flag, live, the versions of user, tenant and organization (org_version 0: no such organization in the user''s tenant), whether it may see the organization, the role and status of its live membership, its effective permissions (empty unless visible), and the earliest expiry they depend on (null: none). RAMBG for a user id in two tenants. No actor check.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.grant_role(uuid, uuid, text, text, text, text, text, timestamptz),
  roster.revoke_grant(uuid, uuid, uuid),
  roster.list_grants(uuid, uuid, jsonb, integer, integer),
  roster.get_grant(uuid, uuid, uuid),
  roster.set_resource_parent(uuid, uuid, text, text, text, text, uuid),
  roster.has_permission(uuid, uuid, text, text, text),
  roster.resource_access(uuid, uuid, text, text),
  roster.explain_access(uuid, uuid, text, text, text),
  roster.list_resources(uuid, uuid, text, text, integer, text),
  roster.accessible_resource_ids(uuid, uuid, text, text),
  roster.member_access(uuid, uuid)
to roster_app;
