//! Groups of an organization (`/organizations/{org_id}/groups`, groups:manage to change) and
//! their members; a grant to a group (`routes::grants`) reaches its members and those of its
//! descendants.

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::groups::{self as db, Group, GroupKey, GroupMember, GroupMembership, UserGroup};
use crate::domain::{Page, PageParams, Paginated};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::NOT_VISIBLE;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, patch, post};
    cfg.service(
        resource("/organizations/{org_id}/groups")
            .route(get().to(list_groups))
            .route(post().to(create_group)),
    )
    .service(
        resource("/organizations/{org_id}/groups/{key}")
            .route(get().to(get_group))
            .route(patch().to(update_group))
            .route(delete().to(delete_group)),
    )
    .service(
        resource("/organizations/{org_id}/groups/{key}/members")
            .route(get().to(list_group_members))
            .route(post().to(add_group_member)),
    )
    .service(
        resource("/organizations/{org_id}/groups/{key}/members/{user_id}")
            .route(get().to(get_group_member))
            .route(delete().to(remove_group_member)),
    )
    .service(
        resource("/organizations/{org_id}/members/{user_id}/groups")
            .route(get().to(list_user_groups)),
    );
}

const MANAGE: &str = "`forbidden`: the caller's role lacks groups:manage.";
const GROUP_NOT_FOUND: &str =
    "`not_found` (the organization, as for every group operation) or `group_not_found`.";

/// The body of `POST .../groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub key: GroupKey,
    /// 1 to 100 characters once leading and trailing spaces are trimmed (they are).
    #[schema(pattern = "^ *[^ ](?:[\\s\\S]{0,98}[^ ])? *$")]
    pub name: String,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// The parent group's key; absent or null: a top-level group.
    pub parent_key: Option<GroupKey>,
}

/// The body of `PATCH .../groups/{key}`: any of name, description, parent_key (null: make it a
/// top-level group). Unknown fields are refused.
//  For the API document only, so never built: the handler passes the JSON through and
//  `roster.update_group` applies it.
#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChanges {
    #[schema(required = false, pattern = "^ *[^ ](?:[\\s\\S]{0,98}[^ ])? *$")]
    name: String,
    #[schema(max_length = 1000)]
    description: Option<String>,
    parent_key: Option<GroupKey>,
}

/// The body of `POST .../groups/{key}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddGroupMember {
    /// A member of the organization.
    pub user_id: Uuid,
    /// RFC 3339, in the future; absent or null: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The organization's groups, by key.
