//! The lookups the cache and the authorization endpoints read: `roster.caller_identity` and
//! `roster.member_access`.

use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{map_rows, query, Client};
use crate::domain::{MembershipStatus, Role};
use crate::error::ApiError;

/// Who a user is, as `roster.caller_identity` answers, with the version it was read at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub tenant_id: Option<Uuid>,
    pub is_tenant_admin: bool,
    /// A live user of a live tenant: may act.
    pub user_live: bool,
    pub user_version: i64,
}

impl Identity {
    pub(crate) fn from_row(row: &Row, prefix: &str) -> Result<Identity, tokio_postgres::Error> {
        let column = |name: &str| format!("{prefix}{name}");
        Ok(Identity {
            tenant_id: row.try_get(column("tenant_id").as_str())?,
            is_tenant_admin: row.try_get(column("is_tenant_admin").as_str())?,
            user_live: row.try_get(column("user_live").as_str())?,
            user_version: row.try_get(column("user_version").as_str())?,
        })
    }
}

/// A user's access to an organization, as `roster.member_access` answers, with the versions it
/// was read at. The permission set is the database's; the API only looks names up in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Access {
    #[serde(flatten)]
    pub identity: Identity,
    pub org_version: i64,
    pub role: Option<Role>,
    pub status: Option<MembershipStatus>,
    /// Empty when the user may not see the organization.
    pub permissions: Vec<String>,
}

impl Access {
    pub(crate) fn from_row(row: &Row, prefix: &str) -> Result<Access, tokio_postgres::Error> {
        let column = |name: &str| format!("{prefix}{name}");
        Ok(Access {
            identity: Identity::from_row(row, prefix)?,
            org_version: row.try_get(column("org_version").as_str())?,
            role: row.try_get(column("role").as_str())?,
            status: row.try_get(column("status").as_str())?,
            permissions: row.try_get(column("permissions").as_str())?,
        })
    }
}

/// `roster.member_access` for several organizations in one statement.
pub async fn member_access(
    client: &Client,
    user: Uuid,
    orgs: &[Uuid],
) -> Result<Vec<(Uuid, Access)>, ApiError> {
    let rows = query(
        client,
        "select o.organization_id, a.* \
           from unnest($2::uuid[]) as o(organization_id), \
                lateral roster.member_access($1, o.organization_id) a",
        &[&user, &orgs],
    )
    .await?;
    map_rows(&rows, |row| {
        Ok((row.try_get("organization_id")?, Access::from_row(row, "")?))
    })
}
