use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Caller, Principal, Scoped, TokenScope};
use crate::db::authz::{self as db, Explanation, Subject};
use crate::domain::{MembershipStatus, Page, PageParams, Paginated, Resource, RoleKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::reads;
use crate::routes::{FORBIDDEN, NOT_VISIBLE};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{get, post};
    cfg.service(resource("/organizations/{org_id}/me").route(get().to(me)))
        .service(resource("/authz/check").route(post().to(check)))
        .service(resource("/authz/explain").route(post().to(explain)))
        .service(
            resource("/organizations/{org_id}/members/{user_id}/permissions")
                .route(get().to(member_permissions)),
        )
        .service(
            resource("/organizations/{org_id}/permissions/{permission}/subjects")
                .route(get().to(subjects)),
        );
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
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn me(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let access = reads::access(&state, caller.user_id, *org_id).await?;
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
    /// `resource:action`, e.g. `members:invite` or `invoice:approve`.
    pub permission: String,
    /// Whose access: the caller's own when absent. Required with a service token; a user asks
    /// about another user only with `members:read` in that organization.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// With `resource_id`: the check is on that resource (organization-wide permissions, and
    /// grants on it or an ancestor). The resource part of a permission name, e.g. `model`.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9_-]*$", max_length = 100)]
    pub resource_type: Option<String>,
    /// The resource's id in its service; with `resource_type`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub resource_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckResponse {
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub allowed: bool,
}

/// May each user do each of these (on a resource, when one is given: organization-wide
/// permissions, and grants on it or an ancestor that reach the user directly or through
/// groups)? An organization the user cannot see answers `false`; a
/// permission name in no catalogue of the tenant is refused (422 `unknown_permission`), as
/// `roster.has_permission` refuses it. Service tokens may ask about any user of their tenant.
#[utoipa::path(post, path = "/authz/check", tag = "authorization", request_body = CheckRequest,
    responses(
        (status = 200, description = "One result per check, in order.", body = CheckResponse),
        (status = 403, description = "`forbidden`: asking about another user without members:read there.", body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn check(
    Scoped { principal, scope }: Scoped,
    state: web::Data<AppState>,
    body: Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    if body.checks.is_empty() || body.checks.len() > MAX_CHECKS {
        return Err(ApiError::Invalid(format!(
            "checks must hold 1 to {MAX_CHECKS} items, got {}",
            body.checks.len()
        )));
    }
    let checks = body
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let resource = Resource::parse_pair(
                c.resource_type.as_deref(),
                c.resource_id.as_deref(),
                (
                    &format!("checks[{i}].resource_type"),
                    &format!("checks[{i}].resource_id"),
                ),
            )?;
            TokenScope::require(scope, c.organization_id)?;
            Ok(reads::Check {
                organization: c.organization_id,
                permission: &c.permission,
                user: c.user_id,
                resource,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let results = reads::check(&state, &principal, &checks)
        .await?
        .into_iter()
        .map(|allowed| CheckResult { allowed })
        .collect();
    Ok(HttpResponse::Ok().json(CheckResponse { results }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// Whose access: the caller's own when absent (required with a service token).
    #[serde(default)]
    pub user_id: Option<Uuid>,
    pub organization_id: Uuid,
    pub permission: String,
    /// With `resource_id`: explain the check on that resource.
    #[serde(default)]
    #[schema(pattern = "^[a-z][a-z0-9_-]*$", max_length = 100)]
    pub resource_type: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub resource_id: Option<String>,
}

/// The user, the caller itself or (for a service) `user_id`; the caller that must be allowed
/// to ask about it; the service's tenant.
fn subject_of(
    principal: &Principal,
    user: Option<Uuid>,
    field: &str,
) -> Result<(Uuid, Uuid, Option<Uuid>), ApiError> {
    match principal {
        Principal::User(id) => Ok((user.unwrap_or(*id), *id, None)),
        Principal::Service { tenant, .. } => user
            .map(|user| (user, user, Some(*tenant)))
            .ok_or_else(|| ApiError::Invalid(format!("{field}: required with a service token"))),
    }
}

/// Why a user may or may not do something in an organization, or on one of its resources: the
/// path that granted (role, or grant through groups on the resource or an ancestor), or the
/// reason it was refused (`roster.explain_access`).
#[utoipa::path(post, path = "/authz/explain", tag = "authorization", request_body = ExplainRequest,
    responses(
        (status = 200, description = "The explanation.", body = Explanation),
        (status = 403, description = "`forbidden`: asking about another user without members:read there.", body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn explain(
    Scoped { principal, scope }: Scoped,
    state: web::Data<AppState>,
    body: Json<ExplainRequest>,
) -> Result<HttpResponse, ApiError> {
    TokenScope::require(scope, body.organization_id)?;
    let (subject, asker, tenant) = subject_of(&principal, body.user_id, "user_id")?;
    let resource = Resource::parse_pair(
        body.resource_type.as_deref(),
        body.resource_id.as_deref(),
        ("resource_type", "resource_id"),
    )?;
    let explanation = reads::explain(
        &state,
        reads::Question {
            subject,
            asker,
            service_tenant: tenant,
            organization: body.organization_id,
            permission: &body.permission,
            resource,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(explanation))
}

/// A user's effective permissions in an organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberPermissions {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    /// Every permission the user holds there, wildcards expanded, sorted; empty while its
    /// membership is invited or suspended.
    pub permissions: Vec<String>,
}

/// Every permission a member holds in the organization (its own, or with members:read anyone's;
/// services: any user of their tenant).
#[utoipa::path(get, path = "/organizations/{org_id}/members/{user_id}/permissions", tag = "authorization",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The effective permissions.", body = MemberPermissions),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = "`not_found` (the caller cannot see the organization), `member_not_found`, or `user_not_found` (a service: not its tenant's user).", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn member_permissions(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let (subject, asker, tenant) = subject_of(&principal, Some(user), "user_id")?;
    let mut pairs = vec![(subject, org)];
    if asker != subject {
        pairs.push((asker, org));
    }
    let (access, _) = reads::accesses(&state, &pairs, tenant).await?;
    if let Some(asker) = access.get(1) {
        asker.require(org, "members:read")?;
    } else if tenant.is_none() {
        access[0].identity.require_live()?;
    }
    let subject = &access[0];
    if tenant.is_some_and(|tenant| subject.identity.tenant_id != Some(tenant)) {
        return Err(ApiError::user_not_found(user));
    }
    // A tenant admin holds everything without being a member; anyone else must be one.
    if subject.role.is_none() && !subject.identity.is_tenant_admin {
        return Err(ApiError::member_not_found(user, org));
    }
    let permissions = subject.permissions.clone();
    Ok(HttpResponse::Ok().json(MemberPermissions {
        organization_id: org,
        user_id: user,
        permissions,
    }))
}

/// Who holds a permission in the organization, and through which role (needs members:read).
#[utoipa::path(get, path = "/organizations/{org_id}/permissions/{permission}/subjects", tag = "authorization",
    params(("org_id" = Uuid, Path), ("permission" = String, Path, description = "resource:action"), PageParams),
    responses(
        (status = 200, description = "A page of holders, by email.", body = Paginated<Subject>),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn subjects(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String)>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let (org, permission) = path.into_inner();
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows =
        db::list_subjects_with_permission(&client, caller.user_id, org, &permission, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}
