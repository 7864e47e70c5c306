//! The authorization hot path (member_role, has_permission) and what the read functions return
//! to each actor.

use tokio_postgres::Row;
use uuid::Uuid;

use crate::common;
use crate::support::*;

const OWNER: &[&str] = &[
    "audit:read",
    "grants:manage",
    "groups:manage",
    "invitations:manage",
    "members:invite",
    "members:manage_owners",
    "members:read",
    "members:remove",
    "members:suspend",
    "members:update_role",
    "organization:delete",
    "organization:read",
    "organization:update",
    "roles:manage",
];
/// Only owners change roles: admins lack members:update_role.
const ADMIN: &[&str] = &[
    "audit:read",
    "grants:manage",
    "groups:manage",
    "invitations:manage",
    "members:invite",
    "members:read",
    "members:remove",
    "members:suspend",
    "organization:read",
    "organization:update",
];
const MEMBER: &[&str] = &["members:read", "organization:read"];

/// The role member_role reports and the permissions has_permission grants, per actor kind.
fn expected_access(actor: Actor) -> (Option<&'static str>, &'static [&'static str]) {
    match actor {
        Actor::Owner => (Some("owner"), OWNER),
        Actor::Admin => (Some("admin"), ADMIN),
        Actor::Member => (Some("member"), MEMBER),
        // A tenant admin has no membership, but the owner's permissions.
        Actor::TenantAdmin => (None, OWNER),
        Actor::Invited
        | Actor::Suspended
        | Actor::NonMember
        | Actor::OtherTenant
        | Actor::DeletedUser
        | Actor::UnknownUser => (None, &[]),
    }
}

async fn member_role(c: &tokio_postgres::Client, user: Uuid, org: Uuid) -> Option<String> {
    must_run(
        c,
        "select roster.member_role($1, $2) as role",
        &[&user, &org],
    )
    .await[0]
        .get("role")
}

async fn has_permission(
    c: &tokio_postgres::Client,
    user: Uuid,
    org: Uuid,
    permission: &str,
) -> bool {
    must_run(
        c,
        "select roster.has_permission($1, $2, $3) as allowed",
        &[&user, &org, &permission],
    )
    .await[0]
        .get("allowed")
}

/// The permissions `user` holds in `org`, by has_permission.
async fn held(c: &tokio_postgres::Client, user: Uuid, org: Uuid) -> Vec<&'static str> {
    let mut held = Vec::new();
    for permission in OWNER {
        if has_permission(c, user, org, permission).await {
            held.push(*permission);
        }
    }
    held
}

#[tokio::test]
async fn the_permission_catalogue_is_as_documented() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    World::build(&client).await;
    let names: Vec<String> = must_run(
        &client,
        "select name from roster.permissions order by name",
        &[],
    )
    .await
    .iter()
    .map(|row| row.get("name"))
    .collect();
    assert_eq!(names, OWNER);
    for (role, expected) in [("owner", OWNER), ("admin", ADMIN), ("member", MEMBER)] {
        let granted: Vec<String> = must_run(
            &client,
            "select unnest(roster._expand_grants(r.tenant_id, r.permissions)) as permission \
               from roster.roles r join roster.tenants t on t.id = r.tenant_id \
              where t.slug = 'acme' and r.key = $1 and r.builtin order by 1",
            &[&role],
        )
        .await
        .iter()
        .map(|row| row.get("permission"))
        .collect();
        assert_eq!(granted, expected, "the permissions of role {role}");
    }
}

#[tokio::test]
async fn member_role_and_has_permission_by_actor() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    for actor in Actor::ALL {
        let (role, permissions) = expected_access(actor);
        let user = w.id(actor);
        assert_eq!(
            member_role(&client, user, w.org).await.as_deref(),
            role,
            "member_role of the {actor}"
        );
        assert_eq!(
            held(&client, user, w.org).await,
            permissions,
            "has_permission for the {actor}"
        );
    }

    // A tenant admin who is also a member has that role, and still the owner's permissions.
    add_member(&client, w.owner, w.org, w.tenant_admin, "member", "active").await;
    assert_eq!(
        member_role(&client, w.tenant_admin, w.org).await.as_deref(),
        Some("member")
    );
    assert_eq!(held(&client, w.tenant_admin, w.org).await, OWNER);

    // Nobody of this tenant has anything in another tenant's organization.
    for actor in [Actor::Owner, Actor::TenantAdmin] {
        let user = w.id(actor);
        assert_eq!(
            member_role(&client, user, w.other_org).await,
            None,
            "{actor} in another tenant's organization"
        );
        assert!(
            held(&client, user, w.other_org).await.is_empty(),
            "{actor} in another tenant's organization"
        );
    }
}

