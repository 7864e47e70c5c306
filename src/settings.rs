//! Configuration, read once from the environment at start-up. A missing or malformed setting
//! stops start-up with one line that names it.

use std::env;
use std::fmt;
use std::time::Duration;

use crate::tokens::{SigningAlg, TokenSettings};

/// Everything `roster serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The owner's login: migrations (and, without `database_app_url`, the API).
    pub database_url: String,
    /// The login the API serves through (its pool and its change listener): a member of
    /// `roster_app` only. None: the API serves through `database_url`, as the owner.
    pub database_app_url: Option<String>,
    /// Role the pool's connections switch to (`set role`) once logged in. Serving through the
    /// owner's login it is `roster_app` by default, which keeps honest code to the function
    /// grants; `reset role` undoes it, which is why `database_app_url` exists. None keeps the
    /// login role.
    pub database_role: Option<String>,
    pub bind_addr: String,
    /// No cache when None. With `redis_cluster`, the comma-separated seed nodes of a cluster.
    pub redis_url: Option<String>,
    /// REDIS_URL names a Redis Cluster: set by REDIS_CLUSTER=true or by several URLs.
    pub redis_cluster: bool,
    /// Prefix of every Redis key, so that several deployments can share one Redis.
    pub cache_namespace: String,
    /// The secret that authenticates cache entries (HMAC), the same for every instance sharing
    /// the Redis: required with a REDIS_URL, so that whoever can write to Redis cannot grant
    /// access.
    pub cache_key: Option<Vec<u8>>,
    /// Redis calls slower than this are abandoned: the request goes to the database.
    pub redis_timeout: Duration,
    /// Lifetime of every cache entry: a safety net, exactness comes from notifications.
    pub cache_ttl_seconds: u64,
    /// Entries of the near store (copies of what this instance wrote to Redis, served without
    /// asking Redis); 0 turns it off.
    pub cache_near_entries: usize,
    pub jwt: JwtSettings,
    pub pool_size: usize,
    /// How long a request may take to get a pooled connection, all told (waiting for one to
    /// free up, opening a new one), before answering 503 `unavailable`.
    pub pool_timeout: Duration,
    /// `statement_timeout` of the pool's connections: a statement that runs longer is cancelled
    /// by the server (SQLSTATE 57014, 503 `unavailable`).
    pub statement_timeout: Duration,
    /// `lock_timeout` of the pool's connections: a statement that waits longer for one lock
    /// (a DBA's migration holding a table, say) gives up (55P03, 503 `retry`).
    pub lock_timeout: Duration,
    /// Request bodies over this many bytes get 413.
    pub body_limit: usize,
    /// Roster's own access tokens (`POST /auth/token`).
    pub tokens: TokenSettings,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub key: JwtKey,
    /// Checked, and required in every token, when set.
    pub issuer: Option<String>,
    /// Checked, and required in every token, when set; `*` accepts any. Unset, a token naming
    /// an audience is refused, and JWT_PUBLIC_KEY refuses to start.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway_seconds: u64,
    /// Longest accepted lifetime: `exp` minus `iat` (or minus now, without `iat`).
    pub max_lifetime_seconds: u64,
}

/// One algorithm per key (RFC 8725): HS256 with a shared secret, or RS256 with an identity
/// provider's public key.
#[derive(Clone)]
pub enum JwtKey {
    Hs256Secret(Vec<u8>),
    Rs256PublicKeyPem(Vec<u8>),
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKey::Hs256Secret(_) => f.write_str("Hs256Secret(..)"),
            JwtKey::Rs256PublicKeyPem(_) => f.write_str("Rs256PublicKeyPem(..)"),
        }
    }
}

/// A setting that is missing or malformed: `JWT_SECRET: must be at least 32 bytes`.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    pub name: &'static str,
    pub problem: String,
}

impl SettingsError {
    pub(crate) fn new(name: &'static str, problem: impl Into<String>) -> SettingsError {
        SettingsError {
            name,
            problem: problem.into(),
        }
    }
}

pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
/// 24 h: well above the hour or so identity providers give access tokens, and a bound on how
/// long a leaked token stays useful.
pub const DEFAULT_JWT_MAX_LIFETIME_SECONDS: u64 = 24 * 3600;
/// HS256 secrets (and the cache's HMAC key) shorter than the hash output are brute-forceable
/// (RFC 7518 section 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

