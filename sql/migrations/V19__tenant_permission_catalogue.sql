-- Each tenant's services register their own permissions (`invoice:approve`, `model:read`)
-- beside Roster's built-in ones, and roles grant them by name or by wildcard: `invoice:*`
-- (every action on invoice, including actions registered later), `*:read` (the read action of
-- every resource), `*` (everything). Checks always name one permission; a name in no catalogue
-- is an error (RUPRM), never a silent answer.
--
-- The catalogue of a tenant is roster.permissions (built in, the same everywhere, changed only
-- by migrations) plus its rows of roster.tenant_permissions. Built-in resource names are
-- reserved. Every change to a tenant's catalogue bumps the tenant's authz_version (V13), once
-- per statement, so that cached answers of that tenant, and of no other, go stale.

-- ============================================================================================
-- Tables
-- ============================================================================================
insert into roster.permissions (name, description) values
  ('roles:manage', 'create, change and delete the organization''s custom roles');

create table roster.tenant_permissions (
  tenant_id   uuid        not null,
  name        text        not null, -- resource:action
  description text        not null default '',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint pk_tenant_permissions primary key (tenant_id, name),
  constraint fk_tenant_permissions_tenant foreign key (tenant_id)
    references roster.tenants (id) on delete cascade,
  constraint ck_tenant_permissions_name_format
    check (name ~ '^[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*$' and length(name) <= 100),
  constraint ck_tenant_permissions_name_not_reserved
    check (split_part(name, ':', 1) not in
           ('organization', 'members', 'audit', 'roles', 'groups', 'grants', 'invitations')),
  constraint ck_tenant_permissions_description_length check (length(description) <= 500)
);
comment on table roster.tenant_permissions is
  'The permissions a tenant''s services registered (resource:action), beside the built-in roster.permissions. Write through roster.register_permissions / retire_permission.';

-- ============================================================================================
-- Triggers
-- ============================================================================================

create trigger tg_tenant_permissions__touch before update on roster.tenant_permissions
  for each row execute function roster.tg__touch_updated_at();

/* One bump per tenant per statement: registering a hundred permissions is one tenant update. */
create function roster.tg_tenant_permissions__bump_tenant() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  update roster.tenants t set authz_version = t.authz_version + 1
   where t.id in (select distinct c.tenant_id from changed c);
  return null;
end
$$;
comment on function roster.tg_tenant_permissions__bump_tenant() is
  'Trigger: a change to a tenant''s permission catalogue bumps the tenant''s authz_version (once per statement).';

-- A statement trigger with a transition table serves one event only: three of them.
create trigger tg_tenant_permissions__bump_tenant_on_insert after insert on roster.tenant_permissions
  referencing new table as changed
  for each statement execute function roster.tg_tenant_permissions__bump_tenant();
create trigger tg_tenant_permissions__bump_tenant_on_update after update on roster.tenant_permissions
  referencing new table as changed
  for each statement execute function roster.tg_tenant_permissions__bump_tenant();
create trigger tg_tenant_permissions__bump_tenant_on_delete after delete on roster.tenant_permissions
  referencing old table as changed
  for each statement execute function roster.tg_tenant_permissions__bump_tenant();

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Whether p_grants grant p_permission: by name, `resource:*`, `*:action` or `*`. An array
   overlap on four candidates: no loop, and inlinable. */
create or replace function roster._grants_allow(p_grants text[], p_permission text) returns boolean
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select p_grants && array[p_permission, '*',
                           split_part(p_permission, ':', 1) || ':*',
                           '*:' || split_part(p_permission, ':', 2)]
$$;
comment on function roster._grants_allow(text[], text) is
  'Internal: whether grants (names, resource:*, *:action, *) grant the permission.';

/* Every name a check may use in the tenant. */
create function roster._catalogue(p_tenant_id uuid) returns table (name text, description text, builtin boolean)
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select p.name, p.description, true from roster.permissions p
  union all
  select tp.name, tp.description, false from roster.tenant_permissions tp
   where tp.tenant_id = p_tenant_id
$$;
comment on function roster._catalogue(uuid) is
  'Internal: the tenant''s permission catalogue: the built-in permissions and those its services registered.';

