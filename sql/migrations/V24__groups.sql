-- Groups of an organization: teams, nested up to 8 levels. Only members of the organization
-- are in its groups, and a member who leaves leaves its groups (a suspended member keeps its
-- rows, which grant nothing while it is suspended). Group members may expire. A grant to a
-- group (V25) reaches the members of the group and of its descendants.
--
-- Cost for writers is bounded: adding or removing a group member bumps that user's version
-- only; changing the tree (a parent, a deletion) bumps the organization's version once, never
-- the versions of the members it reaches. Tree changes of one organization serialize on that
-- organization's row (the version bump takes its lock first), so two concurrent re-parentings
-- cannot build a cycle between them; under REPEATABLE READ the second fails with 40001.

-- ============================================================================================
-- Tables
-- ============================================================================================
insert into roster.permissions (name, description) values
  ('groups:manage', 'create, change and delete the organization''s groups and their members'),
  ('grants:manage', 'grant roles on the organization or its resources, and revoke them');

create table roster.groups (
  tenant_id       uuid        not null,
  id              uuid        not null default gen_random_uuid(),
  organization_id uuid        not null,
  key             text        not null, -- unique in the organization
  name            text        not null,
  description     text,
  parent_id       uuid,         -- a group of the same organization
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint pk_groups primary key (tenant_id, id),
  -- What child groups and members reference, so that they stay in the group's organization.
  constraint uq_groups_tenant_organization_id unique (tenant_id, organization_id, id),
  constraint fk_groups_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade,
  constraint fk_groups_parent foreign key (tenant_id, organization_id, parent_id)
    references roster.groups (tenant_id, organization_id, id),
  constraint ck_groups_key_format check (key ~ '^[a-z][a-z0-9_-]{1,49}$'),
  constraint ck_groups_name_length check (btrim(name) <> '' and length(name) <= 100),
  constraint ck_groups_description_length check (length(description) <= 1000),
  constraint ck_groups_not_own_parent check (parent_id is distinct from id)
);
comment on table roster.groups is
  'Groups of an organization, nested up to 8 levels. Write through roster.create_group / update_group / delete_group.';

create unique index uq_groups_organization_key on roster.groups (tenant_id, organization_id, key);
create index ix_groups_parent on roster.groups (tenant_id, parent_id) where parent_id is not null;

create table roster.group_members (
  tenant_id       uuid        not null,
  id              uuid        not null default gen_random_uuid(),
  organization_id uuid        not null,
  group_id        uuid        not null,
  user_id         uuid        not null,
  expires_at      timestamptz,  -- stops granting anything then (null: never)
  added_by        uuid,
  created_at      timestamptz not null default now(),
  deleted_at      timestamptz,  -- removed, or purged after expiry
  constraint pk_group_members primary key (tenant_id, id),
  constraint fk_group_members_group foreign key (tenant_id, organization_id, group_id)
    references roster.groups (tenant_id, organization_id, id) on delete cascade,
  constraint fk_group_members_user foreign key (tenant_id, user_id)
    references roster.users (tenant_id, id) on delete cascade,
  constraint fk_group_members_added_by foreign key (tenant_id, added_by)
    references roster.users (tenant_id, id) on delete set null (added_by)
);
comment on table roster.group_members is
  'Who is in which group. Only live members of the organization; write through roster.add_group_member / remove_group_member.';

create unique index uq_group_members_group_user on roster.group_members (tenant_id, group_id, user_id)
  where deleted_at is null;
-- The resolver's lookup: a user's groups in an organization.
create index ix_group_members_user on roster.group_members (tenant_id, organization_id, user_id)
  where deleted_at is null;

-- ============================================================================================
-- Data: groups:manage and grants:manage for admins (owners hold *)
-- ============================================================================================
create or replace function roster._builtin_roles()
  returns table (key text, name text, description text, permissions text[])
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  values
    ('owner', 'Owner', 'Everything, including deleting the organization and managing owners and roles.',
     array['*']),
    ('admin', 'Admin', 'Reads, updates the organization, and manages members who are not owners, groups and grants. Only owners change roles.',
     array['organization:read', 'organization:update', 'members:read', 'members:invite',
           'members:suspend', 'members:remove', 'audit:read', 'groups:manage', 'grants:manage']),
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

/* The organization row locked and its version bumped: what every tree change of the
   organization's groups (and resources, V25) does first. */
create function roster._bump_organization(p_tenant_id uuid, p_org_id uuid) returns void
  language sql volatile
  set search_path = pg_catalog, pg_temp
