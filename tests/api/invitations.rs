//! Inviting through POST members with status `invited` (v1), and by email (tokens, resend,
//! revoke, decline, bulk), accepting at both doors, and both kinds being one.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, assert_json, assert_keys, assert_no_content, assert_page, column, spawn_app,
    uuid_at, TestApp, TestUser, INVITATION_KEYS, MEMBERSHIP_KEYS,
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

/// The keys of an invitation issued with its token.
fn issued_keys() -> Vec<&'static str> {
    INVITATION_KEYS.iter().copied().chain(["token"]).collect()
}

/// Invites `email` through the API, asserting 201; returns the invitation.
async fn invite(app: &TestApp, actor: &TestUser, org: Uuid, body: Value) -> Value {
    let response = app.invite(&actor.token, org, &body).await;
    let invitation = assert_json(response, 201, &format!("invite {body}")).await;
    assert_keys(&invitation, &issued_keys(), "an issued invitation");
    invitation
}

fn token_of(invitation: &Value) -> String {
    invitation["token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn an_invitation_by_email_is_accepted_by_its_token() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;

    let invitation = invite(
        &app,
        &owner,
        org,
        json!({"email": "Carol@Example.com", "role": "admin"}),
    )
    .await;
    assert_eq!(
        json!("carol@example.com"),
        invitation["email"],
        "stored lowercase"
    );
    assert_eq!(json!("pending"), invitation["status"]);
    assert_eq!(json!("admin"), invitation["role"]);
    assert_eq!(json!("acme"), invitation["organization_slug"]);
    assert_eq!(json!(owner.id), invitation["invited_by_user_id"]);
    let token = token_of(&invitation);
    assert_eq!(43, token.len());

    let (rows, _) = assert_page(app.list_invitations(&owner.token, org, "").await, "list").await;
    assert_eq!(
        vec![invitation["id"].as_str().unwrap().to_owned()],
        column(&rows, "id")
    );
    assert_keys(
        &rows[0],
        INVITATION_KEYS,
        "a listed invitation has no token",
    );

    // Carol signs up later; her invitations wait for her.
    let carol = app.user("carol").await;
    let (mine, _) = assert_page(app.my_invitations(&carol.token, "").await, "carol's").await;
    assert_eq!(1, mine.len());
    assert_keys(&mine[0], INVITATION_KEYS, "no token for the invitee either");
    assert_error(
        app.get_organization(&carol.token, org).await,
        404,
        "not_found",
        "before accepting",
    )
    .await;

    let membership = assert_json(
        app.accept_invitation_token(&carol.token, &token).await,
        200,
        "accept",
    )
    .await;
    assert_keys(&membership, MEMBERSHIP_KEYS, "the membership");
    assert_eq!(json!("active"), membership["status"], "active at once");
    assert_eq!(json!("admin"), membership["role"]);
    assert_eq!(json!(carol.id), membership["user_id"]);
    assert_json(
        app.get_organization(&carol.token, org).await,
        200,
        "carol sees acme",
    )
    .await;

    let response = app.accept_invitation_token(&carol.token, &token).await;
    assert_error(response, 404, "invitation_not_found", "the token again").await;
    let (accepted, _) = assert_page(
        app.list_invitations(&owner.token, org, "status=accepted")
            .await,
        "accepted",
    )
    .await;
    assert_eq!(
        json!(carol.id),
        accepted[0]["accepted_by_user_id"],
        "who accepted"
    );
    let (pending, _) =
        assert_page(app.list_invitations(&owner.token, org, "").await, "pending").await;
    assert!(pending.is_empty(), "nothing pending");
    let (all, _) = assert_page(
        app.list_invitations(&owner.token, org, "status=all").await,
        "all",
    )
    .await;
    assert_eq!(1, all.len());
}

#[tokio::test]
async fn tokens_refused_guessed_spent_expired_or_for_someone_else() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;

    let revoked = invite(&app, &owner, org, json!({"email": "rita@example.com"})).await;
    assert_no_content(
        app.revoke_invitation(&owner.token, org, &revoked["id"].as_str().unwrap())
            .await,
        "revoke",
    )
    .await;
    let declined = invite(&app, &owner, org, json!({"email": "dave@example.com"})).await;
    let answer = assert_json(
        app.decline_invitation_token(&dave.token, &token_of(&declined))
            .await,
        200,
        "decline",
    )
    .await;
    assert_eq!(json!("declined"), answer["status"]);
    assert_keys(&answer, INVITATION_KEYS, "the declined invitation");
    let carols = invite(&app, &owner, org, json!({"email": "carol@example.com"})).await;
    let token = token_of(&carols);

    let guessed = format!("{}x", &token[..42]);
    for (what, user, token) in [
        ("a guess", &carol, guessed.as_str()),
        (
            "a revoked invitation's token",
            &carol,
            revoked["token"].as_str().unwrap(),
        ),
        (
            "a declined invitation's token",
            &dave,
            declined["token"].as_str().unwrap(),
        ),
        ("an empty token", &carol, ""),
    ] {
        let response = app.accept_invitation_token(&user.token, token).await;
        assert_error(
            response,
            404,
            "invitation_not_found",
            &format!("accept {what}"),
        )
        .await;
        let response = app.decline_invitation_token(&user.token, token).await;
        assert_error(
            response,
            404,
            "invitation_not_found",
            &format!("decline {what}"),
        )
        .await;
    }
    let response = app.accept_invitation_token(&dave.token, &token).await;
    assert_error(
        response,
        403,
        "invitation_email_mismatch",
        "dave uses carol's token",
    )
    .await;

    // Expired: its own code, and a resend renews it with a new token.
    app.sql
        .execute(
            "update roster.invitations set expires_at = now() - interval '1 minute', \
                    created_at = now() - interval '1 day', sent_at = now() - interval '1 day' where id = $1",
            &[&uuid_at(&carols, "id")],
        )
        .await
        .expect("expire");
    let response = app.accept_invitation_token(&carol.token, &token).await;
    assert_error(response, 409, "invitation_expired", "accept expired").await;
    let response = app.decline_invitation_token(&carol.token, &token).await;
    assert_error(response, 409, "invitation_expired", "decline expired").await;
    let (expired, _) = assert_page(
        app.list_invitations(&owner.token, org, "status=expired")
            .await,
        "expired",
    )
    .await;
    assert_eq!(vec!["carol@example.com"], column(&expired, "email"));
    let resent = assert_json(
        app.resend_invitation(&owner.token, org, uuid_at(&carols, "id"))
            .await,
        200,
        "resend",
    )
    .await;
    assert_keys(&resent, &issued_keys(), "a resent invitation");
    assert_eq!(json!("pending"), resent["status"]);
    let fresh = token_of(&resent);
    assert_ne!(token, fresh);
    let response = app.accept_invitation_token(&carol.token, &token).await;
    assert_error(response, 404, "invitation_not_found", "the old token").await;
    assert_json(
        app.accept_invitation_token(&carol.token, &fresh).await,
        200,
        "the new token",
    )
    .await;
    let response = app
        .resend_invitation(&owner.token, org, uuid_at(&carols, "id"))
        .await;
    assert_error(
        response,
        409,
        "invitation_not_pending",
        "resend an accepted invitation",
    )
    .await;
    let response = app
        .revoke_invitation(&owner.token, org, uuid_at(&carols, "id"))
        .await;
    assert_error(
        response,
        409,
        "invitation_not_pending",
        "revoke an accepted invitation",
    )
    .await;
    let response = app
        .revoke_invitation(&owner.token, org, Uuid::new_v4())
        .await;
    assert_error(
        response,
        404,
        "invitation_not_found",
        "revoke an unknown invitation",
    )
    .await;
}

