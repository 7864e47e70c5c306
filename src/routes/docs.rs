//! The API's documentation: the OpenAPI document, generated from the handlers' annotations.

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{audit, authz, health, members, organizations};

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::get;
    cfg.service(resource("/openapi.json").route(get().to(openapi)));
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Roster", description = "Organizations, memberships and role-based access for multi-tenant SaaS. Errors: `{\"error\": {\"code\", \"message\"}}` with codes from sql/ERRORS.md."),
    paths(
        organizations::create_organization,
        organizations::list_organizations,
        organizations::get_organization,
        organizations::update_organization,
        organizations::delete_organization,
        organizations::list_user_organizations,
        organizations::list_tenant_organizations,
        members::add_member,
        members::list_members,
        members::get_member,
        members::update_member,
        members::remove_member,
        members::accept_invitation,
        audit::list_audit_events,
        audit::list_tenant_audit_events,
        authz::me,
        authz::check,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

pub static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200)))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(&*DOCUMENT)
}
