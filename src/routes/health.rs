use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::get;
    cfg.service(resource("/healthz").route(get().to(healthz)))
        .service(resource("/readyz").route(get().to(readyz)))
        .service(resource("/metrics").route(get().to(metrics)));
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers (503 otherwise); the cache is `ok`, `degraded` (requests go to the
/// database) or `disabled` (no REDIS_URL), which does not make the service unready.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200), (status = 503)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.db.client().await {
        Ok(client) => db::ping(&client).await.is_ok(),
        Err(_) => false,
    };
    if let Some(cache) = &state.cache {
        cache.probe().await;
    }
    let body = json!({
        "status": if database { "ok" } else { "unavailable" },
        "database": if database { "ok" } else { "unavailable" },
        "cache": state.cache_state().as_str(),
    });
    match database {
        true => HttpResponse::Ok().json(body),
        false => HttpResponse::ServiceUnavailable().json(body),
    }
}

/// Prometheus metrics: requests by route and status, cache, listener and pool figures.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state
        .metrics
        .render(&state.db.status(), state.cache_state().as_str());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
