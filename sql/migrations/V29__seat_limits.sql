-- Seat limits: paid plans cap how many people an organization holds. organizations.seat_limit
-- (null: no limit) is set through update_organization. Seats used = live memberships of any
-- status (invited, active, suspended) + pending invitations by email, each person once: an
-- invited membership and its own invitation are one seat, an invitation to the address of a
-- live member adds none, and an invitation past its expiry (with its invited membership)
-- holds none.
--
-- The limit holds whoever writes (functions or a raw INSERT): triggers on memberships and
-- invitations refuse, with RSEAT, any change that adds a seat or makes someone a member
-- (adding, inviting, joining, accepting, restoring, resending an expired invitation) while the
-- seats used would then exceed the limit. Accepting takes no new seat (the invitation held
-- it), so it is refused only when the limit was lowered below the seats already used: lowering
-- is allowed, removes no one, and only blocks additions.
--
-- Race-safe: the check locks the organization's row before counting (as the last-owner guard,
-- V5, does), so two transactions taking the last seat serialize: under READ COMMITTED the
-- second waits, then counts afresh and fails with RSEAT; under REPEATABLE READ or SERIALIZABLE
-- it fails with a serialization error (40001) instead.

-- ============================================================================================
-- Tables
-- ============================================================================================
alter table roster.organizations add column seat_limit integer;
alter table roster.organizations add constraint ck_organizations_seat_limit check (seat_limit >= 0);
comment on column roster.organizations.seat_limit is
  'The most seats (members of any status and pending invitations) the organization may use; null for no limit. Lowering it below the seats used removes no one and blocks additions.';

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Counted in one statement, so with one snapshot. */
create function roster._seats_used(p_tenant_id uuid, p_org_id uuid) returns bigint
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select (select count(*)
            from roster.organization_memberships m
           where m.tenant_id = p_tenant_id and m.organization_id = p_org_id and m.deleted_at is null
             and not (m.status = 'invited'
                      and exists (select from roster.invitations i
                                   where i.tenant_id = m.tenant_id and i.membership_id = m.id
                                     and i.status in ('pending', 'expired') and i.expires_at <= now())))
       + (select count(*)
            from roster.invitations i
           where i.tenant_id = p_tenant_id and i.organization_id = p_org_id
             and i.status = 'pending' and i.expires_at > now()
             and not exists (
               select from roster.organization_memberships m
                 join roster.users u
                   on u.tenant_id = m.tenant_id and u.id = m.user_id and u.deleted_at is null
                where m.tenant_id = i.tenant_id and m.organization_id = i.organization_id
                  and m.deleted_at is null
                  and (m.id = i.membership_id or lower(u.email) = i.email)))
$$;
comment on function roster._seats_used(uuid, uuid) is
  'Internal: the seats an organization uses: live memberships and pending invitations, each person once, expired invitations not at all.';

/* RSEAT when the live organization uses more seats than its limit. Locks the organization's
   row first, so that concurrent additions count one after the other. */
create function roster._assert_seats_within_limit(p_tenant_id uuid, p_org_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_slug text;
  v_limit integer;
  v_used bigint;
begin
  select o.slug, o.seat_limit into v_slug, v_limit
    from roster.organizations o
   where o.tenant_id = p_tenant_id and o.id = p_org_id and o.deleted_at is null
     for update;
  if v_limit is null then
    return; -- no limit, or no live organization
  end if;
  v_used := roster._seats_used(p_tenant_id, p_org_id);
  if v_used > v_limit then
    raise exception using errcode = 'RSEAT',
      message = format('organization %s has no seat left: its limit is %s seat(s) and this would make %s (members and pending invitations)', v_slug, v_limit, v_used),
      hint = 'Raise the seat limit, or remove members or revoke invitations first.';
  end if;
end
$$;
comment on function roster._assert_seats_within_limit(uuid, uuid) is
  'Internal: RSEAT when the organization uses more seats than its seat_limit; locks the organization row first.';

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* A membership that becomes live (created, restored, moved) or stops being invited (accepted)
   must fit. Other changes (a role, a suspension) never add a seat. */
create function roster.tg_organization_memberships__seat_limit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' and old.deleted_at is null and old.organization_id = new.organization_id
     and not (old.status = 'invited' and new.status <> 'invited') then
    return null;
  end if;
  perform roster._assert_seats_within_limit(new.tenant_id, new.organization_id);
  return null;
end
$$;
comment on function roster.tg_organization_memberships__seat_limit() is
  'Trigger: the seat limit for adding, restoring and accepting memberships (RSEAT), whoever writes.';

create trigger tg_organization_memberships__seat_limit
  after insert or update of status, deleted_at, organization_id on roster.organization_memberships
  for each row
  when (new.deleted_at is null)
  execute function roster.tg_organization_memberships__seat_limit();

/* An invitation that starts to hold a seat (made, resent after its expiry, moved) must fit. */
create function roster.tg_invitations__seat_limit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if new.expires_at <= now() then
    return null;
  end if;
  if tg_op = 'UPDATE' and old.status = 'pending' and old.expires_at > now()
     and old.organization_id = new.organization_id then
    return null; -- it held its seat already
  end if;
  perform roster._assert_seats_within_limit(new.tenant_id, new.organization_id);
  return null;
end
$$;
comment on function roster.tg_invitations__seat_limit() is
  'Trigger: the seat limit for making and renewing invitations (RSEAT), whoever writes.';

create trigger tg_invitations__seat_limit
  after insert or update of status, expires_at, organization_id on roster.invitations
  for each row
  when (new.status = 'pending')
  execute function roster.tg_invitations__seat_limit();

-- ============================================================================================
-- Public functions
-- ============================================================================================

/* V8's partial update, with seat_limit: a whole number from 0, or null for no limit. */
create or replace function roster.update_organization(p_actor_id uuid, p_org_id uuid, p_changes jsonb)
  returns roster.organizations
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'organization:update');
  v_text_fields constant text[] := array['name', 'slug', 'description', 'domain', 'billing_email', 'stripe_customer_id'];
  v_fields constant text[] := v_text_fields || array['billing_address', 'metadata', 'seat_limit'];
  v_required constant text[] := array['name', 'slug', 'metadata'];
  v_key text;
  v_type text;
  v_seats numeric;
  v_org roster.organizations;
  v_state text;
  v_constraint text;
  v_column text;
