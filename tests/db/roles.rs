//! Permissions as data: the tenant's catalogue, custom roles (organization and tenant-wide),
//! wildcards, immutable built-ins, no privilege escalation, and the explanations, at the SQL
//! door, each rule also through raw SQL where it is the database's.

use serde_json::json;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::common::{self, REGISTERED, WILDCARD_CASES};
use crate::support::*;

async fn register(c: &Client, tenant: Uuid, names: &[&str]) {
    let items: Vec<_> = names
        .iter()
        .map(|n| json!({"name": n, "description": format!("{n}")}))
        .collect();
    must_run(
        c,
        "select * from roster.register_permissions($1, $2)",
        &[&tenant, &json!(items)],
    )
    .await;
}

async fn create_role(
    c: &Client,
    actor: Uuid,
    org: Option<Uuid>,
    key: &str,
    grants: &[&str],
) -> Result<(), String> {
    let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
    attempt(
        c,
        "select * from roster.create_role($1, $2, $3, $4, null, $5)",
        &[&actor, &org, &key, &format!("Role {key}"), &grants],
    )
    .await
    .map(drop)
}

async fn has(c: &Client, user: Uuid, org: Uuid, permission: &str) -> Result<bool, String> {
    attempt(
        c,
        "select roster.has_permission($1, $2, $3) as allowed",
        &[&user, &org, &permission],
    )
    .await
    .map(|rows| rows[0].get("allowed"))
}

#[tokio::test]
async fn the_wildcard_matcher_as_a_table() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    register(&client, w.tenant, REGISTERED).await;
    for (i, (grant, cases)) in WILDCARD_CASES.iter().enumerate() {
        let key = format!("wild-{i}");
        create_role(&client, w.owner, Some(w.org), &key, &[grant])
            .await
            .expect("create the role");
        let user = w
            .new_member(&client, &format!("wild{i}@acme.test"), &key, "active")
            .await;
        for (permission, expected) in *cases {
            assert_eq!(
                has(&client, user, w.org, permission).await,
                Ok(*expected),
                "grant {grant} and permission {permission}"
            );
        }
    }
    // invoice:* covers actions registered after the role was made.
    let user = must_run(
        &client,
        "select user_id from roster.organization_memberships where role = 'wild-1'",
        &[],
    )
    .await[0]
        .get::<_, Uuid>("user_id");
    assert_eq!(
        has(&client, user, w.org, "invoice:void").await,
        Err("RUPRM".into()),
        "not registered yet"
    );
    register(&client, w.tenant, &["invoice:void"]).await;
    assert_eq!(
        has(&client, user, w.org, "invoice:void").await,
        Ok(true),
        "registered after the role"
    );
}

