//! Roles: an organization's (`/organizations/{org_id}/roles`, roles:manage to change) and the
//! tenant's (`/tenant/roles`, tenant admins). Built-in roles are listed and immutable.

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::roles::{self as db, Role};
use crate::domain::RoleKey;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::{FORBIDDEN, NOT_VISIBLE};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, patch, post};
    cfg.service(
        resource("/organizations/{org_id}/roles")
            .route(get().to(list_roles))
            .route(post().to(create_role)),
    )
    .service(
        resource("/organizations/{org_id}/roles/{key}")
            .route(get().to(get_role))
            .route(patch().to(update_role))
            .route(delete().to(delete_role)),
    )
    .service(
        resource("/tenant/roles")
            .route(get().to(list_tenant_roles))
            .route(post().to(create_tenant_role)),
    )
    .service(
        resource("/tenant/roles/{key}")
            .route(get().to(get_tenant_role))
            .route(patch().to(update_tenant_role))
            .route(delete().to(delete_tenant_role)),
    );
}

const IN_USE: &str = "`role_in_use`: memberships hold it (give reassign_to), or `builtin`.";
const TAKEN: &str =
    "`role_key_taken`: the key is used in this organization, its tenant, or by a built-in role.";
const ESCALATION: &str = "`forbidden` (no roles:manage) or `privilege_escalation`: the role would grant permissions the caller does not hold.";

/// The body of `POST .../roles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub key: RoleKey,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Permission names and wildcards of the tenant's catalogue (`invoice:approve`,
    /// `invoice:*`, `*:read`, `*`), each held by the caller.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub permissions: Vec<String>,
}

/// The body of `PATCH .../roles/{key}`: any of name, description, permissions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the document's schema; the handler passes the JSON through
pub struct RoleChanges {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[schema(max_length = 1000)]
    description: Option<String>,
    #[schema(max_items = 500)]
    permissions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteRoleParams {
    /// Move the memberships that hold the role to this one, in the same transaction.
    #[param(pattern = "^[a-z][a-z0-9_-]{1,49}$")]
    pub reassign_to: Option<String>,
}

fn created(location: String, role: Role) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(role)
}