impl Settings {
    /// The defaults of every optional setting (those of the configuration table in the README),
    /// so that code and tests set only what they care about.
    pub fn new(database_url: impl Into<String>, jwt: JwtSettings) -> Settings {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Settings {
            database_url: database_url.into(),
            database_app_url: None,
            database_role: Some("roster_app".to_owned()),
            bind_addr: DEFAULT_BIND_ADDR.to_owned(),
            redis_url: None,
            redis_cluster: false,
            cache_key: None,
            cache_namespace: "roster".to_owned(),
            redis_timeout: Duration::from_millis(100),
            cache_ttl_seconds: 300,
            cache_near_entries: 50_000,
            jwt,
            // Enough connections to keep both cores and PostgreSQL busy while some wait on I/O.
            pool_size: cores * 4,
            pool_timeout: Duration::from_millis(2_000),
            statement_timeout: Duration::from_millis(5_000),
            // Ordinary row-lock waits between writers last milliseconds; a longer wait is a
            // table lock that will not go away soon: tell the client to retry instead.
            lock_timeout: Duration::from_millis(1_000),
            body_limit: 64 * 1024,
            tokens: TokenSettings::new(),
        }
    }

    /// The login the API serves through, and the variable that names it.
    pub fn serving_url(&self) -> (&'static str, &str) {
        match &self.database_app_url {
            Some(url) => ("DATABASE_APP_URL", url),
            None => ("DATABASE_URL", &self.database_url),
        }
    }

    pub fn from_env() -> Result<Settings, SettingsError> {
        let defaults = Settings::new(database_url_from_env()?, JwtSettings::from_env()?);
        let database_app_url = var("DATABASE_APP_URL")?.filter(|url| !url.is_empty());
        let redis_url = var("REDIS_URL")?.filter(|url| !url.is_empty());
        let redis_cluster =
            parse_redis_cluster(var("REDIS_CLUSTER")?.as_deref(), redis_url.as_deref())?;
        let cache_namespace = var("CACHE_NAMESPACE")?
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| defaults.cache_namespace.clone());
        // The first `{...}` of a key is its cluster hash tag: it must be the one keys carry.
        if redis_cluster && cache_namespace.contains(['{', '}']) {
            return Err(SettingsError::new(
                "CACHE_NAMESPACE",
                format!("{cache_namespace:?}: no braces with a Redis Cluster (they would be the keys' hash tag)"),
            ));
        }
        let cache_key = match (&redis_url, var("CACHE_KEY")?) {
            (_, Some(key)) if key.len() < MIN_SECRET_BYTES => {
                return Err(SettingsError::new(
                    "CACHE_KEY",
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                ))
            }
            (Some(_), None) => {
                return Err(SettingsError::new(
                    "CACHE_KEY",
                    format!("missing: with REDIS_URL, set a secret of {MIN_SECRET_BYTES} bytes or more (the same on every instance) that authenticates cache entries"),
                ))
            }
            (_, key) => key.map(String::into_bytes),
        };
        Ok(Settings {
            database_role: match var("DATABASE_ROLE")? {
                // An app login holds roster_app's grants itself (a member that inherits).
                None if database_app_url.is_some() => None,
                None => defaults.database_role.clone(),
                Some(role) if role.is_empty() => None,
                Some(role) => Some(role),
            },
            database_app_url,
            bind_addr: var("BIND_ADDR")?.unwrap_or_else(|| defaults.bind_addr.clone()),
            redis_url,
            redis_cluster,
            cache_key,
            cache_namespace,
            redis_timeout: parse_ms("REDIS_TIMEOUT_MS", defaults.redis_timeout, |ms| ms >= 1)?,
            cache_ttl_seconds: parse_var("CACHE_TTL_SECONDS", defaults.cache_ttl_seconds, |s| {
                (1..=86_400).contains(&s)
            })?,
            cache_near_entries: parse_var(
                "CACHE_NEAR_ENTRIES",
                defaults.cache_near_entries,
                |n| n <= 10_000_000,
            )?,
            pool_size: parse_var("POOL_SIZE", defaults.pool_size, |n| n >= 1)?,
            pool_timeout: parse_ms("POOL_TIMEOUT_MS", defaults.pool_timeout, |ms| ms >= 1)?,
            statement_timeout: parse_ms(
                "DB_STATEMENT_TIMEOUT_MS",
                defaults.statement_timeout,
                |ms| ms >= 1,
            )?,
            lock_timeout: parse_ms("DB_LOCK_TIMEOUT_MS", defaults.lock_timeout, |ms| ms >= 1)?,
            body_limit: parse_var("BODY_LIMIT_BYTES", defaults.body_limit, |n| n >= 1024)?,
            tokens: token_settings_from_env()?,
            ..defaults
        })
    }
}