#[tokio::test]
async fn the_catalogue_is_registered_idempotently_and_retired_only_when_unused() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    register(&client, w.tenant, &["invoice:approve"]).await;
    let again = must_run(
        &client,
        "select * from roster.register_permissions($1, $2)",
        &[
            &w.tenant,
            &json!([{"name": "invoice:approve", "description": "approve invoices"}]),
        ],
    )
    .await;
    assert_eq!(
        again[0].get::<_, &str>("description"),
        "approve invoices",
        "re-registering updates the description"
    );
    let listed = must_run(
        &client,
        "select name, builtin from roster.list_permissions($1)",
        &[&w.tenant],
    )
    .await;
    let names: Vec<(String, bool)> = listed
        .iter()
        .map(|r| (r.get("name"), r.get("builtin")))
        .collect();
    assert!(
        names.contains(&("invoice:approve".into(), false)),
        "{names:?}"
    );
    assert!(
        names.contains(&("members:invite".into(), true)),
        "built-ins included: {names:?}"
    );
    // Another tenant's catalogue is its own.
    let theirs = must_run(
        &client,
        "select name from roster.list_permissions($1)",
        &[&w.other_tenant],
    )
    .await;
    assert!(theirs
        .iter()
        .all(|r| r.get::<_, &str>("name") != "invoice:approve"));
    assert_eq!(
        has(&client, w.other_tenant_user, w.other_org, "invoice:approve").await,
        Err("RUPRM".into())
    );

    let bad = [
        (json!([{"name": "members:approve"}]), "a reserved resource"),
        (json!([{"name": "Invoice:Approve"}]), "uppercase"),
        (json!([{"name": "invoice"}]), "one segment"),
        (json!([{"name": "invoice:approve:now"}]), "three segments"),
        (
            json!([{"name": format!("invoice:{}", "a".repeat(100))}]),
            "over 100 characters",
        ),
        (
            json!([{"name": "invoice:pay", "colour": "red"}]),
            "an unknown field",
        ),
        (json!({"name": "invoice:pay"}), "not a list"),
        (json!([]), "an empty list"),
    ];
    for (body, what) in bad {
        let got = attempt(
            &client,
            "select * from roster.register_permissions($1, $2)",
            &[&w.tenant, &body],
        )
        .await
        .map(drop);
        assert_eq!(got, Err("RINVL".into()), "registering {what}");
    }
    // Tenant admins register for their tenant; other users may not.
    let got = attempt(
        &client,
        "select * from roster.register_permissions(null, $1, $2)",
        &[&json!([{"name": "model:read"}]), &w.tenant_admin],
    )
    .await
    .map(drop);
    assert_eq!(got, Ok(()), "a tenant admin");
    let got = attempt(
        &client,
        "select * from roster.register_permissions(null, $1, $2)",
        &[&json!([{"name": "model:update"}]), &w.owner],
    )
    .await
    .map(drop);
    assert_eq!(
        got,
        Err("RDNID".into()),
        "an organization owner is no tenant admin"
    );
    let got = attempt(
        &client,
        "select * from roster.register_permissions($1, $2, $3)",
        &[
            &w.other_tenant,
            &json!([{"name": "model:update"}]),
            &w.tenant_admin,
        ],
    )
    .await
    .map(drop);
    assert_eq!(got, Err("RTNNF".into()), "another tenant's catalogue");

    // Retiring: refused while a role grants the name itself, not for a wildcard.
    create_role(
        &client,
        w.owner,
        Some(w.org),
        "approver",
        &["invoice:approve"],
    )
    .await
    .expect("role");
    create_role(&client, w.owner, Some(w.org), "modeller", &["model:*"])
        .await
        .expect("role");
    let retire = "select roster.retire_permission($1, $2)";
    assert_eq!(
        attempt(&client, retire, &[&w.tenant, &"invoice:approve"])
            .await
            .map(drop),
        Err("RPMUS".into())
    );
    let raw = "delete from roster.tenant_permissions where name = 'invoice:approve'";
    assert_eq!(
        attempt(&client, raw, &[]).await.map(drop),
        Err("RPMUS".into()),
        "by raw SQL too"
    );
    assert_eq!(
        attempt(&client, retire, &[&w.tenant, &"model:read"])
            .await
            .map(drop),
        Ok(()),
        "a wildcard does not hold it"
    );
    assert_eq!(
        attempt(&client, retire, &[&w.tenant, &"members:read"])
            .await
            .map(drop),
        Err("RBLTN".into())
    );
    assert_eq!(
        attempt(&client, retire, &[&w.tenant, &"invoice:nothing"])
            .await
            .map(drop),
        Err("RUPRM".into())
    );
    must_run(
        &client,
        "select * from roster.update_role($1, $2, 'approver', $3)",
        &[&w.owner, &w.org, &json!({"permissions": []})],
    )
    .await;
    assert_eq!(
        attempt(&client, retire, &[&w.tenant, &"invoice:approve"])
            .await
            .map(drop),
        Ok(()),
        "unused now"
    );
    // A grant must name something of the catalogue.
    assert_eq!(
        create_role(&client, w.owner, Some(w.org), "typo", &["invioce:*"]).await,
        Err("RUPRM".into())
    );
    assert_eq!(
        create_role(&client, w.owner, Some(w.org), "typo", &["invoice approve"]).await,
        Err("RINVL".into())
    );
}

