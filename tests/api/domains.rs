//! Verified domains, suggestions and joining over HTTP. The test users' addresses are all
//! `{name}@example.com`.

use reqwest::header::LOCATION;
use serde_json::json;

use crate::helpers::{
    assert_error, assert_json, assert_keys, assert_no_content, assert_page, column, spawn_app,
    DOMAIN_KEYS, MEMBERSHIP_KEYS,
};

#[tokio::test]
async fn a_domain_is_claimed_verified_by_a_tenant_admin_and_then_joined() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let root = app.tenant_admin("root").await;
    let newcomer = app.user("nina").await;
    let org = app.new_org(&owner, "acme").await;

    let response = app
        .add_domain(
            &owner.token,
            org,
            &json!({"domain": "example.com", "policy": "suggest"}),
        )
        .await;
    let domain = assert_json(response, 201, "claim example.com").await;
    assert_keys(&domain, DOMAIN_KEYS, "a domain");
    assert_eq!(json!("pending"), domain["status"]);
    assert_eq!(json!("member"), domain["join_role"], "member by default");
    assert_eq!(43, domain["verification_token"].as_str().unwrap().len());
    let (rows, has_more) = assert_page(app.list_domains(&owner.token, org).await, "list").await;
    assert!(!has_more);
    assert_eq!(vec!["example.com"], column(&rows, "domain"));

    // Not verified: nothing suggested, joining refused as if the organization were not there.
    let (suggested, _) = assert_page(
        app.suggested_organizations(&newcomer.token).await,
        "suggested",
    )
    .await;
    assert!(suggested.is_empty());
    assert_error(
        app.join_organization(&newcomer.token, org).await,
        404,
        "not_found",
        "join a pending domain",
    )
    .await;

    let response = app.verify_domain(&owner.token, org, "example.com").await;
    assert_error(response, 403, "forbidden", "an owner verifies").await;
    let verified = assert_json(
        app.verify_domain(&root.token, org, "example.com").await,
        200,
        "a tenant admin verifies",
    )
    .await;
    assert_eq!(json!("verified"), verified["status"]);
    assert_eq!(json!(root.id), verified["verified_by_user_id"]);

    let (suggested, _) = assert_page(
        app.suggested_organizations(&newcomer.token).await,
        "suggested",
    )
    .await;
    assert_eq!(vec![org.to_string()], column(&suggested, "organization_id"));
    assert_eq!(json!("suggest"), suggested[0]["policy"]);
    let response = app.join_organization(&newcomer.token, org).await;
    assert_error(response, 403, "forbidden", "join a suggest domain").await;

    let response = app
        .update_domain(
            &owner.token,
            org,
            "example.com",
            &json!({"policy": "auto_join", "join_role": "admin"}),
        )
        .await;
    let updated = assert_json(response, 200, "auto_join as admins").await;
    assert_eq!(
        (json!("auto_join"), json!("admin")),
        (updated["policy"].clone(), updated["join_role"].clone())
    );
    let response = app.join_organization(&newcomer.token, org).await;
    let location = response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let membership = assert_json(response, 201, "join").await;
    assert_keys(&membership, MEMBERSHIP_KEYS, "the membership");
    assert_eq!(
        (json!("active"), json!("admin")),
        (membership["status"].clone(), membership["role"].clone())
    );
    assert_eq!(
        Some(format!("/organizations/{org}/members/{}", newcomer.id)),
        location
    );
    assert_error(
        app.join_organization(&newcomer.token, org).await,
        409,
        "already_member",
        "join again",
    )
    .await;
    let (suggested, _) = assert_page(
        app.suggested_organizations(&newcomer.token).await,
        "suggested",
    )
    .await;
    assert!(suggested.is_empty(), "not suggested to members");

    // Another tenant's user of the same address domain sees nothing of it.
    let other = app.create_tenant("globex").await;
    let stranger = app.user_in(other, "stan", false).await;
    assert_error(
        app.join_organization(&stranger.token, org).await,
        404,
        "not_found",
        "another tenant",
    )
    .await;

    let (events, _) = assert_page(
        app.list_audit_events(&owner.token, org, "limit=200").await,
        "trail",
    )
    .await;
    let mut actions: Vec<String> = column(&events, "action")
        .into_iter()
        .filter(|a| a.starts_with("domain."))
        .collect();
    actions.reverse();
    assert_eq!(
        vec!["domain.added", "domain.verified", "domain.updated"],
        actions
    );
    assert_no_content(
        app.remove_domain(&owner.token, org, "example.com").await,
        "remove",
    )
    .await;
    let (events, _) = assert_page(
        app.list_audit_events(&owner.token, org, "limit=1").await,
        "trail",
    )
    .await;
    assert_eq!(json!("domain.removed"), events[0]["action"]);
}

