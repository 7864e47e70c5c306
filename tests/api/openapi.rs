//! The OpenAPI document: it parses, documents every route the app serves, and documents only
//! routes that exist; every operation declares every status it can answer, with a description;
//! the schemas' constraints are the ones the server applies; and `/docs` serves Swagger UI.
//! Validation against the specification, a generated client, fuzzing and the page in a browser:
//! `.ci/openapi-check.sh`, with outside tools.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_json, error_of, spawn_app, Reply, TestApp};

/// Every (method, path) in `roster::routes::configure`, PUT aliases included. Keep in step with
/// the route table: `every_listed_route_is_served` fails for a row the app does not serve.
const SERVED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
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
    ("get", "/organizations/{org_id}/invitations"),
    ("post", "/organizations/{org_id}/invitations"),
    (
        "delete",
        "/organizations/{org_id}/invitations/{invitation_id}",
    ),
    (
        "post",
        "/organizations/{org_id}/invitations/{invitation_id}/resend",
    ),
    ("get", "/me/invitations"),
    ("post", "/invitations/accept"),
    ("post", "/invitations/decline"),
    ("get", "/organizations/{org_id}/domains"),
    ("post", "/organizations/{org_id}/domains"),
    ("patch", "/organizations/{org_id}/domains/{domain}"),
    ("delete", "/organizations/{org_id}/domains/{domain}"),
    ("post", "/organizations/{org_id}/domains/{domain}/verify"),
    ("get", "/me/suggested-organizations"),
    ("post", "/organizations/{org_id}/join"),
    ("get", "/organizations/{org_id}/me"),
    ("get", "/organizations/{org_id}/audit-events"),
    ("post", "/authz/check"),
    ("get", "/users/{user_id}/organizations"),
    ("get", "/tenant/organizations"),
    ("get", "/tenant/audit-events"),
    ("post", "/authz/explain"),
    (
        "get",
        "/organizations/{org_id}/members/{user_id}/permissions",
    ),
    (
        "get",
        "/organizations/{org_id}/permissions/{permission}/subjects",
    ),
    ("get", "/organizations/{org_id}/roles"),
    ("post", "/organizations/{org_id}/roles"),
    ("get", "/organizations/{org_id}/roles/{key}"),
    ("patch", "/organizations/{org_id}/roles/{key}"),
    ("delete", "/organizations/{org_id}/roles/{key}"),
    ("get", "/tenant/roles"),
    ("post", "/tenant/roles"),
    ("get", "/tenant/roles/{key}"),
    ("patch", "/tenant/roles/{key}"),
    ("delete", "/tenant/roles/{key}"),
    ("get", "/tenant/permissions"),
    ("post", "/tenant/permissions"),
    ("delete", "/tenant/permissions/{name}"),
    ("get", "/organizations/{org_id}/resources"),
    (
        "put",
        "/organizations/{org_id}/resources/{resource_type}/{resource_id}/parent",
    ),
    ("get", "/organizations/{org_id}/groups"),
    ("post", "/organizations/{org_id}/groups"),
    ("get", "/organizations/{org_id}/groups/{key}"),
    ("patch", "/organizations/{org_id}/groups/{key}"),
    ("delete", "/organizations/{org_id}/groups/{key}"),
    ("get", "/organizations/{org_id}/groups/{key}/members"),
    ("post", "/organizations/{org_id}/groups/{key}/members"),
    (
        "get",
        "/organizations/{org_id}/groups/{key}/members/{user_id}",
    ),
    (
        "delete",
        "/organizations/{org_id}/groups/{key}/members/{user_id}",
    ),
    ("get", "/organizations/{org_id}/members/{user_id}/groups"),
    ("get", "/organizations/{org_id}/grants"),
    ("post", "/organizations/{org_id}/grants"),
    ("get", "/organizations/{org_id}/grants/{id}"),
    ("delete", "/organizations/{org_id}/grants/{id}"),
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

// ----------------------------------------------------------------------------------------------
// Every status each operation can give, and a description on each
// ----------------------------------------------------------------------------------------------

/// The routes anyone may call; every other operation takes a bearer token.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/auth/token",
    "/.well-known/jwks.json",
];

/// Operations whose errors come in the shape of OAuth (RFC 6749 section 5.2), not ErrorBody.
const OAUTH: &[&str] = &["POST /auth/token"];

