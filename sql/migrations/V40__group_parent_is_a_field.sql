-- A parent_key that names no group is bad input (RINVL, 422 naming parent_key), no longer
-- RGRNF (404 group_not_found): a 404 is about the target of the request (the path), and the
-- API's clients, generic OpenAPI tools among them, read it so. The group being changed, named
-- in the path, still answers RGRNF.

create function roster._parent_group(p_tenant_id uuid, p_org_id uuid, p_key text) returns uuid
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
begin
  select g.id into v_id from roster.groups g
   where g.tenant_id = p_tenant_id and g.organization_id = p_org_id and g.key = p_key;
  if not found then
    raise exception using errcode = 'RINVL',
      message = format('parent_key: no group %L in this organization', p_key);
  end if;
  return v_id;
end
$$;
comment on function roster._parent_group(uuid, uuid, text) is
  'Internal: the id of the group a parent_key names, or RINVL naming parent_key.';

create or replace function roster.create_group(
  p_actor_id uuid,
  p_org_id uuid,
  p_key text,
  p_name text,
  p_description text default null,
  p_parent_key text default null
) returns roster.group_row
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'groups:manage');
  v_parent uuid;
  v_group roster.groups;
  v_state text;
  v_constraint text;
begin
  if p_parent_key is not null then
    v_parent := roster._parent_group(v_access.tenant_id, p_org_id, p_parent_key);
  end if;
  insert into roster.groups (tenant_id, organization_id, key, name, description, parent_id)
  values (v_access.tenant_id, p_org_id, p_key, btrim(p_name), p_description, v_parent)
  returning * into v_group;
  return (select r from roster._group_rows(v_access.tenant_id, p_org_id) r where r.id = v_group.id);
exception when unique_violation or check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  raise exception using errcode = v_state, constraint = v_constraint,
    message = case v_constraint
      when 'uq_groups_organization_key' then format('a group with key %L already exists in this organization', p_key)
      when 'ck_groups_key_format' then format('group key %L must be 2 to 50 characters of a-z, 0-9, _ and -, starting with a letter', p_key)
      when 'ck_groups_name_length' then format('group name %L must not be blank and must be at most 100 characters', left(p_name, 120))
      when 'ck_groups_description_length' then 'group description must be at most 1000 characters'
      else format('the group violates constraint %s', coalesce(v_constraint, '(not null)')) end;
end
$$;
comment on function roster.create_group(uuid, uuid, text, text, text, text) is
  'Creates a group of the organization, under p_parent_key if given (at most 8 levels); returns it as get_group shows it. Needs groups:manage. Errors: RINVL (no group p_parent_key), RHIER, 23505 uq_groups_organization_key, 23514 ck_groups_*.';

create or replace function roster.update_group(p_actor_id uuid, p_org_id uuid, p_key text, p_changes jsonb)
  returns roster.group_row
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
  set roster.actor_id = '' -- the actor roster._actor records lasts for this call only
as $$
declare
  v_access roster.access := roster._require_permission(p_actor_id, p_org_id, 'groups:manage');
  v_group roster.groups := roster._group(v_access.tenant_id, p_org_id, p_key);
  v_parent uuid := v_group.parent_id;
  v_key text;
  v_state text;
  v_constraint text;
begin
  if jsonb_typeof(p_changes) is distinct from 'object' then
    raise exception using errcode = 'RINVL',
      message = format('changes must be a JSON object, got %s', coalesce(jsonb_typeof(p_changes), 'null'));
  end if;
  for v_key in select jsonb_object_keys(p_changes) loop
    if v_key not in ('name', 'description', 'parent_key') then
      raise exception using errcode = 'RINVL',
        message = format('unknown field %L: expected one of name, description, parent_key', v_key);
    end if;
  end loop;
  if p_changes ? 'name' and jsonb_typeof(p_changes -> 'name') <> 'string' then
    raise exception using errcode = 'RINVL', message = 'name must be a string';
  end if;
  if p_changes ? 'description' and jsonb_typeof(p_changes -> 'description') not in ('string', 'null') then
    raise exception using errcode = 'RINVL', message = 'description must be a string or null';
  end if;
  if p_changes ? 'parent_key' then
    if jsonb_typeof(p_changes -> 'parent_key') = 'null' then
      v_parent := null;
    elsif jsonb_typeof(p_changes -> 'parent_key') = 'string' then
      v_parent := roster._parent_group(v_access.tenant_id, p_org_id, p_changes ->> 'parent_key');
    else
      raise exception using errcode = 'RINVL', message = 'parent_key must be a string or null';
    end if;
  end if;
  update roster.groups g set
    name = case when p_changes ? 'name' then btrim(p_changes ->> 'name') else g.name end,
    description = case when p_changes ? 'description' then p_changes ->> 'description' else g.description end,
    parent_id = v_parent
   where g.tenant_id = v_group.tenant_id and g.id = v_group.id
  returning * into v_group;
  return (select r from roster._group_rows(v_group.tenant_id, p_org_id) r where r.id = v_group.id);
exception when check_violation or not_null_violation then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  if v_constraint = 'ck_groups_not_own_parent' then
    raise exception using errcode = 'RHIER', message = format('group %s cannot be its own parent', p_key);
  end if;
  raise exception using errcode = v_state, constraint = v_constraint,
    message = case v_constraint
      when 'ck_groups_name_length' then 'group name must not be blank and must be at most 100 characters'
      when 'ck_groups_description_length' then 'group description must be at most 1000 characters'
      else format('the group violates constraint %s', coalesce(v_constraint, '(not null)')) end;
end
$$;
comment on function roster.update_group(uuid, uuid, text, jsonb) is
  'Partial update of a group: name, description, parent_key (null: top level); returns it as get_group shows it. Needs groups:manage. Errors: RGRNF (the group p_key), RINVL (no group parent_key, a bad change), RHIER (cycle, its own parent, over 8 levels).';
