//! The tenant's permission catalogue: `roster.register_permissions`, `list_permissions`,
//! `retire_permission`. Each takes either a tenant (a service's token vouches for it) or an
//! actor that must be its tenant admin.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{map_rows, query, write, write_one, Client};
use crate::error::ApiError;

/// A permission of the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Permission {
    /// `resource:action`.
    pub name: String,
    pub description: String,
    /// Roster's own (organization, members, audit, roles): the same in every tenant.
    pub builtin: bool,
}

impl Permission {
    fn from_row(row: &Row) -> Result<Permission, tokio_postgres::Error> {
        Ok(Permission {
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            builtin: row.try_get("builtin")?,
        })
    }
}

/// Whose catalogue: the tenant of a service's token, or the actor's (a tenant admin).
#[derive(Debug, Clone, Copy)]
pub enum Manager {
    Tenant(Uuid),
    Actor(Uuid),
}

impl Manager {
    fn split(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Manager::Tenant(tenant) => (Some(tenant), None),
            Manager::Actor(actor) => (None, Some(actor)),
        }
    }
}

/// `permissions` passes through as JSON: the SQL function validates each item and names it.
pub async fn register_permissions(
    client: &Client,
    manager: Manager,
    permissions: &Value,
) -> Result<Vec<Permission>, ApiError> {
    let (tenant, actor) = manager.split();
    let rows = write(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.register_permissions($1, $2, $3)",
        &[&tenant, permissions, &actor],
    )
    .await?;
    map_rows(&rows, Permission::from_row)
}

pub async fn list_permissions(
    client: &Client,
    manager: Manager,
) -> Result<Vec<Permission>, ApiError> {
    let (tenant, actor) = manager.split();
    let rows = query(
        client,
        "select * from roster.list_permissions($1, $2)",
        &[&tenant, &actor],
    )
    .await?;
    map_rows(&rows, Permission::from_row)
}

pub async fn retire_permission(
    client: &Client,
    manager: Manager,
    name: &str,
) -> Result<(), ApiError> {
    let (tenant, actor) = manager.split();
    write_one(
        client,
        "select roster.retire_permission($1, $2, $3), pg_current_xact_id()::text as written_xid",
        &[&tenant, &name, &actor],
    )
    .await?;
    Ok(())
}
