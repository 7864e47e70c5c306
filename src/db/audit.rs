//! The audit trail: `roster.list_audit_events` and `roster.list_tenant_audit_events`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{map_rows, query, Client};
use crate::domain::Page;
use crate::error::ApiError;

/// One entry of the audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// The user a roster function acted for (verified); null for changes made by raw SQL.
    pub actor_id: Option<Uuid>,
    /// The database login that made the change.
    pub db_user: String,
    /// The role the session acted as; null for events recorded before Roster kept it.
    pub db_role: Option<String>,
    /// e.g. `membership.updated`.
    pub action: String,
    /// Null for user and tenant events.
    pub organization_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

impl AuditEvent {
    fn from_row(row: &Row) -> Result<AuditEvent, tokio_postgres::Error> {
        Ok(AuditEvent {
            id: row.try_get("id")?,
            occurred_at: row.try_get("occurred_at")?,
            actor_id: row.try_get("actor_id")?,
            db_user: row.try_get("db_user")?,
            db_role: row.try_get("db_role")?,
            action: row.try_get("action")?,
            organization_id: row.try_get("organization_id")?,
            target_user_id: row.try_get("target_user_id")?,
            before: row.try_get("before")?,
            after: row.try_get("after")?,
        })
    }
}

pub async fn list_audit_events(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    page: Page,
) -> Result<Vec<AuditEvent>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_audit_events($1, $2, $3, $4)",
        &[&actor, &org, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, AuditEvent::from_row)
}

pub async fn list_tenant_audit_events(
    client: &Client,
    actor: Uuid,
    page: Page,
) -> Result<Vec<AuditEvent>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_tenant_audit_events($1, $2, $3)",
        &[&actor, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, AuditEvent::from_row)
}
