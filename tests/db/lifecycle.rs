//! The life of an organization and its memberships: joined_at, authz_version, soft delete.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::common;
use crate::support::*;

async fn joined_at(client: &Client, org: Uuid, user: Uuid) -> Option<DateTime<Utc>> {
    client
        .query_one(
            "select joined_at from roster.organization_memberships \
              where organization_id = $1 and user_id = $2 and deleted_at is null",
            &[&org, &user],
        )
        .await
        .expect("read joined_at")
        .get("joined_at")
}

#[tokio::test]
async fn joined_at_is_set_when_a_membership_first_becomes_active() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    assert!(
        joined_at(&client, w.org, w.owner).await.is_some(),
        "the creator"
    );
    let added = w
        .new_member(&client, "added@acme.test", "member", "active")
        .await;
    assert!(
        joined_at(&client, w.org, added).await.is_some(),
        "added as active"
    );
    assert_eq!(joined_at(&client, w.org, w.invited).await, None, "invited");

    must_run(
        &client,
        "select * from roster.accept_invitation($1, $2)",
        &[&w.invited, &w.org],
    )
    .await;
    let accepted = joined_at(&client, w.org, w.invited).await;
    assert!(accepted.is_some(), "after accepting the invitation");

    // Suspending and reactivating keeps the first date.
    for status in ["suspended", "active"] {
        must_run(
            &client,
            "select * from roster.update_member($1, $2, $3, p_status => $4)",
            &[&w.owner, &w.org, &w.invited, &status],
        )
        .await;
        assert_eq!(
            joined_at(&client, w.org, w.invited).await,
            accepted,
            "after {status}"
        );
    }
}

#[tokio::test]
async fn authz_version_bumps_on_every_change_of_access() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let (org, owner) = (w.org, w.owner);

    // Each change, with its parameters and the user whose membership it changes.
    #[rustfmt::skip]
    let changes: [(&str, &str, Vec<Uuid>, Uuid); 6] = [
        ("add_member", "select * from roster.add_member($1, $2, $3, 'member', 'invited')", vec![owner, org, newcomer], newcomer),
        ("accept_invitation", "select * from roster.accept_invitation($1, $2)", vec![newcomer, org], newcomer),
        ("update_member (role)", "select * from roster.update_member($1, $2, $3, 'admin')", vec![owner, org, newcomer], newcomer),
        ("update_member (status)", "select * from roster.update_member($1, $2, $3, p_status => 'suspended')", vec![owner, org, newcomer], newcomer),
        ("remove_member", "select * from roster.remove_member($1, $2, $3)", vec![owner, org, newcomer], newcomer),
        ("soft-deleting a member's user", "update roster.users set deleted_at = now() where id = $1", vec![w.member], w.member),
    ];
    for (what, sql, ids, user) in &changes {
        let before = version_and_touch(&client, org).await;
        let user_before = user_version(&client, *user).await;
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = ids
            .iter()
            .map(|id| id as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        must_run(&client, sql, &params).await;
        let after = version_and_touch(&client, org).await;
        assert!(
            after.0 > before.0,
            "{what} should bump the organization's authz_version"
        );
        assert!(
            user_version(&client, *user).await > user_before,
            "{what} should bump the member's authz_version"
        );
        // A membership change is not an edit of the organization.
        assert_eq!(after.1, before.1, "{what} should not touch updated_at");
    }

    // Editing the organization bumps it too, and touches updated_at.
    let before = version_and_touch(&client, org).await;
    must_run(
        &client,
        r#"select * from roster.update_organization($1, $2, '{"description": "new"}')"#,
        &[&owner, &org],
    )
    .await;
    let after = version_and_touch(&client, org).await;
    assert!(after.0 > before.0, "update_organization");
    assert!(after.1 > before.1, "update_organization touches updated_at");

    // Reads change nothing.
    let before = authz_version(&client, org).await;
    for sql in [
        "select * from roster.get_organization($1, $2)",
        "select * from roster.list_members($1, $2)",
        "select roster.has_permission($1, $2, 'organization:read')",
        "select roster.member_role($1, $2)",
    ] {
        must_run(&client, sql, &[&owner, &org]).await;
    }
    assert_eq!(
        authz_version(&client, org).await,
        before,
        "reads must not bump authz_version"
    );
}

