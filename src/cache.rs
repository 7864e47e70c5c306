//! The Redis cache of authorization lookups and read responses, kept exact by the database's
//! change stream (see `sql/migrations/V10__change_notifications.sql` and `listener.rs`).
//!
//! How an entry stays exact:
//! - every entry records the **epoch** it was read under and its **dependencies**: the
//!   `authz_version` of each organization and user it was computed from, read in the same
//!   database statement as the data itself;
//! - the listener turns each change notification into a **minimum version** per organization
//!   or user, kept in this process (every API instance runs its own listener, so each knows
//!   every change since the current epoch began); an entry is served only if its epoch is the
//!   current one (read from Redis in the same `MGET` as the entries) and every dependency is at
//!   least its minimum;
//! - so a response read from the database just before a change can still be written to Redis
//!   after the change's invalidation (the read–invalidate race), but it is never served: its
//!   versions are older than the minimum;
//! - when notifications may have been missed (the listener reconnects) it starts a new epoch in
//!   Redis, which makes every existing entry, whichever instance wrote it, unreachable; until
//!   the listener is connected and has done so, this instance does not use the cache at all.
//!
//! Any Redis failure or timeout is a miss: the request goes to the database. Nothing here can
//! grant access that the database would not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use uuid::Uuid;

use crate::metrics::Metrics;

/// A read whose database answer arrives later than this after its cache lookup is not
/// stored: it bounds how late a stale entry can be written, and so how long minimum versions
/// must be kept (see `Cache::raise_minimum`).
const MAX_FILL_DELAY: Duration = Duration::from_secs(30);

/// What an entry was computed from: `(kind, id, authz_version)` with kind `o` (organization) or
/// `u` (user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps(Vec<(char, Uuid, i64)>);

impl Deps {
    pub fn new() -> Deps {
        Deps::default()
    }

    pub fn organization(mut self, id: Uuid, version: i64) -> Deps {
        self.0.push(('o', id, version));
        self
    }

    pub fn user(mut self, id: Uuid, version: i64) -> Deps {
        self.0.push(('u', id, version));
        self
    }

    /// Whether every dependency is at least the minimum recorded for it.
    fn fresh(encoded: &[u8], minimums: &HashMap<(char, Uuid), Minimum>) -> bool {
        let Ok(encoded) = std::str::from_utf8(encoded) else {
            return false;
        };
        encoded.split(',').filter(|d| !d.is_empty()).all(|dep| {
            let mut parts = dep.splitn(3, ':');
            let (Some(kind), Some(id), Some(version)) = (parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            let (Some(kind), Ok(id), Ok(version)) = (
                kind.chars().next(),
                id.parse::<Uuid>(),
                version.parse::<i64>(),
            ) else {
                return false;
            };
            minimums
                .get(&(kind, id))
                .is_none_or(|minimum| version >= minimum.version)
        })
    }

    fn encode(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(kind, id, version)| format!("{kind}:{id}:{version}"))
            .collect();
        parts.join(",")
    }
}

/// The keys of cached items, in one place, without the namespace the cache prefixes.
pub mod keys {
    use uuid::Uuid;

    pub fn identity(user: Uuid) -> String {
        format!("identity:{user}")
    }

    pub fn access(org: Uuid, user: Uuid) -> String {
        format!("access:{org}:{user}")
    }

    pub fn organization(org: Uuid) -> String {
        format!("org:{org}")
    }

    pub fn members(org: Uuid, limit: i32, offset: i32) -> String {
        format!("members:{org}:{limit}:{offset}")
    }

    pub fn user_organizations(user: Uuid, limit: i32, offset: i32) -> String {
        format!("user-orgs:{user}:{limit}:{offset}")
    }

    pub(super) const EPOCH: &str = "epoch";
}

/// The cache's state, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// Connected and listening: entries are read and written.
    Ok,
    /// Configured but not usable now (Redis or the listener is down, or recovering): every
    /// request goes to the database.
    Degraded,
    /// No REDIS_URL.
    Disabled,
}

