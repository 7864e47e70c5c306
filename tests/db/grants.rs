//! Groups, grants, the resource hierarchy and expiring access, at the SQL door: the path
//! matrix (direct, group, nested group, parent resource; each expired; suspended and removed
//! members; other organizations and tenants), the rules raw SQL cannot break (cycles, depth,
//! members only), the lookups (list_resources, accessible_resource_ids, explain_access), a
//! service's own table under row-level security, and what a write costs in versions.

use serde_json::json;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::common::{self, TestLogin};
use crate::support::*;

/// `model:*` and `project:read` in the catalogue, role `editor` (model:read, model:update) in
/// `World::org`, and the group tree eng > ml > vision.
async fn setup(c: &Client) -> World {
    let w = World::build(c).await;
    let items = json!([
        {"name": "model:read", "description": "read a model"},
        {"name": "model:update", "description": "change a model"},
        {"name": "project:read", "description": "read a project"},
    ]);
    must_run(
        c,
        "select * from roster.register_permissions($1, $2)",
        &[&w.tenant, &items],
    )
    .await;
    must_run(
        c,
        "select * from roster.create_role($1, $2, 'editor', 'Editor', null, \
                array['model:read', 'model:update'])",
        &[&w.owner, &w.org],
    )
    .await;
    create_group(c, &w, "eng", None).await;
    create_group(c, &w, "ml", Some("eng")).await;
    create_group(c, &w, "vision", Some("ml")).await;
    w
}

async fn create_group(c: &Client, w: &World, key: &str, parent: Option<&str>) {
    must_run(
        c,
        "select * from roster.create_group($1, $2, $3, $4, null, $5)",
        &[&w.owner, &w.org, &key, &format!("Group {key}"), &parent],
    )
    .await;
}

async fn join(c: &Client, w: &World, group: &str, user: Uuid) {
    must_run(
        c,
        "select * from roster.add_group_member($1, $2, $3, $4)",
        &[&w.owner, &w.org, &group, &user],
    )
    .await;
}

/// A grant by the owner; its id.
async fn grant(
    c: &Client,
    w: &World,
    subject: (&str, &str),
    role: &str,
    resource: Option<(&str, &str)>,
) -> Uuid {
    must_run(
        c,
        "select id from roster.grant_role($1, $2, $3, $4, $5, $6, $7)",
        &[
            &w.owner,
            &w.org,
            &subject.0,
            &subject.1,
            &role,
            &resource.map(|r| r.0),
            &resource.map(|r| r.1),
        ],
    )
    .await[0]
        .get("id")
}

async fn set_parent(c: &Client, w: &World, child: (&str, &str), parent: Option<(&str, &str)>) {
    must_run(
        c,
        "select roster.set_resource_parent($1, $2, $3, $4, $5, $6)",
        &[
            &w.owner,
            &w.org,
            &child.0,
            &child.1,
            &parent.map(|p| p.0),
            &parent.map(|p| p.1),
        ],
    )
    .await;
}

/// The five-argument check.
async fn may(c: &Client, user: Uuid, org: Uuid, permission: &str, model: &str) -> bool {
    must_run(
        c,
        "select roster.has_permission($1, $2, $3, 'model', $4) as allowed",
        &[&user, &org, &permission, &model],
    )
    .await[0]
        .get("allowed")
}

async fn may_anywhere(c: &Client, user: Uuid, org: Uuid, permission: &str) -> bool {
    must_run(
        c,
        "select roster.has_permission($1, $2, $3) as allowed",
        &[&user, &org, &permission],
    )
    .await[0]
        .get("allowed")
}

/// Makes a row expire now, as time passing would (raw SQL: the functions refuse a past expiry).
async fn expire(c: &Client, table: &str, id: Uuid) {
    must_run(
        c,
        &format!(
            "update roster.{table} set expires_at = now() - interval '1 second' where id = $1"
        ),
        &[&id],
    )
    .await;
}

async fn group_membership_id(c: &Client, group: &str, user: Uuid) -> Uuid {
    must_run(
        c,
        "select gm.id from roster.group_members gm join roster.groups g on g.id = gm.group_id \
          where g.key = $1 and gm.user_id = $2 and gm.deleted_at is null",
        &[&group, &user],
    )
    .await[0]
        .get("id")
}

