//! `TestApp`: the real application on a free port against a database of its own (zero2prod's
//! `spawn_app`), with one method per endpoint, SQL fixtures, token crafting, and the one
//! assertion every error response goes through.

use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response};
use roster::settings::{JwtKey, JwtSettings, Settings};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::common::{self, TestDatabase, TestLogin};

/// 48 bytes: above the 32-byte minimum the app enforces for HS256.
pub const JWT_SECRET: &[u8] = b"roster-api-tests-hs256-secret-0123456789abcdefgh";
pub const BODY_LIMIT: usize = 64 * 1024;
const TOKEN_TTL_SECONDS: u64 = 3600;

/// The keys of an organization as POST and PATCH return it.
pub const ORGANIZATION_KEYS: &[&str] = &[
    "id",
    "tenant_id",
    "name",
    "slug",
    "description",
    "domain",
    "billing_email",
    "billing_address",
    "stripe_customer_id",
    "metadata",
    "created_at",
    "updated_at",
    "created_by",
    "seat_limit",
];
/// The keys a membership (POST members, PATCH member, accept) has.
pub const MEMBERSHIP_KEYS: &[&str] = &[
    "id",
    "organization_id",
    "user_id",
    "role",
    "status",
    "invited_by_user_id",
    "joined_at",
    "last_active_at",
    "expires_at",
    "created_at",
    "updated_at",
];
/// The keys of an invitation (lists, decline); with `token` where one is issued.
pub const INVITATION_KEYS: &[&str] = &[
    "id",
    "organization_id",
    "organization_name",
    "organization_slug",
    "email",
    "role",
    "status",
    "invited_by_user_id",
    "invited_by_email",
    "user_id",
    "membership_id",
    "expires_at",
    "sent_at",
    "accepted_at",
    "accepted_by_user_id",
    "declined_at",
    "revoked_at",
    "created_at",
    "updated_at",
];
/// The keys of a domain.
pub const DOMAIN_KEYS: &[&str] = &[
    "id",
    "organization_id",
    "domain",
    "status",
    "verification_token",
    "policy",
    "join_role",
    "verified_at",
    "verified_by_user_id",
    "created_by_user_id",
    "created_at",
    "updated_at",
];
/// The keys of a row of GET /organizations/{org_id}/members.
pub const MEMBER_KEYS: &[&str] = &[
    "membership_id",
    "user_id",
    "email",
    "display_name",
    "role",
    "status",
    "invited_by",
    "joined_at",
    "last_active_at",
    "expires_at",
    "created_at",
];

/// How a test wants the app configured; `Default` is the common case.
#[derive(Default)]
pub struct AppOptions {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Route the app's database connections through a proxy the test can cut (503 tests).
    pub through_proxy: bool,
    /// Changes the settings last, just before the app is built (timeouts, pool size).
    pub configure: Option<fn(&mut Settings)>,
    /// Serve through a login of the test's own that is a member of roster_app only
    /// (DATABASE_APP_URL), not as the owner with `set role roster_app`.
    pub app_login: bool,
}

/// A user of the app with a valid token.
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

pub struct TestApp {
    pub address: String,
    pub jwt: JwtSettings,
    /// The tenant that `user` and `tenant_admin` create users in.
    pub tenant: Uuid,
    /// A superuser connection to the test database, for fixtures.
    pub sql: tokio_postgres::Client,
    pub proxy: Option<DbProxy>,
    /// The login the app serves through, with `AppOptions::app_login`.
    pub login: Option<TestLogin>,
    http: reqwest::Client,
    // Held for its Drop, which drops the database; last, so that it goes after its users.
    db: TestDatabase,
}