impl CacheState {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::Ok => "ok",
            CacheState::Degraded => "degraded",
            CacheState::Disabled => "disabled",
        }
    }
}

/// The result of a lookup: the epoch to write misses under (None: do not write), and one value
/// per key asked.
pub struct Lookup {
    pub epoch: Option<String>,
    pub values: Vec<Option<Vec<u8>>>,
    /// When the lookup was made: a fill arriving much later is not stored.
    started: Instant,
}

impl Lookup {
    /// Every key a miss, and nothing to be written back.
    pub fn misses(count: usize) -> Lookup {
        Lookup {
            epoch: None,
            values: vec![None; count],
            started: Instant::now(),
        }
    }
}

/// A test hook that runs between a database read and the cache write of its result, so that a
/// test can hold a read there while a change commits (the read–invalidate race).
pub type FillHook =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

pub struct Cache {
    connection: ConnectionManager,
    /// Prefix of every key (`roster` by default), so that deployments can share a Redis.
    namespace: String,
    /// (kind, id) → the newest version announced by a change notification.
    minimums: RwLock<HashMap<(char, Uuid), Minimum>>,
    raises: AtomicU64,
    /// Redis calls taking longer are abandoned and count as misses.
    timeout: Duration,
    ttl_seconds: u64,
    /// Set by the listener once it listens and has started a fresh epoch; cleared whenever
    /// notifications may be missed.
    listening: AtomicBool,
    /// The last Redis call failed: reported as degraded until one succeeds.
    redis_failing: AtomicBool,
    metrics: Arc<Metrics>,
    fill_hook: Option<FillHook>,
}

