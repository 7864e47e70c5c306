//! One Rust function per `roster.*` SQL function, named the same, and the types their rows map
//! to. Each call is one statement through a cached prepared statement; rows are read by column
//! name in one `from_row` per type. The `*_with_access` functions at the end are the cache's
//! fill path: one statement returning a lookup function's answer and, when it allows, the data,
//! so that a request that misses the cache still makes one round trip.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{MembershipStatus, Page, Role};
use crate::error::ApiError;
use crate::metrics::{Metrics, PoolStatus};

/// The pool, with the metrics every statement is counted in.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    metrics: Arc<Metrics>,
}

impl Db {
    pub fn new(pool: Pool, metrics: Arc<Metrics>) -> Db {
        Db { pool, metrics }
    }

    /// A pooled connection; 503 when none frees up within the pool's timeout.
    pub async fn client(&self) -> Result<Client, ApiError> {
        Ok(Client {
            client: self.pool.get().await?,
            metrics: self.metrics.clone(),
        })
    }

    pub fn status(&self) -> PoolStatus {
        let status = self.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// A pooled connection whose statements are counted as database round trips.
pub struct Client {
    client: deadpool_postgres::Object,
    metrics: Arc<Metrics>,
}

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
    fn from_row(row: &Row, prefix: &str) -> Result<Identity, tokio_postgres::Error> {
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
    fn from_row(row: &Row, prefix: &str) -> Result<Access, tokio_postgres::Error> {
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

/// One entry of an organization's audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// The user a roster function acted for; null for changes made by raw SQL.
    pub actor_id: Option<Uuid>,
    /// The database login that made the change.
    pub db_user: String,
    /// e.g. `membership.updated`.
    pub action: String,
    pub organization_id: Uuid,
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
            action: row.try_get("action")?,
            organization_id: row.try_get("organization_id")?,
            target_user_id: row.try_get("target_user_id")?,
            before: row.try_get("before")?,
            after: row.try_get("after")?,
        })
    }
}

/// A new organization: the body of `POST /organizations`, in `roster.create_organization`'s
/// order. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// 1 to 255 characters, unique in the tenant (case-insensitively).
    pub name: String,
    /// 2 to 50 characters of `a-z`, `0-9` and single hyphens, unique in the tenant.
    pub slug: String,
    pub description: Option<String>,
    /// A lowercase hostname with at least one dot.
    pub domain: Option<String>,
    pub billing_email: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub billing_address: Option<Value>,
    pub stripe_customer_id: Option<String>,
    #[schema(value_type = Option<Object>)]
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

pub async fn get_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
) -> Result<Member, ApiError> {
    let row = query_one(
        client,
        "select * from roster.get_member($1, $2, $3)",
        &[&actor, &org, &user],
    )
    .await?;
    Ok(Member::from_row(&row)?)
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

// The cache's fill path. Each statement asks a lookup function (`member_access` or
// `caller_identity`) and, only when its answer allows, the data function, whose own checks then
// agree. Lookup columns come prefixed (`access_`, `identity_`) to stay apart from the data's.
// `offset 0` keeps each lateral subquery from being pulled up, so that its condition stays a
// one-time filter and the data function is not even called when access is refused.

macro_rules! access_columns {
    () => {
        "a.tenant_id as access_tenant_id, a.is_tenant_admin as access_is_tenant_admin, \
         a.user_live as access_user_live, a.user_version as access_user_version, \
         a.org_version as access_org_version, a.role as access_role, \
         a.status as access_status, a.permissions as access_permissions"
    };
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

/// `roster.member_access` and, when it grants members:read, `roster.list_members`.
pub async fn list_members_with_access(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    page: Page,
) -> Result<(Access, Vec<Member>), ApiError> {
    const SQL: &str = concat!(
        "select ",
        access_columns!(),
        ", m.* from roster.member_access($1, $2) a \
         left join lateral (select * from roster.list_members($1, $2, $3, $4) \
                             where 'members:read' = any (a.permissions) offset 0) m on true"
    );
    let rows = query(
        client,
        SQL,
        &[&actor, &org, &page.fetch_limit(), &page.offset],
    )
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| ApiError::Internal("member_access returned no row".into()))?;
    let access = Access::from_row(first, "access_")?;
    let mut members = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<_, Option<Uuid>>("membership_id")?.is_some() {
            members.push(Member::from_row(row)?);
        }
    }
    Ok((access, members))
}

/// `roster.caller_identity` and, when the caller is live, `roster.list_organizations` with each
/// organization's authz_version.
pub async fn list_organizations_with_identity(
    client: &Client,
    actor: Uuid,
    page: Page,
) -> Result<(Identity, Vec<(UserOrganization, i64)>), ApiError> {
    let rows = query(
        client,
        "select i.tenant_id as identity_tenant_id, i.is_tenant_admin as identity_is_tenant_admin, \
                i.user_live as identity_user_live, i.user_version as identity_user_version, l.* \
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
    let statement = prepare(client, sql).await?;
    Ok(client.client.query(&statement, params).await?)
}

/// The functions returning one row raise an error instead of returning none, so an empty
/// result here is a bug, not a "not found".
async fn query_one(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, ApiError> {
    let statement = prepare(client, sql).await?;
    Ok(client.client.query_one(&statement, params).await?)
}

/// Counts the statement, and the prepare too when it was not cached on this connection yet.
async fn prepare(client: &Client, sql: &str) -> Result<tokio_postgres::Statement, ApiError> {
    let cached = client.client.statement_cache.size();
    let statement = client.client.prepare_cached(sql).await?;
    let prepared = u64::from(client.client.statement_cache.size() > cached);
    client.metrics.db_round_trips.add(1 + prepared);
    Ok(statement)
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