#[tokio::test]
async fn lookups_see_nothing_deleted() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    // A deleted organization.
    let doomed = create_organization(&client, w.owner, "Doomed", "doomed").await;
    must_run(
        &client,
        "select * from roster.delete_organization($1, $2)",
        &[&w.owner, &doomed],
    )
    .await;
    for actor in [Actor::Owner, Actor::TenantAdmin] {
        assert_eq!(
            member_role(&client, w.id(actor), doomed).await,
            None,
            "{actor}, deleted organization"
        );
        assert!(
            held(&client, w.id(actor), doomed).await.is_empty(),
            "{actor}, deleted organization"
        );
    }

    // A deleted tenant: its users can neither be looked up nor act; other tenants are untouched.
    must_run(
        &client,
        "update roster.tenants set deleted_at = now() where id = $1",
        &[&w.tenant],
    )
    .await;
    for actor in [Actor::Owner, Actor::Member, Actor::TenantAdmin] {
        let user = w.id(actor);
        assert_eq!(
            member_role(&client, user, w.org).await,
            None,
            "{actor}, deleted tenant"
        );
        assert!(
            held(&client, user, w.org).await.is_empty(),
            "{actor}, deleted tenant"
        );
        let got = attempt(
            &client,
            "select * from roster.get_organization($1, $2)",
            &[&user, &w.org],
        )
        .await;
        assert_eq!(
            got.map(drop),
            Err("RNACT".into()),
            "{actor} of a deleted tenant acting"
        );
    }
    assert_eq!(
        member_role(&client, w.other_tenant_user, w.other_org)
            .await
            .as_deref(),
        Some("owner")
    );
}

#[tokio::test]
async fn an_unknown_permission_is_an_error() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    let permissions: [Option<&str>; 4] = [
        Some("organization:reed"),
        Some("ORGANIZATION:READ"),
        Some("organization"),
        None,
    ];
    for actor in [
        Actor::Owner,
        Actor::TenantAdmin,
        Actor::NonMember,
        Actor::UnknownUser,
    ] {
        for org in [w.org, Uuid::new_v4()] {
            for permission in permissions {
                let got = attempt(
                    &client,
                    "select roster.has_permission($1, $2, $3)",
                    &[&w.id(actor), &org, &permission],
                )
                .await;
                assert_eq!(
                    got.map(drop),
                    Err("RUPRM".into()),
                    "has_permission({actor}, {org}, {permission:?})"
                );
            }
        }
    }
}

fn memberships(rows: &[Row]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|row| (row.get("slug"), row.get("role"), row.get("status")))
        .collect()
}

#[tokio::test]
async fn list_organizations_shows_each_actor_its_own_memberships() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let acme =
        |role: &str, status: &str| vec![(ORG_SLUG.to_owned(), role.to_owned(), status.to_owned())];

    let cases = [
        (Actor::Owner, acme("owner", "active")),
        (Actor::Admin, acme("admin", "active")),
        (Actor::Member, acme("member", "active")),
        (Actor::Invited, acme("member", "invited")),
        (Actor::Suspended, acme("member", "suspended")),
        (Actor::NonMember, vec![]),
        (
            Actor::OtherTenant,
            vec![(OTHER_ORG_SLUG.into(), "owner".into(), "active".into())],
        ),
        (Actor::TenantAdmin, vec![]),
    ];
    for (actor, expected) in cases {
        let rows = must_run(
            &client,
            "select * from roster.list_organizations($1)",
            &[&w.id(actor)],
        )
        .await;
        assert_eq!(
            memberships(&rows),
            expected,
            "list_organizations of the {actor}"
        );
        if actor == Actor::OtherTenant {
            continue; // not in the tenant admin's tenant: RUSNF, see permissions.rs
        }
        let rows = must_run(
            &client,
            "select * from roster.list_user_organizations($1, $2)",
            &[&w.tenant_admin, &w.id(actor)],
        )
        .await;
        assert_eq!(
            memberships(&rows),
            expected,
            "list_user_organizations of the {actor} by the tenant admin"
        );
    }
}

