//! Applies the SQL migrations under `sql/migrations/`, embedded into the binary at build time.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use crate::quote_ident;

refinery::embed_migrations!("sql/migrations");

/// Why `migrate` failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The connection string could not be parsed.
    #[error("invalid database url")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The server could not be reached, refused us, or failed to create the database.
    #[error("{context}")]
    Postgres {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A migration failed or the applied history diverges from the embedded files.
    #[error("migration failed")]
    Migration(#[from] refinery::Error),
}

/// One migration applied by a `migrate` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: String,
}

impl fmt::Display for AppliedMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V{}__{}", self.version, self.name)
    }
}

/// Applies pending migrations to the database at `database_url`, creating the database first if
/// it does not exist. Returns the migrations applied by this call, oldest first (empty when the
/// database was already up to date).
pub async fn migrate(database_url: &str) -> Result<Vec<AppliedMigration>, MigrateError> {
    let mut config = Config::from_str(database_url).map_err(MigrateError::InvalidUrl)?;
    // A migration may rewrite a table or wait its turn behind long transactions: whatever the
    // server, the database or the login sets for ordinary sessions (the API's request timeouts
    // included, should a DBA put them on the role), it runs unbounded.
    crate::db::set_session_options(
        &mut config,
        &[
            ("statement_timeout", "0".to_owned()),
            ("lock_timeout", "0".to_owned()),
            ("idle_in_transaction_session_timeout", "0".to_owned()),
        ],
    );
    let mut client = connect_or_create(&config).await?;
    let report = migrations::runner().run_async(&mut client).await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| AppliedMigration {
            version: m.version().into(),
            name: m.name().to_owned(),
        })
        .collect())
}

/// Connects to the target database; if the server says it does not exist, creates it from the
/// `postgres` maintenance database of the same server and connects again.
async fn connect_or_create(config: &Config) -> Result<Client, MigrateError> {
    // libpq's rule: without a database name, the user name is used.
    let dbname = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres")
        .to_owned();
    match connect(config).await {
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            log::info!("database {dbname} does not exist, creating it");
            let mut maintenance = config.clone();
            maintenance.dbname("postgres");
            let admin = connect(&maintenance)
                .await
                .map_err(|source| MigrateError::Postgres {
                    context: format!(
                        "could not connect to the postgres database to create {dbname}"
                    ),
                    source,
                })?;
            match admin
                .batch_execute(&format!("create database {}", quote_ident(&dbname)))
                .await
            {
                // Another process created it between our two attempts: just as good.
                Err(e) if e.code() != Some(&SqlState::DUPLICATE_DATABASE) => {
                    return Err(MigrateError::Postgres {
                        context: format!("could not create database {dbname}"),
                        source: e,
                    })
                }
                _ => {}
            }
            connect(config).await
        }
        other => other,
    }
    .map_err(|source| MigrateError::Postgres {
        context: format!("could not connect to database {dbname}"),
        source,
    })
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::error!("database connection closed with an error: {e}");
        }
    });
    Ok(client)
}

/// `(version, name, refinery's checksum)` of every migration compiled into this binary, oldest
/// first.
pub fn checksums() -> Vec<(i64, String, u64)> {
    migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version().into(), m.name().to_owned(), m.checksum()))
        .collect()
}

/// Identifies the migrations compiled into this binary (refinery's checksum of each, in order),
/// e.g. to name a template database that must match them exactly.
pub fn fingerprint() -> u64 {
    // FNV-1a: stable across processes and toolchains, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in migrations::runner().get_migrations() {
        for byte in migration.checksum().to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