as $$
  update roster.organizations o set authz_version = o.authz_version + 1
   where o.tenant_id = p_tenant_id and o.id = p_org_id
$$;
comment on function roster._bump_organization(uuid, uuid) is
  'Internal: bumps (and so locks) an organization''s row.';

create function roster._bump_user(p_tenant_id uuid, p_user_id uuid) returns void
  language sql volatile
  set search_path = pg_catalog, pg_temp
as $$
  update roster.users u set authz_version = u.authz_version + 1
   where u.tenant_id = p_tenant_id and u.id = p_user_id
$$;
comment on function roster._bump_user(uuid, uuid) is 'Internal: bumps (and so locks) a user''s row.';

/* RMBNF unless the user has a live membership of the organization (invited and suspended
   count: their rows grant nothing while so). */
create function roster._require_member(p_tenant_id uuid, p_org_id uuid, p_user_id uuid) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from roster.organization_memberships m
                  where m.tenant_id = p_tenant_id and m.organization_id = p_org_id
                    and m.user_id = p_user_id and m.deleted_at is null) then
    raise exception using errcode = 'RMBNF',
      message = format('user %s is not a member of this organization', coalesce(p_user_id::text, 'null'));
  end if;
end
$$;
comment on function roster._require_member(uuid, uuid, uuid) is 'Internal: RMBNF unless the user has a live membership of the organization.';

/* The group of that key in the organization, or RGRNF. */
create function roster._group(p_tenant_id uuid, p_org_id uuid, p_key text) returns roster.groups
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_group roster.groups;
begin
  select g.* into v_group from roster.groups g
   where g.tenant_id = p_tenant_id and g.organization_id = p_org_id and g.key = p_key;
  if not found then
    raise exception using errcode = 'RGRNF',
      message = format('group %s not found', coalesce(quote_literal(p_key), 'null'));
  end if;
  return v_group;
end
$$;
comment on function roster._group(uuid, uuid, text) is 'Internal: the group of that key in the organization, or RGRNF.';

create type roster.group_row as (
  id uuid, key text, name text, description text, parent_key text, member_count bigint,
  created_at timestamptz, updated_at timestamptz
);
comment on type roster.group_row is 'A group as the group functions show it: its parent by key, its count of unexpired members.';

/* The rows create_group, update_group, get_group and list_groups return.
   Inlined into its callers' plans (hence no SET clause): it runs under their pinned search_path. */
create function roster._group_rows(p_tenant_id uuid, p_org_id uuid) returns setof roster.group_row
  language sql stable
as $$
  select g.id, g.key, g.name, g.description, p.key,
         (select count(*) from roster.group_members gm
           where gm.tenant_id = g.tenant_id and gm.group_id = g.id and gm.deleted_at is null
             and (gm.expires_at is null or gm.expires_at > now())),
         g.created_at, g.updated_at
    from roster.groups g
    left join roster.groups p on p.tenant_id = g.tenant_id and p.id = g.parent_id
   where g.tenant_id = p_tenant_id and g.organization_id = p_org_id
$$;
comment on function roster._group_rows(uuid, uuid) is 'Internal: the organization''s groups as roster.group_row.';

-- ============================================================================================
-- Triggers
-- ============================================================================================

create trigger tg_groups__touch before update on roster.groups
  for each row execute function roster.tg__touch_updated_at();

/* No cycle, at most 8 levels, whoever writes; and one version bump for the organization. The
   bump comes first: it locks the organization's row, so the tree read below is not changed
   under us by another writer (READ COMMITTED reads it afresh after the lock). */
create function roster.tg_groups__check_tree() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.groups := case when tg_op = 'DELETE' then old else new end;
  v_above integer;
  v_below integer;
  v_cycle boolean;
begin
  perform roster._bump_organization(v_row.tenant_id, v_row.organization_id);
  if tg_op = 'DELETE' or new.parent_id is null then
    return null;
  end if;
  -- The ancestors of the new parent: if the group is among them, a cycle.
  with recursive up(id, parent_id, depth) as (
    select g.id, g.parent_id, 1 from roster.groups g
     where g.tenant_id = new.tenant_id and g.id = new.parent_id
    union all
    select g.id, g.parent_id, up.depth + 1 from roster.groups g
      join up on g.tenant_id = new.tenant_id and g.id = up.parent_id
     where up.depth <= 16
  )
  select count(*), coalesce(bool_or(up.id = new.id), false) into v_above, v_cycle from up;
  if v_cycle then
    raise exception using errcode = 'RHIER',
      message = format('group %s cannot be under one of its own descendants', new.key);
  end if;
  -- The group's own subtree, below it.
  with recursive down(id, depth) as (
    select new.id, 0
    union all
    select g.id, down.depth + 1 from roster.groups g
      join down on g.tenant_id = new.tenant_id and g.parent_id = down.id
     where down.depth < 16
  )
  select max(depth) into v_below from down;
  if v_above + 1 + v_below > 8 then
    raise exception using errcode = 'RHIER',
      message = format('groups nest at most 8 levels: group %s would make %s', new.key, v_above + 1 + v_below);
  end if;
  return null;
