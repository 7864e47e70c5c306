//! Listens to the database's change stream (channel `roster_changes`, see
//! `sql/migrations/V10__change_notifications.sql`) on a dedicated connection, not one from the
//! pool, and applies each notification to the cache.
//!
//! Version changes (of a tenant, an organization or a user) raise this process's minimum
//! versions; a change of the global permission catalogue starts a new epoch in Redis (one that
//! cannot be started is as good as lost). Notifications sent while
//! the listener is disconnected are lost: the cache stops being used, and once the listener is
//! connected again (LISTEN first) it starts a new epoch before the cache is used again.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use crate::cache::{Cache, DepKind};
use crate::metrics::Metrics;

pub const CHANNEL: &str = "roster_changes";

/// The listener's session's `application_name`.
pub const APPLICATION_NAME: &str = "roster change listener";

/// How often the listener checks that its connection still answers, and how long it waits.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long connecting (TCP, start-up, authentication) may take: a server that accepts and
/// then says nothing would otherwise stall reconnecting for good.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One notification's payload.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Organization {
        tenant_id: Uuid,
        organization_id: Uuid,
        version: i64,
    },
    User {
        tenant_id: Uuid,
        user_id: Uuid,
        version: i64,
    },
    Tenant {
        tenant_id: Uuid,
        version: i64,
    },
    /// An organization's resource grants or hierarchy changed.
    Resources {
        tenant_id: Uuid,
        organization_id: Uuid,
        version: i64,
    },
    /// An invitation was made, resent or settled: for the product's mailer. The cache ignores
    /// it; the organization's version, announced with it, is what changed for readers.
    Invitation {
        organization_id: Uuid,
    },
    /// The global permission catalogue changed: everything is stale.
    All,
}

/// Runs forever: connect, listen, apply; on any failure, stop using the cache and reconnect
/// with exponential backoff (100 ms doubling to 5 s).
pub async fn run(database_url: String, cache: Arc<Cache>, metrics: Arc<Metrics>) {
    const FIRST_DELAY: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_DELAY;
    loop {
        let (listened, outcome) = listen_once(&database_url, &cache, &metrics).await;
        cache.set_listening(false);
        if listened {
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

/// One connection's life. Returns whether the cache was put in use, and why it ended.
async fn listen_once(
    database_url: &str,
    cache: &Cache,
    metrics: &Metrics,
) -> (bool, Result<(), String>) {
    let config = match listener_config(database_url) {
        Ok(config) => config,
        Err(error) => return (false, Err(format!("invalid database url: {error}"))),
    };
    let (client, mut connection) =
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
    let (sender, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if sender.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    log::warn!("change listener: connection error: {error}");
                    break;
                }
            }
        }
    });
    let mut listened = false;
    let result = async {
        tokio::time::timeout(
            HEARTBEAT,
            client.batch_execute(&format!("listen {CHANNEL}")),
        )
        .await
        .map_err(|_| format!("no answer to LISTEN within {HEARTBEAT:?}"))?
        .map_err(|e| format!("cannot listen: {e}"))?;
        metrics.listener_reconnects.inc();
        // Anything that changed while we were not listening is unknown: start afresh.
        cache
            .start_epoch()
            .await
            .map_err(|e| format!("cannot start a cache epoch: {e}"))?;
        cache.set_listening(true);
        listened = true;
        log::info!("change listener: listening on {CHANNEL}; cache in use");
        // A connection whose peer vanished silently delivers nothing and reports no error:
        // a heartbeat on it bounds how long notifications can be missed unnoticed.
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                payload = notifications.recv() => {
                    let Some(payload) = payload else { break };
                    metrics.notifications.inc();
                    apply(cache, &payload)
                        .await
                        .inspect_err(|_| cache.set_listening(false))?;
                }
                _ = heartbeat.tick() => {
                    match tokio::time::timeout(HEARTBEAT, client.simple_query("")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(format!("heartbeat failed: {e}")),
                        Err(_) => return Err(format!("no heartbeat answer within {HEARTBEAT:?}")),
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    cache.set_listening(false);
    driver.abort();
    (listened, result)
}

/// The listener's own limits, not the pool's: its statements (LISTEN, the empty heartbeat
/// query) take no lock and answer at once, so the heartbeat's bound is the server's too.
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

async fn apply(cache: &Cache, payload: &str) -> Result<(), String> {
    let change = match serde_json::from_str::<Change>(payload) {
        Ok(change) => change,
        // Unknown to this version of the API: the safe reading is "anything may have changed".
        Err(error) => {
            log::warn!("change listener: unreadable notification {payload:?} ({error}); starting a new epoch");
            Change::All
        }
    };
    match change {
        Change::Organization {
            tenant_id,
            organization_id,
            version,
        } => cache.raise_minimum(DepKind::Organization, tenant_id, organization_id, version),
        Change::User {
            tenant_id,
            user_id,
            version,
        } => cache.raise_minimum(DepKind::User, tenant_id, user_id, version),
        Change::Tenant { tenant_id, version } => {
            cache.raise_minimum(DepKind::Tenant, tenant_id, tenant_id, version)
        }
        Change::Resources {
            tenant_id,
            organization_id,
            version,
        } => cache.raise_minimum(DepKind::Resources, tenant_id, organization_id, version),
        Change::Invitation { .. } => {}
        // Every entry of every instance may be stale: only a new epoch in Redis says so to all.
        Change::All => cache
            .start_epoch()
            .await
            .map_err(|e| format!("cannot apply notification {payload}: {e}"))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_every_kind_parse() {
        let org = Uuid::new_v4();
        let parsed: Change = serde_json::from_str(&format!(
            r#"{{"kind": "organization", "tenant_id": "{org}", "organization_id": "{org}", "version": 9223372036854775807}}"#
        ))
        .unwrap();
        assert_eq!(
            parsed,
            Change::Organization {
                tenant_id: org,
                organization_id: org,
                version: i64::MAX
            }
        );
        let parsed: Change = serde_json::from_str(&format!(
            r#"{{"kind": "user", "tenant_id": "{org}", "user_id": "{org}", "version": 3}}"#
        ))
        .unwrap();
        assert_eq!(
            parsed,
            Change::User {
                tenant_id: org,
                user_id: org,
                version: 3
            }
        );
        let parsed: Change = serde_json::from_str(&format!(
            r#"{{"kind": "tenant", "tenant_id": "{org}", "version": 4}}"#
        ))
        .unwrap();
        assert_eq!(
            parsed,
            Change::Tenant {
                tenant_id: org,
                version: 4
            }
        );
        assert_eq!(
            serde_json::from_str::<Change>(r#"{"kind": "all"}"#).unwrap(),
            Change::All
        );
        assert!(serde_json::from_str::<Change>(r#"{"kind": "weather"}"#).is_err());
        // Announced for other consumers; read, so that it does not start a new epoch.
        let invitation: Change = serde_json::from_str(&format!(
            r#"{{"kind": "invitation", "tenant_id": "{org}", "organization_id": "{org}", "invitation_id": "{org}", "email": "a@b.c", "role": "member", "status": "pending", "expires_at": "2026-12-09T00:00:00Z", "sent_at": "2026-12-02T00:00:00Z"}}"#
        ))
        .unwrap();
        assert_eq!(
            invitation,
            Change::Invitation {
                organization_id: org
            }
        );
    }
}
