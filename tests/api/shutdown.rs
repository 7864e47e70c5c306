//! Graceful shutdown of the real binary: on SIGTERM or SIGINT `roster serve` stops accepting connections,
//! lets the request in flight finish and keep its write, then exits 0. A deploy that rolls the
//! service must not turn a client's PATCH into a dropped connection or a lost update.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};
use uuid::Uuid;

use crate::common;
use crate::helpers::{jwt_settings, JWT_SECRET};

/// Everything `Settings::from_env` reads besides what the test sets: the developer's environment
/// must not configure the child (REDIS_URL would turn the cache on, JWT_PUBLIC_KEY would clash).
const INHERITED_SETTINGS: &[&str] = &[
    "DATABASE_ROLE",
    "REDIS_URL",
    "REDIS_CLUSTER",
    "CACHE_NAMESPACE",
    "REDIS_TIMEOUT_MS",
    "CACHE_TTL_SECONDS",
    "CACHE_NEAR_ENTRIES",
    "POOL_SIZE",
    "POOL_TIMEOUT_MS",
    "BODY_LIMIT_BYTES",
    "JWT_PUBLIC_KEY",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_LEEWAY_SECONDS",
];
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// A `roster serve` child process, killed if the test ends before it exits.
struct Server {
    child: Child,
    port: u16,
    /// Its stderr so far, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // An error here means it has already exited.
        let _ = self.child.start_kill();
    }
}

impl Server {
    /// Starts `roster serve` on a free port and waits for its "serving on ... (port N)" line.
    async fn start(database_url: &str) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
        command.arg("serve");
        for name in INHERITED_SETTINGS {
            command.env_remove(name);
        }
        let secret = std::str::from_utf8(JWT_SECRET).expect("an ASCII secret");
        let mut child = command
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", secret)
            .env("RUST_LOG", "info")
            .env("RUST_LOG_STYLE", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn roster serve");

        // Keep draining stderr for the child's whole life so that it never blocks on the pipe.
        let stderr = child.stderr.take().expect("piped stderr");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (lines_tx, mut lines) = mpsc::unbounded_channel();
        tokio::spawn({
            let log = Arc::clone(&log);
            async move {
                let mut reader = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    log.lock().expect("log").push(line.clone());
                    let _ = lines_tx.send(line);
                }
            }
        });
        let port = timeout(STARTUP_DEADLINE, async {
            while let Some(line) = lines.recv().await {
                if let Some(port) = serving_port(&line) {
                    return Some(port);
                }
            }
            None // stderr closed: the child has exited
        })
        .await;
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        match port {
            Ok(Some(port)) => server.port = port,
            Ok(None) => panic!("roster serve exited before serving:\n{}", server.log()),
            Err(_) => panic!(
                "roster serve did not log \"serving on\" within {STARTUP_DEADLINE:?}:\n{}",
                server.log()
            ),
        }
        server
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the child is running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    async fn exit_status(&mut self, deadline: Duration) -> Option<ExitStatus> {
        timeout(deadline, self.child.wait())
            .await
            .ok()
            .map(|status| status.expect("wait for roster serve"))
    }
}

/// The port in `... serving on 127.0.0.1:0 (port 40123)`.
fn serving_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("serving on ")?;
    let (_, rest) = rest.split_once("(port ")?;
    rest.split(')').next()?.parse().ok()
}

#[test]
fn serving_port_reads_the_log_line() {
    for (line, expected) in [
        (
            "[2026-01-01T00:00:00Z INFO  roster] serving on 127.0.0.1:0 (port 40123)",
            Some(40123),
        ),
        (
            "[... INFO  roster] serving on [::1]:8080 (port 8080)",
            Some(8080),
        ),
        (
            "[... INFO  roster] applied migration V1__roster_schema",
            None,
        ),
        ("serving on 127.0.0.1:0 (port x)", None),
    ] {
        assert_eq!(expected, serving_port(line), "{line:?}");
    }
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    the_request_in_flight_finishes_then_exits_0("TERM").await;
}