/// An invited or suspended user sees which organization it is, but not its details, as
/// get_organization would not show them either.
#[tokio::test]
async fn list_organizations_shows_details_to_active_members_only() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    must_run(
        &client,
        r#"select * from roster.update_organization($1, $2, '{
             "description": "Widgets", "domain": "acme.com", "billing_email": "billing@acme.com",
             "billing_address": {"city": "Springfield"}, "stripe_customer_id": "cus_1",
             "metadata": {"plan": "pro"}}')"#,
        &[&w.owner, &w.org],
    )
    .await;

    for actor in [Actor::Member, Actor::Invited, Actor::Suspended] {
        let rows = must_run(
            &client,
            "select * from roster.list_organizations($1)",
            &[&w.id(actor)],
        )
        .await;
        let row = &rows[0];
        assert_eq!(row.get::<_, &str>("name"), ORG_NAME, "{actor}");
        let details = (
            row.get::<_, Option<String>>("description"),
            row.get::<_, Option<String>>("domain"),
            row.get::<_, Option<String>>("billing_email"),
            row.get::<_, Option<serde_json::Value>>("billing_address"),
            row.get::<_, Option<String>>("stripe_customer_id"),
            row.get::<_, serde_json::Value>("metadata"),
            row.get::<_, Option<i64>>("member_count"),
        );
        if actor == Actor::Member {
            assert_eq!(
                details,
                (
                    Some("Widgets".into()),
                    Some("acme.com".into()),
                    Some("billing@acme.com".into()),
                    Some(serde_json::json!({"city": "Springfield"})),
                    Some("cus_1".into()),
                    serde_json::json!({"plan": "pro"}),
                    Some(3),
                ),
                "the details an active member sees"
            );
        } else {
            assert_eq!(
                details,
                (None, None, None, None, None, serde_json::json!({}), None),
                "the details the {actor} sees"
            );
        }
    }
}

#[tokio::test]
async fn list_tenant_organizations_shows_the_live_organizations_of_the_tenant() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    create_organization(&client, w.member, "Beta Org", "beta-org").await;
    let gone = create_organization(&client, w.member, "Aardvark", "aardvark").await;
    must_run(
        &client,
        "select * from roster.delete_organization($1, $2)",
        &[&w.member, &gone],
    )
    .await;

    let rows = must_run(
        &client,
        "select * from roster.list_tenant_organizations($1)",
        &[&w.tenant_admin],
    )
    .await;
    assert_eq!(
        slugs(&rows),
        [ORG_SLUG, "beta-org"],
        "by name, without the deleted one nor another tenant's"
    );
    let counts: Vec<i64> = rows.iter().map(|row| row.get("member_count")).collect();
    assert_eq!(
        counts,
        [3, 1],
        "active members: owner, admin, member; then the creator"
    );
}

#[tokio::test]
async fn get_organization_and_list_members_return_the_organization() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    for actor in [
        Actor::Owner,
        Actor::Admin,
        Actor::Member,
        Actor::TenantAdmin,
    ] {
        let rows = must_run(
            &client,
            "select * from roster.get_organization($1, $2)",
            &[&w.id(actor), &w.org],
        )
        .await;
        assert_eq!(rows.len(), 1, "get_organization by the {actor}");
        let row = &rows[0];
        assert_eq!(row.get::<_, Uuid>("id"), w.org);
        assert_eq!(row.get::<_, &str>("name"), ORG_NAME);
        assert_eq!(row.get::<_, &str>("slug"), ORG_SLUG);
        assert_eq!(row.get::<_, Option<Uuid>>("created_by"), Some(w.owner));
        assert_eq!(
            row.get::<_, i64>("member_count"),
            3,
            "only active members count"
        );
    }

    let rows = must_run(
        &client,
        "select * from roster.list_members($1, $2)",
        &[&w.member, &w.org],
    )
    .await;
    let mut members: Vec<(String, String, String, Option<String>, bool)> = rows
        .iter()
        .map(|row| {
            (
                row.get("email"),
                row.get("role"),
                row.get("status"),
                row.get("invited_by_email"),
                row.get::<_, Option<chrono::DateTime<chrono::Utc>>>("joined_at")
                    .is_some(),
            )
        })
        .collect();
    members.sort();
    let by_owner = Some("owner@acme.test".to_owned());
    assert_eq!(
        members,
        [
            (
                "admin@acme.test".into(),
                "admin".into(),
                "active".into(),
                by_owner.clone(),
                true
            ),
            (
                "invited@acme.test".into(),
                "member".into(),
                "invited".into(),
                by_owner.clone(),
                false
            ),
            (
                "member@acme.test".into(),
                "member".into(),
                "active".into(),
                by_owner.clone(),
                true
            ),
            (
                "owner@acme.test".into(),
                "owner".into(),
                "active".into(),
                by_owner.clone(),
                true
            ),
            (
                "suspended@acme.test".into(),
                "member".into(),
                "suspended".into(),
                by_owner,
                true
            ),
        ],
        "live memberships of every status, without the deleted user"
    );
}

