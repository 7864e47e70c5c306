//! The member endpoints' success paths: status, body shape and what changes.

use reqwest::header::LOCATION;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, assert_json, assert_keys, assert_no_content, assert_page, column, spawn_app,
    MEMBERSHIP_KEYS, MEMBER_KEYS,
};

#[tokio::test]
async fn add_member_returns_201_the_membership_and_its_location() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let adam = app.user("adam").await;
    let org = app.new_org(&owner, "acme").await;

    let body = json!({"user_id": adam.id, "role": "admin", "status": "active"});
    let response = app.add_member(&owner.token, org, &body).await;
    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().expect("ASCII Location").to_owned());
    let membership = assert_json(response, 201, "add adam as admin").await;

    assert_keys(&membership, MEMBERSHIP_KEYS, "new membership");
    assert_eq!(json!(org), membership["organization_id"]);
    assert_eq!(json!(adam.id), membership["user_id"]);
    assert_eq!(json!("admin"), membership["role"]);
    assert_eq!(json!("active"), membership["status"]);
    assert_eq!(json!(owner.id), membership["invited_by_user_id"]);
    assert!(
        membership["joined_at"].is_string(),
        "an active member has joined"
    );
    assert_eq!(
        Some(format!("/organizations/{org}/members/{}", adam.id)),
        location,
        "Location of the new membership"
    );
}

#[tokio::test]
async fn add_member_defaults_to_an_active_member() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let org = app.new_org(&owner, "acme").await;

    let response = app
        .add_member(&owner.token, org, &json!({"user_id": mia.id}))
        .await;
    let membership = assert_json(response, 201, "add with user_id only").await;

    assert_eq!(
        json!("member"),
        membership["role"],
        "role defaults to member"
    );
    assert_eq!(
        json!("active"),
        membership["status"],
        "status defaults to active"
    );
}

#[tokio::test]
async fn list_members_returns_every_live_membership_oldest_first() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let adam = app.user("adam").await;
    let ivy = app.user("ivy").await;
    let gone = app.user("gus").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &adam, "admin", "active").await;
    app.new_member(&adam, org, &ivy, "member", "invited").await;
    app.new_member(&owner, org, &gone, "member", "active").await;
    assert_no_content(
        app.remove_member(&owner.token, org, gone.id).await,
        "remove gus",
    )
    .await;

    // Any active member may list, a plain member included.
    app.new_member(&owner, org, &app.user("mia").await, "member", "active")
        .await;
    let (rows, has_more) = assert_page(app.list_members(&adam.token, org, "").await, "list").await;

    assert!(!has_more);
    assert_eq!(
        vec![
            owner.email.clone(),
            adam.email.clone(),
            ivy.email.clone(),
            "mia@example.com".to_owned()
        ],
        column(&rows, "email"),
        "live members, oldest first; gus was removed"
    );
    for row in &rows {
        assert_keys(row, MEMBER_KEYS, "a row of GET members");
    }
    let ivy_row = &rows[2];
    assert_eq!(json!(ivy.id), ivy_row["user_id"]);
    assert_eq!(json!("ivy"), ivy_row["display_name"]);
    assert_eq!(json!("member"), ivy_row["role"]);
    assert_eq!(json!("invited"), ivy_row["status"]);
    assert_eq!(
        Value::Null,
        ivy_row["joined_at"],
        "not joined while invited"
    );
    assert_eq!(
        json!({"user_id": adam.id, "email": adam.email}),
        ivy_row["invited_by"],
        "who invited ivy"
    );
}