#[tokio::test]
async fn who_may_invite_and_what_is_refused() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let member = app.user("mia").await;
    let stranger = app.user("sid").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    app.new_member(&owner, org, &member, "member", "active")
        .await;
    invite(&app, &admin, org, json!({"email": "pending@example.com"})).await;

    let cases: Vec<(&str, &TestUser, Value, u16, &str)> = vec![
        (
            "a member invites",
            &member,
            json!({"email": "x@example.com"}),
            403,
            "forbidden",
        ),
        (
            "an admin invites an owner",
            &admin,
            json!({"email": "x@example.com", "role": "owner"}),
            403,
            "forbidden",
        ),
        (
            "a stranger invites",
            &stranger,
            json!({"email": "x@example.com"}),
            404,
            "not_found",
        ),
        (
            "the same address again",
            &owner,
            json!({"email": "PENDING@example.com"}),
            409,
            "already_invited",
        ),
        (
            "a member's address",
            &owner,
            json!({"email": "mia@example.com"}),
            409,
            "already_member",
        ),
        (
            "not an address",
            &owner,
            json!({"email": "mia"}),
            422,
            "invalid_input",
        ),
        (
            "an unknown role",
            &owner,
            json!({"email": "x@example.com", "role": "nobody"}),
            422,
            "invalid_input",
        ),
        (
            "a malformed role",
            &owner,
            json!({"email": "x@example.com", "role": "Admin"}),
            422,
            "invalid_input",
        ),
        (
            "a minute's lifetime",
            &owner,
            json!({"email": "x@example.com", "expires_in_seconds": 60}),
            422,
            "invalid_input",
        ),
        (
            "a year's lifetime",
            &owner,
            json!({"email": "x@example.com", "expires_in_seconds": 31536000}),
            422,
            "invalid_input",
        ),
        (
            "an unknown field",
            &owner,
            json!({"email": "x@example.com", "colour": "red"}),
            422,
            "invalid_input",
        ),
        ("no address", &owner, json!({}), 422, "invalid_input"),
    ];
    for (what, actor, body, status, code) in cases {
        let response = app.invite(&actor.token, org, &body).await;
        assert_error(response, status, code, what).await;
    }
    let ok = invite(
        &app,
        &owner,
        org,
        json!({"email": "x@example.com", "expires_in_seconds": 3600}),
    )
    .await;
    let expires = chrono::DateTime::parse_from_rfc3339(ok["expires_at"].as_str().unwrap()).unwrap();
    let sent = chrono::DateTime::parse_from_rfc3339(ok["sent_at"].as_str().unwrap()).unwrap();
    assert_eq!(3600, (expires - sent).num_seconds(), "an hour's lifetime");

    for (what, actor, query, status, code) in [
        ("a member lists", &member, "", 403, "forbidden"),
        ("a stranger lists", &stranger, "", 404, "not_found"),
        (
            "an unknown status",
            &owner,
            "status=gone",
            422,
            "invalid_input",
        ),
        ("limit 0", &owner, "limit=0", 422, "invalid_input"),
    ] {
        let response = app.list_invitations(&actor.token, org, query).await;
        assert_error(response, status, code, what).await;
    }
    let (rows, _) = assert_page(
        app.list_invitations(&admin.token, org, "").await,
        "an admin lists",
    )
    .await;
    assert_eq!(
        vec!["pending@example.com", "x@example.com"].len(),
        rows.len()
    );
}

