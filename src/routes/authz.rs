use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::{MembershipStatus, RoleKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::reads;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{get, post};
    cfg.service(resource("/organizations/{org_id}/me").route(get().to(me)))
        .service(resource("/authz/check").route(post().to(check)));
}

/// The caller's standing in one organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MyAccess {
    pub organization_id: Uuid,
    /// The caller's membership role; null for a tenant admin who is not a member.
    pub role: Option<RoleKey>,
    pub status: Option<MembershipStatus>,
    pub is_tenant_admin: bool,
    pub permissions: Vec<String>,
}

/// The caller's role, status and permissions in an organization it can see.
#[utoipa::path(get, path = "/organizations/{org_id}/me", tag = "authorization",
    params(("org_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The caller's access.", body = MyAccess),
        (status = 404, description = "`not_found`: no such organization visible to the caller.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn me(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let access = reads::access(&state, caller.user_id, &[*org_id])
        .await?
        .remove(0);
    access.require(*org_id, "organization:read")?;
    Ok(HttpResponse::Ok().json(MyAccess {
        organization_id: *org_id,
        role: access.role,
        status: access.status,
        is_tenant_admin: access.identity.is_tenant_admin,
        permissions: access.permissions,
    }))
}

/// At most this many checks per call.
pub const MAX_CHECKS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    #[schema(schema_with = crate::constraints::checks)]
    pub checks: Vec<Check>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub organization_id: Uuid,
    /// `resource:action`, e.g. `members:invite`.
    pub permission: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckResponse {
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub allowed: bool,
}

/// May the caller do each of these? An organization it cannot see answers `false`; a
/// permission name in no catalogue of the caller's tenant is refused (422
/// `unknown_permission`), as `roster.has_permission` refuses it.
#[utoipa::path(post, path = "/authz/check", tag = "authorization", request_body = CheckRequest,
    responses((status = 200, description = "One result per check, in order.", body = CheckResponse)),
    security(("bearer" = [])))]
pub async fn check(
    caller: Caller,
    state: web::Data<AppState>,
    body: Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    if body.checks.is_empty() || body.checks.len() > MAX_CHECKS {
        return Err(ApiError::Invalid(format!(
            "checks must hold 1 to {MAX_CHECKS} items, got {}",
            body.checks.len()
        )));
    }
    let checks: Vec<(Uuid, &str)> = body
        .checks
        .iter()
        .map(|c| (c.organization_id, c.permission.as_str()))
        .collect();
    let results = reads::check(&state, caller.user_id, &checks)
        .await?
        .into_iter()
        .map(|allowed| CheckResult { allowed })
        .collect();
    Ok(HttpResponse::Ok().json(CheckResponse { results }))
}