pub fn jwt_settings(issuer: Option<String>, audience: Option<String>) -> JwtSettings {
    JwtSettings {
        key: JwtKey::Hs256Secret(JWT_SECRET.to_vec()),
        issuer,
        audience,
        leeway_seconds: 5,
        max_lifetime_seconds: roster::settings::DEFAULT_JWT_MAX_LIFETIME_SECONDS,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let jwt = jwt_settings(options.issuer.clone(), options.audience.clone());
    spawn(jwt, options).await
}

/// An app that checks tokens with `jwt`, e.g. an RS256 public key. With a key that cannot sign,
/// `token_for` and the fixtures that give users tokens panic: use `create_user` and sign tokens
/// in the test.
pub async fn spawn_app_with_jwt(jwt: JwtSettings) -> TestApp {
    spawn(jwt, AppOptions::default()).await
}

/// `options.issuer` and `options.audience` are in `jwt` already.
async fn spawn(jwt: JwtSettings, options: AppOptions) -> TestApp {
    let db = common::fresh_database().await;
    let proxy = match options.through_proxy {
        true => Some(DbProxy::start(&db.url).await),
        false => None,
    };
    let database_url = proxy.as_ref().map_or(db.url.clone(), |p| p.url.clone());
    let mut settings = Settings {
        database_role: Some("roster_app".into()),
        bind_addr: "127.0.0.1:0".into(),
        // No cache: every request reads the database (the cache's own tests cover it).
        redis_url: None,
        pool_size: 4,
        pool_timeout: Duration::from_secs(2),
        body_limit: BODY_LIMIT,
        ..Settings::new(database_url, jwt.clone())
    };
    let login = match options.app_login {
        true => Some(TestLogin::create().await),
        false => None,
    };
    if let Some(login) = &login {
        settings.database_app_url = Some(login.url(&db));
        settings.database_role = None;
    }
    if let Some(configure) = options.configure {
        configure(&mut settings);
    }
    let app = roster::startup::Application::build(settings)
        .await
        .expect("build the application");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());

    let sql = db.client().await;
    let tenant = create_tenant(&sql, "acme").await;
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        jwt,
        tenant,
        sql,
        proxy,
        login,
        http: reqwest::Client::new(),
        db,
    }
}

async fn create_tenant(sql: &tokio_postgres::Client, slug: &str) -> Uuid {
    sql.query_one(
        "select roster.create_tenant($1, $2) as id",
        &[&slug, &format!("Tenant {slug}")],
    )
    .await
    .and_then(|row| row.try_get("id"))
    .unwrap_or_else(|e| panic!("create tenant {slug}: {e}"))
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("send the request")
}

// ----------------------------------------------------------------------------------------------
// Fixtures
// ----------------------------------------------------------------------------------------------
impl TestApp {
    /// Another superuser connection to the test database, e.g. to hold a lock while `sql`
    /// watches.
    pub async fn sql_connection(&self) -> tokio_postgres::Client {
        self.db.client().await
    }

    /// A connection to the test database as the login the app serves through
    /// (`AppOptions::app_login`).
    pub async fn login_connection(&self) -> tokio_postgres::Client {
        let login = self.login.as_ref().expect("an app spawned with app_login");
        common::connect(&login.url(&self.db)).await
    }

    pub async fn create_tenant(&self, slug: &str) -> Uuid {
        create_tenant(&self.sql, slug).await
    }

    /// A user of the app's tenant; `name` makes the email (`{name}@example.com`).
    pub async fn user(&self, name: &str) -> TestUser {
        self.user_in(self.tenant, name, false).await
    }

    /// A tenant admin of the app's tenant.
    pub async fn tenant_admin(&self, name: &str) -> TestUser {
        self.user_in(self.tenant, name, true).await
    }

    pub async fn user_in(&self, tenant: Uuid, name: &str, is_tenant_admin: bool) -> TestUser {
        let id = self.create_user(tenant, name, is_tenant_admin).await;
        TestUser {
            id,
            token: self.token_for(id),
            email: format!("{name}@example.com"),
        }
    }

    /// A user (`{name}@example.com`) without a token, for apps whose key cannot sign.
    pub async fn create_user(&self, tenant: Uuid, name: &str, is_tenant_admin: bool) -> Uuid {
        let email = format!("{name}@example.com");
        self.sql
            .query_one(
                "select roster.create_user($1, $2, $3, $4) as id",
                &[&tenant, &email, &name, &is_tenant_admin],
            )
            .await
            .and_then(|row| row.try_get("id"))
            .unwrap_or_else(|e| panic!("create user {email}: {e}"))
    }

    /// A valid token for any id, existing or not.
    pub fn token_for(&self, user: Uuid) -> String {
        roster::auth::issue_token(&self.jwt, user, None, TOKEN_TTL_SECONDS).expect("sign a token")
    }