#[tokio::test]
async fn every_path_grants_on_the_resource_and_nothing_past_its_expiry() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let direct = w
        .new_member(&c, "direct@acme.test", "member", "active")
        .await;
    let grouped = w
        .new_member(&c, "grouped@acme.test", "member", "active")
        .await;
    let nested = w
        .new_member(&c, "nested@acme.test", "member", "active")
        .await;
    let under_parent = w
        .new_member(&c, "parent@acme.test", "member", "active")
        .await;

    let direct_grant = grant(
        &c,
        &w,
        ("user", &direct.to_string()),
        "editor",
        Some(("model", "42")),
    )
    .await;
    join(&c, &w, "eng", grouped).await;
    join(&c, &w, "vision", nested).await;
    let group_grant = grant(&c, &w, ("group", "eng"), "editor", Some(("model", "42"))).await;
    set_parent(&c, &w, ("model", "42"), Some(("project", "p1"))).await;
    let parent_grant = grant(
        &c,
        &w,
        ("user", &under_parent.to_string()),
        "editor",
        Some(("project", "p1")),
    )
    .await;

    for (who, user) in [
        ("direct grant", direct),
        ("group grant", grouped),
        ("grant to an ancestor group", nested),
        ("grant on the parent resource", under_parent),
    ] {
        assert!(
            may(&c, user, w.org, "model:update", "42").await,
            "{who}: on model 42"
        );
        assert!(
            !may(&c, user, w.org, "model:update", "43").await,
            "{who}: not on model 43"
        );
        assert!(
            !may_anywhere(&c, user, w.org, "model:update").await,
            "{who}: nothing organization-wide"
        );
        assert!(
            !may(&c, user, w.org, "members:invite", "42").await,
            "{who}: only the role's permissions"
        );
    }
    // The member's role still counts on every resource.
    assert!(may(&c, w.member, w.org, "organization:read", "42").await);
    assert!(
        !may(&c, w.member, w.org, "model:read", "42").await,
        "no grant, no access"
    );

    expire(&c, "grants", direct_grant).await;
    assert!(
        !may(&c, direct, w.org, "model:update", "42").await,
        "an expired direct grant"
    );
    let nested_row = group_membership_id(&c, "vision", nested).await;
    expire(&c, "group_members", nested_row).await;
    assert!(
        !may(&c, nested, w.org, "model:update", "42").await,
        "an expired group membership"
    );
    assert!(
        may(&c, grouped, w.org, "model:update", "42").await,
        "others keep the group grant"
    );
    expire(&c, "grants", parent_grant).await;
    assert!(
        !may(&c, under_parent, w.org, "model:update", "42").await,
        "an expired grant on the parent"
    );
    expire(&c, "grants", group_grant).await;
    assert!(
        !may(&c, grouped, w.org, "model:update", "42").await,
        "an expired group grant"
    );
}

#[tokio::test]
async fn an_expired_membership_grants_nothing_and_explains_why() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let temp = w.new_user(&c, "temp@acme.test").await;
    must_run(
        &c,
        "select * from roster.add_member($1, $2, $3, 'admin', 'active', now() + interval '1 hour')",
        &[&w.owner, &w.org, &temp],
    )
    .await;
    assert!(may_anywhere(&c, temp, w.org, "members:invite").await);
    let membership: Uuid = must_run(
        &c,
        "select id from roster.organization_memberships where user_id = $1",
        &[&temp],
    )
    .await[0]
        .get("id");
    expire(&c, "organization_memberships", membership).await;
    assert!(!may_anywhere(&c, temp, w.org, "organization:read").await);
    let why = must_run(
        &c,
        "select * from roster.explain_access($1, $2, 'organization:read', null, null)",
        &[&temp, &w.org],
    )
    .await;
    assert_eq!("expired", why[0].get::<_, &str>("reason"));
    let access = must_run(
        &c,
        "select visible, valid_until from roster.member_access($1, $2)",
        &[&temp, &w.org],
    )
    .await;
    assert!(
        !access[0].get::<_, bool>("visible"),
        "an expired member does not see the organization"
    );

    let err = must_fail(
        &c,
        "select * from roster.add_member($1, $2, $3, 'member', 'active', now() - interval '1 minute')",
        &[&w.owner, &w.org, &w.non_member],
    )
    .await;
    assert_eq!(
        "RINVL",
        sqlstate(&err),
        "a past expiry is refused: {}",
        message(&err)
    );
}

