-- Verified domains and self-service joining. An organization claims email domains (acme.com);
-- each claim gets a verification token, which the product publishes as a DNS TXT record and
-- checks; a tenant admin (verify_domain) or the identity service through the provisioning role
-- (verify_domain_as_provisioner) then records that the check was done. A domain's policy says
-- what the tenant's users of that address domain may do: `none`, `suggest` (the organization
-- is suggested to them: list_suggested_organizations) or `auto_join` (they may join it
-- themselves, with the domain's join_role: join_organization).
--
-- Rules held by the database: a domain follows organizations.domain's hostname rule; an
-- organization claims a domain once; a verified domain belongs to at most one organization of
-- a tenant (a unique index: two concurrent verifications cannot both win); the join role is a
-- role available to the organization and cannot be deleted from under it; a deleted
-- organization releases its domains. Every change bumps the organization's authz_version
-- (announced on roster_changes) and is audited: domain.added|verified|unverified|updated|
-- removed.
--
-- Managing an organization's domains needs organization:update; verifying is not the
-- organization's to claim: tenant admins only (or the provisioning role).

-- ============================================================================================
-- Tables
-- ============================================================================================
create table roster.organization_domains (
  tenant_id           uuid        not null,
  id                  uuid        not null default gen_random_uuid(),
  organization_id     uuid        not null,
  domain              text        not null, -- a lowercase hostname, as organizations.domain
  status              text        not null default 'pending', -- pending | verified
  verification_token  text        not null default roster._new_token(), -- for the DNS TXT record the product checks
  policy              text        not null default 'none', -- none | suggest | auto_join
  join_role           text        not null default 'member', -- the role people joining through it get
  verified_at         timestamptz,
  verified_by_user_id uuid,        -- the tenant admin who recorded it; null for the provisioning role
  created_by_user_id  uuid,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  constraint pk_organization_domains primary key (tenant_id, id),
  constraint fk_organization_domains_organization foreign key (tenant_id, organization_id)
    references roster.organizations (tenant_id, id) on delete cascade,
  constraint fk_organization_domains_verified_by foreign key (tenant_id, verified_by_user_id)
    references roster.users (tenant_id, id) on delete set null (verified_by_user_id),
  constraint fk_organization_domains_created_by foreign key (tenant_id, created_by_user_id)
    references roster.users (tenant_id, id) on delete set null (created_by_user_id),
  constraint ck_organization_domains_domain_format
    check (length(domain) <= 253
           and domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  constraint ck_organization_domains_status check (status in ('pending', 'verified')),
  constraint ck_organization_domains_policy check (policy in ('none', 'suggest', 'auto_join')),
  constraint ck_organization_domains_verified check ((status = 'verified') = (verified_at is not null)),
  constraint ck_organization_domains_token check (length(verification_token) between 16 and 100)
);
comment on table roster.organization_domains is
  'Email domains organizations claim, verified or not, with what their users may do (policy). Write through roster.add_domain / verify_domain / update_domain / remove_domain.';

create unique index uq_organization_domains_org_domain
  on roster.organization_domains (tenant_id, organization_id, domain);
-- A verified domain belongs to one organization of a tenant.
create unique index uq_organization_domains_verified
  on roster.organization_domains (tenant_id, domain) where status = 'verified';
-- Lookups by domain (suggestions, joining, find_organizations_by_domain, the provisioner).
create index ix_organization_domains_tenant_domain on roster.organization_domains (tenant_id, domain);

-- ============================================================================================
-- Internal helpers
-- ============================================================================================

/* RINVL unless p_domain follows the hostname rule (the constraint remains the final guard). */
create function roster._check_domain(p_domain text) returns void
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_domain is null or length(p_domain) > 253
     or p_domain !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' then
    raise exception using errcode = 'RINVL',
      message = format('domain %s must be a lowercase hostname with at least one dot, e.g. acme.com',
                       coalesce(quote_literal(p_domain), 'null'));
  end if;
end
$$;
comment on function roster._check_domain(text) is 'Internal: RINVL unless the domain is a lowercase hostname with a dot.';

create function roster._check_domain_policy(p_policy text) returns void
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  if p_policy is null or p_policy not in ('none', 'suggest', 'auto_join') then
    raise exception using errcode = 'RINVL',
      message = format('unknown domain policy %s: expected none, suggest or auto_join', coalesce(quote_literal(p_policy), 'null'));
  end if;
end
$$;
comment on function roster._check_domain_policy(text) is 'Internal: RINVL unless the policy is none, suggest or auto_join.';

/* The domain of an email address, lowercase. */
create function roster._email_domain(p_email text) returns text
  language sql immutable
  set search_path = pg_catalog, pg_temp
as $$
  select lower(split_part(p_email, '@', 2))
$$;
comment on function roster._email_domain(text) is 'Internal: the domain part of an email address, lowercase.';

/* The organization's claim of a domain, locked; RDMNF when it has none. */
create function roster._lock_domain(p_tenant_id uuid, p_org_id uuid, p_domain text, p_org_slug text)
  returns roster.organization_domains
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_domain roster.organization_domains;
begin
  select d.* into v_domain from roster.organization_domains d
   where d.tenant_id = p_tenant_id and d.organization_id = p_org_id and d.domain = p_domain
     for update;
  if not found then
    raise exception using errcode = 'RDMNF',
      message = format('organization %s has no domain %s', p_org_slug, coalesce(quote_literal(p_domain), 'null'));
  end if;
  return v_domain;
end
$$;
comment on function roster._lock_domain(uuid, uuid, text, text) is
  'Internal: an organization''s domain, locked; RDMNF when it has not claimed it.';

/* Records the verification; a domain another organization of the tenant verified is 23505. */
create function roster._verify_domain(p_domain roster.organization_domains, p_verified_by uuid)
  returns roster.organization_domains
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_domain roster.organization_domains := p_domain;
  v_constraint text;
begin
  if v_domain.status = 'verified' then
    return v_domain;
  end if;
  update roster.organization_domains d
     set status = 'verified', verified_at = now(), verified_by_user_id = p_verified_by
   where d.tenant_id = p_domain.tenant_id and d.id = p_domain.id
  returning d.* into v_domain;
  return v_domain;
exception when unique_violation then
  get stacked diagnostics v_constraint = constraint_name;
  raise exception using errcode = '23505', constraint = v_constraint,
    message = format('domain %s is verified by another organization of the tenant: remove it there first', p_domain.domain);
end
$$;
comment on function roster._verify_domain(roster.organization_domains, uuid) is
  'Internal: marks a domain verified (idempotent); 23505 uq_organization_domains_verified when another organization of the tenant holds it.';

-- ============================================================================================
-- Triggers
-- ============================================================================================

/* updated_at, and a pending domain carries no verification. */
create function roster.tg_organization_domains__touch() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  if new.status = 'pending' then
    new.verified_at := null;
    new.verified_by_user_id := null;
  elsif new.verified_at is null then
    new.verified_at := now();
  end if;
  return new;
end
$$;
comment on function roster.tg_organization_domains__touch() is
  'Trigger: keeps updated_at and verified_at current (a pending domain has no verification).';

create trigger tg_organization_domains__touch before insert or update on roster.organization_domains
  for each row execute function roster.tg_organization_domains__touch();

create function roster.tg_organization_domains__check_role() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  if (roster._find_role(new.tenant_id, new.organization_id, new.join_role)).key is null then
    raise exception using errcode = 'RINVL', constraint = 'fk_organization_domains_join_role',
      message = format('unknown role %L: no such role in this organization or its tenant', new.join_role);
  end if;
  return null;
end
$$;
comment on function roster.tg_organization_domains__check_role() is
  'Trigger: a domain''s join_role is a role available to its organization (RINVL otherwise).';

create constraint trigger tg_organization_domains__check_role
  after insert or update of join_role, organization_id on roster.organization_domains
  deferrable initially immediate
  for each row execute function roster.tg_organization_domains__check_role();

create function roster.tg_organization_domains__bump_organization() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    update roster.organizations o set authz_version = o.authz_version + 1
     where o.tenant_id = old.tenant_id and o.id = old.organization_id;
  end if;
  if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.organization_id <> old.organization_id) then
    update roster.organizations o set authz_version = o.authz_version + 1
     where o.tenant_id = new.tenant_id and o.id = new.organization_id;
  end if;
  return null;
end
$$;
comment on function roster.tg_organization_domains__bump_organization() is
  'Trigger: a domain change bumps its organization''s authz_version (and so announces it on roster_changes).';

create trigger tg_organization_domains__bump_organization
  after insert or update or delete on roster.organization_domains
  for each row execute function roster.tg_organization_domains__bump_organization();

create function roster.tg_organization_domains__audit() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_before jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) end;
  v_after jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) end;
  v_action text;
