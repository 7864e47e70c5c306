//! Roster's access tokens: the exchange (RFC 8693), organization choice, claims, scope,
//! staleness after every kind of change from each door, switching, introspection (RFC 7662),
//! the JWKS and key rotation.

use std::sync::LazyLock;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    base64url_decode, error_body, hand_built_token, now, sign, spawn_app, spawn_app_with, uuid_at,
    AppOptions, Reply, TestApp, TestUser, JWT_SECRET,
};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

type Params = Vec<(&'static str, String)>;

/// (what, the form, status, OAuth error, Roster's code).
type Case<'a> = (&'a str, Params, u16, &'a str, &'a str);

/// The exchange's form parameters for `subject`, and `organization_id` when given.
fn form(subject: &str, org: Option<Uuid>) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("grant_type", EXCHANGE.to_owned()),
        ("subject_token", subject.to_owned()),
        ("subject_token_type", JWT.to_owned()),
    ];
    if let Some(org) = org {
        params.push(("organization_id", org.to_string()));
    }
    params
}

async fn post_form(app: &TestApp, path: &str, params: &[(&str, String)]) -> Reply {
    let body = serde_urlencoded::to_string(params).expect("encode a form");
    Reply::read(
        app.request(Method::POST, path)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

/// A successful exchange: the response body.
async fn exchange(app: &TestApp, user: &TestUser, org: Option<Uuid>) -> Value {
    let reply = post_form(app, "/auth/token", &form(&user.token, org)).await;
    assert_eq!(200, reply.status, "exchange: {}", reply.text);
    assert_eq!(Some("no-store"), reply.header("cache-control"));
    reply.json()
}

/// An access token for `user` in `org`.
async fn access_token(app: &TestApp, user: &TestUser, org: Uuid) -> String {
    let body = exchange(app, user, Some(org)).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// The claims of a JWT, read without verifying (the tests verify elsewhere).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64url_decode(payload);
    serde_json::from_slice(&bytes).expect("JSON claims")
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT");
    serde_json::from_slice(&base64url_decode(header)).expect("JSON header")
}

/// An OAuth error (RFC 6749 section 5.2) with Roster's code: (error, code).
fn oauth_error(reply: &Reply, status: u16, context: &str) -> (String, String) {
    assert_eq!(status, reply.status, "{context}: {}", reply.text);
    let body = reply.json();
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(
        vec!["code", "error", "error_description"],
        keys,
        "{context}: {}",
        reply.text
    );
    assert!(
        !body["error_description"].as_str().unwrap_or("").is_empty(),
        "{context}"
    );
    (
        body["error"].as_str().unwrap().to_owned(),
        body["code"].as_str().unwrap().to_owned(),
    )
}

async fn get(app: &TestApp, token: &str, path: &str) -> Reply {
    Reply::read(
        app.request(Method::GET, path)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .expect("send"),
    )
    .await
}

/// 401 `token_stale`, with a Bearer challenge that says so.
async fn assert_stale(app: &TestApp, token: &str, org: Uuid, context: &str) {
    let reply = get(app, token, &format!("/organizations/{org}")).await;
    let (code, _) = crate::helpers::error_of(&reply, 401, context);
    assert_eq!("token_stale", code, "{context}");
    let challenge = reply.header(WWW_AUTHENTICATE.as_str()).unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("token stale"),
        "{context}: {challenge}"
    );
}

async fn assert_current(app: &TestApp, token: &str, org: Uuid, context: &str) {
    let reply = get(app, token, &format!("/organizations/{org}")).await;
    assert_eq!(200, reply.status, "{context}: {}", reply.text);
}

#[tokio::test]
async fn an_exchange_gives_a_token_for_the_organization_with_its_claims() {
    let app = spawn_app().await;
    let ada = app.user("ada").await;
    let org = app.new_org(&ada, "acme").await;
    let other = app.new_org(&ada, "other").await;
    let body = exchange(&app, &ada, Some(org)).await;
    assert_eq!(
        "urn:ietf:params:oauth:token-type:access_token",
        body["issued_token_type"]
    );
    assert_eq!("Bearer", body["token_type"]);
    assert_eq!(900, body["expires_in"]);
    assert_eq!(org, uuid_at(&body["organization"], "id"));
    assert_eq!("acme", body["organization"]["slug"]);
    assert_eq!("Org acme", body["organization"]["name"]);
    assert_eq!("owner", body["organization"]["role"]);
    let token = body["access_token"].as_str().unwrap();
    let header = header_of(token);
    assert_eq!("EdDSA", header["alg"]);
    assert_eq!("at+jwt", header["typ"]);
    assert!(header["kid"].is_string());
    let claims = claims_of(token);
    assert_eq!("roster", claims["iss"]);
    assert_eq!("roster", claims["aud"]);
    assert_eq!(ada.id.to_string(), claims["sub"]);
    assert_eq!(app.tenant.to_string(), claims["tid"]);
    assert_eq!(org.to_string(), claims["org_id"]);
    assert_eq!("acme", claims["org_slug"]);
    assert_eq!("owner", claims["org_role"]);
    let permissions: Vec<&str> = claims["org_permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        permissions.contains(&"members:update_role"),
        "{permissions:?}"
    );
    assert!(permissions.len() <= 50);
    assert!(claims["av"].as_i64().unwrap() > 0);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now()) < 10);
    assert_eq!(iat + 900, claims["exp"].as_u64().unwrap());
    Uuid::parse_str(claims["jti"].as_str().unwrap()).expect("jti is a uuid");

    assert_current(&app, token, org, "its organization").await;
    // Anywhere else the organization is invisible.
    let reply = get(&app, token, &format!("/organizations/{other}")).await;
    let (code, _) = crate::helpers::error_of(&reply, 404, "another organization of the user");
    assert_eq!("not_found", code);
    let reply = get(&app, token, &format!("/organizations/{other}/members")).await;
    crate::helpers::error_of(&reply, 404, "members of another organization");
    let check = app
        .request(Method::POST, "/authz/check")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&json!({"checks": [{"organization_id": other, "permission": "organization:read"}]}))
        .send()
        .await
        .unwrap();
    error_body(check, 404, "a check in another organization").await;
    // A second exchange records nothing that makes the first token stale.
    exchange(&app, &ada, Some(org)).await;
    assert_current(&app, token, org, "after another exchange").await;
}

