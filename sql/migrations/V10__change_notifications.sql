-- Change notifications for caches: every change that can alter who may do what, or what an
-- organization's readers see, is announced on channel `roster_changes` when its transaction
-- commits (NOTIFY is transactional: a rolled-back change announces nothing). Each payload names
-- what changed precisely and carries its new authz_version, so a cache can refuse any entry
-- read at an older version, whichever order things arrive in.
--
-- Payloads (JSON):
--   {"kind": "organization", "tenant_id": ..., "organization_id": ..., "version": n}
--   {"kind": "user", "tenant_id": ..., "user_id": ..., "version": n}
--   {"kind": "tenant", "tenant_id": ...}   -- everything of the tenant is stale
--   {"kind": "all"}                        -- permissions changed: everything is stale
-- A hard-deleted row announces version 9223372036854775807: nothing read before is valid again.
--
-- Membership changes need no payload of their own: they bump the authz_version of their
-- organization and their user (V5), whose triggers announce it.

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* One trigger function for both versioned tables; its argument names the kind ('organization'
   or 'user'), which is also the prefix of the id's key in the payload. */
create function roster.tg__notify_version_change() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row jsonb := to_jsonb(case when tg_op = 'DELETE' then old else new end);
begin
  perform pg_notify('roster_changes', jsonb_build_object(
    'kind', tg_argv[0], 'tenant_id', v_row -> 'tenant_id', tg_argv[0] || '_id', v_row -> 'id',
    'version', case when tg_op = 'DELETE' then 9223372036854775807
                    else (v_row ->> 'authz_version')::bigint end)::text);
  return null;
end
$$;
comment on function roster.tg__notify_version_change() is
  'Trigger: announces a change of an organization or user (with its new authz_version) on channel roster_changes.';

create trigger tg_organizations__notify after insert or update or delete on roster.organizations
  for each row execute function roster.tg__notify_version_change('organization');

create trigger tg_users__notify after insert or update or delete on roster.users
  for each row execute function roster.tg__notify_version_change('user');

/* Member lists show the members' and inviters' emails and names: when those change, every
   organization listing them has changed for its readers. */
create function roster.tg_users__bump_organizations() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  update roster.organizations o set authz_version = o.authz_version + 1
   where o.tenant_id = new.tenant_id
     and o.id in (select m.organization_id from roster.organization_memberships m
                   where m.tenant_id = new.tenant_id and m.deleted_at is null
                     and (m.user_id = new.id or m.invited_by_user_id = new.id));
  return null;
end
$$;
comment on function roster.tg_users__bump_organizations() is
  'Trigger: a change of a user''s email or display name bumps the authz_version of the organizations that list them.';

create trigger tg_users__bump_organizations after update of email, display_name on roster.users
  for each row
  when (old.email is distinct from new.email or old.display_name is distinct from new.display_name)
  execute function roster.tg_users__bump_organizations();

/* A user's list of organizations is ordered by name and shows only live ones: renaming,
   deleting or restoring an organization changes its members' lists (even pages that do not
   show it), so it bumps their authz_version too. */
create function roster.tg_organizations__bump_members() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  update roster.users u set authz_version = u.authz_version + 1
   where u.tenant_id = new.tenant_id
     and u.id in (select m.user_id from roster.organization_memberships m
                   where m.tenant_id = new.tenant_id and m.organization_id = new.id
                     and m.deleted_at is null);
  return null;
end
$$;
comment on function roster.tg_organizations__bump_members() is
  'Trigger: renaming, deleting or restoring an organization bumps the authz_version of its members.';

create trigger tg_organizations__bump_members after update of name, deleted_at on roster.organizations
  for each row
  when (old.name is distinct from new.name or old.deleted_at is distinct from new.deleted_at)
  execute function roster.tg_organizations__bump_members();

create function roster.tg_tenants__notify() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('roster_changes', json_build_object('kind', 'tenant', 'tenant_id', old.id)::text);
  return null;
end
$$;
comment on function roster.tg_tenants__notify() is
  'Trigger: announces that everything of a tenant is stale (tenant deleted, restored or edited).';

create trigger tg_tenants__notify after update or delete on roster.tenants
  for each row execute function roster.tg_tenants__notify();

create function roster.tg_permissions__notify() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('roster_changes', json_build_object('kind', 'all')::text);
  return null;
end
$$;
comment on function roster.tg_permissions__notify() is
  'Trigger: announces that every cached permission is stale (the permission catalogue or a role''s grants changed).';

create trigger tg_role_permissions__notify after insert or update or delete or truncate
  on roster.role_permissions
  for each statement execute function roster.tg_permissions__notify();
create trigger tg_permissions__notify after insert or update or delete or truncate
  on roster.permissions
  for each statement execute function roster.tg_permissions__notify();

-- ============================================================================================
-- Public functions: what caches read
-- ============================================================================================

/* Always one row, so that a cache can remember "no such user" too (user_version 0). */
create function roster.caller_identity(p_user_id uuid)
  returns table (tenant_id uuid, is_tenant_admin boolean, user_live boolean, user_version bigint)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select u.tenant_id, coalesce(u.is_tenant_admin, false),
         -- the left joins leave nulls for an unknown id: that user is not live
         u.id is not null and u.deleted_at is null and t.deleted_at is null,
         coalesce(u.authz_version, 0)
    from (select 1) one
    left join roster.users u on u.id = p_user_id
    left join roster.tenants t on t.id = u.tenant_id;
end
$$;
comment on function roster.caller_identity(uuid) is
  'Who a user is, for caches: tenant, tenant admin flag, whether it may act (live user of a live tenant), and its authz_version (0 when there is no such user). No actor check.';

/* Always one row: everything the API needs to decide a request in one organization, with the
   versions it was read at. The joins are left joins, so every test of a joined row checks
   that the row exists (an organization of another tenant leaves o.* null). permissions is empty when the user may not see the organization (not
   live, not an active member, other tenant, organization deleted or missing); a tenant admin
   gets the owner's permissions whether or not it is a member. */
create function roster.member_access(p_user_id uuid, p_org_id uuid)
  returns table (
    tenant_id uuid, is_tenant_admin boolean, user_live boolean, user_version bigint,
    org_version bigint, role text, status text, permissions text[]
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
  select i.tenant_id, i.is_tenant_admin, i.user_live, i.user_version,
         -- an organization of another tenant still has a version: the refusal cached for a
         -- stranger stays valid until that organization changes
         coalesce(o.authz_version,
                  (select max(x.authz_version) from roster.organizations x where x.id = p_org_id),
                  0),
         m.role, m.status,
         coalesce((select array_agg(rp.permission order by rp.permission)
                     from roster.role_permissions rp
                    where i.user_live and o.id is not null and o.deleted_at is null
                      and rp.role = case when i.is_tenant_admin then 'owner'
                                         when m.status = 'active' then m.role end),
                  '{}')
    from roster.caller_identity(p_user_id) i
    left join roster.organizations o on o.tenant_id = i.tenant_id and o.id = p_org_id
    left join roster.organization_memberships m
      on m.tenant_id = o.tenant_id and m.organization_id = o.id and m.user_id = p_user_id
     and m.deleted_at is null;
end
$$;
comment on function roster.member_access(uuid, uuid) is
  'A user''s access to an organization, for caches and the API: tenant, tenant admin flag, live, role and status of its live membership, effective permissions (empty when it may not see the organization), and the user''s and organization''s authz_version. No actor check.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.caller_identity(uuid),
  roster.member_access(uuid, uuid)
to roster_app;
