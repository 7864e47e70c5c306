//! Test support shared by the integration test binaries:
//! `#[path = "../common/mod.rs"] mod common;`
//!
//! Each test gets its own database, cloned with `create database ... template` from a template
//! that was migrated once. The template is named after the migrations compiled into the crate
//! (`roster::migrate::fingerprint`), so it is reused across runs and processes and rebuilt when
//! a migration changes.
#![allow(dead_code)]

use std::time::Duration;

use roster::quote_ident;
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// Server used when `TEST_DATABASE_URL` is unset; only its host, port and credentials matter.
const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Serialises template builds between concurrent test processes (`pg_advisory_lock` key).
const TEMPLATE_LOCK_KEY: i64 = 0x726f_7374_6572; // "roster"

/// A database of its own for one test, dropped (even on panic) when this value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A new connection to this database; its connection task runs on the test's runtime.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with a
        // runtime of its own. `with (force)` ends the test's own connections first.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime for dropping a test database")
                .block_on(async {
                    let admin = try_connect(&server_url("postgres")).await?;
                    admin
                        .batch_execute(&format!(
                            "drop database if exists {} with (force)",
                            quote_ident(&name)
                        ))
                        .await
                })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// Creates an empty, fully migrated database for one test.
pub async fn fresh_database() -> TestDatabase {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    let template = TEMPLATE.get_or_init(ensure_template).await;
    let name = format!("roster_test_{}", uuid::Uuid::new_v4().simple());
    let admin = connect(&server_url("postgres")).await;
    admin
        .batch_execute(&format!(
            "create database {} template {}",
            quote_ident(&name),
            quote_ident(template)
        ))
        .await
        .unwrap_or_else(|e| panic!("create database {name} from {template}: {e}"));
    TestDatabase {
        url: server_url(&name),
        name,
    }
}

/// A login role of its own for one test, like the one `make run` creates for the API: it may
/// log in and is a member of `roster_app` (inheriting its grants), nothing else. Roles belong
/// to the whole server, hence the unique name; dropped (even on panic) with this value.
pub struct TestLogin {
    pub name: String,
}

/// Only for the test server, where trust authentication usually makes it moot.
const TEST_LOGIN_PASSWORD: &str = "roster-test-login";

impl TestLogin {
    pub async fn create() -> TestLogin {
        let name = format!(
            "roster_test_login_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let admin = connect(&server_url("postgres")).await;
        admin
            .batch_execute(&format!(
                "create role {quoted} login nosuperuser inherit password '{TEST_LOGIN_PASSWORD}'; \
                 grant roster_app to {quoted}",
                quoted = quote_ident(&name)
            ))
            .await
            .unwrap_or_else(|e| panic!("create login {name}: {e}"));
        TestLogin { name }
    }

    /// `db`'s URL, logging in as this role.
    pub fn url(&self, db: &TestDatabase) -> String {
        let start = db.url.find("://").expect("a URL") + 3;
        let authority_end = db.url[start..]
            .find(['/', '?'])
            .map_or(db.url.len(), |i| start + i);
        let host = db.url[start..authority_end]
            .rfind('@')
            .map_or(start, |i| start + i + 1);
        format!(
            "{}{}:{TEST_LOGIN_PASSWORD}@{}",
            &db.url[..start],
            self.name,
            &db.url[host..]
        )
    }
}

impl Drop for TestLogin {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime for dropping a test login")
                .block_on(async {
                    let admin = try_connect(&server_url("postgres")).await?;
                    admin
                        .batch_execute(&format!("drop role if exists {}", quote_ident(&name)))
                        .await
                })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test login {}: {e}", self.name);
        }
    }
}

/// Creates an empty database (no schema, no migrations), dropped like the others.
pub async fn empty_database() -> TestDatabase {
    let name = format!("roster_test_{}", uuid::Uuid::new_v4().simple());
    let admin = connect(&server_url("postgres")).await;
    admin
        .batch_execute(&format!("create database {}", quote_ident(&name)))
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    TestDatabase {
        url: server_url(&name),
        name,
    }
}

