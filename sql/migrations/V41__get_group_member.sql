-- One member of a group, so that the Location a new group member's POST answers with
-- (/organizations/{org_id}/groups/{key}/members/{user_id}) can be read back, as
-- list_group_members shows it.

create function roster.get_group_member(p_actor_id uuid, p_org_id uuid, p_group_key text, p_user_id uuid)
  returns table (user_id uuid, email text, display_name text, expires_at timestamptz, created_at timestamptz)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'members:read');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_group_key);
begin
  return query
  select gm.user_id, u.email, u.display_name, gm.expires_at, gm.created_at
    from roster.group_members gm
    join roster.users u on u.tenant_id = gm.tenant_id and u.id = gm.user_id
   where gm.tenant_id = v_group.tenant_id and gm.group_id = v_group.id
     and gm.user_id = p_user_id and gm.deleted_at is null;
  if not found then
    raise exception using errcode = 'RMBNF',
      message = format('user %s is not in group %s', coalesce(p_user_id::text, 'null'), p_group_key);
  end if;
end
$$;
comment on function roster.get_group_member(uuid, uuid, text, uuid) is
  'One member of a group as list_group_members shows it (an expired one until purged). Needs members:read. Errors: RGRNF, RMBNF (not in the group).';

grant execute on function roster.get_group_member(uuid, uuid, text, uuid) to roster_app;