create or replace function roster._expand_grants(p_tenant_id uuid, p_grants text[]) returns text[]
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(c.name order by c.name), '{}')
    from roster._catalogue(p_tenant_id) c
   where roster._grants_allow(p_grants, c.name)
$$;

create or replace function roster._require_known_permission(p_tenant_id uuid, p_permission text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from roster.permissions p where p.name = p_permission)
     and not exists (select from roster.tenant_permissions tp
                      where tp.tenant_id = p_tenant_id and tp.name = p_permission) then
    raise exception using errcode = 'RUPRM',
      message = format('unknown permission %s: register it first (roster.register_permissions)',
                       coalesce(quote_literal(p_permission), 'null'));
  end if;
end
$$;

/* The description of a permission, for messages. */
create or replace function roster._deny_unless(p_access roster.access, p_permission text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform roster._require_known_permission(p_access.tenant_id, p_permission);
  if not roster._grants_allow(p_access.grants, p_permission) then
    raise exception using errcode = 'RDNID',
      message = format('role %s may not %s (permission %s) in organization %s',
                       p_access.effective_role,
                       coalesce(nullif((select c.description from roster._catalogue(p_access.tenant_id) c
                                         where c.name = p_permission), ''), 'do that'),
                       p_permission, p_access.org_slug);
  end if;
end
$$;

/* RTNNF unless the tenant is live; RDNID unless p_actor_id, when given, is a tenant admin of
   it. With p_tenant_id null the actor's tenant is meant. Returns the tenant. */
create function roster._require_tenant_manager(p_tenant_id uuid, p_actor_id uuid) returns uuid
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_actor roster.users;
begin
  if p_actor_id is not null then
    v_actor := roster._actor(p_actor_id);
    if p_tenant_id is not null and p_tenant_id <> v_actor.tenant_id then
      raise exception using errcode = 'RTNNF',
        message = format('tenant %s does not exist or has been deleted', p_tenant_id);
    end if;
    if not v_actor.is_tenant_admin then
      raise exception using errcode = 'RDNID',
        message = 'only a tenant admin may manage the tenant''s permissions and roles';
    end if;
    return v_actor.tenant_id;
  end if;
  if not exists (select from roster.tenants t where t.id = p_tenant_id and t.deleted_at is null) then
    raise exception using errcode = 'RTNNF',
      message = format('tenant %s does not exist or has been deleted', coalesce(p_tenant_id::text, 'null'));
  end if;
  return p_tenant_id;
end
$$;
comment on function roster._require_tenant_manager(uuid, uuid) is
  'Internal: the live tenant to manage (p_tenant_id, or the actor''s), RTNNF/RNACT/RDNID otherwise: a given actor must be its tenant admin.';

-- ============================================================================================
-- Public functions
-- ============================================================================================

/* Idempotent: registering a name again updates its description. Called by a tenant's services
   (through the provisioning role, or the API for service tokens: p_actor_id null) and by
   tenant admins (the API passes the actor). */
create function roster.register_permissions(
  p_tenant_id uuid,
  p_permissions jsonb,
  p_actor_id uuid default null
)
  returns table (name text, description text, builtin boolean)
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_tenant uuid := roster._require_tenant_manager(p_tenant_id, p_actor_id);
  v_item jsonb;
  v_index integer := 0;
  v_name text;
begin
  if jsonb_typeof(p_permissions) is distinct from 'array' then
    raise exception using errcode = 'RINVL',
      message = format('permissions must be a JSON array of {"name", "description"}, got %s', coalesce(jsonb_typeof(p_permissions), 'null'));
  end if;
  if jsonb_array_length(p_permissions) not between 1 and 1000 then
    raise exception using errcode = 'RINVL',
      message = format('permissions must hold 1 to 1000 items, got %s', jsonb_array_length(p_permissions));
  end if;
  for v_item in select value from jsonb_array_elements(p_permissions) loop
    if jsonb_typeof(v_item) <> 'object' or jsonb_typeof(v_item -> 'name') is distinct from 'string'
       or (v_item ? 'description' and jsonb_typeof(v_item -> 'description') not in ('string', 'null'))
       or exists (select from jsonb_object_keys(v_item) k where k not in ('name', 'description')) then
      raise exception using errcode = 'RINVL',
        message = format('permissions[%s] must be {"name": string, "description": string}, got %s', v_index, v_item);
    end if;
    v_name := v_item ->> 'name';
    if v_name !~ '^[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*$' or length(v_name) > 100 then
      raise exception using errcode = 'RINVL',
        message = format('permissions[%s].name %L must be resource:action, two segments of a-z, 0-9, _ and - starting with a letter, at most 100 characters', v_index, v_name);
    end if;
    if split_part(v_name, ':', 1) in ('organization', 'members', 'audit', 'roles', 'groups', 'grants', 'invitations') then
      raise exception using errcode = 'RINVL',
        message = format('permissions[%s].name %L uses the reserved resource %s (built in to Roster)', v_index, v_name, split_part(v_name, ':', 1));
    end if;
    if length(coalesce(v_item ->> 'description', '')) > 500 then
      raise exception using errcode = 'RINVL',
        message = format('permissions[%s].description must be at most 500 characters', v_index);
    end if;
    v_index := v_index + 1;
  end loop;

  insert into roster.tenant_permissions as tp (tenant_id, name, description)
  select distinct on (i ->> 'name') v_tenant, i ->> 'name', coalesce(i ->> 'description', '')
    from jsonb_array_elements(p_permissions) with ordinality as a(i, n)
   order by i ->> 'name', n desc
  on conflict on constraint pk_tenant_permissions do update set description = excluded.description
   where tp.description is distinct from excluded.description;

  return query
  select c.name, c.description, c.builtin from roster._catalogue(v_tenant) c
   where c.name in (select i ->> 'name' from jsonb_array_elements(p_permissions) i)
   order by c.name;
end
$$;
comment on function roster.register_permissions(uuid, jsonb, uuid) is
  'Registers (or re-describes) a tenant''s permissions: p_permissions = [{"name": "invoice:approve", "description": "..."}], 1..1000 items; names resource:action, built-in resources reserved. Idempotent. p_actor_id, when given, must be a tenant admin (p_tenant_id null: the actor''s tenant). Returns the registered rows. Errors: RTNNF, RNACT, RDNID, RINVL.';

create function roster.list_permissions(p_tenant_id uuid, p_actor_id uuid default null)
  returns table (name text, description text, builtin boolean)
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_tenant uuid := roster._require_tenant_manager(p_tenant_id, p_actor_id);
begin
  return query select c.name, c.description, c.builtin from roster._catalogue(v_tenant) c order by c.name;
end
$$;
comment on function roster.list_permissions(uuid, uuid) is
  'The tenant''s whole permission catalogue, built-ins included (builtin true), by name. p_actor_id, when given, must be a tenant admin. Errors: RTNNF, RNACT, RDNID.';

/* Refused while a role grants the name itself (a wildcard grant does not hold it back: it
   simply stops covering it). Roles come in V20; until then nothing can hold it. */
create function roster.retire_permission(p_tenant_id uuid, p_name text, p_actor_id uuid default null)
  returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_tenant uuid := roster._require_tenant_manager(p_tenant_id, p_actor_id);
begin
  if exists (select from roster.permissions p where p.name = p_name) then
    raise exception using errcode = 'RBLTN',
      message = format('%s is a built-in permission: it cannot be retired', p_name);
  end if;
  delete from roster.tenant_permissions tp where tp.tenant_id = v_tenant and tp.name = p_name;
  if not found then
    raise exception using errcode = 'RUPRM',
      message = format('unknown permission %s', coalesce(quote_literal(p_name), 'null'));
  end if;
end
$$;
comment on function roster.retire_permission(uuid, text, uuid) is
  'Removes a permission from the tenant''s catalogue; refused (RPMUS) while a role grants it by name, RBLTN for a built-in, RUPRM for a name not in the catalogue. p_actor_id, when given, must be a tenant admin.';

/* For caches: the tenant's catalogue with the version it was read at. */
create or replace function roster.permission_catalogue(p_tenant_id uuid)
  returns table (names text[], tenant_version bigint)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select (select coalesce(array_agg(c.name order by c.name), '{}') from roster._catalogue(p_tenant_id) c),
         coalesce((select t.authz_version from roster.tenants t where t.id = p_tenant_id), 0);
end
$$;

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.register_permissions(uuid, jsonb, uuid),
  roster.list_permissions(uuid, uuid),
  roster.retire_permission(uuid, text, uuid)
to roster_app, roster_provisioner;
