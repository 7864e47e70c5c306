//! Builds the application: the pool, the cache and its listener, the shared state, and the
//! HTTP server over the routes of `routes::configure`.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::dev::ServiceResponse;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, DefaultHeaders, ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::auth::JwtVerifier;
use crate::cache::{Cache, CacheConfig, FillHook};
use crate::db::{self, Db};
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::metrics::{Metrics, RecordRequests};
use crate::settings::{Settings, SettingsError};
use crate::state::AppState;
use crate::tokens::KeyRing;

/// A bound, not yet running, HTTP server.
pub struct Application {
    port: u16,
    server: Server,
    change_listener: Option<tokio::task::JoinHandle<()>>,
    state: web::Data<AppState>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot bind {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The variable that names the database (`DATABASE_URL`, `DATABASE_APP_URL`), and why.
    #[error("{0}: cannot connect")]
    Database(
        &'static str,
        #[source] Box<dyn std::error::Error + Send + Sync>,
    ),
    #[error("REDIS_URL: invalid")]
    Redis(#[source] redis::RedisError),
}

impl Application {
    /// Binds `settings.bind_addr` (port 0 picks a free port) and prepares the server. The
    /// database must already be migrated.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Application::build_with(settings, None).await
    }

    /// `build`, with a hook run between each database read and the cache write of its result
    /// (tests use it to force the read–invalidate race).
    pub async fn build_with(
        settings: Settings,
        fill_hook: Option<FillHook>,
    ) -> Result<Application, StartupError> {
        let verifier = web::Data::new(JwtVerifier::new(&settings.jwt)?);
        let ring = web::Data::new(KeyRing::new(&settings.tokens)?);
        if ring.ephemeral {
            log::warn!("TOKEN_SIGNING_KEY is not set: access tokens are signed with a key generated now, refused after a restart and by other instances (set one: roster keys generate)");
        }
        let pool = build_pool(&settings)?;
        // Fail now, with a clear message, if the database or DATABASE_ROLE is wrong; say so if
        // the login is more powerful than the API needs.
        let (variable, _) = settings.serving_url();
        let database_error =
            |e: Box<dyn std::error::Error + Send + Sync>| StartupError::Database(variable, e);
        let client = pool.get().await.map_err(|e| database_error(Box::new(e)))?;
        let login = db::session_login(&client)
            .await
            .map_err(|e| database_error(Box::new(e)))?;
        drop(client);
        match login_warning(settings.database_app_url.is_some(), &login) {
            Some((level, message)) => log::log!(level, "{message}"),
            None => log::info!("serving through login {} ({variable})", login.name),
        }
        let metrics = Arc::new(Metrics::default());
        let (cache, change_listener) = match &settings.redis_url {
            None => {
                log::info!("REDIS_URL is not set: no cache, every request reads the database");
                (None, None)
            }
            Some(url) => {
                let key = settings.cache_key.as_deref().ok_or_else(|| {
                    StartupError::Settings(SettingsError {
                        name: "CACHE_KEY",
                        problem: "missing: required with REDIS_URL".into(),
                    })
                })?;
                let config = CacheConfig {
                    redis_url: url,
                    cluster: settings.redis_cluster,
                    namespace: &settings.cache_namespace,
                    key,
                    timeout: settings.redis_timeout,
                    ttl_seconds: settings.cache_ttl_seconds,
                    near_entries: settings.cache_near_entries,
                };
                let cache =
                    Cache::new(config, metrics.clone(), fill_hook).map_err(StartupError::Redis)?;
                let cache = Arc::new(cache);
                tokio::spawn(warn_about_eviction_policy(cache.clone()));
                let change_listener = tokio::spawn(crate::listener::run(
                    settings.serving_url().1.to_owned(),
                    cache.clone(),
                    metrics.clone(),
                ));
                (Some(cache), Some(change_listener))
            }
        };
        let state = web::Data::new(AppState {
            db: Db::new(pool, metrics.clone(), settings.pool_timeout),
            cache,
            metrics: metrics.clone(),
        });

        let listener =
            TcpListener::bind(&settings.bind_addr).map_err(|source| StartupError::Bind {
                addr: settings.bind_addr.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: settings.bind_addr.clone(),
                source,
            })?
            .port();
        let body_limit = settings.body_limit;
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(crate::consistency::read_your_writes))
                .wrap(
                    ErrorHandlers::new()
                        .handler(StatusCode::METHOD_NOT_ALLOWED, method_not_allowed),
                )
                .wrap(RecordRequests(metrics.clone()))
                // Outermost: it sees every response, the rewritten 405s included.
                .wrap(default_headers())
                .app_data(verifier.clone())
                .app_data(ring.clone())
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(BodyLimit(body_limit))
                .app_data(web::PathConfig::default().error_handler(path_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .configure(crate::routes::configure)
                .default_service(web::to(no_route))
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.bind_addr.clone(),
            source,
        })?
        .shutdown_timeout(30)
        // actix treats SIGINT as a forced stop; both signals are handled in run_until_stopped.
        .disable_signals()
        .run();
        Ok(Application {
            port,
            server,
            change_listener,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cache, when REDIS_URL is set (tests inspect its minimum versions).
    pub fn cache(&self) -> Option<Arc<Cache>> {
        self.state.cache.clone()
    }

    /// Serves until SIGTERM or SIGINT (Ctrl-C), then stops accepting and lets in-flight
    /// requests finish (for up to 30 s).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = std::pin::pin!(self.server);
        let result = tokio::select! {
            result = &mut server => result,
            signal = shutdown_signal() => {
                log::info!("{signal} received: finishing in-flight requests");
                // The stop completes only while the server future is polled: drive both.
                let ((), result) = tokio::join!(handle.stop(true), server);
                result
            }
        };
        if let Some(change_listener) = self.change_listener {
            change_listener.abort();
        }
        result
    }
}

/// Roster's entries all expire and any of them may be evicted; with `noeviction` a full Redis
/// refuses every write instead (the cache then stops filling: slower, never wrong).
async fn warn_about_eviction_policy(cache: Arc<Cache>) {
    match cache.eviction_policy().await.as_deref() {
        Some("noeviction") => log::warn!(
            "Redis maxmemory-policy is noeviction: once full it refuses every cache write; set volatile-lru or allkeys-lru"
        ),
        Some(policy) => log::info!("Redis maxmemory-policy is {policy}"),
        None => log::info!("cannot read Redis maxmemory-policy (CONFIG GET refused or Redis down): volatile-lru or allkeys-lru expected"),
    }
}

/// Resolves when the process is asked to stop; never, where signals cannot be watched.
async fn shutdown_signal() -> &'static str {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(error) => {
                log::warn!("cannot watch SIGTERM: {error}");
                return std::future::pending().await;
            }
        };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// `Cache-Control: no-store` and `X-Content-Type-Options: nosniff` on every response that does
