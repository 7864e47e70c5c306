//! The API's documentation: the OpenAPI document, generated from the handlers' annotations, and
//! `GET /docs`, Swagger UI over it, served from files embedded in the binary (no network).
//!
//! The handlers declare what is particular to them (their success responses, 403, 404, 409);
//! [`CommonResponses`] adds to every operation the errors that come from what it has rather than
//! what it does, so that a new route gets them without copying: a bearer token (401, and 503:
//! the caller is resolved in the database), a JSON body (400, 413, 422), query parameters (400,
//! 422), path parameters (400).

use std::sync::LazyLock;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{
    audit, authz, domains, grants, groups, health, invitations, members, organizations,
    permissions, resources, roles, tokens,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::get;
    cfg.service(resource("/openapi.json").route(get().to(openapi)))
        .service(resource("/docs").route(get().to(docs)));
    for asset in ASSETS {
        let path = format!("/docs/{}", asset.name);
        cfg.service(
            web::resource(path.as_str())
                .name(&path)
                .route(get().to(move || serve_asset(asset))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Roster", description = "Organizations, memberships and role-based access for multi-tenant SaaS. Errors: `{\"error\": {\"code\", \"message\"}}` with codes from sql/ERRORS.md. A successful write's response carries a `Roster-Consistency` header (its transaction id); a request that sends it back is never answered from cache state older than that write."),
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
        invitations::invite,
        invitations::list_invitations,
        invitations::resend_invitation,
        invitations::revoke_invitation,
        invitations::list_my_invitations,
        invitations::accept_invitation_token,
        invitations::decline_invitation_token,
        domains::list_domains,
        domains::add_domain,
        domains::update_domain,
        domains::remove_domain,
        domains::verify_domain,
        domains::list_suggested_organizations,
        domains::join_organization,
        audit::list_audit_events,
        audit::list_tenant_audit_events,
        authz::me,
        authz::check,
        authz::explain,
        authz::member_permissions,
        authz::subjects,
        roles::list_roles,
        roles::create_role,
        roles::get_role,
        roles::update_role,
        roles::delete_role,
        roles::list_tenant_roles,
        roles::create_tenant_role,
        roles::get_tenant_role,
        roles::update_tenant_role,
        roles::delete_tenant_role,
        permissions::register_permissions,
        permissions::list_permissions,
        permissions::retire_permission,
        resources::set_resource_parent,
        resources::list_resources,
        groups::list_groups,
        groups::create_group,
        groups::get_group,
        groups::update_group,
        groups::delete_group,
        groups::list_group_members,
        groups::add_group_member,
        groups::get_group_member,
        groups::remove_group_member,
        groups::list_user_groups,
        grants::list_grants,
        grants::grant_role,
        grants::get_grant,
        grants::revoke_grant,
        tokens::exchange,
        tokens::switch,
        tokens::introspect,
        tokens::jwks,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi,
        docs,
    ),
    components(schemas(ErrorBody, authz::Check, invitations::BulkInvitationItem)),
    modifiers(&BearerAuth, &CommonResponses, &Links, &Tidy)
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

/// Adds the responses every operation of a kind can give (see the module comment). A status
/// the handler already declares keeps the handler's description; it gets the error body if it
/// had none. The error body is `ErrorBody`, or the one the handler's own 400 names (the OAuth
/// shape of `POST /auth/token`).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let has = Has::of(operation);
                let body = error_body_of(operation);
                for (status, description) in common_responses(has) {
                    add_error(operation, status, &description, &body);
                }
                if let Some(RefOr::T(unauthenticated)) =
                    operation.responses.responses.get_mut("401")
                {
                    let header = Header::builder().description(Some(
                        "`Bearer realm=\"roster\"`, with `error=\"invalid_token\"` and \
                         `error_description` when a token was sent (RFC 6750).",
                    ));
                    unauthenticated
                        .headers
                        .insert(header::WWW_AUTHENTICATE.to_string(), header.build().into());
                }
            }
        }
    }
}

/// What an operation takes, which decides the errors it can give.
#[derive(Clone, Copy, Default)]
struct Has {
    bearer: bool,
    body: bool,
    query: bool,
    path: bool,
}

impl Has {
    fn of(operation: &Operation) -> Has {
        let params = operation
            .parameters
            .iter()
            .flatten()
            .filter_map(|p| match p {
                RefOr::T(parameter) => Some(parameter),
                RefOr::Ref(_) => None,
            });
        let mut has = Has {
            bearer: operation.security.as_ref().is_some_and(|s| !s.is_empty()),
            body: operation.request_body.is_some(),
            ..Has::default()
        };
        for parameter in params {
            match parameter.parameter_in {
                ParameterIn::Query => has.query = true,
                // Path parameters are parsed by their type: only a uuid can be malformed.
                ParameterIn::Path if is_uuid(parameter.schema.as_ref()) => has.path = true,
                _ => {}
            }
        }
        has
    }
}

