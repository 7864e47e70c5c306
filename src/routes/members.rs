use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::members::{self as db, ExpiryChange, Member, Membership};
use crate::domain::{
    self, CursorPageParams, MemberStatusChange, MembershipStatus, NewMemberStatus, Page, Paginated,
    RoleKey,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::reads;
use crate::routes::json_bytes;
use crate::routes::{FORBIDDEN, NOT_VISIBLE};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, patch, post, put};
    cfg.service(
        resource("/organizations/{org_id}/members")
            .route(get().to(list_members))
            .route(post().to(add_member)),
    )
    .service(
        resource("/organizations/{org_id}/members/{user_id}")
            .route(get().to(get_member))
            .route(patch().to(update_member))
            .route(put().to(update_member))
            .route(delete().to(remove_member)),
    )
    .service(
        resource("/organizations/{org_id}/invitations/accept").route(post().to(accept_invitation)),
    );
}

const MEMBER_NOT_FOUND: &str =
    "`not_found`: no such organization visible to the caller; `member_not_found`: the user has \
     no live membership there.";
const LAST_OWNER: &str = "`last_owner`: the organization would be left without an active owner.";

/// The body of `POST /organizations/{org_id}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user_id: Uuid,
    /// Defaults to `member` (also when null).
    pub role: Option<RoleKey>,
    /// `active` (the default, also when null) adds the user; `invited` invites them.
    pub status: Option<NewMemberStatus>,
    /// When the membership stops granting anything (in the future; RFC 3339). Absent or null:
    /// never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The body of `PATCH /organizations/{org_id}/members/{user_id}`: any of a role, a status and
/// an expiry (none is 422). A null role or status is refused: neither can be cleared; a null
/// `expires_at` removes the expiry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateMember {
    #[serde(default, deserialize_with = "domain::present")]
    #[schema(nullable = false)]
    pub role: Option<RoleKey>,
    #[serde(default, deserialize_with = "domain::present")]
    #[schema(nullable = false)]
    pub status: Option<MemberStatusChange>,
    /// A future time (RFC 3339), or null for no expiry. The last lasting owner cannot get one.
    #[serde(default, deserialize_with = "domain::nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// Add or invite a user of the tenant.
#[utoipa::path(post, path = "/organizations/{org_id}/members", tag = "members",
    params(("org_id" = Uuid, Path)), request_body = AddMember,
    responses(
        (status = 201, description = "Added or invited.", body = Membership,
            headers(("Location" = String, description = "`/organizations/{org_id}/members/{user_id}`"))),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = "`not_found` (the organization, as for every member operation), \
            `user_not_found`: no such user in the tenant.", body = ErrorBody),
        (status = 409, description = "`already_member`: the user has a live membership (invited, \
            active or suspended).", body = ErrorBody),

        (status = 422, description = "`invalid_input`: a past expires_at, an unknown value or field.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add_member(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    body: Json<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let role = body.role.clone().unwrap_or_else(RoleKey::member);
    let status = body.status.map_or(MembershipStatus::Active, Into::into);
    let client = state.db.client().await?;
    let membership = db::add_member(
        &client,
        caller.user_id,
        *org_id,
        body.user_id,
        &role,
        status,
        body.expires_at,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/organizations/{}/members/{}",
                membership.organization_id, membership.user_id
            ),
        ))
        .json(membership))
}

/// The organization's members (invited, active and suspended), oldest first.
#[utoipa::path(get, path = "/organizations/{org_id}/members", tag = "members",
    params(("org_id" = Uuid, Path), CursorPageParams),
    responses(
        (status = 200, description = "A page of members, oldest first.", body = Paginated<Member>),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_members(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    params: web::Query<CursorPageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse_with_cursor(&params)?;
    let body = reads::members(&state, caller.user_id, *org_id, page).await?;
    Ok(json_bytes(body))
}

/// One member of the organization.
#[utoipa::path(get, path = "/organizations/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The member.", body = Member),
        (status = 404, description = MEMBER_NOT_FOUND, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_member(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, user_id) = path.into_inner();
    let client = state.db.client().await?;
    let member = db::get_member(&client, caller.user_id, org_id, user_id).await?;
    Ok(HttpResponse::Ok().json(member))
}

/// Change a member's role and/or status (also under `PUT`).
#[utoipa::path(method(patch, put), path = "/organizations/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = UpdateMember,
    responses(
        (status = 200, description = "The membership as updated.", body = Membership),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = MEMBER_NOT_FOUND, body = ErrorBody),
        (status = 409, description = LAST_OWNER, body = ErrorBody),
        (status = 422, description = "`invalid_input`: none of role, status and expires_at, a null \
            role or status, a past expiry, an unknown value or field; or a status for an invitation, \
            which only its invitee can accept.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_member(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateMember>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, user_id) = path.into_inner();
    let client = state.db.client().await?;
    let membership = db::update_member(
        &client,
        caller.user_id,
        org_id,
        user_id,
        body.role.as_ref(),
        body.status.map(Into::into),
        match body.expires_at {
            None => ExpiryChange::Keep,
            Some(None) => ExpiryChange::Clear,
            Some(Some(at)) => ExpiryChange::Set(at),
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(membership))
}

/// Remove a member; removing yourself is leaving.
#[utoipa::path(delete, path = "/organizations/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = MEMBER_NOT_FOUND, body = ErrorBody),
        (status = 409, description = LAST_OWNER, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove_member(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org_id, user_id) = path.into_inner();
    let client = state.db.client().await?;
    db::remove_member(&client, caller.user_id, org_id, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Accept the caller's pending invitation.
#[utoipa::path(post, path = "/organizations/{org_id}/invitations/accept", tag = "members",
    params(("org_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The membership, now active.", body = Membership),
        (status = 404, description = "`not_found`: no such organization, or no invitation of the \
            caller's there.", body = ErrorBody),
        (status = 409, description = "`invitation_not_pending`: the membership is not `invited`.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn accept_invitation(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let membership = db::accept_invitation(&client, caller.user_id, *org_id).await?;
    Ok(HttpResponse::Ok().json(membership))
}
