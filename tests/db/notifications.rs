//! The change stream the API's cache relies on: each committed change of a versioned row is a
//! row of `roster.change_log` (V36) with its new version, read with `roster.changes_after`; a
//! rolled-back change records nothing; the log is pruned once read, and stays bounded with no
//! reader at all. Invitations are also announced on channel `roster_changes` (V32), for the
//! product's mailer.

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, GenericClient, NoTls};
use uuid::Uuid;

use crate::common::{self, TestDatabase};
use crate::support::*;

/// A reader of the change log, as the API's listener reads it: registered, then each
/// `changes` call returns what was committed since the previous one.
pub(crate) struct ChangeReader {
    pub id: Uuid,
    snapshot: String,
}

impl ChangeReader {
    pub(crate) async fn start(client: &impl GenericClient) -> ChangeReader {
        let id = Uuid::new_v4();
        must_run(client, "select roster.register_change_reader($1)", &[&id]).await;
        let rows = must_run(
            client,
            "select snapshot::text from roster.changes_after(null)",
            &[],
        )
        .await;
        assert_eq!(1, rows.len(), "the snapshot alone: {rows:?}");
        ChangeReader {
            id,
            snapshot: rows[0].get(0),
        }
    }

    /// The changes committed since the last call, each as the JSON payload V10's NOTIFY
    /// carried: `{"kind", "tenant_id", "<kind>_id", "version"}`, or `{"kind": "all"}`.
    pub(crate) async fn changes(&mut self, client: &impl GenericClient) -> Vec<Value> {
        let rows = must_run(
            client,
            "select snapshot::text, kind, tenant_id, object_id, version \
               from roster.changes_after($1::text::pg_snapshot)",
            &[&self.snapshot],
        )
        .await;
        self.snapshot = rows[0].get(0);
        rows[1..]
            .iter()
            .map(|row| {
                let kind: String = row.get("kind");
                let tenant: Option<Uuid> = row.get("tenant_id");
                let object: Option<Uuid> = row.get("object_id");
                let version: Option<i64> = row.get("version");
                match kind.as_str() {
                    "all" => json!({"kind": "all"}),
                    "tenant" => json!({"kind": kind, "tenant_id": tenant, "version": version}),
                    "resources" => json!({"kind": kind, "tenant_id": tenant,
                                          "organization_id": object, "version": version}),
                    _ => json!({"kind": kind, "tenant_id": tenant,
                                format!("{kind}_id"): object, "version": version}),
                }
            })
            .collect()
    }

    /// Reports having read everything up to the last `changes` call (which prunes the log).
    pub(crate) async fn heartbeat(&self, client: &impl GenericClient) -> bool {
        must_run(
            client,
            "select roster.change_reader_heartbeat($1, $2::text::pg_snapshot)",
            &[&self.id, &self.snapshot],
        )
        .await[0]
            .get(0)
    }
}

/// `times` transactions, one logged change each (the tenant's new version).
async fn rename_tenant_times(client: &Client, tenant: Uuid, times: u32) {
    client
        .batch_execute(&format!(
            "do $$ begin
               for i in 1..{times} loop
                 update roster.tenants set name = 'Acme ' || i where id = '{tenant}';
                 commit;
               end loop;
             end $$"
        ))
        .await
        .unwrap_or_else(|e| panic!("{times} tenant edits: {e}"));
}

async fn log_rows(client: &impl GenericClient) -> i64 {
    must_run(client, "select count(*) from roster.change_log", &[]).await[0].get(0)
}

/// A connection listening on roster_changes (invitations), and the payloads it receives, in
/// commit order.
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
    let mut reader = ChangeReader::start(&client).await;

    add_member(&client, w.owner, w.org, newcomer, "member", "active").await;
    let payloads = reader.changes(&client).await;

    let org_version = authz_version(&client, w.org).await;
    let user_version = user_version(&client, newcomer).await;
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