/// not set them itself. The API's answers (emails, billing details, errors naming values) must
/// not be kept by a browser or a shared cache, nor sniffed into HTML. A response that may be
/// cached (a static asset) sets its own `Cache-Control`, which this leaves alone.
pub fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}

/// What to say at start-up about the login the API serves through, if anything: it should be
/// a member of `roster_app` only (DATABASE_APP_URL). Serving as the owner (DATABASE_URL) holds
/// the owner's powers behind a `set role` that `reset role` undoes; as a superuser, everything.
pub fn login_warning(through_app_url: bool, login: &db::Login) -> Option<(log::Level, String)> {
    let name = &login.name;
    match (through_app_url, login.superuser) {
        (true, true) => Some((
            log::Level::Error,
            format!(
                "DATABASE_APP_URL logs in as {name}, a SUPERUSER: any statement the API is made to \
                 run can do anything; use a login that is a member of roster_app only"
            ),
        )),
        (false, true) => Some((
            log::Level::Error,
            format!(
                "serving as {name}, a SUPERUSER (DATABASE_URL): `set role` is undone by `reset role`, \
                 so any statement the API is made to run can do anything; set DATABASE_APP_URL to a \
                 login that is a member of roster_app only"
            ),
        )),
        (false, false) => Some((
            log::Level::Warn,
            format!(
                "serving as {name}, the owner (DATABASE_URL): set DATABASE_APP_URL to a login that \
                 is a member of roster_app only"
            ),
        )),
        (true, false) if !login.acts_as_app => Some((
            log::Level::Warn,
            format!(
                "DATABASE_APP_URL logs in as {name}, which does not hold roster_app's grants (not a \
                 member that inherits, and DATABASE_ROLE is not roster_app): requests will fail"
            ),
        )),
        (true, false) => None,
    }
}

