//! The Redis cache of authorization lookups and read responses, kept exact by the database's
//! change stream (see `sql/CACHE.md` and `listener.rs`).
//!
//! How an entry stays exact:
//! - every entry records the **epoch** it was read under and its **dependencies**: the
//!   version of its tenant and of each organization and user it was computed from,
//!   read in the same database statement as the data itself;
//! - the listener turns each change notification into a **minimum version** per (kind, tenant,
//!   id), kept in this process (every API instance runs its own listener, so each knows every
//!   change since the current epoch began); an entry is served only if its epoch is the current
//!   one (read from Redis in the same `MGET` as the entries; on a Redis Cluster, with a `GET`
//!   beside it: see `read_cluster`) and every dependency is at least its minimum;
//! - so a response read from the database just before a change can still be written to Redis
//!   after the change's invalidation (the read–invalidate race), but it is never served: its
//!   versions are older than the minimum;
//! - when notifications may have been missed (the listener reconnects) it starts a new epoch in
//!   Redis, which makes every existing entry, whichever instance wrote it, unreachable; until
//!   the listener is connected and has done so, this instance does not use the cache at all;
//! - epochs are ordered (`NEW_EPOCH`), and one older than the newest this process knows is
//!   replaced, not trusted: a Redis that went back in time (failed over to a replica that missed
//!   the newest epoch, restarted from an older snapshot) would otherwise bring back entries
//!   from before changes this process never heard of.
//!
//! What Redis must not hold, because nothing bounds it, stays in this process: refusals for
//! ids that exist nowhere (a user id nobody has, an organization id of no organization of the
//! caller's tenant) and the tenants' permission catalogues, in a small LRU validated exactly
//! like Redis entries (dependencies against minimums), and emptied whenever notifications may
//! have been missed.
//!
//! Redis is not trusted: every entry carries an HMAC of its key and value under `CACHE_KEY`,
//! and one that does not verify is a miss (and a warning). Keys carry the tenant, so that two
//! tenants' rows that share an id (possible by raw SQL) never share an entry. Any Redis failure
//! or timeout is a miss: the request goes to the database. Nothing here can grant access that
//! the database would not.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::{join, join_all};
use hmac::{Hmac, Mac};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use sha2::Sha256;
use uuid::Uuid;

use crate::consistency::StreamPosition;
use crate::metrics::Metrics;

/// A read whose database answer arrives later than this after its cache lookup is not
/// stored: it bounds how late a stale entry can be written, and so how long minimum versions
/// must be kept (see `Cache::raise_minimum`).
const MAX_FILL_DELAY: Duration = Duration::from_secs(30);

/// Users whose tenant this process remembers; past it the map starts afresh (the next request
/// of each user costs one database round trip).
const MAX_KNOWN_USERS: usize = 200_000;

/// Starts an epoch: `{order}.{uuid}`, its order above both ARGV[1] and the current epoch's,
/// so that the epoch key's values only ever grow. ARGV[3] is `*` to start one whatever the
/// current epoch, or the epoch to replace (empty: only if there is none); another current
/// epoch is returned unchanged, so that instances seeing the same trouble start one epoch, not
/// one each. An epoch without an order (an older Roster's UUID) counts as order 0.
const NEW_EPOCH: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[3] ~= '*' and (current or '') ~= ARGV[3] then return current end
local order = tonumber(ARGV[1])
local seen = current and tonumber(string.match(current, '^(%d+)%.'))
if seen and seen >= order then order = seen + 1 end
local epoch = string.format('%d.%s', order, ARGV[2])
redis.call('SET', KEYS[1], epoch)
return epoch
";

/// Entries of the in-process store (refusals of strangers, catalogues).
const LOCAL_ENTRIES: usize = 10_000;

/// The tenant in the keys of answers about a user id that exists in no tenant.
pub const NO_TENANT: Uuid = Uuid::nil();

/// Bytes of HMAC-SHA256 kept in each entry's tag (128 bits).
const TAG_BYTES: usize = 16;

/// What a cache entry depends on: the versioned rows of `sql/CACHE.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepKind {
    Tenant,
    Organization,
    User,
    /// An organization's resource grants and hierarchy (`roster.resource_versions`): what
    /// resource checks depend on besides the organization and the user.
    Resources,
}

impl DepKind {
    fn code(self) -> char {
        match self {
            DepKind::Tenant => 't',
            DepKind::Organization => 'o',
            DepKind::User => 'u',
            DepKind::Resources => 'r',
        }
    }

    fn from_code(code: &str) -> Option<DepKind> {
        match code {
            "t" => Some(DepKind::Tenant),
            "o" => Some(DepKind::Organization),
            "u" => Some(DepKind::User),
            "r" => Some(DepKind::Resources),
            _ => None,
        }
    }
}

/// What an entry was computed from, all in one tenant: the tenant's own version, then
/// `(kind, id, version)` of each organization and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deps {
    tenant: Uuid,
    items: Vec<(DepKind, Uuid, i64)>,
}

impl Deps {
    /// Every entry depends on its tenant.
    pub fn new(tenant: Uuid, tenant_version: i64) -> Deps {
        Deps {
            tenant,
            items: vec![(DepKind::Tenant, tenant, tenant_version)],
        }
    }

    pub fn organization(mut self, id: Uuid, version: i64) -> Deps {
        self.items.push((DepKind::Organization, id, version));
        self
    }

    pub fn user(mut self, id: Uuid, version: i64) -> Deps {
        self.items.push((DepKind::User, id, version));
        self
    }

    /// The resource version of an organization.
    pub fn resources(mut self, org: Uuid, version: i64) -> Deps {
        self.items.push((DepKind::Resources, org, version));
        self
    }

    pub fn tenant(&self) -> Uuid {
        self.tenant
    }

    /// Whether every dependency is at least its minimum.
    fn fresh_items(&self, minimums: &Minimums) -> bool {
        self.items.iter().all(|(kind, id, version)| {
            minimums
                .get(&(*kind, self.tenant, *id))
                .is_none_or(|minimum| *version >= minimum.version)
        })
    }

    /// Whether every encoded dependency of an entry of `tenant` is at least its minimum.
    fn fresh(tenant: Uuid, encoded: &[u8], minimums: &Minimums) -> bool {
        let Ok(encoded) = std::str::from_utf8(encoded) else {
            return false;
        };
        encoded.split(',').all(|dep| {
            let mut parts = dep.splitn(3, ':');
            let (Some(kind), Some(id), Some(version)) = (parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            let (Some(kind), Ok(id), Ok(version)) = (
                DepKind::from_code(kind),
                id.parse::<Uuid>(),
                version.parse::<i64>(),
            ) else {
                return false;
            };
            minimums
                .get(&(kind, tenant, id))
                .is_none_or(|minimum| version >= minimum.version)
        })
    }

    fn encode(&self) -> String {
        let mut text = String::with_capacity(self.items.len() * 60);
        for (i, (kind, id, version)) in self.items.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            let _ = write!(text, "{separator}{}:{id}:{version}", kind.code());
        }
        text
    }
}

