//! Resources of an organization: the hierarchy services declare (grants on a parent reach its
//! descendants) and the resources a user reaches through grants.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::resources::{self as db, ResourceQuery};
use crate::domain::{Page, Resource};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::{FORBIDDEN, NOT_VISIBLE};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{get, put};
    cfg.service(resource("/organizations/{org_id}/resources").route(get().to(list_resources)))
        .service(
            resource("/organizations/{org_id}/resources/{resource_type}/{resource_id}/parent")
                .route(put().to(set_resource_parent)),
        );
}

/// The body of `PUT .../parent`: the parent, or nulls to remove it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceParent {
    #[schema(pattern = "^[a-z][a-z0-9_-]*$", max_length = 100)]
    pub parent_type: Option<String>,
    #[schema(min_length = 1, max_length = 255)]
    pub parent_id: Option<String>,
}

/// Give a resource a parent, so that grants on the parent (and its ancestors) reach it; nulls
/// remove it. A service token (its tenant's organizations), or a user with grants:manage.
#[utoipa::path(put, path = "/organizations/{org_id}/resources/{resource_type}/{resource_id}/parent",
    tag = "resources",
    params(
        ("org_id" = Uuid, Path),
        ("resource_type" = String, Path, pattern = "^[a-z][a-z0-9_-]*$", max_length = 100),
        ("resource_id" = String, Path, min_length = 1, max_length = 255),
    ),
    request_body = ResourceParent,
    responses(
        (status = 204, description = "Set, changed or removed."),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
        (status = 422, description = "`invalid_input`: a type no permission of the catalogue \
            names, a malformed type or id, one of parent_type and parent_id without the other; \
            `invalid_hierarchy`: a cycle or more than 16 levels.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn set_resource_parent(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, String, String)>,
    body: Json<ResourceParent>,
) -> Result<HttpResponse, ApiError> {
    let (org, kind, id) = path.into_inner();
    let resource = Resource::parse(&kind, &id, ("resource_type", "resource_id"))?;
    let parent = Resource::parse_pair(
        body.parent_type.as_deref(),
        body.parent_id.as_deref(),
        ("parent_type", "parent_id"),
    )?;
    let (actor, tenant) = match principal {
        Principal::User(user) => (Some(user), None),
        Principal::Service { tenant, .. } => (None, Some(tenant)),
    };
    let client = state.db.client().await?;
    db::set_resource_parent(&client, actor, tenant, org, resource, parent).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `?user_id=&permission=&resource_type=&after=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResourceListParams {
    /// Whose resources: the caller's own when absent (required with a service token); another
    /// user's needs members:read.
    pub user_id: Option<Uuid>,
    /// `resource:action`, e.g. `model:read`.
    pub permission: String,
    #[param(pattern = "^[a-z][a-z0-9_-]*$", max_length = 100)]
    pub resource_type: String,
    /// The previous page's `next_after`.
    #[param(min_length = 1, max_length = 255)]
    pub after: Option<String>,
    /// Ids per page, 1 to 200 (default 50).
    #[param(schema_with = crate::constraints::limit)]
    pub limit: Option<String>,
}

/// The resources of a type a user may act on through grants.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourcePage {
    /// The user holds the permission across the organization: every resource of the type is
    /// allowed, and `data` is empty.
    pub organization_wide: bool,
    /// Resource ids, in order (by their text).
    pub data: Vec<String>,
    pub has_more: bool,
    /// The `after` of the next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Which resources of a type may a user act on (`roster.list_resources`): every one reached by
/// a grant (its own or its groups') on it or an ancestor, paged by id with no overall cap.
#[utoipa::path(get, path = "/organizations/{org_id}/resources", tag = "resources",
    params(("org_id" = Uuid, Path), ResourceListParams),
    responses(
        (status = 200, description = "A page of resource ids.", body = ResourcePage),
        (status = 403, description = "`forbidden`: another user's resources without members:read.", body = ErrorBody),
        (status = 404, description = "`not_found` (the caller cannot see the organization) or \
            `user_not_found` (a service: not its tenant's user).", body = ErrorBody),
        (status = 422, description = "`unknown_permission`, or `invalid_input`.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_resources(
    principal: Principal,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    params: web::Query<ResourceListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = Page::parse_limit(params.limit.as_deref())?;
    Resource::parse(
        &params.resource_type,
        params.after.as_deref().unwrap_or("-"),
        ("resource_type", "after"),
    )?;
    let (subject, asker, tenant) = match principal {
        Principal::User(id) => (params.user_id.unwrap_or(id), id, None),
        Principal::Service { tenant, .. } => match params.user_id {
            Some(user) => (user, user, Some(tenant)),
            None => {
                return Err(ApiError::Invalid(
                    "user_id: required with a service token".into(),
                ))
            }
        },
    };
    let wanted = ResourceQuery {
        permission: &params.permission,
        kind: &params.resource_type,
        // One more than the page, to tell whether another follows.
        limit: limit + 1,
        after: params.after.as_deref(),
    };
    let client = state.db.client().await?;
    let (asker_access, subject_tenant, mut list) =
        db::list_resources_with_access(&client, asker, subject, *org_id, &wanted, tenant).await?;
    drop(client);
    match tenant {
        // A user of another tenant is as unknown to a service as one that does not exist.
        Some(tenant) if subject_tenant != Some(tenant) => {
            return Err(ApiError::user_not_found(subject))
        }
        Some(_) => {}
        None if subject == asker => asker_access.require(*org_id, "organization:read")?,
        None => asker_access.require(*org_id, "members:read")?,
    }
    let has_more = list.ids.len() > limit as usize;
    list.ids.truncate(limit as usize);
    let next_after = has_more.then(|| list.ids.last().cloned()).flatten();
    Ok(HttpResponse::Ok().json(ResourcePage {
        organization_wide: list.organization_wide,
        data: list.ids,
        has_more,
        next_after,
    }))
}