/// The version rows (V42) are logged whoever writes them: a raw update of one, and the
/// deletion its user's deletion cascades to (the highest version: nothing read before is good).
#[tokio::test]
async fn raw_writes_of_version_rows_are_announced() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let loner = w.new_user(&client, "loner@acme.test").await;
    let mut reader = ChangeReader::start(&client).await;

    must_run(
        &client,
        "update roster.organization_versions set version = version + 5 where organization_id = $1",
        &[&w.org],
    )
    .await;
    must_run(&client, "delete from roster.users where id = $1", &[&loner]).await;
    let payloads = reader.changes(&client).await;

    let expected = [
        json!({"kind": "organization", "tenant_id": w.tenant, "organization_id": w.org,
               "version": authz_version(&client, w.org).await}),
        json!({"kind": "user", "tenant_id": w.tenant, "user_id": loner,
               "version": i64::MAX}),
    ];
    for one in expected {
        assert!(payloads.contains(&one), "{one} among {payloads:?}");
    }
}

#[tokio::test]
async fn a_rolled_back_change_announces_nothing() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let mut reader = ChangeReader::start(&client).await;

    let tx = client.transaction().await.expect("begin");
    add_member(&tx, w.owner, w.org, newcomer, "member", "active").await;
    tx.rollback().await.expect("rollback");

    assert_eq!(reader.changes(&client).await, Vec::<Value>::new());
}

#[tokio::test]
async fn tenant_permission_and_purge_announcements() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let purged = create_organization(&client, w.member, "Purged", "purged").await;
    let mut reader = ChangeReader::start(&client).await;

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
        let payloads = reader.changes(&client).await;
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

/// A change still in progress when a reader reads arrives at the first read after its commit,
/// and only once: the reader's snapshot says which transactions it has not seen yet.
#[tokio::test]
async fn a_change_in_progress_at_a_read_arrives_once_after_its_commit() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let newcomer = w.new_user(&client, "newcomer@acme.test").await;
    let reader_session = db.client().await;
    let mut reader = ChangeReader::start(&reader_session).await;

    let tx = client.transaction().await.expect("begin");
    add_member(&tx, w.owner, w.org, newcomer, "member", "active").await;
    assert_eq!(Vec::<Value>::new(), reader.changes(&reader_session).await);
    // A later transaction commits first: its change arrives, the open one's does not yet.
    // (A user of no organization: renaming a member would wait for the open transaction's
    // lock on their organization.)
    let other = db.client().await;
    must_run(
        &other,
        "update roster.users set display_name = 'Renamed' where id = $1",
        &[&w.non_member],
    )
    .await;
    let first = reader.changes(&reader_session).await;
    assert!(
        first.iter().all(|p| p["user_id"] != json!(newcomer)),
        "{first:?}"
    );
    assert!(
        first.iter().any(|p| p["user_id"] == json!(w.non_member)),
        "{first:?}"
    );
    tx.commit().await.expect("commit");

    let second = reader.changes(&reader_session).await;
    let newcomer_version = user_version(&other, newcomer).await;
    assert!(
        second.contains(&json!({"kind": "user", "tenant_id": w.tenant,
                                "user_id": newcomer, "version": newcomer_version})),
        "{second:?}"
    );
    assert_eq!(
        Vec::<Value>::new(),
        reader.changes(&reader_session).await,
        "once"
    );
}

#[tokio::test]
async fn truncating_a_versioned_table_makes_everything_stale() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    World::build(&client).await;
    let mut reader = ChangeReader::start(&client).await;
    must_run(&client, "truncate roster.resource_versions", &[]).await;
    assert_eq!(vec![json!({"kind": "all"})], reader.changes(&client).await);
}

/// What a live reader has not read stays; once it says it has read it, the next prune takes
/// it. A reader silent for 10 s is no longer waited for.
#[tokio::test]
async fn the_log_keeps_what_a_live_reader_has_not_read() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let mut reader = ChangeReader::start(&client).await;
    let rename =
        "update roster.users set display_name = coalesce(display_name, '') || '.' where id = $1";
    must_run(&client, rename, &[&w.non_member]).await;
    must_run(&client, "select roster._prune_change_log()", &[]).await;
    assert!(log_rows(&client).await > 0, "kept for the reader");

    assert_eq!(1, reader.changes(&client).await.len());
    assert!(reader.heartbeat(&client).await, "a known reader");
    assert_eq!(0, log_rows(&client).await, "read, so pruned");

    must_run(&client, rename, &[&w.non_member]).await;
    must_run(
        &client,
        "update roster.change_readers set heartbeat_at = now() - interval '11 seconds'",
        &[],
    )
    .await;
    must_run(&client, "select roster._prune_change_log()", &[]).await;
    assert_eq!(
        0,
        log_rows(&client).await,
        "a silent reader is not waited for"
    );

    must_run(
        &client,
        "update roster.change_readers set heartbeat_at = now() - interval '2 hours'",
        &[],
    )
    .await;
    must_run(&client, "select roster._prune_change_log()", &[]).await;
    assert!(
        !reader.heartbeat(&client).await,
        "forgotten after an hour: it must register again"
    );
}

