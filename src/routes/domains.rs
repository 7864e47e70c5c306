//! Verified domains: an organization's claims (list, add, change, remove, verify), the
//! organizations the caller's email domain suggests, and joining one by itself.

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, Required, SchemaFormat};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::constraints;
use crate::db::domains::{self as db, Domain, SuggestedOrganization};
use crate::db::members::Membership;
use crate::domain::{self, DomainPolicy, Paginated, RoleKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::routes::NOT_VISIBLE;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{delete, get, patch, post};
    cfg.service(
        resource("/organizations/{org_id}/domains")
            .route(get().to(list_domains))
            .route(post().to(add_domain)),
    )
    .service(
        resource("/organizations/{org_id}/domains/{domain}")
            .route(patch().to(update_domain))
            .route(delete().to(remove_domain)),
    )
    .service(
        resource("/organizations/{org_id}/domains/{domain}/verify").route(post().to(verify_domain)),
    )
    .service(resource("/me/suggested-organizations").route(get().to(list_suggested_organizations)))
    .service(resource("/organizations/{org_id}/join").route(post().to(join_organization)));
}

/// An organization and one of its domains, in a path.
#[derive(Debug, Deserialize)]
pub struct DomainPath {
    pub org_id: Uuid,
    pub domain: String,
}

/// By hand: a `schema_with` parameter would not be marked required, which a path parameter
/// must be.
impl IntoParams for DomainPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let path = |name: &str, schema: Schema| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema))
                .build()
        };
        let uuid = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .into();
        vec![
            path("org_id", uuid),
            path("domain", constraints::claimed_domain()),
        ]
    }
}

/// The body of `POST /organizations/{org_id}/domains`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    #[schema(schema_with = constraints::claimed_domain)]
    pub domain: String,
    /// Defaults to `none` (also when null).
    pub policy: Option<DomainPolicy>,
    /// The role people joining through the domain get; defaults to `member` (also when null).
    pub join_role: Option<RoleKey>,
}

/// The body of `PATCH /organizations/{org_id}/domains/{domain}`: a policy, a join role or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct DomainChanges {
    #[serde(default, deserialize_with = "domain::present")]
    #[schema(nullable = false)]
    pub policy: Option<DomainPolicy>,
    #[serde(default, deserialize_with = "domain::present")]
    #[schema(nullable = false)]
    pub join_role: Option<RoleKey>,
}

const DOMAIN_NOT_FOUND: &str = "`not_found`: no such organization visible to the caller; \
    `domain_not_found`: the organization has not claimed that domain.";
const FORBIDDEN_ROLE: &str = "`forbidden`: the caller lacks organization:update (or \
    members:manage_owners for the owner role); `privilege_escalation`: the join role grants \
    permissions the caller does not hold.";