begin
  if tg_op = 'INSERT' then
    v_action := 'domain.added';
  elsif tg_op = 'DELETE' then
    v_action := 'domain.removed';
  elsif not roster._audited_change(v_before, v_after) then
    return null;
  elsif old.status = 'pending' and new.status = 'verified' then
    v_action := 'domain.verified';
  elsif old.status = 'verified' and new.status = 'pending' then
    v_action := 'domain.unverified';
  else
    v_action := 'domain.updated';
  end if;
  perform roster._record_audit_event(coalesce(new.tenant_id, old.tenant_id), v_action,
                                     coalesce(new.organization_id, old.organization_id), null,
                                     v_before, v_after);
  return null;
end
$$;
comment on function roster.tg_organization_domains__audit() is
  'Trigger: records domain changes in roster.audit_events.';

create trigger tg_organization_domains__audit after insert or update or delete on roster.organization_domains
  for each row execute function roster.tg_organization_domains__audit();

/* A deleted organization releases its domains, as it frees its name and slug (V4): another
   organization may then verify them. */
create function roster.tg_organizations__release_domains() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  delete from roster.organization_domains d
   where d.tenant_id = new.tenant_id and d.organization_id = new.id;
  return null;
end
$$;
comment on function roster.tg_organizations__release_domains() is
  'Trigger: soft-deleting an organization removes its domains.';

