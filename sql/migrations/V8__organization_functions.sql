-- The organization functions: create (with its owner), read, list, update, delete.

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Active members only: invited and suspended people do not count. */
create function roster._member_count(p_tenant_id uuid, p_org_id uuid) returns bigint
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select count(*)
    from roster.organization_memberships m
   where m.tenant_id = p_tenant_id and m.organization_id = p_org_id
     and m.status = 'active' and m.deleted_at is null
$$;
comment on function roster._member_count(uuid, uuid) is
  'Internal: the number of active memberships of an organization.';

-- ============================================================================================
-- Public functions
-- ============================================================================================

/* Any live user may create an organization in its own tenant, and becomes its active owner in
   the same transaction (the organization could not commit without one: see V5). */
create function roster.create_organization(
  p_actor_id uuid,
  p_name text,
  p_slug text,
  p_description text default null,
  p_domain text default null,
  p_billing_email text default null,
  p_billing_address jsonb default null,
  p_stripe_customer_id text default null,
  p_metadata jsonb default '{}'
) returns roster.organizations
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
  v_org roster.organizations;
  v_state text;
  v_constraint text;
  v_column text;
begin
  insert into roster.organizations
    (tenant_id, name, slug, description, domain, billing_email, billing_address,
     stripe_customer_id, metadata, created_by)
  values
    (v_actor.tenant_id, btrim(p_name), p_slug, p_description, p_domain, p_billing_email,
     p_billing_address, p_stripe_customer_id, coalesce(p_metadata, '{}'), v_actor.id)
  returning * into v_org;

  insert into roster.organization_memberships
    (tenant_id, organization_id, user_id, role, status, invited_by_user_id)
  values (v_actor.tenant_id, v_org.id, v_actor.id, 'owner', 'active', v_actor.id);

  return v_org;
exception when unique_violation or check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name,
    v_column = column_name;
  raise exception using errcode = v_state, constraint = v_constraint, column = v_column,
    message = roster._explain_violation(v_constraint, v_column, jsonb_build_object(
      'name', p_name, 'slug', p_slug, 'domain', p_domain, 'billing_email', p_billing_email,
      'billing_address', p_billing_address, 'stripe_customer_id', p_stripe_customer_id,
      'metadata', p_metadata));
end
$$;
comment on function roster.create_organization(uuid, text, text, text, text, text, jsonb, text, jsonb) is
  'Creates an organization in the actor''s tenant with the actor as its active owner; returns the row. Errors: RNACT, 23505 uq_organizations_tenant_name/slug, 23514 ck_organizations_*.';

