//! `TestApp` for the cache tests: the real application on a free port, against a database of
//! its own and a Redis key namespace of its own (so that tests sharing the Redis at
//! 127.0.0.1:6379 never see each other's keys), with one method per endpoint, SQL fixtures,
//! metric readers, a poller, a fill-hook gate for the read–invalidate race, a private
//! `redis-server` that a test may stop, and a TCP proxy that can freeze the change listener's
//! connection.

use std::future::Future;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use roster::cache::{DepKind, FillHook};
use roster::settings::{JwtKey, JwtSettings, Settings};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::common::{self, TestDatabase};

/// 48 bytes: above the 32-byte minimum the app enforces for HS256.
const JWT_SECRET: &[u8] = b"roster-cache-tests-hs256-secret-0123456789abcdef";
/// The secret cache entries are authenticated with.
pub const CACHE_KEY: &[u8] = b"roster-cache-tests-hmac-key-0123456789abcdef";
const TOKEN_TTL_SECONDS: u64 = 3600;
/// The Redis every test uses unless it brings its own (`make redis` starts it).
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// How long the app waits for Redis before serving from the database.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a committed change may take to reach every reader before a test calls it stale.
pub const INVALIDATION_DEADLINE: Duration = Duration::from_secs(1);

/// How a test wants the app configured; `Default` is the shared Redis and no hook.
pub struct AppOptions {
    /// None: no cache at all (REDIS_URL unset).
    pub redis_url: Option<String>,
    pub fill_hook: Option<FillHook>,
    /// Route the app's database connections (pool and listener) through a proxy.
    pub through_proxy: bool,
    /// `redis_url` lists the seed nodes of a Redis Cluster (REDIS_CLUSTER).
    pub redis_cluster: bool,
    /// Wait until `/readyz` reports the cache ok (disabled without Redis) before returning.
    pub wait_for_cache: bool,
    /// CACHE_NEAR_ENTRIES: 0 makes every lookup ask Redis, for tests of what Redis holds.
    pub near_entries: usize,
}

impl Default for AppOptions {
    fn default() -> AppOptions {
        AppOptions {
            redis_url: Some(SHARED_REDIS_URL.to_owned()),
            fill_hook: None,
            through_proxy: false,
            redis_cluster: false,
            wait_for_cache: true,
            near_entries: 50_000,
        }
    }
}

/// A user of the app with a valid token.
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

/// A response read once: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text))
    }
}

pub struct TestApp {
    pub address: String,
    /// The tenant fixtures are created in.
    pub tenant: Uuid,
    /// A superuser connection to the test database, for fixtures and raw-SQL changes.
    pub sql: tokio_postgres::Client,
    /// The prefix of every Redis key this app writes.
    pub namespace: String,
    pub redis_url: Option<String>,
    /// The app's cache, to read the minimum versions its listener recorded.
    pub cache: Option<std::sync::Arc<roster::cache::Cache>>,
    pub proxy: Option<DbProxy>,
    jwt: JwtSettings,
    http: reqwest::Client,
    // Last: the database is dropped after everything that uses it (shared by the instances
    // of `spawn_instance_of`).
    db: Arc<TestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let db = Arc::new(common::fresh_database().await);
    let namespace = format!("test-{}", Uuid::new_v4());
    start(db, namespace, None, options).await
}

/// Another instance of `app`'s deployment: the same database, tenant, Redis and namespace (the
/// Redis of `options` must be `app`'s), its own process state and listener.
pub async fn spawn_instance_of(app: &TestApp, options: AppOptions) -> TestApp {
    assert_eq!(app.redis_url, options.redis_url, "one Redis per deployment");
    start(
        app.db.clone(),
        app.namespace.clone(),
        Some(app.tenant),
        options,
    )
    .await
}

