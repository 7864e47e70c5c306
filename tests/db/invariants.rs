//! The invariants of V5 that hold whoever writes, functions or raw SQL: a live organization
//! always has an active owner (the last-owner guard), one live membership per user and
//! organization, and no membership across tenants.

use crate::common;
use crate::support::*;

const GUARD: &str = "roster.tg_organization_memberships__keep_an_owner";

#[tokio::test]
async fn functions_cannot_take_away_the_last_owner() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    #[rustfmt::skip]
    let cases = [
        ("the owner leaving", w.owner, "roster.remove_member($1, $2, $3)"),
        ("a tenant admin removing the owner", w.tenant_admin, "roster.remove_member($1, $2, $3)"),
        ("the owner demoting itself", w.owner, "roster.update_member($1, $2, $3, p_role => 'admin')"),
        ("a tenant admin demoting the owner", w.tenant_admin, "roster.update_member($1, $2, $3, p_role => 'member')"),
        ("the owner suspending itself", w.owner, "roster.update_member($1, $2, $3, p_status => 'suspended')"),
        ("a tenant admin suspending the owner", w.tenant_admin, "roster.update_member($1, $2, $3, p_status => 'suspended')"),
    ];
    for (case, actor, call) in cases {
        let sql = format!("select * from {call}");
        let got = attempt(&client, &sql, &[&actor, &w.org, &w.owner]).await;
        assert_eq!(got.map(drop), Err("RLOWN".into()), "{case}");
        assert_eq!(active_owners(&client, w.org).await, 1, "after {case}");
    }
}

#[tokio::test]
async fn raw_sql_cannot_take_away_the_last_owner() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let second_org = create_organization(&client, w.tenant_admin, "Acme Labs", "acme-labs").await;

    let owners_row = "where organization_id = $1 and user_id = $2";
    #[rustfmt::skip]
    let cases = [
        ("demoting to admin", format!("update roster.organization_memberships set role = 'admin' {owners_row}")),
        ("demoting to member", format!("update roster.organization_memberships set role = 'member' {owners_row}")),
        ("suspending", format!("update roster.organization_memberships set status = 'suspended' {owners_row}")),
        ("turning back into an invitation", format!("update roster.organization_memberships set status = 'invited' {owners_row}")),
        ("soft-deleting the membership", format!("update roster.organization_memberships set deleted_at = now() {owners_row}")),
        ("deleting the membership", format!("delete from roster.organization_memberships {owners_row}")),
        (
            "moving the membership to another organization",
            format!("update roster.organization_memberships set organization_id = '{second_org}' {owners_row}"),
        ),
        ("soft-deleting the owner's user", "update roster.users u set deleted_at = now() from roster.organizations o where o.id = $1 and u.tenant_id = o.tenant_id and u.id = $2".into()),
        ("deleting the owner's user", "delete from roster.users u using roster.organizations o where o.id = $1 and u.tenant_id = o.tenant_id and u.id = $2".into()),
    ];
    for (case, sql) in &cases {
        let got = attempt(&client, sql, &[&w.org, &w.owner]).await;
        assert_eq!(got.map(drop), Err("RLOWN".into()), "{case}");
        assert_eq!(
            membership(&client, w.org, w.owner).await,
            Some(("owner".into(), "active".into())),
            "the owner is still the active owner after {case}"
        );
    }
}

#[tokio::test]
async fn invited_and_suspended_owners_do_not_count() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    w.new_member(&client, "future-owner@acme.test", "owner", "invited")
        .await;
    let benched = w.new_co_owner(&client).await;
    must_run(
        &client,
        "select * from roster.update_member($1, $2, $3, p_status => 'suspended')",
        &[&w.owner, &w.org, &benched],
    )
    .await;

    let got = attempt(
        &client,
        "select * from roster.remove_member($1, $2, $1)",
        &[&w.owner, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RLOWN".into()),
        "the only active owner leaving while other owners are invited or suspended"
    );
}