create trigger tg_organizations__release_domains after update of deleted_at on roster.organizations
  for each row
  when (old.deleted_at is null and new.deleted_at is not null)
  execute function roster.tg_organizations__release_domains();

/* A role people join with cannot be deleted, as one memberships hold (V20). */
create function roster.tg_roles__refuse_delete_held_by_domains() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_domains text;
begin
  select string_agg(d.domain, ', ' order by d.domain) into v_domains
    from roster.organization_domains d
   where d.tenant_id = old.tenant_id and d.join_role = old.key
     and (old.organization_id is null or d.organization_id = old.organization_id)
     and exists (select from roster.organizations o
                  where o.tenant_id = d.tenant_id and o.id = d.organization_id);
  if v_domains is not null then
    raise exception using errcode = 'RRLUS',
      message = format('role %s is the join role of domain(s) %s: change their join_role first', old.key, v_domains);
  end if;
  return old;
end
$$;
comment on function roster.tg_roles__refuse_delete_held_by_domains() is
  'Trigger: RRLUS when a deleted role is the join role of domains.';

create trigger tg_roles__refuse_delete_held_by_domains before delete on roster.roles
  for each row when (not old.builtin)
  execute function roster.tg_roles__refuse_delete_held_by_domains();

-- ============================================================================================
-- Public functions: an organization's domains
-- ============================================================================================

create function roster.add_domain(
  p_actor_id uuid,
  p_org_id uuid,
  p_domain text,
  p_policy text default 'none',
  p_join_role text default 'member'
) returns roster.organization_domains
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:update');
  v_domain roster.organization_domains;
  v_constraint text;
begin
  perform roster._check_domain(p_domain);
  perform roster._check_domain_policy(coalesce(p_policy, 'none'));
  perform roster._require_may_give_role(v_access, p_org_id, coalesce(p_join_role, 'member'));
  insert into roster.organization_domains
    (tenant_id, organization_id, domain, policy, join_role, created_by_user_id)
  values (v_access.tenant_id, p_org_id, p_domain, coalesce(p_policy, 'none'),
          coalesce(p_join_role, 'member'), p_actor_id)
  returning * into v_domain;
  return v_domain;
exception when unique_violation then
  get stacked diagnostics v_constraint = constraint_name;
  raise exception using errcode = '23505', constraint = v_constraint,
    message = format('organization %s has claimed domain %s already', v_access.org_slug, p_domain);
