//! HTTP handlers: each extracts the caller, path and body, makes one `db` (or cached `reads`)
//! call and returns JSON. Each concern's module registers its own routes.

pub mod audit;
pub mod authz;
pub mod docs;
pub mod domains;
pub mod grants;
pub mod groups;
pub mod health;
pub mod invitations;
pub mod members;
pub mod organizations;
pub mod permissions;
pub mod resources;
pub mod roles;
pub mod tokens;

use actix_web::web;

/// The route table: every endpoint of the API, by concern.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(docs::configure)
        .configure(organizations::configure)
        .configure(members::configure)
        .configure(invitations::configure)
        .configure(domains::configure)
        .configure(authz::configure)
        .configure(audit::configure)
        .configure(roles::configure)
        .configure(permissions::configure)
        .configure(resources::configure)
        .configure(groups::configure)
        .configure(grants::configure)
        .configure(tokens::configure);
}

/// `web::resource(pattern)`, named after its pattern: the metrics middleware labels requests
/// with `match_name()`, a lookup that borrows the name, where `match_pattern()` builds a String
/// for every request.
pub fn resource(pattern: &'static str) -> actix_web::Resource {
    web::resource(pattern).name(pattern)
}

/// RNFND's answer, the same whatever the reason, so as not to tell what exists.
pub const NOT_VISIBLE: &str =
    "`not_found`: the organization does not exist, is deleted, or the caller is no active member.";
/// RDNID's answer.
pub const FORBIDDEN: &str = "`forbidden`: the caller's role lacks the permission.";

/// A 200 response from JSON already serialized (by the cache or just now).
pub fn json_bytes(body: Vec<u8>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

#[cfg(test)]
mod tests {
    use actix_web::{test, App, HttpRequest};

    use super::resource;

    /// What the metrics middleware relies on to label a request without allocating.
    #[actix_web::test]
    async fn a_resource_is_named_after_its_pattern() {
        async fn name(request: HttpRequest) -> String {
            request.match_name().unwrap_or("(none)").to_owned()
        }
        let app = test::init_service(
            App::new()
                .service(resource("/organizations/{org_id}").route(actix_web::web::get().to(name))),
        )
        .await;
        let request = test::TestRequest::get()
            .uri("/organizations/0b6f")
            .to_request();
        let body = test::call_and_read_body(&app, request).await;
        assert_eq!("/organizations/{org_id}", body);
    }
}