end
$$;
comment on function roster.tg_groups__check_tree() is
  'Trigger: refuses a cycle or more than 8 levels of groups (RHIER); bumps the organization''s version.';

create trigger tg_groups__check_tree after insert or delete or update of parent_id on roster.groups
  for each row execute function roster.tg_groups__check_tree();

/* A group member is a live member of the group's organization, whoever writes. The user's row
   is bumped (and locked) first: a concurrent removal of the membership, which bumps it too,
   either sees this row (and removes it) or is seen here. */
create function roster.tg_group_members__check() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.group_members := case when tg_op = 'DELETE' then old else new end;
begin
  perform roster._bump_user(v_row.tenant_id, v_row.user_id);
  if tg_op = 'UPDATE' and old.user_id <> new.user_id then
    perform roster._bump_user(old.tenant_id, old.user_id);
  end if;
  if tg_op <> 'DELETE' and new.deleted_at is null and not exists (
    select from roster.organization_memberships m
     where m.tenant_id = new.tenant_id and m.organization_id = new.organization_id
       and m.user_id = new.user_id and m.deleted_at is null
  ) then
    raise exception using errcode = 'RMBNF',
      message = format('user %s is not a member of the group''s organization', new.user_id);
  end if;
  return null;
end
$$;
comment on function roster.tg_group_members__check() is
  'Trigger: only live members of the organization are in its groups (RMBNF); bumps the user''s version.';

create trigger tg_group_members__check after insert or update or delete on roster.group_members
  for each row execute function roster.tg_group_members__check();

/* A member who leaves, is removed or is deleted leaves the organization's groups. */
create function roster.tg_organization_memberships__leave_groups() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.organization_memberships := case when tg_op = 'DELETE' then old else new end;
begin
  update roster.group_members gm set deleted_at = now()
   where gm.tenant_id = v_row.tenant_id and gm.organization_id = v_row.organization_id
     and gm.user_id = v_row.user_id and gm.deleted_at is null;
  return null;
end
$$;
comment on function roster.tg_organization_memberships__leave_groups() is
  'Trigger: ending a membership removes the user from the organization''s groups.';

create trigger tg_organization_memberships__leave_groups
  after update of deleted_at or delete on roster.organization_memberships
  for each row
  when (old.deleted_at is null)
  execute function roster.tg_organization_memberships__leave_groups();

-- ============================================================================================
-- Public functions
-- ============================================================================================

create function roster.create_group(
  p_actor_id uuid,
  p_org_id uuid,
  p_key text,
  p_name text,
  p_description text default null,
  p_parent_key text default null
) returns roster.group_row
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'groups:manage');
  v_parent uuid;
  v_group roster.groups;
  v_state text;
  v_constraint text;
begin
  if p_parent_key is not null then
    v_parent := (roster._group(v_access.tenant_id, p_org_id, p_parent_key)).id;
  end if;
  insert into roster.groups (tenant_id, organization_id, key, name, description, parent_id)
  values (v_access.tenant_id, p_org_id, p_key, btrim(p_name), p_description, v_parent)
  returning * into v_group;
  return (select r from roster._group_rows(v_access.tenant_id, p_org_id) r where r.id = v_group.id);
exception when unique_violation or check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  raise exception using errcode = v_state, constraint = v_constraint,
    message = case v_constraint
      when 'uq_groups_organization_key' then format('a group with key %L already exists in this organization', p_key)
      when 'ck_groups_key_format' then format('group key %L must be 2 to 50 characters of a-z, 0-9, _ and -, starting with a letter', p_key)
      when 'ck_groups_name_length' then format('group name %L must not be blank and must be at most 100 characters', left(p_name, 120))
      when 'ck_groups_description_length' then 'group description must be at most 1000 characters'
      else format('the group violates constraint %s', coalesce(v_constraint, '(not null)')) end;
end
$$;
comment on function roster.create_group(uuid, uuid, text, text, text, text) is
  'Creates a group of the organization, under p_parent_key if given (at most 8 levels); returns it as get_group shows it. Needs groups:manage. Errors: RGRNF (parent), RHIER, 23505 uq_groups_organization_key, 23514 ck_groups_*.';

