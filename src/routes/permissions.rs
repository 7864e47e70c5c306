//! The tenant's permission catalogue: registered by its services (service tokens) or its
//! tenant admins.

use actix_web::{web, HttpResponse};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::db::permissions::{self as db, Manager, Permission};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, post};
    cfg.service(
        resource("/tenant/permissions")
            .route(get().to(list_permissions))
            .route(post().to(register_permissions)),
    )
    .service(resource("/tenant/permissions/{name}").route(delete().to(retire_permission)));
}

const NOT_A_MANAGER: &str = "`forbidden`: tenant admins and the tenant's services only.";

/// One permission to register.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // the document's schema; the handler passes the JSON through
pub struct NewPermission {
    /// `resource:action`: two segments of `[a-z][a-z0-9_-]*`, at most 100 characters; not a
    /// built-in resource (organization, members, audit, roles, groups, grants, invitations).
    #[schema(pattern = "^[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*$", max_length = 100)]
    name: String,
    #[schema(max_length = 500)]
    description: Option<String>,
}

fn manager(principal: &Principal) -> Manager {
    match principal {
        Principal::User(actor) => Manager::Actor(*actor),
        Principal::Service { tenant, .. } => Manager::Tenant(*tenant),
    }
}

/// Register permissions (idempotent: registering again updates the description).
#[utoipa::path(post, path = "/tenant/permissions", tag = "permissions",
    request_body(content = Vec<NewPermission>, description = "1 to 1000 permissions."),
    responses(
        (status = 200, description = "The registered permissions.", body = Vec<Permission>),
        (status = 403, description = NOT_A_MANAGER, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn register_permissions(
    principal: Principal,
    state: web::Data<AppState>,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let registered = db::register_permissions(&client, manager(&principal), &body).await?;
    Ok(HttpResponse::Ok().json(registered))
}

/// The whole catalogue of the tenant, built-ins included.
#[utoipa::path(get, path = "/tenant/permissions", tag = "permissions",
    responses(
        (status = 200, description = "Every permission, by name.", body = Vec<Permission>),
        (status = 403, description = NOT_A_MANAGER, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_permissions(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    Ok(HttpResponse::Ok().json(db::list_permissions(&client, manager(&principal)).await?))
}

/// Retire a permission (refused while a role grants it by name).
#[utoipa::path(delete, path = "/tenant/permissions/{name}", tag = "permissions",
    params(("name" = String, Path, description = "resource:action")),
    responses(
        (status = 204, description = "Retired."),
        (status = 403, description = NOT_A_MANAGER, body = ErrorBody),
        (status = 409, description = "`permission_in_use` (roles grant it by name; the message names them) or `builtin`.", body = ErrorBody),
        (status = 422, description = "`unknown_permission`: not in the catalogue.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn retire_permission(
    principal: Principal,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    db::retire_permission(&client, manager(&principal), &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
