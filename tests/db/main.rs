#[path = "../common/mod.rs"]
mod common;

mod audit;
mod concurrency;
mod invariants;
mod lifecycle;
mod lookups;
mod migrations;
mod notifications;
mod permissions;
mod roles;
mod security;
mod support;
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
