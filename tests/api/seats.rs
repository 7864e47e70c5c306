//! Seat limits over HTTP: PATCH sets the limit, GET reports it and the seats used, and at the
//! limit adding, inviting, joining and accepting answer 409 `seat_limit`.

use serde_json::json;

use crate::helpers::{assert_error, assert_json, spawn_app};

#[tokio::test]
async fn at_the_limit_every_door_answers_seat_limit() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let root = app.tenant_admin("root").await;
    let pending = app.user("pat").await;
    let joiner = app.user("jo").await;
    let extra = app.user("max").await;
    let org = app.new_org(&owner, "acme").await;
    let fetched = assert_json(app.get_organization(&owner.token, org).await, 200, "GET").await;
    assert_eq!(
        (json!(null), json!(1)),
        (fetched["seat_limit"].clone(), fetched["seats_used"].clone())
    );

    let invitation = assert_json(
        app.invite(&owner.token, org, &json!({"email": "pat@example.com"}))
            .await,
        201,
        "invite pat",
    )
    .await;
    let response = app
        .add_domain(
            &owner.token,
            org,
            &json!({"domain": "example.com", "policy": "auto_join"}),
        )
        .await;
    assert_json(response, 201, "claim").await;
    assert_json(
        app.verify_domain(&root.token, org, "example.com").await,
        200,
        "verify",
    )
    .await;

    let updated = assert_json(
        app.update_organization(&owner.token, org, &json!({"seat_limit": 2}))
            .await,
        200,
        "limit 2",
    )
    .await;
    assert_eq!(json!(2), updated["seat_limit"]);
    let fetched = assert_json(app.get_organization(&owner.token, org).await, 200, "GET").await;
    assert_eq!(
        (json!(2), json!(2)),
        (fetched["seat_limit"].clone(), fetched["seats_used"].clone()),
        "olivia and pat's invitation"
    );

    assert_error(
        app.add_member(&owner.token, org, &json!({"user_id": extra.id}))
            .await,
        409,
        "seat_limit",
        "add",
    )
    .await;
    assert_error(
        app.invite(&owner.token, org, &json!({"email": "x@example.com"}))
            .await,
        409,
        "seat_limit",
        "invite",
    )
    .await;
    assert_error(
        app.join_organization(&joiner.token, org).await,
        409,
        "seat_limit",
        "join",
    )
    .await;
    let bulk = assert_json(
        app.invite(
            &owner.token,
            org,
            &json!({"invitations": [{"email": "y@example.com"}]}),
        )
        .await,
        200,
        "bulk",
    )
    .await;
    assert_eq!(
        json!("seat_limit"),
        bulk["results"][0]["error"]["code"],
        "{bulk}"
    );

    // Pat's invitation holds its seat: accepting at the limit works; over it, it does not.
    let token = invitation["token"].as_str().unwrap();
    assert_json(
        app.update_organization(&owner.token, org, &json!({"seat_limit": 1}))
            .await,
        200,
        "limit 1",
    )
    .await;
    assert_error(
        app.accept_invitation_token(&pending.token, token).await,
        409,
        "seat_limit",
        "accept over the limit",
    )
    .await;
    let fetched = assert_json(app.get_organization(&owner.token, org).await, 200, "GET").await;
    assert_eq!(json!(2), fetched["seats_used"], "lowering removed no one");
    assert_json(
        app.update_organization(&owner.token, org, &json!({"seat_limit": 2}))
            .await,
        200,
        "limit 2",
    )
    .await;
    assert_json(
        app.accept_invitation_token(&pending.token, token).await,
        200,
        "accept at the limit",
    )
    .await;

    for (what, value) in [
        ("negative", json!(-1)),
        ("a fraction", json!(2.5)),
        ("a string", json!("2")),
    ] {
        let response = app
            .update_organization(&owner.token, org, &json!({ "seat_limit": value }))
            .await;
        assert_error(
            response,
            422,
            "invalid_input",
            &format!("seat_limit {what}"),
        )
        .await;
    }
    let cleared = assert_json(
        app.update_organization(&owner.token, org, &json!({"seat_limit": null}))
            .await,
        200,
        "no limit",
    )
    .await;
    assert_eq!(json!(null), cleared["seat_limit"]);
    assert_json(
        app.join_organization(&joiner.token, org).await,
        201,
        "join without a limit",
    )
    .await;
}