fn is_uuid(schema: Option<&RefOr<utoipa::openapi::Schema>>) -> bool {
    use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat};
    matches!(
        schema,
        Some(RefOr::T(Schema::Object(object)))
            if object.format == Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))
    )
}

/// The common (status, description) pairs for an operation that has `has`.
fn common_responses(has: Has) -> Vec<(u16, String)> {
    let mut responses = Vec::new();
    let unreadable: Vec<&str> = [
        (
            has.body,
            "a body that is not JSON, or not sent as `Content-Type: application/json`",
        ),
        (has.path, "a path parameter that is not a uuid"),
        (has.query, "a query parameter that is not a whole number"),
    ]
    .into_iter()
    .filter_map(|(applies, what)| applies.then_some(what))
    .collect();
    if !unreadable.is_empty() {
        responses.push((400, format!("`bad_request`: {}.", unreadable.join("; "))));
    }
    if has.bearer {
        responses.push((
            401,
            "`unauthenticated`: no bearer token, an invalid or expired one, or its user (or \
             tenant) is deleted."
                .to_owned(),
        ));
    }
    if has.body {
        responses.push((
            413,
            "`payload_too_large`: the body is over `BODY_LIMIT_BYTES` (64 KiB by default)."
                .to_owned(),
        ));
    }
    let invalid: Vec<&str> = [
        (
            has.body,
            "a body of the wrong shape: a field missing, of the wrong type or value, or unknown",
        ),
        (has.query, "`limit` or `offset` outside its bounds"),
    ]
    .into_iter()
    .filter_map(|(applies, what)| applies.then_some(what))
    .collect();
    if !invalid.is_empty() {
        responses.push((422, format!("`invalid_input`: {}.", invalid.join("; "))));
    }
    if has.bearer {
        responses.push((
            503,
            "`unavailable`: the database cannot be reached or no connection freed up in time; \
             `retry`: a concurrent change got in the way. Safe to retry."
                .to_owned(),
        ));
    }
    responses
}

/// The schema of the operation's declared 400, or `ErrorBody`.
fn error_body_of(operation: &Operation) -> String {
    let declared = match operation.responses.responses.get("400") {
        Some(RefOr::T(response)) => response.content.get("application/json"),
        _ => None,
    };
    let schema = declared.and_then(|content| match content {
        RefOr::T(content) => content.schema.as_ref(),
        RefOr::Ref(_) => None,
    });
    match schema {
        Some(RefOr::Ref(schema)) => schema
            .ref_location
            .rsplit('/')
            .next()
            .unwrap_or("ErrorBody")
            .to_owned(),
        _ => "ErrorBody".to_owned(),
    }
}

/// Declares `status` with the error body, keeping a description the handler gave.
fn add_error(operation: &mut Operation, status: u16, description: &str, body: &str) {
    let responses = &mut operation.responses.responses;
    let entry = responses
        .entry(status.to_string())
        .or_insert_with(|| Response::new(description).into());
    if let RefOr::T(response) = entry {
        if response.description.is_empty() {
            response.description = description.to_owned();
        }
        if response.content.is_empty() {
            response.content.insert(
                "application/json".into(),
                Content::new(Some(Ref::from_schema_name(body))).into(),
            );
        }
    }
}

/// The operations of a path item, in a fixed order.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// OpenAPI links from the 201 of the operations that create things to the operations that use
/// them, so that readers, and tools that chain calls (schemathesis' stateful tests), know where
/// the ids of a path come from.
struct Links;

/// Parameters of a link's target, as runtime expressions on the 201's body.
type LinkParameters = &'static [(&'static str, &'static str)];

