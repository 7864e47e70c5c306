-- The audit trail: every change to organizations and memberships, whoever makes it (a roster
-- function, a DBA in psql, another service), lands in roster.audit_events in the same
-- transaction. Append-only: the application role cannot read or write the table directly, and
-- its rows cannot be changed or deleted (short of disabling the trigger as a superuser).

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.audit_events (
  tenant_id       uuid        not null,
  id              bigint      generated always as identity,
  occurred_at     timestamptz not null default now(), -- the transaction's start time
  actor_id        uuid,        -- the user a roster.* function acted for; null for raw SQL
  db_user         text        not null default session_user, -- the database login that made the change
  action          text        not null, -- organization.created|updated|deleted|restored|purged, membership.created|updated|removed|purged
  organization_id uuid        not null, -- no foreign key: the trail outlives a purged organization
  target_user_id  uuid,        -- the member concerned, for membership events
  before          jsonb,       -- the row before the change (null for creations)
  after           jsonb,       -- the row after the change (null for purges)
  constraint pk_audit_events primary key (tenant_id, id),
  constraint ck_audit_events_action check (action ~ '^(organization|membership)\.[a-z]+$')
);
comment on table roster.audit_events is
  'Append-only trail of changes to organizations and memberships. Read with roster.list_audit_events.';

create index ix_audit_events_organization on roster.audit_events (tenant_id, organization_id, id desc);

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* Shared by both audited tables: what changed, by whom. Their triggers are security definer so
   that whoever may write an audited table gets the audit row written too. */
create function roster._record_audit_event(
  p_tenant_id uuid, p_action text, p_org_id uuid, p_target_user_id uuid, p_before jsonb, p_after jsonb
) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  insert into roster.audit_events (tenant_id, actor_id, action, organization_id, target_user_id, before, after)
  values (p_tenant_id, nullif(current_setting('roster.actor_id', true), '')::uuid, p_action,
          p_org_id, p_target_user_id, p_before, p_after);
end
$$;
comment on function roster._record_audit_event(uuid, text, uuid, uuid, jsonb, jsonb) is
  'Internal: appends one audit event, with the actor recorded by roster._actor in this transaction (null for raw SQL).';

create function roster.tg_organizations__audit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_action text;
begin
  if tg_op = 'INSERT' then
    v_action := 'organization.created';
  elsif tg_op = 'DELETE' then
    v_action := 'organization.purged';
  elsif to_jsonb(old) - 'authz_version' - 'updated_at' = to_jsonb(new) - 'authz_version' - 'updated_at' then
    return null; -- a version bump from a membership change, audited as that change
  elsif old.deleted_at is null and new.deleted_at is not null then
    v_action := 'organization.deleted';
  elsif old.deleted_at is not null and new.deleted_at is null then
    v_action := 'organization.restored';
  else
    v_action := 'organization.updated';
  end if;
  perform roster._record_audit_event(
    coalesce(new.tenant_id, old.tenant_id), v_action, coalesce(new.id, old.id), null,
    case when tg_op <> 'INSERT' then to_jsonb(old) - 'authz_version' end,
    case when tg_op <> 'DELETE' then to_jsonb(new) - 'authz_version' end);
  return null;
end
$$;
comment on function roster.tg_organizations__audit() is
  'Trigger: records organization changes in roster.audit_events.';

create trigger tg_organizations__audit after insert or update or delete on roster.organizations
  for each row execute function roster.tg_organizations__audit();

create function roster.tg_organization_memberships__audit() returns trigger
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
  'Trigger: records membership changes in roster.audit_events.';

create trigger tg_organization_memberships__audit
  after insert or update or delete on roster.organization_memberships
  for each row execute function roster.tg_organization_memberships__audit();

create function roster.tg_audit_events__append_only() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception using errcode = 'RAPND',
    message = 'roster.audit_events is append-only: its rows cannot be changed or deleted';
end
$$;
comment on function roster.tg_audit_events__append_only() is
  'Trigger: refuses updates and deletes of audit events (RAPND).';

create trigger tg_audit_events__append_only before update or delete or truncate on roster.audit_events
  for each statement execute function roster.tg_audit_events__append_only();

-- ============================================================================================
-- Public functions
-- ============================================================================================

create function roster.list_audit_events(
  p_actor_id uuid,
  p_org_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (
    id bigint, occurred_at timestamptz, actor_id uuid, db_user text, action text,
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
  select e.id, e.occurred_at, e.actor_id, e.db_user, e.action, e.organization_id,
         e.target_user_id, e.before, e.after
    from roster.audit_events e
   where e.tenant_id = v_access.tenant_id and e.organization_id = p_org_id
   order by e.id desc
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_audit_events(uuid, uuid, integer, integer) is
  'The organization''s audit trail, newest first. Needs audit:read (owners, admins, tenant admins). p_limit 1..1000.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function roster.list_audit_events(uuid, uuid, integer, integer) to roster_app;
