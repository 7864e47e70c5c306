use actix_web::{http::header, web, HttpResponse};
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::organizations::{self as db, Organization, UserOrganization};
use crate::domain::{
    NewOrganization, OrganizationChanges, OrganizationChangesSchema, Page, PageParams, Paginated,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::reads;
use crate::routes::{json_bytes, FORBIDDEN, NOT_VISIBLE};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, patch, post, put};
    cfg.service(
        resource("/organizations")
            .route(get().to(list_organizations))
            .route(post().to(create_organization)),
    )
    .service(
        resource("/organizations/{org_id}")
            .route(get().to(get_organization))
            .route(patch().to(update_organization))
            .route(put().to(update_organization))
            .route(delete().to(delete_organization)),
    )
    .service(resource("/users/{user_id}/organizations").route(get().to(list_user_organizations)))
    .service(resource("/tenant/organizations").route(get().to(list_tenant_organizations)));
}

/// Create an organization; the caller becomes its owner.
#[utoipa::path(post, path = "/organizations", tag = "organizations",
    request_body = NewOrganization,
    responses(
        (status = 201, description = "Created; the caller is its owner.", body = Organization,
            headers(("Location" = String, description = "`/organizations/{id}`"))),
        (status = 409, description = "`name_taken`, `slug_taken`: in use in the tenant.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: a field of the wrong shape, or a value the \
            organization's constraints refuse (the message names it).", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_organization(
    caller: Caller,
    state: web::Data<AppState>,
    body: Json<NewOrganization>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let org = db::create_organization(&client, caller.user_id, &body).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/organizations/{}", org.id)))
        .json(org))
}

/// The caller's organizations, with its role and status in each.
#[utoipa::path(get, path = "/organizations", tag = "organizations", params(PageParams),
    responses((status = 200, description = "A page of the caller's organizations.", body = Paginated<UserOrganization>)),
    security(("bearer" = [])))]
pub async fn list_organizations(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let body = reads::user_organizations(&state, caller.user_id, page).await?;
    Ok(json_bytes(body))
}

/// One organization, with its count of active members.
#[utoipa::path(get, path = "/organizations/{org_id}", tag = "organizations",
    params(("org_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The organization.", body = Organization),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_organization(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body = reads::organization(&state, caller.user_id, *org_id).await?;
    Ok(json_bytes(body))
}

/// Partial update (also under `PUT`): absent fields stay, `null` clears a nullable field,
/// unknown fields are refused with 422.
#[utoipa::path(method(patch, put), path = "/organizations/{org_id}", tag = "organizations",
    params(("org_id" = Uuid, Path)),
    request_body(content = OrganizationChangesSchema, description = "Any of the fields, each as on creation; \
        `null` clears description, domain, billing_email, billing_address, stripe_customer_id."),
    responses(
        (status = 200, description = "The organization as updated.", body = Organization),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
        (status = 409, description = "`name_taken`, `slug_taken`: in use in the tenant.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: an unknown field, null for name, slug or \
            metadata, a field of the wrong type, or a value the organization's constraints refuse.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_organization(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    changes: Json<OrganizationChanges>,
) -> Result<HttpResponse, ApiError> {
    let OrganizationChanges(changes) = changes.into_inner();
    let client = state.db.client().await?;
    let org = db::update_organization(&client, caller.user_id, *org_id, &changes).await?;
    Ok(HttpResponse::Ok().json(org))
}

/// Soft-delete an organization (owners and tenant admins).
#[utoipa::path(delete, path = "/organizations/{org_id}", tag = "organizations",
    params(("org_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = FORBIDDEN, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_organization(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    db::delete_organization(&client, caller.user_id, *org_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's organizations: the caller's own, or anyone's for a tenant admin.
#[utoipa::path(get, path = "/users/{user_id}/organizations", tag = "organizations",
    params(("user_id" = Uuid, Path), PageParams),
    responses(
        (status = 200, description = "A page of the user's organizations.", body = Paginated<UserOrganization>),
        (status = 403, description = "`forbidden`: another user's, and the caller is no tenant admin.", body = ErrorBody),
        (status = 404, description = "`user_not_found`: no such user in the caller's tenant.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_user_organizations(
    caller: Caller,
    state: web::Data<AppState>,
    user_id: web::Path<Uuid>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows = db::list_user_organizations(&client, caller.user_id, *user_id, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}

/// Every organization of the caller's tenant (tenant admins).
#[utoipa::path(get, path = "/tenant/organizations", tag = "organizations", params(PageParams),
    responses(
        (status = 200, description = "A page of the tenant's organizations.", body = Paginated<Organization>),
        (status = 403, description = "`forbidden`: the caller is no tenant admin.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_tenant_organizations(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::parse(&params)?;
    let client = state.db.client().await?;
    let rows = db::list_tenant_organizations(&client, caller.user_id, page).await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page)))
}
