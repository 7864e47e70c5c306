//! Checks and effective permissions stay exact when roles and the permission catalogue change,
//! through the API, through the SQL functions in psql, and by raw SQL; and such a change in one
//! tenant leaves the other tenant's entries warm.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, wait_for, Reply, TestApp, INVALIDATION_DEADLINE};

/// A service's check of (user, org, permission): Some(allowed), or None for a 422.
async fn check(
    app: &TestApp,
    token: &str,
    user: Uuid,
    org: Uuid,
    permission: &str,
) -> Option<bool> {
    let body =
        json!({"checks": [{"organization_id": org, "permission": permission, "user_id": user}]});
    let reply: Reply = app
        .send(
            reqwest::Method::POST,
            "/authz/check",
            Some(token),
            Some(&body),
        )
        .await;
    match reply.status {
        200 => reply.json()["results"][0]["allowed"].as_bool(),
        422 => None,
        _ => panic!("check: {reply:?}"),
    }
}

/// Waits until the check answers `expected` (cached answers included), after a change.
async fn until(
    app: &TestApp,
    what: &str,
    token: &str,
    user: Uuid,
    org: Uuid,
    permission: &str,
    expected: Option<bool>,
) {
    wait_for(what, INVALIDATION_DEADLINE, || async {
        (check(app, token, user, org, permission).await == expected).then_some(())
    })
    .await;
    let (answer, trips) = app.counted(check(app, token, user, org, permission)).await;
    assert_eq!(answer, expected, "{what}: cached after the change");
    assert_eq!(0, trips, "{what}: the new answer is cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_and_catalogue_edits_are_seen_from_every_door() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let approver = app.user("approver").await;
    let org = app.org(&owner, "acme").await;
    let service = app.service_token(app.tenant);
    let register = |names: &[&str]| {
        let items: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
        json!(items)
    };
    let reply = app
        .send(
            reqwest::Method::POST,
            "/tenant/permissions",
            Some(&service),
            Some(&register(&["invoice:read", "invoice:approve"])),
        )
        .await;
    assert_eq!(200, reply.status, "{reply:?}");
    let role = json!({"key": "approver", "name": "Approver", "permissions": ["organization:read", "invoice:*"]});
    let reply = app
        .send(
            reqwest::Method::POST,
            &format!("/organizations/{org}/roles"),
            Some(&owner.token),
            Some(&role),
        )
        .await;
    assert_eq!(201, reply.status, "{reply:?}");
    app.add(&owner, org, &approver, "approver").await;
    // Another tenant's cached check, which none of this may touch.
    let other_tenant = app.create_tenant("globex").await;
    let other_owner = app.user_in(other_tenant, "other", false).await;
    let other_org = app.org(&other_owner, "globex").await;
    let other_service = app.service_token(other_tenant);
    assert_eq!(
        Some(true),
        check(
            &app,
            &other_service,
            other_owner.id,
            other_org,
            "organization:delete"
        )
        .await
    );

    until(
        &app,
        "warm",
        &service,
        approver.id,
        org,
        "invoice:read",
        Some(true),
    )
    .await;
    // The role, through the API...
    let narrow = json!({"permissions": ["organization:read"]});
    let reply = app
        .send(
            reqwest::Method::PATCH,
            &format!("/organizations/{org}/roles/approver"),
            Some(&owner.token),
            Some(&narrow),
        )
        .await;
    assert_eq!(200, reply.status, "{reply:?}");
    until(
        &app,
        "narrowed through the API",
        &service,
        approver.id,
        org,
        "invoice:read",
        Some(false),
    )
    .await;
    // ... a function in psql ...
    app.exec(
        "select roster.update_role($1, $2, 'approver', '{\"permissions\": [\"organization:read\", \"invoice:*\"]}')",
        &[&owner.id, &org],
    )
    .await;
    until(
        &app,
        "widened by update_role in psql",
        &service,
        approver.id,
        org,
        "invoice:read",
        Some(true),
    )
    .await;
    // ... raw SQL.
    app.exec(
        "update roster.roles set permissions = array['organization:read'] where key = 'approver'",
        &[],
    )
    .await;
    until(
        &app,
        "narrowed by raw SQL",
        &service,
        approver.id,
        org,
        "invoice:read",
        Some(false),
    )
    .await;
    app.exec("update roster.roles set permissions = array['organization:read', 'invoice:*'] where key = 'approver'", &[]).await;
    until(
        &app,
        "widened by raw SQL",
        &service,
        approver.id,
        org,
        "invoice:read",
        Some(true),
    )
    .await;

    // The catalogue: invoice:* covers a name once it is registered, from each door.
    until(
        &app,
        "unknown yet",
        &service,
        approver.id,
        org,
        "invoice:void",
        None,
    )
    .await;
    let reply = app
        .send(
            reqwest::Method::POST,
            "/tenant/permissions",
            Some(&service),
            Some(&register(&["invoice:void"])),
        )
        .await;
    assert_eq!(200, reply.status, "{reply:?}");
    until(
        &app,
        "registered through the API",
        &service,
        approver.id,
        org,
        "invoice:void",
        Some(true),
    )
    .await;
    until(
        &app,
        "unknown yet",
        &service,
        approver.id,
        org,
        "invoice:pay",
        None,
    )
    .await;
    app.exec(
        "select * from roster.register_permissions($1, '[{\"name\": \"invoice:pay\"}]')",
        &[&app.tenant],
    )
    .await;
    until(
        &app,
        "registered in psql",
        &service,
        approver.id,
        org,
        "invoice:pay",
        Some(true),
    )
    .await;
    until(
        &app,
        "unknown yet",
        &service,
        approver.id,
        org,
        "invoice:refund",
        None,
    )
    .await;
    app.exec(
        "insert into roster.tenant_permissions (tenant_id, name) values ($1, 'invoice:refund')",
        &[&app.tenant],
    )
    .await;
    until(
        &app,
        "inserted by raw SQL",
        &service,
        approver.id,
        org,
        "invoice:refund",
        Some(true),
    )
    .await;
    app.exec(
        "delete from roster.tenant_permissions where name = 'invoice:refund'",
        &[],
    )
    .await;
    until(
        &app,
        "retired by raw SQL",
        &service,
        approver.id,
        org,
        "invoice:refund",
        None,
    )
    .await;

    let (answer, trips) = app
        .counted(check(
            &app,
            &other_service,
            other_owner.id,
            other_org,
            "organization:delete",
        ))
        .await;
    assert_eq!(
        (Some(true), 0),
        (answer, trips),
        "the other tenant's entry stayed warm"
    );
}