create function roster.get_organization(p_actor_id uuid, p_org_id uuid)
  returns table (
    id uuid, tenant_id uuid, name text, slug text, description text, domain text,
    billing_email text, billing_address jsonb, stripe_customer_id text, metadata jsonb,
    created_at timestamptz, updated_at timestamptz, created_by uuid, member_count bigint
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
begin
  return query
  select o.id, o.tenant_id, o.name, o.slug, o.description, o.domain, o.billing_email,
         o.billing_address, o.stripe_customer_id, o.metadata, o.created_at, o.updated_at,
         o.created_by, roster._member_count(o.tenant_id, o.id)
    from roster.organizations o
   where o.tenant_id = v_access.tenant_id and o.id = p_org_id;
end
$$;
comment on function roster.get_organization(uuid, uuid) is
  'One organization with its count of active members. RNFND when the actor may not see it (missing, deleted, other tenant, not an active member).';

/* list_organizations is list_user_organizations of the actor itself: one query to maintain. */
create function roster.list_user_organizations(
  p_actor_id uuid,
  p_user_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (
    id uuid, tenant_id uuid, name text, slug text, description text, domain text,
    billing_email text, billing_address jsonb, stripe_customer_id text, metadata jsonb,
    created_at timestamptz, updated_at timestamptz, created_by uuid,
    role text, status text, joined_at timestamptz, member_count bigint, authz_version bigint
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
begin
  perform roster._check_page(p_limit, p_offset);
  if p_user_id is distinct from v_actor.id then
    if not v_actor.is_tenant_admin then
      raise exception using errcode = 'RDNID',
        message = 'only a tenant admin may list another user''s organizations';
    end if;
    perform roster._require_tenant_user(v_actor.tenant_id, p_user_id);
  end if;

  -- Only active members see an organization's details; an invited or suspended one sees which
  -- organization it is (id, name, slug) and its own membership.
  return query
  select o.id, o.tenant_id, o.name, o.slug,
         case when m.status = 'active' then o.description end,
         case when m.status = 'active' then o.domain end,
         case when m.status = 'active' then o.billing_email end,
         case when m.status = 'active' then o.billing_address end,
         case when m.status = 'active' then o.stripe_customer_id end,
         case when m.status = 'active' then o.metadata else '{}'::jsonb end,
         o.created_at, o.updated_at, o.created_by, m.role, m.status, m.joined_at,
         case when m.status = 'active' then roster._member_count(o.tenant_id, o.id) end,
         o.authz_version
    from roster.organization_memberships m
    join roster.organizations o
      on o.tenant_id = m.tenant_id and o.id = m.organization_id and o.deleted_at is null
   where m.tenant_id = v_actor.tenant_id and m.user_id = p_user_id and m.deleted_at is null
   order by lower(o.name), o.id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_user_organizations(uuid, uuid, integer, integer) is
  'The organizations a user belongs to (invited, active or suspended), with role, status, joined_at, member_count and the organization''s authz_version (for caches), by name. Details and member_count only where the membership is active. The actor itself or a tenant admin (RDNID otherwise). p_limit 1..1000.';

create function roster.list_organizations(
  p_actor_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (
    id uuid, tenant_id uuid, name text, slug text, description text, domain text,
    billing_email text, billing_address jsonb, stripe_customer_id text, metadata jsonb,
    created_at timestamptz, updated_at timestamptz, created_by uuid,
    role text, status text, joined_at timestamptz, member_count bigint, authz_version bigint
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
begin
  return query select * from roster.list_user_organizations(p_actor_id, p_actor_id, p_limit, p_offset);
end
$$;
comment on function roster.list_organizations(uuid, integer, integer) is
  'The actor''s own organizations, with its role, status, joined_at and member_count, by name. p_limit 1..1000.';

create function roster.list_tenant_organizations(
  p_actor_id uuid,
  p_limit integer default 50,
  p_offset integer default 0
)
  returns table (
    id uuid, tenant_id uuid, name text, slug text, description text, domain text,
    billing_email text, billing_address jsonb, stripe_customer_id text, metadata jsonb,
    created_at timestamptz, updated_at timestamptz, created_by uuid, member_count bigint
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
      message = 'only a tenant admin may list all organizations of the tenant';
  end if;
  return query
  select o.id, o.tenant_id, o.name, o.slug, o.description, o.domain, o.billing_email,
         o.billing_address, o.stripe_customer_id, o.metadata, o.created_at, o.updated_at,
         o.created_by, roster._member_count(o.tenant_id, o.id)
    from roster.organizations o
   where o.tenant_id = v_actor.tenant_id and o.deleted_at is null
   order by lower(o.name), o.id
   limit p_limit offset p_offset;
end
$$;
comment on function roster.list_tenant_organizations(uuid, integer, integer) is
  'Every live organization of the actor''s tenant, by name. Tenant admins only (RDNID). p_limit 1..1000.';

/* A partial update: only the keys present in p_changes change, JSON null clears a nullable
   field, and an unknown key or a value of the wrong JSON type is refused (RINVL) rather than
   ignored, so that a client's typo never looks like success. */
create function roster.update_organization(p_actor_id uuid, p_org_id uuid, p_changes jsonb)
  returns roster.organizations
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'organization:update');
  v_text_fields constant text[] := array['name', 'slug', 'description', 'domain', 'billing_email', 'stripe_customer_id'];
  v_required constant text[] := array['name', 'slug', 'metadata'];
  v_key text;
  v_type text;
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
    if not (v_key = any (v_text_fields || array['billing_address', 'metadata'])) then
      raise exception using errcode = 'RINVL',
        message = format('unknown field %L: expected one of %s', v_key,
                         array_to_string(v_text_fields || array['billing_address', 'metadata'], ', '));
    elsif v_type = 'null' and v_key = any (v_required) then
      raise exception using errcode = 'RINVL', message = format('%s cannot be null', v_key);
    elsif v_type <> 'null' and v_key = any (v_text_fields) and v_type <> 'string' then
      raise exception using errcode = 'RINVL', message = format('%s must be a string, got %s', v_key, v_type);
    elsif v_type <> 'null' and v_key in ('billing_address', 'metadata') and v_type <> 'object' then
      raise exception using errcode = 'RINVL', message = format('%s must be a JSON object, got %s', v_key, v_type);
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
    metadata           = case when p_changes ? 'metadata' then p_changes -> 'metadata' else o.metadata end
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
  'Partial update: keys name, slug, description, domain, billing_email, billing_address, stripe_customer_id, metadata; JSON null clears a nullable field; unknown keys are refused (RINVL). Needs organization:update. Returns the row.';

create function roster.delete_organization(p_actor_id uuid, p_org_id uuid) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access record := roster._require_permission(p_actor_id, p_org_id, 'organization:delete');
begin
  update roster.organizations o set deleted_at = now()
   where o.tenant_id = v_access.tenant_id and o.id = p_org_id;
end
$$;
comment on function roster.delete_organization(uuid, uuid) is
  'Soft-deletes an organization: it disappears everywhere and grants nothing; its name and slug become free. Needs organization:delete (owners, tenant admins).';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.create_organization(uuid, text, text, text, text, text, jsonb, text, jsonb),
  roster.get_organization(uuid, uuid),
  roster.list_organizations(uuid, integer, integer),
  roster.list_user_organizations(uuid, uuid, integer, integer),
  roster.list_tenant_organizations(uuid, integer, integer),
  roster.update_organization(uuid, uuid, jsonb),
  roster.delete_organization(uuid, uuid)
to roster_app;