/// Starts an app on `db`, creating the tenant unless given.
async fn start(
    db: Arc<TestDatabase>,
    namespace: String,
    tenant: Option<Uuid>,
    options: AppOptions,
) -> TestApp {
    // The app's errors (500s) show in a failed test's output; RUST_LOG=info shows more.
    let _ = env_logger::builder().is_test(true).try_init();
    let proxy = match options.through_proxy {
        true => Some(DbProxy::start(&db.url).await),
        false => None,
    };
    let jwt = JwtSettings {
        key: JwtKey::Hs256Secret(JWT_SECRET.to_vec()),
        issuer: None,
        audience: None,
        leeway_seconds: 5,
        max_lifetime_seconds: roster::settings::DEFAULT_JWT_MAX_LIFETIME_SECONDS,
    };
    let database_url = proxy.as_ref().map_or(db.url.clone(), |p| p.url.clone());
    let settings = Settings {
        database_role: Some("roster_app".into()),
        bind_addr: "127.0.0.1:0".into(),
        redis_url: options.redis_url.clone(),
        redis_cluster: options.redis_cluster,
        cache_namespace: namespace.clone(),
        cache_key: Some(CACHE_KEY.to_vec()),
        redis_timeout: REDIS_TIMEOUT,
        cache_ttl_seconds: 300,
        cache_near_entries: options.near_entries,
        pool_size: 4,
        pool_timeout: Duration::from_secs(2),
        body_limit: 64 * 1024,
        ..Settings::new(database_url, jwt.clone())
    };
    let app = roster::startup::Application::build_with(settings, options.fill_hook)
        .await
        .expect("build the application");
    let port = app.port();
    let cache = app.cache();
    tokio::spawn(app.run_until_stopped());

    let sql = db.client().await;
    let tenant: Uuid = match tenant {
        Some(tenant) => tenant,
        None => sql
            .query_one(
                "select roster.create_tenant('acme', 'Tenant acme') as id",
                &[],
            )
            .await
            .and_then(|row| row.try_get("id"))
            .expect("create the tenant"),
    };
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        tenant,
        sql,
        namespace,
        redis_url: options.redis_url.clone(),
        cache,
        proxy,
        jwt,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client"),
        db,
    };
    let expected = match options.redis_url {
        Some(_) => "ok",
        None => "disabled",
    };
    if options.wait_for_cache {
        app.wait_for_cache(expected, Duration::from_secs(5)).await;
    }
    app
}

impl Drop for TestApp {
    /// Removes this app's keys from Redis (the epoch key has no expiry). Best effort: a stopped
    /// private Redis has nothing to clean.
    fn drop(&mut self) {
        let Some(url) = self.redis_url.clone() else {
            return;
        };
        let pattern = format!("{}:*", self.namespace);
        let _ = std::thread::spawn(move || -> redis::RedisResult<()> {
            let client = redis::Client::open(url)?;
            let mut connection = client.get_connection_with_timeout(Duration::from_millis(500))?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut connection)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut connection)?;
            }
            Ok(())
        })
        .join();
    }
}

/// Polls `probe` until it returns Some, every 2 ms, for at most `deadline`; panics naming
/// `what` otherwise. Returns the value and how long it took.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return (value, started.elapsed());
        }
        if started.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ----------------------------------------------------------------------------------------------
// Fixtures (SQL on the superuser connection)
// ----------------------------------------------------------------------------------------------
impl TestApp {
    /// A user of the app's tenant; `name` makes the email (`{name}@example.com`).
    pub async fn user(&self, name: &str) -> TestUser {
        self.user_with(name, false).await
    }

    pub async fn user_with(&self, name: &str, is_tenant_admin: bool) -> TestUser {
        self.user_in(self.tenant, name, is_tenant_admin).await
    }

    pub async fn create_tenant(&self, slug: &str) -> Uuid {
        self.sql
            .query_one(
                "select roster.create_tenant($1, $2) as id",
                &[&slug, &format!("Tenant {slug}")],
            )
            .await
            .and_then(|row| row.try_get("id"))
            .unwrap_or_else(|e| panic!("create tenant {slug}: {e}"))
    }

