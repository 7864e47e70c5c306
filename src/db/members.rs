//! The membership functions: rows and wrappers of `roster.add_member` and friends, and the
//! fill statement of the cached member list.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{query, query_one, write_one, Client};
use crate::db::authz::Access;
use crate::domain::{MembershipStatus, Page, RoleKey};
use crate::error::ApiError;

/// A membership row, as the membership functions return it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Membership {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: RoleKey,
    pub status: MembershipStatus,
    pub invited_by_user_id: Option<Uuid>,
    pub joined_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
    /// When the membership stops granting anything; null: never.
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Membership {
    pub(crate) fn from_row(row: &Row) -> Result<Membership, tokio_postgres::Error> {
        Ok(Membership {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            user_id: row.try_get("user_id")?,
            role: row.try_get("role")?,
            status: row.try_get("status")?,
            invited_by_user_id: row.try_get("invited_by_user_id")?,
            joined_at: row.try_get("joined_at")?,
            last_active_at: row.try_get("last_active_at")?,
            expires_at: row.try_get("expires_at")?,
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
    pub role: RoleKey,
    pub status: MembershipStatus,
    pub invited_by: Option<Inviter>,
    pub joined_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
    /// When the membership stops granting anything (it stays listed until purged); null: never.
    pub expires_at: Option<DateTime<Utc>>,
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
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

pub async fn add_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
    role: &RoleKey,
    status: MembershipStatus,
    expires_at: Option<DateTime<Utc>>,
) -> Result<Membership, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.add_member($1, $2, $3, $4, $5, $6)",
        &[
            &actor,
            &org,
            &user,
            &role.as_str(),
            &status.as_str(),
            &expires_at,
        ],
    )
    .await?;
    Ok(Membership::from_row(&row)?)
}

pub async fn accept_invitation(
    client: &Client,
    actor: Uuid,
    org: Uuid,
) -> Result<Membership, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.accept_invitation($1, $2)",
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
    role: Option<&RoleKey>,
    status: Option<MembershipStatus>,
    expiry: ExpiryChange,
) -> Result<Membership, ApiError> {
    let (expires_at, clear) = match expiry {
        ExpiryChange::Keep => (None, false),
        ExpiryChange::Clear => (None, true),
        ExpiryChange::Set(at) => (Some(at), false),
    };
    // 'infinity' is the function's "remove the expiry"; chrono has no such value.
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.update_member($1, $2, $3, $4, $5, \
                case when $7 then 'infinity'::timestamptz else $6 end)",
        &[
            &actor,
            &org,
            &user,
            &role.map(RoleKey::as_str),
            &status.map(MembershipStatus::as_str),
            &expires_at,
            &clear,
        ],
    )
    .await?;
    Ok(Membership::from_row(&row)?)
}

/// What `update_member` does to a membership's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryChange {
    Keep,
    Clear,
    Set(DateTime<Utc>),
}

pub async fn remove_member(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    user: Uuid,
) -> Result<(), ApiError> {
    write_one(
        client,
        "select roster.remove_member($1, $2, $3), pg_current_xact_id()::text as written_xid",
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
         left join lateral (select * from roster.list_members($1, $2, $3, $4, $5) \
                             where 'members:read' = any (a.permissions) offset 0) m on true"
    );
    let rows = query(
        client,
        SQL,
        &[&actor, &org, &page.fetch_limit(), &page.offset, &page.after],
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
