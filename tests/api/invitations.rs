//! Inviting through POST members with status `invited`, and accepting.

use serde_json::json;

use crate::helpers::{
    assert_error, assert_json, assert_keys, assert_no_content, assert_page, column, spawn_app,
    MEMBERSHIP_KEYS,
};

#[tokio::test]
async fn an_invited_user_sees_the_organization_only_after_accepting() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let ivy = app.user("ivy").await;
    let org = app.new_org(&owner, "acme").await;

    let body = json!({"user_id": ivy.id, "status": "invited"});
    let invitation = assert_json(
        app.add_member(&owner.token, org, &body).await,
        201,
        "invite",
    )
    .await;
    assert_eq!(json!("invited"), invitation["status"]);
    assert!(invitation["joined_at"].is_null(), "not joined yet");

    let response = app.get_organization(&ivy.token, org).await;
    assert_error(response, 404, "not_found", "GET while invited").await;
    let (rows, _) = assert_page(app.list_organizations(&ivy.token, "").await, "ivy's list").await;
    assert_eq!(
        vec![org.to_string()],
        column(&rows, "id"),
        "the invitation is listed"
    );
    assert_eq!(json!("invited"), rows[0]["status"]);

    let response = app.accept_invitation(&ivy.token, org).await;
    let accepted = assert_json(response, 200, "accept").await;
    assert_keys(&accepted, MEMBERSHIP_KEYS, "accepted membership");
    assert_eq!(json!("active"), accepted["status"]);
    assert_eq!(json!(ivy.id), accepted["user_id"]);
    assert!(accepted["joined_at"].is_string(), "joined on accepting");

    let fetched = assert_json(app.get_organization(&ivy.token, org).await, 200, "GET").await;
    assert_eq!(json!(2), fetched["member_count"], "ivy now counts");

    let response = app.accept_invitation(&ivy.token, org).await;
    assert_error(response, 409, "invitation_not_pending", "accept again").await;
}

#[tokio::test]
async fn accepting_needs_a_pending_invitation_of_ones_own() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let stranger = app.user("sid").await;
    let suspended = app.user("sam").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &suspended, "member", "active")
        .await;
    let response = app
        .update_member(
            &owner.token,
            org,
            suspended.id,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_json(response, 200, "suspend sam").await;

    let response = app.accept_invitation(&stranger.token, org).await;
    assert_error(response, 404, "not_found", "accept without a membership").await;
    let response = app.accept_invitation(&suspended.token, org).await;
    assert_error(
        response,
        409,
        "invitation_not_pending",
        "a suspended member accepts",
    )
    .await;
    let response = app.accept_invitation(&owner.token, org).await;
    assert_error(response, 409, "invitation_not_pending", "the owner accepts").await;
}

#[tokio::test]
async fn only_the_invited_user_can_activate_an_invitation_and_may_decline_it() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let ivy = app.user("ivy").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &ivy, "member", "invited").await;

    let response = app
        .update_member(&owner.token, org, ivy.id, &json!({"status": "active"}))
        .await;
    let message = assert_error(response, 422, "invalid_input", "the owner activates ivy").await;
    assert!(
        message.contains(&ivy.id.to_string()),
        "names the user: {message}"
    );

    let response = app
        .add_member(&owner.token, org, &json!({"user_id": ivy.id}))
        .await;
    assert_error(response, 409, "already_member", "add ivy while invited").await;

    assert_no_content(
        app.remove_member(&ivy.token, org, ivy.id).await,
        "ivy declines",
    )
    .await;
    let response = app.accept_invitation(&ivy.token, org).await;
    assert_error(response, 404, "not_found", "accept after declining").await;
}
