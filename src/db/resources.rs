//! Resources: the hierarchy services declare (`roster.set_resource_parent`), a user's
//! permissions on one resource (`roster.resource_access`, what the cache stores for resource
//! checks) and the resources a user reaches (`roster.list_resources`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{map_rows, query, write_one, Client};
use crate::db::authz::{Access, Identity};
use crate::domain::Resource;
use crate::error::ApiError;

/// A user's permissions on one resource, as `roster.resource_access` answers, with the versions
/// it was read at: organization-wide permissions and every grant on the resource or an ancestor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceAccess {
    /// Nested, not flattened: see `Access::identity`.
    pub identity: Identity,
    /// 0 when the user's tenant has no organization of that id.
    pub org_version: i64,
    pub resources_version: i64,
    /// Wildcards expanded, sorted.
    pub permissions: Vec<String>,
    /// The earliest expiry the permissions depend on; None when nothing expires.
    pub valid_until: Option<DateTime<Utc>>,
}

impl ResourceAccess {
    fn from_row(row: &Row) -> Result<ResourceAccess, tokio_postgres::Error> {
        Ok(ResourceAccess {
            identity: Identity::from_row(row, "")?,
            org_version: row.try_get("org_version")?,
            resources_version: row.try_get("resources_version")?,
            permissions: row.try_get("permissions")?,
            valid_until: row.try_get("valid_until")?,
        })
    }

    pub fn allows(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// `roster.resource_access` for several (user, organization, resource) in one statement.
pub async fn resource_access(
    client: &Client,
    checks: &[(Uuid, Uuid, Resource<'_>)],
) -> Result<Vec<ResourceAccess>, ApiError> {
    let users: Vec<Uuid> = checks.iter().map(|c| c.0).collect();
    let orgs: Vec<Uuid> = checks.iter().map(|c| c.1).collect();
    let kinds: Vec<&str> = checks.iter().map(|c| c.2.kind).collect();
    let ids: Vec<&str> = checks.iter().map(|c| c.2.id).collect();
    let rows = query(
        client,
        "select r.* \
           from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) \
                with ordinality as p(user_id, organization_id, resource_type, resource_id, n) \
          cross join lateral roster.resource_access(p.user_id, p.organization_id, \
                                                    p.resource_type, p.resource_id) r \
          order by p.n",
        &[&users, &orgs, &kinds, &ids],
    )
    .await?;
    let answers = map_rows(&rows, ResourceAccess::from_row)?;
    if answers.len() != checks.len() {
        return Err(ApiError::Internal("resource_access skipped a check".into()));
    }
    Ok(answers)
}

/// `roster.set_resource_parent`: `actor` with grants:manage, or (None) a service of `tenant`.
/// A None parent removes it.
pub async fn set_resource_parent(
    client: &Client,
    actor: Option<Uuid>,
    tenant: Option<Uuid>,
    org: Uuid,
    resource: Resource<'_>,
    parent: Option<Resource<'_>>,
) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.set_resource_parent($1, $2, $3, $4, $5, $6, $7), pg_current_xact_id()::text as written_xid",
        &[
            &actor,
            &org,
            &resource.kind,
            &resource.id,
            &parent.as_ref().map(|p| p.kind),
            &parent.as_ref().map(|p| p.id),
            &tenant,
        ],
    )
    .await?;
    Ok(())
}

/// What `roster.list_resources` is asked: the resources of type `kind` on which the subject
/// holds `permission`, `limit` of them after `after`.
pub struct ResourceQuery<'a> {
    pub permission: &'a str,
    pub kind: &'a str,
    pub limit: i32,
    pub after: Option<&'a str>,
}

/// A page of `roster.list_resources`.
pub struct ResourceList {
    /// The user holds the permission across the organization: every resource is allowed.
    pub organization_wide: bool,
    pub ids: Vec<String>,
}

/// `roster.list_resources` for `subject`, in one statement with `asker`'s access (the API's
/// check that it may ask) and the subject's tenant. The list is not even read unless `asker`
/// may see the organization, or the subject is a user of `service_tenant` (a service asks).
pub async fn list_resources_with_access(
    client: &Client,
    asker: Uuid,
    subject: Uuid,
    org: Uuid,
    wanted: &ResourceQuery<'_>,
    service_tenant: Option<Uuid>,
) -> Result<(Access, Option<Uuid>, ResourceList), ApiError> {
    const SQL: &str = concat!(
        "select r.resource_id, r.organization_wide, s.tenant_id as subject_tenant_id, ",
        access_columns!(),
        " from roster.member_access($1, $3) a \
          cross join roster.caller_identity($2) s \
          left join lateral (select * from roster.list_resources($2, $3, $4, $5, $6, $7) \
                              where a.visible or s.tenant_id = $8 offset 0) r on true"
    );
    let rows = query(
        client,
        SQL,
        &[
            &asker,
            &subject,
            &org,
            &wanted.permission,
            &wanted.kind,
            &wanted.limit,
            &wanted.after,
            &service_tenant,
        ],
    )
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| ApiError::Internal("member_access returned no row".into()))?;
    let access = Access::from_row(first, "access_")?;
    let subject_tenant = first.try_get("subject_tenant_id")?;
    let mut list = ResourceList {
        organization_wide: false,
        ids: Vec::new(),
    };
    for row in &rows {
        match row.try_get::<_, Option<bool>>("organization_wide")? {
            Some(true) => list.organization_wide = true,
            Some(false) => list.ids.push(row.try_get("resource_id")?),
            None => {}
        }
    }
    Ok((access, subject_tenant, list))
}