#[tokio::test]
async fn the_organization_is_chosen_from_none_one_many_and_the_last_active() {
    let app = spawn_app().await;
    let ada = app.user("ada").await;

    // None: an unscoped token and nothing to choose from.
    let body = exchange(&app, &ada, None).await;
    assert_eq!(Value::Null, body["organization"]);
    assert_eq!(json!([]), body["organizations"]);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(Value::Null, claims["org_id"]);
    assert_eq!(json!([]), claims["org_permissions"]);
    let unscoped = body["access_token"].as_str().unwrap().to_owned();

    // One: that one.
    let first = app.new_org(&ada, "first").await;
    let body = exchange(&app, &ada, None).await;
    assert_eq!(first, uuid_at(&body["organization"], "id"));
    assert_eq!(
        Value::Null,
        body.get("organizations").cloned().unwrap_or(Value::Null)
    );
    // An unscoped token opens no organization.
    let reply = get(&app, &unscoped, &format!("/organizations/{first}")).await;
    crate::helpers::error_of(&reply, 404, "an unscoped token on an organization");

    // Many, one of them last active: that one. (first was chosen, so it is the last active.)
    let second = app.new_org(&ada, "second").await;
    let body = exchange(&app, &ada, None).await;
    assert_eq!(first, uuid_at(&body["organization"], "id"));
    exchange(&app, &ada, Some(second)).await;
    let body = exchange(&app, &ada, None).await;
    assert_eq!(
        second,
        uuid_at(&body["organization"], "id"),
        "the latest exchange's"
    );

    // Many, none ever active: unscoped, and the list to choose from.
    let bob = app.user("bob").await;
    app.new_member(&ada, first, &bob, "member", "active").await;
    app.new_member(&ada, second, &bob, "admin", "active").await;
    let body = exchange(&app, &bob, None).await;
    assert_eq!(Value::Null, body["organization"]);
    assert_eq!(
        json!([
            {"id": first, "slug": "first", "name": "Org first", "role": "member"},
            {"id": second, "slug": "second", "name": "Org second", "role": "admin"},
        ]),
        body["organizations"]
    );
}

