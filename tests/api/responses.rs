//! What every response carries, and JSON passed through exactly.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, Reply, BODY_LIMIT};

/// Authorized responses hold emails and billing details: no cache (a browser's, a proxy's) may
/// keep them, and no browser may sniff a JSON body into HTML. Errors and probes too: nothing the
/// API serves is meant to be cached.
#[tokio::test]
async fn every_response_is_no_store_and_nosniff() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let org = app.new_org(&uma, "acme").await;
    let bearer = format!("Bearer {}", uma.token);
    let big = "x".repeat(BODY_LIMIT + 1);
    let cases: Vec<(&str, Method, String, Option<String>, u16)> = vec![
        (
            "the caller's organizations",
            Method::GET,
            "/organizations".into(),
            None,
            200,
        ),
        (
            "an organization",
            Method::GET,
            format!("/organizations/{org}"),
            None,
            200,
        ),
        (
            "members and their emails",
            Method::GET,
            format!("/organizations/{org}/members"),
            None,
            200,
        ),
        (
            "a created organization",
            Method::POST,
            "/organizations".into(),
            Some(json!({"name": "Globex", "slug": "globex"}).to_string()),
            201,
        ),
        (
            "a deleted organization",
            Method::DELETE,
            format!("/organizations/{org}"),
            None,
            204,
        ),
        (
            "an invalid body",
            Method::POST,
            "/organizations".into(),
            Some(json!({"slug": 1}).to_string()),
            422,
        ),
        (
            "a body over the limit",
            Method::POST,
            "/organizations".into(),
            Some(big),
            413,
        ),
        (
            "an unknown route",
            Method::GET,
            "/nowhere".into(),
            None,
            404,
        ),
        ("a wrong method", Method::POST, "/healthz".into(), None, 405),
        ("healthz", Method::GET, "/healthz".into(), None, 200),
        ("readyz", Method::GET, "/readyz".into(), None, 200),
        ("metrics", Method::GET, "/metrics".into(), None, 200),
        (
            "the OpenAPI document",
            Method::GET,
            "/openapi.json".into(),
            None,
            200,
        ),
    ];
    for (description, method, path, body, status) in cases {
        let mut request = app
            .request(method.clone(), &path)
            .header("authorization", &bearer);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let reply = Reply::read(request.send().await.expect("send the request")).await;
        let context = format!("{description} ({method} {path})");
        assert_eq!(
            status, reply.status,
            "{context}: status, body {}",
            reply.text
        );
        assert_eq!(
            Some("no-store"),
            reply.header(CACHE_CONTROL.as_str()),
            "{context}: Cache-Control"
        );
        assert_eq!(
            Some("nosniff"),
            reply.header("x-content-type-options"),
            "{context}: X-Content-Type-Options"
        );
    }
    // No token at all: the 401 too.
    let reply = Reply::read(
        app.request(Method::GET, "/organizations")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(401, reply.status, "no token");
    assert_eq!(
        Some("no-store"),
        reply.header(CACHE_CONTROL.as_str()),
        "a 401: Cache-Control"
    );
    assert_eq!(
        Some("nosniff"),
        reply.header("x-content-type-options"),
        "a 401: X-Content-Type-Options"
    );
}