/// Returns the name of the template for the current migrations, building it if missing.
async fn ensure_template() -> String {
    // Named after the migrations compiled into the crate under test, not the files on disk:
    // files edited after the build must not give a stale template a current name.
    let name = format!("roster_tpl_{:016x}", roster::migrate::fingerprint());
    let admin = connect(&server_url("postgres")).await;
    if database_exists(&admin, &name).await {
        return name;
    }
    admin
        .execute("select pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("take the template lock");
    // Another process may have built it while we waited for the lock.
    if !database_exists(&admin, &name).await {
        build_template(&admin, &name).await;
    }
    admin
        .execute("select pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("release the template lock");
    name
}

/// Migrates under a temporary name and renames only when done, so a half-built template (a
/// failed migration, a killed process) is never cloned. Caller holds the template lock.
async fn build_template(admin: &Client, name: &str) {
    let building = format!("{name}_building");
    // A leftover from a build that died half way. `create`/`drop database` refuse to share a
    // query string with other statements, hence one call each.
    let quoted = quote_ident(&building);
    for statement in [
        format!("drop database if exists {quoted} with (force)"),
        format!("create database {quoted}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    if let Err(e) = roster::migrate(&server_url(&building)).await {
        panic!("migrating template {building}: {}", error_chain(&e));
    }
    // `migrate` has dropped its client, but the server may not have seen it leave yet: rename
    // fails while anyone is connected, and so would every `create database ... template`.
    let rename = format!(
        "alter database {} rename to {}",
        quote_ident(&building),
        quote_ident(name)
    );
    let mut attempts = 0;
    loop {
        admin
            .execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
                &[&building],
            )
            .await
            .expect("disconnect sessions from the template");
        match admin.batch_execute(&rename).await {
            Ok(()) => break,
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{rename}: {e}"),
        }
    }
    // No connections from now on: a stray one would make every clone fail.
    admin
        .batch_execute(&format!(
            "alter database {} with is_template true allow_connections false",
            quote_ident(name)
        ))
        .await
        .unwrap_or_else(|e| panic!("mark {name} as a template: {e}"));
    // Several checkouts testing against one server at once (each with its own migrations)
    // would drop each other's templates mid-run: they set ROSTER_TEST_KEEP_TEMPLATES.
    if std::env::var_os("ROSTER_TEST_KEEP_TEMPLATES").is_none() {
        drop_stale_templates(admin, name).await;
    }
}

/// Templates of earlier migration sets would otherwise pile up, one per edit. Best effort: one
/// still being cloned (a run of another checkout) is left alone for a later build to remove.
async fn drop_stale_templates(admin: &Client, current: &str) {
    // A template being cloned by another checkout's run is locked: skip it rather than wait.
    admin
        .batch_execute("set lock_timeout = '1s'")
        .await
        .expect("set lock_timeout");
    let stale = admin
        .query(
            "select datname from pg_database \
             where datname like 'roster\\_tpl\\_%' and datname <> $1",
            &[&current],
        )
        .await
        .expect("list stale templates");
    for row in stale {
        let name: String = row.try_get("datname").expect("column datname");
        let quoted = quote_ident(&name);
        for statement in [
            format!("alter database {quoted} is_template false"),
            format!("drop database {quoted}"),
        ] {
            if admin.batch_execute(&statement).await.is_err() {
                break;
            }
        }
    }
    admin
        .batch_execute("reset lock_timeout")
        .await
        .expect("reset lock_timeout");
}

async fn database_exists(admin: &Client, name: &str) -> bool {
    admin
        .query_one(
            "select exists (select 1 from pg_database where datname = $1) as present",
            &[&name],
        )
        .await
        .and_then(|row| row.try_get("present"))
        .expect("look up pg_database")
}

/// `TEST_DATABASE_URL` (or the default server) with its database name replaced by `dbname`.
/// Only URL-style connection strings are supported.
fn server_url(dbname: &str) -> String {
    let base = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.into());
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base.as_str(), None),
    };
    let authority_start = head
        .find("://")
        .map(|i| i + 3)
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL must be a postgres:// URL, got {base:?}"));
    let authority_end = head[authority_start..]
        .find('/')
        .map_or(head.len(), |i| authority_start + i);
    let mut url = format!("{}/{dbname}", &head[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

pub async fn connect(url: &str) -> Client {
    try_connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e} (is PostgreSQL up? try `make db`)"))
}

async fn try_connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // Errors here are ends of connections the test no longer needs.
        let _ = connection.await;
    });
    Ok(client)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The text of the number under `"key":` in a JSON text (the first such key), as sent: for
/// comparing numbers digit for digit, whatever precision this crate's JSON parser keeps.
pub fn json_number_text<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let rest = json[json.find(&quoted)? + quoted.len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|number| !number.is_empty())
}

#[test]
fn json_number_text_reads_the_digits_as_written() {
    let text = r#"{"a": {"big":12345678901234567890123, "neg" : -1.5e-7}, "s": "x"}"#;
    assert_eq!(
        Some("12345678901234567890123"),
        json_number_text(text, "big")
    );
    assert_eq!(Some("-1.5e-7"), json_number_text(text, "neg"));
    assert_eq!(
        None,
        json_number_text(text, "s"),
        "a string is not a number"
    );
    assert_eq!(None, json_number_text(text, "missing"));
}

/// The permissions the wildcard tables register (besides the built-in ones).
pub const REGISTERED: &[&str] = &[
    "invoice:approve",
    "invoice:read",
    "model:read",
    "model:update",
];

/// The wildcard matcher as a table: a role granting `grant` allows exactly the permissions
/// marked true. The same table runs at both doors (tests/db/roles.rs, tests/api/roles.rs).
pub const WILDCARD_CASES: &[(&str, &[(&str, bool)])] = &[
    (
        "invoice:approve",
        &[
            ("invoice:approve", true),
            ("invoice:read", false),
            ("model:read", false),
        ],
    ),
    (
        "invoice:*",
        &[
            ("invoice:approve", true),
            ("invoice:read", true),
            ("model:read", false),
            ("organization:read", false),
        ],
    ),
    (
        "*:read",
        &[
            ("invoice:read", true),
            ("model:read", true),
            ("organization:read", true),
            ("members:read", true),
            ("invoice:approve", false),
            ("members:invite", false),
        ],
    ),
    (
        "*",
        &[
            ("invoice:approve", true),
            ("model:update", true),
            ("members:manage_owners", true),
            ("roles:manage", true),
        ],
    ),
    (
        "model:*",
        &[
            ("model:update", true),
            ("model:read", true),
            ("invoice:read", false),
        ],
    ),
];
