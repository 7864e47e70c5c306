-- Roles as data. The built-in owner, admin and member become rows of roster.roles (one set per
-- tenant, so that every row carries its tenant and every foreign key can include it), always
-- equal to their canonical definition: a trigger refuses any other change, whoever writes.
-- Beside them, tenant admins define tenant-wide custom roles (available in every organization
-- of the tenant) and organizations define their own. A role grants permission names or
-- wildcards (V19) of the tenant's catalogue.
--
-- The rules, held by the database:
--   * a key is unique in its scope, and a key used tenant-wide (built-ins included) is not
--     reused by an organization, nor the other way round;
--   * a membership's role is a role available to its organization (a built-in, a tenant-wide
--     role of its tenant, or a role of that organization): raw SQL cannot give another tenant's
--     or organization's role;
--   * a role held by memberships cannot be deleted (delete_role reassigns first);
--   * a permission granted by name cannot be retired from the catalogue;
--   * editing a role bumps the version of its organization (or its tenant, for tenant-wide
--     roles): one row, whatever the number of members holding it.
-- The escalation rule (an actor may create, change or give only a role whose every permission
-- it holds) is in the functions, since only they know the actor.
--
-- roster.role_permissions (V6) held the built-in roles' grants for every tenant; it goes: the
-- built-in rows here are the one truth.

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.roles (
  tenant_id       uuid        not null,
  id              uuid        not null default gen_random_uuid(),
  organization_id uuid,         -- null: available in every organization of the tenant
  key             text        not null,
  name            text        not null,
  description     text,
  permissions     text[]      not null default '{}', -- permission names and wildcards (V19)
  builtin         boolean     not null default false, -- owner, admin, member: immutable
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint pk_roles primary key (tenant_id, id),
  constraint fk_roles_tenant foreign key (tenant_id) references roster.tenants (id) on delete cascade,
  constraint fk_roles_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade,
  constraint ck_roles_key_format check (key ~ '^[a-z][a-z0-9_-]{1,49}$'),
  constraint ck_roles_name_length check (btrim(name) <> '' and length(name) <= 100),
  constraint ck_roles_description_length check (length(description) <= 1000),
  constraint ck_roles_permissions_count check (cardinality(permissions) <= 500),
  constraint ck_roles_builtin_tenant_wide check (not builtin or organization_id is null)
);
comment on table roster.roles is
  'Roles: the built-in owner/admin/member of every tenant, tenant-wide custom roles (organization_id null) and an organization''s own. Write through roster.create_role / update_role / delete_role.';

create unique index uq_roles_tenant_key on roster.roles (tenant_id, key) where organization_id is null;
create unique index uq_roles_organization_key on roster.roles (tenant_id, organization_id, key)
  where organization_id is not null;
-- The resolver's lookup: a key in a tenant, either scope.
create index ix_roles_tenant_key on roster.roles (tenant_id, key);

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* The canonical built-in roles: what their rows must always hold. Changing a built-in role's
   grants is a migration that replaces this function and updates the rows to match. */
create function roster._builtin_roles()
  returns table (key text, name text, description text, permissions text[])
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  values
    ('owner', 'Owner', 'Everything, including deleting the organization and managing owners and roles.',
     array['*']),
    ('admin', 'Admin', 'Reads, updates the organization, and manages members who are not owners. Only owners change roles.',
     array['organization:read', 'organization:update', 'members:read', 'members:invite',
           'members:suspend', 'members:remove', 'audit:read']),
    ('member', 'Member', 'Reads the organization and its members.',
     array['organization:read', 'members:read'])
$$;
comment on function roster._builtin_roles() is
  'Internal: the canonical definition of the built-in roles owner, admin and member.';

/* RINVL unless every grant is a name of the tenant's catalogue or a wildcard that covers at
   least one: a typo (`invioce:*`) would otherwise grant nothing, silently. */
create function roster._check_grants(p_tenant_id uuid, p_grants text[]) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_grant text;
begin
  if p_grants is null then
    raise exception using errcode = 'RINVL', message = 'permissions must be a list (empty for none)';
  end if;
  foreach v_grant in array p_grants loop
    if v_grant is null or (v_grant <> '*' and v_grant !~ '^([a-z][a-z0-9_-]*|\*):([a-z][a-z0-9_-]*|\*)$')
       or v_grant = '*:*' then
      raise exception using errcode = 'RINVL',
        message = format('grant %s must be a permission (resource:action), resource:*, *:action or *', coalesce(quote_literal(v_grant), 'null'));
    end if;
    if not exists (select from roster._catalogue(p_tenant_id) c
                    where roster._grants_allow(array[v_grant], c.name)) then
      raise exception using errcode = 'RUPRM',
        message = format('grant %L names no permission of the catalogue: register it first (roster.register_permissions)', v_grant);
    end if;
  end loop;
end
$$;
comment on function roster._check_grants(uuid, text[]) is
  'Internal: RINVL for a malformed grant, RUPRM for one that covers no permission of the tenant''s catalogue.';