/// The organization's domains, by name, with their verification tokens.
#[utoipa::path(get, path = "/organizations/{org_id}/domains", tag = "domains",
    params(("org_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Every domain of the organization (`has_more` is false).", body = Paginated<Domain>),
        (status = 403, description = "`forbidden`: the caller lacks organization:update.", body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_domains(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let rows = db::list_domains(&client, caller.user_id, *org_id).await?;
    Ok(HttpResponse::Ok().json(everything(rows)))
}

/// Claim an email domain, pending verification: publish its `verification_token` in a DNS TXT
/// record; once the product checked it, a tenant admin records the verification.
#[utoipa::path(post, path = "/organizations/{org_id}/domains", tag = "domains",
    params(("org_id" = Uuid, Path)), request_body = NewDomain,
    responses(
        (status = 201, description = "Claimed, pending verification.", body = Domain),
        (status = 403, description = FORBIDDEN_ROLE, body = ErrorBody),
        (status = 404, description = NOT_VISIBLE, body = ErrorBody),
        (status = 409, description = "`domain_exists`: the organization claims it already.", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not a lowercase hostname, an unknown \
            policy or role, an unknown field.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn add_domain(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
    body: Json<NewDomain>,
) -> Result<HttpResponse, ApiError> {
    let policy = body.policy.unwrap_or(DomainPolicy::None);
    let join_role = body.join_role.clone().unwrap_or_else(RoleKey::member);
    let client = state.db.client().await?;
    let domain = db::add_domain(
        &client,
        caller.user_id,
        *org_id,
        &body.domain,
        policy,
        &join_role,
    )
    .await?;
    Ok(HttpResponse::Created().json(domain))
}

/// Change a domain's policy and/or join role.
#[utoipa::path(patch, path = "/organizations/{org_id}/domains/{domain}", tag = "domains",
    params(DomainPath), request_body = DomainChanges,
    responses(
        (status = 200, description = "The domain as updated.", body = Domain),
        (status = 403, description = FORBIDDEN_ROLE, body = ErrorBody),
        (status = 404, description = DOMAIN_NOT_FOUND, body = ErrorBody),
        (status = 422, description = "`invalid_input`: neither policy nor join_role, a null, \
            an unknown value or field.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_domain(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DomainPath>,
    body: Json<DomainChanges>,
) -> Result<HttpResponse, ApiError> {
    let mut changes = Map::new();
    if let Some(policy) = body.policy {
        changes.insert("policy".into(), policy.as_str().into());
    }
    if let Some(role) = &body.join_role {
        changes.insert("join_role".into(), role.as_str().into());
    }
    if changes.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to change: give a policy, a join_role or both".into(),
        ));
    }
    let client = state.db.client().await?;
    let domain = db::update_domain(
        &client,
        caller.user_id,
        path.org_id,
        &path.domain,
        &Value::Object(changes),
    )
    .await?;
    Ok(HttpResponse::Ok().json(domain))
}

/// Give up a domain (verified or not): another organization may then verify it. Members who
/// joined through it stay.
#[utoipa::path(delete, path = "/organizations/{org_id}/domains/{domain}", tag = "domains",
    params(DomainPath),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "`forbidden`: the caller lacks organization:update.", body = ErrorBody),
        (status = 404, description = DOMAIN_NOT_FOUND, body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove_domain(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DomainPath>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    db::remove_domain(&client, caller.user_id, path.org_id, &path.domain).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Record that the domain's DNS check was done (tenant admins): it becomes verified. Idempotent.
#[utoipa::path(post, path = "/organizations/{org_id}/domains/{domain}/verify", tag = "domains",
    params(DomainPath),
    responses(
        (status = 200, description = "The domain, verified.", body = Domain),
        (status = 403, description = "`forbidden`: the caller is no tenant admin.", body = ErrorBody),
        (status = 404, description = DOMAIN_NOT_FOUND, body = ErrorBody),
        (status = 409, description = "`domain_taken`: another organization of the tenant verified it.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn verify_domain(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DomainPath>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let domain = db::verify_domain(&client, caller.user_id, path.org_id, &path.domain).await?;
    Ok(HttpResponse::Ok().json(domain))
}

/// The organizations the caller's email domain suggests or lets it join, that it is not in.
#[utoipa::path(get, path = "/me/suggested-organizations", tag = "domains",
    responses((status = 200, description = "Every suggestion (`has_more` is false).", body = Paginated<SuggestedOrganization>)),
    security(("bearer" = [])))]
pub async fn list_suggested_organizations(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let rows = db::list_suggested_organizations(&client, caller.user_id).await?;
    Ok(HttpResponse::Ok().json(everything(rows)))
}

/// Join an organization by oneself: only through its verified `auto_join` domain that is the
/// caller's email domain. The caller becomes an active member with the domain's join role.
#[utoipa::path(post, path = "/organizations/{org_id}/join", tag = "domains",
    params(("org_id" = Uuid, Path)),
    responses(
        (status = 201, description = "Joined.", body = Membership,
            headers(("Location" = String, description = "`/organizations/{org_id}/members/{user_id}`"))),
        (status = 403, description = "`forbidden`: the domain's policy is `suggest`: ask for an invitation.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such organization, or none the caller's \
            email domain lets it see.", body = ErrorBody),
        (status = 409, description = "`already_member`; `seat_limit`: no seat left.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn join_organization(
    caller: Caller,
    state: web::Data<AppState>,
    org_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let membership = db::join_organization(&client, caller.user_id, *org_id).await?;
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

/// A whole list as one page.
fn everything<T>(rows: Vec<T>) -> Paginated<T> {
    Paginated {
        data: rows,
        has_more: false,
        next_after: None,
    }
}
