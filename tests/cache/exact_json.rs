//! Cached bodies are the serialized JSON: numbers beyond an f64 come out of Redis as they went
//! into PostgreSQL.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::common::json_number_text;
use crate::helpers::{spawn_app, Reply, TestApp};

const CREATED: [(&str, &str); 4] = [
    ("m_big", "12345678901234567890123"),
    ("m_negative", "-98765432109876543210987"),
    ("m_decimal", "0.1000000000000000055511151231257827"),
    ("a_big", "22345678901234567890123"),
];
const PATCHED: [(&str, &str); 4] = [
    ("m_big", "32345678901234567890123"),
    ("m_negative", "-78765432109876543210987"),
    ("m_decimal", "0.3000000000000000444089209850062616"),
    ("a_big", "42345678901234567890123"),
];

/// `"metadata": {...}, "billing_address": {...}` holding `numbers`, as JSON text.
fn fields_with(n: &[(&str, &str); 4]) -> String {
    format!(
        "\"metadata\": {{\"{}\": {}, \"{}\": {}, \"{}\": {}}}, \"billing_address\": {{\"{}\": {}}}",
        n[0].0, n[0].1, n[1].0, n[1].1, n[2].0, n[2].1, n[3].0, n[3].1
    )
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.header(CONTENT_TYPE, "application/json").body(body);
    }
    let response = request.send().await.expect("send the request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("read the response body");
    Reply { status, text }
}

fn assert_numbers(reply: &Reply, numbers: &[(&str, &str); 4], context: &str) {
    assert_eq!(200, reply.status, "{context}: {}", reply.text);
    for (key, digits) in numbers {
        assert_eq!(
            Some(*digits),
            json_number_text(&reply.text, key),
            "{context}: {key} should come back as sent, in {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn cached_organizations_keep_json_numbers_exact() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let body = format!(
        "{{\"name\": \"Numbers\", \"slug\": \"numbers\", {}}}",
        fields_with(&CREATED)
    );
    let created = send(&app, &uma.token, Method::POST, "/organizations", Some(body)).await;
    assert_eq!(201, created.status, "POST: {}", created.text);
    let org: Value = serde_json::from_str(&created.text).expect("JSON");
    let org: Uuid = org["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    let path = format!("/organizations/{org}");

    for (numbers, stage) in [(&CREATED, "created"), (&PATCHED, "patched")] {
        if stage == "patched" {
            let body = format!("{{{}}}", fields_with(&PATCHED));
            let patched = send(&app, &uma.token, Method::PATCH, &path, Some(body)).await;
            assert_numbers(&patched, &PATCHED, "PATCH");
        }
        // Entries are read after the listener has seen the change, so that none is dropped.
        app.wait_for_minimums(org, uma.id).await;
        for target in [path.as_str(), "/organizations"] {
            let cold = send(&app, &uma.token, Method::GET, target, None).await;
            let context = format!("{stage}: GET {target} (filling the cache)");
            assert_numbers(&cold, numbers, &context);
            let (warm, trips) = app
                .counted(send(&app, &uma.token, Method::GET, target, None))
                .await;
            assert_eq!(0, trips, "{stage}: GET {target} again is answered by Redis");
            assert_numbers(&warm, numbers, &format!("{stage}: GET {target} from Redis"));
        }
    }
}
