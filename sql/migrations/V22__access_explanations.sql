-- What other services ask besides "may they": which permissions a user holds in an
-- organization, why a check answers what it answers, and who holds a permission. All go
-- through the resolver (V14), so they agree with has_permission by construction.

-- ============================================================================================
-- Types
-- ============================================================================================
alter type roster.access add attribute org_live boolean;
comment on type roster.access is
  'A user''s standing in an organization, as roster._access resolves it for every check (org_live: the organization exists in the user''s tenant and is not deleted).';

create type roster.access_explanation as (
  allowed   boolean,
  reason    text, -- allowed: member_role | tenant_admin; denied: not_a_member | invitation_pending | suspended | organization_deleted | user_deleted | role_lacks_permission
  via_role  text, -- the role whose grants decided (allowed, or lacking)
  via_grant text  -- the grant that matched: the name itself, resource:*, *:action or *
);
comment on type roster.access_explanation is 'Why roster.explain_access answers what it does.';

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

create or replace function roster._access(p_user_id uuid, p_org_id uuid) returns roster.access
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v roster.access;
  v_rows bigint;
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

  select o.authz_version, o.slug, o.deleted_at is null, m.role, m.status
    into v.org_version, v.org_slug, v.org_live, v.role, v.status
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
  end if;

  v.effective_role := case
    when not v.user_live or not v.org_live then null
    when v.is_tenant_admin then 'owner'
    when v.status = 'active' then v.role
  end;
  v.visible := v.effective_role is not null;
  v.grants := case when v.visible then roster._role_grants(v.tenant_id, p_org_id, v.effective_role)
                   else '{}' end;
  return v;
end
$$;

/* The grant of p_grants that gives p_permission, most specific first. */
create function roster._matching_grant(p_grants text[], p_permission text) returns text
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select g from unnest(array[p_permission, split_part(p_permission, ':', 1) || ':*',
                             '*:' || split_part(p_permission, ':', 2), '*']) with ordinality as c(g, n)
   where g = any (p_grants)
   order by n
   limit 1
$$;
comment on function roster._matching_grant(text[], text) is
  'Internal: which grant gives the permission: the name itself, then resource:*, *:action, *.';

-- ============================================================================================
-- Public functions
-- ============================================================================================

create function roster.effective_permissions(p_user_id uuid, p_org_id uuid) returns setof text
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
begin
  return query select unnest(roster._expand_grants(v_access.tenant_id, v_access.grants));
end
$$;
comment on function roster.effective_permissions(uuid, uuid) is
  'Every permission of the tenant''s catalogue the user holds in the organization, wildcards expanded, sorted; none when it may not see the organization. No actor check.';

create function roster.explain_access(p_user_id uuid, p_org_id uuid, p_permission text)
  returns roster.access_explanation
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v roster.access := roster._access(p_user_id, p_org_id);
  v_why roster.access_explanation := (false, null, null, null);
begin
  perform roster._require_known_permission(v.tenant_id, p_permission);
  if v.tenant_id is not null and not v.user_live then
    v_why.reason := 'user_deleted';
  elsif v.tenant_id is null or v.org_version = 0 then
    v_why.reason := 'not_a_member';
  elsif not v.org_live then
    v_why.reason := 'organization_deleted';
  elsif v.visible and roster._grants_allow(v.grants, p_permission) then
    v_why := (true, case when v.is_tenant_admin then 'tenant_admin' else 'member_role' end,
              v.effective_role, roster._matching_grant(v.grants, p_permission));
  else
    v_why.reason := case v.status when 'invited' then 'invitation_pending'
                                  when 'suspended' then 'suspended'
                                  when 'active' then 'role_lacks_permission'
                                  else 'not_a_member' end;
    v_why.via_role := v.role;
  end if;
  return v_why;
end
$$;
comment on function roster.explain_access(uuid, uuid, text) is
  'Why has_permission answers what it does: (allowed, reason, via_role, via_grant). Allowed: reason member_role or tenant_admin, the role and the grant that matched. Denied: not_a_member, invitation_pending, suspended, organization_deleted, user_deleted or role_lacks_permission. RUPRM for an unknown permission. No actor check.';

create function roster.list_subjects_with_permission(
  p_actor_id uuid,
  p_org_id uuid,
  p_permission text,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (user_id uuid, email text, display_name text, via_role text, tenant_admin boolean)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:read');
begin
  perform roster._check_page(p_limit, p_offset);
  perform roster._require_known_permission(v_access.tenant_id, p_permission);
  return query
  select s.user_id, s.email, s.display_name, s.via_role, s.tenant_admin
    from (
      select u.id as user_id, u.email, u.display_name, m.role as via_role, false as tenant_admin
        from roster.organization_memberships m
        join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id
         and u.deleted_at is null and not u.is_tenant_admin
       where m.tenant_id = v_access.tenant_id and m.organization_id = p_org_id
         and m.status = 'active' and m.deleted_at is null
         and roster._grants_allow(roster._role_grants(m.tenant_id, m.organization_id, m.role), p_permission)
      union all
      select u.id, u.email, u.display_name, 'owner', true
        from roster.users u
       where u.tenant_id = v_access.tenant_id and u.is_tenant_admin and u.deleted_at is null
    ) s
   order by lower(s.email), s.user_id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_subjects_with_permission(uuid, uuid, text, integer, integer) is
  'Who holds the permission in the organization: active members whose role grants it (via_role) and the tenant''s admins (tenant_admin, as owners), by email. Needs members:read. RUPRM for an unknown permission. p_limit 1..1000.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.effective_permissions(uuid, uuid),
  roster.explain_access(uuid, uuid, text),
  roster.list_subjects_with_permission(uuid, uuid, text, integer, integer)
to roster_app;