/// A cache key: its tenant (`NO_TENANT` when the caller's tenant is not known yet: only
/// refusals of strangers are found under it, in this process) and its name, without the
/// namespace the cache prefixes. Every name includes the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub tenant: Uuid,
    pub name: String,
    /// Only ever stored in this process (`Place::Local` whatever the tenant): never asked of
    /// Redis.
    local_only: bool,
}

/// The keys of cached items, in one place. Each name carries a Redis Cluster hash tag (the
/// part in braces decides the slot) so that the keys one lookup reads together share a slot:
/// `{tenant:org}` for what is about an organization, `{tenant:user}` for what is about a user
/// alone. The epoch key has none: it is read on its own.
pub mod keys {
    use super::Key;
    use crate::domain::Resource;
    use uuid::Uuid;

    fn key(tenant: Uuid, name: String) -> Key {
        Key {
            tenant,
            name,
            local_only: false,
        }
    }

    pub fn identity(tenant: Uuid, user: Uuid) -> Key {
        key(tenant, format!("identity:{{{tenant}:{user}}}"))
    }

    pub fn access(tenant: Uuid, org: Uuid, user: Uuid) -> Key {
        key(tenant, format!("access:{{{tenant}:{org}}}:{user}"))
    }

    pub fn organization(tenant: Uuid, org: Uuid) -> Key {
        key(tenant, format!("org:{{{tenant}:{org}}}"))
    }

    pub fn members(tenant: Uuid, org: Uuid, limit: i32, offset: i32) -> Key {
        key(
            tenant,
            format!("members:{{{tenant}:{org}}}:{limit}:{offset}"),
        )
    }

    pub fn user_organizations(tenant: Uuid, user: Uuid, limit: i32, offset: i32) -> Key {
        key(
            tenant,
            format!("user-orgs:{{{tenant}:{user}}}:{limit}:{offset}"),
        )
    }

    /// The type's length keeps `a:b` + `c` apart from `a` + `b:c`.
    pub fn resource_access(tenant: Uuid, org: Uuid, user: Uuid, kind: &str, id: &str) -> Key {
        key(
            tenant,
            format!(
                "res-access:{{{tenant}:{org}}}:{user}:{}:{kind}:{id}",
                kind.len()
            ),
        )
    }

    /// `roster.explain_access`'s answer; lengths keep the parts apart as in `resource_access`.
    pub fn explanation(
        tenant: Uuid,
        org: Uuid,
        user: Uuid,
        permission: &str,
        resource: Option<&Resource<'_>>,
    ) -> Key {
        let mut name = format!(
            "explain:{{{tenant}:{org}}}:{user}:{}:{permission}",
            permission.len()
        );
        if let Some(Resource { kind, id }) = resource {
            name.push_str(&format!(":{}:{kind}:{id}", kind.len()));
        }
        key(tenant, name)
    }

    /// In this process only (`reads::catalogue_fill`).
    pub fn catalogue(tenant: Uuid) -> Key {
        Key {
            local_only: true,
            ..key(tenant, format!("perm-names:{{{tenant}}}"))
        }
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
    /// The in-process store's generation at the lookup: None when it is not in use.
    generation: Option<u64>,
}

impl Lookup {
    /// Every key a miss, and nothing to be written back.
    pub fn misses(count: usize) -> Lookup {
        Lookup {
            epoch: None,
            values: vec![None; count],
            started: Instant::now(),
            generation: None,
        }
    }
}

/// Where a fill goes: Redis, shared by every instance, or this process only (what nothing
/// bounds: refusals for ids that exist nowhere, catalogues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Shared,
    Local,
}

/// One entry to store after a database read.
pub struct Fill {
    pub key: Key,
    pub deps: Deps,
    pub payload: Vec<u8>,
    pub place: Place,
    /// The earliest expiry (of a membership, a group membership, a grant) the answer depends
    /// on: the entry is not served past it.
    pub until: Option<SystemTime>,
}

impl Fill {
    pub fn new(key: Key, deps: Deps, payload: Vec<u8>, place: Place) -> Fill {
        Fill {
            key,
            deps,
            payload,
            place,
            until: None,
        }
    }

    pub fn until(mut self, until: Option<SystemTime>) -> Fill {
        self.until = until;
        self
    }
}

/// What an access token's check needs of a user's access to an organization
/// (`Cache::version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessVersion {
    /// The user's tenant (None: no such user).
    pub tenant: Option<Uuid>,
    /// The user may act.
    pub live: bool,
    /// The sum of the tenant's, the user's and the organization's versions.
    pub version: i64,
}

/// An entry of `Cache::versions`.
struct VersionEntry {
    generation: u64,
    deps: Deps,
    until: SystemTime,
    value: AccessVersion,
}

/// An entry of the in-process store.
struct LocalEntry {
    generation: u64,
    deps: Deps,
    payload: Vec<u8>,
    until: Option<SystemTime>,
}

/// A test hook that runs between a database read and the cache write of its result, so that a
/// test can hold a read there while a change commits (the read–invalidate race).
pub type FillHook =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

type Minimums = HashMap<(DepKind, Uuid, Uuid), Minimum>;

