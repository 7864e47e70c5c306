//! `POST /authz/check` and `roster.has_permission` answer the same question the same way: the
//! same table of (who, where, what) at both doors, an unknown permission name refused at both.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, assert_json, spawn_app, TestApp};

async fn check(app: &TestApp, token: &str, checks: &[(Uuid, &str)]) -> reqwest::Response {
    let checks: Vec<Value> = checks
        .iter()
        .map(|(org, permission)| json!({"organization_id": org, "permission": permission}))
        .collect();
    app.request(reqwest::Method::POST, "/authz/check")
        .bearer_auth(token)
        .json(&json!({ "checks": checks }))
        .send()
        .await
        .expect("send the request")
}

/// has_permission's answer, or its SQLSTATE.
async fn has_permission(
    app: &TestApp,
    user: Uuid,
    org: Uuid,
    permission: &str,
) -> Result<bool, String> {
    app.sql
        .query_one(
            "select roster.has_permission($1, $2, $3) as allowed",
            &[&user, &org, &permission],
        )
        .await
        .map(|row| row.get("allowed"))
        .map_err(|e| {
            e.code()
                .map_or("(none)".to_owned(), |c| c.code().to_owned())
        })
}

#[tokio::test]
async fn checks_answer_as_has_permission_does() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let member = app.user("mia").await;
    let outsider = app.user("oscar").await;
    let tenant_admin = app.tenant_admin("tess").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    app.new_member(&owner, org, &member, "member", "active")
        .await;
    let permissions = [
        "organization:read",
        "organization:delete",
        "members:invite",
        "members:update_role",
        "members:manage_owners",
        "audit:read",
    ];
    for user in [&owner, &admin, &member, &outsider, &tenant_admin] {
        let checks: Vec<(Uuid, &str)> = permissions.iter().map(|p| (org, *p)).collect();
        let reply = assert_json(check(&app, &user.token, &checks).await, 200, "checks").await;
        for (i, permission) in permissions.iter().enumerate() {
            let sql = has_permission(&app, user.id, org, permission).await;
            assert_eq!(
                Ok(reply["results"][i]["allowed"].as_bool().expect("allowed")),
                sql,
                "{} may {permission}: HTTP and SQL agree",
                user.email
            );
        }
    }
    // Only owners change roles.
    assert_eq!(
        Ok(false),
        has_permission(&app, admin.id, org, "members:update_role").await
    );
}

#[tokio::test]
async fn an_unknown_permission_is_refused_at_both_doors() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let outsider = app.user("oscar").await;
    let org = app.new_org(&owner, "acme").await;
    for (who, token, user) in [
        ("a member", &owner.token, owner.id),
        ("a stranger", &outsider.token, outsider.id),
    ] {
        let checks = [(org, "organization:read"), (org, "members:reed")];
        let message = assert_error(
            check(&app, token, &checks).await,
            422,
            "unknown_permission",
            &format!("{who} checking a typo"),
        )
        .await;
        assert!(
            message.contains("checks[1].permission") && message.contains("members:reed"),
            "the message names the check and the name: {message}"
        );
        assert_eq!(
            Err("RUPRM".to_owned()),
            has_permission(&app, user, org, "members:reed").await,
            "{who}: has_permission refuses the typo too"
        );
    }
}