impl JwtSettings {
    /// Also used alone by the commands that sign tokens without serving.
    pub fn from_env() -> Result<JwtSettings, SettingsError> {
        let key = match (var("JWT_SECRET")?, var("JWT_PUBLIC_KEY")?) {
            (Some(_), Some(_)) => {
                return Err(SettingsError::new(
                    "JWT_SECRET",
                    "set JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256), not both",
                ))
            }
            (None, None) => {
                return Err(SettingsError::new(
                    "JWT_SECRET",
                    "missing: set JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256 public key, PEM text or file path)",
                ))
            }
            (Some(secret), None) => JwtKey::Hs256Secret(secret.into_bytes()),
            (None, Some(key)) if key.trim_start().starts_with("-----BEGIN") => {
                JwtKey::Rs256PublicKeyPem(key.into_bytes())
            }
            (None, Some(path)) => JwtKey::Rs256PublicKeyPem(std::fs::read(&path).map_err(|e| {
                SettingsError::new("JWT_PUBLIC_KEY", format!("cannot read {path}: {e}"))
            })?),
        };
        let settings = JwtSettings {
            key,
            issuer: var("JWT_ISSUER")?.filter(|s| !s.is_empty()),
            audience: var("JWT_AUDIENCE")?.filter(|s| !s.is_empty()),
            leeway_seconds: parse_var("JWT_LEEWAY_SECONDS", 5, |s: u64| s <= 300)?,
            max_lifetime_seconds: parse_var(
                "JWT_MAX_LIFETIME_SECONDS",
                DEFAULT_JWT_MAX_LIFETIME_SECONDS,
                |s: u64| s >= 1,
            )?,
        };
        // Fail at start-up, not at the first request.
        crate::auth::JwtVerifier::new(&settings)?;
        Ok(settings)
    }
}

/// TOKEN_*: how Roster issues its own access tokens.
fn token_settings_from_env() -> Result<TokenSettings, SettingsError> {
    let defaults = TokenSettings::new();
    let alg = match var("TOKEN_SIGNING_ALG")? {
        None => defaults.alg,
        Some(text) => SigningAlg::parse(&text).ok_or_else(|| {
            SettingsError::new(
                "TOKEN_SIGNING_ALG",
                format!("{text:?}: expected EdDSA or RS256"),
            )
        })?,
    };
    let signing_key = var("TOKEN_SIGNING_KEY")?
        .filter(|key| !key.trim().is_empty())
        .map(|key| pem_or_path("TOKEN_SIGNING_KEY", &key))
        .transpose()?;
    // PEM text holding one or more keys, or a comma-separated list of paths.
    let previous_keys = match var("TOKEN_PREVIOUS_KEYS")? {
        None => Vec::new(),
        Some(text) if text.trim().is_empty() => Vec::new(),
        Some(text) if text.trim_start().starts_with("-----BEGIN") => vec![text],
        Some(paths) => paths
            .split(',')
            .map(str::trim)
            .filter(|path| !path.is_empty())
            .map(|path| pem_or_path("TOKEN_PREVIOUS_KEYS", path))
            .collect::<Result<_, _>>()?,
    };
    let nonempty = |name: &'static str, default: String| -> Result<String, SettingsError> {
        match var(name)? {
            None => Ok(default),
            Some(text) if text.trim().is_empty() => Err(SettingsError::new(name, "empty")),
            Some(text) => Ok(text),
        }
    };
    Ok(TokenSettings {
        issuer: nonempty("TOKEN_ISSUER", defaults.issuer.clone())?,
        audience: nonempty("TOKEN_AUDIENCE", defaults.audience.clone())?,
        ttl_seconds: parse_var(
            "ACCESS_TOKEN_TTL_SECONDS",
            defaults.ttl_seconds,
            |s: u64| (1..=86_400).contains(&s),
        )?,
        alg,
        signing_key,
        previous_keys,
    })
}

/// A PEM key given as its text or as the path of a file holding it.
fn pem_or_path(name: &'static str, value: &str) -> Result<String, SettingsError> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.to_owned());
    }
    std::fs::read_to_string(value)
        .map_err(|e| SettingsError::new(name, format!("cannot read {value}: {e}")))
}

