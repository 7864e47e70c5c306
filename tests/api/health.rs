//! The probes: no credentials needed.

use serde_json::json;

use crate::helpers::{assert_json, spawn_app};

#[tokio::test]
async fn healthz_is_200() {
    let app = spawn_app().await;

    let body = assert_json(app.healthz().await, 200, "GET /healthz").await;

    assert_eq!(json!({"status": "ok"}), body);
}

#[tokio::test]
async fn readyz_is_200_when_the_database_answers() {
    let app = spawn_app().await;

    let body = assert_json(app.readyz().await, 200, "GET /readyz").await;

    assert_eq!(json!("ok"), body["status"], "readyz: {body}");
    assert_eq!(json!("ok"), body["database"], "readyz: {body}");
    assert_eq!(
        json!("disabled"),
        body["cache"],
        "no REDIS_URL, no cache: {body}"
    );
}