    pub async fn user_in(&self, tenant: Uuid, name: &str, is_tenant_admin: bool) -> TestUser {
        let email = format!("{name}@example.com");
        let id: Uuid = self
            .sql
            .query_one(
                "select roster.create_user($1, $2, $3, $4) as id",
                &[&tenant, &email, &name, &is_tenant_admin],
            )
            .await
            .and_then(|row| row.try_get("id"))
            .unwrap_or_else(|e| panic!("create user {email}: {e}"));
        TestUser {
            id,
            token: self.token_for(id),
            email,
        }
    }

    /// A service token of `tenant` (`sub` = `service:billing`).
    pub fn service_token(&self, tenant: Uuid) -> String {
        roster::auth::issue_service_token(&self.jwt, "billing", tenant, 3600).expect("sign")
    }

    pub fn token_for(&self, user: Uuid) -> String {
        roster::auth::issue_token(&self.jwt, user, None, TOKEN_TTL_SECONDS).expect("sign a token")
    }

    /// An organization owned by `owner`, named "Org {slug}".
    pub async fn org(&self, owner: &TestUser, slug: &str) -> Uuid {
        self.sql
            .query_one(
                "select (roster.create_organization($1, $2, $3)).id as id",
                &[&owner.id, &format!("Org {slug}"), &slug],
            )
            .await
            .and_then(|row| row.try_get("id"))
            .unwrap_or_else(|e| panic!("create organization {slug}: {e}"))
    }

    /// Adds `user` to `org` as an active `role`, acting as `actor`.
    pub async fn add(&self, actor: &TestUser, org: Uuid, user: &TestUser, role: &str) {
        self.sql
            .execute(
                "select roster.add_member($1, $2, $3, $4, 'active')",
                &[&actor.id, &org, &user.id, &role],
            )
            .await
            .unwrap_or_else(|e| panic!("add {} as {role}: {e}", user.email));
    }

    /// A statement as a DBA types it, with literal ids: each `(name, id)` replaces `name`
    /// (`$owner`, say) by `'<id>'::uuid`.
    pub async fn exec_with_ids(&self, statement: &str, ids: &[(&str, Uuid)]) {
        let statement = ids.iter().fold(statement.to_owned(), |text, (name, id)| {
            text.replace(name, &format!("'{id}'::uuid"))
        });
        self.exec(&statement, &[]).await;
    }

    /// A raw statement on the superuser connection, committed when it returns.
    pub async fn exec(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) {
        self.sql
            .execute(statement, params)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e:?}"));
    }

    pub async fn org_version(&self, org: Uuid) -> i64 {
        self.version(
            "select version from roster.organization_versions where organization_id = $1",
            org,
        )
        .await
    }

    pub async fn user_version(&self, user: Uuid) -> i64 {
        self.version(
            "select version from roster.user_versions where user_id = $1",
            user,
        )
        .await
    }

    async fn version(&self, query: &str, id: Uuid) -> i64 {
        self.sql
            .query_one(query, &[&id])
            .await
            .and_then(|row| row.try_get("version"))
            .unwrap_or_else(|e| panic!("{query} ({id}): {e}"))
    }

    /// A new connection to the test database (superuser).
    pub async fn connect(&self) -> tokio_postgres::Client {
        self.db.client().await
    }

    /// Allows or refuses new connections to the test database (existing ones stay), from the
    /// server's `postgres` database: a database cannot refuse connections to itself.
    pub async fn allow_connections(&self, allow: bool) {
        let url = self
            .db
            .url
            .replacen(&format!("/{}", self.db.name), "/postgres", 1);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        tokio::spawn(connection);
        let statement = format!(
            "alter database {} with allow_connections {allow}",
            roster::quote_ident(&self.db.name)
        );
        client
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e:?}"));
    }
}