#[tokio::test]
async fn the_cached_answers_say_until_when_they_hold() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let user = w
        .new_member(&c, "until@acme.test", "member", "active")
        .await;
    must_run(
        &c,
        "select * from roster.grant_role($1, $2, 'user', $3, 'editor', 'model', '7', now() + interval '2 hours')",
        &[&w.owner, &w.org, &user.to_string()],
    )
    .await;
    must_run(
        &c,
        "select * from roster.update_member($1, $2, $3, p_expires_at => now() + interval '1 day')",
        &[&w.owner, &w.org, &user],
    )
    .await;
    let row = &must_run(
        &c,
        "select a.valid_until <= now() + interval '1 day' and a.valid_until > now() + interval '23 hours' as member_bound, \
                r.valid_until <= now() + interval '2 hours' as grant_bound, r.permissions \
           from roster.member_access($1, $2) a, roster.resource_access($1, $2, 'model', '7') r",
        &[&user, &w.org],
    )
    .await[0];
    assert!(
        row.get::<_, bool>("member_bound"),
        "the membership's expiry bounds its access"
    );
    assert!(
        row.get::<_, bool>("grant_bound"),
        "the grant's expiry bounds the resource access"
    );
    let permissions: Vec<String> = row.get("permissions");
    assert!(
        permissions.contains(&"model:update".to_owned()),
        "{permissions:?}"
    );

    // 'infinity' removes the expiry.
    must_run(
        &c,
        "select * from roster.update_member($1, $2, $3, p_expires_at => 'infinity')",
        &[&w.owner, &w.org, &user],
    )
    .await;
    let row = &must_run(
        &c,
        "select expires_at from roster.organization_memberships where user_id = $1",
        &[&user],
    )
    .await[0];
    assert_eq!(
        None,
        row.get::<_, Option<chrono::DateTime<chrono::Utc>>>("expires_at")
    );
}

#[tokio::test]
async fn the_last_lasting_owner_cannot_get_an_expiry() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let err = must_fail(
        &c,
        "select * from roster.update_member($1, $2, $1, p_expires_at => now() + interval '1 day')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RLOWN", sqlstate(&err), "{}", message(&err));
    // Raw SQL is held to it too.
    let err = must_fail(
        &c,
        "update roster.organization_memberships set expires_at = now() + interval '1 day' \
          where user_id = $1 and organization_id = $2",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RLOWN", sqlstate(&err), "{}", message(&err));
    // With a second lasting owner, the first may expire.
    let co = w.new_co_owner(&c).await;
    must_run(
        &c,
        "select * from roster.update_member($1, $2, $1, p_expires_at => now() + interval '1 day')",
        &[&w.owner, &w.org],
    )
    .await;
    // An owner with an expiry does not count: the co-owner is now the last lasting one.
    let err = must_fail(
        &c,
        "select roster.remove_member($1, $2, $1)",
        &[&co, &w.org],
    )
    .await;
    assert_eq!("RLOWN", sqlstate(&err), "{}", message(&err));
}

#[tokio::test]
async fn suspended_and_removed_members_hold_nothing_through_their_groups() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let user = w
        .new_member(&c, "teamed@acme.test", "member", "active")
        .await;
    join(&c, &w, "ml", user).await;
    grant(&c, &w, ("group", "eng"), "editor", Some(("model", "1"))).await;
    grant(&c, &w, ("group", "eng"), "admin", None).await;
    assert!(may(&c, user, w.org, "model:update", "1").await);
    assert!(
        may_anywhere(&c, user, w.org, "members:invite").await,
        "an organization-wide group grant"
    );

    must_run(
        &c,
        "select * from roster.update_member($1, $2, $3, p_status => 'suspended')",
        &[&w.owner, &w.org, &user],
    )
    .await;
    assert!(
        !may(&c, user, w.org, "model:update", "1").await,
        "suspended: nothing on resources"
    );
    assert!(
        !may_anywhere(&c, user, w.org, "members:invite").await,
        "suspended: nothing at all"
    );
    let rows = must_run(
        &c,
        "select count(*) as n from roster.group_members where user_id = $1 and deleted_at is null",
        &[&user],
    )
    .await;
    assert_eq!(
        1,
        rows[0].get::<_, i64>("n"),
        "a suspended member keeps its group rows"
    );

    must_run(
        &c,
        "select * from roster.update_member($1, $2, $3, p_status => 'active')",
        &[&w.owner, &w.org, &user],
    )
    .await;
    assert!(
        may(&c, user, w.org, "model:update", "1").await,
        "active again: the group grants again"
    );

    must_run(
        &c,
        "select roster.remove_member($1, $2, $3)",
        &[&w.owner, &w.org, &user],
    )
    .await;
    let rows = must_run(
        &c,
        "select count(*) as n from roster.group_members where user_id = $1 and deleted_at is null",
        &[&user],
    )
    .await;
    assert_eq!(
        0,
        rows[0].get::<_, i64>("n"),
        "a removed member leaves its groups"
    );
    // Back as a member, it is in no group and holds no grant.
    add_member(&c, w.owner, w.org, user, "member", "active").await;
    assert!(
        !may(&c, user, w.org, "model:update", "1").await,
        "a returning member starts afresh"
    );
}

