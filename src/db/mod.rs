//! The database layer: the pool, and one module per concern with one Rust function per
//! `roster.*` SQL function, named the same, and the types their rows map to. Each call is one
//! statement through a cached prepared statement; rows are read by column name in one
//! `from_row` per type. The `*_with_access` functions are the cache's fill path: one statement
//! returning a lookup function's answer and, when it allows, the data, so that a request that
//! misses the cache still makes one round trip.

// The cache's fill path. Each statement asks a lookup function (`member_access` or
// `caller_identity`) and, only when its answer allows, the data function, whose own checks then
// agree. Lookup columns come prefixed (`access_`, `identity_`) to stay apart from the data's.
// `offset 0` keeps each lateral subquery from being pulled up, so that its condition stays a
// one-time filter and the data function is not even called when access is refused.

macro_rules! access_columns {
    () => {
        "a.tenant_id as access_tenant_id, a.is_tenant_admin as access_is_tenant_admin, \
         a.user_live as access_user_live, a.user_version as access_user_version, \
         a.tenant_version as access_tenant_version, a.org_version as access_org_version, \
         a.org_slug as access_org_slug, a.visible as access_visible, a.role as access_role, \
         a.status as access_status, a.permissions as access_permissions, \
         a.valid_until as access_valid_until"
    };
}

pub mod audit;
pub mod authz;
pub mod domains;
pub mod grants;
pub mod groups;
pub mod invitations;
pub mod members;
pub mod organizations;
pub mod permissions;
pub mod resources;
pub mod roles;
pub mod tokens;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::ApiError;
use crate::metrics::{Metrics, PoolStatus};

/// The pool, with the metrics every statement is counted in.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    metrics: Arc<Metrics>,
    /// The one bound on getting a connection (`POOL_TIMEOUT_MS`).
    timeout: Duration,
}

impl Db {
    pub fn new(pool: Pool, metrics: Arc<Metrics>, timeout: Duration) -> Db {
        Db {
            pool,
            metrics,
            timeout,
        }
    }

    /// A pooled connection; 503 when none is had within the pool's timeout. deadpool bounds
    /// waiting for a slot, opening a connection and recycling one each on its own, so that a
    /// request could spend the sum of the three: this bounds them together.
    pub async fn client(&self) -> Result<Client, ApiError> {
        let client = tokio::time::timeout(self.timeout, self.pool.get())
            .await
            .map_err(|_| {
                ApiError::Unavailable(format!(
                    "no database connection within {} ms",
                    self.timeout.as_millis()
                ))
            })??;
        Ok(Client {
            client,
            metrics: self.metrics.clone(),
        })
    }