end
$$;
comment on function roster.add_domain(uuid, uuid, text, text, text) is
  'Claims an email domain for the organization, pending verification; returns it with its verification_token (publish it as a DNS TXT record; the product checks it, then verify_domain records it). p_policy none, suggest or auto_join; p_join_role the role joiners get (the actor must be able to give it). Needs organization:update. Errors: RNFND, RDNID, RINVL, RESCL, 23505 uq_organization_domains_org_domain.';

create function roster.verify_domain(p_actor_id uuid, p_org_id uuid, p_domain text)
  returns roster.organization_domains
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:read');
begin
  if not v_access.is_tenant_admin then
    raise exception using errcode = 'RDNID',
      message = format('only a tenant admin (or the provisioning role) records that a domain of organization %s was verified', v_access.org_slug);
  end if;
  return roster._verify_domain(
    roster._lock_domain(v_access.tenant_id, p_org_id, p_domain, v_access.org_slug), p_actor_id);
end
$$;
comment on function roster.verify_domain(uuid, uuid, text) is
  'Records that the domain''s DNS check was done: it becomes verified (idempotent). Tenant admins only (RDNID). Errors: RNFND, RDMNF, 23505 uq_organization_domains_verified (another organization of the tenant verified it).';

/* The identity service checked DNS itself: it names the tenant and the domain, and when
   several organizations claim it, the verification token it found. */
create function roster.verify_domain_as_provisioner(
  p_tenant_id uuid,
  p_domain text,
  p_verification_token text default null
) returns roster.organization_domains
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_tenant uuid := roster._require_tenant_manager(p_tenant_id, null);
  v_claims bigint;
  v_domain roster.organization_domains;
begin
  select count(*) into v_claims
    from roster.organization_domains d
    join roster.organizations o on o.tenant_id = d.tenant_id and o.id = d.organization_id and o.deleted_at is null
   where d.tenant_id = v_tenant and d.domain = p_domain
     and (p_verification_token is null or d.verification_token = p_verification_token);
  if v_claims = 0 then
    raise exception using errcode = 'RDMNF',
      message = format('no organization of the tenant claims domain %s%s', coalesce(quote_literal(p_domain), 'null'),
                       case when p_verification_token is not null then ' with that verification token' else '' end);
  elsif v_claims > 1 then
    raise exception using errcode = 'RINVL',
      message = format('%s organizations claim domain %s: give the verification token found in DNS', v_claims, p_domain);
  end if;
  select d.* into v_domain
    from roster.organization_domains d
    join roster.organizations o on o.tenant_id = d.tenant_id and o.id = d.organization_id and o.deleted_at is null
   where d.tenant_id = v_tenant and d.domain = p_domain
     and (p_verification_token is null or d.verification_token = p_verification_token)
     for update of d;
  return roster._verify_domain(v_domain, null);
end
$$;
comment on function roster.verify_domain_as_provisioner(uuid, text, text) is
  'For identity services (provisioning role) that checked the DNS TXT record: records the domain verified for the organization of the tenant that claims it; when several claim it, p_verification_token (the token found) says which. Errors: RTNNF, RDMNF, RINVL (several claims, no token), 23505 uq_organization_domains_verified.';

create function roster.update_domain(p_actor_id uuid, p_org_id uuid, p_domain text, p_changes jsonb)
  returns roster.organization_domains
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:update');
  v_domain roster.organization_domains;
  v_key text;
begin
  if jsonb_typeof(p_changes) is distinct from 'object' then
    raise exception using errcode = 'RINVL',
      message = format('changes must be a JSON object, got %s', coalesce(jsonb_typeof(p_changes), 'null'));
  end if;
  if p_changes = '{}' then
    raise exception using errcode = 'RINVL', message = 'nothing to change: give a policy, a join_role or both';
  end if;
  for v_key in select jsonb_object_keys(p_changes) loop
    if v_key not in ('policy', 'join_role') then
      raise exception using errcode = 'RINVL',
        message = format('unknown field %L: expected policy, join_role', v_key);
    elsif jsonb_typeof(p_changes -> v_key) <> 'string' then
      raise exception using errcode = 'RINVL',
        message = format('%s must be a string, got %s', v_key, jsonb_typeof(p_changes -> v_key));
    end if;
  end loop;
  if p_changes ? 'policy' then
    perform roster._check_domain_policy(p_changes ->> 'policy');
  end if;
  v_domain := roster._lock_domain(v_access.tenant_id, p_org_id, p_domain, v_access.org_slug);
  if p_changes ? 'join_role' then
    -- Neither give more than one holds, nor change a role one could not give.
    perform roster._require_may_give_role(v_access, p_org_id, p_changes ->> 'join_role');
    perform roster._require_may_give_role(v_access, p_org_id, v_domain.join_role);
  end if;
  update roster.organization_domains d set
    policy = coalesce(p_changes ->> 'policy', d.policy),
    join_role = coalesce(p_changes ->> 'join_role', d.join_role)
   where d.tenant_id = v_domain.tenant_id and d.id = v_domain.id
  returning d.* into v_domain;
  return v_domain;