#[tokio::test]
async fn with_two_owners_either_may_go() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let co_owner = w.new_co_owner(&client).await;

    must_run(
        &client,
        "select * from roster.remove_member($1, $2, $3)",
        &[&co_owner, &w.org, &w.owner],
    )
    .await;
    assert_eq!(active_owners(&client, w.org).await, 1);
    let got = attempt(
        &client,
        "select * from roster.remove_member($1, $2, $1)",
        &[&co_owner, &w.org],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RLOWN".into()),
        "the remaining owner leaving"
    );

    // A third owner; now the second one's user can be deleted, ending their membership.
    let third = w.new_user(&client, "third-owner@acme.test").await;
    add_member(&client, co_owner, w.org, third, "owner", "active").await;
    must_run(
        &client,
        "update roster.users set deleted_at = now() where id = $1",
        &[&co_owner],
    )
    .await;
    assert_eq!(membership(&client, w.org, co_owner).await, None);
    assert_eq!(active_owners(&client, w.org).await, 1);
}

#[tokio::test]
async fn an_organization_cannot_commit_without_an_owner() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let insert = "insert into roster.organizations (tenant_id, name, slug) values ($1, $2, $3)";

    // One statement in autocommit: the deferred check runs at its commit.
    let err = must_fail(&client, insert, &[&w.tenant, &"Ownerless", &"ownerless"]).await;
    assert_eq!(
        sqlstate(&err),
        "RLOWN",
        "inserting an ownerless organization"
    );

    // In a transaction, the insert succeeds and the commit fails.
    let tx = client.transaction().await.expect("begin");
    must_run(&tx, insert, &[&w.tenant, &"Ownerless", &"ownerless"]).await;
    let err = tx
        .commit()
        .await
        .expect_err("commit of an ownerless organization");
    assert_eq!(
        sqlstate(&err),
        "RLOWN",
        "committing an ownerless organization"
    );

    let left: i64 = client
        .query_one(
            "select count(*) as n from roster.organizations where slug = 'ownerless'",
            &[],
        )
        .await
        .expect("count organizations")
        .get("n");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn restoring_a_deleted_organization_needs_an_owner() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let restore = "update roster.organizations set deleted_at = null where id = $1";

    must_run(
        &client,
        "select * from roster.delete_organization($1, $2)",
        &[&w.owner, &w.org],
    )
    .await;
    must_run(&client, restore, &[&w.org]).await; // its owner is still there

    must_run(
        &client,
        "select * from roster.delete_organization($1, $2)",
        &[&w.owner, &w.org],
    )
    .await;
    // A deleted organization needs no owner, so this passes the guard ...
    must_run(
        &client,
        "update roster.organization_memberships set deleted_at = now() \
          where organization_id = $1 and user_id = $2",
        &[&w.org, &w.owner],
    )
    .await;
    // ... and then it cannot come back.
    let err = must_fail(&client, restore, &[&w.org]).await;
    assert_eq!(
        sqlstate(&err),
        "RLOWN",
        "restoring an organization without an owner"
    );
}

#[tokio::test]
async fn deferring_the_guard_lets_a_dba_swap_owners() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let set_role = "update roster.organization_memberships set role = $3 \
                     where organization_id = $1 and user_id = $2";

    // Immediate (the default): demoting the only owner first fails at once.
    let tx = client.transaction().await.expect("begin");
    let err = must_fail(&tx, set_role, &[&w.org, &w.owner, &"admin"]).await;
    assert_eq!(sqlstate(&err), "RLOWN", "demoting the only owner first");
    tx.rollback().await.expect("rollback");

    // Deferred, without a new owner: the commit fails.
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute(&format!("set constraints {GUARD} deferred"))
        .await
        .expect("defer the guard");
    must_run(&tx, set_role, &[&w.org, &w.owner, &"admin"]).await;
    let err = tx.commit().await.expect_err("commit without an owner");
    assert_eq!(
        sqlstate(&err),
        "RLOWN",
        "committing a deferred demotion of the only owner"
    );

    // Deferred, with the admin promoted later in the same transaction: the swap commits.
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute(&format!("set constraints {GUARD} deferred"))
        .await
        .expect("defer the guard");
    must_run(&tx, set_role, &[&w.org, &w.owner, &"admin"]).await;
    must_run(&tx, set_role, &[&w.org, &w.admin, &"owner"]).await;
    tx.commit().await.expect("commit the swap");

    assert_eq!(
        membership(&client, w.org, w.owner).await,
        Some(("admin".into(), "active".into()))
    );
    assert_eq!(
        membership(&client, w.org, w.admin).await,
        Some(("owner".into(), "active".into()))
    );
}