/* The role a key names for an organization: its own, else the tenant's (a key is never both). */
create function roster._find_role(p_tenant_id uuid, p_org_id uuid, p_key text) returns roster.roles
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select r.* from roster.roles r
   where r.tenant_id = p_tenant_id and r.key = p_key
     and (r.organization_id is null or r.organization_id is not distinct from p_org_id)
   order by r.organization_id nulls last
   limit 1
$$;
comment on function roster._find_role(uuid, uuid, text) is
  'Internal: the role of that key available to the organization (its own or tenant-wide); null when none. With p_org_id null, tenant-wide roles only.';

create or replace function roster._role_grants(p_tenant_id uuid, p_org_id uuid, p_role text) returns text[]
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select r.permissions from roster._find_role(p_tenant_id, p_org_id, p_role) r), '{}')
$$;

/* RINVL unless the role is available to the organization (replaces V9's list of three). */
create function roster._check_role(p_tenant_id uuid, p_org_id uuid, p_role text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_role is null or (roster._find_role(p_tenant_id, p_org_id, p_role)).key is null then
    raise exception using errcode = 'RINVL',
      message = format('unknown role %s: expected one of %s', coalesce(quote_literal(p_role), 'null'),
                       (select string_agg(r.key, ', ' order by r.builtin desc, r.key)
                          from roster.roles r
                         where r.tenant_id = p_tenant_id
                           and (r.organization_id is null or r.organization_id = p_org_id)));
  end if;
end
$$;
comment on function roster._check_role(uuid, uuid, text) is
  'Internal: RINVL unless the role is available to the organization (a built-in, a tenant-wide role, or its own).';
/* No privilege escalation: the actor must hold every permission the grants give (expanded
   against the catalogue now). A holder of `*` (owners, tenant admins) holds everything. */
create function roster._require_grants_held(p_access roster.access, p_grants text[], p_what text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_missing text[];
begin
  if '*' = any (p_access.grants) then
    return;
  end if;
  select array_agg(n order by n) into v_missing
    from unnest(roster._expand_grants(p_access.tenant_id, p_grants)) n
   where not roster._grants_allow(p_access.grants, n);
  if v_missing is not null then
    raise exception using errcode = 'RESCL',
      message = format('%s grants permissions role %s does not hold: %s', p_what,
                       p_access.effective_role, array_to_string(v_missing, ', '));
  end if;
end
$$;
comment on function roster._require_grants_held(roster.access, text[], text) is
  'Internal: RESCL unless the actor holds every permission the grants give (no privilege escalation).';

-- ============================================================================================
-- Triggers
-- ============================================================================================

create trigger tg_roles__touch before update on roster.roles
  for each row execute function roster.tg__touch_updated_at();

/* Built-in rows always equal the canonical definition; a custom role never takes a built-in
   key, and a key is never both tenant-wide and an organization's. Grants are checked against
   the catalogue. */
create function roster.tg_roles__check() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_builtin record;
begin
  if tg_op = 'DELETE' then
    if old.builtin and exists (select from roster.tenants t where t.id = old.tenant_id) then
      raise exception using errcode = 'RBLTN',
        message = format('%s is a built-in role: it cannot be changed or deleted', old.key);
    end if;
    return old;
  end if;
  select * into v_builtin from roster._builtin_roles() b where b.key = new.key;
  if new.builtin or (tg_op = 'UPDATE' and old.builtin) then
    if not (new.builtin and v_builtin.key is not null and new.organization_id is null
            and new.name = v_builtin.name and new.description is not distinct from v_builtin.description
            and new.permissions = v_builtin.permissions) then
      raise exception using errcode = 'RBLTN',
        message = format('%s is a built-in role: it cannot be changed or deleted', coalesce(old.key, new.key));
    end if;
    return new;
  end if;
  if v_builtin.key is not null then
    raise exception using errcode = '23505', constraint = 'uq_roles_tenant_key',
      message = format('role key %L is a built-in role''s', new.key);
  end if;
  -- Two writers of the same key in two scopes must not both miss each other.
  perform pg_advisory_xact_lock(hashtextextended('roster.roles:' || new.tenant_id::text || ':' || new.key, 0));
  if exists (select from roster.roles r
              where r.tenant_id = new.tenant_id and r.key = new.key and r.id <> new.id
                and (new.organization_id is null) <> (r.organization_id is null)) then
    raise exception using errcode = '23505', constraint = 'uq_roles_scope_key',
      message = case when new.organization_id is null
                     then format('role key %L is used by an organization of the tenant', new.key)
                     else format('role key %L is a tenant-wide role''s', new.key) end;
  end if;
  perform roster._check_grants(new.tenant_id, new.permissions);
  return new;
end
$$;
comment on function roster.tg_roles__check() is
  'Trigger: built-in roles stay canonical (RBLTN); keys unique across scopes (23505); grants in the catalogue (RINVL/RUPRM).';

create trigger tg_roles__check before insert or update or delete on roster.roles
  for each row execute function roster.tg_roles__check();

/* A role still held by a membership cannot go, whoever deletes it (an organization's deletion
   cascades to both, and is fine). */
create function roster.tg_roles__refuse_delete_in_use() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_held bigint;
begin
  select count(*) into v_held
    from roster.organization_memberships m
   where m.tenant_id = old.tenant_id and m.role = old.key and m.deleted_at is null
     and (old.organization_id is null or m.organization_id = old.organization_id)
     and exists (select from roster.organizations o
                  where o.tenant_id = m.tenant_id and o.id = m.organization_id);
  if v_held > 0 then
    raise exception using errcode = 'RRLUS',
      message = format('role %s is held by %s membership(s): reassign them first (delete_role''s p_reassign_to)', old.key, v_held);
  end if;
  return old;
end
$$;
comment on function roster.tg_roles__refuse_delete_in_use() is
  'Trigger: RRLUS when a deleted role is still held by live memberships.';

create trigger tg_roles__refuse_delete_in_use before delete on roster.roles
  for each row when (not old.builtin)
  execute function roster.tg_roles__refuse_delete_in_use();

/* Who holds a role learns of its edit through one version: its organization's, or for a
   tenant-wide role its tenant's. */
create function roster.tg_roles__bump_version() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row roster.roles := case when tg_op = 'DELETE' then old else new end;
begin
  if v_row.organization_id is null then
    update roster.tenants t set authz_version = t.authz_version + 1 where t.id = v_row.tenant_id;
  else
    update roster.organizations o set authz_version = o.authz_version + 1
     where o.tenant_id = v_row.tenant_id and o.id = v_row.organization_id;
  end if;
  return null;
end
$$;
comment on function roster.tg_roles__bump_version() is
  'Trigger: a role change bumps its organization''s authz_version, or its tenant''s for a tenant-wide role.';

-- Not for rows written by another trigger: a new tenant's built-in roles (the tenant is new),
-- or the cascade of an organization's or tenant's deletion (it is gone).
create trigger tg_roles__bump_version after insert or update or delete on roster.roles
  for each row when (pg_trigger_depth() = 0)
  execute function roster.tg_roles__bump_version();

/* Every tenant gets the built-in roles. */
create function roster.tg_tenants__create_builtin_roles() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  insert into roster.roles (tenant_id, key, name, description, permissions, builtin)
  select new.id, b.key, b.name, b.description, b.permissions, true from roster._builtin_roles() b;
  return null;
end
$$;
comment on function roster.tg_tenants__create_builtin_roles() is
  'Trigger: a new tenant gets the built-in roles owner, admin and member.';

create trigger tg_tenants__create_builtin_roles after insert on roster.tenants
  for each row execute function roster.tg_tenants__create_builtin_roles();

/* A membership's role must be available to its organization, whoever writes. Deferrable, like
   the last-owner guard, so that a DBA can create a role and assign it in either order. */
create function roster.tg_organization_memberships__check_role() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.deleted_at is null
     and (roster._find_role(new.tenant_id, new.organization_id, new.role)).key is null then
    raise exception using errcode = 'RINVL', constraint = 'fk_organization_memberships_role',
      message = format('unknown role %L: no such role in this organization or its tenant', new.role);
  end if;
  return null;
end
$$;
comment on function roster.tg_organization_memberships__check_role() is
  'Trigger: a live membership''s role is a role available to its organization (RINVL otherwise).';

create constraint trigger tg_organization_memberships__check_role
  after insert or update of role, organization_id, deleted_at on roster.organization_memberships
  deferrable initially immediate
  for each row execute function roster.tg_organization_memberships__check_role();

/* A permission a role grants by name stays in the catalogue (V19's retire_permission). */
create function roster.tg_tenant_permissions__refuse_retire_in_use() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_roles text;
begin
  select string_agg(coalesce(o.slug || '/', '') || r.key, ', ' order by r.key) into v_roles
    from roster.roles r
    left join roster.organizations o on o.tenant_id = r.tenant_id and o.id = r.organization_id
   where r.tenant_id = old.tenant_id and old.name = any (r.permissions);
  if v_roles is not null and exists (select from roster.tenants t where t.id = old.tenant_id) then
    raise exception using errcode = 'RPMUS',
      message = format('permission %s is granted by role(s) %s: remove it from them first', old.name, v_roles);
  end if;
  return old;
end
$$;
comment on function roster.tg_tenant_permissions__refuse_retire_in_use() is
  'Trigger: RPMUS when a retired permission is still granted by name by a role.';

create trigger tg_tenant_permissions__refuse_retire_in_use before delete on roster.tenant_permissions
  for each row execute function roster.tg_tenant_permissions__refuse_retire_in_use();

-- ============================================================================================
-- Data: the built-in roles of existing tenants; the end of role_permissions
-- ============================================================================================
insert into roster.roles (tenant_id, key, name, description, permissions, builtin)
select t.id, b.key, b.name, b.description, b.permissions, true
  from roster.tenants t cross join roster._builtin_roles() b;

alter table roster.organization_memberships drop constraint ck_organization_memberships_role;
drop trigger tg_role_permissions__notify on roster.role_permissions;
drop table roster.role_permissions;

revoke execute on all functions in schema roster from public;