#[tokio::test]
async fn built_in_roles_are_immutable_whoever_writes() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let attempts = [
        (
            "update roster.roles set permissions = array['*'] where key = 'member'",
            "RBLTN",
            "widening member",
        ),
        (
            "update roster.roles set name = 'Boss' where key = 'owner'",
            "RBLTN",
            "renaming owner",
        ),
        (
            "delete from roster.roles where key = 'admin'",
            "RBLTN",
            "deleting admin",
        ),
        (
            "update roster.roles set builtin = false where key = 'admin'",
            "RBLTN",
            "un-building admin",
        ),
    ];
    for (sql, code, what) in attempts {
        assert_eq!(
            attempt(&client, sql, &[]).await.map(drop),
            Err(code.into()),
            "{what} by raw SQL"
        );
    }
    let got = attempt(
        &client,
        "select * from roster.update_role($1, $2, 'admin', '{\"name\": \"x\"}')",
        &[&w.owner, &w.org],
    )
    .await
    .map(drop);
    assert_eq!(got, Err("RBLTN".into()), "update_role on a built-in");
    let got = attempt(
        &client,
        "select roster.delete_role($1, $2, 'member')",
        &[&w.owner, &w.org],
    )
    .await
    .map(drop);
    assert_eq!(got, Err("RBLTN".into()), "delete_role on a built-in");
    assert_eq!(
        create_role(&client, w.owner, Some(w.org), "owner", &[]).await,
        Err("23505".into()),
        "a built-in's key"
    );
    assert_eq!(
        create_role(&client, w.tenant_admin, None, "admin", &[]).await,
        Err("23505".into()),
        "tenant-wide too"
    );
    // Every tenant has them, as rows.
    let counts = must_run(
        &client,
        "select count(*) filter (where builtin) as n from roster.roles where tenant_id = $1",
        &[&w.other_tenant],
    )
    .await;
    assert_eq!(counts[0].get::<_, i64>("n"), 3);
}

#[tokio::test]
async fn role_keys_and_memberships_stay_in_their_scope() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let other_org = create_organization(&client, w.owner, "Second", "second").await;
    create_role(
        &client,
        w.owner,
        Some(w.org),
        "reader",
        &["organization:read"],
    )
    .await
    .expect("org role");
    create_role(&client, w.tenant_admin, None, "auditor", &["audit:read"])
        .await
        .expect("tenant role");
    // The same key in another organization is fine; across scopes it is not.
    assert_eq!(
        create_role(&client, w.owner, Some(other_org), "reader", &[]).await,
        Ok(())
    );
    assert_eq!(
        create_role(&client, w.tenant_admin, None, "reader", &[]).await,
        Err("23505".into())
    );
    assert_eq!(
        create_role(&client, w.owner, Some(w.org), "auditor", &[]).await,
        Err("23505".into())
    );
    // Only tenant admins make tenant-wide roles; only roles:manage (owners) organization ones.
    assert_eq!(
        create_role(&client, w.owner, None, "x1", &[]).await,
        Err("RDNID".into())
    );
    assert_eq!(
        create_role(&client, w.admin, Some(w.org), "x2", &[]).await,
        Err("RDNID".into())
    );
    assert_eq!(
        create_role(&client, w.other_tenant_user, Some(w.org), "x3", &[]).await,
        Err("RNFND".into())
    );

    // A tenant-wide role is available everywhere; an organization's only there.
    add_member(&client, w.owner, other_org, w.member, "auditor", "active").await;
    let got = attempt(
        &client,
        "select * from roster.add_member($1, $2, $3, 'nosuch')",
        &[&w.owner, &w.org, &w.non_member],
    )
    .await
    .map(drop);
    assert_eq!(got, Err("RINVL".into()), "an unknown role");
    // Through raw SQL: a key only the first organization has, a tenant-wide role of another
    // tenant, a key that names no role.
    create_role(&client, w.owner, Some(w.org), "orgonly", &[])
        .await
        .expect("org role");
    let raw = [
        (
            "another organization's role",
            format!(
                "update roster.organization_memberships set role = 'orgonly' \
                  where organization_id = '{other_org}' and user_id = '{}'",
                w.owner
            ),
        ),
        (
            "another tenant's role",
            format!(
                "update roster.organization_memberships set role = 'auditor' \
                  where organization_id = '{}'",
                w.other_org
            ),
        ),
        (
            "no role at all",
            format!(
                "update roster.organization_memberships set role = 'ghost' \
                  where organization_id = '{}' and user_id = '{}'",
                w.org, w.member
            ),
        ),
    ];
    for (what, sql) in &raw {
        assert_eq!(
            attempt(&client, sql, &[]).await.map(drop),
            Err("RINVL".into()),
            "{what}, raw SQL"
        );
    }
}

