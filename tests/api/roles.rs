//! Permissions as data over HTTP: the tenant's catalogue, custom roles, service tokens that
//! check, explain and look up access for their tenant's users (and do nothing else), and the
//! wildcard table of tests/db/roles.rs at this door.

use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{REGISTERED, WILDCARD_CASES};
use crate::helpers::{
    assert_error, assert_json, assert_no_content, spawn_app, Reply, TestApp, TestUser,
};

fn service_token(app: &TestApp, tenant: Uuid) -> String {
    roster::auth::issue_service_token(&app.jwt, "billing", tenant, 3600).expect("sign")
}

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

async fn register(app: &TestApp, token: &str, names: &[&str]) -> Response {
    let items: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "description": n}))
        .collect();
    call(
        app,
        Method::POST,
        "/tenant/permissions",
        token,
        Some(json!(items)),
    )
    .await
}

async fn create_role(
    app: &TestApp,
    owner: &TestUser,
    org: Uuid,
    key: &str,
    grants: &[&str],
) -> Response {
    let body = json!({"key": key, "name": format!("Role {key}"), "permissions": grants});
    call(
        app,
        Method::POST,
        &format!("/organizations/{org}/roles"),
        &owner.token,
        Some(body),
    )
    .await
}

/// The results of `POST /authz/check` as `token`, for (user, org, permission) checks.
async fn checks(app: &TestApp, token: &str, checks: &[(Option<Uuid>, Uuid, &str)]) -> Reply {
    let checks: Vec<Value> = checks
        .iter()
        .map(|(user, org, permission)| {
            let mut check = json!({"organization_id": org, "permission": permission});
            if let Some(user) = user {
                check["user_id"] = json!(user);
            }
            check
        })
        .collect();
    Reply::read(
        call(
            app,
            Method::POST,
            "/authz/check",
            token,
            Some(json!({"checks": checks})),
        )
        .await,
    )
    .await
}

fn allowed(reply: &Reply) -> Vec<bool> {
    assert_eq!(200, reply.status, "{}", reply.text);
    reply.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["allowed"].as_bool().expect("allowed"))
        .collect()
}

#[tokio::test]
async fn a_service_checks_the_wildcard_table_for_its_tenants_users() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    let service = service_token(&app, app.tenant);
    assert_json(
        register(&app, &service, REGISTERED).await,
        200,
        "a service registers",
    )
    .await;
    for (i, (grant, cases)) in WILDCARD_CASES.iter().enumerate() {
        let key = format!("wild-{i}");
        assert_json(
            create_role(&app, &owner, org, &key, &[grant]).await,
            201,
            "create the role",
        )
        .await;
        let user = app.user(&format!("wild{i}")).await;
        app.new_member(&owner, org, &user, &key, "active").await;
        let asked: Vec<(Option<Uuid>, Uuid, &str)> = cases
            .iter()
            .map(|(permission, _)| (Some(user.id), org, *permission))
            .collect();
        let expected: Vec<bool> = cases.iter().map(|(_, allowed)| *allowed).collect();
        assert_eq!(
            expected,
            allowed(&checks(&app, &service, &asked).await),
            "grant {grant}"
        );
        // The user asking about itself gets the same answers.
        let own: Vec<(Option<Uuid>, Uuid, &str)> = cases
            .iter()
            .map(|(permission, _)| (None, org, *permission))
            .collect();
        assert_eq!(
            expected,
            allowed(&checks(&app, &user.token, &own).await),
            "grant {grant}, asked by the user"
        );
    }
}