/// Each operation of the document: ("METHOD /path", its path template, the operation).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                let name = format!("{} {path}", method.to_uppercase());
                operations.push((name, path.clone(), operation));
            }
        }
    }
    assert!(!operations.is_empty(), "the document lists operations");
    operations
}

fn parameters_in<'a>(operation: &'a Value, location: &str) -> Vec<&'a Value> {
    operation["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["in"] == location).collect())
        .unwrap_or_default()
}

fn is_secured(operation: &Value) -> bool {
    operation["security"]
        .as_array()
        .is_some_and(|requirements| !requirements.is_empty())
}

/// `status` is declared with the error body (the OAuth one for `OAUTH`) as its JSON content.
fn declares_error(name: &str, operation: &Value, status: &str) -> Result<(), String> {
    let response = &operation["responses"][status];
    if response.is_null() {
        return Err(format!("no {status}"));
    }
    let expected = match OAUTH.contains(&name) {
        true => "#/components/schemas/OAuthErrorBody",
        false => "#/components/schemas/ErrorBody",
    };
    let schema = &response["content"]["application/json"]["schema"]["$ref"];
    match schema.as_str() {
        Some(found) if found == expected => Ok(()),
        _ => Err(format!(
            "{status} without the {expected} schema: {response}"
        )),
    }
}

fn assert_all_declare(doc: &Value, which: &str, applies: fn(&Value) -> bool, statuses: &[&str]) {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, _, operation) in operations(doc) {
        if !applies(operation) {
            continue;
        }
        checked += 1;
        for status in statuses {
            if let Err(problem) = declares_error(&name, operation, status) {
                problems.push(format!("{name}: {problem}"));
            }
        }
    }
    assert!(checked > 0, "some operations are {which}");
    assert!(
        problems.is_empty(),
        "every operation {which} should declare {statuses:?} with the error body: {problems:#?}"
    );
}

#[tokio::test]
async fn every_response_has_a_description() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    let mut undescribed = Vec::new();
    for (name, _, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{name} declares responses");
        for (status, response) in responses {
            if response["description"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                undescribed.push(format!("{name} {status}"));
            }
        }
    }
    assert!(
        undescribed.is_empty(),
        "OpenAPI requires a description on every response; missing on {undescribed:?}"
    );
}

#[tokio::test]
async fn operation_ids_are_unique() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    let mut seen = std::collections::BTreeMap::new();
    for (name, _, operation) in operations(&doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!id.is_empty(), "{name} has an operationId");
        if let Some(other) = seen.insert(id.clone(), name.clone()) {
            panic!("operationId {id} is used by both {other} and {name}");
        }
    }
}

#[tokio::test]
async fn every_authenticated_operation_declares_401_and_503() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    for (name, path, operation) in operations(&doc) {
        assert_eq!(
            !PUBLIC.contains(&path.as_str()),
            is_secured(operation),
            "{name}: only {PUBLIC:?} are documented without bearer security"
        );
        if is_secured(operation) {
            let header = &operation["responses"]["401"]["headers"]["www-authenticate"];
            assert!(header.is_object(), "{name}: 401 declares WWW-Authenticate");
        }
    }
    assert_all_declare(&doc, "with bearer security", is_secured, &["401", "503"]);
}

#[tokio::test]
async fn documented_security_is_what_the_server_enforces() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    for (name, path, operation) in operations(&doc) {
        let method: Method = name.split(' ').next().unwrap().parse().unwrap();
        let mut request = app.request(method, &concrete(&path));
        if !operation["requestBody"].is_null() {
            request = request.header(CONTENT_TYPE, "application/json").body("{}");
        }
        let reply = Reply::read(request.send().await.expect("send the request")).await;
        match is_secured(operation) {
            true => {
                let (code, _) = error_of(&reply, 401, &format!("{name} without a token"));
                assert_eq!("unauthenticated", code, "{name} without a token");
                assert!(
                    reply.header("www-authenticate").is_some(),
                    "{name}: a 401 carries WWW-Authenticate"
                );
            }
            false => assert_ne!(401, reply.status, "{name} is public: {}", reply.text),
        }
    }
}