#[tokio::test]
async fn a_verified_domain_has_one_organization_and_mistakes_are_refused() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let member = app.user("mia").await;
    let root = app.tenant_admin("root").await;
    let first = app.new_org(&owner, "first").await;
    let second = app.new_org(&owner, "second").await;
    app.new_member(&owner, first, &admin, "admin", "active")
        .await;
    app.new_member(&owner, first, &member, "member", "active")
        .await;
    for org in [first, second] {
        let response = app
            .add_domain(&owner.token, org, &json!({"domain": "acme.com"}))
            .await;
        assert_json(response, 201, "claims compete").await;
    }
    assert_json(
        app.verify_domain(&root.token, first, "acme.com").await,
        200,
        "verify first",
    )
    .await;
    let response = app.verify_domain(&root.token, second, "acme.com").await;
    assert_error(response, 409, "domain_taken", "verify second").await;
    let response = app
        .add_domain(&owner.token, first, &json!({"domain": "acme.com"}))
        .await;
    assert_error(response, 409, "domain_exists", "claim twice").await;
    assert_no_content(
        app.remove_domain(&owner.token, first, "acme.com").await,
        "first gives it up",
    )
    .await;
    assert_json(
        app.verify_domain(&root.token, second, "acme.com").await,
        200,
        "then second may",
    )
    .await;

    for (what, token, body, status, code) in [
        (
            "an uppercase domain",
            &owner.token,
            json!({"domain": "Acme.org"}),
            422,
            "invalid_input",
        ),
        (
            "no dot",
            &owner.token,
            json!({"domain": "acme"}),
            422,
            "invalid_input",
        ),
        (
            "an unknown policy",
            &owner.token,
            json!({"domain": "acme.org", "policy": "all"}),
            422,
            "invalid_input",
        ),
        (
            "an unknown role",
            &owner.token,
            json!({"domain": "acme.org", "join_role": "nobody"}),
            422,
            "invalid_input",
        ),
        (
            "an admin makes joiners owners",
            &admin.token,
            json!({"domain": "acme.org", "join_role": "owner"}),
            403,
            "forbidden",
        ),
        (
            "a member claims",
            &member.token,
            json!({"domain": "acme.org"}),
            403,
            "forbidden",
        ),
    ] {
        assert_error(
            app.add_domain(token, first, &body).await,
            status,
            code,
            what,
        )
        .await;
    }
    assert_json(
        app.add_domain(&admin.token, first, &json!({"domain": "acme.org"}))
            .await,
        201,
        "an admin claims",
    )
    .await;
    for (what, domain, body, status, code) in [
        (
            "nothing to change",
            "acme.org",
            json!({}),
            422,
            "invalid_input",
        ),
        (
            "a null policy",
            "acme.org",
            json!({"policy": null}),
            422,
            "invalid_input",
        ),
        (
            "an unknown field",
            "acme.org",
            json!({"status": "verified"}),
            422,
            "invalid_input",
        ),
        (
            "an unclaimed domain",
            "other.org",
            json!({"policy": "none"}),
            404,
            "domain_not_found",
        ),
    ] {
        let response = app.update_domain(&owner.token, first, domain, &body).await;
        assert_error(response, status, code, what).await;
    }
    assert_error(
        app.remove_domain(&owner.token, first, "other.org").await,
        404,
        "domain_not_found",
        "remove an unclaimed domain",
    )
    .await;
    assert_error(
        app.verify_domain(&root.token, first, "other.org").await,
        404,
        "domain_not_found",
        "verify an unclaimed domain",
    )
    .await;
    assert_error(
        app.list_domains(&member.token, first).await,
        403,
        "forbidden",
        "a member lists",
    )
    .await;
}
