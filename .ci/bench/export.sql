-- What gen_data.py needs from the loaded benchmark database, as tab-separated lines:
--   U <user id> <email>
--   O <organization id> <slug> <owner's user id>
--   M <user id> <organization id> <role>        (live memberships)
--   T <tenant id>                               (the bench tenant, for the service's token)
-- psql -X -At -F '<tab>' -f export.sql
select 'U', u.id, u.email
  from roster.users u
 where u.deleted_at is null
 order by u.email;

select 'O', o.id, o.slug, m.user_id
  from roster.organizations o
  join roster.organization_memberships m
    on m.tenant_id = o.tenant_id and m.organization_id = o.id
   and m.role = 'owner' and m.status = 'active' and m.deleted_at is null
 where o.deleted_at is null and m.id = (
         select m2.id from roster.organization_memberships m2
          where m2.tenant_id = o.tenant_id and m2.organization_id = o.id and m2.role = 'owner'
            and m2.status = 'active' and m2.deleted_at is null
          order by m2.created_at, m2.id limit 1)
 order by o.slug;

select 'M', m.user_id, m.organization_id, m.role
  from roster.organization_memberships m
 where m.deleted_at is null and m.status = 'active'
 order by m.organization_id, m.user_id;

select 'T', t.id from roster.tenants t where t.slug = 'bench';