// ----------------------------------------------------------------------------------------------
// One method per endpoint
// ----------------------------------------------------------------------------------------------
impl TestApp {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send_after(method, path, token, body, None).await.0
    }

    /// `send` with a `Roster-Consistency` token, if given (the request must see that write);
    /// returns the response's token too (a write names its transaction).
    pub async fn send_after(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        consistency: Option<&str>,
    ) -> (Reply, Option<String>) {
        let mut request = self.http.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(consistency) = consistency {
            request = request.header("Roster-Consistency", consistency);
        }
        let response = request.send().await.expect("send the request");
        let status = response.status().as_u16();
        let consistency = response
            .headers()
            .get("Roster-Consistency")
            .map(|value| value.to_str().expect("an ASCII header").to_owned());
        let text = response.text().await.expect("read the response body");
        (Reply { status, text }, consistency)
    }

    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn get_org(&self, token: &str, org: Uuid) -> Reply {
        self.get(token, &format!("/organizations/{org}")).await
    }

    pub async fn members(&self, token: &str, org: Uuid) -> Reply {
        self.get(token, &format!("/organizations/{org}/members?limit=20"))
            .await
    }

    pub async fn orgs(&self, token: &str, query: &str) -> Reply {
        self.get(token, &format!("/organizations{query}")).await
    }

    pub async fn me(&self, token: &str, org: Uuid) -> Reply {
        self.get(token, &format!("/organizations/{org}/me")).await
    }

    /// `POST /authz/check`; the body is built at once, so `checks` may be a temporary.
    pub fn check<'a>(
        &'a self,
        token: &'a str,
        checks: &[(Uuid, &str)],
    ) -> impl Future<Output = Reply> + 'a {
        let checks: Vec<Value> = checks
            .iter()
            .map(|(org, permission)| json!({"organization_id": org, "permission": permission}))
            .collect();
        let body = json!({ "checks": checks });
        async move {
            self.send(Method::POST, "/authz/check", Some(token), Some(&body))
                .await
        }
    }

    pub async fn create_org_api(&self, token: &str, slug: &str) -> Reply {
        let body = json!({"name": format!("Org {slug}"), "slug": slug});
        self.send(Method::POST, "/organizations", Some(token), Some(&body))
            .await
    }

    pub async fn patch_org(&self, token: &str, org: Uuid, body: &Value) -> Reply {
        let path = format!("/organizations/{org}");
        self.send(Method::PATCH, &path, Some(token), Some(body))
            .await
    }

    pub async fn delete_org(&self, token: &str, org: Uuid) -> Reply {
        let path = format!("/organizations/{org}");
        self.send(Method::DELETE, &path, Some(token), None).await
    }

    pub async fn add_member_api(&self, token: &str, org: Uuid, user: Uuid, role: &str) -> Reply {
        let path = format!("/organizations/{org}/members");
        let body = json!({"user_id": user, "role": role});
        self.send(Method::POST, &path, Some(token), Some(&body))
            .await
    }

    pub async fn patch_member(&self, token: &str, org: Uuid, user: Uuid, body: &Value) -> Reply {
        let path = format!("/organizations/{org}/members/{user}");
        self.send(Method::PATCH, &path, Some(token), Some(body))
            .await
    }

    pub async fn remove_member_api(&self, token: &str, org: Uuid, user: Uuid) -> Reply {
        let path = format!("/organizations/{org}/members/{user}");
        self.send(Method::DELETE, &path, Some(token), None).await
    }

    pub async fn audit_events(&self, token: &str, org: Uuid, query: &str) -> Reply {
        self.get(token, &format!("/organizations/{org}/audit-events{query}"))
            .await
    }

    /// `GET /readyz`'s body. It makes a database round trip: keep it out of measurements.
    pub async fn readyz(&self) -> Value {
        let reply = self.send(Method::GET, "/readyz", None, None).await;
        assert_eq!(200, reply.status, "/readyz: {}", reply.text);
        reply.json()
    }

    pub async fn cache_state(&self) -> String {
        self.readyz().await["cache"]
            .as_str()
            .expect("readyz.cache is a string")
            .to_owned()
    }

    /// Polls `/readyz` until it reports the cache as `state`.
    pub async fn wait_for_cache(&self, state: &str, deadline: Duration) -> Duration {
        let what = format!("/readyz to report the cache {state}");
        wait_for(&what, deadline, || async {
            (self.cache_state().await == state).then_some(())
        })
        .await
        .1
    }

    /// The Prometheus text of `GET /metrics` (which makes no database round trip).
    pub async fn metrics_text(&self) -> String {
        let reply = self.send(Method::GET, "/metrics", None, None).await;
        assert_eq!(200, reply.status, "/metrics: {}", reply.text);
        reply.text
    }

    /// The value of an unlabelled metric.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics_text().await;
        metric_in(&text, name)
    }

    /// `roster_db_round_trips_total`: statements the request handlers sent to PostgreSQL.
    pub async fn round_trips(&self) -> u64 {
        self.metric("roster_db_round_trips_total").await
    }

    /// Runs `request` (one or several requests) and returns its output with the database round
    /// trips it made. Only meaningful while nothing else uses this app.
    pub async fn counted<T, F: Future<Output = T>>(&self, request: F) -> (T, u64) {
        let before = self.round_trips().await;
        let reply = request.await;
        let after = self.round_trips().await;
        (reply, after - before)
    }
}

