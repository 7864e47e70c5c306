//! The audit trail names an actor only when a roster function recorded it in this
//! transaction, never on the word of a setting anyone can write; and users and tenants are in
//! it too (creation, the tenant admin flag, deletion), whoever writes.

use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::common;
use crate::support::*;

/// (action, actor_id, db_user, db_role) of the newest event of the tenant.
async fn newest(
    c: &impl GenericClient,
    tenant: Uuid,
) -> (String, Option<Uuid>, String, Option<String>) {
    let row = must_run(
        c,
        "select action, actor_id, db_user, db_role from roster.audit_events \
          where tenant_id = $1 order by id desc limit 1",
        &[&tenant],
    )
    .await
    .remove(0);
    (
        row.get("action"),
        row.get("actor_id"),
        row.get("db_user"),
        row.get("db_role"),
    )
}

async fn login(c: &impl GenericClient) -> String {
    must_run(c, "select session_user::text as login", &[]).await[0].get("login")
}

#[tokio::test]
async fn a_forged_actor_setting_is_not_believed() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let login = login(&client).await;
    // A tag computed in another transaction (as the owner of the secret could).
    let stale_tag: String =
        must_run(&client, "select roster._actor_tag($1) as tag", &[&w.owner]).await[0].get("tag");
    let forgeries = [
        ("the plain id of a member", w.owner.to_string()),
        ("another tenant's user", w.other_tenant_user.to_string()),
        ("a random uuid", Uuid::new_v4().to_string()),
        ("a made-up tag", format!("{}:{}", w.owner, "0".repeat(64))),
        (
            "another transaction's tag",
            format!("{}:{stale_tag}", w.owner),
        ),
    ];
    for (what, value) in forgeries {
        let tx = client.transaction().await.expect("begin");
        tx.execute("select set_config('roster.actor_id', $1, true)", &[&value])
            .await
            .expect("set the actor setting");
        must_run(
            &tx,
            "update roster.organization_memberships set role = 'admin' \
              where organization_id = $1 and user_id = $2",
            &[&w.org, &w.member],
        )
        .await;
        tx.commit().await.expect("commit");
        let (action, actor, db_user, db_role) = newest(&client, w.tenant).await;
        assert_eq!(action, "membership.updated", "{what}");
        assert_eq!(actor, None, "{what}: no actor is recorded for raw SQL");
        assert_eq!(db_user, login, "{what}: the login is recorded");
        assert_eq!(
            db_role.as_deref(),
            Some(login.as_str()),
            "{what}: and the role"
        );
        must_run(
            &client,
            "update roster.organization_memberships set role = 'member' \
              where organization_id = $1 and user_id = $2",
            &[&w.org, &w.member],
        )
        .await;
    }

    // A roster function's own record is believed, and says which role the session acted as.
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("set local role roster_app")
        .await
        .expect("set role");
    must_run(
        &tx,
        "select * from roster.update_member($1, $2, $3, p_role => 'admin')",
        &[&w.owner, &w.org, &w.member],
    )
    .await;
    tx.commit().await.expect("commit");
    let (action, actor, db_user, db_role) = newest(&client, w.tenant).await;
    assert_eq!(action, "membership.updated");
    assert_eq!(actor, Some(w.owner), "the function's actor");
    assert_eq!(db_user, login);
    assert_eq!(
        db_role.as_deref(),
        Some("roster_app"),
        "the role the session acted as"
    );
}

