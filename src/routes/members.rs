use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::members::{self as db, Member, Membership};
use crate::domain::{CursorPageParams, MembershipStatus, Page, Paginated, RoleKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::reads;
use crate::routes::json_bytes;
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

/// The body of `POST /organizations/{org_id}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user_id: Uuid,
    /// Defaults to `member`.
    pub role: Option<RoleKey>,
    /// `active` (default) adds the user; `invited` invites them.
    pub status: Option<MembershipStatus>,
}

/// The body of `PATCH /organizations/{org_id}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    pub role: Option<RoleKey>,
    /// `active` or `suspended`.
    pub status: Option<MembershipStatus>,
}

/// Add or invite a user of the tenant.
#[utoipa::path(post, path = "/organizations/{org_id}/members", tag = "members",
    params(("org_id" = Uuid, Path)), request_body = AddMember,
    responses(
        (status = 201, body = Membership, headers(("Location" = String))),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add_member(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    body: Json<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let role = body.role.clone().unwrap_or_else(RoleKey::member);
    let status = body.status.unwrap_or(MembershipStatus::Active);
    let client = state.db.client().await?;
    let membership = db::add_member(
        &client,
        caller.user_id,
        *org_id,
        body.user_id,
        &role,
        status,
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
    responses((status = 200, body = Paginated<Member>), (status = 404, body = ErrorBody)),
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
    responses((status = 200, body = Member), (status = 404, body = ErrorBody)),
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
        (status = 200, body = Membership),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "last owner", body = ErrorBody), (status = 422, body = ErrorBody),
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
        body.status,
    )
    .await?;
    Ok(HttpResponse::Ok().json(membership))
}

/// Remove a member; removing yourself is leaving.
#[utoipa::path(delete, path = "/organizations/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "last owner", body = ErrorBody),
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
        (status = 200, body = Membership),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
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