#[tokio::test]
async fn a_role_in_use_is_deleted_only_with_a_reassignment() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    create_role(
        &client,
        w.owner,
        Some(w.org),
        "reader",
        &["organization:read"],
    )
    .await
    .expect("role");
    let holder = w
        .new_member(&client, "holder@acme.test", "reader", "active")
        .await;
    let delete = "select roster.delete_role($1, $2, 'reader', $3)";
    let none: Option<&str> = None;
    assert_eq!(
        attempt(&client, delete, &[&w.owner, &w.org, &none])
            .await
            .map(drop),
        Err("RRLUS".into())
    );
    let raw = "delete from roster.roles where key = 'reader'";
    assert_eq!(
        attempt(&client, raw, &[]).await.map(drop),
        Err("RRLUS".into()),
        "raw SQL too"
    );
    assert_eq!(
        attempt(&client, delete, &[&w.owner, &w.org, &Some("ghost")])
            .await
            .map(drop),
        Err("RINVL".into())
    );
    assert_eq!(
        attempt(&client, delete, &[&w.owner, &w.org, &Some("member")])
            .await
            .map(drop),
        Ok(())
    );
    assert_eq!(
        membership(&client, w.org, holder).await,
        Some(("member".into(), "active".into()))
    );
    assert_eq!(
        attempt(&client, delete, &[&w.owner, &w.org, &none])
            .await
            .map(drop),
        Err("RRLNF".into()),
        "gone"
    );
}

#[tokio::test]
async fn no_privilege_escalation() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    register(&client, w.tenant, REGISTERED).await;
    // A manager may manage roles and change roles, and reads invoices; nothing more.
    create_role(
        &client,
        w.owner,
        Some(w.org),
        "manager",
        &[
            "organization:read",
            "members:read",
            "members:invite",
            "members:update_role",
            "roles:manage",
            "invoice:read",
        ],
    )
    .await
    .expect("manager");
    create_role(
        &client,
        w.owner,
        Some(w.org),
        "approver",
        &["organization:read", "invoice:*"],
    )
    .await
    .expect("approver");
    create_role(&client, w.owner, Some(w.org), "viewer", &["invoice:read"])
        .await
        .expect("viewer");
    let manager = w
        .new_member(&client, "manager@acme.test", "manager", "active")
        .await;
    let approver = w
        .new_member(&client, "approver@acme.test", "approver", "active")
        .await;

    assert_eq!(
        create_role(&client, manager, Some(w.org), "mine", &["invoice:read"]).await,
        Ok(()),
        "what it holds"
    );
    assert_eq!(
        create_role(&client, manager, Some(w.org), "more", &["invoice:approve"]).await,
        Err("RESCL".into())
    );
    assert_eq!(
        create_role(&client, manager, Some(w.org), "wide", &["invoice:*"]).await,
        Err("RESCL".into())
    );
    assert_eq!(
        create_role(&client, manager, Some(w.org), "all", &["*"]).await,
        Err("RESCL".into())
    );
    let widen = attempt(
        &client,
        "select * from roster.update_role($1, $2, 'mine', $3)",
        &[
            &manager,
            &w.org,
            &json!({"permissions": ["invoice:approve"]}),
        ],
    )
    .await
    .map(drop);
    assert_eq!(widen, Err("RESCL".into()), "widening a role");
    let give = |user: Uuid, role: &'static str| {
        let client = &client;
        async move {
            attempt(
                client,
                "select * from roster.update_member($1, $2, $3, p_role => $4)",
                &[&manager, &w.org, &user, &role],
            )
            .await
            .map(drop)
        }
    };
    assert_eq!(
        give(w.member, "approver").await,
        Err("RESCL".into()),
        "giving a role with more"
    );
    assert_eq!(
        give(w.member, "viewer").await,
        Ok(()),
        "giving what it holds"
    );
    assert_eq!(
        give(approver, "viewer").await,
        Err("RESCL".into()),
        "changing a member who holds more"
    );
    assert_eq!(
        give(w.member, "owner").await,
        Err("RDNID".into()),
        "the owner role needs members:manage_owners"
    );
    let add = attempt(
        &client,
        "select * from roster.add_member($1, $2, $3, 'approver')",
        &[&manager, &w.org, &w.non_member],
    )
    .await
    .map(drop);
    assert_eq!(add, Err("RESCL".into()), "adding with a role with more");
    // Owners and tenant admins hold everything.
    assert_eq!(
        create_role(&client, w.tenant_admin, Some(w.org), "boss", &["*"]).await,
        Ok(())
    );
    assert_eq!(give(approver, "manager").await, Err("RESCL".into()));
}

