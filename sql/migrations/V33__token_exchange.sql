/* Organization-scoped access tokens (POST /auth/token): the exchange picks the organization a
   token is for and records it in the membership's last_active_at, which is what makes it the
   user's last active organization next time. That write is bookkeeping, not a change of
   access: it bumps no version (V23's trigger lists the columns that do), keeps updated_at, and
   writes no audit event, or every sign-in would make the organization's other tokens stale and
   fill the trail. (Anyone else's update of last_active_at, a DBA's say, is still audited.) */

create function roster._only_activity_changed(
  p_old roster.organization_memberships,
  p_new roster.organization_memberships
) returns boolean
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  -- The cheap test first: most updates leave last_active_at alone.
  if p_new.last_active_at is not distinct from p_old.last_active_at then
    return false;
  end if;
  return (to_jsonb(p_new) - 'last_active_at' - 'updated_at')
       = (to_jsonb(p_old) - 'last_active_at' - 'updated_at');
end
$$;
comment on function roster._only_activity_changed(roster.organization_memberships, roster.organization_memberships) is
  'Internal: whether an update of a membership changed its last_active_at and nothing else (updated_at aside).';

create or replace function roster.tg_organization_memberships__touch() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' and not roster._only_activity_changed(old, new) then
    new.updated_at := now();
  end if;
  if new.status <> 'invited' and new.joined_at is null then
    new.joined_at := now();
  end if;
  return new;
end
$$;
comment on function roster.tg_organization_memberships__touch() is
  'Trigger: keeps updated_at current (not for a last_active_at report alone) and sets joined_at when a membership first leaves the invited status.';

create or replace function roster.tg_organization_memberships__audit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_action text;
begin
  if tg_op = 'INSERT' then
    v_action := 'membership.created';
  elsif tg_op = 'DELETE' then
    v_action := 'membership.purged';
  elsif roster._only_activity_changed(old, new)
        and current_setting('roster.activity_report', true) = 'exchange' then
    return null;
  elsif old.deleted_at is null and new.deleted_at is not null then
    v_action := 'membership.removed';
  else
    v_action := 'membership.updated';
  end if;
  perform roster._record_audit_event(
    coalesce(new.tenant_id, old.tenant_id), v_action,
    coalesce(new.organization_id, old.organization_id), coalesce(new.user_id, old.user_id),
    case when tg_op <> 'INSERT' then to_jsonb(old) end,
    case when tg_op <> 'DELETE' then to_jsonb(new) end);
  return null;
end
$$;
comment on function roster.tg_organization_memberships__audit() is
  'Trigger: records membership changes in roster.audit_events (not the last_active_at that roster.exchange_token records).';

/* The organization an access token is for. With p_org_id: that one, which the user must be
   able to see (RNFND otherwise, as everywhere). Without: the user's last active organization
   (the latest exchange's), else its only one, else none, and the organizations to choose from.
   The chosen membership's last_active_at is set to now. One row always. */
create function roster.exchange_token(p_user_id uuid, p_org_id uuid default null)
  returns table (tenant_id uuid, organization_id uuid, organization_name text, choices jsonb)
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.activity_report = 'exchange' -- its last_active_at is no audit event (for this call only)
as $$
declare
  v_access roster.access := roster._access(p_user_id, p_org_id);
  v_org uuid := p_org_id;
  v_choices jsonb;
begin
  if not v_access.user_live then
    raise exception using errcode = 'RNACT',
      message = format('user %s does not exist or has been deleted', coalesce(p_user_id::text, 'null'));
  end if;
  if v_org is null then
    -- The organizations the user may act in: active, unexpired memberships of live ones.
    select coalesce(
             (array_agg(m.organization_id order by m.last_active_at desc)
                filter (where m.last_active_at is not null))[1],
             case when count(*) = 1 then (array_agg(m.organization_id))[1] end),
           case when count(*) > 0 then
             jsonb_agg(jsonb_build_object('id', o.id, 'slug', o.slug, 'name', o.name, 'role', m.role)
                       order by o.name, o.id)
           end
      into v_org, v_choices
      from roster.organization_memberships m
      join roster.organizations o
        on o.tenant_id = m.tenant_id and o.id = m.organization_id and o.deleted_at is null
     where m.tenant_id = v_access.tenant_id and m.user_id = p_user_id
       and m.deleted_at is null and m.status = 'active'
       and (m.expires_at is null or m.expires_at > now());
    if v_org is null then
      return query select v_access.tenant_id, null::uuid, null::text, coalesce(v_choices, '[]'::jsonb);
      return;
    end if;
    v_access := roster._access(p_user_id, v_org);
  end if;
  if not v_access.visible then
    raise exception using errcode = 'RNFND',
      message = format('organization %s not found', v_org);
  end if;
  -- A second exchange in one transaction (the same now()) writes nothing.
  update roster.organization_memberships m set last_active_at = now()
   where m.tenant_id = v_access.tenant_id and m.organization_id = v_org
     and m.user_id = p_user_id and m.deleted_at is null
     and m.last_active_at is distinct from now();
  return query
  select v_access.tenant_id, o.id, o.name, null::jsonb
    from roster.organizations o
   where o.tenant_id = v_access.tenant_id and o.id = v_org;
end
$$;
comment on function roster.exchange_token(uuid, uuid) is
  'The organization a user''s access token is for (POST /auth/token): p_org_id, which the user must see (RNFND), or without it the last active one, else the only one, else none and choices = [{id, slug, name, role}] of the organizations the user may act in. Records the choice in the membership''s last_active_at. Claims come from roster.member_access in the same statement. Errors: RNACT, RNFND.';

alter function roster.exchange_token(uuid, uuid) rows 1;
grant execute on function roster.exchange_token(uuid, uuid) to roster_app;
