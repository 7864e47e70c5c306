-- The audit trail's actor can no longer be forged. Until now the audit trigger believed the
-- setting roster.actor_id, which anyone can set (`begin; set local roster.actor_id = '<someone>';
-- update ...; commit` recorded that person as the actor). Now roster._actor and
-- roster._require_permission write the actor together with a tag: SHA-256 of a secret that only
-- the functions' owner can read, the actor, the backend and the transaction's start. The
-- trigger records an actor only when the tag verifies; otherwise the actor is null and the
-- database login and role say who wrote.
--
-- Every public function already resets roster.actor_id on entry and restores it on exit (its
-- `set roster.actor_id = ''` clause), so a tagged value exists only while a roster function
-- runs: raw SQL later in the transaction never sees one to copy.

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.audit_secret (
  secret text not null
);
comment on table roster.audit_secret is
  'One row: the secret that tags the audit trail''s actor. Readable by the functions'' owner only.';
insert into roster.audit_secret (secret)
select replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
revoke all on roster.audit_secret from public;

alter table roster.audit_events add column db_role text;
comment on column roster.audit_events.db_role is
  'The role the session acted as (SET ROLE), or its login; null for events recorded before it existed.';
comment on column roster.audit_events.actor_id is
  'The user a roster.* function acted for, verified; null for raw SQL (see db_user, db_role).';

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* The tag binds an actor to this backend and this transaction. */
create function roster._actor_tag(p_actor_id uuid) returns text
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select encode(sha256(convert_to(
           s.secret || '/' || p_actor_id::text || '/' || pg_backend_pid()::text || '/' ||
           transaction_timestamp()::text, 'UTF8')), 'hex')
    from roster.audit_secret s
$$;
comment on function roster._actor_tag(uuid) is
  'Internal: the tag that proves roster.actor_id was set by a roster function in this transaction.';

create function roster._record_actor(p_actor_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform set_config('roster.actor_id', p_actor_id::text || ':' || roster._actor_tag(p_actor_id), true);
end
$$;
comment on function roster._record_actor(uuid) is
  'Internal: records the acting user for the audit trail, tagged, until the calling function returns.';

/* The actor recorded by _record_actor in this transaction, or null (unset, untagged, forged,
   or copied from another transaction). */
create function roster._audit_actor() returns uuid
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_value text := current_setting('roster.actor_id', true);
  v_actor uuid;
begin
  if v_value is null or v_value !~ '^[0-9a-f-]{36}:[0-9a-f]{64}$' then
    return null;
  end if;
  v_actor := split_part(v_value, ':', 1)::uuid;
  if split_part(v_value, ':', 2) = roster._actor_tag(v_actor) then
    return v_actor;
  end if;
  return null;
end
$$;
comment on function roster._audit_actor() is
  'Internal: the verified actor of this transaction''s roster function call, or null.';

create or replace function roster._record_audit_event(
  p_tenant_id uuid, p_action text, p_org_id uuid, p_target_user_id uuid, p_before jsonb, p_after jsonb
) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  insert into roster.audit_events
    (tenant_id, actor_id, db_user, db_role, action, organization_id, target_user_id, before, after)
  values (p_tenant_id, roster._audit_actor(), session_user,
          coalesce(nullif(current_setting('role'), 'none'), session_user),
          p_action, p_org_id, p_target_user_id, p_before, p_after);
end
$$;
comment on function roster._record_audit_event(uuid, text, uuid, uuid, jsonb, jsonb) is
  'Internal: appends one audit event, with the verified actor of this transaction (null for raw SQL), the login and the role.';

create or replace function roster._actor(p_actor_id uuid) returns roster.users
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_actor_id, null);
  v_actor roster.users;
begin
  if not v_access.user_live then
    raise exception using errcode = 'RNACT',
      message = format('user %s does not exist or has been deleted', coalesce(p_actor_id::text, 'null'));
  end if;
  select u.* into v_actor from roster.users u
   where u.tenant_id = v_access.tenant_id and u.id = p_actor_id;
  perform roster._record_actor(v_actor.id);
  return v_actor;
end
$$;

create or replace function roster._require_permission(p_actor_id uuid, p_org_id uuid, p_permission text)
  returns roster.access
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_access roster.access := roster._access(p_actor_id, p_org_id);
begin
  if not v_access.user_live then
    raise exception using errcode = 'RNACT',
      message = format('user %s does not exist or has been deleted', coalesce(p_actor_id::text, 'null'));
  end if;
  perform roster._record_actor(p_actor_id);
  if not v_access.visible then
    raise exception using errcode = 'RNFND',
      message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
  end if;
  perform roster._deny_unless(v_access, p_permission);
  return v_access;
end
$$;

revoke execute on all functions in schema roster from public;