#[tokio::test]
async fn a_service_token_does_only_what_services_do() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    let service = service_token(&app, app.tenant);
    let other_tenant = app.create_tenant("globex").await;
    let foreigner = app.user_in(other_tenant, "fred", false).await;
    let foreign_org = app.new_org(&foreigner, "globex").await;

    // Refused: everything about organizations and members, and the tenant's roles.
    let refused = [
        (
            Method::POST,
            "/organizations".to_owned(),
            Some(json!({"name": "X", "slug": "xx"})),
        ),
        (Method::GET, format!("/organizations/{org}"), None),
        (Method::GET, format!("/organizations/{org}/members"), None),
        (
            Method::POST,
            format!("/organizations/{org}/members"),
            Some(json!({"user_id": owner.id})),
        ),
        (Method::GET, "/tenant/roles".to_owned(), None),
        (Method::GET, format!("/organizations/{org}/roles"), None),
        (Method::GET, "/organizations".to_owned(), None),
    ];
    for (method, path, body) in refused {
        let what = format!("a service's {method} {path}");
        assert_error(
            call(&app, method, &path, &service, body).await,
            403,
            "forbidden",
            &what,
        )
        .await;
    }
    // Checks need a user; a user of another tenant holds nothing for this tenant's service,
    // even in its own organization.
    let reply = checks(&app, &service, &[(None, org, "organization:read")]).await;
    assert_eq!(422, reply.status, "{}", reply.text);
    assert!(reply.text.contains("checks[0].user_id"), "{}", reply.text);
    let answers = allowed(
        &checks(
            &app,
            &service,
            &[
                (Some(owner.id), org, "organization:delete"),
                (Some(foreigner.id), foreign_org, "organization:read"),
            ],
        )
        .await,
    );
    assert_eq!(vec![true, false], answers);
    let explain = json!({"user_id": foreigner.id, "organization_id": foreign_org, "permission": "organization:read"});
    assert_error(
        call(
            &app,
            Method::POST,
            "/authz/explain",
            &service,
            Some(explain),
        )
        .await,
        404,
        "user_not_found",
        "a service explaining another tenant's user",
    )
    .await;
    let path = format!(
        "/organizations/{foreign_org}/members/{}/permissions",
        foreigner.id
    );
    assert_error(
        call(&app, Method::GET, &path, &service, None).await,
        404,
        "user_not_found",
        "another tenant's permissions",
    )
    .await;
    // Allowed: explain and effective permissions for its tenant's users, the catalogue.
    let explain =
        json!({"user_id": owner.id, "organization_id": org, "permission": "organization:delete"});
    let why = assert_json(
        call(
            &app,
            Method::POST,
            "/authz/explain",
            &service,
            Some(explain),
        )
        .await,
        200,
        "explain",
    )
    .await;
    assert_eq!(
        json!({"allowed": true, "reason": "member_role", "via_role": "owner", "via_grant": "*",
               "via_grant_id": null, "via_groups": null, "via_resource_type": null,
               "via_resource_id": null}),
        why
    );
    let path = format!("/organizations/{org}/members/{}/permissions", owner.id);
    let held = assert_json(
        call(&app, Method::GET, &path, &service, None).await,
        200,
        "permissions",
    )
    .await;
    assert!(
        held["permissions"]
            .as_array()
            .expect("list")
            .contains(&json!("roles:manage")),
        "{held}"
    );
    let catalogue = assert_json(
        call(&app, Method::GET, "/tenant/permissions", &service, None).await,
        200,
        "catalogue",
    )
    .await;
    assert!(catalogue
        .as_array()
        .expect("list")
        .iter()
        .any(|p| p["name"] == "members:invite" && p["builtin"] == true));
}