begin
  if jsonb_typeof(p_changes) is distinct from 'object' then
    raise exception using errcode = 'RINVL',
      message = format('changes must be a JSON object, got %s', coalesce(jsonb_typeof(p_changes), 'null'));
  end if;
  for v_key, v_type in select k, jsonb_typeof(p_changes -> k) from jsonb_object_keys(p_changes) k loop
    if not (v_key = any (v_fields)) then
      raise exception using errcode = 'RINVL',
        message = format('unknown field %L: expected one of %s', v_key, array_to_string(v_fields, ', '));
    elsif v_type = 'null' and v_key = any (v_required) then
      raise exception using errcode = 'RINVL', message = format('%s cannot be null', v_key);
    elsif v_type <> 'null' and v_key = any (v_text_fields) and v_type <> 'string' then
      raise exception using errcode = 'RINVL', message = format('%s must be a string, got %s', v_key, v_type);
    elsif v_type <> 'null' and v_key in ('billing_address', 'metadata') and v_type <> 'object' then
      raise exception using errcode = 'RINVL', message = format('%s must be a JSON object, got %s', v_key, v_type);
    elsif v_type <> 'null' and v_key = 'seat_limit' then
      if v_type <> 'number' then
        raise exception using errcode = 'RINVL', message = format('seat_limit must be a whole number or null, got %s', v_type);
      end if;
      v_seats := (p_changes ->> 'seat_limit')::numeric;
      if v_seats <> trunc(v_seats) or v_seats not between 0 and 2147483647 then
        raise exception using errcode = 'RINVL',
          message = format('seat_limit must be a whole number from 0 to 2147483647, or null for no limit; got %s', p_changes ->> 'seat_limit');
      end if;
    end if;
  end loop;

  select o.* into v_org from roster.organizations o
   where o.tenant_id = v_access.tenant_id and o.id = p_org_id;
  if p_changes = '{}' then
    return v_org;
  end if;

  update roster.organizations o set
    name               = case when p_changes ? 'name' then btrim(p_changes ->> 'name') else o.name end,
    slug               = case when p_changes ? 'slug' then p_changes ->> 'slug' else o.slug end,
    description        = case when p_changes ? 'description' then p_changes ->> 'description' else o.description end,
    domain             = case when p_changes ? 'domain' then p_changes ->> 'domain' else o.domain end,
    billing_email      = case when p_changes ? 'billing_email' then p_changes ->> 'billing_email' else o.billing_email end,
    billing_address    = case when p_changes ? 'billing_address' then nullif(p_changes -> 'billing_address', 'null') else o.billing_address end,
    stripe_customer_id = case when p_changes ? 'stripe_customer_id' then p_changes ->> 'stripe_customer_id' else o.stripe_customer_id end,
    metadata           = case when p_changes ? 'metadata' then p_changes -> 'metadata' else o.metadata end,
    seat_limit         = case when p_changes ? 'seat_limit' then (p_changes ->> 'seat_limit')::numeric::integer else o.seat_limit end
   where o.tenant_id = v_access.tenant_id and o.id = p_org_id
  returning o.* into v_org;
  return v_org;
exception when unique_violation or check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name,
    v_column = column_name;
  raise exception using errcode = v_state, constraint = v_constraint, column = v_column,
    message = roster._explain_violation(v_constraint, v_column, p_changes);
end
$$;
comment on function roster.update_organization(uuid, uuid, jsonb) is
  'Partial update: keys name, slug, description, domain, billing_email, billing_address, stripe_customer_id, metadata, seat_limit (a whole number from 0, or null for no limit: lowering it below the seats used removes no one); JSON null clears a nullable field; unknown keys are refused (RINVL). Needs organization:update. Returns the row.';

/* V8's read, with the seats: its result columns change, hence drop and create. */
drop function roster.get_organization(uuid, uuid);
create function roster.get_organization(p_actor_id uuid, p_org_id uuid)
  returns table (
    id uuid, tenant_id uuid, name text, slug text, description text, domain text,
    billing_email text, billing_address jsonb, stripe_customer_id text, metadata jsonb,
    created_at timestamptz, updated_at timestamptz, created_by uuid, member_count bigint,
    seat_limit integer, seats_used bigint
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
begin
  return query
  select o.id, o.tenant_id, o.name, o.slug, o.description, o.domain, o.billing_email,
         o.billing_address, o.stripe_customer_id, o.metadata, o.created_at, o.updated_at,
         o.created_by, roster._member_count(o.tenant_id, o.id), o.seat_limit,
         roster._seats_used(o.tenant_id, o.id)
    from roster.organizations o
   where o.tenant_id = v_access.tenant_id and o.id = p_org_id;
end
$$;
comment on function roster.get_organization(uuid, uuid) is
  'One organization with its count of active members, its seat_limit (null: none) and the seats it uses (members of any status and pending invitations). RNFND when the actor may not see it (missing, deleted, other tenant, not an active member).';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function roster.get_organization(uuid, uuid) to roster_app;