#[tokio::test]
async fn a_bulk_invitation_answers_item_by_item() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    invite(&app, &owner, org, json!({"email": "pending@example.com"})).await;

    let body = json!({"invitations": [
        {"email": "one@example.com"},
        {"email": "two@example.com", "role": "admin"},
        {"email": "olivia@example.com"},
        {"email": "pending@example.com"},
        {"email": "bad address"},
        {"email": "boss@example.com", "role": "owner"},
        {"email": "nobody@example.com", "role": "No Such Role"},
    ]});
    let answer = assert_json(app.invite(&admin.token, org, &body).await, 200, "bulk").await;
    let results = answer["results"].as_array().expect("results");
    let got: Vec<(i64, &str, Option<&str>)> = results
        .iter()
        .map(|r| {
            (
                r["index"].as_i64().unwrap(),
                r["result"].as_str().unwrap(),
                r["error"]["code"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        vec![
            (0, "invited", None),
            (1, "invited", None),
            (2, "already_member", Some("already_member")),
            (3, "already_invited", Some("already_invited")),
            (4, "invalid", Some("invalid_input")),
            (5, "invalid", Some("forbidden")),
            (6, "invalid", Some("invalid_input")),
        ],
        got
    );
    assert_eq!(
        json!("bad address"),
        results[4]["email"],
        "the address as sent"
    );
    assert!(
        results[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad address"),
        "{}",
        results[4]
    );
    assert_keys(&results[0]["invitation"], &issued_keys(), "an invited item");
    assert!(
        results[2].get("invitation").is_none(),
        "no invitation for a refused item"
    );
    let (pending, _) =
        assert_page(app.list_invitations(&owner.token, org, "").await, "pending").await;
    assert_eq!(
        3,
        pending.len(),
        "the two valid items were made: {pending:?}"
    );

    let many: Vec<Value> = (0..101)
        .map(|i| json!({"email": format!("p{i}@example.com")}))
        .collect();
    for (what, body) in [
        ("101 invitations", json!({ "invitations": many })),
        ("none", json!({"invitations": []})),
        (
            "an item without an address",
            json!({"invitations": [{"role": "member"}]}),
        ),
        (
            "an item with an unknown field",
            json!({"invitations": [{"email": "a@example.com", "x": 1}]}),
        ),
        (
            "one and many",
            json!({"email": "a@example.com", "invitations": [{"email": "b@example.com"}]}),
        ),
    ] {
        assert_error(
            app.invite(&owner.token, org, &body).await,
            422,
            "invalid_input",
            what,
        )
        .await;
    }
}

/// v1's invited memberships and email invitations are one concept over HTTP too.
#[tokio::test]
async fn invited_members_are_invitations_and_accept_by_token_too() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let ivy = app.user("ivy").await;
    let rex = app.user("rex").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &ivy, "member", "invited").await;
    app.new_member(&owner, org, &rex, "member", "invited").await;

    let (rows, _) = assert_page(app.list_invitations(&owner.token, org, "").await, "list").await;
    let ivys: Vec<&Value> = rows
        .iter()
        .filter(|r| r["user_id"] == json!(ivy.id))
        .collect();
    assert_eq!(
        1,
        ivys.len(),
        "ivy's invited membership is an invitation: {rows:?}"
    );
    assert_eq!(json!("ivy@example.com"), ivys[0]["email"]);
    let (mine, _) = assert_page(app.my_invitations(&ivy.token, "").await, "ivy's").await;
    assert_eq!(json!(org), mine[0]["organization_id"]);

    let members = assert_json(
        app.list_members(&owner.token, org, "").await,
        200,
        "members",
    )
    .await;
    let ivy_membership = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == json!(ivy.id))
        .unwrap()["membership_id"]
        .clone();
    let resent = assert_json(
        app.resend_invitation(&owner.token, org, uuid_at(ivys[0], "id"))
            .await,
        200,
        "resend",
    )
    .await;
    let membership = assert_json(
        app.accept_invitation_token(&ivy.token, &token_of(&resent))
            .await,
        200,
        "accept",
    )
    .await;
    assert_eq!(
        ivy_membership, membership["id"],
        "the same membership becomes active"
    );
    assert_eq!(json!("active"), membership["status"]);

    // Revoking rex's invitation removes his invited membership; v1 accept then finds nothing.
    let rexs = rows.iter().find(|r| r["user_id"] == json!(rex.id)).unwrap();
    assert_no_content(
        app.revoke_invitation(&owner.token, org, uuid_at(rexs, "id"))
            .await,
        "revoke",
    )
    .await;
    assert_error(
        app.accept_invitation(&rex.token, org).await,
        404,
        "not_found",
        "rex accepts",
    )
    .await;
    let members = assert_json(
        app.list_members(&owner.token, org, "").await,
        200,
        "members",
    )
    .await;
    assert!(
        members["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["user_id"] != json!(rex.id)),
        "rex is gone"
    );

    // An email invitation of an existing user: v1's accept takes it too.
    let sue = app.user("sue").await;
    invite(&app, &owner, org, json!({"email": "sue@example.com"})).await;
    let membership = assert_json(
        app.accept_invitation(&sue.token, org).await,
        200,
        "sue accepts by v1",
    )
    .await;
    assert_eq!(json!("active"), membership["status"]);
    let response = app
        .add_member(
            &owner.token,
            org,
            &json!({"user_id": rex.id, "status": "invited"}),
        )
        .await;
    assert_json(response, 201, "invite rex again by v1").await;
    let response = app
        .invite(&owner.token, org, &json!({"email": "rex@example.com"}))
        .await;
    assert_error(response, 409, "already_invited", "rex is invited by v1").await;
}

#[tokio::test]
async fn a_new_user_accepts_through_the_identity_service_then_uses_the_api() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    let invitation = invite(&app, &owner, org, json!({"email": "newbie@example.com"})).await;

    // No HTTP door: the provisioning role, as the identity service signing the person up.
    let sql = app.sql_connection().await;
    sql.batch_execute("set role roster_provisioner")
        .await
        .expect("set role");
    let row = sql
        .query_one(
            "select user_id from roster.accept_invitation_as_new_user($1, 'Newbie')",
            &[&token_of(&invitation)],
        )
        .await
        .expect("accept as a new user");
    let newbie: Uuid = row.get("user_id");
    let token = app.token_for(newbie);
    let fetched = assert_json(
        app.get_organization(&token, org).await,
        200,
        "the new user reads acme",
    )
    .await;
    assert_eq!(json!(2), fetched["member_count"]);
    let response = app
        .accept_invitation_token(&token, &token_of(&invitation))
        .await;
    assert_error(response, 404, "invitation_not_found", "the token is spent").await;
}