/// Ctrl-C: actix alone would force the stop and drop the request.
#[tokio::test]
async fn sigint_lets_the_request_in_flight_finish_then_exits_0() {
    the_request_in_flight_finishes_then_exits_0("INT").await;
}

async fn the_request_in_flight_finishes_then_exits_0(signal: &str) {
    // Declared before the server, so dropped after it.
    let db = common::fresh_database().await;
    let sql = db.client().await;
    let tenant: Uuid = sql
        .query_one("select roster.create_tenant('acme', 'Acme') as id", &[])
        .await
        .and_then(|row| row.try_get("id"))
        .expect("create a tenant");
    let owner: Uuid = sql
        .query_one(
            "select roster.create_user($1, 'olga@example.com', 'Olga', false) as id",
            &[&tenant],
        )
        .await
        .and_then(|row| row.try_get("id"))
        .expect("create a user");
    let org: Uuid = sql
        .query_one(
            "select (roster.create_organization($1, 'Acme', 'acme')).id as id",
            &[&owner],
        )
        .await
        .and_then(|row| row.try_get("id"))
        .expect("create an organization");
    let token = roster::auth::issue_token(&jwt_settings(None, None), owner, None, 600)
        .expect("sign a token");

    let mut server = Server::start(&db.url).await;

    // Hold the organization's row so that the PATCH waits inside the database.
    let locker = db.client().await;
    locker.batch_execute("begin").await.expect("begin");
    locker
        .execute(
            "select 1 from roster.organizations where id = $1 for update",
            &[&org],
        )
        .await
        .expect("lock the organization");

    let url = format!("http://127.0.0.1:{}/organizations/{org}", server.port);
    let patch = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .patch(url)
            .bearer_auth(token)
            .json(&json!({"description": "after shutdown"}))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    });

    // In flight: a backend of this database waits on a lock.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let waiting: i64 = sql
            .query_one(
                "select count(*) as waiting from pg_stat_activity \
                 where datname = current_database() and wait_event_type = 'Lock'",
                &[],
            )
            .await
            .and_then(|row| row.try_get("waiting"))
            .expect("read pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            !patch.is_finished(),
            "the PATCH should wait on the row lock, but it finished: {:?}\n{}",
            patch.await,
            server.log()
        );
        assert!(
            Instant::now() < deadline,
            "the PATCH did not reach the row lock within {DEADLINE:?}\n{}",
            server.log()
        );
        sleep(POLL).await;
    }

    server.signal(signal);

    // Shutting down: new connections are refused while the PATCH still waits.
    let deadline = Instant::now() + DEADLINE;
    while tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "port {} still accepts connections {DEADLINE:?} after SIG{signal}\n{}",
            server.port,
            server.log()
        );
        sleep(POLL).await;
    }
    assert!(
        !patch.is_finished(),
        "the PATCH should still be waiting on the row lock\n{}",
        server.log()
    );

    locker
        .batch_execute("rollback")
        .await
        .expect("release the lock");

    let (status, body) = timeout(DEADLINE, patch)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the PATCH did not complete within {DEADLINE:?}\n{}",
                server.log()
            )
        })
        .expect("the PATCH task")
        .unwrap_or_else(|e| {
            panic!(
                "the in-flight PATCH failed during shutdown: {e}\n{}",
                server.log()
            )
        });
    assert_eq!(
        200,
        status,
        "the in-flight PATCH should succeed, body: {body}\n{}",
        server.log()
    );
    let stored: Option<String> = sql
        .query_one(
            "select description from roster.organizations where id = $1",
            &[&org],
        )
        .await
        .and_then(|row| row.try_get("description"))
        .expect("read the description");
    assert_eq!(
        Some("after shutdown"),
        stored.as_deref(),
        "the in-flight PATCH's write should be stored"
    );

    match server.exit_status(DEADLINE).await {
        Some(status) => assert!(
            status.success(),
            "roster serve should exit 0 after SIG{signal}, got {status}\n{}",
            server.log()
        ),
        None => panic!(
            "roster serve did not exit within {DEADLINE:?} of the last request\n{}",
            server.log()
        ),
    }
}