fn build_pool(settings: &Settings) -> Result<Pool, StartupError> {
    let (variable, url) = settings.serving_url();
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StartupError::Database(variable, Box::new(e)))?;
    // Every statement of a request is bounded by the server itself, set at connect: a table
    // locked for minutes by a migration costs a request lock_timeout, not minutes. And no JIT:
    // a request's statements take a millisecond, and compiling one took 6 ms (measured on
    // /authz/explain) whenever the planner's estimates crossed jit_above_cost.
    db::set_session_options(
        &mut config,
        &[
            ("statement_timeout", db::millis(settings.statement_timeout)),
            ("lock_timeout", db::millis(settings.lock_timeout)),
            ("jit", "off".to_owned()),
        ],
    );
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let mut builder = Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        // Db::client bounds getting a connection as a whole; these keep each phase bounded for
        // the other callers of `pool.get()` (the start-up check).
        .wait_timeout(Some(settings.pool_timeout))
        .create_timeout(Some(settings.pool_timeout))
        .recycle_timeout(Some(settings.pool_timeout));
    if let Some(role) = settings.database_role.clone() {
        let statement = format!("set role {}", crate::quote_ident(&role));
        builder = builder.post_create(Hook::async_fn(move |client, _| {
            let statement = statement.clone();
            Box::pin(async move {
                client
                    .batch_execute(&statement)
                    .await
                    .map_err(HookError::Backend)
            })
        }));
    }
    builder
        .build()
        .map_err(|e| StartupError::Database(variable, Box::new(e)))
}

fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid path parameter: {error}")).into()
}

fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {error}")).into()
}

/// Actix answers a known path's unknown method with an empty 405 and an `Allow` header: keep
/// the header, give it the JSON error body.
fn method_not_allowed<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (request, old) = response.into_parts();
    let mut new = ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        request.method(),
        request.path()
    ))
    .error_response();
    if let Some(allow) = old.headers().get(header::ALLOW) {
        new.headers_mut().insert(header::ALLOW, allow.clone());
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, new).map_into_right_body(),
    ))
}

async fn no_route(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route(
        request.method().as_str(),
        request.path(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as actix_test;

    #[actix_web::test]
    async fn default_headers_leave_a_responses_own_cache_control_alone() {
        let app = actix_test::init_service(
            App::new()
                .wrap(default_headers())
                .route("/data", web::get().to(HttpResponse::Ok))
                .route(
                    "/asset",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
                            .finish()
                    }),
                ),
        )
        .await;
        for (path, cache_control) in [("/data", "no-store"), ("/asset", "public, max-age=3600")] {
            let response = actix_test::call_service(
                &app,
                actix_test::TestRequest::get().uri(path).to_request(),
            )
            .await;
            let headers = response.headers();
            let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
            assert_eq!(Some(cache_control), value(header::CACHE_CONTROL), "{path}");
            assert_eq!(
                Some("nosniff"),
                value(header::X_CONTENT_TYPE_OPTIONS),
                "{path}"
            );
        }
    }

    fn login(name: &str, superuser: bool, acts_as_app: bool) -> db::Login {
        db::Login {
            name: name.to_owned(),
            superuser,
            acts_as_app,
        }
    }

    #[test]
    fn the_login_warning_fits_the_login() {
        // (through DATABASE_APP_URL, login, expected level, words the message must hold)
        let cases = [
            (
                false,
                login("postgres", true, true),
                Some(log::Level::Error),
                "a SUPERUSER (DATABASE_URL)",
                "the owner's login is a superuser",
            ),
            (
                false,
                login("roster_owner", false, true),
                Some(log::Level::Warn),
                "the owner (DATABASE_URL)",
                "the owner's login is not a superuser",
            ),
            (
                true,
                login("root", true, true),
                Some(log::Level::Error),
                "DATABASE_APP_URL logs in as root, a SUPERUSER",
                "the app login is a superuser",
            ),
            (
                true,
                login("roster_api", false, false),
                Some(log::Level::Warn),
                "does not hold roster_app's grants",
                "the app login is not a member of roster_app",
            ),
            (
                true,
                login("roster_api", false, true),
                None,
                "",
                "the app login is a member of roster_app only",
            ),
        ];
        for (through_app_url, login, level, words, description) in cases {
            let warning = login_warning(through_app_url, &login);
            assert_eq!(
                level,
                warning.as_ref().map(|(level, _)| *level),
                "{description}: {warning:?}"
            );
            if let Some((_, message)) = warning {
                assert!(
                    message.contains(words) && message.contains(&login.name),
                    "{description}: {message:?} should name the login and say {words:?}"
                );
                assert!(
                    !message.contains('\n') && !message.contains("  "),
                    "{description}: one line, single-spaced: {message:?}"
                );
                if !through_app_url {
                    assert!(
                        message.contains("set DATABASE_APP_URL"),
                        "{description}: says what to do"
                    );
                }
            }
        }
    }
}