/// The value of the unlabelled sample `name` in a Prometheus text.
pub fn metric_in(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(sample, _)| *sample == name)
        .map(|(_, value)| {
            value
                .trim()
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{name} = {value:?}: {e}"))
        })
        .unwrap_or_else(|| panic!("/metrics has no sample {name}:\n{text}"))
}

// ----------------------------------------------------------------------------------------------
// Redis, seen from the test
// ----------------------------------------------------------------------------------------------
impl TestApp {
    /// The raw value of one of this app's keys (`suffix` without the namespace).
    pub async fn redis_get(&self, suffix: &str) -> Option<Vec<u8>> {
        let mut connection = self.redis_connection().await;
        redis::cmd("GET")
            .arg(format!("{}:{suffix}", self.namespace))
            .query_async(&mut connection)
            .await
            .expect("GET from Redis")
    }

    /// Every key of this app's namespace as `DUMP` gives it, with its remaining lifetime (ms;
    /// 0 for none): what a replica or a snapshot holds, for `redis_restore`.
    pub async fn redis_copy(&self) -> Vec<(String, Vec<u8>, i64)> {
        let mut connection = self.redis_connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.namespace))
            .query_async(&mut connection)
            .await
            .expect("KEYS");
        let mut copy = Vec::new();
        for key in keys {
            let (dump, ttl): (Vec<u8>, i64) = redis::pipe()
                .cmd("DUMP")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .expect("DUMP and PTTL");
            copy.push((key, dump, ttl.max(0)));
        }
        copy
    }

    /// Puts back the keys of a `redis_copy`, replacing their current values, as a failover to
    /// a replica that had only received that much would.
    pub async fn redis_restore(&self, copy: &[(String, Vec<u8>, i64)]) {
        let mut connection = self.redis_connection().await;
        for (key, dump, ttl) in copy {
            redis::cmd("RESTORE")
                .arg(key)
                .arg(ttl)
                .arg(dump)
                .arg("REPLACE")
                .query_async::<()>(&mut connection)
                .await
                .expect("RESTORE");
        }
    }

    async fn redis_connection(&self) -> redis::aio::MultiplexedConnection {
        let url = self.redis_url.as_deref().expect("a cached app");
        redis::Client::open(url)
            .expect("Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis")
    }

    /// The minimum version the listener has recorded for a row of the app's tenant.
    pub async fn minimum(&self, kind: DepKind, id: Uuid) -> Option<i64> {
        self.cache
            .as_ref()
            .and_then(|cache| cache.minimum(kind, self.tenant, id))
    }

    /// Waits until the listener has applied the notifications of everything committed so far
    /// about `org` and `user`: their minimum versions reach the database's.
    pub async fn wait_for_minimums(&self, org: Uuid, user: Uuid) {
        let org_version = self.org_version(org).await;
        let user_version = self.user_version(user).await;
        wait_for(
            "the listener to raise the minimum versions",
            INVALIDATION_DEADLINE,
            || async {
                let org_ok = self.minimum(DepKind::Organization, org).await >= Some(org_version);
                let user_ok = self.minimum(DepKind::User, user).await >= Some(user_version);
                (org_ok && user_ok).then_some(())
            },
        )
        .await;
    }
}