/// With no reader at all (every API instance down), the writers prune: the log never holds
/// more than about 1024 rows.
#[tokio::test]
async fn with_no_reader_the_writers_keep_the_log_bounded() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    rename_tenant_times(&client, w.tenant, 2100).await;
    let rows = log_rows(&client).await;
    assert!(
        (1..1024).contains(&rows),
        "pruned by the writers: {rows} rows"
    );
}

#[tokio::test]
async fn following_the_log_is_for_the_api_role() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    for call in [
        "select roster.register_change_reader(gen_random_uuid())",
        "select * from roster.changes_after(null)",
        "select roster.change_reader_heartbeat(gen_random_uuid(), pg_current_snapshot())",
    ] {
        client
            .batch_execute("set role roster_provisioner")
            .await
            .expect("set role");
        assert_eq!(
            Err("42501".into()),
            attempt(&client, call, &[]).await.map(drop),
            "{call}"
        );
        client.batch_execute("reset role").await.unwrap();
    }
    client
        .batch_execute("set role roster_app")
        .await
        .expect("set role");
    must_run(
        &client,
        "select roster.register_change_reader(gen_random_uuid())",
        &[],
    )
    .await;
}

/// A transaction that logs more than 1024 changes prunes the log while it runs: never its own
/// rows, which no reader has seen yet.
#[tokio::test]
async fn a_long_transaction_keeps_its_own_changes() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    let mut reader = ChangeReader::start(&client).await;
    client
        .batch_execute(&format!(
            "do $$ begin
               for i in 1..1100 loop
                 update roster.tenants set name = 'Acme ' || i where id = '{}';
               end loop;
             end $$",
            w.tenant
        ))
        .await
        .expect("1,100 tenant edits in one transaction");
    let changes = reader.changes(&client).await;
    assert_eq!(1100, changes.len());
    assert!(changes.contains(&json!({"kind": "tenant", "tenant_id": w.tenant, "version": 1101})));
}

/// How a reader's polls scanned roster.change_log: (sequential, by index). On a connection of
/// their own and within one transaction: in PostgreSQL 15 `pg_stat_xact_*` also counts a
/// session's earlier transactions until its stats are flushed (at most once a second).
async fn poll_scans(db: &TestDatabase, reader: &mut ChangeReader) -> (i64, i64) {
    let mut client = db.client().await;
    let transaction = client.transaction().await.expect("begin");
    for _ in 0..3 {
        reader.changes(&transaction).await;
    }
    let row = &must_run(
        &transaction,
        "select seq_scan, idx_scan from pg_stat_xact_user_tables \
          where relid = 'roster.change_log'::regclass",
        &[],
    )
    .await[0];
    (row.get(0), row.get::<_, Option<i64>>(1).unwrap_or(0))
}

#[tokio::test]
async fn a_poll_reads_the_log_by_its_index_however_many_rows_await_vacuum() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let w = World::build(&client).await;
    // Some 2,000 pruned rows, dead until a VACUUM, and a few live ones.
    rename_tenant_times(&client, w.tenant, 2100).await;
    let mut reader = ChangeReader::start(&client).await;
    let (sequential, by_index) = poll_scans(&db, &mut reader).await;
    assert_eq!(0, sequential, "V39: by the index only");
    assert!(by_index >= 3, "each poll reads the index: {by_index}");

    // The control: without V39's setting the planner scans the whole heap, dead rows and all.
    client
        .batch_execute("alter function roster.changes_after(pg_snapshot) reset enable_seqscan")
        .await
        .expect("reset the setting");
    let (sequential, _) = poll_scans(&db, &mut reader).await;
    assert!(sequential > 0, "the control should scan sequentially");
}
