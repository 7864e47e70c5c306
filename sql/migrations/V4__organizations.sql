-- Organizations: the groups a tenant's users form (customers, departments). Their functions
-- come in V8, once memberships and permissions exist.

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.organizations (
  tenant_id          uuid        not null,
  id                 uuid        not null default gen_random_uuid(),
  name               text        not null, -- unique per tenant among live rows, case-insensitively
  slug               text        not null, -- unique per tenant among live rows; used in URLs
  description        text,
  domain             text,                 -- the organization's email/web domain, e.g. acme.com
  billing_email      text,
  billing_address    jsonb,                -- free-form address object, e.g. {"city": ..., "country": ...}
  stripe_customer_id text,
  metadata           jsonb       not null default '{}',
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  created_by         uuid,                 -- null once that user is hard-deleted
  deleted_at         timestamptz,          -- soft delete: invisible everywhere, grants nothing
  -- Bumped by every change that can alter who may do what here (the organization itself or any
  -- of its memberships). Caches key on it; the last-owner guard serializes on this row through it.
  authz_version      bigint      not null default 1,
  constraint pk_organizations primary key (tenant_id, id),
  constraint fk_organizations_tenant foreign key (tenant_id) references roster.tenants (id),
  constraint fk_organizations_created_by foreign key (tenant_id, created_by)
    references roster.users (tenant_id, id) on delete set null (created_by),
  constraint ck_organizations_name_length check (btrim(name) <> '' and length(name) <= 255),
  constraint ck_organizations_slug_format
    check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and length(slug) between 2 and 50),
  constraint ck_organizations_description_length check (length(description) <= 2000),
  constraint ck_organizations_domain_format
    check (length(domain) <= 253
           and domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  constraint ck_organizations_billing_email_format
    check (length(billing_email) <= 320
           and billing_email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
  constraint ck_organizations_billing_address_object
    check (billing_address is null or jsonb_typeof(billing_address) = 'object'),
  constraint ck_organizations_stripe_customer_id_length
    check (btrim(stripe_customer_id) <> '' and length(stripe_customer_id) <= 255),
  constraint ck_organizations_metadata_object check (jsonb_typeof(metadata) = 'object')
);
comment on table roster.organizations is
  'Organizations of a tenant. Write through roster.create_organization / update_organization / delete_organization.';

create unique index uq_organizations_tenant_name on roster.organizations (tenant_id, lower(name))
  where deleted_at is null;
create unique index uq_organizations_tenant_slug on roster.organizations (tenant_id, slug)
  where deleted_at is null;
create index ix_organizations_tenant_domain on roster.organizations (tenant_id, domain);
-- Lookups by id alone (roster.member_access for a caller of another tenant). Not unique: see
-- ix_users_id.
create index ix_organizations_id on roster.organizations (id);

-- ============================================================================================
-- Triggers
-- ============================================================================================

-- Any edit, soft delete and restore included, touches updated_at and bumps authz_version (V3).
create trigger tg_organizations__touch before update on roster.organizations
  for each row execute function roster.tg__touch_and_bump_version();

revoke execute on all functions in schema roster from public;