    pub async fn soft_delete_user(&self, user: Uuid) {
        self.sql
            .execute(
                "update roster.users set deleted_at = now() where id = $1",
                &[&user],
            )
            .await
            .expect("soft-delete a user");
    }

    pub async fn soft_delete_tenant(&self, tenant: Uuid) {
        self.sql
            .execute(
                "update roster.tenants set deleted_at = now() where id = $1",
                &[&tenant],
            )
            .await
            .expect("soft-delete a tenant");
    }

    /// Creates an organization through the API (named after its slug) and returns its id.
    pub async fn new_org(&self, owner: &TestUser, slug: &str) -> Uuid {
        let body = json!({"name": format!("Org {slug}"), "slug": slug});
        let response = self.create_organization(&owner.token, &body).await;
        let org = assert_json(response, 201, &format!("create organization {slug}")).await;
        uuid_at(&org, "id")
    }

    /// Adds (or invites) `user` through the API, asserting 201.
    pub async fn new_member(
        &self,
        actor: &TestUser,
        org: Uuid,
        user: &TestUser,
        role: &str,
        status: &str,
    ) {
        let body = json!({"user_id": user.id, "role": role, "status": status});
        let response = self.add_member(&actor.token, org, &body).await;
        assert_json(
            response,
            201,
            &format!("add {} as {role} ({status})", user.email),
        )
        .await;
    }
}

// ----------------------------------------------------------------------------------------------
// One method per endpoint. Path parameters are `Display` so that tests can pass malformed ids;
// `query` is the raw query string ("" for none).
// ----------------------------------------------------------------------------------------------
impl TestApp {
    pub fn url(&self, path: &str, query: &str) -> String {
        match query {
            "" => format!("{}{path}", self.address),
            query => format!("{}{path}?{query}", self.address),
        }
    }