/* name, description, parent_key (null: a top-level group). */
create function roster.update_group(p_actor_id uuid, p_org_id uuid, p_key text, p_changes jsonb)
  returns roster.group_row
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'groups:manage');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_key);
  v_parent uuid := v_group.parent_id;
  v_key text;
  v_state text;
  v_constraint text;
begin
  if jsonb_typeof(p_changes) is distinct from 'object' then
    raise exception using errcode = 'RINVL',
      message = format('changes must be a JSON object, got %s', coalesce(jsonb_typeof(p_changes), 'null'));
  end if;
  for v_key in select jsonb_object_keys(p_changes) loop
    if v_key not in ('name', 'description', 'parent_key') then
      raise exception using errcode = 'RINVL',
        message = format('unknown field %L: expected one of name, description, parent_key', v_key);
    end if;
  end loop;
  if p_changes ? 'name' and jsonb_typeof(p_changes -> 'name') <> 'string' then
    raise exception using errcode = 'RINVL', message = 'name must be a string';
  end if;
  if p_changes ? 'description' and jsonb_typeof(p_changes -> 'description') not in ('string', 'null') then
    raise exception using errcode = 'RINVL', message = 'description must be a string or null';
  end if;
  if p_changes ? 'parent_key' then
    if jsonb_typeof(p_changes -> 'parent_key') = 'null' then
      v_parent := null;
    elsif jsonb_typeof(p_changes -> 'parent_key') = 'string' then
      v_parent := (roster._group(v_access.tenant_id, p_org_id, p_changes ->> 'parent_key')).id;
    else
      raise exception using errcode = 'RINVL', message = 'parent_key must be a string or null';
    end if;
  end if;
  update roster.groups g set
    name = case when p_changes ? 'name' then btrim(p_changes ->> 'name') else g.name end,
    description = case when p_changes ? 'description' then p_changes ->> 'description' else g.description end,
    parent_id = v_parent
   where g.tenant_id = v_group.tenant_id and g.id = v_group.id
  returning * into v_group;
  return (select r from roster._group_rows(v_group.tenant_id, p_org_id) r where r.id = v_group.id);
exception when check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  if v_constraint = 'ck_groups_not_own_parent' then
    raise exception using errcode = 'RHIER', message = format('group %s cannot be its own parent', p_key);
  end if;
  raise exception using errcode = v_state, constraint = v_constraint,
    message = case v_constraint
      when 'ck_groups_name_length' then 'group name must not be blank and must be at most 100 characters'
      when 'ck_groups_description_length' then 'group description must be at most 1000 characters'
      else format('the group violates constraint %s', coalesce(v_constraint, '(not null)')) end;
end
$$;
comment on function roster.update_group(uuid, uuid, text, jsonb) is
  'Partial update of a group: name, description, parent_key (null: top level); returns it as get_group shows it. Needs groups:manage. Errors: RGRNF, RHIER (cycle, its own parent, over 8 levels), RINVL.';

create function roster.delete_group(p_actor_id uuid, p_org_id uuid, p_key text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'groups:manage');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_key);
  v_children text;
begin
  select string_agg(g.key, ', ' order by g.key) into v_children from roster.groups g
   where g.tenant_id = v_group.tenant_id and g.parent_id = v_group.id;
  if v_children is not null then
    raise exception using errcode = 'RGCHD',
      message = format('group %s has child groups (%s): move or delete them first', p_key, v_children);
  end if;
  delete from roster.groups g where g.tenant_id = v_group.tenant_id and g.id = v_group.id;
end
$$;
comment on function roster.delete_group(uuid, uuid, text) is
  'Deletes a group with its members and grants; refused (RGCHD) while it has child groups. Needs groups:manage.';

create function roster.list_groups(p_actor_id uuid, p_org_id uuid, p_limit integer default 50, p_offset integer default 0)
  returns setof roster.group_row
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
begin
  perform roster._check_page(p_limit, p_offset);
  return query
  select * from roster._group_rows(v_access.tenant_id, p_org_id) r
   order by r.key
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_groups(uuid, uuid, integer, integer) is
  'The organization''s groups by key, with their parent''s key and count of unexpired members. Needs organization:read. p_limit 1..1000.';

create function roster.get_group(p_actor_id uuid, p_org_id uuid, p_key text)
  returns roster.group_row
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_key);
begin
  return (select r from roster._group_rows(v_group.tenant_id, p_org_id) r where r.id = v_group.id);
