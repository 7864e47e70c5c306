//! Resources and expiring access over HTTP: parents set by services and by users with
//! grants:manage, checks and explanations on a resource, the resources a user reaches (paged,
//! who may ask), and memberships that expire.

use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, assert_json, assert_no_content, spawn_app, Reply, TestApp, TestUser,
};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let mut request = app.request(method, path).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("send the request")
}

/// The tenant's catalogue has model:* and project:read; role `editor` (model:read,
/// model:update) exists in the organization, and `user` is a plain member; `viewer` holds
/// organization:read alone (not members:read).
struct World {
    app: TestApp,
    service: String,
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    viewer: TestUser,
    user: TestUser,
    org: Uuid,
}

impl World {
    async fn build() -> World {
        let app = spawn_app().await;
        let owner = app.user("olivia").await;
        let admin = app.user("adam").await;
        let member = app.user("mia").await;
        let user = app.user("ulla").await;
        let org = app.new_org(&owner, "acme").await;
        for (who, role) in [(&admin, "admin"), (&member, "member"), (&user, "member")] {
            app.new_member(&owner, org, who, role, "active").await;
        }
        let service =
            roster::auth::issue_service_token(&app.jwt, "models", app.tenant, 3600).expect("sign");
        let names: Vec<Value> = ["model:read", "model:update", "project:read"]
            .iter()
            .map(|n| json!({"name": n, "description": n}))
            .collect();
        let register = call(
            &app,
            Method::POST,
            "/tenant/permissions",
            &service,
            Some(json!(names)),
        );
        assert_json(register.await, 200, "register").await;
        let role = json!({"key": "editor", "name": "Editor", "permissions": ["model:read", "model:update"]});
        let roles = format!("/organizations/{org}/roles");
        let create = call(&app, Method::POST, &roles, &owner.token, Some(role));
        assert_json(create.await, 201, "create editor").await;
        let role = json!({"key": "viewer", "name": "Viewer", "permissions": ["organization:read"]});
        let create = call(&app, Method::POST, &roles, &owner.token, Some(role));
        assert_json(create.await, 201, "create viewer").await;
        let viewer = app.user("vera").await;
        app.new_member(&owner, org, &viewer, "viewer", "active")
            .await;
        World {
            app,
            service,
            owner,
            admin,
            member,
            viewer,
            user,
            org,
        }
    }

    async fn set_parent(&self, token: &str, child: (&str, &str), parent: Value) -> Response {
        let path = format!(
            "/organizations/{}/resources/{}/{}/parent",
            self.org, child.0, child.1
        );
        call(&self.app, Method::PUT, &path, token, Some(parent)).await
    }

    /// A grant through SQL (the grants endpoints have their own tests).
    async fn grant(&self, user: Uuid, role: &str, resource: (&str, &str)) {
        self.app
            .sql
            .execute(
                "select roster.grant_role($1, $2, 'user', $3, $4, $5, $6)",
                &[
                    &self.owner.id,
                    &self.org,
                    &user.to_string(),
                    &role,
                    &resource.0,
                    &resource.1,
                ],
            )
            .await
            .expect("grant");
    }

    async fn resources(&self, token: &str, query: &str) -> Reply {
        let path = format!("/organizations/{}/resources?{query}", self.org);
        Reply::read(call(&self.app, Method::GET, &path, token, None).await).await
    }

    async fn check(&self, token: &str, check: Value) -> Reply {
        Reply::read(
            call(
                &self.app,
                Method::POST,
                "/authz/check",
                token,
                Some(json!({"checks": [check]})),
            )
            .await,
        )
        .await
    }
}

fn allowed(reply: &Reply) -> bool {
    assert_eq!(200, reply.status, "{}", reply.text);
    reply.json()["results"][0]["allowed"]
        .as_bool()
        .expect("allowed")
}

