//! HTTP handlers: each extracts the caller, path and body, makes one `db` (or cached `reads`)
//! call and returns JSON. Each concern's module registers its own routes.

pub mod audit;
pub mod authz;
pub mod docs;
pub mod health;
pub mod members;
pub mod organizations;

use actix_web::web;

/// The route table: every endpoint of the API, by concern.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(docs::configure)
        .configure(organizations::configure)
        .configure(members::configure)
        .configure(authz::configure)
        .configure(audit::configure);
}

/// A 200 response from JSON already serialized (by the cache or just now).
pub fn json_bytes(body: Vec<u8>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}
