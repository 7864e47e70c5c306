//! HTTP handlers: each extracts the caller, path and body, makes one `db` call and returns JSON.

pub mod authz;
pub mod health;
pub mod members;
pub mod organizations;

/// A 200 response from JSON already serialized (by the cache or just now).
pub fn json_bytes(body: Vec<u8>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}