#[tokio::test]
async fn parents_are_set_by_services_and_by_grant_managers_only() {
    let w = World::build().await;
    let parent = json!({"parent_type": "project", "parent_id": "p1"});
    assert_no_content(
        w.set_parent(&w.service, ("model", "42"), parent.clone())
            .await,
        "a service",
    )
    .await;
    assert_no_content(
        w.set_parent(&w.admin.token, ("model", "43"), parent.clone())
            .await,
        "an admin",
    )
    .await;
    assert_no_content(
        w.set_parent(&w.owner.token, ("model", "43"), parent.clone())
            .await,
        "again: no change",
    )
    .await;
    assert_error(
        w.set_parent(&w.member.token, ("model", "44"), parent.clone())
            .await,
        403,
        "forbidden",
        "a member",
    )
    .await;
    let other_tenant = w.app.create_tenant("globex").await;
    let foreign =
        roster::auth::issue_service_token(&w.app.jwt, "models", other_tenant, 3600).expect("sign");
    assert_error(
        w.set_parent(&foreign, ("model", "44"), parent.clone())
            .await,
        404,
        "not_found",
        "another tenant's service",
    )
    .await;
    let stranger = w.app.user("stan").await;
    assert_error(
        w.set_parent(&stranger.token, ("model", "44"), parent.clone())
            .await,
        404,
        "not_found",
        "a user who is no member",
    )
    .await;

    // The hierarchy counts: a grant on the project reaches model 42.
    w.grant(w.user.id, "editor", ("project", "p1")).await;
    let on_42 = json!({"organization_id": w.org, "permission": "model:update", "user_id": w.user.id,
                       "resource_type": "model", "resource_id": "42"});
    assert!(allowed(&w.check(&w.service, on_42.clone()).await));
    assert_no_content(
        w.set_parent(
            &w.service,
            ("model", "42"),
            json!({"parent_type": null, "parent_id": null}),
        )
        .await,
        "nulls remove the parent",
    )
    .await;
    assert!(
        !allowed(&w.check(&w.service, on_42).await),
        "no parent, no grant"
    );

    for (child, body, code, field) in [
        (
            ("project", "p1"),
            json!({"parent_type": "model", "parent_id": "43"}),
            "invalid_hierarchy",
            "project",
        ),
        (
            ("model", "1"),
            json!({"parent_type": "project"}),
            "invalid_input",
            "parent_id",
        ),
        (
            ("Model", "1"),
            parent.clone(),
            "invalid_input",
            "resource_type",
        ),
        (
            ("model", "1"),
            json!({"parent_type": "spaceship", "parent_id": "x"}),
            "invalid_input",
            "spaceship",
        ),
        (
            ("model", "1"),
            json!({"parent_type": "project", "parent_id": "p", "extra": 1}),
            "invalid_input",
            "extra",
        ),
    ] {
        let message = assert_error(
            w.set_parent(&w.owner.token, child, body.clone()).await,
            422,
            code,
            &format!("{child:?} under {body}"),
        )
        .await;
        assert!(
            message.contains(field),
            "{body}: the message names {field}: {message}"
        );
    }
    let long = "x".repeat(256);
    assert_error(
        w.set_parent(&w.owner.token, ("model", &long), parent).await,
        422,
        "invalid_input",
        "an id of 256 characters",
    )
    .await;
}