#[tokio::test]
async fn groups_and_grants_stay_inside_their_organization_whoever_writes() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    // Not members: refused by the functions and under raw SQL.
    for user in [w.non_member, w.other_tenant_user, w.unknown_user] {
        let err = must_fail(
            &c,
            "select * from roster.add_group_member($1, $2, 'eng', $3)",
            &[&w.owner, &w.org, &user],
        )
        .await;
        assert!(
            ["RMBNF", "23503"].contains(&sqlstate(&err).as_str()),
            "{user}: {} {}",
            sqlstate(&err),
            message(&err)
        );
        let err = must_fail(
            &c,
            "select * from roster.grant_role($1, $2, 'user', $3, 'editor', 'model', '1')",
            &[&w.owner, &w.org, &user.to_string()],
        )
        .await;
        assert!(
            ["RMBNF", "23503"].contains(&sqlstate(&err).as_str()),
            "{user}: {} {}",
            sqlstate(&err),
            message(&err)
        );
    }
    let eng: Uuid =
        must_run(&c, "select id from roster.groups where key = 'eng'", &[]).await[0].get("id");
    let err = must_fail(
        &c,
        "insert into roster.group_members (tenant_id, organization_id, group_id, user_id) \
         values ($1, $2, $3, $4)",
        &[&w.tenant, &w.org, &eng, &w.non_member],
    )
    .await;
    assert_eq!("RMBNF", sqlstate(&err), "raw SQL: a non-member in a group");
    // A group of the other tenant's organization, referenced from this one.
    must_run(
        &c,
        "select * from roster.create_group($1, $2, 'globex-team', 'Globex team')",
        &[&w.other_tenant_user, &w.other_org],
    )
    .await;
    let foreign: Uuid = must_run(
        &c,
        "select id from roster.groups where key = 'globex-team'",
        &[],
    )
    .await[0]
        .get("id");
    let err = must_fail(
        &c,
        "insert into roster.grants (tenant_id, organization_id, subject_type, group_id, role_key) \
         values ($1, $2, 'group', $3, 'member')",
        &[&w.tenant, &w.org, &foreign],
    )
    .await;
    assert_eq!(
        "23503",
        sqlstate(&err),
        "raw SQL: another organization's group"
    );
    let err = must_fail(
        &c,
        "update roster.groups set parent_id = $1 where key = 'eng'",
        &[&foreign],
    )
    .await;
    assert_eq!(
        "23503",
        sqlstate(&err),
        "raw SQL: a parent of another organization"
    );
    // Another organization's own role.
    must_run(
        &c,
        "select * from roster.create_role($1, $2, 'globex-only', 'G', null, array['organization:read'])",
        &[&w.other_tenant_user, &w.other_org],
    )
    .await;
    let err = must_fail(
        &c,
        "select * from roster.grant_role($1, $2, 'group', 'eng', 'globex-only')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RINVL", sqlstate(&err), "{}", message(&err));
    let err = must_fail(
        &c,
        "insert into roster.grants (tenant_id, organization_id, subject_type, group_id, role_key) \
         values ($1, $2, 'group', $3, 'globex-only')",
        &[&w.tenant, &w.org, &eng],
    )
    .await;
    assert_eq!(
        "RINVL",
        sqlstate(&err),
        "raw SQL: a role the organization does not have"
    );
    // A resource type no permission names.
    let err = must_fail(
        &c,
        "select * from roster.grant_role($1, $2, 'group', 'eng', 'editor', 'spaceship', '1')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RINVL", sqlstate(&err), "{}", message(&err));
    // Another tenant's actor sees no such organization.
    let err = must_fail(
        &c,
        "select * from roster.create_group($1, $2, 'intruders', 'Intruders')",
        &[&w.other_tenant_user, &w.org],
    )
    .await;
    assert_eq!("RNFND", sqlstate(&err));
}

