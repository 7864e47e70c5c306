//! The invitation functions: rows and wrappers of `roster.invite` and friends.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::members::Membership;
use super::{map_rows, query, write, write_one, Client};
use crate::domain::{BulkInviteResult, InvitationStatus, Page, RoleKey};
use crate::error::{self, ApiError, ErrorDetail};

/// An invitation, as the invitation functions show it: never with its token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub organization_slug: String,
    /// The address invited, lowercase.
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: RoleKey,
    /// As of now: a pending invitation past `expires_at` is `expired`.
    pub status: InvitationStatus,
    pub invited_by_user_id: Option<Uuid>,
    /// Null once the inviter is deleted.
    pub invited_by_email: Option<String>,
    /// The invitee's user, once known: an invited member's (`POST .../members` with status
    /// `invited`), or who accepted.
    pub user_id: Option<Uuid>,
    /// The invited membership this invitation is, or the membership accepting made.
    pub membership_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    /// When the current token was issued (made or resent).
    pub sent_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by_user_id: Option<Uuid>,
    pub declined_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Invitation {
    fn from_row(row: &Row) -> Result<Invitation, tokio_postgres::Error> {
        Ok(Invitation {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            organization_name: row.try_get("organization_name")?,
            organization_slug: row.try_get("organization_slug")?,
            email: row.try_get("email")?,
            role: row.try_get("role")?,
            status: row.try_get("status")?,
            invited_by_user_id: row.try_get("invited_by_user_id")?,
            invited_by_email: row.try_get("invited_by_email")?,
            user_id: row.try_get("user_id")?,
            membership_id: row.try_get("membership_id")?,
            expires_at: row.try_get("expires_at")?,
            sent_at: row.try_get("sent_at")?,
            accepted_at: row.try_get("accepted_at")?,
            accepted_by_user_id: row.try_get("accepted_by_user_id")?,
            declined_at: row.try_get("declined_at")?,
            revoked_at: row.try_get("revoked_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// An invitation with its token, as making or resending it returns it: the only place the
/// token ever appears. Send it to the invitee (Roster sends no email).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedInvitation {
    #[serde(flatten)]
    pub invitation: Invitation,
    /// 43 URL-safe characters (32 random bytes); only its SHA-256 is stored.
    pub token: String,
}

impl IssuedInvitation {
    fn from_row(row: &Row) -> Result<IssuedInvitation, tokio_postgres::Error> {
        Ok(IssuedInvitation {
            invitation: Invitation::from_row(row)?,
            token: row.try_get("token")?,
        })
    }
}

/// One item of a bulk invitation's answer, in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkInviteItem {
    /// The item's place in the request, from 0.
    pub index: i32,
    /// The address as sent.
    pub email: Option<String>,
    pub result: BulkInviteResult,
    /// With `invited`: the invitation and its token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation: Option<IssuedInvitation>,
    /// Otherwise, why: the code and message a single invitation would have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl BulkInviteItem {
    fn from_row(row: &Row) -> Result<BulkInviteItem, tokio_postgres::Error> {
        let sqlstate: Option<String> = row.try_get("error_sqlstate")?;
        let constraint: Option<String> = row.try_get("error_constraint")?;
        let message: Option<String> = row.try_get("error_message")?;
        let invited = row.try_get::<_, Option<Uuid>>("id")?.is_some();
        Ok(BulkInviteItem {
            index: row.try_get("item_index")?,
            email: row.try_get("item_email")?,
            result: row.try_get("result")?,
            invitation: match invited {
                true => Some(IssuedInvitation::from_row(row)?),
                false => None,
            },
            error: sqlstate.map(|sqlstate| ErrorDetail {
                code: error::code_of(&sqlstate, constraint.as_deref()),
                message: message.unwrap_or_default(),
            }),
        })
    }
}

pub async fn invite(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    email: &str,
    role: &RoleKey,
    expires_in_seconds: Option<i64>,
) -> Result<IssuedInvitation, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.invite($1, $2, $3, $4, make_interval(secs => $5::bigint))",
        &[&actor, &org, &email, &role.as_str(), &expires_in_seconds],
    )
    .await?;
    Ok(IssuedInvitation::from_row(&row)?)
}

/// `invites` is passed through as JSON: the SQL function refuses items one by one.
pub async fn invite_many(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    invites: &Value,
) -> Result<Vec<BulkInviteItem>, ApiError> {
    let rows = write(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.invite_many($1, $2, $3)",
        &[&actor, &org, invites],
    )
    .await?;
    map_rows(&rows, BulkInviteItem::from_row)
}

pub async fn resend_invitation(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    invitation: Uuid,
) -> Result<IssuedInvitation, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.resend_invitation($1, $2, $3)",
        &[&actor, &org, &invitation],
    )
    .await?;
    Ok(IssuedInvitation::from_row(&row)?)
}

pub async fn revoke_invitation(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    invitation: Uuid,
) -> Result<Invitation, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.revoke_invitation($1, $2, $3)",
        &[&actor, &org, &invitation],
    )
    .await?;
    Ok(Invitation::from_row(&row)?)
}

/// `status` None lists every invitation.
pub async fn list_invitations(
    client: &Client,
    actor: Uuid,
    org: Uuid,
    status: Option<InvitationStatus>,
    page: Page,
) -> Result<Vec<Invitation>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_invitations($1, $2, $3, $4, $5)",
        &[
            &actor,
            &org,
            &status.map(InvitationStatus::as_str),
            &page.fetch_limit(),
            &page.offset,
        ],
    )
    .await?;
    map_rows(&rows, Invitation::from_row)
}

pub async fn accept_invitation_token(
    client: &Client,
    user: Uuid,
    token: &str,
) -> Result<Membership, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.accept_invitation_token($1, $2)",
        &[&user, &token],
    )
    .await?;
    Ok(Membership::from_row(&row)?)
}

pub async fn decline_invitation_token(
    client: &Client,
    user: Uuid,
    token: &str,
) -> Result<Invitation, ApiError> {
    let row = write_one(
        client,
        "select *, pg_current_xact_id()::text as written_xid from roster.decline_invitation_token($1, $2)",
        &[&user, &token],
    )
    .await?;
    Ok(Invitation::from_row(&row)?)
}

pub async fn list_my_invitations(
    client: &Client,
    user: Uuid,
    page: Page,
) -> Result<Vec<Invitation>, ApiError> {
    let rows = query(
        client,
        "select * from roster.list_my_invitations($1, $2, $3)",
        &[&user, &page.fetch_limit(), &page.offset],
    )
    .await?;
    map_rows(&rows, Invitation::from_row)
}