#[tokio::test]
async fn roles_over_http_with_no_escalation() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let manager = app.user("max").await;
    let target = app.user("tom").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    app.new_member(&owner, org, &target, "member", "active")
        .await;
    let tenant_admin = app.tenant_admin("tess").await;
    assert_json(
        register(&app, &tenant_admin.token, REGISTERED).await,
        200,
        "a tenant admin registers",
    )
    .await;

    let manager_grants = [
        "organization:read",
        "members:read",
        "members:update_role",
        "roles:manage",
        "invoice:read",
    ];
    let created = assert_json(
        create_role(&app, &owner, org, "manager", &manager_grants).await,
        201,
        "manager",
    )
    .await;
    assert_eq!("manager", created["key"]);
    assert_json(
        create_role(
            &app,
            &owner,
            org,
            "approver",
            &["organization:read", "invoice:*"],
        )
        .await,
        201,
        "approver",
    )
    .await;
    app.new_member(&owner, org, &manager, "manager", "active")
        .await;

    let cases = [
        (
            "an admin creating a role (no roles:manage)",
            create_role(&app, &admin, org, "xx", &[]).await,
            403,
            "forbidden",
        ),
        (
            "a manager creating a wider role",
            create_role(&app, &manager, org, "wide", &["invoice:approve"]).await,
            403,
            "privilege_escalation",
        ),
        (
            "a role taking a built-in key",
            create_role(&app, &owner, org, "admin", &[]).await,
            409,
            "role_key_taken",
        ),
        (
            "a grant of nothing in the catalogue",
            create_role(&app, &owner, org, "typo", &["invioce:*"]).await,
            422,
            "unknown_permission",
        ),
    ];
    for (what, response, status, code) in cases {
        assert_error(response, status, code, what).await;
    }
    let give = |role: &str| json!({"role": role});
    assert_error(
        app.update_member(&manager.token, org, target.id, &give("approver"))
            .await,
        403,
        "privilege_escalation",
        "a manager giving more than it holds",
    )
    .await;
    assert_json(
        app.update_member(&manager.token, org, target.id, &give("manager"))
            .await,
        200,
        "a manager giving what it holds",
    )
    .await;

    // Built-ins are listed and immutable.
    let roles = assert_json(
        call(
            &app,
            Method::GET,
            &format!("/organizations/{org}/roles"),
            &target.token,
            None,
        )
        .await,
        200,
        "list",
    )
    .await;
    let keys: Vec<&str> = roles
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        vec!["admin", "member", "owner", "approver", "manager"],
        keys
    );
    assert_error(
        call(
            &app,
            Method::PATCH,
            &format!("/organizations/{org}/roles/admin"),
            &owner.token,
            Some(json!({"name": "Boss"})),
        )
        .await,
        409,
        "builtin",
        "renaming a built-in",
    )
    .await;
    let patched = assert_json(
        call(
            &app,
            Method::PATCH,
            &format!("/organizations/{org}/roles/approver"),
            &owner.token,
            Some(json!({"permissions": ["organization:read"]})),
        )
        .await,
        200,
        "narrowing approver",
    )
    .await;
    assert_eq!(json!(["organization:read"]), patched["permissions"]);
    // Deleting a role in use needs a reassignment.
    let path = format!("/organizations/{org}/roles/manager");
    assert_error(
        call(&app, Method::DELETE, &path, &owner.token, None).await,
        409,
        "role_in_use",
        "deleting a held role",
    )
    .await;
    assert_no_content(
        call(
            &app,
            Method::DELETE,
            &format!("{path}?reassign_to=member"),
            &owner.token,
            None,
        )
        .await,
        "reassign",
    )
    .await;
    assert_error(
        call(&app, Method::GET, &path, &owner.token, None).await,
        404,
        "role_not_found",
        "gone",
    )
    .await;

    // Tenant-wide roles: tenant admins only; available in every organization.
    let body = json!({"key": "auditor", "name": "Auditor", "permissions": ["organization:read", "audit:read"]});
    assert_error(
        call(
            &app,
            Method::POST,
            "/tenant/roles",
            &owner.token,
            Some(body.clone()),
        )
        .await,
        403,
        "forbidden",
        "an owner",
    )
    .await;
    assert_json(
        call(
            &app,
            Method::POST,
            "/tenant/roles",
            &tenant_admin.token,
            Some(body),
        )
        .await,
        201,
        "a tenant admin",
    )
    .await;
    assert_json(
        app.update_member(&owner.token, org, target.id, &give("auditor"))
            .await,
        200,
        "a tenant-wide role in an organization",
    )
    .await;
    let answers = allowed(
        &checks(
            &app,
            &target.token,
            &[(None, org, "audit:read"), (None, org, "members:read")],
        )
        .await,
    );
    assert_eq!(vec![true, false], answers);
}

