use actix_web::{web, HttpResponse};
use deadpool_postgres::Pool;
use serde_json::json;

use crate::db;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200), (status = 503)))]
pub async fn readyz(pool: web::Data<Pool>) -> HttpResponse {
    let database = match pool.get().await {
        Ok(client) => db::ping(&client).await.is_ok(),
        Err(_) => false,
    };
    let body = json!({
        "status": if database { "ok" } else { "unavailable" },
        "database": if database { "ok" } else { "unavailable" },
    });
    match database {
        true => HttpResponse::Ok().json(body),
        false => HttpResponse::ServiceUnavailable().json(body),
    }
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200)))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(&*crate::openapi::DOCUMENT)
}