#[tokio::test]
async fn users_and_tenants_are_audited_whoever_writes() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let login = login(&client).await;

    let admin = must_run(
        &client,
        "select roster.create_user($1, 'boss@acme.test', 'Boss', p_is_tenant_admin => true) as id",
        &[&w.tenant],
    )
    .await[0]
        .get::<_, Uuid>("id");
    let (action, actor, db_user, _) = newest(&client, w.tenant).await;
    assert_eq!(
        (action.as_str(), actor, db_user.as_str()),
        ("user.created", None, login.as_str()),
        "creating a tenant admin"
    );
    let changes = [
        (
            "update roster.users set is_tenant_admin = true where id = $1",
            w.member,
            "user.admin_granted",
        ),
        (
            "update roster.users set is_tenant_admin = false where id = $1",
            w.member,
            "user.admin_revoked",
        ),
        (
            "update roster.users set display_name = 'Mia' where id = $1",
            w.member,
            "user.updated",
        ),
        (
            "update roster.users set deleted_at = now() where id = $1",
            w.non_member,
            "user.deleted",
        ),
        (
            "update roster.users set deleted_at = null where id = $1",
            w.non_member,
            "user.restored",
        ),
    ];
    for (sql, user, expected) in changes {
        must_run(&client, sql, &[&user]).await;
        let row = must_run(
            &client,
            "select action, target_user_id, organization_id from roster.audit_events \
              where tenant_id = $1 order by id desc limit 1",
            &[&w.tenant],
        )
        .await
        .remove(0);
        assert_eq!(row.get::<_, &str>("action"), expected, "{sql}");
        assert_eq!(
            row.get::<_, Option<Uuid>>("target_user_id"),
            Some(user),
            "{sql}"
        );
        assert_eq!(row.get::<_, Option<Uuid>>("organization_id"), None, "{sql}");
    }
    // A membership change bumps the user's version: not a user event of its own.
    let before = must_run(
        &client,
        "select count(*) as n from roster.audit_events",
        &[],
    )
    .await[0]
        .get::<_, i64>("n");
    add_member(&client, w.owner, w.org, w.non_member, "member", "active").await;
    let after = must_run(
        &client,
        "select count(*) as n from roster.audit_events",
        &[],
    )
    .await[0]
        .get::<_, i64>("n");
    assert_eq!(after, before + 1, "one membership.created, no user.updated");

    must_run(
        &client,
        "update roster.tenants set name = 'Acme Inc' where id = $1",
        &[&w.tenant],
    )
    .await;
    assert_eq!(newest(&client, w.tenant).await.0, "tenant.updated");

    // Tenant admins read the tenant's trail; nobody else.
    let rows = must_run(
        &client,
        "select action from roster.list_tenant_audit_events($1, 200, 0)",
        &[&admin],
    )
    .await;
    let actions: Vec<String> = rows.iter().map(|r| r.get("action")).collect();
    for expected in [
        "tenant.updated",
        "user.admin_granted",
        "user.created",
        "membership.created",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
    let got = attempt(
        &client,
        "select * from roster.list_tenant_audit_events($1, 50, 0)",
        &[&w.owner],
    )
    .await
    .map(drop);
    assert_eq!(
        got,
        Err("RDNID".into()),
        "an owner of an organization is no tenant admin"
    );
}

/// The update half of the organizations' and users' audit triggers is called for every change of
/// a column but `updated_at` (its WHEN lists them, V37; the versions left those rows in V42). A
/// column added to either table must join that list, or changes to it alone go unaudited.
#[tokio::test]
async fn the_audit_triggers_watch_every_column_but_the_version_and_the_touch_time() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    for (table, trigger) in [
        ("organizations", "tg_organizations__audit_update"),
        ("users", "tg_users__audit_update"),
    ] {
        let rows = must_run(
            &client,
            "select a.attname::text as name, pg_get_triggerdef(t.oid) as definition
               from pg_trigger t
               join pg_attribute a on a.attrelid = t.tgrelid and a.attnum > 0 and not a.attisdropped
              where t.tgrelid = ('roster.' || $1)::regclass and t.tgname = $2",
            &[&table, &trigger],
        )
        .await;
        assert!(!rows.is_empty(), "{trigger} exists on {table}");
        for row in rows {
            let (column, definition): (&str, &str) = (row.get("name"), row.get("definition"));
            // PostgreSQL prints the row comparison column by column.
            let watched =
                definition.contains(&format!("(old.{column} IS DISTINCT FROM new.{column})"));
            let expected = column != "updated_at";
            assert_eq!(
                expected, watched,
                "{table}.{column} in {trigger}: {definition}"
            );
        }
    }

    // What each side sees: a raw version bump records nothing, a raw edit records an update.
    let count = || async {
        must_run(
            &client,
            "select count(*) as n from roster.audit_events",
            &[],
        )
        .await[0]
            .get::<_, i64>("n")
    };
    let before = count().await;
    for sql in [
        "update roster.organization_versions set version = version + 1 where organization_id = $1",
        "update roster.user_versions set version = version + 1 where user_id = $1",
    ] {
        let id = match sql.contains("users") {
            true => w.member,
            false => w.org,
        };
        must_run(&client, sql, &[&id]).await;
    }
    assert_eq!(before, count().await, "version bumps are not audited");
    must_run(
        &client,
        "update roster.organizations set seat_limit = 50 where id = $1",
        &[&w.org],
    )
    .await;
    assert_eq!(newest(&client, w.tenant).await.0, "organization.updated");
}
