-- The organization row's lock for the last-owner guard and the seat limit, FOR NO KEY UPDATE
-- instead of FOR UPDATE. Inserting a membership (or any row whose foreign key names the
-- organization) takes FOR KEY SHARE on the organization's row, and FOR UPDATE conflicts with it:
-- two add_member calls on one organization each held KEY SHARE and each waited for the other's
-- to upgrade, a deadlock (1.0% of add+remove pairs at 16 clients in pgbench; every one cost
-- deadlock_timeout, 1 s, before PostgreSQL broke it). FOR NO KEY UPDATE is the lock an UPDATE
-- of the row's non-key columns takes, the version bump's: it still makes concurrent guards and
-- counts of one organization run one after the other, and it does not wait for KEY SHARE.
-- Same bodies otherwise.

create or replace function roster._assert_has_owner(p_tenant_id uuid, p_org_id uuid) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_slug text;
begin
  select o.slug into v_slug
    from roster.organizations o
   where o.tenant_id = p_tenant_id and o.id = p_org_id and o.deleted_at is null
     for no key update;
  if not found then
    return; -- a deleted or vanished organization needs no owner
  end if;
  if not exists (
    select from roster.organization_memberships m
      join roster.users u on u.tenant_id = m.tenant_id and u.id = m.user_id and u.deleted_at is null
     where m.tenant_id = p_tenant_id and m.organization_id = p_org_id
       and m.role = 'owner' and m.status = 'active' and m.deleted_at is null
       and m.expires_at is null
  ) then
    raise exception using errcode = 'RLOWN',
      message = format('organization %s must keep at least one active owner without an expiry', v_slug),
      hint = 'Make another member a lasting owner first, or delete the organization.';
  end if;
end
$$;

create or replace function roster._assert_seats_within_limit(p_tenant_id uuid, p_org_id uuid) returns void
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
     for no key update;
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

comment on function roster._assert_has_owner(uuid, uuid) is
  'Internal: raises RLOWN unless the live organization has an active owner without an expiry; locks the organization row first (FOR NO KEY UPDATE).';
comment on function roster._assert_seats_within_limit(uuid, uuid) is
  'Internal: RSEAT when the organization uses more seats than its seat_limit; locks the organization row first (FOR NO KEY UPDATE).';
