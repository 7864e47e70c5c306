-- Custom roles, groups, grants and resources for S6 and S8-S10, loaded by .ci/bench/run.sh
-- after seed.sql:
--   psql -v models=100 -v big=10000 -f seed_authz.sql
--
-- In every organization: role `analyst` (organization:read, members:read, report:*) held by
-- every plain member (S6 checks report:read through the wildcard); groups g1 > g2 > g3 (a
-- 3-level chain) with every member but the owner in g3; an empty group s10 (S10 adds and
-- removes its members); role `editor` (model:read, model:update) granted to g1 on project `p`,
-- and :models models m0.. under ten folders f0..f9 under `p` (a 2-level parent chain). In the
-- first organization only, project `big` with :big models b00000.. under folders of 100, also
-- granted to g1 (S9 lists them).
--
-- Functions where there is one per row; the hierarchy by insert, whose triggers check each row
-- as set_resource_parent's would. Commits per organization and every 500 parents (see
-- seed.sql on long transactions).
\set ON_ERROR_STOP on
set bench.models = :'models';
set bench.big = :'big';

do $$
declare
  v_models integer := current_setting('bench.models')::integer;
  v_big    integer := current_setting('bench.big')::integer;
  v_tenant uuid := (select id from roster.tenants where slug = 'bench');
  v_first  boolean := true;
  r        record;
  v_member record;
begin
  perform roster.register_permissions(v_tenant, '[
    {"name": "model:read", "description": "read a model"},
    {"name": "model:update", "description": "change a model"},
    {"name": "project:read", "description": "read a project"},
    {"name": "folder:read", "description": "read a folder"},
    {"name": "report:read", "description": "read a report"},
    {"name": "report:export", "description": "export a report"}]');
  for r in
    select o.id as org, om.user_id as owner
      from roster.organizations o
      join roster.organization_memberships om on om.organization_id = o.id and om.role = 'owner'
     where o.tenant_id = v_tenant and om.deleted_at is null
     order by o.slug
  loop
    perform roster.create_role(r.owner, r.org, 'editor', 'Editor', null, array['model:read', 'model:update']);
    perform roster.create_role(r.owner, r.org, 'analyst', 'Analyst', null,
                               array['organization:read', 'members:read', 'report:*']);
    for v_member in
      select user_id from roster.organization_memberships
       where organization_id = r.org and deleted_at is null and role = 'member'
    loop
      perform roster.update_member(r.owner, r.org, v_member.user_id, p_role => 'analyst');
    end loop;
    perform roster.create_group(r.owner, r.org, 'g1', 'Group 1');
    perform roster.create_group(r.owner, r.org, 'g2', 'Group 2', null, 'g1');
    perform roster.create_group(r.owner, r.org, 'g3', 'Group 3', null, 'g2');
    perform roster.create_group(r.owner, r.org, 's10', 'S10 churn');
    for v_member in
      select user_id from roster.organization_memberships
       where organization_id = r.org and deleted_at is null and role <> 'owner'
    loop
      perform roster.add_group_member(r.owner, r.org, 'g3', v_member.user_id);
    end loop;
    perform roster.grant_role(r.owner, r.org, 'group', 'g1', 'editor', 'project', 'p');
    insert into roster.resource_parents (tenant_id, organization_id, resource_type, resource_id, parent_type, parent_id)
    select v_tenant, r.org, 'folder', 'f' || n, 'project', 'p' from generate_series(0, 9) n
    union all
    select v_tenant, r.org, 'model', 'm' || n, 'folder', 'f' || (n % 10) from generate_series(0, v_models - 1) n;
    commit;
    if v_first and v_big > 0 then
      v_first := false;
      perform roster.grant_role(r.owner, r.org, 'group', 'g1', 'editor', 'project', 'big');
      insert into roster.resource_parents (tenant_id, organization_id, resource_type, resource_id, parent_type, parent_id)
      select v_tenant, r.org, 'folder', 'bf' || n, 'project', 'big' from generate_series(0, (v_big - 1) / 100) n;
      commit;
      for chunk in 0..(v_big - 1) / 500 loop
        insert into roster.resource_parents (tenant_id, organization_id, resource_type, resource_id, parent_type, parent_id)
        select v_tenant, r.org, 'model', 'b' || lpad(n::text, 5, '0'), 'folder', 'bf' || (n / 100)
          from generate_series(chunk * 500, least(chunk * 500 + 499, v_big - 1)) n;
        commit;
      end loop;
    end if;
  end loop;
end
$$;

vacuum analyze;
-- Write the seed's pages out now, so that the first scenario (S1) does not share the machine
-- with the checkpoint they would start.
checkpoint;
