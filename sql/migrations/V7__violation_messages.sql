-- Messages for constraint violations that callers can cause, so that an error names the
-- offending value. One place for every constraint of V2..V5.

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* Writing functions catch unique, check and not-null violations and re-raise them through this,
   keeping the SQLSTATE and the constraint (or column) name, so that the API can still map them
   precisely while a DBA in psql reads which value was wrong. p_attempted holds the values the
   function tried to write. */
create function roster._explain_violation(p_constraint text, p_column text, p_attempted jsonb)
  returns text
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select case coalesce(nullif(p_constraint, ''), '(not null)')
    when '(not null)' then
      format('%s is required', coalesce(p_column, 'a value'))
    when 'uq_tenants_slug' then
      format('tenant slug %L is already taken', p_attempted ->> 'slug')
    when 'ck_tenants_slug_format' then
      format('slug %L must be 2 to 50 characters: lowercase letters and digits, in groups joined by single hyphens', p_attempted ->> 'slug')
    when 'ck_tenants_name_length' then
      format('tenant name %L must not be blank and must be at most 255 characters', left(p_attempted ->> 'name', 300))
    when 'uq_users_tenant_email' then
      format('a user with email %L already exists in this tenant', p_attempted ->> 'email')
    when 'ck_users_email_format' then
      format('email %L is not a valid email address', p_attempted ->> 'email')
    when 'ck_users_display_name_length' then
      format('display name %L must not be blank and must be at most 255 characters', left(p_attempted ->> 'display_name', 300))
    when 'uq_organizations_tenant_name' then
      format('an organization named %L already exists', p_attempted ->> 'name')
    when 'uq_organizations_tenant_slug' then
      format('organization slug %L is already taken', p_attempted ->> 'slug')
    when 'ck_organizations_name_length' then
      format('organization name %L must not be blank and must be at most 255 characters', left(p_attempted ->> 'name', 300))
    when 'ck_organizations_slug_format' then
      format('slug %L must be 2 to 50 characters: lowercase letters and digits, in groups joined by single hyphens', p_attempted ->> 'slug')
    when 'ck_organizations_description_length' then
      'description must be at most 2000 characters'
    when 'ck_organizations_domain_format' then
      format('domain %L must be a lowercase hostname with at least one dot, e.g. acme.com', p_attempted ->> 'domain')
    when 'ck_organizations_billing_email_format' then
      format('billing email %L is not a valid email address', p_attempted ->> 'billing_email')
    when 'ck_organizations_billing_address_object' then
      format('billing address must be a JSON object, got %s', jsonb_typeof(p_attempted -> 'billing_address'))
    when 'ck_organizations_stripe_customer_id_length' then
      format('stripe customer id %L must not be blank and must be at most 255 characters', left(p_attempted ->> 'stripe_customer_id', 300))
    when 'ck_organizations_metadata_object' then
      format('metadata must be a JSON object, got %s', jsonb_typeof(p_attempted -> 'metadata'))
    when 'uq_organization_memberships_tenant_org_user' then
      format('user %s is already a member of this organization', p_attempted ->> 'user_id')
    when 'ck_organization_memberships_role' then
      format('unknown role %L: expected owner, admin or member', p_attempted ->> 'role')
    when 'ck_organization_memberships_status' then
      format('unknown status %L: expected invited, active or suspended', p_attempted ->> 'status')
    else
      format('the change violates constraint %s', p_constraint)
  end
$$;
comment on function roster._explain_violation(text, text, jsonb) is
  'Internal: a human message for a constraint violation, naming the offending value taken from p_attempted.';

revoke execute on all functions in schema roster from public;
