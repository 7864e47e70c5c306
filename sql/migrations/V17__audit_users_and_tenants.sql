-- Users and tenants join the audit trail. A tenant admin holds owner powers in every
-- organization of its tenant, yet `create_user(..., p_is_tenant_admin => true)` or a raw
-- `update roster.users set is_tenant_admin = true` left no trace. Now every creation, edit,
-- admin flag change, deletion and restoration of a user or tenant is an event, whoever writes,
-- with the same actor rules as V16. Tenant admins read them with list_tenant_audit_events.
--
-- Actions: user.created|updated|admin_granted|admin_revoked|deleted|restored|purged,
-- tenant.created|updated|deleted|restored|purged. Their organization_id is null.

-- ============================================================================================
-- Tables
-- ============================================================================================
alter table roster.audit_events alter column organization_id drop not null;
comment on column roster.audit_events.organization_id is
  'The organization concerned; null for user and tenant events. No foreign key: the trail outlives a purged organization.';
alter table roster.audit_events drop constraint ck_audit_events_action;
alter table roster.audit_events add constraint ck_audit_events_action
  check (action ~ '^(organization|membership|user|tenant)\.[a-z_]+$');
alter table roster.audit_events add constraint ck_audit_events_organization
  check ((organization_id is null) = (action ~ '^(user|tenant)\.'));

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* What changed in a row, leaving out what only caches read (a version bump from a membership
   change is audited as that change). */
create function roster._audited_change(p_before jsonb, p_after jsonb) returns boolean
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select p_before - 'authz_version' - 'updated_at' is distinct from p_after - 'authz_version' - 'updated_at'
$$;
comment on function roster._audited_change(jsonb, jsonb) is
  'Internal: whether an update changed more than authz_version and updated_at.';

create function roster.tg_users__audit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_before jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) - 'authz_version' end;
  v_after jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) - 'authz_version' end;
  v_action text;
begin
  if tg_op = 'INSERT' then
    v_action := 'user.created';
  elsif tg_op = 'DELETE' then
    v_action := 'user.purged';
  elsif not roster._audited_change(v_before, v_after) then
    return null;
  elsif old.deleted_at is null and new.deleted_at is not null then
    v_action := 'user.deleted';
  elsif old.deleted_at is not null and new.deleted_at is null then
    v_action := 'user.restored';
  elsif not old.is_tenant_admin and new.is_tenant_admin then
    v_action := 'user.admin_granted';
  elsif old.is_tenant_admin and not new.is_tenant_admin then
    v_action := 'user.admin_revoked';
  else
    v_action := 'user.updated';
  end if;
  perform roster._record_audit_event(coalesce(new.tenant_id, old.tenant_id), v_action, null,
                                     coalesce(new.id, old.id), v_before, v_after);
  return null;
end
$$;
comment on function roster.tg_users__audit() is
  'Trigger: records user changes (creation, edits, the tenant admin flag, deletion) in roster.audit_events.';

create trigger tg_users__audit after insert or update or delete on roster.users
  for each row execute function roster.tg_users__audit();

create function roster.tg_tenants__audit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_before jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) - 'authz_version' end;
  v_after jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) - 'authz_version' end;
  v_action text;
begin
  if tg_op = 'INSERT' then
    v_action := 'tenant.created';
  elsif tg_op = 'DELETE' then
    v_action := 'tenant.purged';
  elsif not roster._audited_change(v_before, v_after) then
    return null;
  elsif old.deleted_at is null and new.deleted_at is not null then
    v_action := 'tenant.deleted';
  elsif old.deleted_at is not null and new.deleted_at is null then
    v_action := 'tenant.restored';
  else
    v_action := 'tenant.updated';
  end if;
  perform roster._record_audit_event(coalesce(new.id, old.id), v_action, null, null, v_before, v_after);
  return null;
end
$$;
comment on function roster.tg_tenants__audit() is
  'Trigger: records tenant changes in roster.audit_events.';

create trigger tg_tenants__audit after insert or update or delete on roster.tenants
  for each row execute function roster.tg_tenants__audit();

-- ============================================================================================
-- Public functions
-- ============================================================================================

create function roster.list_tenant_audit_events(
  p_actor_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (
    id bigint, occurred_at timestamptz, actor_id uuid, db_user text, db_role text, action text,
    organization_id uuid, target_user_id uuid, before jsonb, after jsonb
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
begin
  perform roster._check_page(p_limit, p_offset);
  if not v_actor.is_tenant_admin then
    raise exception using errcode = 'RDNID',
      message = 'only a tenant admin may read the tenant''s audit trail';
  end if;
  return query
  select e.id, e.occurred_at, e.actor_id, e.db_user, e.db_role, e.action, e.organization_id,
         e.target_user_id, e.before, e.after
    from roster.audit_events e
   where e.tenant_id = v_actor.tenant_id
   order by e.id desc
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_tenant_audit_events(uuid, integer, integer) is
  'Every audit event of the actor''s tenant (users, the tenant itself, organizations, memberships), newest first. Tenant admins only (RDNID). p_limit 1..1000.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function roster.list_tenant_audit_events(uuid, integer, integer) to roster_app;

/* The organization's trail, now with the role each change was made as (V16). */
drop function roster.list_audit_events(uuid, uuid, integer, integer);
create function roster.list_audit_events(
  p_actor_id uuid,
  p_org_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (
    id bigint, occurred_at timestamptz, actor_id uuid, db_user text, db_role text, action text,
    organization_id uuid, target_user_id uuid, before jsonb, after jsonb
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'audit:read');
begin
  perform roster._check_page(p_limit, p_offset);
  return query
  select e.id, e.occurred_at, e.actor_id, e.db_user, e.db_role, e.action, e.organization_id,
         e.target_user_id, e.before, e.after
    from roster.audit_events e
   where e.tenant_id = v_access.tenant_id and e.organization_id = p_org_id
   order by e.id desc
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_audit_events(uuid, uuid, integer, integer) is
  'The organization''s audit trail, newest first. Needs audit:read (owners, admins, tenant admins). p_limit 1..1000.';

revoke execute on all functions in schema roster from public;
grant execute on function roster.list_audit_events(uuid, uuid, integer, integer) to roster_app;