impl Cache {
    pub fn new(
        redis_url: &str,
        namespace: &str,
        timeout: Duration,
        ttl_seconds: u64,
        metrics: Arc<Metrics>,
        fill_hook: Option<FillHook>,
    ) -> Result<Cache, redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Cache {
            connection,
            namespace: namespace.to_owned(),
            minimums: RwLock::new(HashMap::new()),
            raises: AtomicU64::new(0),
            timeout,
            ttl_seconds,
            listening: AtomicBool::new(false),
            redis_failing: AtomicBool::new(false),
            metrics,
            fill_hook,
        })
    }

    pub fn state(&self) -> CacheState {
        if self.listening.load(Ordering::Acquire) && !self.redis_failing.load(Ordering::Relaxed) {
            CacheState::Ok
        } else {
            CacheState::Degraded
        }
    }

    /// Reads `keys`, validated; every key is a miss when the cache is not usable or Redis
    /// fails, and then `epoch` is None so that nothing is written back.
    pub async fn lookup(&self, keys: &[String]) -> Lookup {
        let started = Instant::now();
        if !self.listening.load(Ordering::Acquire) {
            return Lookup::misses(keys.len());
        }
        let mut command = redis::cmd("MGET");
        command.arg(self.key(keys::EPOCH));
        for key in keys {
            command.arg(self.key(key));
        }
        let mut connection = self.connection.clone();
        let reply = match tokio::time::timeout(
            self.timeout,
            command.query_async::<Vec<Option<Vec<u8>>>>(&mut connection),
        )
        .await
        {
            Ok(Ok(reply)) if reply.len() == keys.len() + 1 => reply,
            Ok(Ok(_)) => return Lookup::misses(keys.len()),
            Ok(Err(error)) => {
                self.failed("lookup", &error);
                return Lookup::misses(keys.len());
            }
            Err(_) => {
                self.timed_out("lookup");
                return Lookup::misses(keys.len());
            }
        };
        self.redis_failing.store(false, Ordering::Relaxed);
        let mut reply = reply.into_iter();
        let epoch = reply
            .next()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some(epoch) = epoch else {
            // Redis lost everything (restart, flush): entries are gone too. Start an epoch so
            // that what this request reads can be stored.
            let epoch = self.install_missing_epoch().await;
            self.metrics.cache_misses.inc_by(keys.len() as u64);
            return Lookup {
                epoch,
                values: vec![None; keys.len()],
                started,
            };
        };
        let values: Vec<Option<Vec<u8>>> = {
            let minimums = self.minimums.read().unwrap_or_else(|e| e.into_inner());
            reply
                .map(|raw| raw.and_then(|raw| fresh_payload(raw, &epoch, &minimums)))
                .collect()
        };
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.metrics.cache_hits.inc_by(hits);
        self.metrics.cache_misses.inc_by(keys.len() as u64 - hits);
        Lookup {
            epoch: Some(epoch),
            values,
            started,
        }
    }

    /// Writes entries read from the database under `epoch` (from the lookup that preceded the
    /// read). Failures are counted and otherwise ignored: a missing entry is only a miss.
    pub async fn store(&self, lookup: &Lookup, entries: Vec<(String, Deps, Vec<u8>)>) {
        let Some(epoch) = &lookup.epoch else { return };
        if entries.is_empty() {
            return;
        }
        if let Some(hook) = &self.fill_hook {
            hook().await;
        }
        if lookup.started.elapsed() > MAX_FILL_DELAY {
            return;
        }
        let mut pipeline = redis::pipe();
        for (key, deps, payload) in entries {
            let mut value = Vec::with_capacity(payload.len() + 128);
            value.extend_from_slice(epoch.as_bytes());
            value.push(b'\n');
            value.extend_from_slice(deps.encode().as_bytes());
            value.push(b'\n');
            value.extend_from_slice(&payload);
            pipeline
                .set_ex(self.key(&key), value, self.ttl_seconds)
                .ignore();
        }
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, pipeline.query_async::<()>(&mut connection)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.failed("store", &error),
            Err(_) => self.timed_out("store"),
        }
    }

    /// Applies a change notification: no entry computed from an older version of `id` is served
    /// again by this process.
    pub fn raise_minimum(&self, kind: char, id: Uuid, version: i64) {
        let now = Instant::now();
        let mut minimums = self.minimums.write().unwrap_or_else(|e| e.into_inner());
        let minimum = minimums.entry((kind, id)).or_insert(Minimum {
            version,
            raised: now,
        });
        if version > minimum.version {
            minimum.version = version;
        }
        minimum.raised = now;
        // A minimum matters only to entries written before it was raised: they are written at
        // most MAX_FILL_DELAY after their lookup and live ttl_seconds. Older ones can go.
        if self.raises.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            let horizon = MAX_FILL_DELAY + Duration::from_secs(self.ttl_seconds + 60);
            minimums.retain(|_, m| now.duration_since(m.raised) < horizon);
        }
    }

    /// The minimum version recorded for an organization (`o`) or user (`u`), if any.
    pub fn minimum(&self, kind: char, id: Uuid) -> Option<i64> {
        let minimums = self.minimums.read().unwrap_or_else(|e| e.into_inner());
        minimums.get(&(kind, id)).map(|m| m.version)
    }

    /// Starts a new epoch: every entry written before becomes unreachable.
    pub async fn start_epoch(&self) -> Result<(), String> {
        let mut connection = self.connection.clone();
        let call = connection.set::<_, _, ()>(self.key(keys::EPOCH), Uuid::new_v4().to_string());
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(())) => {
                self.redis_failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Pings Redis (within the timeout) so that the reported state follows Redis even without
    /// traffic: `/readyz` calls it.
    pub async fn probe(&self) {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(_)) => self.redis_failing.store(false, Ordering::Relaxed),
            Ok(Err(error)) => self.failed("ping", &error),
            Err(_) => self.timed_out("ping"),
        }
    }

    /// Called by the listener: true once it listens and a fresh epoch has started; false as
    /// soon as a notification may be missed.
    pub fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
    }

    /// After Redis lost its data: installs a fresh epoch unless another instance just did, and
    /// returns the current one.
    async fn install_missing_epoch(&self) -> Option<String> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(self.key(keys::EPOCH))
            .arg(Uuid::new_v4().to_string())
            .arg("NX")
            .ignore()
            .get(self.key(keys::EPOCH));
        let mut connection = self.connection.clone();
        match tokio::time::timeout(
            self.timeout,
            pipeline.query_async::<(Option<String>,)>(&mut connection),
        )
        .await
        {
            Ok(Ok((epoch,))) => epoch,
            Ok(Err(error)) => {
                self.failed("epoch", &error);
                None
            }
            Err(_) => {
                self.timed_out("epoch");
                None
            }
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.namespace)
    }

    fn failed(&self, operation: &str, error: &redis::RedisError) {
        self.metrics.cache_errors.inc();
        if !self.redis_failing.swap(true, Ordering::Relaxed) {
            log::warn!("cache {operation} failed, serving from the database: {error}");
        }
    }

    fn timed_out(&self, operation: &str) {
        self.metrics.cache_errors.inc();
        if !self.redis_failing.swap(true, Ordering::Relaxed) {
            log::warn!(
                "cache {operation} took over {} ms, serving from the database",
                self.timeout.as_millis()
            );
        }
    }
}