#[tokio::test]
async fn a_group_member_is_read_alone_and_a_missing_parent_names_its_field() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    join(&c, &w, "ml", w.member).await;
    let get = "select * from roster.get_group_member($1, $2, $3, $4)";
    for (actor, who) in [
        (w.owner, "the owner"),
        (w.member, "a member (members:read)"),
    ] {
        let rows = must_run(&c, get, &[&actor, &w.org, &"ml", &w.member]).await;
        assert_eq!(1, rows.len(), "{who}");
        assert_eq!(w.member, rows[0].get::<_, Uuid>("user_id"), "{who}");
        assert_eq!(
            "member@acme.test",
            rows[0].get::<_, String>("email"),
            "{who}"
        );
    }
    for (actor, group, user, state, what) in [
        (
            w.owner,
            "eng",
            w.member,
            "RMBNF",
            "in ml, not in its parent eng",
        ),
        (
            w.owner,
            "ml",
            w.admin,
            "RMBNF",
            "a member of the organization, not of the group",
        ),
        (w.owner, "nope", w.member, "RGRNF", "no such group"),
        (w.non_member, "ml", w.member, "RNFND", "an outsider"),
        (
            w.other_tenant_user,
            "ml",
            w.member,
            "RNFND",
            "another tenant's user",
        ),
    ] {
        let err = must_fail(&c, get, &[&actor, &w.org, &group, &user]).await;
        assert_eq!(state, sqlstate(&err), "{what}: {}", message(&err));
    }
    must_run(
        &c,
        "select roster.remove_group_member($1, $2, 'ml', $3)",
        &[&w.owner, &w.org, &w.member],
    )
    .await;
    let err = must_fail(&c, get, &[&w.owner, &w.org, &"ml", &w.member]).await;
    assert_eq!("RMBNF", sqlstate(&err), "removed: {}", message(&err));

    // A parent that names no group is bad input, naming the field; the group itself, missing,
    // is still not found.
    for sql in [
        "select * from roster.create_group($1, $2, 'ops', 'Ops', null, 'nowhere')",
        "select * from roster.update_group($1, $2, 'ml', '{\"parent_key\": \"nowhere\"}')",
    ] {
        let err = must_fail(&c, sql, &[&w.owner, &w.org]).await;
        assert_eq!("RINVL", sqlstate(&err), "{sql}: {}", message(&err));
        assert_eq!(
            "parent_key: no group 'nowhere' in this organization",
            message(&err),
            "{sql}"
        );
    }
    let err = must_fail(
        &c,
        "select * from roster.update_group($1, $2, 'nope', '{\"parent_key\": \"eng\"}')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RGRNF", sqlstate(&err), "{}", message(&err));
}