    /// A request without credentials, for what the endpoint methods cannot express.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path, ""))
    }

    fn authed(&self, method: Method, path: &str, query: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path, query))
            .bearer_auth(token)
    }

    pub async fn create_organization(&self, token: &str, body: &Value) -> Response {
        send(
            self.authed(Method::POST, "/organizations", "", token)
                .json(body),
        )
        .await
    }

    pub async fn list_organizations(&self, token: &str, query: &str) -> Response {
        send(self.authed(Method::GET, "/organizations", query, token)).await
    }

    pub async fn get_organization(&self, token: &str, org: impl Display) -> Response {
        send(self.authed(Method::GET, &format!("/organizations/{org}"), "", token)).await
    }

    pub async fn update_organization(
        &self,
        token: &str,
        org: impl Display,
        body: &Value,
    ) -> Response {
        let path = format!("/organizations/{org}");
        send(self.authed(Method::PATCH, &path, "", token).json(body)).await
    }

    pub async fn put_organization(&self, token: &str, org: impl Display, body: &Value) -> Response {
        let path = format!("/organizations/{org}");
        send(self.authed(Method::PUT, &path, "", token).json(body)).await
    }

    pub async fn delete_organization(&self, token: &str, org: impl Display) -> Response {
        send(self.authed(Method::DELETE, &format!("/organizations/{org}"), "", token)).await
    }

    pub async fn add_member(&self, token: &str, org: impl Display, body: &Value) -> Response {
        let path = format!("/organizations/{org}/members");
        send(self.authed(Method::POST, &path, "", token).json(body)).await
    }

    pub async fn list_members(&self, token: &str, org: impl Display, query: &str) -> Response {
        let path = format!("/organizations/{org}/members");
        send(self.authed(Method::GET, &path, query, token)).await
    }

    pub async fn update_member(
        &self,
        token: &str,
        org: impl Display,
        user: impl Display,
        body: &Value,
    ) -> Response {
        let path = format!("/organizations/{org}/members/{user}");
        send(self.authed(Method::PATCH, &path, "", token).json(body)).await
    }

    pub async fn put_member(
        &self,
        token: &str,
        org: impl Display,
        user: impl Display,
        body: &Value,
    ) -> Response {
        let path = format!("/organizations/{org}/members/{user}");
        send(self.authed(Method::PUT, &path, "", token).json(body)).await
    }

    pub async fn remove_member(
        &self,
        token: &str,
        org: impl Display,
        user: impl Display,
    ) -> Response {
        let path = format!("/organizations/{org}/members/{user}");
        send(self.authed(Method::DELETE, &path, "", token)).await
    }

    pub async fn accept_invitation(&self, token: &str, org: impl Display) -> Response {
        let path = format!("/organizations/{org}/invitations/accept");
        send(self.authed(Method::POST, &path, "", token)).await
    }

    pub async fn list_user_organizations(
        &self,
        token: &str,
        user: impl Display,
        query: &str,
    ) -> Response {
        let path = format!("/users/{user}/organizations");
        send(self.authed(Method::GET, &path, query, token)).await
    }

    pub async fn list_tenant_organizations(&self, token: &str, query: &str) -> Response {
        send(self.authed(Method::GET, "/tenant/organizations", query, token)).await
    }

    /// `POST /organizations/{org}/invitations`: one invitation, or `{"invitations": [...]}`.
    pub async fn invite(&self, token: &str, org: impl Display, body: &Value) -> Response {
        let path = format!("/organizations/{org}/invitations");
        send(self.authed(Method::POST, &path, "", token).json(body)).await
    }

    pub async fn list_invitations(&self, token: &str, org: impl Display, query: &str) -> Response {
        let path = format!("/organizations/{org}/invitations");
        send(self.authed(Method::GET, &path, query, token)).await
    }

    pub async fn resend_invitation(
        &self,
        token: &str,
        org: impl Display,
        invitation: impl Display,
    ) -> Response {
        let path = format!("/organizations/{org}/invitations/{invitation}/resend");
        send(self.authed(Method::POST, &path, "", token)).await
    }

    pub async fn revoke_invitation(
        &self,
        token: &str,
        org: impl Display,
        invitation: impl Display,
    ) -> Response {
        let path = format!("/organizations/{org}/invitations/{invitation}");
        send(self.authed(Method::DELETE, &path, "", token)).await
    }

    pub async fn my_invitations(&self, token: &str, query: &str) -> Response {
        send(self.authed(Method::GET, "/me/invitations", query, token)).await
    }

    pub async fn accept_invitation_token(&self, token: &str, invitation_token: &str) -> Response {
        let body = serde_json::json!({ "token": invitation_token });
        send(
            self.authed(Method::POST, "/invitations/accept", "", token)
                .json(&body),
        )
        .await
    }

    pub async fn decline_invitation_token(&self, token: &str, invitation_token: &str) -> Response {
        let body = serde_json::json!({ "token": invitation_token });
        send(
            self.authed(Method::POST, "/invitations/decline", "", token)
                .json(&body),
        )
        .await
    }

    pub async fn list_domains(&self, token: &str, org: impl Display) -> Response {
        let path = format!("/organizations/{org}/domains");
        send(self.authed(Method::GET, &path, "", token)).await
    }

    pub async fn add_domain(&self, token: &str, org: impl Display, body: &Value) -> Response {
        let path = format!("/organizations/{org}/domains");
        send(self.authed(Method::POST, &path, "", token).json(body)).await
    }

    pub async fn update_domain(
        &self,
        token: &str,
        org: impl Display,
        domain: &str,
        body: &Value,
    ) -> Response {
        let path = format!("/organizations/{org}/domains/{domain}");
        send(self.authed(Method::PATCH, &path, "", token).json(body)).await
    }

    pub async fn remove_domain(&self, token: &str, org: impl Display, domain: &str) -> Response {
        let path = format!("/organizations/{org}/domains/{domain}");
        send(self.authed(Method::DELETE, &path, "", token)).await
    }

    pub async fn verify_domain(&self, token: &str, org: impl Display, domain: &str) -> Response {
        let path = format!("/organizations/{org}/domains/{domain}/verify");
        send(self.authed(Method::POST, &path, "", token)).await
    }

    pub async fn suggested_organizations(&self, token: &str) -> Response {
        send(self.authed(Method::GET, "/me/suggested-organizations", "", token)).await
    }

    pub async fn join_organization(&self, token: &str, org: impl Display) -> Response {
        let path = format!("/organizations/{org}/join");
        send(self.authed(Method::POST, &path, "", token)).await
    }

    pub async fn list_audit_events(&self, token: &str, org: impl Display, query: &str) -> Response {
        let path = format!("/organizations/{org}/audit-events");
        send(self.authed(Method::GET, &path, query, token)).await
    }

    pub async fn healthz(&self) -> Response {
        send(self.request(Method::GET, "/healthz")).await
    }

    pub async fn readyz(&self) -> Response {
        send(self.request(Method::GET, "/readyz")).await
    }

    pub async fn openapi(&self) -> Response {
        send(self.request(Method::GET, "/openapi.json")).await
    }
}

