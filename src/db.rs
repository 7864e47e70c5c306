//! One Rust function per `roster.*` SQL function, named the same, and the types their rows map
//! to. Each call is one round trip through a cached prepared statement; rows are read by column
//! name in one `from_row` per type.

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{MembershipStatus, Page, Role};
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
        })
    }
}

/// One of a user's organizations, with that user's membership in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserOrganization {
    #[serde(flatten)]
    pub organization: Organization,
    pub role: Role,
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

/// A membership row, as the membership functions return it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Membership {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub status: MembershipStatus,
    pub invited_by_user_id: Option<Uuid>,
    pub joined_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Membership {
    fn from_row(row: &Row) -> Result<Membership, tokio_postgres::Error> {
        Ok(Membership {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            user_id: row.try_get("user_id")?,
            role: row.try_get("role")?,
            status: row.try_get("status")?,
            invited_by_user_id: row.try_get("invited_by_user_id")?,
            joined_at: row.try_get("joined_at")?,
            last_active_at: row.try_get("last_active_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Who added or invited a member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Inviter {
    pub user_id: Uuid,
    pub email: Option<String>,
}

/// A row of an organization's member list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    pub membership_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub status: MembershipStatus,
    pub invited_by: Option<Inviter>,
    pub joined_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Member {
    fn from_row(row: &Row) -> Result<Member, tokio_postgres::Error> {
        let invited_by: Option<Uuid> = row.try_get("invited_by_user_id")?;
        Ok(Member {
            membership_id: row.try_get("membership_id")?,
            user_id: row.try_get("user_id")?,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            role: row.try_get("role")?,
            status: row.try_get("status")?,
            invited_by: match invited_by {
                Some(user_id) => Some(Inviter {
                    user_id,
                    email: row.try_get("invited_by_email")?,
                }),
                None => None,
            },
            joined_at: row.try_get("joined_at")?,
            last_active_at: row.try_get("last_active_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// The fields of a new organization, in `roster.create_organization`'s order.
#[derive(Debug, Clone, Default)]
pub struct NewOrganization {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub domain: Option<String>,
    pub billing_email: Option<String>,
    pub billing_address: Option<Value>,
    pub stripe_customer_id: Option<String>,
    pub metadata: Option<Value>,
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
    let row = query_one(
        client,
        "select * from roster.create_organization($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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

pub async fn get_organization(
    client: &Client,
    actor: Uuid,
    org: Uuid,
) -> Result<Organization, ApiError> {
    let row = query_one(
        client,
        "select * from roster.get_organization($1, $2)",
        &[&actor, &org],
    )
    .await?;
    Ok(Organization::from_row(&row)?)
}

pub async fn list_organizations(
    client: &Client,
    actor: Uuid,
    page: Page,
) -> Result<Vec<UserOrganization>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_organizations($1, $2, $3)",
        &[&actor, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, UserOrganization::from_row)
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
    let row = query_one(
        client,
        "select * from roster.update_organization($1, $2, $3)",
        &[&actor, &org, changes],
    )
    .await?;
    Ok(Organization::from_row(&row)?)
}

pub async fn delete_organization(client: &Client, actor: Uuid, org: Uuid) -> Result<(), ApiError> {
    query(
        client,
        "select roster.delete_organization($1, $2)",
        &[&actor, &org],
    )
    .await?;
    Ok(())
}

pub async fn add_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
    role: Role,
    status: MembershipStatus,
) -> Result<Membership, ApiError> {
    let row = query_one(
        client,
        "select * from roster.add_member($1, $2, $3, $4, $5)",
        &[&actor, &org, &user, &role.as_str(), &status.as_str()],
    )
    .await?;
    Ok(Membership::from_row(&row)?)
}

pub async fn accept_invitation(
    client: &Client,
    actor: Uuid,
    org: Uuid,
) -> Result<Membership, ApiError> {
    let row = query_one(
        client,
        "select * from roster.accept_invitation($1, $2)",
        &[&actor, &org],
    )
    .await?;
    Ok(Membership::from_row(&row)?)
}

pub async fn update_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
    role: Option<Role>,
    status: Option<MembershipStatus>,
) -> Result<Membership, ApiError> {
    let row = query_one(
        client,
        "select * from roster.update_member($1, $2, $3, $4, $5)",
        &[
            &actor,
            &org,
            &user,
            &role.map(Role::as_str),
            &status.map(MembershipStatus::as_str),
        ],
    )
    .await?;
    Ok(Membership::from_row(&row)?)
}

pub async fn remove_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
) -> Result<(), ApiError> {
    query(
        client,
        "select roster.remove_member($1, $2, $3)",
        &[&actor, &org, &user],
    )
    .await?;
    Ok(())
}

pub async fn list_members(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    page: Page,
) -> Result<Vec<Member>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_members($1, $2, $3, $4)",
        &[&actor, &org, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, Member::from_row)
}

/// A trivial round trip, for `/readyz`.
pub async fn ping(client: &Client) -> Result<(), ApiError> {
    query(client, "select 1", &[]).await?;
    Ok(())
}

async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, ApiError> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

/// The functions returning one row raise an error instead of returning none, so an empty
/// result here is a bug, not a "not found".
async fn query_one(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, ApiError> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_one(&statement, params).await?)
}

fn map_rows<T>(
    rows: &[Row],
    from_row: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, ApiError> {
    rows.iter()
        .map(|row| from_row(row).map_err(ApiError::from))
        .collect()
}

/// `member_count` exists in some functions' results and not in others.
fn optional_column(row: &Row, name: &str) -> Result<Option<i64>, tokio_postgres::Error> {
    match row.columns().iter().any(|c| c.name() == name) {
        true => row.try_get(name),
        false => Ok(None),
    }
}