#[tokio::test]
async fn a_deleted_organization_is_invisible() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let org = w.org;
    must_run(
        &client,
        "select * from roster.delete_organization($1, $2)",
        &[&w.owner, &org],
    )
    .await;

    // Every actor-checked function: RNFND, whoever asks.
    let calls = [
        "select * from roster.get_organization($1, $2)",
        "select * from roster.list_members($1, $2)",
        r#"select * from roster.update_organization($1, $2, '{"description": "x"}')"#,
        "select * from roster.delete_organization($1, $2)",
        "select * from roster.remove_member($1, $2, $1)",
        "select * from roster.accept_invitation($1, $2)",
    ];
    for actor in [
        Actor::Owner,
        Actor::Admin,
        Actor::Member,
        Actor::Invited,
        Actor::TenantAdmin,
    ] {
        for sql in calls {
            let got = attempt(&client, sql, &[&w.id(actor), &org]).await;
            assert_eq!(
                got.map(drop),
                Err("RNFND".into()),
                "{actor}: `{sql}` on a deleted organization"
            );
        }
    }
    let got = attempt(
        &client,
        "select * from roster.add_member($1, $2, $3)",
        &[&w.owner, &org, &w.non_member],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RNFND".into()),
        "add_member to a deleted organization"
    );
    let got = attempt(
        &client,
        "select * from roster.update_member($1, $2, $3, 'admin')",
        &[&w.tenant_admin, &org, &w.member],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RNFND".into()),
        "update_member in a deleted organization"
    );

    // Not listed anywhere.
    for (what, sql, actor) in [
        (
            "list_organizations",
            "select * from roster.list_organizations($1)",
            w.owner,
        ),
        (
            "list_tenant_organizations",
            "select * from roster.list_tenant_organizations($1)",
            w.tenant_admin,
        ),
    ] {
        let rows = must_run(&client, sql, &[&actor]).await;
        assert!(
            slugs(&rows).is_empty(),
            "{what} after the delete: {:?}",
            slugs(&rows)
        );
    }
    let rows = must_run(
        &client,
        "select * from roster.list_user_organizations($1, $2)",
        &[&w.tenant_admin, &w.member],
    )
    .await;
    assert!(
        slugs(&rows).is_empty(),
        "list_user_organizations after the delete"
    );

    // No role, no permission.
    for actor in [Actor::Owner, Actor::Admin, Actor::TenantAdmin] {
        let row = must_run(
            &client,
            "select roster.member_role($1, $2) as role, \
                    roster.has_permission($1, $2, 'organization:read') as allowed",
            &[&w.id(actor), &org],
        )
        .await
        .remove(0);
        assert_eq!(
            row.get::<_, Option<String>>("role"),
            None,
            "member_role of the {actor}"
        );
        assert!(
            !row.get::<_, bool>("allowed"),
            "has_permission of the {actor}"
        );
    }
}

#[tokio::test]
async fn a_deleted_organizations_name_and_slug_can_be_reused() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    must_run(
        &client,
        "select * from roster.delete_organization($1, $2)",
        &[&w.owner, &w.org],
    )
    .await;

    let again = create_organization(&client, w.member, ORG_NAME, ORG_SLUG).await;
    assert_ne!(again, w.org);
    let rows = must_run(
        &client,
        "select * from roster.list_organizations($1)",
        &[&w.member],
    )
    .await;
    assert_eq!(slugs(&rows), [ORG_SLUG]);
    assert_eq!(
        rows[0].get::<_, Uuid>("id"),
        again,
        "the new organization, not the deleted one"
    );
    let rows = must_run(
        &client,
        "select * from roster.get_organization($1, $2)",
        &[&w.member, &again],
    )
    .await;
    assert_eq!(rows[0].get::<_, i64>("member_count"), 1, "only its creator");

    // The old one cannot come back while the new one holds its name and slug.
    let err = must_fail(
        &client,
        "update roster.organizations set deleted_at = null where id = $1",
        &[&w.org],
    )
    .await;
    assert_eq!(sqlstate(&err), "23505", "restoring over a live duplicate");
}

