//! Free-form JSON fields (`metadata`, `billing_address`): what a client stores comes back, and a
//! stored value the API cannot read is reported as the bug it is. Both found by schemathesis
//! (`make openapi-check`).

use serde_json::{json, Value};

use crate::helpers::{assert_json, spawn_app, uuid_at, Reply};

/// Numbers a JSON client can send that PostgreSQL prints back in full (`numeric`): `f64::MAX`
/// becomes 309 digits, the smallest subnormal 324 decimals.
fn edge_numbers() -> Value {
    json!({
        "max": f64::MAX,
        "min": f64::MIN,
        "smallest": 5e-324,
        "precise": 0.1,
        "long": 8167457344695584.0,
        "integer": i64::MAX,
        "nested": [{"x": -1.7976931348623157e308}],
    })
}

/// `value` with every number read as an f64: PostgreSQL returns a number's value, written out
/// in full (1.7976931348623157e308 as 309 digits), not its spelling.
fn as_f64s(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().expect("a number within f64")),
        Value::Array(items) => Value::Array(items.iter().map(as_f64s).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), as_f64s(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn numbers_at_the_ends_of_the_f64_range_come_back_as_sent() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let numbers = edge_numbers();

    let body = json!({"name": "Acme", "slug": "acme", "metadata": numbers});
    let created = assert_json(
        app.create_organization(&owner.token, &body).await,
        201,
        "create with edge numbers in metadata",
    )
    .await;
    assert_eq!(
        as_f64s(&numbers),
        as_f64s(&created["metadata"]),
        "metadata as created"
    );
    let org = uuid_at(&created, "id");

    let changes = json!({"billing_address": numbers});
    let updated = assert_json(
        app.update_organization(&owner.token, org, &changes).await,
        200,
        "PATCH edge numbers into billing_address (was a 503, and the row unreadable after)",
    )
    .await;
    assert_eq!(
        as_f64s(&numbers),
        as_f64s(&updated["billing_address"]),
        "billing_address as updated"
    );

    let fetched = assert_json(
        app.get_organization(&owner.token, org).await,
        200,
        "GET the organization",
    )
    .await;
    assert_eq!(
        as_f64s(&numbers),
        as_f64s(&fetched["metadata"]),
        "metadata as read back"
    );
    assert_eq!(
        as_f64s(&numbers),
        as_f64s(&fetched["billing_address"]),
        "billing_address as read back"
    );
    let listed = assert_json(
        app.list_organizations(&owner.token, "").await,
        200,
        "list the caller's organizations",
    )
    .await;
    assert_eq!(
        as_f64s(&numbers),
        as_f64s(&listed["data"][0]["metadata"]),
        "metadata as listed"
    );
}

#[tokio::test]
async fn a_number_beyond_f64_stored_by_raw_sql_is_served_exactly_not_an_outage() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    // Beyond f64, so only raw SQL can store it. It once made the organization unreadable (503,
    // then 500); numbers now pass through as their text.
    app.sql
        .execute(
            "update roster.organizations set metadata = '{\"x\": 1e400}' where id = $1",
            &[&org],
        )
        .await
        .expect("store a number beyond f64");

    let reply = Reply::read(app.get_organization(&owner.token, org).await).await;
    assert_eq!(200, reply.status, "{}", reply.text);
    let digits = format!("1{}", "0".repeat(400));
    assert!(
        reply.text.contains(&format!("\"x\":{digits}")),
        "the number comes back as PostgreSQL holds it: {}",
        reply.text
    );
}