#[tokio::test]
async fn checks_and_explanations_take_a_resource() {
    let w = World::build().await;
    w.grant(w.user.id, "editor", ("model", "42")).await;
    let check = |model: &str| {
        json!({"organization_id": w.org, "permission": "model:update",
               "resource_type": "model", "resource_id": model})
    };
    assert!(
        allowed(&w.check(&w.user.token, check("42")).await),
        "its own check"
    );
    assert!(
        !allowed(&w.check(&w.user.token, check("43")).await),
        "another model"
    );
    let org_wide = json!({"organization_id": w.org, "permission": "model:update"});
    assert!(
        !allowed(&w.check(&w.user.token, org_wide).await),
        "nothing organization-wide"
    );
    let mut about_user = check("42");
    about_user["user_id"] = json!(w.user.id);
    assert!(
        allowed(&w.check(&w.admin.token, about_user.clone()).await),
        "an admin asks about it"
    );
    let reply = w.check(&w.viewer.token, about_user).await;
    assert_eq!(
        403, reply.status,
        "no members:read, no asking about others: {}",
        reply.text
    );

    let half =
        json!({"organization_id": w.org, "permission": "model:update", "resource_type": "model"});
    let reply = w.check(&w.user.token, half).await;
    assert_eq!(422, reply.status, "{}", reply.text);
    assert!(
        reply.text.contains("checks[0].resource_id"),
        "{}",
        reply.text
    );
    let typo = json!({"organization_id": w.org, "permission": "model:updat",
                      "resource_type": "model", "resource_id": "42"});
    let reply = w.check(&w.user.token, typo).await;
    assert_eq!(
        422, reply.status,
        "an unknown permission on a resource: {}",
        reply.text
    );
    assert!(reply.text.contains("unknown_permission"), "{}", reply.text);

    let body = json!({"organization_id": w.org, "permission": "model:update",
                      "resource_type": "model", "resource_id": "42"});
    let why = assert_json(
        call(
            &w.app,
            Method::POST,
            "/authz/explain",
            &w.user.token,
            Some(body),
        )
        .await,
        200,
        "explain",
    )
    .await;
    assert_eq!(json!(true), why["allowed"]);
    assert_eq!(json!("grant"), why["reason"]);
    assert_eq!(json!("editor"), why["via_role"]);
    assert_eq!(json!("model"), why["via_resource_type"]);
    assert_eq!(json!("42"), why["via_resource_id"]);
    assert!(why["via_grant_id"].is_string(), "{why}");
}

#[tokio::test]
async fn resources_list_pages_and_says_who_may_ask() {
    let w = World::build().await;
    for n in 1..=5 {
        w.grant(w.user.id, "editor", ("model", &format!("m{n}")))
            .await;
    }
    let query = "permission=model:update&resource_type=model";
    let first = w
        .resources(&w.user.token, &format!("{query}&limit=2"))
        .await;
    assert_eq!(200, first.status, "{}", first.text);
    let body = first.json();
    assert_eq!(json!(["m1", "m2"]), body["data"]);
    assert_eq!(json!(true), body["has_more"]);
    assert_eq!(json!(false), body["organization_wide"]);
    let after = body["next_after"].as_str().expect("next_after").to_owned();
    let rest = w
        .resources(&w.user.token, &format!("{query}&limit=3&after={after}"))
        .await;
    assert_eq!(json!(["m3", "m4", "m5"]), rest.json()["data"]);
    assert_eq!(json!(false), rest.json()["has_more"]);
    assert!(rest.json().get("next_after").is_none(), "{}", rest.text);

    let owner = w.resources(&w.owner.token, query).await;
    assert_eq!(
        json!(true),
        owner.json()["organization_wide"],
        "{}",
        owner.text
    );
    assert_eq!(json!([]), owner.json()["data"]);

    let about = format!("{query}&user_id={}", w.user.id);
    assert_eq!(
        5,
        w.resources(&w.admin.token, &about).await.json()["data"]
            .as_array()
            .unwrap()
            .len()
    );
    assert_eq!(
        5,
        w.resources(&w.service, &about).await.json()["data"]
            .as_array()
            .unwrap()
            .len()
    );
    assert_eq!(
        403,
        w.resources(&w.viewer.token, &about).await.status,
        "without members:read, about another"
    );
    let reply = w.resources(&w.service, query).await;
    assert_eq!(
        422, reply.status,
        "a service names the user: {}",
        reply.text
    );
    let other_tenant = w.app.create_tenant("globex").await;
    let foreign = w.app.user_in(other_tenant, "greta", false).await;
    let reply = w
        .resources(&w.service, &format!("{query}&user_id={}", foreign.id))
        .await;
    assert_eq!(404, reply.status, "another tenant's user: {}", reply.text);
    assert!(reply.text.contains("user_not_found"), "{}", reply.text);
    // Explaining is the same, though model:update is in no catalogue of that tenant.
    let body =
        json!({"user_id": foreign.id, "organization_id": w.org, "permission": "model:update"});
    let explained = call(
        &w.app,
        Method::POST,
        "/authz/explain",
        &w.service,
        Some(body),
    )
    .await;
    assert_error(
        explained,
        404,
        "user_not_found",
        "explain another tenant's user",
    )
    .await;
    let stranger = w.app.user("stan").await;
    assert_eq!(
        404,
        w.resources(&stranger.token, query).await.status,
        "no member"
    );

    for (query, status) in [
        ("permission=model:fly&resource_type=model", 422),
        ("resource_type=model", 400),
        ("permission=model:update", 400),
        ("permission=model:update&resource_type=Model", 422),
        ("permission=model:update&resource_type=model&limit=0", 422),
        ("permission=model:update&resource_type=model&limit=201", 422),
        ("permission=model:update&resource_type=model&limit=x", 400),
    ] {
        let reply = w.resources(&w.user.token, query).await;
        assert_eq!(status, reply.status, "{query}: {}", reply.text);
    }
}

