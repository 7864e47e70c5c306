-- Users: the people of a tenant. Identity (passwords, SSO) lives elsewhere; Roster only needs
-- to know who exists, whether they are still live, and who administers the tenant.

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.users (
  tenant_id       uuid        not null,
  id              uuid        not null default gen_random_uuid(),
  email           text        not null, -- unique per tenant, compared case-insensitively
  display_name    text,
  is_tenant_admin boolean     not null default false, -- owner powers in every organization of the tenant
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  deleted_at      timestamptz, -- soft delete: ends the user's memberships (see V5)
  -- Bumped by every change to the user or to any of its memberships: caches of what this user
  -- may do key on it (see V10).
  authz_version   bigint      not null default 1,
  constraint pk_users primary key (tenant_id, id),
  constraint fk_users_tenant foreign key (tenant_id) references roster.tenants (id),
  constraint ck_users_email_format
    check (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' and length(email) <= 320),
  constraint ck_users_display_name_length
    check (display_name is null or (btrim(display_name) <> '' and length(display_name) <= 255))
);
comment on table roster.users is 'The people of a tenant. Soft-deleted users cannot act and hold no memberships.';

create unique index uq_users_tenant_email on roster.users (tenant_id, lower(email))
  where deleted_at is null;
-- Actor lookups arrive with a user id alone. Not unique on purpose: a unique index must include
-- the distribution column (tenant_id) once tables are sharded; the functions fail closed if two
-- rows ever share an id.
create index ix_users_id on roster.users (id);

-- ============================================================================================
-- Triggers
-- ============================================================================================
/* Shared by users and organizations: an edit touches updated_at and bumps authz_version. An
   update that changes authz_version itself is a bump from a membership change (V5), not an
   edit of the row. */
create function roster.tg__touch_and_bump_version() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.authz_version = old.authz_version then
    new.updated_at := now();
    new.authz_version := old.authz_version + 1;
  end if;
  return new;
end
$$;
comment on function roster.tg__touch_and_bump_version() is
  'Trigger: an edit of a user or an organization touches updated_at and bumps authz_version.';

create trigger tg_users__touch before update on roster.users
  for each row execute function roster.tg__touch_and_bump_version();

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* The acting user, resolved once at the top of every actor-checked function. A deleted user, or
   a user of a deleted tenant, cannot act. Two live rows with one id (only possible by raw SQL)
   raise too_many_rows rather than picking a tenant at random. It also records the actor in
   roster.actor_id, so that the audit trail (V11) names who asked for each change; every public
   function that calls it declares `set roster.actor_id = ''`, so the setting ends with that
   call and raw SQL later in the transaction is not credited to it. */
create function roster._actor(p_actor_id uuid) returns roster.users
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_actor roster.users;
begin
  select u.* into strict v_actor
    from roster.users u
    join roster.tenants t on t.id = u.tenant_id and t.deleted_at is null
   where u.id = p_actor_id and u.deleted_at is null;
  perform set_config('roster.actor_id', v_actor.id::text, true);
  return v_actor;
exception when no_data_found then
  raise exception using errcode = 'RNACT',
    message = format('user %s does not exist or has been deleted', coalesce(p_actor_id::text, 'null'));
end
$$;
comment on function roster._actor(uuid) is
  'Internal: the live user p_actor_id of a live tenant, or RNACT; records it as roster.actor_id for the audit trail.';

/* RUSNF unless p_user_id is a live user of the tenant: the check of every function that
   names another user. */
create function roster._require_tenant_user(p_tenant_id uuid, p_user_id uuid) returns void
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select from roster.users u
                  where u.tenant_id = p_tenant_id and u.id = p_user_id and u.deleted_at is null) then
    raise exception using errcode = 'RUSNF',
      message = format('user %s not found in this tenant', coalesce(p_user_id::text, 'null'));
  end if;
end
$$;
comment on function roster._require_tenant_user(uuid, uuid) is
  'Internal: RUSNF unless the user is a live user of the tenant.';

-- ============================================================================================
-- Public functions
-- ============================================================================================

/* Provisioning: called by identity services and DBAs when a person joins the tenant. */
create function roster.create_user(
  p_tenant_id uuid,
  p_email text,
  p_display_name text default null,
  p_is_tenant_admin boolean default false
) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
  v_state text;
  v_constraint text;
  v_column text;
begin
  if not exists (select from roster.tenants t where t.id = p_tenant_id and t.deleted_at is null) then
    raise exception using errcode = 'RTNNF',
      message = format('tenant %s does not exist or has been deleted', coalesce(p_tenant_id::text, 'null'));
  end if;
  insert into roster.users (tenant_id, email, display_name, is_tenant_admin)
  values (p_tenant_id, btrim(p_email), nullif(btrim(p_display_name), ''), coalesce(p_is_tenant_admin, false))
  returning id into v_id;
  return v_id;
exception when unique_violation or check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name,
    v_column = column_name;
  raise exception using errcode = v_state, constraint = v_constraint, column = v_column,
    message = roster._explain_violation(v_constraint, v_column,
      jsonb_build_object('email', p_email, 'display_name', p_display_name));
end
$$;
comment on function roster.create_user(uuid, text, text, boolean) is
  'Creates a user in a tenant and returns its id. Email is unique per tenant (case-insensitive). Errors: RTNNF, 23505 uq_users_tenant_email, 23514 ck_users_*.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function roster.create_user(uuid, text, text, boolean) to roster_provisioner;
