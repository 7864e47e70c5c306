-- The last `language sql` helpers with a SET clause on hot paths, in PL/pgSQL: such a function
-- is never inlined, and PostgreSQL plans its body afresh on every call (V31 did the same for
-- the resolver). Measured on the bench data: roster._seats_used planned in 2.3 ms and ran in
-- 0.26 ms, which made roster.get_organization (S1 uncached) 1,500 calls/s against
-- member_access's 7,300. The bumps run in every group, grant and resource write, the actor tag
-- and the audit test in every audited one. Same bodies,
-- same answers; PL/pgSQL plans each statement once per session.

create or replace function roster._member_count(p_tenant_id uuid, p_org_id uuid) returns bigint
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  return (select count(*)
            from roster.organization_memberships m
           where m.tenant_id = p_tenant_id and m.organization_id = p_org_id
             and m.status = 'active' and m.deleted_at is null);
end
$$;

/* Counted in one statement, so with one snapshot. */
create or replace function roster._seats_used(p_tenant_id uuid, p_org_id uuid) returns bigint
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  return (select count(*)
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
                  and (m.id = i.membership_id or lower(u.email) = i.email)));
end
$$;

create or replace function roster._bump_organization(p_tenant_id uuid, p_org_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  update roster.organizations o set authz_version = o.authz_version + 1
   where o.tenant_id = p_tenant_id and o.id = p_org_id;
end
$$;

create or replace function roster._bump_user(p_tenant_id uuid, p_user_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  update roster.users u set authz_version = u.authz_version + 1
   where u.tenant_id = p_tenant_id and u.id = p_user_id;
end
$$;

create or replace function roster._bump_resources(p_tenant_id uuid, p_org_id uuid) returns void
  language plpgsql volatile
  set search_path = pg_catalog, pg_temp
as $$
begin
  insert into roster.resource_versions as v (tenant_id, organization_id) values (p_tenant_id, p_org_id)
  on conflict on constraint pk_resource_versions do update set version = v.version + 1;
end
$$;

-- Twice in every write by a roster function (recording the actor, then checking it in the
-- audit trigger), and once per audited row.
create or replace function roster._actor_tag(p_actor_id uuid) returns text
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
begin
  return (select encode(sha256(convert_to(
                   s.secret || '/' || p_actor_id::text || '/' || pg_backend_pid()::text || '/' ||
                   transaction_timestamp()::text, 'UTF8')), 'hex')
            from roster.audit_secret s);
end
$$;

create or replace function roster._audited_change(p_before jsonb, p_after jsonb) returns boolean
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
as $$
begin
  return p_before - 'authz_version' - 'updated_at' is distinct from p_after - 'authz_version' - 'updated_at';
end
$$;