// ----------------------------------------------------------------------------------------------
// Assertions
// ----------------------------------------------------------------------------------------------

/// The status, headers and body of a response, read once, so that a failed assertion can show
/// the body.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn read(response: Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        Reply {
            status,
            headers,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text))
    }
}

/// Every error response goes through here: the status, a JSON content type, and a body that is
/// exactly `{"error": {"code": string, "message": string}}` with a non-empty message. Returns
/// the code and the message.
pub async fn error_body(response: Response, status: u16, context: &str) -> (String, String) {
    let reply = Reply::read(response).await;
    error_of(&reply, status, context)
}

/// [`error_body`] for a reply already read.
pub fn error_of(reply: &Reply, status: u16, context: &str) -> (String, String) {
    check_error(reply, status).unwrap_or_else(|problem| panic!("{context}: {problem}"))
}

/// What is wrong with `reply` as an error response of this status, if anything.
pub fn check_error(reply: &Reply, status: u16) -> Result<(String, String), String> {
    if reply.status != status {
        return Err(format!(
            "expected status {status}, got {} with body {:?}",
            reply.status, reply.text
        ));
    }
    let content_type = reply.header(CONTENT_TYPE.as_str()).unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "an error should be JSON, got content type {content_type:?} and body {:?}",
            reply.text
        ));
    }
    let body: Value = serde_json::from_str(&reply.text)
        .map_err(|e| format!("error body is not JSON ({e}): {:?}", reply.text))?;
    let keys = |value: &Value| -> Vec<String> {
        value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    if keys(&body) != ["error"] {
        return Err(format!(
            "error body should be {{\"error\": ...}}, got {body}"
        ));
    }
    let mut detail = keys(&body["error"]);
    detail.sort_unstable();
    if detail != ["code", "message"] {
        return Err(format!(
            "error should hold exactly code and message, got {body}"
        ));
    }
    match (
        body["error"]["code"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) if !code.is_empty() && !message.is_empty() => {
            Ok((code.to_owned(), message.to_owned()))
        }
        _ => Err(format!(
            "error code and message should be non-empty strings, got {body}"
        )),
    }
}

/// [`error_body`], and the code is `code`. Returns the message.
pub async fn assert_error(response: Response, status: u16, code: &str, context: &str) -> String {
    let (actual, message) = error_body(response, status, context).await;
    assert_eq!(code, actual, "{context}: error code (message: {message})");
    message
}

/// A successful JSON response with this status; returns the body.
pub async fn assert_json(response: Response, status: u16, context: &str) -> Value {
    let reply = Reply::read(response).await;
    assert_eq!(
        status, reply.status,
        "{context}: expected status {status}, body: {}",
        reply.text
    );
    serde_json::from_str(&reply.text)
        .unwrap_or_else(|e| panic!("{context}: body is not JSON ({e}): {:?}", reply.text))
}

/// 204 with an empty body.
pub async fn assert_no_content(response: Response, context: &str) {
    let reply = Reply::read(response).await;
    assert_eq!(204, reply.status, "{context}: body: {}", reply.text);
    assert_eq!("", reply.text, "{context}: a 204 has no body");
}

/// `value` is an object with exactly these keys.
pub fn assert_keys(value: &Value, keys: &[&str], context: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{context}: expected an object, got {value}"));
    let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected = keys.to_vec();
    actual.sort_unstable();
    expected.sort_unstable();
    assert_eq!(expected, actual, "{context}: keys of {value}");
}