end
$$;
comment on function roster.update_domain(uuid, uuid, text, jsonb) is
  'Changes a domain''s policy (none, suggest, auto_join) and/or join_role (which the actor must be able to give, as the current one); returns it. Needs organization:update. Errors: RNFND, RDNID, RDMNF, RINVL, RESCL.';

create function roster.remove_domain(p_actor_id uuid, p_org_id uuid, p_domain text) returns void
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:update');
  v_domain roster.organization_domains := roster._lock_domain(v_access.tenant_id, p_org_id, p_domain, v_access.org_slug);
begin
  delete from roster.organization_domains d where d.tenant_id = v_domain.tenant_id and d.id = v_domain.id;
end
$$;
comment on function roster.remove_domain(uuid, uuid, text) is
  'Removes the organization''s claim of a domain (verified or not): another organization may then verify it. Members who joined through it stay. Needs organization:update. Errors: RNFND, RDNID, RDMNF.';

create function roster.list_domains(p_actor_id uuid, p_org_id uuid)
  returns setof roster.organization_domains
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'organization:update');
begin
  return query
  select d.* from roster.organization_domains d
   where d.tenant_id = v_access.tenant_id and d.organization_id = p_org_id
   order by d.domain;
end
$$;
comment on function roster.list_domains(uuid, uuid) is
  'The organization''s domains with their status, verification token, policy and join role, by name. Needs organization:update.';

-- ============================================================================================
-- Public functions: finding and joining organizations by domain
-- ============================================================================================

/* The Quodsi seed's get_by_domain. A tenant admin sees every organization of the tenant that
   claims the domain (or has it as organizations.domain); anyone else only those it is an
   active member of, and those it could join or is suggested to (a verified domain, policy
   suggest or auto_join, that is its own email's). */
create function roster.find_organizations_by_domain(p_actor_id uuid, p_domain text)
  returns table (
    organization_id uuid, name text, slug text, domain text, domain_status text, policy text,
    join_role text, membership_status text
  )
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
  v_domain text := lower(p_domain);
begin
  return query
  select o.id, o.name, o.slug, v_domain, d.status, d.policy, d.join_role, m.status
    from roster.organizations o
    left join roster.organization_domains d
      on d.tenant_id = o.tenant_id and d.organization_id = o.id and d.domain = v_domain
    left join roster.organization_memberships m
      on m.tenant_id = o.tenant_id and m.organization_id = o.id and m.user_id = v_actor.id
     and m.deleted_at is null
   where o.tenant_id = v_actor.tenant_id and o.deleted_at is null
     and (d.id is not null or o.domain = v_domain)
     and (v_actor.is_tenant_admin
          or m.status = 'active'
          or (d.status = 'verified' and d.policy in ('suggest', 'auto_join')
              and v_domain = roster._email_domain(v_actor.email)))
   order by lower(o.name), o.id;
end
$$;
comment on function roster.find_organizations_by_domain(uuid, text) is
  'The organizations of the actor''s tenant with a domain (claimed, or as organizations.domain): all of them for a tenant admin; for others, those they are an active member of and those their own email''s verified domain lets them join or suggests. With the domain''s status, policy and join role, and the actor''s membership status.';

create function roster.list_suggested_organizations(p_actor_id uuid)
  returns table (organization_id uuid, name text, slug text, domain text, policy text, join_role text)
  language plpgsql stable security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
