//! The Redis cache of authorization lookups and read responses, kept exact by the database's
//! change stream (see `sql/migrations/V10__change_notifications.sql` and `listener.rs`).
//!
//! How an entry stays exact:
//! - every entry records the **epoch** it was read under and its **dependencies**: the
//!   `authz_version` of each organization and user it was computed from, read in the same
//!   database statement as the data itself;
//! - the listener turns each change notification into a **minimum version** per organization
//!   or user (`roster:minver:o:{id}`); an entry is served only if every dependency is at least
//!   that minimum and its epoch is the current one. Validation happens inside Redis, in the same
//!   script that reads the entry, so a read costs one Redis round trip;
//! - so a response read from the database just before a change can still be written to Redis
//!   after the change's invalidation (the read–invalidate race), but it is never served: its
//!   versions are older than the minimum;
//! - when notifications may have been missed (listener reconnect, Redis trouble while applying
//!   one) the listener starts a new epoch, which makes every existing entry unreachable; until
//!   the listener is connected and has done so, the cache is not used at all.
//!
//! Any Redis failure or timeout is a miss: the request goes to the database. Nothing here can
//! grant access that the database would not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use uuid::Uuid;

use crate::metrics::Metrics;

/// Reads the epoch and validates each entry against it and its dependencies' minimum versions.
/// KEYS[1] is the epoch key, KEYS[2..] the entries; ARGV[1] a fresh epoch to install if there
/// is none (Redis restarted empty), ARGV[2] the namespace of the minimum versions. Returns the
/// epoch then one value or false per entry.
const LOOKUP_SCRIPT: &str = r#"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  return {redis.call('GET', KEYS[1])}
end
local out = {epoch}
for i = 2, #KEYS do
  local value = false
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local first = string.find(raw, '\n', 1, true)
    local second = first and string.find(raw, '\n', first + 1, true)
    if second and string.sub(raw, 1, first - 1) == epoch then
      local fresh = true
      for kind, id, version in string.gmatch(string.sub(raw, first + 1, second - 1), '(%a):([%x%-]+):(%d+)') do
        local minimum = redis.call('GET', ARGV[2] .. ':minver:' .. kind .. ':' .. id)
        if minimum and tonumber(minimum) > tonumber(version) then
          fresh = false
          break
        end
      end
      if fresh then
        value = string.sub(raw, second + 1)
      end
    end
  end
  out[#out + 1] = value
end
return out
"#;

/// Raises a minimum version, never lowers it. KEYS[1] the minimum, ARGV[1] the version,
/// ARGV[2] its lifetime in seconds.
const RAISE_MINIMUM_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"#;

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

    pub(super) fn minimum(kind: char, id: Uuid) -> String {
        format!("minver:{kind}:{id}")
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
}

impl Lookup {
    /// Every key a miss, and nothing to be written back.
    pub fn misses(count: usize) -> Lookup {
        Lookup {
            epoch: None,
            values: vec![None; count],
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
    lookup: Script,
    raise_minimum: Script,
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
            lookup: Script::new(LOOKUP_SCRIPT),
            raise_minimum: Script::new(RAISE_MINIMUM_SCRIPT),
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
        if !self.listening.load(Ordering::Acquire) {
            return Lookup::misses(keys.len());
        }
        let mut invocation = self.lookup.key(self.key(keys::EPOCH));
        for key in keys {
            invocation.key(self.key(key));
        }
        invocation
            .arg(Uuid::new_v4().to_string())
            .arg(&self.namespace);
        let mut connection = self.connection.clone();
        let result = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Vec<redis::Value>>(&mut connection),
        )
        .await;
        let reply = match result {
            Ok(Ok(reply)) => reply,
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
        // Lua's false arrives as nil; only a bulk string is a value.
        let mut reply = reply.into_iter().map(|value| match value {
            redis::Value::BulkString(bytes) => Some(bytes),
            _ => None,
        });
        let epoch = reply
            .next()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let values: Vec<Option<Vec<u8>>> =
            (0..keys.len()).map(|_| reply.next().flatten()).collect();
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.metrics.cache_hits.add(hits);
        self.metrics.cache_misses.add(keys.len() as u64 - hits);
        Lookup { epoch, values }
    }

    /// Writes entries read from the database under `epoch` (from the lookup that preceded the
    /// read). Failures are counted and otherwise ignored: a missing entry is only a miss.
    pub async fn store(&self, epoch: Option<&str>, entries: Vec<(String, Deps, Vec<u8>)>) {
        let Some(epoch) = epoch else { return };
        if entries.is_empty() {
            return;
        }
        if let Some(hook) = &self.fill_hook {
            hook().await;
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
    /// again. An error means the change may not be applied: the caller must stop using the
    /// cache and start a new epoch.
    pub async fn raise_minimum(&self, kind: char, id: Uuid, version: i64) -> Result<(), String> {
        // Minimums outlive every entry they judge, even one written late.
        let lifetime = self.ttl_seconds * 2 + 60;
        let mut connection = self.connection.clone();
        let mut invocation = self.raise_minimum.key(self.key(&keys::minimum(kind, id)));
        invocation.arg(version).arg(lifetime);
        let call = invocation.invoke_async::<i64>(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
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

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.namespace)
    }

    fn failed(&self, operation: &str, error: &redis::RedisError) {
        self.metrics.cache_errors.add(1);
        if !self.redis_failing.swap(true, Ordering::Relaxed) {
            log::warn!("cache {operation} failed, serving from the database: {error}");
        }
    }

    fn timed_out(&self, operation: &str) {
        self.metrics.cache_errors.add(1);
        if !self.redis_failing.swap(true, Ordering::Relaxed) {
            log::warn!(
                "cache {operation} took over {} ms, serving from the database",
                self.timeout.as_millis()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deps_encode_as_the_lookup_script_parses_them() {
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