#[tokio::test]
async fn every_operation_with_a_body_or_query_declares_400_and_422() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    assert_all_declare(
        &doc,
        "with a JSON body",
        |op| !op["requestBody"].is_null(),
        &["400", "413", "422"],
    );
    assert_all_declare(
        &doc,
        "with query parameters",
        |op| !parameters_in(op, "query").is_empty(),
        &["400", "422"],
    );
    assert_all_declare(
        &doc,
        "with uuid path parameters",
        |op| {
            parameters_in(op, "path")
                .iter()
                .any(|p| p["schema"]["format"] == "uuid")
        },
        &["400"],
    );
}

#[tokio::test]
async fn the_400s_declared_for_bodies_and_paths_are_what_the_server_answers() {
    let app = spawn_app().await;
    let user = app.user("uma").await;
    let doc = document(&app).await;

    for (name, path, operation) in operations(&doc) {
        let method: Method = name.split(' ').next().unwrap().parse().unwrap();
        if !operation["requestBody"].is_null() {
            for (content_type, body, what) in [
                ("application/json", "{", "malformed JSON"),
                ("text/plain", "{}", "a text/plain body"),
            ] {
                let request = app
                    .request(method.clone(), &concrete(&path))
                    .bearer_auth(&user.token)
                    .header(CONTENT_TYPE, content_type)
                    .body(body);
                let reply = Reply::read(request.send().await.expect("send")).await;
                if OAUTH.contains(&name.as_str()) {
                    assert_eq!(400, reply.status, "{name} with {what}");
                    assert_eq!(
                        "invalid_request",
                        reply.json()["error"],
                        "{name} with {what}"
                    );
                } else {
                    error_of(&reply, 400, &format!("{name} with {what}"));
                }
            }
        }
        // Only uuid parameters can be malformed (a role key or a permission name is any text).
        let uuids: Vec<String> = parameters_in(operation, "path")
            .iter()
            .filter(|p| p["schema"]["format"] == "uuid")
            .map(|p| format!("{{{}}}", p["name"].as_str().expect("a name")))
            .collect();
        if !uuids.is_empty() {
            let bad = path
                .split('/')
                .map(
                    |s| match (uuids.iter().any(|u| u == s), s.starts_with('{')) {
                        (true, _) => "not-a-uuid".to_owned(),
                        (false, true) => "member".to_owned(),
                        (false, false) => s.to_owned(),
                    },
                )
                .collect::<Vec<_>>()
                .join("/");
            let mut request = app.request(method, &bad).bearer_auth(&user.token);
            if !operation["requestBody"].is_null() {
                request = request.header(CONTENT_TYPE, "application/json").body("{}");
            }
            let reply = Reply::read(request.send().await.expect("send")).await;
            error_of(
                &reply,
                400,
                &format!("{name} with a path parameter that is no uuid"),
            );
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The constraints in the schemas are the ones the server applies
// ----------------------------------------------------------------------------------------------

/// A schema of the document's components.
fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "components.schemas.{name} exists");
    schema
}

/// Whether `value` satisfies `schema`, for the keywords the request schemas use on scalars:
/// type, minLength, maxLength (in characters, as JSON Schema and PostgreSQL count), pattern
/// (unanchored, as JSON Schema reads it).
fn schema_accepts(schema: &Value, value: &Value) -> bool {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => panic!("a type in {schema}"),
    };
    let type_ok = types.iter().any(|t| match *t {
        "string" => value.is_string(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        other => panic!("type {other} in {schema}"),
    });
    let Some(text) = value.as_str() else {
        return type_ok;
    };
    let length = text.chars().count() as u64;
    let min_ok = schema["minLength"].as_u64().is_none_or(|min| length >= min);
    let max_ok = schema["maxLength"].as_u64().is_none_or(|max| length <= max);
    let pattern_ok = schema["pattern"].as_str().is_none_or(|pattern| {
        regex::Regex::new(pattern)
            .unwrap_or_else(|e| panic!("pattern {pattern:?} compiles: {e}"))
            .is_match(text)
    });
    type_ok && min_ok && max_ok && pattern_ok
}

/// Values of each organization field, on both sides of each of its constraints.
fn organization_field_cases() -> Vec<(&'static str, Value)> {
    let s = |text: &str| Value::String(text.to_owned());
    let repeat = |text: &str, n: usize| Value::String(text.repeat(n));
    // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters, labels of at most 63.
    let domain_253 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
    let email_320 = format!("{}@b.co", "a".repeat(315));
    let mut cases = vec![
        ("name", s("Acme")),
        ("name", s("A")),
        ("name", s("  Acme trimmed  ")),
        ("name", s("")),
        ("name", s("   ")),
        ("name", s("\t")),
        ("name", s("a\nb")),
        ("name", repeat("a", 255)),
        ("name", repeat("a", 256)),
        ("name", Value::String(format!("  {}   ", "b".repeat(255)))),
        ("name", Value::String(format!("  {}   ", "b".repeat(256)))),
        ("name", Value::String(format!("a{}a", " ".repeat(253)))),
        ("name", repeat("ü", 255)),
        ("name", repeat("😀", 256)),
        ("name", Value::Null),
        ("name", json!(5)),
        ("slug", s("ab")),
        ("slug", s("a")),
        ("slug", s("a-b")),
        ("slug", s("0-9x")),
        ("slug", repeat("s", 50)),
        ("slug", repeat("t", 51)),
        ("slug", s("-ab")),
        ("slug", s("ab-")),
        ("slug", s("a--b")),
        ("slug", s("Ab")),
        ("slug", s("ab\n")),
        ("slug", s("a_b")),
        ("slug", s("üb")),
        ("slug", Value::Null),
        ("description", s("")),
        ("description", repeat("x", 2000)),
        ("description", repeat("x", 2001)),
        ("description", repeat("é", 2000)),
        ("description", Value::Null),
        ("domain", s("acme.com")),
        ("domain", s("a.b")),
        ("domain", s("localhost")),
        ("domain", s("Acme.com")),
        ("domain", s("-a.com")),
        ("domain", s("a-.com")),
        ("domain", s("a..com")),
        ("domain", s("acme.com\n")),
        ("domain", s("acme.com.")),
        ("domain", Value::String(format!("{}.com", "a".repeat(63)))),
        ("domain", Value::String(format!("{}.com", "a".repeat(64)))),
        ("domain", Value::String(domain_253.clone())),
        ("domain", Value::String(format!("{domain_253}b"))),
        ("domain", Value::Null),
        ("billing_email", s("a@b.co")),
        ("billing_email", s("nope")),
        ("billing_email", s("a@b")),
        ("billing_email", s("a@b@c.de")),
        ("billing_email", s("a@b.c\n")),
        ("billing_email", Value::String(email_320.clone())),
        ("billing_email", Value::String(format!("a{email_320}"))),
        ("billing_email", Value::Null),
        ("stripe_customer_id", s("cus_1")),
        ("stripe_customer_id", s("")),
        ("stripe_customer_id", s("  ")),
        ("stripe_customer_id", s("\t")),
        ("stripe_customer_id", s(" x ")),
        ("stripe_customer_id", repeat("c", 255)),
        ("stripe_customer_id", repeat("c", 256)),
        ("stripe_customer_id", Value::Null),
        ("billing_address", json!({"city": "Springfield"})),
        ("billing_address", json!({})),
        ("billing_address", json!([])),
        ("billing_address", json!("Springfield")),
        ("billing_address", Value::Null),
        ("metadata", json!({"tier": "gold"})),
        ("metadata", json!([1])),
        ("metadata", json!(1)),
        ("metadata", Value::Null),
    ];
    // The email pattern spells out what PostgreSQL's [:space:] matches here: each of those, and
    // the spaces it does not match, on both sides (see also the_email_pattern_...).
    for space in [
        '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
        '\u{2006}', '\u{2007}', '\u{2008}', '\u{200a}', '\u{200b}', '\u{2028}', '\u{2029}',
        '\u{202f}', '\u{205f}', '\u{3000}', '\u{feff}',
    ] {
        cases.push(("billing_email", Value::String(format!("a{space}b@c.de"))));
    }
    cases
}

/// Sends each case to `send` (which answers with a status) and compares what the document's
/// schema `schema_name` says of the value with what the server did.
async fn assert_schema_is_the_server(
    doc: &Value,
    schema_name: &str,
    mut send: impl AsyncFnMut(usize, &str, &Value) -> (u16, String),
) {
    let schema = component(doc, schema_name);
    let mut disagreements = Vec::new();
    for (i, (field, value)) in organization_field_cases().into_iter().enumerate() {
        let property = &schema["properties"][field];
        assert!(property.is_object(), "{schema_name}.{field} is documented");
        let documented = schema_accepts(property, &value);
        let (status, text) = send(i, field, &value).await;
        let accepted = match status {
            200 | 201 => true,
            422 => false,
            other => panic!("{schema_name}.{field} = {value}: status {other}: {text}"),
        };
        if documented != accepted {
            let shown: String = value.to_string().chars().take(80).collect();
            disagreements.push(format!(
                "{field} = {shown} ({} chars): document {}, server {}: {text}",
                value.as_str().map_or(0, |t| t.chars().count()),
                if documented { "accepts" } else { "refuses" },
                if accepted { "accepts" } else { "refuses" },
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "the document's {schema_name} should accept exactly what the server accepts: {disagreements:#?}"
    );
}

#[tokio::test]
async fn new_organization_schema_accepts_exactly_what_the_server_accepts() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let doc = document(&app).await;

    assert_schema_is_the_server(&doc, "NewOrganization", async |i, field, value| {
        let mut body = json!({"name": format!("Case {i}"), "slug": format!("case-{i}")});
        body[field] = value.clone();
        let reply = Reply::read(app.create_organization(&owner.token, &body).await).await;
        (reply.status, reply.text)
    })
    .await;
}

#[tokio::test]
async fn organization_changes_schema_accepts_exactly_what_the_server_accepts() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let org = app.new_org(&owner, "acme").await;
    let doc = document(&app).await;

    assert_schema_is_the_server(&doc, "OrganizationChanges", async |_, field, value| {
        let body = json!({ field: value });
        let reply = Reply::read(app.update_organization(&owner.token, org, &body).await).await;
        (reply.status, reply.text)
    })
    .await;
}

/// The document's numbers are the database's: each appears in the check constraint that
/// enforces it.
#[tokio::test]
async fn organization_schema_bounds_are_the_database_constraints() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schema = component(&doc, "NewOrganization");
    let definition = async |name: &str| -> String {
        app.sql
            .query_one(
                "select pg_get_constraintdef(oid) as def from pg_constraint where conname = $1",
                &[&name],
            )
            .await
            .and_then(|row| row.try_get("def"))
            .unwrap_or_else(|e| panic!("constraint {name}: {e}"))
    };
    let number = |field: &str, keyword: &str| -> u64 {
        schema["properties"][field][keyword]
            .as_u64()
            .unwrap_or_else(|| panic!("{field}.{keyword} in {schema}"))
    };
    let text = |field: &str, keyword: &str| -> String {
        schema["properties"][field][keyword]
            .as_str()
            .unwrap_or_else(|| panic!("{field}.{keyword} in {schema}"))
            .to_owned()
    };

    let expected = [
        (
            "ck_organizations_slug_format",
            vec![
                format!("slug ~ '{}'", text("slug", "pattern")),
                format!("length(slug) >= {}", number("slug", "minLength")),
                format!("length(slug) <= {}", number("slug", "maxLength")),
            ],
        ),
        (
            "ck_organizations_domain_format",
            vec![
                format!("domain ~ '{}'", text("domain", "pattern")),
                format!("length(domain) <= {}", number("domain", "maxLength")),
            ],
        ),
        (
            "ck_organizations_description_length",
            vec![format!(
                "length(description) <= {}",
                number("description", "maxLength")
            )],
        ),
        (
            "ck_organizations_billing_email_format",
            vec![format!(
                "length(billing_email) <= {}",
                number("billing_email", "maxLength")
            )],
        ),
        (
            "ck_organizations_stripe_customer_id_length",
            vec![format!(
                "length(stripe_customer_id) <= {}",
                number("stripe_customer_id", "maxLength")
            )],
        ),
        (
            "ck_organizations_name_length",
            vec![format!("length(name) <= {}", roster::constraints::NAME_MAX)],
        ),
    ];
    for (constraint, fragments) in expected {
        let def = definition(constraint).await;
        for fragment in fragments {
            assert!(
                def.contains(&fragment),
                "{constraint} is {def}: expected {fragment}"
            );
        }
    }
    assert_eq!(
        roster::constraints::name_pattern(),
        text("name", "pattern"),
        "the name pattern"
    );
    assert_eq!(roster::constraints::SLUG_PATTERN, text("slug", "pattern"));
}

/// `[:space:]` in the billing email check matches what the database's character type says;
/// the document's pattern lists those characters, so the list must be the database's.
#[tokio::test]
async fn the_email_pattern_excludes_exactly_the_databases_spaces() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let pattern = component(&doc, "NewOrganization")["properties"]["billing_email"]["pattern"]
        .as_str()
        .expect("billing_email pattern")
        .to_owned();
    let pattern = regex::Regex::new(&pattern).expect("the pattern compiles");
    let rows = app
        .sql
        .query(
            "select c from generate_series(1, 1114111) c \
              where (c < 55296 or c > 57343) and chr(c) ~ '[[:space:]]'",
            &[],
        )
        .await
        .expect("the database's spaces");
    let spaces: Vec<char> = rows
        .iter()
        .map(|row| char::from_u32(row.get::<_, i32>("c") as u32).expect("a character"))
        .collect();
    assert!(spaces.contains(&' '), "the query finds spaces: {spaces:?}");

    for c in (1..=0x10ffff_u32).filter_map(char::from_u32) {
        let documented = pattern.is_match(&format!("a{c}b@c.de"));
        assert_eq!(
            !spaces.contains(&c) && c != '@',
            documented,
            "U+{:04X}: the database's [:space:] is {spaces:?}",
            c as u32
        );
    }
}

