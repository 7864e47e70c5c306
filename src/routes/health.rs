use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::get;
    cfg.service(resource("/healthz").route(get().to(healthz)))
        .service(resource("/readyz").route(get().to(readyz)))
        .service(resource("/metrics").route(get().to(metrics)));
}

/// The body of `/healthz`.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
}

/// The body of `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when the database answers, else `unavailable`.
    #[schema(pattern = "^(ok|unavailable)$")]
    pub status: &'static str,
    /// The same as `status`.
    #[schema(pattern = "^(ok|unavailable)$")]
    pub database: &'static str,
    /// `ok`, `degraded` (requests go to the database) or `disabled` (no REDIS_URL).
    #[schema(pattern = "^(ok|degraded|disabled)$")]
    pub cache: &'static str,
    /// Milliseconds since this instance last read the database's change log (every 5 ms while
    /// it follows it); null while it does not (no REDIS_URL, or the stream is lost: the cache
    /// is then not used).
    #[schema(minimum = 0)]
    pub change_stream_lag_ms: Option<u64>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up.", body = Liveness)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// The database answers (503 otherwise); the cache is `ok`, `degraded` (requests go to the
/// database) or `disabled` (no REDIS_URL), which does not make the service unready; and how far
/// behind the database's change log this instance is.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready: the database answers.", body = Readiness),
    (status = 503, description = "Not ready: the database does not answer.", body = Readiness),
))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.db.client().await {
        Ok(client) => db::ping(&client).await.is_ok(),
        Err(_) => false,
    };
    if let Some(cache) = &state.cache {
        cache.probe().await;
    }
    let database_state = if database { "ok" } else { "unavailable" };
    let body = Readiness {
        status: database_state,
        database: database_state,
        cache: state.cache_state().as_str(),
        change_stream_lag_ms: state
            .cache
            .as_ref()
            .and(state.metrics.stream_lag())
            .map(|lag| u64::try_from(lag.as_millis()).unwrap_or(u64::MAX)),
    };
    match database {
        true => HttpResponse::Ok().json(body),
        false => HttpResponse::ServiceUnavailable().json(body),
    }
}

/// Prometheus metrics: requests by route and status, cache, listener and pool figures.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4.", content_type = "text/plain", body = String),
))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state
        .metrics
        .render(&state.db.status(), state.cache_state().as_str());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