#[tokio::test]
async fn memberships_take_an_expiry_and_the_last_owner_keeps_none() {
    let w = World::build().await;
    let guest = w.app.user("gus").await;
    let path = format!("/organizations/{}/members", w.org);
    let past = json!({"user_id": guest.id, "expires_at": "2020-01-01T00:00:00Z"});
    let message = assert_error(
        call(&w.app, Method::POST, &path, &w.owner.token, Some(past)).await,
        422,
        "invalid_input",
        "a past expiry",
    )
    .await;
    assert!(message.contains("expires_at"), "{message}");
    let soon = json!({"user_id": guest.id, "expires_at": "2099-01-01T00:00:00Z"});
    let added = assert_json(
        call(&w.app, Method::POST, &path, &w.owner.token, Some(soon)).await,
        201,
        "add",
    )
    .await;
    assert_eq!(json!("2099-01-01T00:00:00Z"), added["expires_at"]);

    let member = format!("{path}/{}", guest.id);
    let later = json!({"expires_at": "2099-06-01T12:00:00Z"});
    let changed = assert_json(
        call(&w.app, Method::PATCH, &member, &w.owner.token, Some(later)).await,
        200,
        "extend",
    )
    .await;
    assert_eq!(json!("2099-06-01T12:00:00Z"), changed["expires_at"]);
    let listed = assert_json(
        call(&w.app, Method::GET, &member, &w.owner.token, None).await,
        200,
        "get",
    )
    .await;
    assert_eq!(json!("2099-06-01T12:00:00Z"), listed["expires_at"]);
    let cleared = assert_json(
        call(
            &w.app,
            Method::PATCH,
            &member,
            &w.owner.token,
            Some(json!({"expires_at": null})),
        )
        .await,
        200,
        "clear",
    )
    .await;
    assert_eq!(Value::Null, cleared["expires_at"]);
    assert_error(
        call(
            &w.app,
            Method::PATCH,
            &member,
            &w.member.token,
            Some(json!({"expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await,
        403,
        "forbidden",
        "a member sets another's expiry",
    )
    .await;
    assert_error(
        call(
            &w.app,
            Method::PATCH,
            &member,
            &w.owner.token,
            Some(json!({"expires_at": "soon"})),
        )
        .await,
        422,
        "invalid_input",
        "not a time",
    )
    .await;

    let own = format!("{path}/{}", w.owner.id);
    assert_error(
        call(
            &w.app,
            Method::PATCH,
            &own,
            &w.owner.token,
            Some(json!({"expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await,
        409,
        "last_owner",
        "the last lasting owner",
    )
    .await;
}