/// member_access, as the API's cache reads it: one row, whose permissions are exactly those
/// has_permission grants, and empty wherever the user may not see the organization.
#[tokio::test]
async fn member_access_agrees_with_has_permission() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let deleted_org = create_organization(&client, w.owner, "Doomed", "doomed").await;
    add_member(&client, w.owner, deleted_org, w.admin, "admin", "active").await;
    must_run(
        &client,
        "select * from roster.delete_organization($1, $2)",
        &[&w.owner, &deleted_org],
    )
    .await;
    let access = "select * from roster.member_access($1, $2)";

    for actor in Actor::ALL {
        let user = w.id(actor);
        let rows = must_run(&client, access, &[&user, &w.org]).await;
        assert_eq!(
            rows.len(),
            1,
            "member_access of the {actor}: always one row"
        );
        let permissions: Vec<String> = rows[0].get("permissions");
        assert_eq!(
            permissions,
            expected_access(actor).1,
            "member_access permissions of the {actor}"
        );
        let membership: (Option<String>, Option<String>) =
            (rows[0].get("role"), rows[0].get("status"));
        let expected = match actor {
            Actor::Owner => (Some("owner"), Some("active")),
            Actor::Admin => (Some("admin"), Some("active")),
            Actor::Member => (Some("member"), Some("active")),
            Actor::Invited => (Some("member"), Some("invited")),
            Actor::Suspended => (Some("member"), Some("suspended")),
            _ => (None, None),
        };
        assert_eq!(
            (membership.0.as_deref(), membership.1.as_deref()),
            expected,
            "member_access role and status of the {actor}"
        );

        for (which, org) in [
            ("another tenant's organization", w.other_org),
            ("a missing organization", Uuid::new_v4()),
            ("a deleted organization", deleted_org),
        ] {
            if actor == Actor::OtherTenant && org == w.other_org {
                continue; // its own organization
            }
            let rows = must_run(&client, access, &[&user, &org]).await;
            assert_eq!(
                rows.len(),
                1,
                "member_access of the {actor} in {which}: always one row"
            );
            let permissions: Vec<String> = rows[0].get("permissions");
            assert!(
                permissions.is_empty(),
                "member_access of the {actor} in {which} should grant nothing, got {permissions:?}"
            );
        }
    }
}

#[tokio::test]
async fn caller_identity_by_actor() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    for actor in Actor::ALL {
        let rows = must_run(
            &client,
            "select * from roster.caller_identity($1)",
            &[&w.id(actor)],
        )
        .await;
        assert_eq!(
            rows.len(),
            1,
            "caller_identity of the {actor}: always one row"
        );
        let row = &rows[0];
        let tenant = match actor {
            Actor::OtherTenant => Some(w.other_tenant),
            Actor::UnknownUser => None,
            _ => Some(w.tenant),
        };
        assert_eq!(
            row.get::<_, Option<Uuid>>("tenant_id"),
            tenant,
            "tenant of the {actor}"
        );
        assert_eq!(
            row.get::<_, bool>("is_tenant_admin"),
            actor == Actor::TenantAdmin,
            "is_tenant_admin of the {actor}"
        );
        assert_eq!(
            row.get::<_, bool>("user_live"),
            !matches!(actor, Actor::DeletedUser | Actor::UnknownUser),
            "user_live of the {actor}"
        );
        let version: i64 = row.get("user_version");
        assert_eq!(
            version == 0,
            actor == Actor::UnknownUser,
            "user_version of the {actor}: {version}"
        );
    }
}