#[tokio::test]
async fn json_bodies_are_accepted_and_bad_requests_are_oauth_errors() {
    let app = spawn_app_with(AppOptions {
        audience: Some("roster-api".into()),
        ..AppOptions::default()
    })
    .await;
    let ada = app.user("ada").await;
    let org = app.new_org(&ada, "acme").await;
    let json_body = json!({"grant_type": EXCHANGE, "subject_token": ada.token,
                           "subject_token_type": JWT, "organization_id": org, "scope": "ignored"});
    let reply = Reply::read(
        app.request(Method::POST, "/auth/token")
            .json(&json_body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(200, reply.status, "{}", reply.text);

    let without = |name: &str| -> Vec<(&'static str, String)> {
        form(&ada.token, Some(org))
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect()
    };
    let replace = |name: &'static str, value: &str| -> Vec<(&'static str, String)> {
        let mut params = without(name);
        params.push((name, value.to_owned()));
        params
    };
    let expired = sign(
        Algorithm::HS256,
        JWT_SECRET,
        &json!({"sub": ada.id, "aud": "roster-api", "exp": now() - 600, "iat": now() - 1200}),
    );
    let wrong_key = sign(
        Algorithm::HS256,
        b"another-secret-of-at-least-32-bytes-0123456789",
        &json!({"sub": ada.id, "aud": "roster-api", "exp": now() + 600}),
    );
    let wrong_audience = sign(
        Algorithm::HS256,
        JWT_SECRET,
        &json!({"sub": ada.id, "aud": "someone-else", "exp": now() + 600}),
    );
    let unknown_user = sign(
        Algorithm::HS256,
        JWT_SECRET,
        &json!({"sub": Uuid::new_v4(), "aud": "roster-api", "exp": now() + 600}),
    );
    let alg_none = hand_built_token(
        &json!({"alg": "none", "typ": "JWT"}),
        &json!({"sub": ada.id, "aud": "roster-api", "exp": now() + 600}),
        "",
    );
    let service = roster::auth::issue_service_token(&app.jwt, "billing", app.tenant, 600).unwrap();
    let stranger = app.user("stan").await;
    let elsewhere = app.create_tenant("globex").await;
    let foreigner = app.user_in(elsewhere, "fred", false).await;
    let foreign_org = app.new_org(&foreigner, "globex-org").await;
    let cases: Vec<Case> = vec![
        (
            "no grant_type",
            without("grant_type"),
            400,
            "invalid_request",
            "invalid_input",
        ),
        (
            "another grant_type",
            replace("grant_type", "password"),
            400,
            "unsupported_grant_type",
            "invalid_input",
        ),
        (
            "no subject_token",
            without("subject_token"),
            400,
            "invalid_request",
            "invalid_input",
        ),
        (
            "no subject_token_type",
            without("subject_token_type"),
            400,
            "invalid_request",
            "invalid_input",
        ),
        (
            "another subject_token_type",
            replace(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            ),
            400,
            "invalid_request",
            "invalid_input",
        ),
        (
            "a malformed organization_id",
            replace("organization_id", "acme"),
            400,
            "invalid_request",
            "invalid_input",
        ),
        (
            "an expired identity token",
            replace("subject_token", &expired),
            400,
            "invalid_grant",
            "unauthenticated",
        ),
        (
            "a token under another key",
            replace("subject_token", &wrong_key),
            400,
            "invalid_grant",
            "unauthenticated",
        ),
        (
            "alg none",
            replace("subject_token", &alg_none),
            400,
            "invalid_grant",
            "unauthenticated",
        ),
        (
            "the wrong audience",
            replace("subject_token", &wrong_audience),
            400,
            "invalid_grant",
            "unauthenticated",
        ),
        (
            "a user that does not exist",
            replace("subject_token", &unknown_user),
            400,
            "invalid_grant",
            "unauthenticated",
        ),
        (
            "a service token",
            replace("subject_token", &service),
            400,
            "invalid_grant",
            "unauthenticated",
        ),
        (
            "an organization of no membership",
            form(&stranger.token, Some(org)),
            404,
            "invalid_target",
            "not_found",
        ),
        (
            "another tenant's organization",
            replace("organization_id", &foreign_org.to_string()),
            404,
            "invalid_target",
            "not_found",
        ),
        (
            "a missing organization",
            replace("organization_id", &Uuid::new_v4().to_string()),
            404,
            "invalid_target",
            "not_found",
        ),
    ];
    for (context, params, status, error, code) in cases {
        let reply = post_form(&app, "/auth/token", &params).await;
        assert_eq!(
            (error.to_owned(), code.to_owned()),
            oauth_error(&reply, status, context),
            "{context}"
        );
        assert_eq!(Some("no-store"), reply.header("cache-control"), "{context}");
    }
    // A Roster access token is not an identity token.
    let access = access_token(&app, &ada, org).await;
    let reply = post_form(&app, "/auth/token", &replace("subject_token", &access)).await;
    assert_eq!(
        "invalid_grant",
        oauth_error(&reply, 400, "an access token as subject").0
    );
    // Neither form nor JSON.
    let reply = Reply::read(
        app.request(Method::POST, "/auth/token")
            .header(CONTENT_TYPE, "text/plain")
            .body("grant_type=x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!("invalid_request", oauth_error(&reply, 400, "text/plain").0);
    // A repeated parameter (RFC 6749 section 3.2: must not be).
    let mut twice = form(&ada.token, Some(org));
    twice.push(("organization_id", org.to_string()));
    let reply = post_form(&app, "/auth/token", &twice).await;
    assert_eq!(
        "invalid_request",
        oauth_error(&reply, 400, "a repeated parameter").0
    );
}

/// Bob, an admin of a fresh organization of Ada's, with a current access token there.
struct Scene {
    ada: TestUser,
    bob: TestUser,
    org: Uuid,
    token: String,
}

async fn scene(app: &TestApp, slug: &str) -> Scene {
    let ada = app.user(&format!("ada-{slug}")).await;
    let bob = app.user(&format!("bob-{slug}")).await;
    let org = app.new_org(&ada, slug).await;
    app.new_member(&ada, org, &bob, "admin", "active").await;
    let token = access_token(app, &bob, org).await;
    assert_current(app, &token, org, slug).await;
    Scene {
        ada,
        bob,
        org,
        token,
    }
}

async fn authed(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Reply {
    Reply::read(
        app.request(method, path)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

async fn sql(app: &TestApp, statement: &str, scene: &Scene) {
    app.sql
        .execute(statement, &[&scene.org, &scene.bob.id])
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

#[tokio::test]
async fn every_kind_of_change_makes_earlier_tokens_stale_whoever_makes_it() {
    let app = spawn_app().await;
    let admin = app.tenant_admin("tess").await;
    let registered = authed(
        &app,
        &admin.token,
        Method::POST,
        "/tenant/permissions",
        json!([{"name": "invoice:approve", "description": "Approve invoices"}]),
    )
    .await;
    assert_eq!(200, registered.status, "{}", registered.text);

    let s = scene(&app, "removed").await;
    let reply = app.remove_member(&s.ada.token, s.org, s.bob.id).await;
    assert_eq!(204, reply.status().as_u16());
    assert_stale(&app, &s.token, s.org, "removed through the API").await;

    let s = scene(&app, "demoted").await;
    let reply = app
        .update_member(&s.ada.token, s.org, s.bob.id, &json!({"role": "member"}))
        .await;
    assert_eq!(200, reply.status().as_u16());
    assert_stale(&app, &s.token, s.org, "demoted through the API").await;

    let s = scene(&app, "suspended").await;
    sql(
        &app,
        "update roster.organization_memberships set status = 'suspended' \
               where organization_id = $1 and user_id = $2",
        &s,
    )
    .await;
    assert_stale(&app, &s.token, s.org, "suspended by raw SQL").await;

    let s = scene(&app, "demoted-in-psql").await;
    sql(
        &app,
        "select roster.update_member(o.owner, $1, $2, 'member') \
                 from (select m.user_id as owner from roster.organization_memberships m \
                        where m.organization_id = $1 and m.role = 'owner') o",
        &s,
    )
    .await;
    assert_stale(
        &app,
        &s.token,
        s.org,
        "demoted by roster.update_member in psql",
    )
    .await;

    // A role edit: Bob holds a custom role whose permissions change.
    let s = scene(&app, "role-edit").await;
    let path = format!("/organizations/{}/roles", s.org);
    let body = json!({"key": "approver", "name": "Approver",
                      "permissions": ["invoice:approve", "organization:read"]});
    assert_eq!(
        201,
        authed(&app, &s.ada.token, Method::POST, &path, body)
            .await
            .status
    );
    let reply = app
        .update_member(&s.ada.token, s.org, s.bob.id, &json!({"role": "approver"}))
        .await;
    assert_eq!(200, reply.status().as_u16());
    let token = access_token(&app, &s.bob, s.org).await;
    assert_current(&app, &token, s.org, "as approver").await;
    let body = json!({"permissions": ["organization:read"]});
    let reply = authed(
        &app,
        &s.ada.token,
        Method::PATCH,
        &format!("{path}/approver"),
        body,
    )
    .await;
    assert_eq!(200, reply.status, "{}", reply.text);
    assert_stale(&app, &token, s.org, "its role edited through the API").await;

    // Groups: joining one, then a grant to it.
    let s = scene(&app, "groups").await;
    let groups = format!("/organizations/{}/groups", s.org);
    let body = json!({"key": "finance", "name": "Finance"});
    assert_eq!(
        201,
        authed(&app, &s.ada.token, Method::POST, &groups, body)
            .await
            .status
    );
    let body = json!({"user_id": s.bob.id});
    let reply = authed(
        &app,
        &s.ada.token,
        Method::POST,
        &format!("{groups}/finance/members"),
        body,
    )
    .await;
    assert_eq!(201, reply.status, "{}", reply.text);
    assert_stale(&app, &s.token, s.org, "added to a group through the API").await;
    let token = access_token(&app, &s.bob, s.org).await;
    let body = json!({"subject_type": "group", "subject_id": "finance", "role_key": "admin"});
    let reply = authed(
        &app,
        &s.ada.token,
        Method::POST,
        &format!("/organizations/{}/grants", s.org),
        body,
    )
    .await;
    assert_eq!(201, reply.status, "{}", reply.text);
    assert_stale(&app, &token, s.org, "a grant to its group through the API").await;

    let s = scene(&app, "granted-in-psql").await;
    sql(
        &app,
        "insert into roster.grants (tenant_id, organization_id, subject_type, user_id, role_key) \
               select m.tenant_id, m.organization_id, 'user', m.user_id, 'owner' \
                 from roster.organization_memberships m \
                where m.organization_id = $1 and m.user_id = $2",
        &s,
    )
    .await;
    assert_stale(
        &app,
        &s.token,
        s.org,
        "an organization-wide grant by raw SQL",
    )
    .await;

    let s = scene(&app, "deleted").await;
    let reply = app.delete_organization(&s.ada.token, s.org).await;
    assert_eq!(204, reply.status().as_u16());
    assert_stale(
        &app,
        &s.token,
        s.org,
        "the organization deleted through the API",
    )
    .await;

    let s = scene(&app, "user-edit").await;
    sql(
        &app,
        "update roster.users set display_name = 'Robert' where id = $2 and $1::uuid is not null",
        &s,
    )
    .await;
    assert_stale(&app, &s.token, s.org, "the user renamed by raw SQL").await;

    let s = scene(&app, "user-deleted").await;
    app.soft_delete_user(s.bob.id).await;
    let reply = get(&app, &s.token, &format!("/organizations/{}", s.org)).await;
    crate::helpers::error_of(&reply, 401, "the user deleted");

    // Nothing changed: the token stays current, request after request.
    let s = scene(&app, "unchanged").await;
    for _ in 0..3 {
        assert_current(&app, &s.token, s.org, "unchanged").await;
    }
}

#[tokio::test]
async fn switching_gives_a_token_for_another_organization_that_expires_no_later() {
    let app = spawn_app().await;
    let ada = app.user("ada").await;
    let first = app.new_org(&ada, "first").await;
    let second = app.new_org(&ada, "second").await;
    let stranger = app.user("stan").await;
    let strangers = app.new_org(&stranger, "stans").await;
    let token = access_token(&app, &ada, first).await;
    let exp = claims_of(&token)["exp"].as_u64().unwrap();

    let reply = authed(
        &app,
        &token,
        Method::POST,
        "/auth/switch",
        json!({"organization_id": second}),
    )
    .await;
    assert_eq!(200, reply.status, "{}", reply.text);
    let body = reply.json();
    assert_eq!(second, uuid_at(&body["organization"], "id"));
    let switched = body["access_token"].as_str().unwrap();
    let claims = claims_of(switched);
    assert_eq!(second.to_string(), claims["org_id"]);
    assert!(
        claims["exp"].as_u64().unwrap() <= exp,
        "a switch does not extend the session"
    );
    assert_current(&app, switched, second, "the switched token").await;
    let reply = get(&app, switched, &format!("/organizations/{first}")).await;
    crate::helpers::error_of(&reply, 404, "the switched token in the first organization");

    // With an identity token too; to an organization of no membership, 404 as everywhere.
    let reply = authed(
        &app,
        &ada.token,
        Method::POST,
        "/auth/switch",
        json!({"organization_id": first}),
    )
    .await;
    assert_eq!(200, reply.status, "{}", reply.text);
    let reply = authed(
        &app,
        &token,
        Method::POST,
        "/auth/switch",
        json!({"organization_id": strangers}),
    )
    .await;
    let (code, _) = crate::helpers::error_of(&reply, 404, "switching to a stranger's organization");
    assert_eq!("not_found", code);
    let reply = authed(
        &app,
        &token,
        Method::POST,
        "/auth/switch",
        json!({"organization_id": "first"}),
    )
    .await;
    crate::helpers::error_of(&reply, 422, "a malformed organization_id");
}

#[tokio::test]
async fn introspection_is_exact_and_for_the_tokens_tenant_or_user_only() {
    let app = spawn_app().await;
    let s = scene(&app, "acme").await;
    let service = roster::auth::issue_service_token(&app.jwt, "billing", app.tenant, 600).unwrap();
    let elsewhere = app.create_tenant("globex").await;
    let foreign_service =
        roster::auth::issue_service_token(&app.jwt, "billing", elsewhere, 600).unwrap();
    let introspect = |caller: String, token: String| {
        let app = &app;
        async move {
            let reply = Reply::read(
                app.request(Method::POST, "/auth/introspect")
                    .header(AUTHORIZATION, format!("Bearer {caller}"))
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(serde_urlencoded::to_string([("token", token.as_str())]).unwrap())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(200, reply.status, "{}", reply.text);
            assert_eq!(Some("no-store"), reply.header("cache-control"));
            reply.json()
        }
    };
    let active = introspect(service.clone(), s.token.clone()).await;
    assert_eq!(true, active["active"]);
    assert_eq!(s.bob.id.to_string(), active["sub"]);
    assert_eq!(s.org.to_string(), active["org_id"]);
    assert_eq!("Bearer", active["token_type"]);
    assert_eq!(claims_of(&s.token)["jti"], active["jti"]);
    assert_eq!(
        json!({"active": true}),
        json!({"active": introspect(s.bob.token.clone(), s.token.clone()).await["active"]}),
        "the user's own"
    );
    let inactive = json!({"active": false});
    assert_eq!(
        inactive,
        introspect(foreign_service, s.token.clone()).await,
        "another tenant's service"
    );
    assert_eq!(
        inactive,
        introspect(s.ada.token.clone(), s.token.clone()).await,
        "another user"
    );
    assert_eq!(
        inactive,
        introspect(service.clone(), "not-a-token".into()).await,
        "garbage"
    );
    assert_eq!(
        inactive,
        introspect(service.clone(), s.bob.token.clone()).await,
        "an identity token"
    );
    let mut tampered = s.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        inactive,
        introspect(service.clone(), tampered).await,
        "a bad signature"
    );

    let reply = app
        .update_member(&s.ada.token, s.org, s.bob.id, &json!({"role": "member"}))
        .await;
    assert_eq!(200, reply.status().as_u16());
    assert_eq!(
        inactive,
        introspect(service.clone(), s.token.clone()).await,
        "once stale"
    );

    let reply = Reply::read(
        app.request(Method::POST, "/auth/introspect")
            .header(AUTHORIZATION, format!("Bearer {service}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    crate::helpers::error_of(&reply, 400, "no token");
    let reply = Reply::read(
        app.request(Method::POST, "/auth/introspect")
            .json(&json!({"token": s.token}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    crate::helpers::error_of(&reply, 401, "no credentials");
}

static FIRST_KEY: LazyLock<String> = LazyLock::new(roster::tokens::generate_ed25519_pem);
static SECOND_KEY: LazyLock<String> = LazyLock::new(roster::tokens::generate_ed25519_pem);

fn rotated(settings: &mut roster::settings::Settings) {
    settings.tokens.signing_key = Some(SECOND_KEY.clone());
    settings.tokens.previous_keys = vec![FIRST_KEY.clone()];
    settings.tokens.issuer = "https://roster.example".into();
    settings.tokens.audience = "acme-services".into();
}

async fn jwks(app: &TestApp) -> JwkSet {
    let reply = Reply::read(
        app.request(Method::GET, "/.well-known/jwks.json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(200, reply.status);
    assert!(
        !reply.text.contains("\"d\""),
        "no private key part: {}",
        reply.text
    );
    serde_json::from_str(&reply.text).expect("a JWK Set")
}

#[tokio::test]
async fn the_jwks_verifies_tokens_and_a_previous_key_stays_accepted() {
    let app = spawn_app_with(AppOptions {
        configure: Some(rotated),
        ..AppOptions::default()
    })
    .await;
    let ada = app.user("ada").await;
    let org = app.new_org(&ada, "acme").await;
    let token = access_token(&app, &ada, org).await;
    let set = jwks(&app).await;
    assert_eq!(2, set.keys.len());
    let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
    let current = set.find(&kid).expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["acme-services"]);
    validation.set_issuer(&["https://roster.example"]);
    let verified = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(current).unwrap(),
        &validation,
    )
    .expect("verified with the published key");
    assert_eq!(org.to_string(), verified.claims["org_id"]);

    // A token signed before the rotation, under the previous key: still accepted.
    let previous = set
        .keys
        .iter()
        .find(|k| k.common.key_id.as_deref() != Some(&kid))
        .unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = previous.common.key_id.clone();
    let old = jsonwebtoken::encode(
        &header,
        &claims_of(&token),
        &jsonwebtoken::EncodingKey::from_ed_pem(FIRST_KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_current(&app, &old, org, "a token under the previous key").await;
    // Under a key that is not Roster's, the same claims are no valid token.
    let foreign = jsonwebtoken::encode(
        &header,
        &claims_of(&token),
        &jsonwebtoken::EncodingKey::from_ed_pem(roster::tokens::generate_ed25519_pem().as_bytes())
            .unwrap(),
    )
    .unwrap();
    let reply = get(&app, &foreign, &format!("/organizations/{org}")).await;
    crate::helpers::error_of(
        &reply,
        401,
        "a token under a stranger's key and a Roster kid",
    );
    // Roster's token with the wrong audience for another deployment: refused.
    let mut claims = claims_of(&token);
    claims["aud"] = json!("roster");
    let other_audience = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            typ: Some("at+jwt".into()),
            ..jsonwebtoken::Header::new(Algorithm::EdDSA)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_pem(SECOND_KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    let reply = get(&app, &other_audience, &format!("/organizations/{org}")).await;
    crate::helpers::error_of(&reply, 401, "an access token for another audience");
}

fn rs256(settings: &mut roster::settings::Settings) {
    settings.tokens.alg = roster::tokens::SigningAlg::Rs256;
    settings.tokens.signing_key = Some(crate::rs256::TEST_ONLY_OTHER_PRIVATE_KEY_PEM.to_owned());
}

#[tokio::test]
async fn rs256_signing_is_an_option() {
    let app = spawn_app_with(AppOptions {
        configure: Some(rs256),
        ..AppOptions::default()
    })
    .await;
    let ada = app.user("ada").await;
    let org = app.new_org(&ada, "acme").await;
    let token = access_token(&app, &ada, org).await;
    assert_eq!("RS256", header_of(&token)["alg"]);
    let set = jwks(&app).await;
    assert_eq!(1, set.keys.len());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["roster"]);
    jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(&set.keys[0]).unwrap(),
        &validation,
    )
    .expect("verified with the published RSA key");
    assert_current(&app, &token, org, "an RS256 access token").await;
}
