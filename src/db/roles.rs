//! Roles: `roster.create_role` and friends (an organization's, or with no organization the
//! tenant's).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{map_rows, query, query_one, write_one, Client};
use crate::domain::RoleKey;
use crate::error::ApiError;

/// A role: built in (owner, admin, member), tenant-wide, or an organization's own.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Role {
    pub key: RoleKey,
    pub name: String,
    pub description: Option<String>,
    /// Permission names and wildcards (`invoice:*`, `*:read`, `*`).
    pub permissions: Vec<String>,
    /// owner, admin and member: the same in every tenant, immutable.
    pub builtin: bool,
    /// The organization whose own role this is; absent for built-in and tenant-wide roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Role {
    fn from_row(row: &Row) -> Result<Role, tokio_postgres::Error> {
        Ok(Role {
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            permissions: row.try_get("permissions")?,
            builtin: row.try_get("builtin")?,
            organization_id: row.try_get("organization_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

pub async fn create_role(
    client: &Client,
    actor: Uuid,
    org: Option<Uuid>,
    key: &RoleKey,
    name: &str,
    description: Option<&str>,
    permissions: &[String],
) -> Result<Role, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.create_role($1, $2, $3, $4, $5, $6)",
        &[
            &actor,
            &org,
            &key.as_str(),
            &name,
            &description,
            &permissions,
        ],
    )
    .await?;
    Ok(Role::from_row(&row)?)
}

/// `changes` passes through: the SQL function owns the partial-update semantics.
pub async fn update_role(
    client: &Client,
    actor: Uuid,
    org: Option<Uuid>,
    key: &str,
    changes: &Value,
) -> Result<Role, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.update_role($1, $2, $3, $4)",
        &[&actor, &org, &key, changes],
    )
    .await?;
    Ok(Role::from_row(&row)?)
}

pub async fn delete_role(
    client: &Client,
    actor: Uuid,
    org: Option<Uuid>,
    key: &str,
    reassign_to: Option<&str>,
) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.delete_role($1, $2, $3, $4), pg_current_xact_id()::text as written_xid",
        &[&actor, &org, &key, &reassign_to],
    )
    .await?;
    Ok(())
}

pub async fn list_roles(
    client: &Client,
    actor: Uuid,
    org: Option<Uuid>,
) -> Result<Vec<Role>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_roles($1, $2)",
        &[&actor, &org],
    )
    .await?;
    map_rows(&rows, Role::from_row)
}

pub async fn get_role(
    client: &Client,
    actor: Uuid,
    org: Option<Uuid>,
    key: &str,
) -> Result<Role, ApiError> {
    let row = query_one(
        client,
        "select * from roster.get_role($1, $2, $3)",
        &[&actor, &org, &key],
    )
    .await?;
    Ok(Role::from_row(&row)?)
}
