//! Each error status the API answers, and its `{"error": {"code", "message"}}` body.

use reqwest::header::{ALLOW, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, assert_json, assert_page, check_error, spawn_app, spawn_app_with, AppOptions,
    Reply, BODY_LIMIT,
};

#[tokio::test]
async fn unreadable_requests_are_400() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    let json_body = |method: Method, path: &str, body: &'static str| {
        app.request(method, path)
            .bearer_auth(&owner.token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    };
    let bare = |method: Method, path: &str| app.request(method, path).bearer_auth(&owner.token);
    let org_path = format!("/organizations/{org}");
    let members_path = format!("{org_path}/members");
    let member_path = format!("{members_path}/{}", mia.id);

    let cases: Vec<(&str, RequestBuilder)> = vec![
        (
            "truncated JSON on create",
            json_body(Method::POST, "/organizations", r#"{"name": "Acme","#),
        ),
        (
            "JSON followed by garbage on create",
            json_body(
                Method::POST,
                "/organizations",
                r#"{"name": "Acme", "slug": "acme-2"} x"#,
            ),
        ),
        (
            "single-quoted pseudo-JSON on create",
            json_body(Method::POST, "/organizations", "{'name': 'Acme'}"),
        ),
        (
            "an empty body on create",
            json_body(Method::POST, "/organizations", ""),
        ),
        (
            "a text/plain body on create",
            bare(Method::POST, "/organizations")
                .header(CONTENT_TYPE, "text/plain")
                .body(r#"{"name": "Acme", "slug": "acme-2"}"#),
        ),
        (
            "a body without a content type on create",
            bare(Method::POST, "/organizations").body(r#"{"name": "Acme", "slug": "acme-2"}"#),
        ),
        (
            "truncated JSON on add member",
            json_body(Method::POST, &members_path, r#"{"user_id": "#),
        ),
        (
            "truncated JSON on PATCH organization",
            json_body(Method::PATCH, &org_path, "{"),
        ),
        (
            "truncated JSON on PUT organization",
            json_body(Method::PUT, &org_path, r#"{"name""#),
        ),
        (
            "truncated JSON on PATCH member",
            json_body(Method::PATCH, &member_path, r#"{"role": "admin""#),
        ),
        (
            "a bad uuid in GET organization",
            bare(Method::GET, "/organizations/not-a-uuid"),
        ),
        (
            "a bad uuid in PATCH organization",
            json_body(Method::PATCH, "/organizations/123", "{}"),
        ),
        (
            "a bad uuid in DELETE organization",
            bare(Method::DELETE, "/organizations/123"),
        ),
        (
            "a bad organization uuid in GET members",
            bare(Method::GET, "/organizations/acme/members"),
        ),
        (
            "a bad organization uuid in POST members",
            json_body(
                Method::POST,
                "/organizations/acme/members",
                r#"{"user_id": "00000000-0000-0000-0000-000000000000"}"#,
            ),
        ),
        (
            "a bad user uuid in PATCH member",
            json_body(
                Method::PATCH,
                &format!("{members_path}/mia"),
                r#"{"role": "admin"}"#,
            ),
        ),
        (
            "a bad user uuid in DELETE member",
            bare(Method::DELETE, &format!("{members_path}/mia")),
        ),
        (
            "a bad uuid in accept invitation",
            bare(Method::POST, "/organizations/acme/invitations/accept"),
        ),
        (
            "a bad uuid in GET user organizations",
            bare(Method::GET, "/users/olivia/organizations"),
        ),
        (
            "limit=abc on GET organizations",
            bare(Method::GET, "/organizations?limit=abc"),
        ),
        (
            "limit=abc on GET members",
            bare(Method::GET, &format!("{members_path}?limit=abc")),
        ),
    ];
    for (description, request) in cases {
        let response = request.send().await.expect("send the request");
        assert_error(
            response,
            400,
            "bad_request",
            &format!("{description} should be 400"),
        )
        .await;
    }
    let (rows, _) = assert_page(app.list_organizations(&owner.token, "").await, "list").await;
    assert_eq!(1, rows.len(), "no request created anything: {rows:?}");
}

/// A request of the 422 table.
enum Request {
    Create(Value),
    AddMember(Value),
    UpdateOrganization(Value),
    UpdateMember(Uuid, Value),
}

#[tokio::test]
async fn invalid_input_is_422_and_names_the_value() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let ivy = app.user("ivy").await;
    let nina = app.user("nina").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &ivy, "member", "invited").await;
    let long = "x".repeat(2001);

    // (description, request, a fragment the message must contain)
    let cases = [
        (
            "create with an unknown field",
            Request::Create(json!({"name": "Beta", "slug": "beta", "colour": "red"})),
            "colour",
        ),
        (
            "create without a slug",
            Request::Create(json!({"name": "Beta"})),
            "slug",
        ),
        (
            "create with a numeric name",
            Request::Create(json!({"name": 5, "slug": "beta"})),
            "invalid type",
        ),
        (
            "create with an uppercase slug with spaces",
            Request::Create(json!({"name": "Beta", "slug": "Bad Slug!"})),
            "Bad Slug!",
        ),
        (
            "create with a one-character slug",
            Request::Create(json!({"name": "Beta", "slug": "b"})),
            "'b'",
        ),
        (
            "create with a slug with a double hyphen",
            Request::Create(json!({"name": "Beta", "slug": "be--ta"})),
            "be--ta",
        ),
        (
            "create with a domain without a dot",
            Request::Create(json!({"name": "Beta", "slug": "beta", "domain": "localhost"})),
            "localhost",
        ),
        (
            "create with an uppercase domain",
            Request::Create(json!({"name": "Beta", "slug": "beta", "domain": "Beta.COM"})),
            "Beta.COM",
        ),
        (
            "create with a blank name",
            Request::Create(json!({"name": "   ", "slug": "beta"})),
            "blank",
        ),
        (
            "create with a 2001-character description",
            Request::Create(json!({"name": "Beta", "slug": "beta", "description": long})),
            "2000",
        ),
        (
            "create with a bad billing email",
            Request::Create(json!({"name": "Beta", "slug": "beta", "billing_email": "nope"})),
            "nope",
        ),
        (
            "create with array metadata",
            Request::Create(json!({"name": "Beta", "slug": "beta", "metadata": [1]})),
            "metadata",
        ),
        (
            "add member with an unknown field",
            Request::AddMember(json!({"user_id": nina.id, "admin": true})),
            "admin",
        ),
        (
            "add member without user_id",
            Request::AddMember(json!({"role": "member"})),
            "user_id",
        ),
        (
            "add member with a malformed user_id",
            Request::AddMember(json!({"user_id": "nina"})),
            "UUID",
        ),
        (
            "add member with role superuser",
            Request::AddMember(json!({"user_id": nina.id, "role": "superuser"})),
            "superuser",
        ),
        (
            "add member with a capitalised role",
            Request::AddMember(json!({"user_id": nina.id, "role": "Admin"})),
            "Admin",
        ),
        (
            "add member with status suspended",
            Request::AddMember(json!({"user_id": nina.id, "status": "suspended"})),
            "suspended",
        ),
        (
            "PATCH organization with an unknown key",
            Request::UpdateOrganization(json!({"colour": "red"})),
            "colour",
        ),
        (
            "PATCH organization with a null name",
            Request::UpdateOrganization(json!({"name": null})),
            "name",
        ),
        (
            "PATCH organization with a null slug",
            Request::UpdateOrganization(json!({"slug": null})),
            "slug",
        ),
        (
            "PATCH organization with a numeric name",
            Request::UpdateOrganization(json!({"name": 5})),
            "name",
        ),
        (
            "PATCH organization with a bad slug",
            Request::UpdateOrganization(json!({"slug": "-acme"})),
            "-acme",
        ),
        (
            "PATCH organization with a bad domain",
            Request::UpdateOrganization(json!({"domain": "acme..com"})),
            "acme..com",
        ),
        (
            "PATCH organization with string metadata",
            Request::UpdateOrganization(json!({"metadata": "gold"})),
            "metadata",
        ),
        (
            "PATCH organization with an array body",
            Request::UpdateOrganization(json!([{"name": "Acme"}])),
            "array",
        ),
        (
            "PATCH member with neither role nor status",
            Request::UpdateMember(mia.id, json!({})),
            "nothing to change",
        ),
        (
            "PATCH member with role superuser",
            Request::UpdateMember(mia.id, json!({"role": "superuser"})),
            "superuser",
        ),
        (
            "PATCH member with status invited",
            Request::UpdateMember(mia.id, json!({"status": "invited"})),
            "invited",
        ),
        (
            "PATCH member with an unknown field",
            Request::UpdateMember(mia.id, json!({"rank": "admin"})),
            "rank",
        ),
        (
            "PATCH member to activate an invitation",
            Request::UpdateMember(ivy.id, json!({"status": "active"})),
            "accepted",
        ),
    ];
    let before = Reply::read(app.get_organization(&owner.token, org).await).await;
    for (description, request, fragment) in cases {
        let response = match &request {
            Request::Create(body) => app.create_organization(&owner.token, body).await,
            Request::AddMember(body) => app.add_member(&owner.token, org, body).await,
            Request::UpdateOrganization(body) => {
                app.update_organization(&owner.token, org, body).await
            }
            Request::UpdateMember(user, body) => {
                app.update_member(&owner.token, org, user, body).await
            }
        };
        let context = format!("payload {description} should be rejected");
        let message = assert_error(response, 422, "invalid_input", &context).await;
        assert!(
            message.contains(fragment),
            "{context}: the message should name {fragment:?}: {message}"
        );
    }
    let after = Reply::read(app.get_organization(&owner.token, org).await).await;
    assert_eq!(
        before.text, after.text,
        "no rejected PATCH changed the organization"
    );
}

#[tokio::test]
async fn duplicates_and_the_last_owner_are_409() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let ivy = app.user("ivy").await;
    let tenant_admin = app.tenant_admin("tess").await;
    let org = app.new_org(&owner, "acme").await; // named "Org acme"
    let beta = app.new_org(&owner, "beta").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &ivy, "member", "invited").await;

    let response = app
        .create_organization(&owner.token, &json!({"name": "Other", "slug": "acme"}))
        .await;
    let message = assert_error(response, 409, "slug_taken", "create with a taken slug").await;
    assert!(message.contains("acme"), "names the slug: {message}");

    let response = app
        .create_organization(&owner.token, &json!({"name": "ORG ACME", "slug": "other"}))
        .await;
    let message = assert_error(
        response,
        409,
        "name_taken",
        "create with a taken name in other case",
    )
    .await;
    assert!(message.contains("ORG ACME"), "names the name: {message}");

    let response = app
        .update_organization(&owner.token, beta, &json!({"slug": "acme"}))
        .await;
    assert_error(response, 409, "slug_taken", "PATCH to a taken slug").await;
    let response = app
        .update_organization(&owner.token, beta, &json!({"name": "org acme"}))
        .await;
    assert_error(response, 409, "name_taken", "PATCH to a taken name").await;

    for (description, user) in [("an active member", &mia), ("an invited user", &ivy)] {
        let response = app
            .add_member(&owner.token, org, &json!({"user_id": user.id}))
            .await;
        let context = format!("add {description} again");
        let message = assert_error(response, 409, "already_member", &context).await;
        assert!(
            message.contains(&user.id.to_string()),
            "{context}: names the user: {message}"
        );
    }

    let last_owner_cases = [
        (
            "the only owner leaves",
            owner.token.as_str(),
            "DELETE",
            Value::Null,
        ),
        (
            "a tenant admin removes the only owner",
            tenant_admin.token.as_str(),
            "DELETE",
            Value::Null,
        ),
        (
            "the only owner demotes themself",
            owner.token.as_str(),
            "PATCH",
            json!({"role": "admin"}),
        ),
        (
            "the only owner suspends themself",
            owner.token.as_str(),
            "PATCH",
            json!({"status": "suspended"}),
        ),
        (
            "a tenant admin demotes the only owner",
            tenant_admin.token.as_str(),
            "PATCH",
            json!({"role": "member"}),
        ),
    ];
    for (description, token, method, body) in last_owner_cases {
        let response = match method {
            "DELETE" => app.remove_member(token, org, owner.id).await,
            _ => app.update_member(token, org, owner.id, &body).await,
        };
        let message = assert_error(response, 409, "last_owner", description).await;
        assert!(
            message.contains("acme"),
            "{description}: names the organization: {message}"
        );
    }
    let fetched = assert_json(app.get_organization(&owner.token, org).await, 200, "GET").await;
    assert_eq!(
        json!(2),
        fetched["member_count"],
        "the owner and mia are still active"
    );
}

/// A JSON body of exactly `size` bytes.
fn body_of_size(size: usize) -> String {
    let (head, tail) = (r#"{"description": ""#, r#""}"#);
    format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()))
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    let org_path = format!("/organizations/{org}");
    let members_path = format!("{org_path}/members");
    let member_path = format!("{members_path}/{}", mia.id);

    let cases = [
        (Method::POST, "/organizations", BODY_LIMIT + 1),
        (Method::POST, "/organizations", 1024 * 1024),
        (Method::PATCH, org_path.as_str(), BODY_LIMIT + 1),
        (Method::PUT, org_path.as_str(), BODY_LIMIT + 1),
        (Method::POST, members_path.as_str(), BODY_LIMIT + 1),
        (Method::PATCH, member_path.as_str(), BODY_LIMIT + 1),
        (Method::PUT, member_path.as_str(), BODY_LIMIT + 1),
    ];
    for (method, path, size) in cases {
        let context = format!("{method} {path} with a body of {size} bytes should be 413");
        let response = app
            .request(method, path)
            .bearer_auth(&owner.token)
            .header(CONTENT_TYPE, "application/json")
            .body(body_of_size(size))
            .send()
            .await
            .expect("send the request");
        let message = assert_error(response, 413, "payload_too_large", &context).await;
        assert!(
            message.contains(&BODY_LIMIT.to_string()),
            "{context}: the message names the limit: {message}"
        );
    }

    // At the limit exactly, the body is read: it is then refused for what it says.
    for (method, path) in [
        (Method::POST, "/organizations"),
        (Method::PATCH, org_path.as_str()),
    ] {
        let context = format!("{method} {path} with a body of exactly {BODY_LIMIT} bytes");
        let response = app
            .request(method, path)
            .bearer_auth(&owner.token)
            .header(CONTENT_TYPE, "application/json")
            .body(body_of_size(BODY_LIMIT))
            .send()
            .await
            .expect("send the request");
        assert_error(response, 422, "invalid_input", &context).await;
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;

    let cases = [
        (Method::GET, "/nope"),
        (Method::GET, "/organizations/"),
        (Method::POST, "/v1/organizations"),
        (
            Method::GET,
            "/organizations/00000000-0000-0000-0000-000000000000/nothing",
        ),
        (Method::DELETE, "/users"),
    ];
    for (method, path) in cases {
        let context = format!("{method} {path} is no route");
        let response = app
            .request(method.clone(), path)
            .bearer_auth(&owner.token)
            .send()
            .await
            .expect("send the request");
        // `no_route`, as sql/ERRORS.md catalogues it: told apart from `not_found` (an
        // organization the caller may not see) by its code.
        let message = assert_error(response, 404, "no_route", &context).await;
        assert_eq!(
            format!("no route for {method} {path}"),
            message,
            "{context}: the message names the route"
        );
    }
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_a_json_405_with_allow() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = Uuid::new_v4();

    let cases = [
        (Method::POST, "/healthz".to_owned(), "GET"),
        (Method::DELETE, "/organizations".to_owned(), "POST"),
        (Method::POST, format!("/organizations/{org}"), "PATCH"),
        (
            Method::PATCH,
            format!("/organizations/{org}/members"),
            "POST",
        ),
        (
            Method::POST,
            format!("/organizations/{org}/members/{}", owner.id),
            "DELETE",
        ),
        (
            Method::GET,
            format!("/organizations/{org}/invitations/accept"),
            "POST",
        ),
        (Method::POST, "/tenant/organizations".to_owned(), "GET"),
    ];
    // Every case is tried before failing, so that one run shows the whole picture.
    let mut wrong = Vec::new();
    for (method, path, allowed) in cases {
        let context = format!("{method} {path}");
        let response = app
            .request(method, &path)
            .bearer_auth(&owner.token)
            .send()
            .await
            .expect("send the request");
        let reply = Reply::read(response).await;
        let allow = reply.header(ALLOW.as_str()).unwrap_or_default().to_owned();
        if reply.status != 405 || !allow.contains(allowed) {
            wrong.push(format!(
                "{context}: expected 405 with Allow listing {allowed}, got {} with Allow {allow:?}",
                reply.status
            ));
        } else if let Err(problem) = check_error(&reply, 405) {
            wrong.push(format!("{context}: {problem}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "a wrong method on a known path should be a JSON 405 with Allow:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn an_unreachable_database_is_503() {
    let app = spawn_app_with(AppOptions {
        through_proxy: true,
        ..AppOptions::default()
    })
    .await;
    let owner = app.user("olivia").await;
    assert_page(
        app.list_organizations(&owner.token, "").await,
        "before the cut",
    )
    .await;

    app.proxy.as_ref().expect("a proxy").cut();

    let response = app.list_organizations(&owner.token, "").await;
    assert_error(response, 503, "unavailable", "GET /organizations").await;
    let body = json!({"name": "Acme", "slug": "acme"});
    let response = app.create_organization(&owner.token, &body).await;
    assert_error(response, 503, "unavailable", "POST /organizations").await;
    let response = app.readyz().await;
    let body = assert_json(response, 503, "GET /readyz").await;
    assert_eq!(json!("unavailable"), body["status"], "readyz: {body}");
    assert_eq!(
        json!("unavailable"),
        body["database"],
        "readyz says what is down: {body}"
    );
    assert_json(
        app.healthz().await,
        200,
        "GET /healthz, the process is still up",
    )
    .await;
}

/// Values PostgreSQL cannot store (U+0000 in text or jsonb, numbers beyond numeric's range,
/// nesting deeper than the parser allows) are the client's mistake: 4xx naming where, never a
/// 500. Each kind, at each body that carries strings.
#[tokio::test]
async fn values_the_database_cannot_store_are_4xx_never_500() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let nina = app.user("nina").await;
    let org = app.new_org(&owner, "acme").await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    // (description, method, path, raw body, status, a fragment the message must contain)
    let cases: Vec<(&str, Method, String, String, u16, &str)> = vec![
        (
            "a NUL in a name",
            Method::POST,
            "/organizations".into(),
            json!({"name": "a\u{0}b", "slug": "beta"}).to_string(),
            422,
            "name: must not contain the NUL character",
        ),
        (
            "a NUL in a billing address value",
            Method::POST,
            "/organizations".into(),
            json!({"name": "Beta", "slug": "beta", "billing_address": {"city": "x\u{0}"}})
                .to_string(),
            422,
            "billing_address.city",
        ),
        (
            "a NUL in a metadata key",
            Method::POST,
            "/organizations".into(),
            json!({"name": "Beta", "slug": "beta", "metadata": {"k\u{0}": 1}}).to_string(),
            422,
            "metadata.k\\u0000",
        ),
        (
            "a NUL deep inside PATCHed metadata",
            Method::PATCH,
            format!("/organizations/{org}"),
            json!({"metadata": {"tags": ["ok", ["\u{0}"]]}}).to_string(),
            422,
            "metadata.tags[1][0]",
        ),
        (
            "a NUL in a role",
            Method::POST,
            format!("/organizations/{org}/members"),
            json!({"user_id": nina.id, "role": "ad\u{0}min"}).to_string(),
            422,
            "role",
        ),
        (
            "a NUL in a checked permission",
            Method::POST,
            "/authz/check".into(),
            json!({"checks": [{"organization_id": org, "permission": "members:read\u{0}"}]})
                .to_string(),
            422,
            "checks[0].permission",
        ),
        (
            "a number beyond numeric's range in metadata",
            Method::PATCH,
            format!("/organizations/{org}"),
            r#"{"metadata": {"big": 1e1000000}}"#.into(),
            0, // 400 or 422: refused either way
            "",
        ),
        (
            "metadata nested 200 deep",
            Method::PATCH,
            format!("/organizations/{org}"),
            format!(r#"{{"metadata": {{"deep": {deep}}}}}"#),
            0,
            "",
        ),
    ];
    for (description, method, path, body, status, fragment) in cases {
        let response = app
            .request(method, &path)
            .bearer_auth(&owner.token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("send the request");
        let reply = Reply::read(response).await;
        let context = format!("{description} should be refused with a 4xx");
        match status {
            0 => assert!(
                [400, 422].contains(&reply.status),
                "{context}: {} {}",
                reply.status,
                reply.text
            ),
            status => {
                let (_, message) = check_error(&reply, status)
                    .unwrap_or_else(|problem| panic!("{context}: {problem}"));
                assert!(
                    message.contains(fragment),
                    "{context}: the message should name {fragment:?}: {message}"
                );
            }
        }
    }
}