#[tokio::test]
async fn asking_about_someone_else_needs_members_read() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let peeker = app.user("pete").await;
    let member = app.user("mia").await;
    let outsider = app.user("oscar").await;
    let org = app.new_org(&owner, "acme").await;
    assert_json(
        create_role(&app, &owner, org, "viewer", &["organization:read"]).await,
        201,
        "viewer",
    )
    .await;
    app.new_member(&owner, org, &peeker, "viewer", "active")
        .await;
    app.new_member(&owner, org, &member, "member", "active")
        .await;
    let about_owner = [(Some(owner.id), org, "organization:delete")];
    assert_eq!(
        vec![true],
        allowed(&checks(&app, &member.token, &about_owner).await),
        "a member may (members:read)"
    );
    let reply = checks(&app, &peeker.token, &about_owner).await;
    assert_eq!(403, reply.status, "without members:read: {}", reply.text);
    let reply = checks(&app, &outsider.token, &about_owner).await;
    assert_eq!(
        404, reply.status,
        "a non-member sees nothing: {}",
        reply.text
    );
    assert_eq!(
        vec![false],
        allowed(
            &checks(
                &app,
                &peeker.token,
                &[(Some(peeker.id), org, "members:read")]
            )
            .await
        ),
        "about itself: no"
    );
    let explain =
        json!({"user_id": owner.id, "organization_id": org, "permission": "organization:delete"});
    let reply = Reply::read(
        call(
            &app,
            Method::POST,
            "/authz/explain",
            &peeker.token,
            Some(explain),
        )
        .await,
    )
    .await;
    assert_eq!(403, reply.status, "{}", reply.text);

    let subjects = assert_json(
        call(
            &app,
            Method::GET,
            &format!("/organizations/{org}/permissions/organization:delete/subjects"),
            &member.token,
            None,
        )
        .await,
        200,
        "subjects",
    )
    .await;
    let holders: Vec<&str> = subjects["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|s| s["via_role"].as_str().unwrap())
        .collect();
    assert_eq!(vec!["owner"], holders, "{subjects}");
    assert_error(
        call(
            &app,
            Method::GET,
            &format!("/organizations/{org}/permissions/members:reed/subjects"),
            &member.token,
            None,
        )
        .await,
        422,
        "unknown_permission",
        "a typo",
    )
    .await;
}

#[tokio::test]
async fn the_catalogue_over_http() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    let service = service_token(&app, app.tenant);
    assert_error(
        register(&app, &owner.token, &["invoice:pay"]).await,
        403,
        "forbidden",
        "an owner is no tenant admin",
    )
    .await;
    assert_error(
        register(&app, &service, &["members:pay"]).await,
        422,
        "invalid_input",
        "a reserved resource",
    )
    .await;
    let registered = assert_json(
        register(&app, &service, &["invoice:pay"]).await,
        200,
        "register",
    )
    .await;
    assert_eq!(
        json!([{"name": "invoice:pay", "description": "invoice:pay", "builtin": false}]),
        registered
    );
    assert_json(
        create_role(&app, &owner, org, "payer", &["invoice:pay"]).await,
        201,
        "payer",
    )
    .await;
    assert_error(
        call(
            &app,
            Method::DELETE,
            "/tenant/permissions/invoice:pay",
            &service,
            None,
        )
        .await,
        409,
        "permission_in_use",
        "retiring a granted permission",
    )
    .await;
    assert_error(
        call(
            &app,
            Method::DELETE,
            "/tenant/permissions/members:read",
            &service,
            None,
        )
        .await,
        409,
        "builtin",
        "a built-in",
    )
    .await;
    assert_error(
        call(
            &app,
            Method::DELETE,
            "/tenant/permissions/invoice:nope",
            &service,
            None,
        )
        .await,
        422,
        "unknown_permission",
        "unknown",
    )
    .await;
    call(
        &app,
        Method::DELETE,
        &format!("/organizations/{org}/roles/payer"),
        &owner.token,
        None,
    )
    .await;
    assert_no_content(
        call(
            &app,
            Method::DELETE,
            "/tenant/permissions/invoice:pay",
            &service,
            None,
        )
        .await,
        "retire",
    )
    .await;
    let reply = checks(&app, &owner.token, &[(None, org, "invoice:pay")]).await;
    assert_eq!(
        422, reply.status,
        "a retired name is unknown: {}",
        reply.text
    );
}
