//! The OpenAPI document: it parses, documents every route the app serves, and documents only
//! routes that exist.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{assert_json, error_of, spawn_app, Reply, TestApp};

/// Every (method, path) in `roster::routes::configure`, PUT aliases included. Keep in step with
/// the route table: `every_listed_route_is_served` fails for a row the app does not serve.
const SERVED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/organizations"),
    ("post", "/organizations"),
    ("get", "/organizations/{org_id}"),
    ("patch", "/organizations/{org_id}"),
    ("put", "/organizations/{org_id}"),
    ("delete", "/organizations/{org_id}"),
    ("get", "/organizations/{org_id}/members"),
    ("post", "/organizations/{org_id}/members"),
    ("patch", "/organizations/{org_id}/members/{user_id}"),
    ("put", "/organizations/{org_id}/members/{user_id}"),
    ("delete", "/organizations/{org_id}/members/{user_id}"),
    ("post", "/organizations/{org_id}/invitations/accept"),
    ("get", "/organizations/{org_id}/me"),
    ("get", "/organizations/{org_id}/audit-events"),
    ("post", "/authz/check"),
    ("get", "/users/{user_id}/organizations"),
    ("get", "/tenant/organizations"),
    ("get", "/tenant/audit-events"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    let doc = assert_json(app.openapi().await, 200, "GET /openapi.json").await;
    assert!(
        doc["paths"].is_object(),
        "the document has a paths object: {doc}"
    );
    doc
}

/// `/organizations/{org_id}` with every `{param}` replaced by a random uuid.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(
            |segment| match segment.starts_with('{') && segment.ends_with('}') {
                true => Uuid::new_v4().to_string(),
                false => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Calls the operation with a valid token (and an empty JSON object as body where one is
/// taken) and asserts that a route answered: neither the JSON 404 `no_route` nor a 405.
async fn assert_served(app: &TestApp, token: &str, method: &str, template: &str, context: &str) {
    let method: Method = method.to_uppercase().parse().expect("an HTTP method");
    let path = concrete(template);
    let mut request = app.request(method.clone(), &path).bearer_auth(token);
    if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
        request = request.header(CONTENT_TYPE, "application/json").body("{}");
    }
    let reply = Reply::read(request.send().await.expect("send the request")).await;
    assert_ne!(
        405, reply.status,
        "{context}: {method} is not served on {path}"
    );
    if reply.status == 404 {
        let (code, message) = error_of(&reply, 404, context);
        assert_ne!(
            code, "no_route",
            "{context}: {method} {path} has no route: {message}"
        );
    }
}

#[tokio::test]
async fn the_document_parses_as_openapi_3() {
    let app = spawn_app().await;

    let doc = document(&app).await;

    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3."),
        "an OpenAPI 3 document, got {version:?}"
    );
    assert_eq!("Roster", doc["info"]["title"], "the title");
    assert_eq!(
        "bearer", doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "the bearer security scheme"
    );
}

#[tokio::test]
async fn every_served_route_is_documented() {
    let app = spawn_app().await;

    let doc = document(&app).await;

    let undocumented: Vec<String> = SERVED
        .iter()
        .filter(|(method, path)| doc["paths"][path][method].is_null())
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "every route the app serves should be in the document's paths; missing: {undocumented:?}"
    );
}

#[tokio::test]
async fn every_listed_route_is_served() {
    let app = spawn_app().await;
    let user = app.user("uma").await;

    for (method, path) in SERVED {
        let context = format!("the route table lists {} {path}", method.to_uppercase());
        assert_served(&app, &user.token, method, path, &context).await;
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let user = app.user("uma").await;
    let doc = document(&app).await;

    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            operations += 1;
            let context = format!("the document lists {} {path}", method.to_uppercase());
            assert_served(&app, &user.token, method, path, &context).await;
        }
    }
    assert!(
        operations >= SERVED.len() - 2,
        "the document lists {operations} operations, fewer than the app serves"
    );
}
