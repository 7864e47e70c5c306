//! The lookups the cache and the authorization endpoints read: `roster.caller_identity`,
//! `roster.member_access` and `roster.permission_catalogue`. Each answer carries the versions
//! it was read at, so that the cache can tell when it is stale.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{map_rows, query, query_one, Client};
use crate::domain::{MembershipStatus, Resource, RoleKey};
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
    // Nested, not `#[serde(flatten)]`: flattening makes serde buffer every field of a cached
    // entry before decoding it, which was the largest cost of a cached batch check.
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
    /// The earliest expiry (of the membership or an organization-wide grant) the permissions
    /// depend on; None when nothing expires.
    pub valid_until: Option<DateTime<Utc>>,
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
            valid_until: row.try_get(column("valid_until").as_str())?,
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

/// `roster.member_access` for several (user, organization) pairs in one statement and, with
/// `catalogue_of` (a tenant, or None for the first user's), that tenant's
/// `roster.permission_catalogue` in the same statement.
pub async fn member_access(
    client: &Client,
    pairs: &[(Uuid, Uuid)],
    catalogue_of: Option<Option<Uuid>>,
) -> Result<(Vec<Access>, Option<(Uuid, Catalogue)>), ApiError> {
    let (users, orgs): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    let rows = query(
        client,
        "select a.*, c.names as catalogue_names, c.tenant_version as catalogue_tenant_version, \
                coalesce($4, a.tenant_id) as catalogue_tenant_id \
           from unnest($1::uuid[], $2::uuid[]) with ordinality as p(user_id, organization_id, n) \
          cross join lateral roster.member_access(p.user_id, p.organization_id) a \
           left join lateral (select * from roster.permission_catalogue(coalesce($4, a.tenant_id)) \
                               where $3 and p.n = 1 and coalesce($4, a.tenant_id) is not null \
                              offset 0) c on true \
          order by p.n",
        &[
            &users,
            &orgs,
            &catalogue_of.is_some(),
            &catalogue_of.flatten(),
        ],
    )
    .await?;
    let mut catalogue = None;
    if let Some(row) = rows.first() {
        let names: Option<Vec<String>> = row.try_get("catalogue_names")?;
        let tenant: Option<Uuid> = row.try_get("catalogue_tenant_id")?;
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
    let access = map_rows(&rows, |row| Access::from_row(row, ""))?;
    if access.len() != pairs.len() {
        return Err(ApiError::Internal("member_access skipped a pair".into()));
    }
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

/// Why `roster.explain_access` answers what it does: the path that granted, or the reason it
/// did not.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    pub allowed: bool,
    /// Allowed: `member_role`, `tenant_admin` or `grant`. Denied: `not_a_member`,
    /// `invitation_pending`, `suspended`, `expired`, `organization_deleted`, `user_deleted` or
    /// `role_lacks_permission`.
    pub reason: String,
    /// The role whose grants decided (the one that allowed, or the membership's that lacks it).
    pub via_role: Option<String>,
    /// The pattern that matched: the name itself, `resource:*`, `*:action` or `*`.
    pub via_grant: Option<String>,
    /// The grant that allowed, when one did (`reason` `grant`).
    pub via_grant_id: Option<Uuid>,
    /// The groups it came through, from the user's own group up to the granted one (keys).
    pub via_groups: Option<Vec<String>>,
    /// The resource the grant is on: the one asked about, or an ancestor of it.
    pub via_resource_type: Option<String>,
    pub via_resource_id: Option<String>,
}

/// The subject of an explanation as the explanation was read: its identity, and the versions
/// and earliest expiry the explanation depends on (those of its access to the organization, or
/// to the resource asked about).
#[derive(Debug, Clone)]
pub struct ExplainedSubject {
    pub identity: Identity,
    /// 0 when the subject's tenant has no organization of that id.
    pub org_version: i64,
    /// The organization's resource version; only read for an explanation on a resource.
    pub resources_version: Option<i64>,
    pub valid_until: Option<DateTime<Utc>>,
}

/// What [`explain_access`] reads in one statement.
pub struct Explained {
    /// The asker's access (the API's check that it may ask).
    pub asker: Access,
    pub subject: ExplainedSubject,
    /// None for a service asking about a user of another tenant.
    pub explanation: Option<Explanation>,
}

/// `roster.explain_access` for `subject` (on `resource` when given), in one statement with
/// `asker`'s access there and the subject's versions (from `roster.member_access`, or
/// `roster.resource_access` on a resource; the asker's row when the subject asks itself, so
/// that explaining oneself resolves access once). With `service_tenant`, the explanation is
/// only computed (None otherwise) for a user of that tenant: another tenant's catalogue is
/// none of the service's business.
pub async fn explain_access(
    client: &Client,
    asker: Uuid,
    subject: Uuid,
    org: Uuid,
    permission: &str,
    resource: Option<&Resource<'_>>,
    service_tenant: Option<Uuid>,
) -> Result<Explained, ApiError> {
    // The union's branches are gated on parameters alone, so the planner runs only the one
    // that applies (one-time filters).
    const SQL: &str = concat!(
        "select e.*, ",
        access_columns!(),
        ", s.tenant_id as subject_tenant_id, s.is_tenant_admin as subject_is_tenant_admin, \
           s.user_live as subject_user_live, s.user_version as subject_user_version, \
           s.tenant_version as subject_tenant_version, s.org_version as subject_org_version, \
           s.resources_version as subject_resources_version, \
           s.valid_until as subject_valid_until \
           from roster.member_access($1, $3) a \
          cross join lateral ( \
                select a.tenant_id, a.is_tenant_admin, a.user_live, a.user_version, \
                       a.tenant_version, a.org_version, null::bigint as resources_version, \
                       a.valid_until \
                 where $1 = $2 and $5::text is null \
                union all \
                select m.tenant_id, m.is_tenant_admin, m.user_live, m.user_version, \
                       m.tenant_version, m.org_version, null::bigint, m.valid_until \
                  from roster.member_access($2, $3) m \
                 where $1 <> $2 and $5::text is null \
                union all \
                select r.tenant_id, r.is_tenant_admin, r.user_live, r.user_version, \
                       r.tenant_version, r.org_version, r.resources_version, r.valid_until \
                  from roster.resource_access($2, $3, $5, $6) r \
                 where $5::text is not null) s \
           left join lateral (select * from roster.explain_access($2, $3, $4, $5, $6) \
                               where $7::uuid is null or s.tenant_id = $7 offset 0) e on true"
    );
    let row = query_one(
        client,
        SQL,
        &[
            &asker,
            &subject,
            &org,
            &permission,
            &resource.map(|r| r.kind),
            &resource.map(|r| r.id),
            &service_tenant,
        ],
    )
    .await?;
    let explanation = match row.try_get::<_, Option<bool>>("allowed")? {
        None => None,
        Some(allowed) => Some(Explanation {
            allowed,
            reason: row.try_get("reason")?,
            via_role: row.try_get("via_role")?,
            via_grant: row.try_get("via_grant")?,
            via_grant_id: row.try_get("via_grant_id")?,
            via_groups: row.try_get("via_groups")?,
            via_resource_type: row.try_get("via_resource_type")?,
            via_resource_id: row.try_get("via_resource_id")?,
        }),
    };
    Ok(Explained {
        asker: Access::from_row(&row, "access_")?,
        subject: ExplainedSubject {
            identity: Identity::from_row(&row, "subject_")?,
            org_version: row.try_get("subject_org_version")?,
            resources_version: row.try_get("subject_resources_version")?,
            valid_until: row.try_get("subject_valid_until")?,
        },
        explanation,
    })
}

/// Who holds a permission in an organization, as `roster.list_subjects_with_permission` says.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subject {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    /// The role that grants it (`owner` for a tenant admin).
    pub via_role: String,
    /// Holds it as a tenant admin.
    pub tenant_admin: bool,
}

pub async fn list_subjects_with_permission(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    permission: &str,
    page: crate::domain::Page,
) -> Result<Vec<Subject>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_subjects_with_permission($1, $2, $3, $4, $5)",
        &[&actor, &org, &permission, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, |row| {
        Ok(Subject {
            user_id: row.try_get("user_id")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            via_role: row.try_get("via_role")?,
            tenant_admin: row.try_get("tenant_admin")?,
        })
    })
}
