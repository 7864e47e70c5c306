//! Follows the database's change log (`roster.change_log`, see
//! `sql/migrations/V36__change_log.sql`) on a dedicated connection, not one from the pool, and
//! applies each change to the cache.
//!
//! The follower registers as a reader, then polls `roster.changes_after` every
//! [`POLL_INTERVAL`] with the snapshot of its previous poll: each answer holds the changes
//! committed since, and the snapshot to pass next. Every [`HEARTBEAT`] it tells the database how
//! far it has read (`roster.change_reader_heartbeat`), which lets the log be pruned.
//!
//! After each poll the snapshot is published (`Cache::position`), for requests that wait on a
//! write of theirs (`consistency`).
//!
//! Version changes (of a tenant, an organization, a user or an organization's resources) raise
//! this process's minimum versions; a change of everything (the built-in catalogue, a TRUNCATE)
//! starts a new epoch in Redis (one that cannot be started is as good as lost). When the stream
//! is lost (a failed or unanswered poll, or none for [`STREAM_LOST_AFTER`]), the cache stops
//! being used; once the follower is registered again it starts a new epoch before the cache is
//! used again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, Row, Statement};
use uuid::Uuid;

use crate::cache::{Cache, DepKind};
use crate::metrics::Metrics;

/// The follower's session's `application_name`.
pub const APPLICATION_NAME: &str = "roster change listener";

/// How often the log is read: the delay between a commit and its invalidation here is at most
/// this plus one poll.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How often the follower reports its progress, and how long any of its statements may take.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A stream with no successful poll for this long is lost, even if the connection then answers
/// again (a paused process, a stalled runtime): the database stops keeping the log for a reader
/// silent for 10 s, so changes may be gone.
const STREAM_LOST_AFTER: Duration = Duration::from_secs(2);
/// How long connecting (TCP, start-up, authentication) may take: a server that accepts and
/// then says nothing would otherwise stall reconnecting for good.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One change of the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// A version of a tenant, an organization, a user, or an organization's resources.
    Version {
        kind: DepKind,
        tenant_id: Uuid,
        id: Uuid,
        version: i64,
    },
    /// Everything may be stale: the built-in catalogue changed, a versioned table was
    /// truncated, or a change this version of the API cannot read.
    All,
}

impl Change {
    /// A row of `roster.changes_after` after the first: (kind, tenant_id, object_id, version).
    fn from_row(row: &Row) -> Change {
        Change::from_columns(row.get(1), row.get(2), row.get(3), row.get(4))
    }

    fn from_columns(
        kind: Option<&str>,
        tenant_id: Option<Uuid>,
        id: Option<Uuid>,
        version: Option<i64>,
    ) -> Change {
        let kind = match kind {
            Some("tenant") => DepKind::Tenant,
            Some("organization") => DepKind::Organization,
            Some("user") => DepKind::User,
            Some("resources") => DepKind::Resources,
            Some("all") => return Change::All,
            // Unknown to this version of the API: the safe reading is "anything may have changed".
            other => {
                log::warn!("change listener: unknown change kind {other:?}; starting a new epoch");
                return Change::All;
            }
        };
        match (tenant_id, id, version) {
            (Some(tenant_id), Some(id), Some(version)) => Change::Version {
                kind,
                tenant_id,
                id,
                version,
            },
            _ => Change::All,
        }
    }
}