#[tokio::test]
async fn cycles_and_depth_are_refused_through_raw_sql_too() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let err = must_fail(
        &c,
        "select * from roster.update_group($1, $2, 'eng', '{\"parent_key\": \"vision\"}')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RHIER", sqlstate(&err), "{}", message(&err));
    let err = must_fail(
        &c,
        "update roster.groups set parent_id = (select id from roster.groups where key = 'vision') \
          where key = 'eng'",
        &[],
    )
    .await;
    assert_eq!("RHIER", sqlstate(&err), "raw SQL: a group cycle");
    let err = must_fail(
        &c,
        "update roster.groups set parent_id = id where key = 'ml'",
        &[],
    )
    .await;
    assert_eq!("23514", sqlstate(&err), "raw SQL: its own parent");
    // eng > ml > vision > l4 ... > l8 is 8 levels; a ninth is refused.
    let mut parent = "vision".to_owned();
    for level in 4..=8 {
        let key = format!("l{level}");
        create_group(&c, &w, &key, Some(&parent)).await;
        parent = key;
    }
    let err = must_fail(
        &c,
        "select * from roster.create_group($1, $2, 'l9', 'Too deep', null, 'l8')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RHIER", sqlstate(&err), "{}", message(&err));
    let err = must_fail(
        &c,
        "select roster.delete_group($1, $2, 'eng')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RGCHD", sqlstate(&err), "{}", message(&err));

    set_parent(&c, &w, ("model", "1"), Some(("project", "a"))).await;
    set_parent(&c, &w, ("project", "a"), Some(("project", "b"))).await;
    let err = must_fail(
        &c,
        "select roster.set_resource_parent($1, $2, 'project', 'b', 'model', '1')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!("RHIER", sqlstate(&err), "{}", message(&err));
    let err = must_fail(
        &c,
        "insert into roster.resource_parents (tenant_id, organization_id, resource_type, resource_id, parent_type, parent_id) \
         values ($1, $2, 'project', 'b', 'project', 'a')",
        &[&w.tenant, &w.org],
    )
    .await;
    assert_eq!("RHIER", sqlstate(&err), "raw SQL: a resource cycle");
    // 16 levels at most: model 1 < project a < b < c ...
    let mut top = "b".to_owned();
    let mut levels = 3;
    let refused = loop {
        let next = format!("p{levels}");
        let result = attempt(
            &c,
            "select roster.set_resource_parent($1, $2, 'project', $3, 'project', $4)",
            &[&w.owner, &w.org, &top, &next],
        )
        .await;
        if let Err(state) = result {
            break (levels, state);
        }
        top = next;
        levels += 1;
    };
    assert_eq!(
        (17, "RHIER".to_owned()),
        refused,
        "the 17th level is refused"
    );
}

#[tokio::test]
async fn explain_shows_the_path_that_granted() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let user = w.new_member(&c, "path@acme.test", "member", "active").await;
    join(&c, &w, "vision", user).await;
    set_parent(&c, &w, ("model", "42"), Some(("project", "p1"))).await;
    let id = grant(&c, &w, ("group", "eng"), "editor", Some(("project", "p1"))).await;
    let row = &must_run(
        &c,
        "select * from roster.explain_access($1, $2, 'model:update', 'model', '42')",
        &[&user, &w.org],
    )
    .await[0];
    assert!(row.get::<_, bool>("allowed"));
    assert_eq!("grant", row.get::<_, &str>("reason"));
    assert_eq!(Some("editor"), row.get::<_, Option<&str>>("via_role"));
    assert_eq!(
        Some("model:update"),
        row.get::<_, Option<&str>>("via_grant")
    );
    assert_eq!(Some(id), row.get::<_, Option<Uuid>>("via_grant_id"));
    assert_eq!(
        Some(vec!["vision".to_owned(), "ml".to_owned(), "eng".to_owned()]),
        row.get::<_, Option<Vec<String>>>("via_groups")
    );
    assert_eq!(
        Some("project"),
        row.get::<_, Option<&str>>("via_resource_type")
    );
    assert_eq!(Some("p1"), row.get::<_, Option<&str>>("via_resource_id"));

    let row = &must_run(
        &c,
        "select * from roster.explain_access($1, $2, 'model:update', 'model', '43')",
        &[&user, &w.org],
    )
    .await[0];
    assert!(!row.get::<_, bool>("allowed"));
    assert_eq!("role_lacks_permission", row.get::<_, &str>("reason"));
    let err = must_fail(
        &c,
        "select * from roster.explain_access($1, $2, 'model:fly', 'model', '42')",
        &[&user, &w.org],
    )
    .await;
    assert_eq!("RUPRM", sqlstate(&err));
}