#[utoipa::path(get, path = "/organizations/{org_id}/groups", tag = "groups",
    params(("org_id" = Uuid, Path), PageParams),
    responses(
        (status = 200, description = "A page of groups, by key.", body = Paginated<Group>),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_groups(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows = db::list_groups(&client, caller.user_id, *org_id, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}

/// Create a group, under `parent_key` if given (groups:manage).
#[utoipa::path(post, path = "/organizations/{org_id}/groups", tag = "groups",
    params(("org_id" = Uuid, Path)), request_body = NewGroup,
    responses(
        (status = 201, description = "The group.", body = Group,
            headers(("Location" = String, description = "`/organizations/{org_id}/groups/{key}`"))),
        (status = 403, description = MANAGE, body = ErrorBody),
        (status = 404, description = "`not_found`: the organization.", body = ErrorBody),
        (status = 409, description = "`group_key_taken`: the organization has a group of that key.", body = ErrorBody),
        (status = 422, description = "`invalid_hierarchy`: under that parent, groups would nest \
            deeper than 8 levels; `invalid_input`: `parent_key` names no group of the organization, \
            or a body of the wrong shape (a field missing, of the wrong type or value, or \
            unknown).", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_group(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    body: Json<NewGroup>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let group = db::create_group(
        &client,
        caller.user_id,
        *org_id,
        &body.key,
        &body.name,
        body.description.as_deref(),
        body.parent_key.as_ref(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/organizations/{org_id}/groups/{}", group.key.as_str()),
        ))
        .json(group))
}

/// One group of the organization.
#[utoipa::path(get, path = "/organizations/{org_id}/groups/{key}", tag = "groups",
    params(("org_id" = Uuid, Path), ("key" = String, Path)),
    responses(
        (status = 200, description = "The group.", body = Group),
        (status = 404, description = GROUP_NOT_FOUND, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let client = state.db.client().await?;
    Ok(HttpResponse::Ok().json(db::get_group(&client, caller.user_id, org, &key).await?))
}

/// Change a group (partial: name, description, parent_key; groups:manage).
#[utoipa::path(patch, path = "/organizations/{org_id}/groups/{key}", tag = "groups",
    params(("org_id" = Uuid, Path), ("key" = String, Path)), request_body = GroupChanges,
    responses(
        (status = 200, description = "The group as changed.", body = Group),
        (status = 403, description = "`forbidden`: the caller's role lacks groups:manage, or \
            organization:read (the answer reads the group back).", body = ErrorBody),
        (status = 404, description = GROUP_NOT_FOUND, body = ErrorBody),
        (status = 422, description = "`invalid_hierarchy`: the new parent is the group itself or \
            one of its descendants, or groups would nest deeper than 8 levels; `invalid_input`: \
            `parent_key` names no group of the organization, a body that is no object, an \
            unknown field, a value of the wrong type, a blank or too long name or description.",
            body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    changes: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let client = state.db.client().await?;
    let group = db::update_group(&client, caller.user_id, org, &key, &changes).await?;
    Ok(HttpResponse::Ok().json(group))
}

/// Delete a group with its members and grants (groups:manage; not while it has child groups).
#[utoipa::path(delete, path = "/organizations/{org_id}/groups/{key}", tag = "groups",
    params(("org_id" = Uuid, Path), ("key" = String, Path)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = MANAGE, body = ErrorBody),
        (status = 404, description = GROUP_NOT_FOUND, body = ErrorBody),
        (status = 409, description = "`group_has_children`: move or delete its child groups first.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_group(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let client = state.db.client().await?;
    db::delete_group(&client, caller.user_id, org, &key).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The members of a group (needs members:read), by email; expired ones until purged.
#[utoipa::path(get, path = "/organizations/{org_id}/groups/{key}/members", tag = "groups",
    params(("org_id" = Uuid, Path), ("key" = String, Path), PageParams),
    responses(
        (status = 200, description = "A page of the group's members, by email.", body = Paginated<GroupMember>),
        (status = 403, description = "`forbidden`: the caller's role lacks members:read.", body = ErrorBody),
        (status = 404, description = GROUP_NOT_FOUND, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_group_members(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows = db::list_group_members(&client, caller.user_id, org, &key, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}

/// Add a member of the organization to a group, until `expires_at` if given (groups:manage).
#[utoipa::path(post, path = "/organizations/{org_id}/groups/{key}/members", tag = "groups",
    params(("org_id" = Uuid, Path), ("key" = String, Path)), request_body = AddGroupMember,
    responses(
        (status = 201, description = "The user's membership of the group.", body = GroupMembership,
            headers(("Location" = String, description = "`/organizations/{org_id}/groups/{key}/members/{user_id}`"))),
        (status = 403, description = MANAGE, body = ErrorBody),
        (status = 404, description = "`not_found` (the organization), `group_not_found`, or \
            `member_not_found`: the user is no member of the organization.", body = ErrorBody),
        (status = 409, description = "`already_member`: the user is in the group already.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: `expires_at` is not in the future, or a \
            body of the wrong shape (a field missing, of the wrong type or value, or unknown).", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add_group_member(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    body: Json<AddGroupMember>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let client = state.db.client().await?;
    let membership = db::add_group_member(
        &client,
        caller.user_id,
        org,
        &key,
        body.user_id,
        body.expires_at,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/organizations/{org}/groups/{key}/members/{}",
                membership.user_id
            ),
        ))
        .json(membership))
}

/// One member of a group (needs members:read): where a new group member's `Location` points.
#[utoipa::path(get, path = "/organizations/{org_id}/groups/{key}/members/{user_id}", tag = "groups",
    params(("org_id" = Uuid, Path), ("key" = String, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The member, as the group's member list shows it (an expired one until purged).", body = GroupMember),
        (status = 403, description = "`forbidden`: the caller's role lacks members:read.", body = ErrorBody),
        (status = 404, description = "`not_found` (the organization), `group_not_found`, or \
            `member_not_found`: the user is not in the group.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_group_member(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, key, user) = path.into_inner();
    let client = state.db.client().await?;
    let member = db::get_group_member(&client, caller.user_id, org, &key, user).await?;
    Ok(HttpResponse::Ok().json(member))
}

/// Remove a user from a group (groups:manage).
#[utoipa::path(delete, path = "/organizations/{org_id}/groups/{key}/members/{user_id}", tag = "groups",
    params(("org_id" = Uuid, Path), ("key" = String, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = MANAGE, body = ErrorBody),
        (status = 404, description = "`not_found` (the organization), `group_not_found`, or \
            `member_not_found`: the user is not in the group.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove_group_member(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, key, user) = path.into_inner();
    let client = state.db.client().await?;
    db::remove_group_member(&client, caller.user_id, org, &key, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The groups a user is directly in, by key (the caller's own, or with members:read anyone's).
#[utoipa::path(get, path = "/organizations/{org_id}/members/{user_id}/groups", tag = "groups",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Every group the user is in, with the membership's expiry; \
            empty for a user who is in none, or no member.", body = Vec<UserGroup>),
        (status = 403, description = "`forbidden`: another user's groups, without members:read.", body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_user_groups(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let client = state.db.client().await?;
    let groups = db::list_user_groups(&client, caller.user_id, org, user).await?;
    Ok(HttpResponse::Ok().json(groups))
}