/// The trail of a few changes, newest first: function calls name their actor, raw SQL does not.
#[tokio::test]
async fn the_audit_trail_names_who_changed_what() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let (org, owner) = (w.org, w.owner);

    add_member(&client, owner, org, newcomer, "member", "active").await;
    must_run(
        &client,
        "update roster.organization_memberships set role = 'admin' \
          where organization_id = $1 and user_id = $2",
        &[&org, &newcomer],
    )
    .await;
    must_run(
        &client,
        r#"select * from roster.update_organization($1, $2, '{"description": "audited"}')"#,
        &[&w.tenant_admin, &org],
    )
    .await;
    must_run(
        &client,
        "select * from roster.remove_member($1, $2, $1)",
        &[&newcomer, &org],
    )
    .await;

    let rows = must_run(
        &client,
        "select * from roster.list_audit_events($1, $2, 4)",
        &[&owner, &org],
    )
    .await;
    let trail: Vec<(String, Option<Uuid>, Option<Uuid>)> = rows
        .iter()
        .map(|row| {
            (
                row.get("action"),
                row.get("actor_id"),
                row.get("target_user_id"),
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            ("membership.removed".into(), Some(newcomer), Some(newcomer)),
            ("organization.updated".into(), Some(w.tenant_admin), None),
            ("membership.updated".into(), None, Some(newcomer)),
            ("membership.created".into(), Some(owner), Some(newcomer)),
        ],
        "newest first; the raw update has no actor, and version bumps are not edits"
    );
    let db_users: Vec<String> = rows.iter().map(|row| row.get("db_user")).collect();
    let session_user: String =
        must_run(&client, "select session_user::text as name", &[]).await[0].get("name");
    assert!(
        db_users.iter().all(|u| *u == session_user),
        "db_user: {db_users:?}"
    );
}

#[tokio::test]
async fn the_audit_trail_is_append_only() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    World::build(&client).await;

    for sql in [
        "update roster.audit_events set action = 'organization.forged'",
        "delete from roster.audit_events",
        "truncate roster.audit_events",
    ] {
        let got = attempt(&client, sql, &[]).await;
        assert_eq!(
            got.map(drop),
            Err("RAPND".into()),
            "a superuser running `{sql}`"
        );
    }
}

/// roster._actor records the actor with set_config(..., true), which lasts until the end of the
/// transaction, not of the function: raw SQL later in the same transaction would be audited as
/// that actor's doing.
#[tokio::test]
async fn raw_sql_after_a_function_call_is_not_attributed_to_its_actor() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;

    let tx = client.transaction().await.expect("begin");
    must_run(
        &tx,
        "select * from roster.get_organization($1, $2)",
        &[&w.member, &w.org],
    )
    .await;
    must_run(
        &tx,
        "update roster.organizations set description = 'a DBA''s edit' where id = $1",
        &[&w.org],
    )
    .await;
    tx.commit().await.expect("commit");

    let row = must_run(
        &client,
        "select action, actor_id from roster.audit_events \
          where organization_id = $1 order by id desc limit 1",
        &[&w.org],
    )
    .await
    .remove(0);
    assert_eq!(row.get::<_, &str>("action"), "organization.updated");
    assert_eq!(
        row.get::<_, Option<uuid::Uuid>>("actor_id"),
        None,
        "a raw edit after the member read the organization"
    );
}