/// Runs forever: connect, register, follow; on any failure, stop using the cache and reconnect
/// with exponential backoff (100 ms doubling to 5 s).
pub async fn run(database_url: String, cache: Arc<Cache>, metrics: Arc<Metrics>) {
    const FIRST_DELAY: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_DELAY;
    loop {
        let (followed, outcome) = follow_once(&database_url, &cache, &metrics).await;
        cache.set_listening(false);
        metrics.stream_lost();
        if followed {
            backoff = FIRST_DELAY; // it worked until now: retry quickly
        }
        match outcome {
            Ok(()) => log::warn!("change listener: connection closed; reconnecting in {backoff:?}"),
            Err(error) => log::warn!("change listener: {error}; reconnecting in {backoff:?}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Within [`HEARTBEAT`], or an error naming `what`.
async fn bounded<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(HEARTBEAT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("{what} failed: {error}")),
        Err(_) => Err(format!("no answer to {what} within {HEARTBEAT:?}")),
    }
}

/// One connection's life. Returns whether the cache was put in use, and why it ended.
async fn follow_once(
    database_url: &str,
    cache: &Cache,
    metrics: &Metrics,
) -> (bool, Result<(), String>) {
    let config = match listener_config(database_url) {
        Ok(config) => config,
        Err(error) => return (false, Err(format!("invalid database url: {error}"))),
    };
    let (client, connection) =
        match tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(error)) => return (false, Err(format!("cannot connect: {error}"))),
            Err(_) => {
                return (
                    false,
                    Err(format!("cannot connect within {CONNECT_TIMEOUT:?}")),
                )
            }
        };
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            log::warn!("change listener: connection error: {error}");
        }
    });
    let mut followed = false;
    let result = async {
        let reader = Uuid::new_v4();
        // Registered and committed before the first snapshot is taken (V36's pruning rule).
        bounded(
            "registering as a change reader",
            client.execute("select roster.register_change_reader($1)", &[&reader]),
        )
        .await?;
        let poll = bounded(
            "preparing the poll",
            client.prepare(
                "select snapshot::text, kind, tenant_id, object_id, version, \
                        extract(epoch from clock_timestamp() - recorded_at)::float8 as age \
                   from roster.changes_after($1::text::pg_snapshot)",
            ),
        )
        .await?;
        let heartbeat = bounded(
            "preparing the heartbeat",
            client.prepare("select roster.change_reader_heartbeat($1, $2::text::pg_snapshot)"),
        )
        .await?;
        let mut snapshot = read(&client, &poll, None, cache, metrics).await?;
        metrics.listener_reconnects.inc();
        // Anything that changed before that snapshot is unknown: start afresh.
        cache
            .start_epoch()
            .await
            .map_err(|e| format!("cannot start a cache epoch: {e}"))?;
        cache.set_listening(true);
        advance(cache, &snapshot)?;
        followed = true;
        log::info!("change listener: following roster.change_log; cache in use");
        let mut last_read = Instant::now();
        let mut last_heartbeat = Instant::now();
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            snapshot = read(&client, &poll, Some(&snapshot), cache, metrics).await?;
            advance(cache, &snapshot)?;
            let now = Instant::now();
            if now.duration_since(last_read) > STREAM_LOST_AFTER {
                return Err(format!(
                    "no read of the change log for {:?}: changes may have been pruned",
                    now.duration_since(last_read)
                ));
            }
            last_read = now;
            if now.duration_since(last_heartbeat) >= HEARTBEAT {
                let known: bool = bounded(
                    "the heartbeat",
                    client.query_one(&heartbeat, &[&reader, &snapshot]),
                )
                .await?
                .get(0);
                if !known {
                    return Err("the database no longer knows this change reader".into());
                }
                last_heartbeat = now;
            }
        }
    }
    .await;
    cache.set_listening(false);
    driver.abort();
    (followed, result)
}

/// One poll: applies the changes committed since `after` (none when `after` is None) and
/// returns the snapshot to pass next.
async fn read(
    client: &Client,
    poll: &Statement,
    after: Option<&String>,
    cache: &Cache,
    metrics: &Metrics,
) -> Result<String, String> {
    let rows = bounded("reading the change log", client.query(poll, &[&after])).await?;
    let mut rows = rows.iter();
    let snapshot: String = rows
        .next()
        .and_then(|first| first.get::<_, Option<String>>(0))
        .ok_or("roster.changes_after returned no snapshot")?;
    for row in rows {
        metrics.notifications.inc();
        apply(cache, Change::from_row(row))
            .await
            .inspect_err(|_| cache.set_listening(false))?;
        // Both ends on the database's clock: how long since the change was written.
        if let Some(age) = row.get::<_, Option<f64>>(5) {
            metrics.change_delay(age);
        }
    }
    metrics.stream_read();
    Ok(snapshot)
}

/// Tells requests waiting on `Roster-Consistency` that every change up to `snapshot` is applied.
fn advance(cache: &Cache, snapshot: &str) -> Result<(), String> {
    cache.position().advance(snapshot.parse()?);
    Ok(())
}

/// The follower's own limits, not the pool's: its statements take no lock and answer at once,
/// so the heartbeat's bound is the server's too.
fn listener_config(database_url: &str) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = database_url.parse()?;
    // So that a DBA (and the tests) can tell this session in pg_stat_activity.
    config.application_name(APPLICATION_NAME);
    crate::db::set_session_options(
        &mut config,
        &[
            ("statement_timeout", crate::db::millis(HEARTBEAT)),
            ("lock_timeout", crate::db::millis(HEARTBEAT)),
        ],
    );
    Ok(config)
}

async fn apply(cache: &Cache, change: Change) -> Result<(), String> {
    match change {
        Change::Version {
            kind,
            tenant_id,
            id,
            version,
        } => cache.raise_minimum(kind, tenant_id, id, version),
        // Every entry of every instance may be stale: only a new epoch in Redis says so to all.
        Change::All => cache
            .start_epoch()
            .await
            .map_err(|e| format!("cannot start a new epoch for a change of everything: {e}"))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_of_every_kind_are_read() {
        let (tenant, id) = (Uuid::new_v4(), Uuid::new_v4());
        for (name, kind) in [
            ("tenant", DepKind::Tenant),
            ("organization", DepKind::Organization),
            ("user", DepKind::User),
            ("resources", DepKind::Resources),
        ] {
            assert_eq!(
                Change::from_columns(Some(name), Some(tenant), Some(id), Some(i64::MAX)),
                Change::Version {
                    kind,
                    tenant_id: tenant,
                    id,
                    version: i64::MAX
                },
                "{name}"
            );
        }
        assert_eq!(
            Change::from_columns(Some("all"), None, None, None),
            Change::All
        );
        // What this version cannot read means that anything may have changed.
        assert_eq!(
            Change::from_columns(Some("weather"), Some(tenant), Some(id), Some(1)),
            Change::All
        );
        assert_eq!(
            Change::from_columns(Some("user"), Some(tenant), None, Some(1)),
            Change::All
        );
    }
}