/// A `{"data": [...], "has_more": bool}` page (and `next_after` when a list paged by cursor
/// has more); returns the rows and has_more.
pub fn page_of(body: &Value, context: &str) -> (Vec<Value>, bool) {
    match body.get("next_after") {
        Some(after) => {
            assert!(
                after.is_string(),
                "{context}: next_after is a cursor: {body}"
            );
            assert_eq!(
                body["has_more"], true,
                "{context}: next_after only with has_more: {body}"
            );
            assert_keys(body, &["data", "has_more", "next_after"], context);
        }
        None => assert_keys(body, &["data", "has_more"], context),
    }
    let data = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{context}: data should be an array: {body}"))
        .clone();
    let has_more = body["has_more"]
        .as_bool()
        .unwrap_or_else(|| panic!("{context}: has_more should be a boolean: {body}"));
    (data, has_more)
}

/// A 200 page from a list endpoint.
pub async fn assert_page(response: Response, context: &str) -> (Vec<Value>, bool) {
    let body = assert_json(response, 200, context).await;
    page_of(&body, context)
}

pub fn uuid_at(value: &Value, key: &str) -> Uuid {
    value[key]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{key} should be a uuid in {value}"))
}

/// The values of `key` in each row, as strings.
pub fn column(rows: &[Value], key: &str) -> Vec<String> {
    rows.iter()
        .map(|row| match &row[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

// ----------------------------------------------------------------------------------------------
// Tokens crafted by hand, for the tests of what the app must refuse
// ----------------------------------------------------------------------------------------------

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Signs any claims with any HMAC algorithm and secret.
pub fn sign(algorithm: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("sign test claims")
}

/// `base64url(header).base64url(claims).signature`, for headers no library will sign.
pub fn hand_built_token(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    )
}

/// Unpadded base64url (RFC 4648 section 5), as JWTs use.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // 1 byte gives 2 characters, 2 give 3, 3 give 4.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The bytes of unpadded base64url text (`base64url`'s inverse), e.g. a JWT's parts.
pub fn base64url_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

// ----------------------------------------------------------------------------------------------
// A TCP proxy in front of PostgreSQL that a test can cut, to make the database unreachable
// ----------------------------------------------------------------------------------------------
pub struct DbProxy {
    /// The database URL with the proxy's address in place of the server's.
    pub url: String,
    accept: JoinHandle<()>,
    relays: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl DbProxy {
    pub async fn start(database_url: &str) -> DbProxy {
        let config: tokio_postgres::Config = database_url.parse().expect("parse the database URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            other => panic!("the proxy needs a TCP database host, got {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = format!("{host}:{port}");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = replace_authority_host(
            database_url,
            &format!(
                "127.0.0.1:{}",
                listener.local_addr().expect("proxy address").port()
            ),
        );
        let relays: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let relays = Arc::clone(&relays);
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    let relay = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    relays.lock().expect("relay list").push(relay);
                }
            }
        });
        DbProxy {
            url,
            accept,
            relays,
        }
    }

    /// Closes the listening port and every relayed connection: the database is now unreachable.
    pub fn cut(&self) {
        self.accept.abort();
        for relay in self.relays.lock().expect("relay list").iter() {
            relay.abort();
        }
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// `postgres://user:pw@host:port/db?x` with `host:port` replaced.
fn replace_authority_host(url: &str, host_port: &str) -> String {
    let start = url.find("://").expect("a URL") + 3;
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    format!(
        "{}{}{host_port}{}",
        &url[..start],
        &authority[..host_start],
        &url[end..]
    )
}

#[test]
fn base64url_matches_rfc_4648_vectors() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(
            expected,
            base64url(input.as_bytes()),
            "base64url({input:?})"
        );
    }
    assert_eq!("-_8", base64url(&[0xfb, 0xff]), "the URL-safe alphabet");
}

#[test]
fn replace_authority_host_keeps_credentials_path_and_query() {
    assert_eq!(
        "postgres://u:p@127.0.0.1:1/db?sslmode=disable",
        replace_authority_host(
            "postgres://u:p@10.0.0.1:5432/db?sslmode=disable",
            "127.0.0.1:1"
        )
    );
    assert_eq!(
        "postgres://127.0.0.1:1/db",
        replace_authority_host("postgres://localhost/db", "127.0.0.1:1")
    );
}