/// Whether REDIS_URL names a cluster: REDIS_CLUSTER (true or false), or else whether it
/// lists several nodes. Each URL must parse.
fn parse_redis_cluster(flag: Option<&str>, redis_url: Option<&str>) -> Result<bool, SettingsError> {
    let flag = match flag.map(str::trim) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(SettingsError::new(
                "REDIS_CLUSTER",
                format!("invalid value {other:?}: expected true or false"),
            ))
        }
    };
    let Some(redis_url) = redis_url else {
        return match flag {
            Some(true) => Err(SettingsError::new(
                "REDIS_CLUSTER",
                "true without REDIS_URL: set REDIS_URL to the cluster's seed nodes",
            )),
            _ => Ok(false),
        };
    };
    let urls: Vec<&str> = redis_url.split(',').map(str::trim).collect();
    if urls.len() > 1 && flag == Some(false) {
        return Err(SettingsError::new(
            "REDIS_URL",
            "several URLs name a Redis Cluster, but REDIS_CLUSTER is false",
        ));
    }
    for url in &urls {
        if url.is_empty() {
            return Err(SettingsError::new(
                "REDIS_URL",
                format!("{redis_url:?}: an empty URL in the comma-separated list"),
            ));
        }
        if let Err(error) = redis::IntoConnectionInfo::into_connection_info(*url) {
            return Err(SettingsError::new(
                "REDIS_URL",
                format!("{url:?} is not a Redis URL: {error}"),
            ));
        }
    }
    Ok(flag.unwrap_or(urls.len() > 1))
}

/// DATABASE_URL, or the default: also used alone by the commands that only need the database.
pub fn database_url_from_env() -> Result<String, SettingsError> {
    Ok(var("DATABASE_URL")?.unwrap_or_else(|| crate::DEFAULT_DATABASE_URL.to_owned()))
}

fn var(name: &'static str) -> Result<Option<String>, SettingsError> {
    match env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(env::VarError::NotPresent) => Ok(None),
        Err(env::VarError::NotUnicode(_)) => Err(SettingsError::new(name, "not valid UTF-8")),
    }
}

/// A duration in whole milliseconds.
fn parse_ms(
    name: &'static str,
    default: Duration,
    valid: impl Fn(u64) -> bool,
) -> Result<Duration, SettingsError> {
    let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
    parse_var(name, default, valid).map(Duration::from_millis)
}

fn parse_var<T>(
    name: &'static str,
    default: T,
    valid: impl Fn(T) -> bool,
) -> Result<T, SettingsError>
where
    T: std::str::FromStr + Copy + fmt::Display,
{
    let Some(text) = var(name)? else {
        return Ok(default);
    };
    match text.trim().parse::<T>() {
        Ok(value) if valid(value) => Ok(value),
        _ => Err(SettingsError::new(name, format!("invalid value {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_cluster_comes_from_the_flag_or_several_urls() {
        let one = Some("redis://127.0.0.1:7000");
        let three = Some("redis://127.0.0.1:7000, redis://127.0.0.1:7001,redis://127.0.0.1:7002");
        let cases = [
            (None, one, Some(false), "one URL"),
            (None, three, Some(true), "several URLs"),
            (
                Some("true"),
                one,
                Some(true),
                "REDIS_CLUSTER=true, one seed",
            ),
            (Some(""), three, Some(true), "REDIS_CLUSTER empty"),
            (Some("true"), three, Some(true), "both"),
            (Some("false"), one, Some(false), "REDIS_CLUSTER=false"),
            (None, None, Some(false), "no Redis"),
            (
                Some("false"),
                None,
                Some(false),
                "no Redis, REDIS_CLUSTER=false",
            ),
            (
                Some("false"),
                three,
                None,
                "several URLs but REDIS_CLUSTER=false",
            ),
            (Some("yes"), one, None, "REDIS_CLUSTER not a boolean"),
            (Some("true"), None, None, "REDIS_CLUSTER without REDIS_URL"),
            (None, Some("redis://a:1,,redis://b:2"), None, "an empty URL"),
            (
                None,
                Some("redis://a:1,http://b:2"),
                None,
                "not a Redis URL",
            ),
        ];
        for (flag, url, expected, description) in cases {
            let parsed = parse_redis_cluster(flag, url);
            assert_eq!(
                expected,
                parsed.as_ref().ok().copied(),
                "{description}: {parsed:?}"
            );
            if let Err(error) = parsed {
                let text = error.to_string();
                assert!(
                    text.starts_with("REDIS_URL: ") || text.starts_with("REDIS_CLUSTER: "),
                    "{description}: one line naming the setting, got {text:?}"
                );
                assert!(
                    !text.contains('\n'),
                    "{description}: one line, got {text:?}"
                );
            }
        }
    }
}