#[tokio::test]
async fn explain_access_says_why_for_every_kind_of_actor() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let explain = |user: Uuid, org: Uuid, permission: &'static str| {
        let client = &client;
        async move {
            attempt(
                client,
                "select allowed, reason, via_role, via_grant from roster.explain_access($1, $2, $3)",
                &[&user, &org, &permission],
            )
            .await
            .map(|rows| {
                let r = &rows[0];
                (
                    r.get::<_, bool>("allowed"),
                    r.get::<_, String>("reason"),
                    r.get::<_, Option<String>>("via_role"),
                    r.get::<_, Option<String>>("via_grant"),
                )
            })
        }
    };
    let s = |x: &str| Some(x.to_owned());
    let cases = [
        (
            Actor::Owner,
            "organization:delete",
            (true, "member_role", s("owner"), s("*")),
        ),
        (
            Actor::Admin,
            "organization:update",
            (true, "member_role", s("admin"), s("organization:update")),
        ),
        (
            Actor::Admin,
            "organization:delete",
            (false, "role_lacks_permission", s("admin"), None),
        ),
        (
            Actor::Member,
            "members:invite",
            (false, "role_lacks_permission", s("member"), None),
        ),
        (
            Actor::Invited,
            "organization:read",
            (false, "invitation_pending", s("member"), None),
        ),
        (
            Actor::Suspended,
            "organization:read",
            (false, "suspended", s("member"), None),
        ),
        (
            Actor::NonMember,
            "organization:read",
            (false, "not_a_member", None, None),
        ),
        (
            Actor::OtherTenant,
            "organization:read",
            (false, "not_a_member", None, None),
        ),
        (
            Actor::TenantAdmin,
            "members:manage_owners",
            (true, "tenant_admin", s("owner"), s("*")),
        ),
        (
            Actor::DeletedUser,
            "organization:read",
            (false, "user_deleted", None, None),
        ),
        (
            Actor::UnknownUser,
            "organization:read",
            (false, "not_a_member", None, None),
        ),
    ];
    for (actor, permission, (allowed, reason, via_role, via_grant)) in cases {
        let got = explain(w.id(actor), w.org, permission).await;
        assert_eq!(
            got,
            Ok((allowed, reason.to_owned(), via_role, via_grant)),
            "{actor} and {permission}"
        );
        assert_eq!(
            has(&client, w.id(actor), w.org, permission).await,
            Ok(allowed),
            "has_permission agrees for {actor}"
        );
    }
    assert_eq!(
        explain(w.owner, w.org, "members:reed").await.map(drop),
        Err("RUPRM".into())
    );
    must_run(
        &client,
        "update roster.organizations set deleted_at = now() where id = $1",
        &[&w.other_org],
    )
    .await;
    let got = explain(w.other_tenant_user, w.other_org, "organization:read").await;
    assert_eq!(got.map(|e| e.1), Ok("organization_deleted".into()));
}

#[tokio::test]
async fn effective_permissions_and_subjects() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    register(&client, w.tenant, REGISTERED).await;
    create_role(
        &client,
        w.owner,
        Some(w.org),
        "approver",
        &["organization:read", "invoice:*"],
    )
    .await
    .expect("role");
    let approver = w
        .new_member(&client, "approver@acme.test", "approver", "active")
        .await;
    let effective: Vec<String> = must_run(
        &client,
        "select * from roster.effective_permissions($1, $2) p",
        &[&approver, &w.org],
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(
        effective,
        vec!["invoice:approve", "invoice:read", "organization:read"]
    );
    let none = must_run(
        &client,
        "select * from roster.effective_permissions($1, $2)",
        &[&w.non_member, &w.org],
    )
    .await;
    assert!(none.is_empty(), "nothing where it cannot see");

    let subjects = must_run(
        &client,
        "select user_id, via_role, tenant_admin from roster.list_subjects_with_permission($1, $2, 'invoice:approve', 50, 0)",
        &[&w.member, &w.org],
    )
    .await;
    let got: Vec<(Uuid, String, bool)> = subjects
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut expected = vec![
        (approver, "approver".to_owned(), false),
        (w.owner, "owner".to_owned(), false),
        (w.tenant_admin, "owner".to_owned(), true),
    ];
    expected.sort();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(
        sorted, expected,
        "the approver, the owner (*) and the tenant admin; not the suspended member"
    );
    let got = attempt(
        &client,
        "select * from roster.list_subjects_with_permission($1, $2, 'invoice:approve')",
        &[&w.non_member, &w.org],
    )
    .await
    .map(drop);
    assert_eq!(got, Err("RNFND".into()), "needs members:read");
}
