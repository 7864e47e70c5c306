//! The organization functions: rows and wrappers of `roster.create_organization` and
//! friends, and the fill statements of the cached organization reads.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{has_column, map_rows, optional_column, query, query_one, write_one, Client};
use crate::db::authz::{Access, Identity};
use crate::domain::{MembershipStatus, NewOrganization, Page, RoleKey};
use crate::error::ApiError;

/// An organization, as the organization functions return it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organization {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub domain: Option<String>,
    pub billing_email: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub billing_address: Option<Value>,
    pub stripe_customer_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    /// Active members; present where the function counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_count: Option<i64>,
    /// The most seats the organization may use (members of any status and pending
    /// invitations); null for no limit. Present where the function reports it (create, read,
    /// update).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>, minimum = 0)]
    pub seat_limit: Option<Option<i32>>,
    /// The seats used: live members of any status and pending invitations, each person once.
    /// Present where the function counts them (read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats_used: Option<i64>,
}

impl Organization {
    fn from_row(row: &Row) -> Result<Organization, tokio_postgres::Error> {
        Ok(Organization {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            name: row.try_get("name")?,
            slug: row.try_get("slug")?,
            description: row.try_get("description")?,
            domain: row.try_get("domain")?,
            billing_email: row.try_get("billing_email")?,
            billing_address: row.try_get("billing_address")?,
            stripe_customer_id: row.try_get("stripe_customer_id")?,
            metadata: row.try_get("metadata")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            created_by: row.try_get("created_by")?,
            member_count: optional_column(row, "member_count")?,
            seat_limit: match has_column(row, "seat_limit") {
                true => Some(row.try_get("seat_limit")?),
                false => None,
            },
            seats_used: optional_column(row, "seats_used")?,
        })
    }
}

/// One of a user's organizations, with that user's membership in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserOrganization {
    #[serde(flatten)]
    pub organization: Organization,
    pub role: RoleKey,
    pub status: MembershipStatus,
    pub joined_at: Option<DateTime<Utc>>,
}

impl UserOrganization {
    fn from_row(row: &Row) -> Result<UserOrganization, tokio_postgres::Error> {
        Ok(UserOrganization {
            organization: Organization::from_row(row)?,
            role: row.try_get("role")?,
            status: row.try_get("status")?,
            joined_at: row.try_get("joined_at")?,
        })
    }
}

pub async fn create_organization(
    client: &Client,
    actor: Uuid,
    new: &NewOrganization,
) -> Result<Organization, ApiError> {
    let metadata = new
        .metadata
        .clone()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.create_organization($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &actor,
            &new.name,
            &new.slug,
            &new.description,
            &new.domain,
            &new.billing_email,
            &new.billing_address,
            &new.stripe_customer_id,
            &metadata,
        ],
    )
    .await?;
    Ok(Organization::from_row(&row)?)
}

pub async fn list_user_organizations(
    client: &Client,
    actor: Uuid,
    user: Uuid,
    page: Page,
) -> Result<Vec<UserOrganization>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_user_organizations($1, $2, $3, $4)",
        &[&actor, &user, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, UserOrganization::from_row)
}

pub async fn list_tenant_organizations(
    client: &Client,
    actor: Uuid,
    page: Page,
) -> Result<Vec<Organization>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_tenant_organizations($1, $2, $3)",
        &[&actor, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, Organization::from_row)
}

/// `changes` is passed through as JSON: the SQL function owns the partial-update semantics
/// (absent keeps, null clears, unknown keys are refused).
pub async fn update_organization(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    changes: &Value,
) -> Result<Organization, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.update_organization($1, $2, $3)",
        &[&actor, &org, changes],
    )
    .await?;
    Ok(Organization::from_row(&row)?)
}

pub async fn delete_organization(client: &Client, actor: Uuid, org: Uuid) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.delete_organization($1, $2), pg_current_xact_id()::text as written_xid",
        &[&actor, &org],
    )
    .await?;
    Ok(())
}

/// `roster.member_access` and, when it grants organization:read, `roster.get_organization`.
pub async fn get_organization_with_access(
    client: &Client,
    actor: Uuid,
    org: Uuid,
) -> Result<(Access, Option<Organization>), ApiError> {
    const SQL: &str = concat!(
        "select ",
        access_columns!(),
        ", g.* from roster.member_access($1, $2) a \
         left join lateral (select * from roster.get_organization($1, $2) \
                             where 'organization:read' = any (a.permissions) offset 0) g on true"
    );
    let row = query_one(client, SQL, &[&actor, &org]).await?;
    let access = Access::from_row(&row, "access_")?;
    let organization = match row.try_get::<_, Option<Uuid>>("id")? {
        Some(_) => Some(Organization::from_row(&row)?),
        None => None,
    };
    Ok((access, organization))
}

/// `roster.caller_identity` and, when the caller is live, `roster.list_organizations` with each
/// organization's version (its `authz_version` column).
pub async fn list_organizations_with_identity(
    client: &Client,
    actor: Uuid,
    page: Page,
) -> Result<(Identity, Vec<(UserOrganization, i64)>), ApiError> {
    let rows = query(
        client,
        "select i.tenant_id as identity_tenant_id, i.is_tenant_admin as identity_is_tenant_admin, \
                i.user_live as identity_user_live, i.user_version as identity_user_version, \
                i.tenant_version as identity_tenant_version, l.* \
           from roster.caller_identity($1) i \
           left join lateral (select * from roster.list_organizations($1, $2, $3) \
                               where i.user_live offset 0) l on true",
        &[&actor, &page.fetch_limit(), &page.offset],
    )
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| ApiError::Internal("caller_identity returned no row".into()))?;
    let identity = Identity::from_row(first, "identity_")?;
    let mut organizations = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<_, Option<Uuid>>("id")?.is_some() {
            organizations.push((
                UserOrganization::from_row(row)?,
                row.try_get("authz_version")?,
            ));
        }
    }
    Ok((identity, organizations))
}