/// The roles available in the organization: built-ins, the tenant's, its own.
#[utoipa::path(get, path = "/organizations/{org_id}/roles", tag = "roles",
    params(("org_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Every role available there, with its permissions.", body = Vec<Role>),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_roles(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let roles = db::list_roles(&client, caller.user_id, Some(*org_id)).await?;
    Ok(HttpResponse::Ok().json(roles))
}

/// Create a role of the organization (roles:manage; no permission the caller lacks).
#[utoipa::path(post, path = "/organizations/{org_id}/roles", tag = "roles",
    params(("org_id" = Uuid, Path)), request_body = NewRole,
    responses(
        (status = 201, description = "The role.", body = Role, headers(("Location" = String))),
        (status = 403, description = ESCALATION, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
        (status = 409, description = TAKEN, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_role(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    body: Json<NewRole>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let role = db::create_role(
        &client,
        caller.user_id,
        Some(*org_id),
        &body.key,
        &body.name,
        body.description.as_deref(),
        &body.permissions,
    )
    .await?;
    Ok(created(
        format!("/organizations/{org_id}/roles/{}", role.key.as_str()),
        role,
    ))
}

/// One role available in the organization.
#[utoipa::path(get, path = "/organizations/{org_id}/roles/{key}", tag = "roles",
    params(("org_id" = Uuid, Path), ("key" = String, Path)),
    responses(
        (status = 200, description = "The role.", body = Role),
        (status = 404, description = "`not_found` or `role_not_found`.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_role(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let client = state.db.client().await?;
    Ok(HttpResponse::Ok().json(db::get_role(&client, caller.user_id, Some(org), &key).await?))
}

/// Change an organization's role (partial: name, description, permissions).
#[utoipa::path(patch, path = "/organizations/{org_id}/roles/{key}", tag = "roles",
    params(("org_id" = Uuid, Path), ("key" = String, Path)), request_body = RoleChanges,
    responses(
        (status = 200, description = "The role as changed.", body = Role),
        (status = 403, description = ESCALATION, body = ErrorBody),
        (status = 404, description = "`not_found` or `role_not_found`.", body = ErrorBody),
        (status = 409, description = "`builtin`: built-in roles are immutable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_role(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    changes: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let client = state.db.client().await?;
    let role = db::update_role(&client, caller.user_id, Some(org), &key, &changes).await?;
    Ok(HttpResponse::Ok().json(role))
}

/// Delete an organization's role (refused while held, unless `reassign_to`).
#[utoipa::path(delete, path = "/organizations/{org_id}/roles/{key}", tag = "roles",
    params(("org_id" = Uuid, Path), ("key" = String, Path), DeleteRoleParams),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = "`not_found` or `role_not_found`.", body = ErrorBody),
        (status = 409, description = IN_USE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_role(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    params: web::Query<DeleteRoleParams>,
) -> Result<HttpResponse, ApiError> {
    let (org, key) = path.into_inner();
    let client = state.db.client().await?;
    db::delete_role(
        &client,
        caller.user_id,
        Some(org),
        &key,
        params.reassign_to.as_deref(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant's roles: built-ins and tenant-wide ones (tenant admins).
#[utoipa::path(get, path = "/tenant/roles", tag = "roles",
    responses(
        (status = 200, description = "The built-in and tenant-wide roles.", body = Vec<Role>),
        (status = 403, description = "`forbidden`: tenant admins only.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_tenant_roles(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    Ok(HttpResponse::Ok().json(db::list_roles(&client, caller.user_id, None).await?))
}

/// Create a tenant-wide role, available in every organization (tenant admins).
#[utoipa::path(post, path = "/tenant/roles", tag = "roles", request_body = NewRole,
    responses(
        (status = 201, description = "The role.", body = Role, headers(("Location" = String))),
        (status = 403, description = "`forbidden`: tenant admins only.", body = ErrorBody),
        (status = 409, description = TAKEN, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_tenant_role(
    caller: Caller,
    state: web::Data<AppState>,
    body: Json<NewRole>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let role = db::create_role(
        &client,
        caller.user_id,
        None,
        &body.key,
        &body.name,
        body.description.as_deref(),
        &body.permissions,
    )
    .await?;
    Ok(created(
        format!("/tenant/roles/{}", role.key.as_str()),
        role,
    ))
}

/// One of the tenant's roles (tenant admins).
#[utoipa::path(get, path = "/tenant/roles/{key}", tag = "roles",
    params(("key" = String, Path)),
    responses(
        (status = 200, description = "The role.", body = Role),
        (status = 403, description = "`forbidden`: tenant admins only.", body = ErrorBody),
        (status = 404, description = "`role_not_found`.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_tenant_role(
    caller: Caller,
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    Ok(HttpResponse::Ok().json(db::get_role(&client, caller.user_id, None, &key).await?))
}

/// Change a tenant-wide role (tenant admins).
#[utoipa::path(patch, path = "/tenant/roles/{key}", tag = "roles",
    params(("key" = String, Path)), request_body = RoleChanges,
    responses(
        (status = 200, description = "The role as changed.", body = Role),
        (status = 403, description = "`forbidden`: tenant admins only.", body = ErrorBody),
        (status = 404, description = "`role_not_found`.", body = ErrorBody),
        (status = 409, description = "`builtin`: built-in roles are immutable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_tenant_role(
    caller: Caller,
    state: web::Data<AppState>,
    key: web::Path<String>,
    changes: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let role = db::update_role(&client, caller.user_id, None, &key, &changes).await?;
    Ok(HttpResponse::Ok().json(role))
}

/// Delete a tenant-wide role (tenant admins; refused while held, unless `reassign_to`).
#[utoipa::path(delete, path = "/tenant/roles/{key}", tag = "roles",
    params(("key" = String, Path), DeleteRoleParams),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "`forbidden`: tenant admins only.", body = ErrorBody),
        (status = 404, description = "`role_not_found`.", body = ErrorBody),
        (status = 409, description = IN_USE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_tenant_role(
    caller: Caller,
    state: web::Data<AppState>,
    key: web::Path<String>,
    params: web::Query<DeleteRoleParams>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    db::delete_role(
        &client,
        caller.user_id,
        None,
        &key,
        params.reassign_to.as_deref(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
