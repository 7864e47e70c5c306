-- Permissions: what each role may do, as data, so that custom roles and groups can be added
-- later without rewriting the functions. Every check goes through roster._require_permission
-- (actor-checked functions) or roster.has_permission (the API and other services).
--
-- permissions and role_permissions are global catalogues, the same for every tenant, so they
-- carry no tenant_id: under Citus they would be reference tables, copied to every node.

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.permissions (
  name        text not null, -- resource:action
  description text not null,
  constraint pk_permissions primary key (name),
  constraint ck_permissions_name_format check (name ~ '^[a-z_]+:[a-z_]+$')
);
comment on table roster.permissions is 'The catalogue of permission names the functions check.';

create table roster.role_permissions (
  role       text not null,
  permission text not null,
  constraint pk_role_permissions primary key (role, permission),
  constraint fk_role_permissions_permission foreign key (permission)
    references roster.permissions (name),
  constraint ck_role_permissions_role check (role in ('owner', 'admin', 'member'))
);
comment on table roster.role_permissions is
  'Which role holds which permission. A tenant admin holds the owner''s permissions in every organization of its tenant.';

insert into roster.permissions (name, description) values
  ('organization:read',     'see the organization'),
  ('organization:update',   'change the organization''s details'),
  ('organization:delete',   'delete the organization'),
  ('members:read',          'list the members'),
  ('members:invite',        'add or invite members'),
  ('members:update_role',   'change a member''s role'),
  ('members:suspend',       'suspend or reactivate a member'),
  ('members:remove',        'remove a member'),
  ('members:manage_owners', 'grant the owner role, or change, suspend or remove an owner'),
  ('audit:read',            'read the organization''s audit trail');

insert into roster.role_permissions (role, permission)
select 'owner', p.name from roster.permissions p
union all
select 'admin', p.name from roster.permissions p
 where p.name not in ('organization:delete', 'members:manage_owners')
union all
select 'member', p.name from roster.permissions p
 where p.name in ('organization:read', 'members:read');

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* RDNID unless p_role holds p_permission. Used after the organization is known to be visible. */
create function roster._deny_unless(p_role text, p_permission text, p_org_slug text) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from roster.permissions p where p.name = p_permission) then
    raise exception using errcode = 'RUPRM',
      message = format('unknown permission %L', p_permission);
  end if;
  if not exists (select from roster.role_permissions rp
                  where rp.role = p_role and rp.permission = p_permission) then
    raise exception using errcode = 'RDNID',
      message = format('role %s may not %s (permission %s) in organization %s',
                       p_role, (select p.description from roster.permissions p where p.name = p_permission),
                       p_permission, p_org_slug);
  end if;
end
$$;
comment on function roster._deny_unless(text, text, text) is
  'Internal: raises RDNID unless the role holds the permission (RUPRM for an unknown permission).';

/* The one entry point of every actor-checked function: resolves the actor, makes sure it may see
   the organization (RNFND otherwise, the same error as a missing id, so that non-members learn
   nothing), then checks the permission (RDNID). Returns the tenant and the actor's effective
   role ('owner' for a tenant admin). */
create function roster._require_permission(
  p_actor_id uuid,
  p_org_id uuid,
  p_permission text,
  out tenant_id uuid,
  out actor_role text,
  out org_slug text
)
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
begin
  select o.tenant_id, case when v_actor.is_tenant_admin then 'owner' else m.role end, o.slug
    into tenant_id, actor_role, org_slug
    from roster.organizations o
    left join roster.organization_memberships m
      on m.tenant_id = o.tenant_id and m.organization_id = o.id and m.user_id = v_actor.id
     and m.deleted_at is null and m.status = 'active'
   where o.tenant_id = v_actor.tenant_id and o.id = p_org_id and o.deleted_at is null;
  if actor_role is null then
    raise exception using errcode = 'RNFND',
      message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
  end if;
  perform roster._deny_unless(actor_role, p_permission, org_slug);
end
$$;
comment on function roster._require_permission(uuid, uuid, text) is
  'Internal: RNACT/RNFND/RDNID unless the actor holds the permission in the organization; returns tenant_id, actor_role, org_slug.';

-- ============================================================================================
-- Public functions: the authorization hot path
-- ============================================================================================

/* One indexed lookup. A tenant admin who is not a member has no role (member_role answers
   "what membership"), though has_permission grants them the owner's permissions. */
create function roster.member_role(p_user_id uuid, p_org_id uuid) returns text
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return (
    select m.role
      from roster.users u
      join roster.tenants t on t.id = u.tenant_id and t.deleted_at is null
      join roster.organizations o
        on o.tenant_id = u.tenant_id and o.id = p_org_id and o.deleted_at is null
      join roster.organization_memberships m
        on m.tenant_id = u.tenant_id and m.organization_id = o.id and m.user_id = u.id
       and m.deleted_at is null and m.status = 'active'
     where u.id = p_user_id and u.deleted_at is null
  );
end
$$;
comment on function roster.member_role(uuid, uuid) is
  'The role (owner/admin/member) of an active membership of a live user in a live organization; NULL otherwise. No actor check: for the API and other services.';

/* One indexed lookup. An unknown permission name is a caller's bug and raises RUPRM rather than
   answering false forever; that check costs nothing on the allowed path. */
create function roster.has_permission(p_user_id uuid, p_org_id uuid, p_permission text)
  returns boolean
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (
    select
      from roster.users u
      join roster.tenants t on t.id = u.tenant_id and t.deleted_at is null
      join roster.organizations o
        on o.tenant_id = u.tenant_id and o.id = p_org_id and o.deleted_at is null
      left join roster.organization_memberships m
        on m.tenant_id = u.tenant_id and m.organization_id = o.id and m.user_id = u.id
       and m.deleted_at is null and m.status = 'active'
      join roster.role_permissions rp
        on rp.role = case when u.is_tenant_admin then 'owner' else m.role end
       and rp.permission = p_permission
     where u.id = p_user_id and u.deleted_at is null
  ) then
    return true;
  end if;
  if not exists (select from roster.permissions p where p.name = p_permission) then
    raise exception using errcode = 'RUPRM',
      message = format('unknown permission %L', p_permission);
  end if;
  return false;
end
$$;
comment on function roster.has_permission(uuid, uuid, text) is
  'True when the live user holds the permission in the live organization: through an active membership''s role, or as a tenant admin (owner''s permissions). RUPRM for an unknown permission name.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function roster.member_role(uuid, uuid) to roster_app;
grant execute on function roster.has_permission(uuid, uuid, text) to roster_app;
