//! Roster: organizations, memberships and role-based access for multi-tenant SaaS.
//!
//! The business rules live in PL/pgSQL under `sql/migrations/`; this crate applies them and
//! serves them over HTTP.

pub mod auth;
pub mod cache;
pub mod consistency;
pub mod constraints;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod extract;
pub mod listener;
pub mod metrics;
pub mod migrate;
pub mod reads;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod tokens;

pub use migrate::{migrate, AppliedMigration, MigrateError};

/// Used when neither `--database-url` nor `DATABASE_URL` is given.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/roster";

/// Quotes a PostgreSQL identifier (`acme"co` becomes `"acme""co"`), for the few statements such
/// as `create database` that cannot take the name as a bind parameter.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn quote_ident_doubles_embedded_quotes() {
        assert_eq!(quote_ident("roster"), "\"roster\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("Mixed Case"), "\"Mixed Case\"");
    }
}
