//! Free-form JSON fields (`metadata`, `billing_address`): what a client stores comes back, and a
//! stored value the API cannot read is reported as the bug it is. Both found by schemathesis
//! (`make openapi-check`).

use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_json, spawn_app, uuid_at};

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
    assert_eq!(numbers, created["metadata"], "metadata as created");
    let org = uuid_at(&created, "id");

    let changes = json!({"billing_address": numbers});
    let updated = assert_json(
        app.update_organization(&owner.token, org, &changes).await,
        200,
        "PATCH edge numbers into billing_address (was a 503, and the row unreadable after)",
    )
    .await;
    assert_eq!(
        numbers, updated["billing_address"],
        "billing_address as updated"
    );

    let fetched = assert_json(
        app.get_organization(&owner.token, org).await,
        200,
        "GET the organization",
    )
    .await;
    assert_eq!(numbers, fetched["metadata"], "metadata as read back");
    assert_eq!(
        numbers, fetched["billing_address"],
        "billing_address as read back"
    );
    let listed = assert_json(
        app.list_organizations(&owner.token, "").await,
        200,
        "list the caller's organizations",
    )
    .await;
    assert_eq!(numbers, listed["data"][0]["metadata"], "metadata as listed");
}

#[tokio::test]
async fn a_stored_value_the_api_cannot_read_is_a_500_not_an_outage() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    // Beyond f64, so only raw SQL can store it; the API cannot represent it.
    app.sql
        .execute(
            "update roster.organizations set metadata = '{\"x\": 1e400}' where id = $1",
            &[&org],
        )
        .await
        .expect("store a number beyond f64");

    let response = app.get_organization(&owner.token, org).await;

    assert_error(
        response,
        500,
        "internal",
        "GET an organization whose metadata does not decode (it said 503 database unavailable)",
    )
    .await;
}