#[tokio::test]
async fn page_bounds_in_the_document_are_the_parsers() {
    use roster::domain::Page;

    let app = spawn_app().await;
    let admin = app.tenant_admin("tara").await;
    let org = app.new_org(&admin, "acme").await;
    let group = app
        .request(Method::POST, &format!("/organizations/{org}/groups"))
        .bearer_auth(&admin.token)
        .json(&json!({"key": "team", "name": "Team"}))
        .send()
        .await
        .expect("send");
    assert_json(group, 201, "a group to list the members of").await;
    let doc = document(&app).await;

    let mut listed = 0;
    for (name, path, operation) in operations(&doc) {
        let query = parameters_in(operation, "query");
        if !query.iter().any(|p| p["name"] == "limit") {
            continue;
        }
        listed += 1;
        let param = |wanted: &str| -> &Value {
            let found = query.iter().find(|p| p["name"] == wanted);
            &found.unwrap_or_else(|| panic!("{name} documents {wanted}"))["schema"]
        };
        let limit = param("limit");
        assert_eq!(json!(1), limit["minimum"], "{name}: limit minimum");
        assert_eq!(
            json!(Page::MAX_LIMIT),
            limit["maximum"],
            "{name}: limit maximum"
        );
        assert_eq!(
            json!(Page::DEFAULT_LIMIT),
            limit["default"],
            "{name}: limit default"
        );
        let (low, high) = (
            limit["minimum"].as_i64().unwrap(),
            limit["maximum"].as_i64().unwrap(),
        );
        let mut cases = vec![
            (format!("limit={low}"), 200),
            (format!("limit={high}"), 200),
            (format!("limit={}", low - 1), 422),
            (format!("limit={}", high + 1), 422),
            ("limit=ten".to_owned(), 400),
        ];
        // Lists paged by a cursor alone (resources, by id) have no offset.
        if query.iter().any(|p| p["name"] == "offset") {
            let offset = param("offset");
            assert_eq!(json!(0), offset["minimum"], "{name}: offset minimum");
            // Lists that also page by cursor cap offset; the others take any i32.
            let deepest = match query.iter().any(|p| p["name"] == "after") {
                true => i64::from(Page::MAX_CURSOR_OFFSET),
                false => i64::from(i32::MAX),
            };
            assert_eq!(json!(deepest), offset["maximum"], "{name}: offset maximum");
            cases.extend([
                (format!("offset={deepest}"), 200),
                (format!("offset={}", deepest + 1), 422),
                ("offset=-1".to_owned(), 422),
                ("offset=1.5".to_owned(), 400),
            ]);
        }

        let path = path
            .replace("{org_id}", &org.to_string())
            .replace("{user_id}", &admin.id.to_string())
            .replace("{permission}", "organization:read")
            .replace("{key}", "team");
        // The parameters a list requires besides its page.
        let required = match path.ends_with("/resources") {
            true => "permission=organization:read&resource_type=organization&",
            false => "",
        };
        for (query, status) in cases {
            let response = app
                .request(Method::GET, &format!("{path}?{required}{query}"))
                .bearer_auth(&admin.token)
                .send()
                .await
                .expect("send");
            let reply = Reply::read(response).await;
            assert_eq!(status, reply.status, "{name}?{query}: {}", reply.text);
        }
    }
    assert!(listed >= 5, "the list operations document their pages");
}