#[tokio::test]
async fn memberships_never_cross_tenants() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let insert = "insert into roster.organization_memberships \
                  (tenant_id, organization_id, user_id, role, status) \
                  values ($1, $2, $3, 'member', 'active')";

    let cases = [
        (
            "in the organization's tenant, with a user of another tenant",
            w.tenant,
        ),
        (
            "in the user's tenant, with an organization of another tenant",
            w.other_tenant,
        ),
    ];
    for (case, tenant) in cases {
        let err = must_fail(&client, insert, &[&tenant, &w.org, &w.other_tenant_user]).await;
        assert_eq!(sqlstate(&err), "23503", "a membership {case}");
    }
    let err = must_fail(
        &client,
        "update roster.organization_memberships set user_id = $2 where user_id = $1",
        &[&w.member, &w.other_tenant_user],
    )
    .await;
    assert_eq!(
        sqlstate(&err),
        "23503",
        "moving a membership to another tenant's user"
    );
}

#[tokio::test]
async fn one_live_membership_per_user_and_organization() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let insert = "insert into roster.organization_memberships \
                  (tenant_id, organization_id, user_id, role, status) \
                  values ($1, $2, $3, 'member', 'active')";

    let err = must_fail(&client, insert, &[&w.tenant, &w.org, &w.member]).await;
    assert_eq!(sqlstate(&err), "23505");
    assert_eq!(
        constraint(&err).as_deref(),
        Some("uq_organization_memberships_tenant_org_user")
    );

    // Once the membership has ended, the user may join again.
    must_run(
        &client,
        "select * from roster.remove_member($1, $2, $1)",
        &[&w.member, &w.org],
    )
    .await;
    must_run(&client, insert, &[&w.tenant, &w.org, &w.member]).await;
}

/// The guard's trigger skips its check when the updated row is still an active owner of the same
/// organization, without looking at whether it is still the same user: handing the only
/// ownership to a soft-deleted user leaves an organization no live user owns.
#[tokio::test]
async fn raw_sql_cannot_hand_the_last_ownership_to_a_deleted_user() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;

    let got = attempt(
        &client,
        "update roster.organization_memberships set user_id = $3 \
          where organization_id = $1 and user_id = $2",
        &[&w.org, &w.owner, &w.deleted_user],
    )
    .await;
    assert_eq!(
        got.map(drop),
        Err("RLOWN".into()),
        "moving the only owner membership to a soft-deleted user"
    );
    assert_eq!(active_owners(&client, w.org).await, 1);
}

/// TRUNCATE fires no row triggers, so it bypasses the guard unless a statement trigger
/// refuses it.
#[tokio::test]
async fn truncating_memberships_cannot_leave_organizations_without_owners() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;

    let tx = client.transaction().await.expect("begin");
    let got = attempt(&tx, "truncate roster.organization_memberships", &[]).await;
    let owners = match got {
        Ok(_) => active_owners(&tx, w.org).await,
        Err(_) => 1,
    };
    tx.rollback().await.expect("rollback");
    assert_eq!(
        got.map(drop),
        Err("RLOWN".into()),
        "truncating the memberships of live organizations (left {owners} active owner(s))"
    );
}
