//! The lookups the cache and the authorization endpoints read: `roster.caller_identity`,
//! `roster.member_access` and `roster.permission_catalogue`. Each answer carries the versions
//! it was read at, so that the cache can tell when it is stale.

use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{map_rows, query, query_one, Client};
use crate::domain::{MembershipStatus, RoleKey};
use crate::error::ApiError;

/// Who a user is, as `roster.caller_identity` answers, with the versions it was read at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// None when there is no such user.
    pub tenant_id: Option<Uuid>,
    pub is_tenant_admin: bool,
    /// A live user of a live tenant: may act.
    pub user_live: bool,
    pub user_version: i64,
    pub tenant_version: i64,
}

impl Identity {
    pub(crate) fn from_row(row: &Row, prefix: &str) -> Result<Identity, tokio_postgres::Error> {
        let column = |name: &str| format!("{prefix}{name}");
        Ok(Identity {
            tenant_id: row.try_get(column("tenant_id").as_str())?,
            is_tenant_admin: row.try_get(column("is_tenant_admin").as_str())?,
            user_live: row.try_get(column("user_live").as_str())?,
            user_version: row.try_get(column("user_version").as_str())?,
            tenant_version: row.try_get(column("tenant_version").as_str())?,
        })
    }

    /// RNACT's answer, from a cached or fresh identity.
    pub fn require_live(&self) -> Result<(), ApiError> {
        match self.user_live {
            true => Ok(()),
            false => Err(ApiError::inactive_user(
                "the token's user does not exist or has been deleted".into(),
            )),
        }
    }
}

/// A user's access to an organization, as `roster.member_access` answers, with the versions it
/// was read at. The decision is the database's (`visible`, `permissions`); the API reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Access {
    #[serde(flatten)]
    pub identity: Identity,
    /// 0 when the user's tenant has no organization of that id.
    pub org_version: i64,
    pub org_slug: Option<String>,
    /// The user may see the organization.
    pub visible: bool,
    pub role: Option<RoleKey>,
    pub status: Option<MembershipStatus>,
    /// Every permission the user holds there, sorted; empty unless visible.
    pub permissions: Vec<String>,
}

impl Access {
    pub(crate) fn from_row(row: &Row, prefix: &str) -> Result<Access, tokio_postgres::Error> {
        let column = |name: &str| format!("{prefix}{name}");
        Ok(Access {
            identity: Identity::from_row(row, prefix)?,
            org_version: row.try_get(column("org_version").as_str())?,
            org_slug: row.try_get(column("org_slug").as_str())?,
            visible: row.try_get(column("visible").as_str())?,
            role: row.try_get(column("role").as_str())?,
            status: row.try_get(column("status").as_str())?,
            permissions: row.try_get(column("permissions").as_str())?,
        })
    }

    /// The answer of `roster._require_permission` for this access: 401, then 404 (the caller
    /// must not learn that an organization it may not see exists), then 403.
    pub fn require(&self, org: Uuid, permission: &str) -> Result<(), ApiError> {
        self.identity.require_live()?;
        if !self.visible {
            return Err(ApiError::organization_not_found(org));
        }
        if !self.allows(permission) {
            return Err(ApiError::permission_denied(
                self.role.as_ref().map_or("(none)", RoleKey::as_str),
                permission,
                self.org_slug.as_deref().unwrap_or_default(),
            ));
        }
        Ok(())
    }

    /// Whether the database's permission set holds `permission`.
    pub fn allows(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// `roster.member_access` for several organizations in one statement and, with
/// `with_catalogue`, the user's tenant's `roster.permission_catalogue` in the same statement.
pub async fn member_access(
    client: &Client,
    user: Uuid,
    orgs: &[Uuid],
    with_catalogue: bool,
) -> Result<(Vec<(Uuid, Access)>, Option<(Uuid, Catalogue)>), ApiError> {
    let rows = query(
        client,
        "select o.organization_id, a.*, c.names as catalogue_names, \
                c.tenant_version as catalogue_tenant_version \
           from unnest($2::uuid[]) with ordinality as o(organization_id, n) \
          cross join lateral roster.member_access($1, o.organization_id) a \
           left join lateral (select * from roster.permission_catalogue(a.tenant_id) \
                               where $3 and o.n = 1 and a.tenant_id is not null offset 0) c on true",
        &[&user, &orgs, &with_catalogue],
    )
    .await?;
    let mut catalogue = None;
    if let Some(row) = rows.first() {
        let names: Option<Vec<String>> = row.try_get("catalogue_names")?;
        let tenant: Option<Uuid> = row.try_get("tenant_id")?;
        if let (Some(names), Some(tenant)) = (names, tenant) {
            let tenant_version = row.try_get("catalogue_tenant_version")?;
            catalogue = Some((
                tenant,
                Catalogue {
                    names,
                    tenant_version,
                },
            ));
        }
    }
    let access = map_rows(&rows, |row| {
        Ok((row.try_get("organization_id")?, Access::from_row(row, "")?))
    })?;
    Ok((access, catalogue))
}

/// The names of a tenant's permission catalogue, sorted, with the tenant's version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalogue {
    pub names: Vec<String>,
    pub tenant_version: i64,
}

impl Catalogue {
    pub fn contains(&self, permission: &str) -> bool {
        self.names.iter().any(|p| p == permission)
    }
}

/// `roster.permission_catalogue`.
pub async fn permission_catalogue(client: &Client, tenant: Uuid) -> Result<Catalogue, ApiError> {
    let row = query_one(
        client,
        "select * from roster.permission_catalogue($1)",
        &[&tenant],
    )
    .await?;
    Ok(Catalogue {
        names: row.try_get("names")?,
        tenant_version: row.try_get("tenant_version")?,
    })
}
