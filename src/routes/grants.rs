//! Grants of roles to users and groups, across an organization or on one of its resources
//! (`/organizations/{org_id}/grants`, grants:manage to change).

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::grants::{self as db, Grant, NewGrant, SubjectType};
use crate::domain::{Page, PageParams, Paginated};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::NOT_VISIBLE;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, post};
    cfg.service(
        resource("/organizations/{org_id}/grants")
            .route(get().to(list_grants))
            .route(post().to(grant_role)),
    )
    .service(
        resource("/organizations/{org_id}/grants/{id}")
            .route(get().to(get_grant))
            .route(delete().to(revoke_grant)),
    );
}

const MANAGE: &str = "`forbidden`: the caller's role lacks grants:manage.";

/// `GET .../grants` filters: each, when given, must match exactly.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantFilters {
    #[param(value_type = Option<SubjectType>)]
    pub subject_type: Option<String>,
    /// A user's id or a group's key.
    pub subject_id: Option<String>,
    pub role_key: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

impl GrantFilters {
    /// The filters given, as `roster.list_grants` takes them. A subject type that can never
    /// match, or text PostgreSQL cannot hold, is refused naming the parameter.
    fn to_json(&self) -> Result<Value, ApiError> {
        let given = [
            ("subject_type", &self.subject_type),
            ("subject_id", &self.subject_id),
            ("role_key", &self.role_key),
            ("resource_type", &self.resource_type),
            ("resource_id", &self.resource_id),
        ];
        let mut filters = Map::new();
        for (name, value) in given {
            let Some(value) = value else { continue };
            if value.contains('\0') {
                return Err(ApiError::Invalid(format!(
                    "{name}: must not contain the NUL character"
                )));
            }
            filters.insert(name.to_owned(), Value::String(value.clone()));
        }
        if let Some(subject_type) = &self.subject_type {
            if !["user", "group"].contains(&subject_type.as_str()) {
                return Err(ApiError::Invalid(format!(
                    "subject_type: expected user or group, got {subject_type:?}"
                )));
            }
        }
        Ok(Value::Object(filters))
    }
}

/// The organization's live grants (expired ones until purged), oldest first (needs members:read).
#[utoipa::path(get, path = "/organizations/{org_id}/grants", tag = "grants",
    params(("org_id" = Uuid, Path), GrantFilters, PageParams),
    responses(
        (status = 200, description = "A page of grants, oldest first.", body = Paginated<Grant>),
        (status = 403, description = "`forbidden`: the caller's role lacks members:read.", body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
        (status = 422, description = "`invalid_input`: `limit` or `offset` outside its bounds, a \
            `subject_type` other than user or group.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_grants(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    filters: web::Query<GrantFilters>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let filters = filters.to_json()?;
    let client = state.db.client().await?;
    let rows = db::list_grants(&client, caller.user_id, *org_id, &filters, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}

/// Grant a role to a user or a group, across the organization or on a resource (grants:manage,
/// and every permission the role grants).
#[utoipa::path(post, path = "/organizations/{org_id}/grants", tag = "grants",
    params(("org_id" = Uuid, Path)), request_body = NewGrant,
    responses(
        (status = 201, description = "The grant.", body = Grant,
            headers(("Location" = String, description = "`/organizations/{org_id}/grants/{id}`"))),
        (status = 403, description = "`forbidden`: the caller's role lacks grants:manage (or, for \
            `owner`, members:manage_owners); `privilege_escalation`: the role grants permissions \
            the caller does not hold.", body = ErrorBody),
        (status = 404, description = "`not_found` (the organization), `group_not_found`, or \
            `member_not_found`: the user is no member of the organization.", body = ErrorBody),
        (status = 409, description = "`already_granted`: the subject holds that role there already.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: a role the organization does not have, a \
            resource type that is the resource of no permission of the catalogue, a resource type \
            without its id or the reverse, a `subject_id` that is no user id, `expires_at` not in \
            the future, or a body of the wrong shape (a field missing, of the wrong type or \
            value, or unknown).", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn grant_role(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    body: Json<NewGrant>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let grant = db::grant_role(&client, caller.user_id, *org_id, &body).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/organizations/{org_id}/grants/{}", grant.id),
        ))
        .json(grant))
}

/// One live grant of the organization (needs members:read).
#[utoipa::path(get, path = "/organizations/{org_id}/grants/{id}", tag = "grants",
    params(("org_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The grant.", body = Grant),
        (status = 403, description = "`forbidden`: the caller's role lacks members:read.", body = ErrorBody),
        (status = 404, description = "`not_found` (the organization) or `grant_not_found`: no such \
            live grant in the organization.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_grant(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, grant) = path.into_inner();
    let client = state.db.client().await?;
    Ok(HttpResponse::Ok().json(db::get_grant(&client, caller.user_id, org, grant).await?))
}

/// Revoke a grant (grants:manage).
#[utoipa::path(delete, path = "/organizations/{org_id}/grants/{id}", tag = "grants",
    params(("org_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = MANAGE, body = ErrorBody),
        (status = 404, description = "`not_found` (the organization) or `grant_not_found`: no such \
            live grant in the organization.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_grant(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (org, grant) = path.into_inner();
    let client = state.db.client().await?;
    db::revoke_grant(&client, caller.user_id, org, grant).await?;
    Ok(HttpResponse::NoContent().finish())
}
