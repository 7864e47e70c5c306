-- Tenants: the SaaS customers whose users form organizations. Everything else hangs off one.

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.tenants (
  id         uuid        not null default gen_random_uuid(),
  slug       text        not null,
  name       text        not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz, -- soft delete: a deleted tenant's users can no longer act
  constraint pk_tenants primary key (id),
  constraint uq_tenants_slug unique (slug),
  constraint ck_tenants_slug_format
    check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and length(slug) between 2 and 50),
  constraint ck_tenants_name_length check (btrim(name) <> '' and length(name) <= 255)
);
comment on table roster.tenants is 'One row per SaaS customer; the root of all tenant data.';

-- ============================================================================================
-- Triggers
-- ============================================================================================
create trigger tg_tenants__touch_updated_at before update on roster.tenants
  for each row execute function roster.tg__touch_updated_at();

-- ============================================================================================
-- Public functions
-- ============================================================================================

/* Provisioning: no actor, because tenants are created by operators and identity services. */
create function roster.create_tenant(p_slug text, p_name text) returns uuid
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
  v_state text;
  v_constraint text;
  v_column text;
begin
  insert into roster.tenants (slug, name) values (p_slug, btrim(p_name)) returning id into v_id;
  return v_id;
exception when unique_violation or check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name,
    v_column = column_name;
  raise exception using errcode = v_state, constraint = v_constraint, column = v_column,
    message = roster._explain_violation(v_constraint, v_column,
      jsonb_build_object('slug', p_slug, 'name', p_name));
end
$$;
comment on function roster.create_tenant(text, text) is
  'Creates a tenant and returns its id. p_slug: 2-50 chars of [a-z0-9-], unique. Errors: 23505 uq_tenants_slug, 23514 ck_tenants_*.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function roster.create_tenant(text, text) to roster_provisioner;