#[tokio::test]
async fn check_bounds_in_the_document_are_the_handlers() {
    use roster::routes::authz::MAX_CHECKS;

    let app = spawn_app().await;
    let user = app.user("uma").await;
    let org = app.new_org(&user, "acme").await;
    let doc = document(&app).await;
    let checks = &component(&doc, "CheckRequest")["properties"]["checks"];
    assert_eq!(json!(1), checks["minItems"], "minItems");
    assert_eq!(
        json!(MAX_CHECKS),
        checks["maxItems"],
        "maxItems is MAX_CHECKS"
    );

    let one = json!({"organization_id": org, "permission": "organization:read"});
    let max = checks["maxItems"].as_u64().unwrap() as usize;
    for (count, status) in [(0, 422), (1, 200), (max, 200), (max + 1, 422)] {
        let body = json!({ "checks": vec![one.clone(); count] });
        let response = app
            .request(Method::POST, "/authz/check")
            .bearer_auth(&user.token)
            .json(&body)
            .send()
            .await
            .expect("send");
        let reply = Reply::read(response).await;
        assert_eq!(status, reply.status, "{count} checks: {}", reply.text);
        if status == 200 {
            let answer: Value = serde_json::from_str(&reply.text).expect("JSON");
            assert_eq!(
                count,
                answer["results"].as_array().map_or(0, Vec::len),
                "results"
            );
        }
    }
}

