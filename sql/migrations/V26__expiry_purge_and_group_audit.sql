-- The audit trail of groups and grants, and roster.purge_expired for a scheduler: it
-- soft-deletes the memberships, group memberships and grants whose expiry has passed, each one
-- an audit event. Correctness never depends on it (checks compare with the statement's time);
-- it keeps lists tidy and tables small.

-- ============================================================================================
-- Tables
-- ============================================================================================
alter table roster.audit_events drop constraint ck_audit_events_action;
alter table roster.audit_events add constraint ck_audit_events_action
  check (action ~ '^(organization|membership|user|tenant|group|group_member|grant)\.[a-z_]+$');

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* One trigger function for the organization's group and grant tables: the action prefix is its
   argument; a soft delete is `removed`, or `expired` when purge_expired does it. */
create function roster.tg__audit_organization_row() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_row jsonb := to_jsonb(case when tg_op = 'DELETE' then old else new end);
  v_action text;
begin
  if tg_op = 'INSERT' then
    v_action := 'created';
  elsif tg_op = 'DELETE' then
    v_action := 'deleted';
  elsif (to_jsonb(old) ->> 'deleted_at') is null and (v_row ->> 'deleted_at') is not null then
    v_action := case when current_setting('roster.purging', true) = 'on' then 'expired' else 'removed' end;
  elsif to_jsonb(old) - 'updated_at' = v_row - 'updated_at' then
    return null;
  else
    v_action := 'updated';
  end if;
  perform roster._record_audit_event(
    (v_row ->> 'tenant_id')::uuid, tg_argv[0] || '.' || v_action, (v_row ->> 'organization_id')::uuid,
    (v_row ->> 'user_id')::uuid,
    case when tg_op <> 'INSERT' then to_jsonb(old) end,
    case when tg_op <> 'DELETE' then to_jsonb(new) end);
  return null;
end
$$;
comment on function roster.tg__audit_organization_row() is
  'Trigger: records changes of groups, group members and grants in roster.audit_events (action prefix: the trigger''s argument).';

create trigger tg_groups__audit after insert or update or delete on roster.groups
  for each row execute function roster.tg__audit_organization_row('group');
create trigger tg_group_members__audit after insert or update or delete on roster.group_members
  for each row execute function roster.tg__audit_organization_row('group_member');
create trigger tg_grants__audit after insert or update or delete on roster.grants
  for each row execute function roster.tg__audit_organization_row('grant');

-- ============================================================================================
-- Public functions
-- ============================================================================================

create function roster.purge_expired()
  returns table (memberships bigint, group_members bigint, grants bigint)
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = ''
  set roster.purging = 'on' -- audited as `expired`
as $$
declare
  v_memberships bigint;
  v_group_members bigint;
  v_grants bigint;
begin
  update roster.grants g set deleted_at = now()
   where g.deleted_at is null and g.expires_at <= now();
  get diagnostics v_grants = row_count;
  update roster.group_members gm set deleted_at = now()
   where gm.deleted_at is null and gm.expires_at <= now();
  get diagnostics v_group_members = row_count;
  -- Expired owners are not lasting owners: the last-owner guard never counted them.
  update roster.organization_memberships m set deleted_at = now()
   where m.deleted_at is null and m.expires_at <= now();
  get diagnostics v_memberships = row_count;
  return query select v_memberships, v_group_members, v_grants;
end
$$;
comment on function roster.purge_expired() is
  'For a scheduler: soft-deletes expired memberships, group memberships and grants (audited as membership.removed, group_member.expired, grant.expired) and returns how many. Expired rows grant nothing before it runs; it only tidies.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function roster.purge_expired() to roster_provisioner;