end
$$;
comment on function roster.get_group(uuid, uuid, text) is
  'One group of the organization, as list_groups shows it. Needs organization:read. RGRNF when there is none.';

create function roster.add_group_member(
  p_actor_id uuid,
  p_org_id uuid,
  p_group_key text,
  p_user_id uuid,
  p_expires_at timestamptz default null
) returns roster.group_members
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'groups:manage');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_group_key);
  v_expires_at timestamptz := roster._check_expiry(p_expires_at);
  v_member roster.group_members;
begin
  -- The trigger refuses a non-member too; this says so before a foreign key can (another
  -- tenant's or an unknown user).
  perform roster._require_member(v_access.tenant_id, p_org_id, p_user_id);
  insert into roster.group_members (tenant_id, organization_id, group_id, user_id, expires_at, added_by)
  values (v_access.tenant_id, p_org_id, v_group.id, p_user_id, v_expires_at, p_actor_id)
  returning * into v_member;
  return v_member;
exception when unique_violation then
  raise exception using errcode = 'RISMB', constraint = 'uq_group_members_group_user',
    message = format('user %s is already in group %s', p_user_id, p_group_key);
end
$$;
comment on function roster.add_group_member(uuid, uuid, text, uuid, timestamptz) is
  'Adds a member of the organization to a group, until p_expires_at (null: no expiry). Needs groups:manage. Errors: RGRNF, RMBNF (not a member of the organization), RISMB (already in the group), RINVL.';

create function roster.remove_group_member(p_actor_id uuid, p_org_id uuid, p_group_key text, p_user_id uuid)
  returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'groups:manage');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_group_key);
begin
  update roster.group_members gm set deleted_at = now()
   where gm.tenant_id = v_group.tenant_id and gm.group_id = v_group.id
     and gm.user_id = p_user_id and gm.deleted_at is null;
  if not found then
    raise exception using errcode = 'RMBNF',
      message = format('user %s is not in group %s', coalesce(p_user_id::text, 'null'), p_group_key);
  end if;
end
$$;
comment on function roster.remove_group_member(uuid, uuid, text, uuid) is
  'Removes a user from a group. Needs groups:manage. Errors: RGRNF, RMBNF (not in the group).';

create function roster.list_group_members(
  p_actor_id uuid,
  p_org_id uuid,
  p_group_key text,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (user_id uuid, email text, display_name text, expires_at timestamptz, created_at timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:read');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_group_key);
begin
  perform roster._check_page(p_limit, p_offset);
  return query
  select gm.user_id, u.email, u.display_name, gm.expires_at, gm.created_at
    from roster.group_members gm
    join roster.users u on u.tenant_id = gm.tenant_id and u.id = gm.user_id
   where gm.tenant_id = v_group.tenant_id and gm.group_id = v_group.id and gm.deleted_at is null
   order by lower(u.email), gm.user_id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_group_members(uuid, uuid, text, integer, integer) is
  'The members of a group (expired ones included until purged, with their expires_at), by email. Needs members:read. p_limit 1..1000.';

create function roster.list_user_groups(p_actor_id uuid, p_org_id uuid, p_user_id uuid)
  returns table (key text, name text, parent_key text, expires_at timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
begin
  if p_user_id is distinct from p_actor_id then
    perform roster._deny_unless(v_access, 'members:read');
  end if;
  return query
  select g.key, g.name, p.key, gm.expires_at
    from roster.group_members gm
    join roster.groups g on g.tenant_id = gm.tenant_id and g.id = gm.group_id
    left join roster.groups p on p.tenant_id = g.tenant_id and p.id = g.parent_id
   where gm.tenant_id = v_access.tenant_id and gm.organization_id = p_org_id
     and gm.user_id = p_user_id and gm.deleted_at is null
   order by g.key;
end
$$;
comment on function roster.list_user_groups(uuid, uuid, uuid) is
  'The groups a user is directly in, in the organization (its own, or anyone''s with members:read).';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.create_group(uuid, uuid, text, text, text, text),
  roster.update_group(uuid, uuid, text, jsonb),
  roster.delete_group(uuid, uuid, text),
  roster.list_groups(uuid, uuid, integer, integer),
  roster.get_group(uuid, uuid, text),
  roster.add_group_member(uuid, uuid, text, uuid, timestamptz),
  roster.remove_group_member(uuid, uuid, text, uuid),
  roster.list_group_members(uuid, uuid, text, integer, integer),
  roster.list_user_groups(uuid, uuid, uuid)
to roster_app;
