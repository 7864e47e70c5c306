//! Change notifications on channel `roster_changes` (V10), which the API's cache relies on: each
//! committed change announces what changed with its new authz_version; a rolled-back change
//! announces nothing.

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::common::{self, TestDatabase};
use crate::support::*;

/// A connection listening on roster_changes, and the payloads it receives, in commit order.
pub(crate) async fn listen(db: &TestDatabase) -> (Client, mpsc::UnboundedReceiver<Value>) {
    let (client, mut connection) = tokio_postgres::connect(&db.url, NoTls)
        .await
        .expect("connect a listener");
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                let payload = serde_json::from_str(n.payload()).expect("a JSON payload");
                if sender.send(payload).is_err() {
                    break;
                }
            }
        }
    });
    client
        .batch_execute("listen roster_changes")
        .await
        .expect("listen roster_changes");
    (client, receiver)
}

/// Everything announced before a marker that `writer` sends after its changes: one session's
/// notifications arrive in the order its transactions committed.
pub(crate) async fn announced(
    writer: &Client,
    received: &mut mpsc::UnboundedReceiver<Value>,
) -> Vec<Value> {
    must_run(
        writer,
        r#"select pg_notify('roster_changes', '{"kind": "test-marker"}')"#,
        &[],
    )
    .await;
    let mut payloads = Vec::new();
    loop {
        let payload = received.recv().await.expect("the listener is gone");
        if payload == json!({"kind": "test-marker"}) {
            return payloads;
        }
        payloads.push(payload);
    }
}

#[tokio::test]
async fn a_membership_change_announces_its_organization_and_user_versions() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let (_listener, mut received) = listen(&db).await;

    add_member(&client, w.owner, w.org, newcomer, "member", "active").await;
    let payloads = announced(&client, &mut received).await;

    let org_version = authz_version(&client, w.org).await;
    let user_version: i64 = must_run(
        &client,
        "select authz_version from roster.users where id = $1",
        &[&newcomer],
    )
    .await[0]
        .get("authz_version");
    let expected_org = json!({
        "kind": "organization",
        "tenant_id": w.tenant,
        "organization_id": w.org,
        "version": org_version,
    });
    let expected_user = json!({
        "kind": "user",
        "tenant_id": w.tenant,
        "user_id": newcomer,
        "version": user_version,
    });
    assert!(
        payloads.contains(&expected_org),
        "{expected_org} among {payloads:?}"
    );
    assert!(
        payloads.contains(&expected_user),
        "{expected_user} among {payloads:?}"
    );
}

#[tokio::test]
async fn a_rolled_back_change_announces_nothing() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let (_listener, mut received) = listen(&db).await;

    let tx = client.transaction().await.expect("begin");
    add_member(&tx, w.owner, w.org, newcomer, "member", "active").await;
    tx.rollback().await.expect("rollback");

    assert_eq!(announced(&client, &mut received).await, Vec::<Value>::new());
}

#[tokio::test]
async fn tenant_permission_and_purge_announcements() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let purged = create_organization(&client, w.member, "Purged", "purged").await;
    let (_listener, mut received) = listen(&db).await;

    let cases = [
        (
            "editing a tenant",
            format!("update roster.tenants set name = 'Acme Inc' where id = '{}'", w.tenant),
            // The tenant's new authz_version: 1 at creation, 2 after this edit.
            json!({"kind": "tenant", "tenant_id": w.tenant, "version": 2}),
        ),
        (
            // Built-in roles are immutable; the built-in catalogue changes only by migration.
            "changing the built-in permission catalogue",
            "update roster.permissions set description = description || '.' where name = 'audit:read'"
                .to_owned(),
            json!({"kind": "all"}),
        ),
        (
            "purging an organization",
            format!("delete from roster.organizations where id = '{purged}'"),
            json!({"kind": "organization", "tenant_id": w.tenant, "organization_id": purged,
                   "version": i64::MAX}),
        ),
    ];
    for (case, sql, expected) in cases {
        must_run(&client, &sql, &[]).await;
        let payloads = announced(&client, &mut received).await;
        assert!(
            payloads.contains(&expected),
            "{case}: {expected} among {payloads:?}"
        );
    }
}

#[tokio::test]
async fn invitations_are_announced_without_their_token() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let (_listener, mut received) = listen(&db).await;

    let invited = must_run(
        &client,
        "select id, token from roster.invite($1, $2, 'Guest@Example.com')",
        &[&w.owner, &w.org],
    )
    .await;
    let id: uuid::Uuid = invited[0].get("id");
    let token: String = invited[0].get("token");
    must_run(
        &client,
        "select * from roster.resend_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &id],
    )
    .await;
    must_run(
        &client,
        "select roster.revoke_invitation($1, $2, $3)",
        &[&w.owner, &w.org, &id],
    )
    .await;
    let invitations: Vec<Value> = announced(&client, &mut received)
        .await
        .into_iter()
        .filter(|p| p["kind"] == "invitation")
        .collect();
    let statuses: Vec<&str> = invitations
        .iter()
        .map(|p| p["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        vec!["pending", "pending", "revoked"],
        statuses,
        "{invitations:?}"
    );
    for payload in &invitations {
        assert_eq!(json!(id), payload["invitation_id"]);
        assert_eq!(json!(w.org), payload["organization_id"]);
        assert_eq!(json!("guest@example.com"), payload["email"]);
        assert!(!payload.to_string().contains(&token), "no token: {payload}");
    }
    assert_ne!(
        invitations[0]["sent_at"], invitations[1]["sent_at"],
        "the resend"
    );
}