#[tokio::test]
async fn every_invitation_event_is_in_the_organizations_trail() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let carol = app.user("carol").await;
    let org = app.new_org(&owner, "acme").await;
    let accepted = invite(&app, &owner, org, json!({"email": "carol@example.com"})).await;
    assert_json(
        app.accept_invitation_token(&carol.token, &token_of(&accepted))
            .await,
        200,
        "accept",
    )
    .await;
    let revoked = invite(&app, &owner, org, json!({"email": "rita@example.com"})).await;
    assert_json(
        app.resend_invitation(&owner.token, org, uuid_at(&revoked, "id"))
            .await,
        200,
        "resend",
    )
    .await;
    assert_no_content(
        app.revoke_invitation(&owner.token, org, uuid_at(&revoked, "id"))
            .await,
        "revoke",
    )
    .await;

    let (events, _) = assert_page(
        app.list_audit_events(&owner.token, org, "limit=200").await,
        "trail",
    )
    .await;
    let actions: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("invitation."))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor_id"].as_str().unwrap().to_owned(),
            )
        })
        .rev()
        .collect();
    let (o, c) = (owner.id.to_string(), carol.id.to_string());
    assert_eq!(
        vec![
            ("invitation.created".to_owned(), o.clone()),
            ("invitation.accepted".to_owned(), c),
            ("invitation.created".to_owned(), o.clone()),
            ("invitation.resent".to_owned(), o.clone()),
            ("invitation.revoked".to_owned(), o),
        ],
        actions
    );
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains(accepted["token"].as_str().unwrap()) && !text.contains("token_hash"),
        "no token in the trail"
    );
}