    pub fn status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// Appends `-c name=value` to the connection's startup options for each setting: the server
/// applies them as the session starts, with no round trip of their own, and they take
/// precedence over what the server, the database or the role sets (`ALTER ROLE ... SET`).
pub fn set_session_options(config: &mut tokio_postgres::Config, settings: &[(&str, String)]) {
    let mut options = config.get_options().unwrap_or_default().to_owned();
    for (name, value) in settings {
        if !options.is_empty() {
            options.push(' ');
        }
        // Spaces inside a value would need backslashes: ours are whole numbers of milliseconds.
        let _ = write!(options, "-c {name}={value}");
    }
    config.options(&options);
}

/// A duration as a PostgreSQL setting in milliseconds (`0` means no limit there).
pub fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Who a connection is logged in as, for the start-up warning.
pub struct Login {
    /// `session_user`: the login, whatever `set role` did.
    pub name: String,
    pub superuser: bool,
    /// `current_user` holds roster_app's grants: it is roster_app, or a member that inherits.
    pub acts_as_app: bool,
}

/// Not a request's statement: not counted in the metrics.
pub async fn session_login(
    client: &tokio_postgres::Client,
) -> Result<Login, tokio_postgres::Error> {
    let row = client
        .query_one(
            "select session_user::text as name,
                    (select r.rolsuper from pg_catalog.pg_roles r
                      where r.rolname = session_user) as superuser,
                    case when exists (select from pg_catalog.pg_roles where rolname = 'roster_app')
                         then pg_catalog.pg_has_role(current_user, 'roster_app', 'usage')
                         else false end as acts_as_app",
            &[],
        )
        .await?;
    Ok(Login {
        name: row.try_get("name")?,
        superuser: row.try_get("superuser")?,
        acts_as_app: row.try_get("acts_as_app")?,
    })
}

/// A pooled connection whose statements are counted as database round trips.
pub struct Client {
    client: deadpool_postgres::Object,
    metrics: Arc<Metrics>,
}

/// A trivial round trip, for `/readyz`.
pub async fn ping(client: &Client) -> Result<(), ApiError> {
    query(client, "select 1", &[]).await?;
    Ok(())
}

pub(crate) async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, ApiError> {
    let statement = prepare(client, sql).await?;
    Ok(client.client.query(&statement, params).await?)
}

/// The functions returning one row raise an error instead of returning none, so an empty
/// result here is a bug, not a "not found".
pub(crate) async fn query_one(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, ApiError> {
    let statement = prepare(client, sql).await?;
    Ok(client.client.query_one(&statement, params).await?)
}

/// A write: `sql` names the transaction it ran in as a text column `written_xid`
/// (`pg_current_xact_id()::text as written_xid`), which `Roster-Consistency` returns to the
/// client (`consistency`).
pub(crate) async fn write_one(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, ApiError> {
    let row = query_one(client, sql, params).await?;
    record_write(&row)?;
    Ok(row)
}

/// `write_one` for a function returning rows (none: nothing was written).
pub(crate) async fn write(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, ApiError> {
    let rows = query(client, sql, params).await?;
    if let Some(row) = rows.first() {
        record_write(row)?;
    }
    Ok(rows)
}

fn record_write(row: &Row) -> Result<(), ApiError> {
    let xid: &str = row.try_get("written_xid")?;
    let xid = xid
        .parse()
        .map_err(|_| ApiError::Internal(format!("pg_current_xact_id() gave {xid:?}").into()))?;
    crate::consistency::record_write(xid);
    Ok(())
}

/// Counts the statement, and the prepare too when it was not cached on this connection yet.
async fn prepare(client: &Client, sql: &str) -> Result<tokio_postgres::Statement, ApiError> {
    let cached = client.client.statement_cache.size();
    let statement = client.client.prepare_cached(sql).await?;
    let prepared = u64::from(client.client.statement_cache.size() > cached);
    client.metrics.db_round_trips.inc_by(1 + prepared);
    Ok(statement)
}

pub(crate) fn map_rows<T>(
    rows: &[Row],
    from_row: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, ApiError> {
    rows.iter()
        .map(|row| from_row(row).map_err(ApiError::from))
        .collect()
}

/// `member_count` exists in some functions' results and not in others.
pub(crate) fn optional_column(row: &Row, name: &str) -> Result<Option<i64>, tokio_postgres::Error> {
    match has_column(row, name) {
        true => row.try_get(name),
        false => Ok(None),
    }
}

pub(crate) fn has_column(row: &Row, name: &str) -> bool {
    row.columns().iter().any(|c| c.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_options_are_appended_to_those_of_the_url() {
        let mut config: tokio_postgres::Config = "postgres://u@h/d?options=-c%20search_path%3Dx"
            .parse()
            .unwrap();
        set_session_options(
            &mut config,
            &[
                ("statement_timeout", millis(Duration::from_secs(5))),
                ("lock_timeout", "0".into()),
            ],
        );
        assert_eq!(
            Some("-c search_path=x -c statement_timeout=5000 -c lock_timeout=0"),
            config.get_options()
        );
        let mut bare: tokio_postgres::Config = "postgres://u@h/d".parse().unwrap();
        set_session_options(&mut bare, &[("lock_timeout", "200".into())]);
        assert_eq!(Some("-c lock_timeout=200"), bare.get_options());
    }
}
