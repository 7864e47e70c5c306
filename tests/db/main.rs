#[path = "../common/mod.rs"]
mod common;

mod audit;
mod concurrency;
mod domains;
mod grants;
mod invariants;
mod invitations;
mod lifecycle;
mod lookups;
mod migrations;
mod notifications;
mod permissions;
mod roles;
mod seats;
mod security;
mod support;
mod tokens;
mod validation;

#[tokio::test]
async fn migrations_create_roster_schema() {
    let db = common::fresh_database().await;
    let client = db.client().await;
    let row = client
        .query_one(
            "select exists (select 1 from information_schema.schemata \
             where schema_name = 'roster') as present",
            &[],
        )
        .await
        .expect("query information_schema.schemata");
    let present: bool = row.try_get("present").expect("column present");
    assert!(present, "schema roster should exist after migrations");
}

/// A migration must not die of limits meant for ordinary sessions: a DBA may set them on the
/// database or on the owner's role (`alter role ... set statement_timeout`), and the request
/// timeouts are such limits. 100 ms is far below what the migrations take (seconds), and
/// above what reading a setting takes on a loaded machine.
#[tokio::test]
async fn migrations_ignore_the_statement_and_lock_timeouts_of_the_database() {
    let db = common::empty_database().await;
    let admin = db.client().await;
    let quoted = roster::quote_ident(&db.name);
    admin
        .batch_execute(&format!(
            "alter database {quoted} set statement_timeout = 100; \
             alter database {quoted} set lock_timeout = 100"
        ))
        .await
        .expect("set the database's timeouts");
    let session = db.client().await;
    let row = session
        .query_one(
            "select current_setting('statement_timeout') as timeout",
            &[],
        )
        .await
        .expect("read statement_timeout");
    assert_eq!(
        "100ms",
        row.get::<_, &str>("timeout"),
        "new sessions get the database's statement_timeout"
    );
    let applied = roster::migrate(&db.url).await.unwrap_or_else(|e| {
        panic!(
            "migrate under a 100 ms statement_timeout: {}",
            roster::error::cause_chain(&e)
        )
    });
    assert!(!applied.is_empty(), "every migration was applied");
}