#[tokio::test]
async fn update_member_changes_role_and_status_under_patch_and_put() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;

    let steps = [
        ("PATCH", json!({"role": "admin"}), "admin", "active"),
        (
            "PATCH",
            json!({"status": "suspended"}),
            "admin",
            "suspended",
        ),
        ("PATCH", json!({"status": "active"}), "admin", "active"),
        ("PUT", json!({"role": "member"}), "member", "active"),
        (
            "PUT",
            json!({"role": "admin", "status": "suspended"}),
            "admin",
            "suspended",
        ),
    ];
    for (method, body, role, status) in steps {
        let response = match method {
            "PATCH" => app.update_member(&owner.token, org, mia.id, &body).await,
            _ => app.put_member(&owner.token, org, mia.id, &body).await,
        };
        let context = format!("{method} {body}");
        let membership = assert_json(response, 200, &context).await;
        assert_keys(&membership, MEMBERSHIP_KEYS, &context);
        assert_eq!(json!(role), membership["role"], "{context}: role");
        assert_eq!(json!(status), membership["status"], "{context}: status");
    }

    let (rows, _) = assert_page(app.list_members(&owner.token, org, "").await, "list").await;
    let stored = rows
        .iter()
        .find(|row| row["user_id"] == json!(mia.id))
        .expect("mia is listed");
    assert_eq!(json!("admin"), stored["role"], "the stored role");
    assert_eq!(json!("suspended"), stored["status"], "the stored status");
}

/// A membership's role and status cannot be cleared, so `null` is refused by name rather than
/// read as "absent" (it used to be: `{"role": null, "status": "suspended"}` suspended). Null on
/// POST still means "the default". As the API document says (tests/api/openapi.rs).
#[tokio::test]
async fn update_member_refuses_null_and_add_member_takes_it_as_the_default() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let nina = app.user("nina").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;

    for (body, field) in [
        (json!({"role": null}), "role"),
        (json!({"status": null}), "status"),
        (json!({"role": null, "status": "suspended"}), "role"),
        (json!({"role": "admin", "status": null}), "status"),
    ] {
        let response = app.update_member(&owner.token, org, mia.id, &body).await;
        let context = format!("PATCH {body}");
        let message = assert_error(response, 422, "invalid_input", &context).await;
        assert!(
            message.contains(field),
            "{context}: names {field}: {message}"
        );
    }
    let (rows, _) = assert_page(app.list_members(&owner.token, org, "").await, "list").await;
    let stored = rows
        .iter()
        .find(|r| r["user_id"] == json!(mia.id))
        .expect("mia");
    assert_eq!(
        (json!("member"), json!("active")),
        (stored["role"].clone(), stored["status"].clone()),
        "nothing changed"
    );

    let body = json!({"user_id": nina.id, "role": null, "status": null});
    let membership = assert_json(
        app.add_member(&owner.token, org, &body).await,
        201,
        "POST members with null role and status",
    )
    .await;
    assert_eq!(json!("member"), membership["role"], "the default role");
    assert_eq!(json!("active"), membership["status"], "the default status");
}

#[tokio::test]
async fn remove_member_returns_204_and_removing_yourself_is_leaving() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let leo = app.user("leo").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &leo, "member", "active").await;

    assert_no_content(
        app.remove_member(&owner.token, org, mia.id).await,
        "remove mia",
    )
    .await;
    assert_no_content(
        app.remove_member(&leo.token, org, leo.id).await,
        "leo leaves",
    )
    .await;

    let (rows, _) = assert_page(app.list_members(&owner.token, org, "").await, "list").await;
    assert_eq!(
        vec![owner.email.clone()],
        column(&rows, "email"),
        "only the owner is left"
    );
    let response = app.get_organization(&leo.token, org).await;
    assert_error(response, 404, "not_found", "leo after leaving").await;
    let response = app.remove_member(&owner.token, org, mia.id).await;
    assert_error(response, 404, "member_not_found", "remove mia twice").await;

    // A removed member can be added again.
    app.new_member(&owner, org, &mia, "member", "active").await;
}

#[tokio::test]
async fn a_second_owner_lets_the_first_step_down() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let otto = app.user("otto").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &otto, "owner", "active").await;

    let response = app
        .update_member(&owner.token, org, owner.id, &json!({"role": "member"}))
        .await;
    let membership = assert_json(response, 200, "olivia steps down").await;
    assert_eq!(json!("member"), membership["role"]);

    let response = app.remove_member(&otto.token, org, otto.id).await;
    assert_error(
        response,
        409,
        "last_owner",
        "otto, now the only owner, leaves",
    )
    .await;
}
