//! What every response carries, and JSON passed through exactly.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::json_number_text;
use crate::helpers::{error_of, spawn_app, Reply, BODY_LIMIT};

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

/// Numbers of `metadata` and `billing_address` in a POST or PATCH body: beyond 64 bits, negative
/// beyond 64 bits, and more decimals than an f64 holds.
const CREATED: [(&str, &str); 6] = [
    ("m_big", "12345678901234567890123"),
    ("m_negative", "-98765432109876543210987"),
    ("m_decimal", "0.1000000000000000055511151231257827"),
    ("a_big", "22345678901234567890123"),
    ("a_negative", "-88765432109876543210987"),
    ("a_decimal", "0.2000000000000000111022302462515654"),
];
const PATCHED: [(&str, &str); 6] = [
    ("m_big", "32345678901234567890123"),
    ("m_negative", "-78765432109876543210987"),
    ("m_decimal", "0.3000000000000000444089209850062616"),
    ("a_big", "42345678901234567890123"),
    ("a_negative", "-68765432109876543210987"),
    ("a_decimal", "0.4000000000000000222044604925031308"),
];

/// `"metadata": {...}, "billing_address": {...}` holding `numbers`, as JSON text (serde_json's
/// `json!` cannot hold them).
fn fields_with(numbers: &[(&str, &str); 6]) -> String {
    let object = |pairs: &[(&str, &str)]| {
        let members: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        format!("{{{}}}", members.join(", "))
    };
    format!(
        "\"metadata\": {}, \"billing_address\": {}",
        object(&numbers[..3]),
        object(&numbers[3..])
    )
}

fn assert_numbers(reply: &Reply, numbers: &[(&str, &str); 6], context: &str) {
    for (key, digits) in numbers {
        assert_eq!(
            Some(*digits),
            json_number_text(&reply.text, key),
            "{context}: {key} should come back as sent, in {}",
            reply.text
        );
    }
}

/// JSON is passed through exactly: a number is not rounded to an f64 on its way to PostgreSQL
/// (jsonb keeps numerics exactly) or back.
#[tokio::test]
async fn json_numbers_round_trip_exactly_through_post_patch_and_get() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let send = |method: Method, path: String, body: Option<String>| {
        let mut request = app.request(method, &path).bearer_auth(&uma.token);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        async move { Reply::read(request.send().await.expect("send the request")).await }
    };

    let body = format!(
        "{{\"name\": \"Numbers\", \"slug\": \"numbers\", {}}}",
        fields_with(&CREATED)
    );
    let created = send(Method::POST, "/organizations".into(), Some(body)).await;
    assert_eq!(201, created.status, "POST: {}", created.text);
    assert_numbers(&created, &CREATED, "POST /organizations");
    let org: Value = serde_json::from_str(&created.text).expect("JSON");
    let path = format!("/organizations/{}", org["id"].as_str().expect("id"));
    for (what, path) in [("GET", path.clone()), ("GET list", "/organizations".into())] {
        let reply = send(Method::GET, path, None).await;
        assert_eq!(200, reply.status, "{what}: {}", reply.text);
        assert_numbers(&reply, &CREATED, what);
    }

    let patched = send(
        Method::PATCH,
        path.clone(),
        Some(format!("{{{}}}", fields_with(&PATCHED))),
    )
    .await;
    assert_eq!(200, patched.status, "PATCH: {}", patched.text);
    assert_numbers(&patched, &PATCHED, "PATCH");
    let reply = send(Method::GET, path, None).await;
    assert_eq!(200, reply.status, "GET after PATCH: {}", reply.text);
    assert_numbers(&reply, &PATCHED, "GET after PATCH");
}

/// Exact numbers have a cost: jsonb prints a number in full, so `1e131071` would come back as
/// 131072 digits in every read of the organization. A number written with an exponent beyond
/// f64's (-324..308, what was accepted before numbers were kept exact) is refused with a 422 naming
/// the field, and so is one that PostgreSQL's numeric cannot hold.
#[tokio::test]
async fn json_numbers_that_would_blow_up_are_422_naming_the_field() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let org = app.new_org(&uma, "acme").await;
    let long_fraction = format!("0.{}1", "0".repeat(17_000));
    let cases: Vec<(&str, Method, String, String, Option<&str>)> = vec![
        (
            "metadata with 1e309",
            Method::POST,
            "/organizations".into(),
            r#"{"name": "A", "slug": "a-1", "metadata": {"x": 1e309}}"#.into(),
            Some("metadata"),
        ),
        (
            "billing_address with 2E-400 in an array",
            Method::POST,
            "/organizations".into(),
            r#"{"name": "B", "slug": "b-1", "billing_address": {"y": [1, 2E-400]}}"#.into(),
            Some("billing_address"),
        ),
        (
            "a PATCH of metadata with 1e1000000",
            Method::PATCH,
            format!("/organizations/{org}"),
            r#"{"metadata": {"x": {"y": 1e1000000}}}"#.into(),
            Some("metadata"),
        ),
        (
            "metadata with 17000 decimals (over numeric's 16383)",
            Method::POST,
            "/organizations".into(),
            format!(r#"{{"name": "C", "slug": "c-1", "metadata": {{"x": {long_fraction}}}}}"#),
            Some("metadata"),
        ),
    ];
    for (description, method, path, body, field) in cases {
        let reply = Reply::read(
            app.request(method.clone(), &path)
                .bearer_auth(&uma.token)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .expect("send the request"),
        )
        .await;
        let context = format!("{method} {path} with {description}");
        let (code, message) = error_of(&reply, 422, &context);
        assert_eq!("invalid_input", code, "{context}: {message}");
        if let Some(field) = field {
            assert!(
                message.contains(field),
                "{context}: {message} should name {field}"
            );
        }
    }
    // The limits themselves are fine.
    let body = r#"{"name": "D", "slug": "d-1", "metadata": {"x": 1e308, "y": -1.5E-308}}"#;
    let reply = Reply::read(
        app.request(Method::POST, "/organizations")
            .bearer_auth(&uma.token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("send the request"),
    )
    .await;
    assert_eq!(
        201, reply.status,
        "exponents of ±308 are accepted: {}",
        reply.text
    );
}