// ----------------------------------------------------------------------------------------------
// The fill hook: holds one read between its database read and its cache write
// ----------------------------------------------------------------------------------------------
#[derive(Default)]
pub struct Gate {
    armed: AtomicBool,
    reached: Notify,
    release: Notify,
}

impl Gate {
    /// The hook to give the app: when armed, the next cache write signals `reached` and waits
    /// for `release`. It disarms itself, so that only one request is held.
    pub fn hook(self: &Arc<Self>) -> FillHook {
        let gate = self.clone();
        Arc::new(move || {
            let gate = gate.clone();
            Box::pin(async move {
                if gate.armed.swap(false, Ordering::SeqCst) {
                    gate.reached.notify_one();
                    gate.release.notified().await;
                }
            })
        })
    }

    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    pub async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(5), self.reached.notified())
            .await
            .expect("a read reached the fill hook");
    }

    pub fn release(&self) {
        self.release.notify_one();
    }
}

// ----------------------------------------------------------------------------------------------
// A private redis-server, killed on drop
// ----------------------------------------------------------------------------------------------
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts an empty, non-persistent redis-server on a free port and waits until it answers.
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("pick a free port")
            .port();
        let mut server = RedisServer { port, child: None };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server, empty, on the same port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new("/usr/bin/redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/redis-server");
        self.child = Some(child);
        let url = self.url();
        wait_for(
            "redis-server to answer PING",
            Duration::from_secs(5),
            || {
                let url = url.clone();
                async move {
                    let client = redis::Client::open(url).ok()?;
                    let mut connection = client.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut connection)
                        .await
                        .ok()
                }
            },
        )
        .await;
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `redis-cli -p {port} DEBUG SLEEP {seconds}` on a thread of its own.
    pub fn sleep_in_background(&self, seconds: f64) -> std::thread::JoinHandle<()> {
        let port = self.port.to_string();
        std::thread::spawn(move || {
            let status = Command::new("redis-cli")
                .args(["-p", &port, "DEBUG", "SLEEP", &seconds.to_string()])
                .stdout(Stdio::null())
                .status()
                .expect("run redis-cli");
            assert!(status.success(), "redis-cli DEBUG SLEEP failed: {status}");
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----------------------------------------------------------------------------------------------
// A private Redis Cluster of three primaries (and, if asked, a replica each), killed on drop
// ----------------------------------------------------------------------------------------------
pub const CLUSTER_NODES: usize = 3;

pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: std::path::PathBuf,
}

/// Free TCP ports, all held until every one is picked so that none is picked twice.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("pick a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("its address").port())
        .collect()
}

impl RedisCluster {
    /// Three empty, non-persistent `redis-server --cluster-enabled yes` on free ports, their
    /// slots split by `redis-cli --cluster create`, once every node says `cluster_state:ok`.
    /// The survivors of a killed node keep serving their slots
    /// (`cluster-require-full-coverage no`), as a cluster does while it fails over.
    pub async fn start() -> RedisCluster {
        RedisCluster::start_on(free_ports(2 * CLUSTER_NODES)).await
    }

    /// The same on given ports: the nodes', then their cluster bus ports.
    pub async fn start_on(ports: Vec<u16>) -> RedisCluster {
        RedisCluster::start_with(ports, 0).await
    }

    /// Three primaries and a replica of each, linked and in sync. A primary that
    /// stops answering for a second (`cluster-node-timeout`) is failed over to its replica.
    pub async fn start_with_replicas() -> RedisCluster {
        RedisCluster::start_with(free_ports(4 * CLUSTER_NODES), 1).await
    }

    async fn start_with(ports: Vec<u16>, replicas: usize) -> RedisCluster {
        let nodes = CLUSTER_NODES * (1 + replicas);
        assert_eq!(2 * nodes, ports.len(), "a port and a bus port per node");
        let (ports, bus_ports) = ports.split_at(nodes);
        let dir = std::env::temp_dir().join(format!("roster-cluster-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let mut children = Vec::new();
        // A replica takes over a primary silent for this long (the default is 15 s).
        let node_timeout = if replicas > 0 { "1000" } else { "15000" };
        for (port, bus_port) in ports.iter().zip(bus_ports) {
            let config_file = dir.join(format!("nodes-{port}.conf"));
            let child = Command::new("/usr/bin/redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                // The bus port is port + 10000 by default, possibly taken or past 65535.
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus_port.to_string(),
                ])
                .arg("--cluster-config-file")
                .arg(&config_file)
                .args(["--cluster-require-full-coverage", "no"])
                .args(["--cluster-node-timeout", node_timeout])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start /usr/bin/redis-server");
            children.push(Some(child));
        }
        let cluster = RedisCluster {
            ports: ports.to_vec(),
            children,
            dir,
        };
        for index in 0..nodes {
            wait_for(
                "a cluster node to answer PING",
                Duration::from_secs(5),
                || async {
                    cluster
                        .node_query::<String>(index, redis::cmd("PING"))
                        .await
                },
            )
            .await;
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let output = tokio::process::Command::new("/usr/bin/redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .await
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        for index in 0..nodes {
            wait_for(
                "every cluster node to report cluster_state:ok",
                Duration::from_secs(10),
                || async {
                    let mut info = redis::cmd("CLUSTER");
                    info.arg("INFO");
                    let info = cluster.node_query::<String>(index, info).await?;
                    info.contains("cluster_state:ok").then_some(())
                },
            )
            .await;
        }
        wait_for(
            "every replica to be in sync with its primary",
            Duration::from_secs(10),
            || async {
                let mut in_sync = 0;
                for index in 0..nodes {
                    let info = cluster.replication(index).await?;
                    if info.contains("role:slave") && info.contains("master_link_status:up") {
                        in_sync += 1;
                    }
                }
                (in_sync == nodes - CLUSTER_NODES).then_some(())
            },
        )
        .await;
        cluster
    }

    /// `INFO replication` of one node (None: down).
    async fn replication(&self, index: usize) -> Option<String> {
        let mut info = redis::cmd("INFO");
        info.arg("replication");
        self.node_query(index, info).await
    }

    /// Whether the node is a primary, by its own account (None: down).
    pub async fn is_primary(&self, index: usize) -> Option<bool> {
        Some(self.replication(index).await?.contains("role:master"))
    }

    /// The replica of primary `index`.
    pub async fn replica_of(&self, index: usize) -> usize {
        let primary = format!("master_port:{}", self.ports[index]);
        for replica in 0..self.ports.len() {
            if let Some(info) = self.replication(replica).await {
                let lines = || info.lines().map(str::trim);
                if lines().any(|l| l == "role:slave") && lines().any(|l| l == primary) {
                    return replica;
                }
            }
        }
        panic!("node {index} has no replica");
    }

    /// REDIS_URL for the cluster: every node, comma-separated.
    pub fn url(&self) -> String {
        cluster_url(&self.ports)
    }

    /// `command` sent to one node alone (None on any error, a MOVED included).
    pub async fn node_query<T: redis::FromRedisValue>(
        &self,
        index: usize,
        command: redis::Cmd,
    ) -> Option<T> {
        let url = format!("redis://127.0.0.1:{}", self.ports[index]);
        let client = redis::Client::open(url).ok()?;
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        command.query_async(&mut connection).await.ok()
    }

    /// The number of keys each node holds (None: down).
    pub async fn sizes(&self) -> Vec<Option<u64>> {
        let mut sizes = Vec::new();
        for index in 0..self.ports.len() {
            sizes.push(self.node_query(index, redis::cmd("DBSIZE")).await);
        }
        sizes
    }

    /// The node that serves `key`'s slot: the one that answers for it without a MOVED.
    pub async fn node_of(&self, key: &str) -> usize {
        for index in 0..self.ports.len() {
            let mut exists = redis::cmd("EXISTS");
            exists.arg(key);
            if self.node_query::<u64>(index, exists).await.is_some() {
                return index;
            }
        }
        panic!("no cluster node serves {key}");
    }

    /// Kills one node (SIGKILL).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// REDIS_URL for nodes on `ports`.
pub fn cluster_url(ports: &[u16]) -> String {
    let urls: Vec<String> = ports
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}"))
        .collect();
    urls.join(",")
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for index in 0..self.children.len() {
            self.kill(index);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ----------------------------------------------------------------------------------------------
// A TCP proxy in front of PostgreSQL that can freeze the change listener's connection
// ----------------------------------------------------------------------------------------------

/// Forwards every connection to the database server. `freeze_listener` stops forwarding, in
/// both directions, on the change listener's connections so far (its start-up message names its
/// `application_name`), without
/// closing them: what a half-open connection (a peer gone without a FIN or RST, a dropped NAT
/// flow) looks like to the app. Connections opened later are forwarded normally.
pub struct DbProxy {
    pub url: String,
    /// The freeze switch of each change listener connection seen.
    listeners: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    task: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl DbProxy {
    async fn start(database_url: &str) -> DbProxy {
        let config: tokio_postgres::Config = database_url.parse().expect("database URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            other => panic!("the proxy needs a TCP database host, got {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolve the database host")
            .next()
            .expect("an address for the database host");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let local = listener.local_addr().expect("proxy address");
        let url = database_url.replacen(
            &format!("{host}:{port}"),
            &format!("127.0.0.1:{}", local.port()),
            1,
        );
        assert_ne!(url, database_url, "the database URL must name host:port");
        let listeners = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            listeners.clone(),
            connections.clone(),
        ));
        DbProxy {
            url,
            listeners,
            task,
            connections,
        }
    }

    /// Freezes the listener's connection (which must have been seen).
    pub fn freeze_listener(&self) {
        let listeners = self.listeners.lock().unwrap();
        assert!(
            !listeners.is_empty(),
            "the proxy has not seen the change listener connect"
        );
        for frozen in listeners.iter() {
            frozen.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.task.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    listeners: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(upstream).await else {
            continue;
        };
        let frozen = Arc::new(AtomicBool::new(false));
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let up = tokio::spawn(pump(
            client_read,
            server_write,
            frozen.clone(),
            Some(listeners.clone()),
        ));
        let down = tokio::spawn(pump(server_read, client_write, frozen, None));
        connections.lock().unwrap().extend([up, down]);
    }
}

/// Copies bytes one way until `frozen`, then reads and drops them; the sockets stay open.
/// `listeners` is given on the client-to-server direction: a connection whose start-up message
/// names the change listener registers its freeze switch there.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
    listeners: Option<Arc<Mutex<Vec<Arc<AtomicBool>>>>>,
) {
    const LISTENER: &[u8] = roster::listener::APPLICATION_NAME.as_bytes();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buffer[..n];
        if let Some(listeners) = &listeners {
            if chunk.windows(LISTENER.len()).any(|w| w == LISTENER) {
                listeners.lock().unwrap().push(frozen.clone());
            }
        }
        if frozen.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