#[tokio::test]
async fn list_resources_pages_every_reachable_resource() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let user = w
        .new_member(&c, "lister@acme.test", "member", "active")
        .await;
    join(&c, &w, "vision", user).await;
    // 1200 models under project p1 (granted to the group) and model x granted directly.
    must_run(
        &c,
        "insert into roster.resource_parents (tenant_id, organization_id, resource_type, resource_id, parent_type, parent_id) \
         select $1, $2, 'model', lpad(n::text, 4, '0'), 'project', 'p1' from generate_series(1, 1200) n",
        &[&w.tenant, &w.org],
    )
    .await;
    grant(&c, &w, ("group", "eng"), "editor", Some(("project", "p1"))).await;
    grant(
        &c,
        &w,
        ("user", &user.to_string()),
        "editor",
        Some(("model", "x")),
    )
    .await;

    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = must_run(
            &c,
            "select * from roster.list_resources($1, $2, 'model:update', 'model', 500, $3)",
            &[&user, &w.org, &after],
        )
        .await;
        assert!(rows.iter().all(|r| !r.get::<_, bool>("organization_wide")));
        let page: Vec<String> = rows.iter().map(|r| r.get("resource_id")).collect();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(1201, seen.len(), "every model, no cap");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "by id, each once");
    assert_eq!(Some("x"), seen.last().map(String::as_str));

    let ids = must_run(
        &c,
        "select count(*) as n from roster.accessible_resource_ids($1, $2, 'model:update', 'model') id",
        &[&user, &w.org],
    )
    .await;
    assert_eq!(1201, ids[0].get::<_, i64>("n"));
    // The owner holds it everywhere: one row saying so.
    let rows = must_run(
        &c,
        "select * from roster.list_resources($1, $2, 'model:update', 'model')",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(1, rows.len());
    assert!(rows[0].get::<_, bool>("organization_wide"));
    // Nobody else holds anything.
    let rows = must_run(
        &c,
        "select * from roster.list_resources($1, $2, 'model:update', 'model')",
        &[&w.member, &w.org],
    )
    .await;
    assert!(rows.is_empty());
}

/// The README's example: a service's own table, whose rows each user sees exactly as its grants
/// say, enforced by PostgreSQL for every query the service makes.
#[tokio::test]
async fn a_services_table_obeys_the_grants_under_row_level_security() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let login = TestLogin::create().await;
    // The policy names model:read for every user it meets, whatever their tenant.
    must_run(
        &c,
        "select * from roster.register_permissions($1, '[{\"name\": \"model:read\", \"description\": \"r\"}]')",
        &[&w.other_tenant],
    )
    .await;
    let reader = w
        .new_member(&c, "reader@acme.test", "member", "active")
        .await;
    let teamed = w
        .new_member(&c, "teamed@acme.test", "member", "active")
        .await;
    join(&c, &w, "ml", teamed).await;
    c.batch_execute(&format!(
        "create table public.models (id integer primary key, org_id uuid not null, name text not null);
         alter table public.models enable row level security;
         create policy models_by_grant on public.models for select
           using (roster.has_permission(current_setting('app.user_id')::uuid, org_id, 'model:read', 'model', id::text));
         grant select on public.models to {login};",
        login = roster::quote_ident(&login.name)
    ))
    .await
    .expect("the service's table");
    must_run(
        &c,
        "insert into public.models select n, $1, 'model ' || n from generate_series(1, 6) n",
        &[&w.org],
    )
    .await;
    must_run(
        &c,
        "insert into public.models values (7, $1, 'globex model')",
        &[&w.other_org],
    )
    .await;
    grant(
        &c,
        &w,
        ("user", &reader.to_string()),
        "editor",
        Some(("model", "1")),
    )
    .await;
    grant(
        &c,
        &w,
        ("user", &reader.to_string()),
        "editor",
        Some(("model", "2")),
    )
    .await;
    grant(&c, &w, ("group", "eng"), "editor", Some(("project", "p"))).await;
    set_parent(&c, &w, ("model", "3"), Some(("project", "p"))).await;
    set_parent(&c, &w, ("model", "4"), Some(("project", "p"))).await;

    c.batch_execute(&format!("set role {}", roster::quote_ident(&login.name)))
        .await
        .expect("set role");
    for (who, user, expected) in [
        ("direct grants", reader, vec![1, 2]),
        ("a group grant on the parent", teamed, vec![3, 4]),
        ("the owner", w.owner, vec![1, 2, 3, 4, 5, 6]),
        ("a plain member", w.member, vec![]),
        ("another tenant's owner", w.other_tenant_user, vec![7]),
    ] {
        c.batch_execute(&format!("set app.user_id = '{user}'"))
            .await
            .expect("set app.user_id");
        let rows = must_run(&c, "select id from public.models order by id", &[]).await;
        let ids: Vec<i32> = rows.iter().map(|r| r.get("id")).collect();
        assert_eq!(expected, ids, "{who} sees exactly its rows");
    }
    let err = must_fail(&c, "update roster.grants set deleted_at = now()", &[]).await;
    assert_eq!(
        "42501",
        sqlstate(&err),
        "the service cannot write the grants"
    );
    c.batch_execute("reset role").await.expect("reset role");
}