/// The newest version announced for an organization or user, and when it was last raised.
#[derive(Debug, Clone, Copy)]
struct Minimum {
    version: i64,
    raised: Instant,
}

/// The payload of an entry (`epoch\ndeps\npayload`) if it was written under `epoch` and none of
/// its dependencies is older than its minimum.
fn fresh_payload(
    mut raw: Vec<u8>,
    epoch: &str,
    minimums: &HashMap<(char, Uuid), Minimum>,
) -> Option<Vec<u8>> {
    let first = raw.iter().position(|b| *b == b'\n')?;
    let second = first + 1 + raw[first + 1..].iter().position(|b| *b == b'\n')?;
    if &raw[..first] != epoch.as_bytes() || !Deps::fresh(&raw[first + 1..second], minimums) {
        return None;
    }
    Some(raw.split_off(second + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_fresh_only_under_its_epoch_and_minimums() {
        let org = Uuid::new_v4();
        let user = Uuid::new_v4();
        let entry = |epoch: &str, org_version: i64| {
            let deps = Deps::new()
                .organization(org, org_version)
                .user(user, 3)
                .encode();
            format!("{epoch}\n{deps}\npayload").into_bytes()
        };
        let mut minimums = HashMap::new();
        let fresh = |raw: Vec<u8>, minimums: &HashMap<_, _>| fresh_payload(raw, "e1", minimums);
        assert_eq!(
            fresh(entry("e1", 5), &minimums),
            Some(b"payload".to_vec()),
            "no minimum yet"
        );
        assert_eq!(fresh(entry("e0", 5), &minimums), None, "another epoch");
        let raised = Instant::now();
        minimums.insert(('o', org), Minimum { version: 5, raised });
        assert!(fresh(entry("e1", 5), &minimums).is_some(), "at the minimum");
        minimums.insert(('o', org), Minimum { version: 6, raised });
        assert_eq!(
            fresh(entry("e1", 5), &minimums),
            None,
            "older than the minimum"
        );
        minimums.insert(('u', user), Minimum { version: 4, raised });
        assert_eq!(
            fresh(entry("e1", 6), &minimums),
            None,
            "the user dependency is older"
        );
        assert_eq!(
            fresh(b"e1 no newlines".to_vec(), &minimums),
            None,
            "malformed"
        );
    }

    #[test]
    fn deps_encode_as_kind_id_version_triples() {
        let org = Uuid::nil();
        let user = Uuid::max();
        let deps = Deps::new()
            .organization(org, 7)
            .user(user, 9_223_372_036_854_775_807);
        assert_eq!(
            deps.encode(),
            format!("o:{org}:7,u:{user}:9223372036854775807")
        );
    }
}