// ----------------------------------------------------------------------------------------------
// GET /docs: Swagger UI from the binary, over this document
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn docs_is_an_html_page_of_this_servers_files_only() {
    let app = spawn_app().await;

    let reply = Reply::read(
        app.request(Method::GET, "/docs")
            .send()
            .await
            .expect("send"),
    )
    .await;

    assert_eq!(200, reply.status, "GET /docs: {}", reply.text);
    assert_eq!(
        Some("text/html; charset=utf-8"),
        reply.header("content-type")
    );
    let policy = reply.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "CSP {policy:?} has {directive}");
    }
    let page = &reply.text;
    let links: Vec<&str> = page
        .split(['"', '\''])
        .skip(1)
        .step_by(2)
        .filter(|v| v.starts_with("docs/") || v.contains("://") || v.starts_with("//"))
        .collect();
    assert!(!links.is_empty(), "the page links its assets: {page}");
    for link in &links {
        assert!(
            link.starts_with("docs/"),
            "{link}: every asset is this server's, by a relative link"
        );
    }
    for asset in roster::routes::docs::ASSETS {
        assert!(
            links.contains(&format!("docs/{}", asset.name).as_str()),
            "the page loads {}",
            asset.name
        );
    }
}

#[tokio::test]
async fn docs_assets_are_served_from_the_binary_with_their_types() {
    let app = spawn_app().await;

    for asset in roster::routes::docs::ASSETS {
        let path = format!("/docs/{}", asset.name);
        let response = app.request(Method::GET, &path).send().await.expect("send");
        assert_eq!(200, response.status().as_u16(), "GET {path}");
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(asset.content_type, content_type, "{path}: content type");
        let nosniff = response.headers().get("x-content-type-options").cloned();
        assert_eq!(
            Some("nosniff"),
            nosniff.as_ref().map(|v| v.to_str().unwrap())
        );
        let bytes = response.bytes().await.expect("read the body");
        assert!(bytes.len() > 100, "{path} is not empty");
        assert_eq!(asset.bytes, &bytes[..], "{path}: the embedded file");
    }
    let missing = app
        .request(Method::GET, "/docs/nope.js")
        .send()
        .await
        .expect("send");
    assert_eq!(404, missing.status().as_u16(), "an unknown asset");
}

#[tokio::test]
async fn docs_start_swagger_ui_on_this_document_offline() {
    let init = roster::routes::docs::ASSETS
        .iter()
        .find(|a| a.name == "init.js")
        .expect("init.js");
    let script = std::str::from_utf8(init.bytes).expect("UTF-8");

    assert!(
        script.contains("url: \"openapi.json\""),
        "loads ./openapi.json: {script}"
    );
    assert!(
        script.contains("validatorUrl: null"),
        "the online validator is off: {script}"
    );
    assert!(!script.contains("://"), "no absolute URL: {script}");
}
