//! A table locked for a long time (a DBA's migration) must not make requests hang: each answers
//! within the pool timeout plus the statement's bounds, with a 503 `retry` (lock_timeout) or
//! `unavailable` (statement_timeout, or no pooled connection in time), and the service is back
//! as soon as the lock goes.

use std::time::{Duration, Instant};

use reqwest::Method;
use roster::settings::Settings;
use tokio::task::JoinSet;

use crate::helpers::{check_error, spawn_app_with, AppOptions, Reply};

const REQUESTS: usize = 40;
/// "Never hangs", not a speed target: the worst case by the settings below is well under 1 s.
const BOUND: Duration = Duration::from_secs(3);

/// Waiting for the lock ends by lock_timeout (55P03): `retry`.
fn lock_timeout_first(settings: &mut Settings) {
    settings.statement_timeout = Duration::from_millis(300);
    settings.lock_timeout = Duration::from_millis(200);
    settings.pool_timeout = Duration::from_millis(300);
    settings.pool_size = 4;
}

/// Waiting for the lock ends by statement_timeout (57014): `unavailable`.
fn statement_timeout_first(settings: &mut Settings) {
    settings.statement_timeout = Duration::from_millis(200);
    settings.lock_timeout = Duration::from_millis(2_000);
    settings.pool_timeout = Duration::from_millis(300);
    settings.pool_size = 4;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_gets_503_retry_within_the_lock_timeout() {
    let errors = requests_against_a_locked_table(lock_timeout_first).await;
    assert!(
        errors.iter().any(|(code, _)| code == "retry"),
        "the requests that got a connection waited for the lock and gave up: {errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_gets_503_unavailable_within_the_statement_timeout() {
    let errors = requests_against_a_locked_table(statement_timeout_first).await;
    assert!(
        errors.iter().all(|(code, _)| code == "unavailable"),
        "a statement timeout before the lock timeout is `unavailable`: {errors:?}"
    );
    // The others waited for a pooled connection past POOL_TIMEOUT_MS, also `unavailable`.
    assert!(
        errors
            .iter()
            .any(|(_, message)| message.starts_with("database too slow")),
        "the requests that got a connection ran into the statement timeout: {errors:?}"
    );
}

/// Locks `roster.organization_memberships` ACCESS EXCLUSIVE from a second connection, sends
/// REQUESTS concurrent GET /organizations/{id}, checks that each is a 503 `retry` or
/// `unavailable` within BOUND, releases the lock and checks that requests succeed again.
/// Returns the error codes and messages.
async fn requests_against_a_locked_table(configure: fn(&mut Settings)) -> Vec<(String, String)> {
    let app = spawn_app_with(AppOptions {
        configure: Some(configure),
        ..AppOptions::default()
    })
    .await;
    let owner = app.user("owner").await;
    let org = app.new_org(&owner, "acme").await;
    let path = format!("/organizations/{org}");
    let before = app.get_organization(&owner.token, org).await;
    assert_eq!(200, before.status().as_u16(), "before the lock");

    let dba = app.sql_connection().await;
    dba.batch_execute("begin; lock table roster.organization_memberships in access exclusive mode")
        .await
        .expect("lock the memberships");

    let mut requests = JoinSet::new();
    for _ in 0..REQUESTS {
        let request = app
            .request(Method::GET, &path)
            .bearer_auth(&owner.token)
            // Only so that a failure shows as one, rather than as a test that never ends.
            .timeout(BOUND * 5);
        requests.spawn(async move {
            let started = Instant::now();
            let response = request.send().await.expect("send GET /organizations/{id}");
            (Reply::read(response).await, started.elapsed())
        });
    }
    let mut errors = Vec::with_capacity(REQUESTS);
    let mut slowest = Duration::ZERO;
    while let Some(joined) = requests.join_next().await {
        let (reply, elapsed) = joined.expect("request task");
        let (code, message) = check_error(&reply, 503)
            .unwrap_or_else(|problem| panic!("GET against a locked table: {problem}"));
        assert!(
            code == "retry" || code == "unavailable",
            "a lock is `retry` or `unavailable`, got {code}: {message}"
        );
        assert!(
            elapsed < BOUND,
            "GET against a locked table answered after {elapsed:?} ({code}: {message})"
        );
        slowest = slowest.max(elapsed);
        errors.push((code, message));
    }
    eprintln!("{REQUESTS} requests against a locked table: slowest {slowest:?}");

    // Still locked: the 503s were the lock's doing, not an accident of the test.
    let held: i64 = dba
        .query_one(
            "select count(*) as n from pg_catalog.pg_locks l
              join pg_catalog.pg_class c on c.oid = l.relation
             where c.relname = 'organization_memberships' and l.mode = 'AccessExclusiveLock'
               and l.granted and l.pid = pg_catalog.pg_backend_pid()",
            &[],
        )
        .await
        .and_then(|row| row.try_get("n"))
        .expect("look up the lock");
    assert_eq!(1, held, "the test's connection held the lock throughout");

    dba.batch_execute("rollback")
        .await
        .expect("release the lock");
    let mut after = JoinSet::new();
    for _ in 0..8 {
        let request = app.request(Method::GET, &path).bearer_auth(&owner.token);
        after.spawn(async move { request.send().await.expect("send").status().as_u16() });
    }
    while let Some(status) = after.join_next().await {
        assert_eq!(
            200,
            status.expect("request task"),
            "after the lock is released"
        );
    }
    errors
}