begin
  return query
  select o.id, o.name, o.slug, d.domain, d.policy, d.join_role
    from roster.organization_domains d
    join roster.organizations o
      on o.tenant_id = d.tenant_id and o.id = d.organization_id and o.deleted_at is null
   where d.tenant_id = v_actor.tenant_id and d.domain = roster._email_domain(v_actor.email)
     and d.status = 'verified' and d.policy in ('suggest', 'auto_join')
     and not exists (select from roster.organization_memberships m
                      where m.tenant_id = o.tenant_id and m.organization_id = o.id
                        and m.user_id = v_actor.id and m.deleted_at is null)
   order by lower(o.name), o.id;
end
$$;
comment on function roster.list_suggested_organizations(uuid) is
  'The organizations whose verified domain, with policy suggest or auto_join, is the actor''s email domain and that the actor is not in: policy auto_join may be joined (join_organization), suggest needs an invitation.';

create function roster.join_organization(p_actor_id uuid, p_org_id uuid)
  returns roster.organization_memberships
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_actor roster.users := roster._actor(p_actor_id);
  v_domain roster.organization_domains;
  v_slug text;
  v_existing roster.organization_memberships;
  v_membership roster.organization_memberships;
  v_constraint text;
begin
  select m.* into v_existing
    from roster.organization_memberships m
    join roster.organizations o on o.tenant_id = m.tenant_id and o.id = m.organization_id and o.deleted_at is null
   where m.tenant_id = v_actor.tenant_id and m.organization_id = p_org_id and m.user_id = v_actor.id
     and m.deleted_at is null;
  select d.* into v_domain
    from roster.organization_domains d
    join roster.organizations o on o.tenant_id = d.tenant_id and o.id = d.organization_id and o.deleted_at is null
   where d.tenant_id = v_actor.tenant_id and d.organization_id = p_org_id
     and d.domain = roster._email_domain(v_actor.email) and d.status = 'verified'
     and d.policy in ('suggest', 'auto_join');
  if v_existing.id is not null then
    raise exception using errcode = 'RISMB',
      message = format('user %s is already a member of organization %s (status %s)', v_actor.id, p_org_id, v_existing.status);
  end if;
  -- Who may not join learns nothing more of the organization than anyone else would.
  if v_domain.id is null then
    raise exception using errcode = 'RNFND',
      message = format('organization %s not found', coalesce(p_org_id::text, 'null'));
  end if;
  if v_domain.policy <> 'auto_join' then
    select o.slug into v_slug from roster.organizations o
     where o.tenant_id = v_actor.tenant_id and o.id = p_org_id;
    raise exception using errcode = 'RDNID',
      message = format('organization %s suggests itself to %s addresses but does not let them join by themselves: ask for an invitation', v_slug, v_domain.domain);
  end if;
  insert into roster.organization_memberships (tenant_id, organization_id, user_id, role, status)
  values (v_actor.tenant_id, p_org_id, v_actor.id, v_domain.join_role, 'active')
  returning * into v_membership;
  return v_membership;
exception when unique_violation then
  -- A concurrent join or add of the same user won the race.
  get stacked diagnostics v_constraint = constraint_name;
  raise exception using errcode = 'RISMB', constraint = v_constraint,
    message = format('user %s is already a member of organization %s', v_actor.id, p_org_id);
end
$$;
comment on function roster.join_organization(uuid, uuid) is
  'The actor joins the organization by itself, allowed only through a verified domain with policy auto_join that is its email''s domain: it becomes an active member with the domain''s join_role; returns the membership. Errors: RNFND (no such domain for the actor: the organization stays invisible), RDNID (policy suggest), RISMB, RSEAT.';

-- ============================================================================================
-- Grants
-- ============================================================================================
revoke execute on all functions in schema roster from public;
grant execute on function
  roster.add_domain(uuid, uuid, text, text, text),
  roster.verify_domain(uuid, uuid, text),
  roster.update_domain(uuid, uuid, text, jsonb),
  roster.remove_domain(uuid, uuid, text),
  roster.list_domains(uuid, uuid),
  roster.find_organizations_by_domain(uuid, text),
  roster.list_suggested_organizations(uuid),
  roster.join_organization(uuid, uuid)
to roster_app;
grant execute on function roster.verify_domain_as_provisioner(uuid, text, text) to roster_provisioner;