/// The connection to Redis: one server (with replicas or not), or a Redis Cluster.
#[derive(Clone)]
enum Connection {
    /// A lookup is one `MGET` with the epoch, atomic.
    Single(ConnectionManager),
    /// A lookup is a `GET` of the epoch and one `MGET` per hash slot, sent concurrently.
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(connection) => connection.req_packed_commands(cmd, offset, count),
            Connection::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// PINGs every primary that `CLUSTER SLOTS` names, each on the client's own connection to it:
/// a cluster with one down serves only part of the keys. (A fan-out to all primaries would not
/// do: the client skips the nodes it has no connection to.)
async fn probe_primaries(connection: &ClusterConnection) -> redis::RedisResult<()> {
    let mut connection = connection.clone();
    let mut slots = redis::cmd("CLUSTER");
    slots.arg("SLOTS");
    let random = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
    let slots = connection.route_command(slots, random).await?;
    let mut primaries: Vec<(String, u16)> = Vec::new();
    let redis::Value::Array(ranges) = slots else {
        return Err((redis::ErrorKind::Parse, "CLUSTER SLOTS: not an array").into());
    };
    for range in ranges {
        // [start, end, [host, port, id, ...], replicas...]
        let redis::Value::Array(range) = range else {
            continue;
        };
        let Some(redis::Value::Array(primary)) = range.get(2) else {
            continue;
        };
        let host = match primary.first() {
            Some(redis::Value::BulkString(host)) => String::from_utf8_lossy(host).into_owned(),
            _ => continue,
        };
        let port = match primary.get(1) {
            Some(redis::Value::Int(port)) => u16::try_from(*port).unwrap_or(0),
            _ => continue,
        };
        // An empty host is the answering node's own, which the client resolves; unknown here.
        if !host.is_empty() && !primaries.contains(&(host.clone(), port)) {
            primaries.push((host, port));
        }
    }
    if primaries.is_empty() {
        return Err((redis::ErrorKind::Parse, "CLUSTER SLOTS: no primaries").into());
    }
    let pings = primaries.into_iter().map(|(host, port)| {
        let mut connection = connection.clone();
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
        async move { connection.route_command(redis::cmd("PING"), routing).await }
    });
    join_all(pings)
        .await
        .into_iter()
        .try_for_each(|ping| ping.map(drop))
}

/// Indices of `keys` grouped by hash slot, in order of first appearance: a cluster node
/// answers a multi-key command only for keys of one slot.
fn by_slot<K: AsRef<[u8]>>(keys: &[K]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(Slot, Vec<usize>)> = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let slot = Slot::for_key(key);
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push(index),
            None => groups.push((slot, vec![index])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// The order of an epoch `{order}.{uuid}` (`NEW_EPOCH`); 0 for one without (an older
/// Roster's), which any newer instance then replaces.
fn epoch_order(epoch: &str) -> u64 {
    epoch
        .split_once('.')
        .and_then(|(order, _)| order.parse().ok())
        .unwrap_or(0)
}

pub struct Cache {
    connection: Connection,
    /// Prefix of every key (`roster` by default), so that deployments can share a Redis.
    namespace: String,
    /// HMAC-SHA256 keyed with CACHE_KEY, its key schedule done once.
    signer: Hmac<Sha256>,
    /// (kind, tenant, id) → the newest version announced by a change notification.
    minimums: RwLock<Minimums>,
    raises: AtomicU64,
    /// user → tenant, learnt from the database's answers, so that a request can name its
    /// tenant's keys before it reads them. Forgotten when a notification shows the user in
    /// another tenant.
    tenants: RwLock<HashMap<Uuid, Uuid>>,
    /// Redis calls taking longer are abandoned and count as misses.
    timeout: Duration,
    ttl_seconds: u64,
    /// Set by the listener once it listens and has started a fresh epoch; cleared whenever
    /// notifications may be missed.
    listening: AtomicBool,
    /// The highest epoch order this process has started or read: an epoch below it is one
    /// Redis lost and went back from.
    epoch_floor: AtomicU64,
    new_epoch: redis::Script,
    /// The last Redis call failed: reported as degraded until one succeeds.
    redis_failing: AtomicBool,
    /// Cluster only: a call failed (a node down, say) since the last probe that reached every
    /// primary; only such a probe (`/readyz`) clears it: a call on the live nodes proves
    /// nothing about the others.
    nodes_failing: AtomicBool,
    /// Refusals of strangers and catalogues, in this process only.
    local: Mutex<lru::LruCache<String, LocalEntry>>,
    /// Copies of the entries this process wrote to Redis, validated as the in-process store's
    /// are and served only while the cache is `ok` (see `lookup`); None when turned off.
    near: Option<Mutex<lru::LruCache<String, LocalEntry>>>,
    /// (user, organization) → its current authorization version, for access tokens' checks.
    versions: Mutex<lru::LruCache<(Uuid, Uuid), VersionEntry>>,
    /// Bumped whenever the in-process store's entries may be stale (notifications missed,
    /// global catalogue changed): older entries are not served.
    local_generation: AtomicU64,
    /// When an entry with a bad tag was last reported (seconds since `created`).
    last_forgery_warning: AtomicU64,
    created: Instant,
    metrics: Arc<Metrics>,
    fill_hook: Option<FillHook>,
    /// How far the listener has applied the change log, for `Roster-Consistency`.
    position: StreamPosition,
}

/// How the cache is set up: see the `CACHE_*` and `REDIS_*` settings.
pub struct CacheConfig<'a> {
    /// One URL, or with `cluster` the comma-separated seed nodes of a Redis Cluster.
    pub redis_url: &'a str,
    pub cluster: bool,
    pub namespace: &'a str,
    /// The secret entries are authenticated with (CACHE_KEY).
    pub key: &'a [u8],
    pub timeout: Duration,
    pub ttl_seconds: u64,
    /// The near store's size (CACHE_NEAR_ENTRIES); 0: none.
    pub near_entries: usize,
}

impl Cache {
    pub fn new(
        config: CacheConfig<'_>,
        metrics: Arc<Metrics>,
        fill_hook: Option<FillHook>,
    ) -> Result<Cache, redis::RedisError> {
        let connection = match config.cluster {
            false => {
                let client = redis::Client::open(config.redis_url)?;
                let connection_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.timeout))
                    .set_response_timeout(Some(config.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                Connection::Single(ConnectionManager::new_lazy_with_config(
                    client,
                    connection_config,
                )?)
            }
            true => {
                let nodes = config
                    .redis_url
                    .split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty());
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(config.timeout)
                    .response_timeout(config.timeout)
                    // One retry follows a MOVED or ASK (resharding); more would keep a call
                    // for a node down retrying until REDIS_TIMEOUT_MS instead of failing fast.
                    .retries(1)
                    .max_retry_wait(50)
                    .build()?;
                // Pending: it connects in the background, so start-up does not wait for the
                // cluster; calls before then fail or time out, which is a miss.
                let cluster_config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(config.timeout)
                    .set_response_timeout(config.timeout);
                Connection::Cluster(client.get_pending_async_connection_with_config(cluster_config))
            }
        };
        Ok(Cache {
            connection,
            namespace: config.namespace.to_owned(),
            signer: Hmac::new_from_slice(config.key).expect("HMAC takes a key of any length"),
            minimums: RwLock::new(HashMap::new()),
            raises: AtomicU64::new(0),
            tenants: RwLock::new(HashMap::new()),
            timeout: config.timeout,
            ttl_seconds: config.ttl_seconds,
            listening: AtomicBool::new(false),
            epoch_floor: AtomicU64::new(0),
            new_epoch: redis::Script::new(NEW_EPOCH),
            redis_failing: AtomicBool::new(false),
            nodes_failing: AtomicBool::new(false),
            local: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(LOCAL_ENTRIES).expect("a positive size"),
            )),
            near: NonZeroUsize::new(config.near_entries)
                .map(|size| Mutex::new(lru::LruCache::new(size))),
            versions: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(LOCAL_ENTRIES).expect("a positive size"),
            )),
            local_generation: AtomicU64::new(0),
            last_forgery_warning: AtomicU64::new(0),
            created: Instant::now(),
            metrics,
            fill_hook,
            position: StreamPosition::default(),
        })
    }

    /// How far the listener has applied the change log.
    pub fn position(&self) -> &StreamPosition {
        &self.position
    }

    pub fn state(&self) -> CacheState {
        if self.listening.load(Ordering::Acquire)
            && !self.redis_failing.load(Ordering::Relaxed)
            && !self.nodes_failing.load(Ordering::Relaxed)
        {
            CacheState::Ok
        } else {
            CacheState::Degraded
        }
    }

    /// The tenant of a user this process has seen in a database answer, while the cache is in
    /// use (the listener keeps the knowledge current).
    pub fn tenant_of(&self, user: Uuid) -> Option<Uuid> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let tenants = self.tenants.read().unwrap_or_else(|e| e.into_inner());
        tenants.get(&user).copied()
    }

    /// Records a user's tenant from a database answer.
    pub fn learn_tenant(&self, user: Uuid, tenant: Uuid) {
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        if tenants.len() >= MAX_KNOWN_USERS && !tenants.contains_key(&user) {
            tenants.clear();
        }
        tenants.insert(user, tenant);
    }

    /// Applies a notification about a user: if it shows the user in another tenant than the
    /// one remembered (a second row with the same id, or a moved row), or deleted, the next
    /// request asks the database, which refuses an ambiguous id.
    fn user_seen(&self, tenant: Uuid, user: Uuid, version: i64) {
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        if version == i64::MAX || tenants.get(&user).is_some_and(|known| *known != tenant) {
            tenants.remove(&user);
        }
    }

    /// Reads `keys`, validated: from this process (the near store while the cache is `ok`,
    /// and the in-process store), then what is missing from Redis. Every key is a miss when
    /// the cache is not usable; when Redis fails, `epoch` is None so that nothing is written
    /// there. Keys of `NO_TENANT` and local-only keys are not asked of Redis, which never holds
    /// them; with no other keys for Redis, the lookup reads only the epoch that a fill will be
    /// written under, unless only local-only keys are missing (their fills stay here).
    ///
    /// The near store is as exact as Redis: its entries are validated against this process's
    /// minimums, which every committed change reaches (the listener), and voided with the
    /// in-process store whenever changes may have been missed. Another instance's new epoch
    /// does not void it: that instance started one for changes its own listener may have
    /// missed, not this one's. It is not used while the cache is degraded, so that Redis
    /// trouble keeps sending every request to the database (and is still noticed).
    pub async fn lookup(&self, keys: &[Key]) -> Lookup {
        let started = Instant::now();
        if !self.listening.load(Ordering::Acquire) {
            return Lookup::misses(keys.len());
        }
        let generation = self.local_generation.load(Ordering::Acquire);
        let near = self
            .near
            .as_ref()
            .filter(|_| self.state() == CacheState::Ok);
        let mut values: Vec<Option<Vec<u8>>> = keys
            .iter()
            .map(|key| {
                near.and_then(|near| self.recall_at(near, key, generation))
                    .or_else(|| self.recall_at(&self.local, key, generation))
            })
            .collect();
        let mut epoch = None;
        // What a missing local-only key's read fills stays here: no epoch is needed for it.
        let to_redis = |(key, value): (&Key, &Option<Vec<u8>>)| value.is_none() && !key.local_only;
        if keys.iter().zip(&values).any(to_redis) {
            let (wanted, shared): (Vec<usize>, Vec<&Key>) = keys
                .iter()
                .enumerate()
                .filter(|(i, key)| to_redis((key, &values[*i])) && key.tenant != NO_TENANT)
                .unzip();
            let (read_epoch, shared_values) = self.lookup_shared(&shared).await;
            epoch = read_epoch;
            for (i, value) in wanted.into_iter().zip(shared_values) {
                values[i] = value;
            }
        }
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.metrics.cache_hits.inc_by(hits);
        self.metrics.cache_misses.inc_by(keys.len() as u64 - hits);
        Lookup {
            epoch,
            values,
            started,
            generation: Some(generation),
        }
    }

    fn recall_at(
        &self,
        store: &Mutex<lru::LruCache<String, LocalEntry>>,
        key: &Key,
        generation: u64,
    ) -> Option<Vec<u8>> {
        let now = SystemTime::now();
        let minimums = self.minimums.read().unwrap_or_else(|e| e.into_inner());
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        store.get(&key.name).and_then(|entry| {
            let fresh = entry.generation == generation
                && entry.deps.tenant == key.tenant
                && entry.until.is_none_or(|until| now < until)
                && entry.deps.fresh_items(&minimums);
            fresh.then(|| entry.payload.clone())
        })
    }

    /// The current authorization version of a user in an organization (an access token's
    /// check), if this process holds it: no Redis round trip, no decoding. Kept with
    /// [`Cache::keep_version`] from an access entry, with that entry's dependencies, and
    /// validated as every in-process entry is (against the listener's minimums), so exactly as
    /// fresh as the entry it comes from.
    pub fn version(&self, user: Uuid, org: Uuid) -> Option<AccessVersion> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let generation = self.local_generation.load(Ordering::Acquire);
        let now = SystemTime::now();
        let minimums = self.minimums.read().unwrap_or_else(|e| e.into_inner());
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        versions.get(&(user, org)).and_then(|entry| {
            let fresh = entry.generation == generation
                && now < entry.until
                && entry.deps.fresh_items(&minimums);
            fresh.then_some(entry.value)
        })
    }

    /// Keeps what an access entry read after `lookup` says of its user's version, for
    /// [`Cache::version`].
    pub fn keep_version(
        &self,
        lookup: &Lookup,
        (user, org): (Uuid, Uuid),
        deps: Deps,
        until: Option<SystemTime>,
        value: AccessVersion,
    ) {
        let Some(generation) = lookup.generation else {
            return;
        };
        if lookup.started.elapsed() > MAX_FILL_DELAY
            || generation != self.local_generation.load(Ordering::Acquire)
        {
            return;
        }
        let end = SystemTime::now() + Duration::from_secs(self.ttl_seconds);
        let entry = VersionEntry {
            generation,
            deps,
            until: until.map_or(end, |until| until.min(end)),
            value,
        };
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        versions.put((user, org), entry);
    }

    /// What a read that will `store` only in this process must be made after (its start and
    /// the store's generation), in place of a Redis lookup.
    pub fn local_lookup(&self) -> Lookup {
        Lookup {
            epoch: None,
            values: Vec::new(),
            started: Instant::now(),
            generation: self
                .listening
                .load(Ordering::Acquire)
                .then(|| self.local_generation.load(Ordering::Acquire)),
        }
    }

    /// The epoch and the fresh values of `keys` in Redis (None each on any failure).
    async fn lookup_shared(&self, keys: &[&Key]) -> (Option<String>, Vec<Option<Vec<u8>>>) {
        let misses = || vec![None; keys.len()];
        let full_keys: Vec<String> = keys.iter().map(|key| self.key(&key.name)).collect();
        let read = match &self.connection {
            Connection::Single(connection) => self.read_single(connection, &full_keys).await,
            Connection::Cluster(connection) => self.read_cluster(connection, &full_keys).await,
        };
        let Some((epoch, reply)) = read else {
            return (None, misses());
        };
        let epoch = epoch.and_then(|bytes| String::from_utf8(bytes).ok());
        let Some(epoch) = epoch else {
            // Redis lost everything (restart, flush): entries are gone too. Start an epoch so
            // that what this request reads can be stored.
            return (self.replace_epoch("").await, misses());
        };
        if !self.knows_no_newer_epoch(&epoch) {
            log::warn!(
                "the cache epoch in Redis went back to an older one (a failover to a replica \
                 that missed the newest, or a restore from an older copy): starting a new one"
            );
            return (self.replace_epoch(&epoch).await, misses());
        }
        let minimums = self.minimums.read().unwrap_or_else(|e| e.into_inner());
        let values = reply
            .into_iter()
            .zip(full_keys.iter().zip(keys))
            .map(|(raw, (full_key, key))| {
                // An entry of another epoch is a miss whoever wrote it; one of this epoch must
                // carry a valid tag.
                let entry = Entry::parse(raw?)?;
                if entry.epoch() != epoch.as_bytes() {
                    return None;
                }
                let entry = self.verified(full_key, entry)?;
                let fresh = entry.tenant == key.tenant
                    && Deps::fresh(entry.tenant, entry.deps(), &minimums);
                fresh.then(|| entry.into_payload())
            })
            .collect();
        drop(minimums);
        (Some(epoch), values)
    }

    /// The raw epoch and values of `full_keys`, in one `MGET`; None on failure.
    async fn read_single(
        &self,
        connection: &ConnectionManager,
        full_keys: &[String],
    ) -> Option<(Option<Vec<u8>>, Vec<Option<Vec<u8>>>)> {
        let mut command = redis::cmd("MGET");
        command.arg(self.key(keys::EPOCH));
        for key in full_keys {
            command.arg(key);
        }
        let mut connection = connection.clone();
        let reply = match tokio::time::timeout(
            self.timeout,
            command.query_async::<Vec<Option<Vec<u8>>>>(&mut connection),
        )
        .await
        {
            Ok(Ok(reply)) if reply.len() == full_keys.len() + 1 => reply,
            Ok(Ok(_)) => return None,
            Ok(Err(error)) => {
                self.failed("lookup", &error);
                return None;
            }
            Err(_) => {
                self.timed_out("lookup");
                return None;
            }
        };
        self.redis_failing.store(false, Ordering::Relaxed);
        let mut reply = reply.into_iter();
        let epoch = reply.next().flatten();
        Some((epoch, reply.collect()))
    }

    /// The same from a cluster: the epoch with a `GET` of its own and the keys with one `MGET`
    /// per slot, concurrently, all within the one timeout. A part that fails leaves its keys
    /// missing; without the epoch, everything is.
    ///
    /// The epoch is not read atomically with the entries, and need not be. An entry is served
    /// only if it carries the epoch this lookup read, E; it was filled from a database read
    /// made after a lookup saw E, so after E was SET. This instance's listener SET its own
    /// epoch after its first snapshot of the change log, and uses the cache only since, so E is
    /// that epoch or a later one (an older one is refused: `knows_no_newer_epoch`), and every
    /// change committed after the entry's database read reaches this instance's minimums. When
    /// the epoch is read, before or after the entries, changes nothing of that.
    async fn read_cluster(
        &self,
        connection: &ClusterConnection,
        full_keys: &[String],
    ) -> Option<(Option<Vec<u8>>, Vec<Option<Vec<u8>>>)> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut get = redis::cmd("GET");
        get.arg(self.key(keys::EPOCH));
        let mut epoch_connection = connection.clone();
        let epoch = tokio::time::timeout_at(
            deadline,
            get.query_async::<Option<Vec<u8>>>(&mut epoch_connection),
        );
        let groups = by_slot(full_keys);
        let mgets = groups.iter().map(|group| {
            let mut command = redis::cmd("MGET");
            for index in group {
                command.arg(&full_keys[*index]);
            }
            let mut connection = connection.clone();
            async move {
                tokio::time::timeout_at(
                    deadline,
                    command.query_async::<Vec<Option<Vec<u8>>>>(&mut connection),
                )
                .await
            }
        });
        let (epoch, replies) = join(epoch, join_all(mgets)).await;
        let epoch = self.outcome("lookup", epoch);
        let mut complete = epoch.is_some();
        let mut values = vec![None; full_keys.len()];
        for (group, reply) in groups.iter().zip(replies) {
            match self.outcome("lookup", reply) {
                Some(reply) if reply.len() == group.len() => {
                    for (index, value) in group.iter().zip(reply) {
                        values[*index] = value;
                    }
                }
                Some(_) => {}
                None => complete = false,
            }
        }
        // All of it worked: Redis works. A part failed: a node is down, degraded until a probe
        // reaches every primary (`mark_failing`).
        if complete {
            self.redis_failing.store(false, Ordering::Relaxed);
        }
        epoch.map(|epoch| (epoch, values))
    }

    /// The value of a Redis call made within the timeout; None, counted, if it failed.
    fn outcome<T>(
        &self,
        operation: &str,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        match result {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                self.failed(operation, &error);
                None
            }
            Err(_) => {
                self.timed_out(operation);
                None
            }
        }
    }

    /// Writes what a read fetched from the database after `lookup`: shared entries to Redis
    /// under the lookup's epoch, local ones to this process. Failures are counted and otherwise
    /// ignored: a missing entry is only a miss.
    pub async fn store(&self, lookup: &Lookup, fills: Vec<Fill>) {
        if fills.is_empty() || lookup.generation.is_none() {
            return;
        }
        if let Some(hook) = &self.fill_hook {
            hook().await;
        }
        if lookup.started.elapsed() > MAX_FILL_DELAY {
            return;
        }
        let (local, shared): (Vec<Fill>, Vec<Fill>) = fills
            .into_iter()
            .partition(|fill| fill.place == Place::Local);
        if let Some(generation) = lookup.generation {
            // No longer than a Redis entry: minimums are kept only as long as entries
            // written before them can live (`raise_one`).
            let end = SystemTime::now() + Duration::from_secs(self.ttl_seconds);
            let entry = |fill: &Fill| LocalEntry {
                generation,
                deps: fill.deps.clone(),
                payload: fill.payload.clone(),
                until: Some(fill.until.map_or(end, |until| until.min(end))),
            };
            let mut local_store = self.local.lock().unwrap_or_else(|e| e.into_inner());
            let mut near_store = self
                .near
                .as_ref()
                .map(|near| near.lock().unwrap_or_else(|e| e.into_inner()));
            // A generation bumped since the lookup may have voided what was read.
            if generation == self.local_generation.load(Ordering::Acquire) {
                for fill in &local {
                    local_store.put(fill.key.name.clone(), entry(fill));
                }
                if let Some(near_store) = near_store.as_mut() {
                    for fill in &shared {
                        near_store.put(fill.key.name.clone(), entry(fill));
                    }
                }
            }
        }
        let Some(epoch) = &lookup.epoch else { return };
        if shared.is_empty() {
            return;
        }
        let ttl = Duration::from_secs(self.ttl_seconds);
        let mut entries: Vec<(String, Vec<u8>, u64)> = Vec::with_capacity(shared.len());
        for fill in shared {
            // Redis drops the entry when the answer would expire, if that comes first.
            let lifetime = match fill.until {
                Some(until) => match until.duration_since(SystemTime::now()) {
                    Ok(left) => left.min(ttl),
                    Err(_) => continue,
                },
                None => ttl,
            };
            let key = self.key(&fill.key.name);
            let value = self.seal(&key, epoch, &fill.deps, &fill.payload);
            let milliseconds = lifetime.as_millis().max(1) as u64;
            entries.push((key, value, milliseconds));
        }
        if entries.is_empty() {
            return;
        }
        // One pipeline; in a cluster one per slot, since a pipeline goes to one node.
        let groups = match &self.connection {
            Connection::Single(_) => vec![(0..entries.len()).collect()],
            Connection::Cluster(_) => {
                let keys: Vec<&str> = entries.iter().map(|(key, ..)| key.as_str()).collect();
                by_slot(&keys)
            }
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        let writes = groups.iter().map(|group| {
            let mut pipeline = redis::pipe();
            for index in group {
                let (key, value, milliseconds) = &entries[*index];
                pipeline.pset_ex(key, value, *milliseconds).ignore();
            }
            let mut connection = self.connection.clone();
            async move {
                tokio::time::timeout_at(deadline, pipeline.query_async::<()>(&mut connection)).await
            }
        });
        for result in join_all(writes).await {
            self.outcome("store", result);
        }
    }

    /// Applies a change notification: no entry computed from an older version of the row is
    /// served again by this process.
    pub fn raise_minimum(&self, kind: DepKind, tenant: Uuid, id: Uuid, version: i64) {
        if kind == DepKind::User {
            self.user_seen(tenant, id, version);
            // Refusals for an id that existed nowhere depend on (User, NO_TENANT, id).
            self.raise_one((DepKind::User, NO_TENANT, id), version);
        }
        self.raise_one((kind, tenant, id), version);
    }

    fn raise_one(&self, row: (DepKind, Uuid, Uuid), version: i64) {
        let now = Instant::now();
        let mut minimums = self.minimums.write().unwrap_or_else(|e| e.into_inner());
        let minimum = minimums.entry(row).or_insert(Minimum {
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

    /// The minimum version recorded for a row, if any.
    pub fn minimum(&self, kind: DepKind, tenant: Uuid, id: Uuid) -> Option<i64> {
        let minimums = self.minimums.read().unwrap_or_else(|e| e.into_inner());
        minimums.get(&(kind, tenant, id)).map(|m| m.version)
    }

    /// Starts a new epoch: every entry written before, in Redis and in this process, becomes
    /// unreachable.
    pub async fn start_epoch(&self) -> Result<(), String> {
        self.void_local();
        match self.run_new_epoch("*").await {
            Ok(Ok(_)) => {
                self.redis_failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Replaces the current epoch if it is still `seen` (empty: if there is none) and returns
    /// the one to write under; None if Redis failed, or went back again meanwhile.
    async fn replace_epoch(&self, seen: &str) -> Option<String> {
        let epoch = self.outcome("epoch", self.run_new_epoch(seen).await)??;
        self.knows_no_newer_epoch(&epoch).then_some(epoch)
    }

    /// Runs `NEW_EPOCH` with `replace` as its ARGV[3], within the timeout: the epoch current
    /// after it.
    async fn run_new_epoch(
        &self,
        replace: &str,
    ) -> Result<redis::RedisResult<Option<String>>, tokio::time::error::Elapsed> {
        let since_1970 = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let order = u64::try_from(since_1970.as_millis())
            .unwrap_or(u64::MAX)
            .max(self.epoch_floor.load(Ordering::Acquire).saturating_add(1));
        let mut invocation = self.new_epoch.key(self.key(keys::EPOCH));
        invocation
            .arg(order)
            .arg(Uuid::new_v4().simple().to_string())
            .arg(replace);
        let mut connection = self.connection.clone();
        let result = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Option<String>>(&mut connection),
        )
        .await;
        if let Ok(Ok(Some(epoch))) = &result {
            self.epoch_floor
                .fetch_max(epoch_order(epoch), Ordering::AcqRel);
        }
        result
    }

    /// Whether `epoch`, read from Redis, is no older than every epoch this process has started
    /// or read; it is then the newest known.
    fn knows_no_newer_epoch(&self, epoch: &str) -> bool {
        let order = epoch_order(epoch);
        let floor = self.epoch_floor.load(Ordering::Acquire);
        if order > floor {
            self.epoch_floor.fetch_max(order, Ordering::AcqRel);
        }
        order >= floor
    }

    /// Pings Redis (within the timeout) so that the reported state follows Redis even without
    /// traffic: `/readyz` calls it.
    pub async fn probe(&self) {
        let ping = async {
            match &self.connection {
                Connection::Single(connection) => {
                    redis::cmd("PING")
                        .query_async::<String>(&mut connection.clone())
                        .await?;
                }
                Connection::Cluster(connection) => probe_primaries(connection).await?,
            }
            Ok::<(), redis::RedisError>(())
        };
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(())) => {
                self.redis_failing.store(false, Ordering::Relaxed);
                self.nodes_failing.store(false, Ordering::Relaxed);
            }
            failure => {
                self.outcome("ping", failure);
            }
        }
    }

    /// The server's `maxmemory-policy`, when Redis lets us ask (managed services often
    /// disable CONFIG).
    pub async fn eviction_policy(&self) -> Option<String> {
        let mut command = redis::cmd("CONFIG");
        command.arg("GET").arg("maxmemory-policy");
        let call = async {
            match &self.connection {
                Connection::Single(connection) => {
                    command
                        .query_async::<Vec<String>>(&mut connection.clone())
                        .await
                }
                // One node's answer, taken as the cluster's.
                Connection::Cluster(connection) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                    let value = connection.clone().route_command(command, routing).await?;
                    Ok(redis::FromRedisValue::from_redis_value(value)?)
                }
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(reply)) => reply.into_iter().nth(1),
            _ => None,
        }
    }

    /// Called by the listener: true once it listens and a fresh epoch has started; false as
    /// soon as a notification may be missed.
    pub fn set_listening(&self, listening: bool) {
        if !listening {
            self.void_local();
        }
        self.listening.store(listening, Ordering::Release);
    }

    fn void_local(&self) {
        self.local_generation.fetch_add(1, Ordering::AcqRel);
        self.local.lock().unwrap_or_else(|e| e.into_inner()).clear();
        if let Some(near) = &self.near {
            near.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `tag\nepoch\ntenant\ndeps\npayload`, the tag authenticating the key and the rest.
    fn seal(&self, key: &str, epoch: &str, deps: &Deps, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(payload.len() + 200);
        body.extend_from_slice(epoch.as_bytes());
        body.push(b'\n');
        body.extend_from_slice(deps.tenant().to_string().as_bytes());
        body.push(b'\n');
        body.extend_from_slice(deps.encode().as_bytes());
        body.push(b'\n');
        body.extend_from_slice(payload);
        let tag = self.tag(key, &body);
        let mut value = Vec::with_capacity(TAG_BYTES * 2 + 1 + body.len());
        for byte in tag {
            let _ = write!(HexWriter(&mut value), "{byte:02x}");
        }
        value.push(b'\n');
        value.extend_from_slice(&body);
        value
    }

    /// The parts of an entry whose tag verifies; None (and a warning) otherwise.
    #[cfg(test)]
    fn open(&self, key: &str, raw: Vec<u8>) -> Option<Entry> {
        match Entry::parse(raw) {
            Some(entry) => self.verified(key, entry),
            None => {
                self.forgery(key);
                None
            }
        }
    }

    /// The entry if its tag verifies for `key`; None (and a warning) otherwise.
    fn verified(&self, key: &str, entry: Entry) -> Option<Entry> {
        let mut mac = self.signer.clone();
        mac.update(key.as_bytes());
        mac.update(&[0]);
        mac.update(entry.body());
        match mac.verify_truncated_left(&entry.tag) {
            Ok(()) => Some(entry),
            Err(_) => {
                self.forgery(key);
                None
            }
        }
    }

    fn tag(&self, key: &str, body: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = self.signer.clone();
        mac.update(key.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.namespace)
    }

    /// An entry that does not verify was not written by a Roster with this CACHE_KEY: someone
    /// else wrote to our keys, or CACHE_KEY differs between instances. At most one warning a
    /// minute.
    fn forgery(&self, key: &str) {
        self.metrics.cache_errors.inc();
        let now = self.created.elapsed().as_secs() + 1;
        let last = self.last_forgery_warning.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 60)
            && self
                .last_forgery_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn!(
                "cache entry {key} failed authentication (written by someone without this CACHE_KEY?): ignored, serving from the database"
            );
        }
    }

    fn failed(&self, operation: &str, error: &redis::RedisError) {
        self.metrics.cache_errors.inc();
        if !self.mark_failing() {
            log::warn!("cache {operation} failed, serving from the database: {error}");
        }
    }

    fn timed_out(&self, operation: &str) {
        self.metrics.cache_errors.inc();
        if !self.mark_failing() {
            log::warn!(
                "cache {operation} took over {} ms, serving from the database",
                self.timeout.as_millis()
            );
        }
    }

    /// Records a failed Redis call; returns whether one was already recorded (and logged). On
    /// a cluster the calls that reach only live nodes succeed meanwhile: the failure stands
    /// until a probe reaches every primary, so that an outage is logged once.
    fn mark_failing(&self) -> bool {
        let failing = self.redis_failing.swap(true, Ordering::Relaxed);
        match self.connection {
            Connection::Single(_) => failing,
            Connection::Cluster(_) => self.nodes_failing.swap(true, Ordering::Relaxed),
        }
    }
}

/// `write!` of hex digits into a byte buffer.
struct HexWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for HexWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A stored entry, split at its first four newlines.
struct Entry {
    raw: Vec<u8>,
    tag: Vec<u8>,
    /// Where the authenticated part (epoch onwards) starts.
    body_start: usize,
    epoch: std::ops::Range<usize>,
    tenant: Uuid,
    deps: std::ops::Range<usize>,
    payload_start: usize,
}

impl Entry {
    fn parse(raw: Vec<u8>) -> Option<Entry> {
        let mut cuts = [0usize; 4];
        let mut from = 0;
        for cut in &mut cuts {
            *cut = from + raw[from..].iter().position(|b| *b == b'\n')?;
            from = *cut + 1;
        }
        let tag_hex = std::str::from_utf8(&raw[..cuts[0]]).ok()?;
        if tag_hex.len() != TAG_BYTES * 2 {
            return None;
        }
        let tag = (0..TAG_BYTES)
            .map(|i| u8::from_str_radix(tag_hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let tenant = std::str::from_utf8(&raw[cuts[1] + 1..cuts[2]])
            .ok()?
            .parse()
            .ok()?;
        Some(Entry {
            tag,
            body_start: cuts[0] + 1,
            epoch: cuts[0] + 1..cuts[1],
            tenant,
            deps: cuts[2] + 1..cuts[3],
            payload_start: cuts[3] + 1,
            raw,
        })
    }

    fn body(&self) -> &[u8] {
        &self.raw[self.body_start..]
    }

    fn epoch(&self) -> &[u8] {
        &self.raw[self.epoch.clone()]
    }

    fn deps(&self) -> &[u8] {
        &self.raw[self.deps.clone()]
    }

    fn into_payload(mut self) -> Vec<u8> {
        self.raw.split_off(self.payload_start)
    }
}

/// The newest version announced for a row, and when it was last raised.
#[derive(Debug, Clone, Copy)]
struct Minimum {
    version: i64,
    raised: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_is_ordered_by_its_prefix_and_an_unordered_one_is_oldest() {
        assert_eq!(
            epoch_order("1764672000123.0b5f0c6b2a1e4c0f9d3e1a2b3c4d5e6f"),
            1764672000123
        );
        assert!(
            epoch_order("12.a") > epoch_order("9.b"),
            "numbers, not text"
        );
        for unordered in ["0b5f0c6b-2a1e-4c0f-9d3e-1a2b3c4d5e6f", "", "x.y", "-1.a"] {
            assert_eq!(epoch_order(unordered), 0, "{unordered:?}");
        }
    }

    #[test]
    fn deps_encode_as_kind_id_version_triples() {
        let tenant = Uuid::from_u128(1);
        let org = Uuid::nil();
        let user = Uuid::max();
        let deps = Deps::new(tenant, 2)
            .organization(org, 7)
            .user(user, 9_223_372_036_854_775_807);
        assert_eq!(
            deps.encode(),
            format!("t:{tenant}:2,o:{org}:7,u:{user}:9223372036854775807")
        );
    }

    #[test]
    fn deps_are_fresh_only_at_or_above_their_minimums_in_their_tenant() {
        let tenant = Uuid::from_u128(1);
        let other_tenant = Uuid::from_u128(2);
        let org = Uuid::from_u128(3);
        let user = Uuid::from_u128(4);
        let encoded = Deps::new(tenant, 2)
            .organization(org, 5)
            .user(user, 3)
            .encode();
        let fresh = |minimums: &Minimums| Deps::fresh(tenant, encoded.as_bytes(), minimums);
        let raised = Instant::now();
        let minimum = |version| Minimum { version, raised };
        let mut minimums = Minimums::new();
        assert!(fresh(&minimums), "no minimum yet");
        minimums.insert((DepKind::Organization, tenant, org), minimum(5));
        assert!(fresh(&minimums), "at the minimum");
        minimums.insert((DepKind::Organization, other_tenant, org), minimum(9));
        assert!(fresh(&minimums), "another tenant's row with the same id");
        minimums.insert((DepKind::Organization, tenant, org), minimum(6));
        assert!(!fresh(&minimums), "older than the organization's minimum");
        minimums.insert((DepKind::Organization, tenant, org), minimum(5));
        minimums.insert((DepKind::User, tenant, user), minimum(4));
        assert!(!fresh(&minimums), "the user dependency is older");
        minimums.remove(&(DepKind::User, tenant, user));
        minimums.insert((DepKind::Tenant, tenant, tenant), minimum(3));
        assert!(!fresh(&minimums), "the tenant dependency is older");
        assert!(
            !Deps::fresh(tenant, b"x:1:2", &Minimums::new()),
            "an unknown kind is not fresh"
        );
    }

    /// The keys each lookup of `reads.rs` reads together, as the cache names them in Redis.
    #[test]
    fn the_keys_of_one_lookup_share_a_cluster_slot() {
        let tenant = Uuid::from_u128(1);
        let org = Uuid::from_u128(2);
        let user = Uuid::from_u128(3);
        let cache_key = |key: Key| format!("roster:{}", key.name);
        let lookups = [
            (
                "GET /organizations/{id}",
                vec![
                    keys::access(tenant, org, user),
                    keys::organization(tenant, org),
                ],
            ),
            (
                "GET /organizations/{id}/members",
                vec![
                    keys::access(tenant, org, user),
                    keys::members(tenant, org, 20, 0),
                ],
            ),
            (
                "GET /organizations",
                vec![
                    keys::identity(tenant, user),
                    keys::user_organizations(tenant, user, 50, 0),
                ],
            ),
            (
                "a check with and without a resource in one organization",
                vec![
                    keys::access(tenant, org, user),
                    keys::resource_access(tenant, org, user, "doc", "42"),
                    keys::resource_access(tenant, org, user, "a:b", "{c}"),
                ],
            ),
        ];
        for (what, keys) in lookups {
            let slots: Vec<Slot> = keys.into_iter().map(cache_key).map(Slot::for_key).collect();
            assert!(
                slots.iter().all(|slot| *slot == slots[0]),
                "{what}: {slots:?}"
            );
        }
        // Not one tag for everything: organizations, users and tenants spread.
        let spread = [
            keys::organization(tenant, org),
            keys::organization(tenant, Uuid::from_u128(4)),
            keys::organization(Uuid::from_u128(5), org),
            keys::identity(tenant, user),
            keys::identity(tenant, Uuid::from_u128(6)),
        ];
        let slots: std::collections::HashSet<Slot> = spread
            .into_iter()
            .map(cache_key)
            .map(Slot::for_key)
            .collect();
        assert_eq!(5, slots.len(), "distinct tags, distinct slots: {slots:?}");
        assert!(!keys::EPOCH.contains('{'), "the epoch key has no tag");
    }

    #[test]
    fn keys_group_by_slot_in_order() {
        let a = keys::organization(Uuid::from_u128(1), Uuid::from_u128(2)).name;
        let b = keys::organization(Uuid::from_u128(1), Uuid::from_u128(3)).name;
        let a_access =
            keys::access(Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(9)).name;
        let groups = by_slot(&[a.as_str(), b.as_str(), a_access.as_str()]);
        assert_eq!(vec![vec![0, 2], vec![1]], groups);
    }

    fn test_cache(key: &[u8]) -> Cache {
        Cache::new(
            CacheConfig {
                redis_url: "redis://127.0.0.1:1",
                cluster: false,
                namespace: "test",
                key,
                timeout: Duration::from_millis(10),
                ttl_seconds: 60,
                near_entries: 100,
            },
            Arc::new(Metrics::default()),
            None,
        )
        .expect("a lazy client")
    }

    #[tokio::test]
    async fn entries_open_only_under_their_key_and_cache_key() {
        let cache = test_cache(b"0123456789abcdef0123456789abcdef");
        let tenant = Uuid::from_u128(1);
        let deps = Deps::new(tenant, 1);
        let sealed = cache.seal("test:k", "e1", &deps, b"{\"allowed\":true}");
        let entry = cache
            .open("test:k", sealed.clone())
            .expect("opens under its key");
        assert_eq!(entry.epoch(), b"e1");
        assert_eq!(entry.tenant, tenant);
        assert_eq!(entry.into_payload(), b"{\"allowed\":true}");
        assert!(
            cache.open("test:other", sealed.clone()).is_none(),
            "moved to another key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() = b'!';
        assert!(cache.open("test:k", tampered).is_none(), "payload changed");
        let forged = format!("{}\ne1\n{tenant}\nt:{tenant}:1\n{{}}", "0".repeat(32));
        assert!(
            cache.open("test:k", forged.into_bytes()).is_none(),
            "no valid tag"
        );
        let other = test_cache(b"another deployment's key, 32 bytes!");
        assert!(other.open("test:k", sealed).is_none(), "another CACHE_KEY");
    }

    /// Not a speed test: prints what sealing and opening cost, for the notes.
    #[tokio::test]
    async fn seal_and_open_cost() {
        let cache = test_cache(b"0123456789abcdef0123456789abcdef");
        let deps = Deps::new(Uuid::from_u128(1), 1)
            .organization(Uuid::from_u128(2), 3)
            .user(Uuid::from_u128(4), 5);
        let payload = vec![b'x'; 300];
        let rounds = 20_000;
        let started = Instant::now();
        for _ in 0..rounds {
            let sealed = cache.seal("roster:access:k", "epoch", &deps, &payload);
            assert!(cache.open("roster:access:k", sealed).is_some());
        }
        eprintln!(
            "seal + open of a 300-byte entry: {:?} each",
            started.elapsed() / rounds
        );
    }
}