/// (creating operation, target operation, its parameters)
const LINKS: &[(&str, &str, LinkParameters)] = {
    const ORG: LinkParameters = &[("org_id", "$response.body#/id")];
    const CREATOR: LinkParameters = &[("user_id", "$response.body#/created_by")];
    const INVITATION: LinkParameters = &[("org_id", "$response.body#/organization_id")];
    const MEMBER: LinkParameters = &[
        ("org_id", "$response.body#/organization_id"),
        ("user_id", "$response.body#/user_id"),
    ];
    const GROUP: LinkParameters = &[
        ("org_id", "$request.path.org_id"),
        ("key", "$response.body#/key"),
    ];
    const GROUP_MEMBER: LinkParameters = &[
        ("org_id", "$response.body#/organization_id"),
        ("key", "$response.body#/group_key"),
        ("user_id", "$response.body#/user_id"),
    ];
    const GRANT: LinkParameters = &[
        ("org_id", "$request.path.org_id"),
        ("id", "$response.body#/id"),
    ];
    &[
        ("create_organization", "get_organization", ORG),
        ("create_organization", "update_organization", ORG),
        ("create_organization", "delete_organization", ORG),
        ("create_organization", "list_members", ORG),
        ("create_organization", "add_member", ORG),
        ("create_organization", "list_audit_events", ORG),
        ("create_organization", "me", ORG),
        ("create_organization", "list_user_organizations", CREATOR),
        ("create_organization", "invite", ORG),
        ("create_organization", "list_invitations", ORG),
        ("create_organization", "list_domains", ORG),
        ("create_organization", "add_domain", ORG),
        ("add_member", "get_member", MEMBER),
        ("add_member", "update_member", MEMBER),
        ("add_member", "update_member_put", MEMBER),
        ("add_member", "remove_member", MEMBER),
        ("add_member", "accept_invitation", INVITATION),
        ("create_group", "get_group", GROUP),
        ("create_group", "update_group", GROUP),
        ("create_group", "delete_group", GROUP),
        ("create_group", "list_group_members", GROUP),
        ("create_group", "add_group_member", GROUP),
        ("add_group_member", "remove_group_member", GROUP_MEMBER),
        ("grant_role", "revoke_grant", GRANT),
    ]
};

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let id = operation.operation_id.clone().unwrap_or_default();
                let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") else {
                    continue;
                };
                for (_, target, parameters) in LINKS.iter().filter(|link| link.0 == id) {
                    let mut link = utoipa::openapi::link::LinkBuilder::new().operation_id(*target);
                    for (name, expression) in *parameters {
                        link = link.parameter(*name, *expression);
                    }
                    created
                        .links
                        .insert((*target).to_owned(), link.build().into());
                }
            }
        }
    }
}

/// Last touches: every response has a description (OpenAPI requires one), the `PUT` aliases
/// get operation ids of their own (ids must be unique), and no empty licence.
struct Tidy;

impl Modify for Tidy {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info.license = None;
        for item in openapi.paths.paths.values_mut() {
            if let (Some(patch), Some(put)) = (&item.patch, &mut item.put) {
                if put.operation_id.is_some() && put.operation_id == patch.operation_id {
                    put.operation_id = put.operation_id.take().map(|id| format!("{id}_put"));
                }
            }
            for operation in operations(item) {
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response {
                        if response.description.is_empty() {
                            response.description = default_description(status);
                        }
                    }
                }
            }
        }
    }
}

/// The status' reason phrase ("OK", "Created"), for responses the handler left undescribed.
fn default_description(status: &str) -> String {
    status
        .parse::<u16>()
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Response")
        .to_owned()
}

pub static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "documentation",
    responses((status = 200, description = "The document you are reading.", body = Object)))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(&*DOCUMENT)
}

/// A file of the documentation page, embedded in the binary.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// The files `/docs` loads, each served at `/docs/{name}`. Swagger UI's are vendored from the
/// npm package `swagger-ui-dist` (see `docs/swagger-ui/README.md`).
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("docs/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("docs/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "favicon-32x32.png",
        content_type: "image/png",
        bytes: include_bytes!("docs/swagger-ui/favicon-32x32.png"),
    },
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("docs/init.js"),
    },
];

const DOCS_PAGE: &str = include_str!("docs/index.html");

/// Only this server's own files and document; Swagger UI sets inline styles.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                        form-action 'none'; frame-ancestors 'none'";

/// This documentation as a page: Swagger UI over `/openapi.json`, with no resource from
/// anywhere but this server.
#[utoipa::path(get, path = "/docs", tag = "documentation",
    responses((status = 200, description = "An HTML page.", content_type = "text/html", body = String)))]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(DOCS_PAGE)
}

async fn serve_asset(asset: &'static Asset) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Names are not versioned: an hour bounds how long a browser keeps an old copy.
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(asset.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_responses_follow_what_the_operation_has() {
        let statuses =
            |has: Has| -> Vec<u16> { common_responses(has).into_iter().map(|(s, _)| s).collect() };
        assert!(
            statuses(Has::default()).is_empty(),
            "nothing taken, nothing added"
        );
        let bearer = Has {
            bearer: true,
            ..Has::default()
        };
        assert_eq!(vec![401, 503], statuses(bearer), "a token alone");
        let body = Has {
            body: true,
            ..bearer
        };
        assert_eq!(vec![400, 401, 413, 422, 503], statuses(body), "a body");
        let query = Has {
            query: true,
            ..bearer
        };
        assert_eq!(vec![400, 401, 422, 503], statuses(query), "a query");
        let path = Has {
            path: true,
            ..bearer
        };
        assert_eq!(vec![400, 401, 503], statuses(path), "a path parameter");
    }

    #[test]
    fn default_descriptions_are_reason_phrases() {
        assert_eq!("Created", default_description("201"));
        assert_eq!("No Content", default_description("204"));
        assert_eq!("Response", default_description("default"));
    }
}