#[tokio::test]
async fn writes_cost_one_version_bump_whatever_the_group_size() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    // 300 members in eng.
    let eng: Uuid =
        must_run(&c, "select id from roster.groups where key = 'eng'", &[]).await[0].get("id");
    must_run(
        &c,
        "with u as (
           insert into roster.users (tenant_id, email)
           select $1, 'bulk' || n || '@acme.test' from generate_series(1, 300) n returning id
         ), m as (
           insert into roster.organization_memberships (tenant_id, organization_id, user_id, role, status)
           select $1, $2, u.id, 'member', 'active' from u returning user_id
         )
         insert into roster.group_members (tenant_id, organization_id, group_id, user_id)
         select $1, $2, $3, m.user_id from m",
        &[&w.tenant, &w.org, &eng],
    )
    .await;
    let users_before = must_run(
        &c,
        "select sum(version)::bigint as v from roster.user_versions",
        &[],
    )
    .await[0]
        .get::<_, i64>("v");
    let org_before = authz_version(&c, w.org).await;
    grant(&c, &w, ("group", "eng"), "editor", Some(("model", "1"))).await;
    grant(&c, &w, ("group", "eng"), "admin", None).await;
    must_run(
        &c,
        "select * from roster.update_group($1, $2, 'vision', '{\"parent_key\": null}')",
        &[&w.owner, &w.org],
    )
    .await;
    let users_after = must_run(
        &c,
        "select sum(version)::bigint as v from roster.user_versions",
        &[],
    )
    .await[0]
        .get::<_, i64>("v");
    assert_eq!(
        users_before, users_after,
        "no user's version moves for a group's change"
    );
    assert!(
        authz_version(&c, w.org).await - org_before <= 3,
        "the organization's version moves once per change"
    );
}

#[tokio::test]
async fn purge_expired_tidies_and_records_what_expired() {
    let db = common::fresh_database().await;
    let c = db.client().await;
    let w = setup(&c).await;
    let user = w
        .new_member(&c, "leaving@acme.test", "member", "active")
        .await;
    join(&c, &w, "eng", user).await;
    let kept = w
        .new_member(&c, "staying@acme.test", "member", "active")
        .await;
    join(&c, &w, "eng", kept).await;
    let id = grant(&c, &w, ("group", "eng"), "editor", Some(("model", "1"))).await;
    grant(&c, &w, ("group", "eng"), "editor", Some(("model", "2"))).await;
    expire(&c, "grants", id).await;
    expire(
        &c,
        "group_members",
        group_membership_id(&c, "eng", kept).await,
    )
    .await;
    let membership: Uuid = must_run(
        &c,
        "select id from roster.organization_memberships where user_id = $1",
        &[&user],
    )
    .await[0]
        .get("id");
    expire(&c, "organization_memberships", membership).await;

    let row = &must_run(&c, "select * from roster.purge_expired()", &[]).await[0];
    // The expired membership takes its group row with it (as any ending membership does).
    assert_eq!(
        (1, 1, 1),
        (
            row.get::<_, i64>("memberships"),
            row.get::<_, i64>("group_members"),
            row.get::<_, i64>("grants")
        )
    );
    let actions: Vec<String> = must_run(
        &c,
        "select action from roster.audit_events where action like '%.expired' order by action",
        &[],
    )
    .await
    .iter()
    .map(|r| r.get("action"))
    .collect();
    // The group row the expired membership took with it expired too.
    assert_eq!(
        vec![
            "grant.expired",
            "group_member.expired",
            "group_member.expired"
        ],
        actions
    );
    let row = &must_run(&c, "select * from roster.purge_expired()", &[]).await[0];
    assert_eq!(0, row.get::<_, i64>("grants"), "nothing twice");
    assert!(may(&c, w.owner, w.org, "model:update", "2").await);
    c.batch_execute("set role roster_app")
        .await
        .expect("set role");
    let err = must_fail(&c, "select * from roster.purge_expired()", &[]).await;
    assert_eq!(
        "42501",
        sqlstate(&err),
        "the API's role cannot purge: {}",
        message(&err)
    );
    c.batch_execute("reset role").await.expect("reset role");
}
