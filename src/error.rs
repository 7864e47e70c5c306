//! The one error type of the HTTP layer, and the one place that maps database errors to HTTP.
//!
//! Handlers return `Result<_, ApiError>` and use `?`: a `tokio_postgres::Error` or a pool error
//! converts here, by SQLSTATE, following the catalogue in `sql/ERRORS.md`. Anything this file
//! does not know is a bug: it becomes a 500 and is logged with its whole cause chain.

use std::error::Error as StdError;
use std::fmt::Write as _;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 Bad Request: the request could not be read (malformed JSON, path or query).
    #[error("{0}")]
    BadRequest(String),
    /// 401 Unauthorized: no credentials at all; `WWW-Authenticate` names the scheme only
    /// (RFC 6750 section 3.1).
    #[error("missing Authorization header: expected Authorization: Bearer <token>")]
    NoCredentials,
    /// 401 Unauthorized: invalid credentials; `WWW-Authenticate` says why.
    #[error("{0}")]
    Unauthenticated(String),
    /// 405 Method Not Allowed: the path exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413 Payload Too Large: the body is over the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422 Unprocessable Entity: well-formed input that the edge refuses (bad page size, unknown
    /// field, invalid enum value).
    #[error("{0}")]
    Invalid(String),
    /// A refusal by the database, with the status and code of its SQLSTATE in `sql/ERRORS.md`
    /// (403, 404, 409, 422).
    #[error("{message}")]
    Rejected {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// 503 Service Unavailable: the database is unreachable, the pool is exhausted past its
    /// timeout, or a concurrent write asks for a retry.
    #[error("{0}")]
    Unavailable(String),
    /// 500 Internal Server Error: a bug. The cause is logged, never shown to the client.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code from `sql/ERRORS.md` (e.g. `last_owner`).
    pub code: &'static str,
    /// What went wrong, naming the offending value where there is one.
    pub message: String,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NoCredentials | ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Invalid(_) => "invalid_input",
            ApiError::Rejected { code, .. } => code,
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// RNFND's answer, for decisions taken from the cache.
    pub fn organization_not_found(org: uuid::Uuid) -> ApiError {
        ApiError::rejected(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("organization {org} not found"),
        )
    }

    /// RDNID's answer, for decisions taken from the cache.
    pub fn forbidden(message: String) -> ApiError {
        ApiError::Rejected {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message,
        }
    }

    /// A path that matches no route.
    pub fn no_route(method: &str, path: &str) -> ApiError {
        ApiError::rejected(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no route for {method} {path}"),
        )
    }

    fn rejected(status: StatusCode, code: &'static str, message: &str) -> ApiError {
        ApiError::Rejected {
            status,
            code,
            message: message.to_owned(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoCredentials | ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Rejected { status, .. } => *status,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Internal(cause) => log::error!("internal error: {}", cause_chain(&**cause)),
            ApiError::Unavailable(message) => log::warn!("unavailable: {message}"),
            ApiError::NoCredentials => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"roster\""));
            }
            ApiError::Unauthenticated(message) => {
                let description = message.replace('"', "'");
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"roster\", error=\"invalid_token\", error_description=\"{description}\""
                    ),
                ));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

/// SQLSTATE → HTTP, as catalogued in `sql/ERRORS.md`.
impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> ApiError {
        let Some(db) = error.as_db_error() else {
            // No answer from the server (the connection is gone or could not be made) is an
            // outage; anything else, such as a value that does not decode into its Rust type, is
            // a bug.
            return if connection_lost(&error) {
                ApiError::Unavailable(format!("database unavailable: {error}"))
            } else {
                ApiError::Internal(Box::new(error))
            };
        };
        let message = db.message();
        match db.code().code() {
            "RNACT" => ApiError::Unauthenticated(message.to_owned()),
            "RNFND" => ApiError::rejected(StatusCode::NOT_FOUND, "not_found", message),
            "RMBNF" => ApiError::rejected(StatusCode::NOT_FOUND, "member_not_found", message),
            "RUSNF" => ApiError::rejected(StatusCode::NOT_FOUND, "user_not_found", message),
            "RTNNF" => ApiError::rejected(StatusCode::NOT_FOUND, "tenant_not_found", message),
            "RDNID" => ApiError::rejected(StatusCode::FORBIDDEN, "forbidden", message),
            "RLOWN" => ApiError::rejected(StatusCode::CONFLICT, "last_owner", message),
            "RISMB" => ApiError::rejected(StatusCode::CONFLICT, "already_member", message),
            "RNINV" => ApiError::rejected(StatusCode::CONFLICT, "invitation_not_pending", message),
            "RINVL" => {
                ApiError::rejected(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
            }
            "RUPRM" => ApiError::rejected(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_permission",
                message,
            ),
            "23505" => ApiError::rejected(
                StatusCode::CONFLICT,
                conflict_code(db.constraint().unwrap_or_default()),
                message,
            ),
            "23514" | "23502" | "23503" | "22P02" | "22023" | "22001" => {
                ApiError::rejected(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
            }
            "40001" | "40P01" => ApiError::rejected(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "a concurrent change got in the way; retry the request",
            ),
            _ if db.code() == &SqlState::ADMIN_SHUTDOWN
                || db.code() == &SqlState::CANNOT_CONNECT_NOW
                || db.code().code().starts_with("08") =>
            {
                ApiError::Unavailable(format!("database unavailable: {message}"))
            }
            _ => ApiError::Internal(Box::new(error)),
        }
    }
}

/// A client error that is about the connection: closed, failing I/O (connecting, reading,
/// writing), or a server that did not answer in time. tokio-postgres does not expose its error
/// kinds; these are the ones whose cause is an `io::Error`, plus `Closed` and `Timeout`.
fn connection_lost(error: &tokio_postgres::Error) -> bool {
    error.is_closed()
        || error
            .source()
            .is_some_and(|cause| cause.is::<std::io::Error>())
        || error.to_string() == "timeout waiting for server"
}

/// The code of a unique violation, by the constraint that caught it.
fn conflict_code(constraint: &str) -> &'static str {
    match constraint {
        "uq_organizations_tenant_slug" | "uq_tenants_slug" => "slug_taken",
        "uq_organizations_tenant_name" => "name_taken",
        "uq_users_tenant_email" => "email_taken",
        "uq_organization_memberships_tenant_org_user" => "already_member",
        _ => "conflict",
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> ApiError {
        match error {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            deadpool_postgres::PoolError::Timeout(_) => {
                ApiError::Unavailable("database pool exhausted or unreachable".into())
            }
            other => ApiError::Unavailable(format!("database unavailable: {other}")),
        }
    }
}

/// `outer: inner: innermost`, for logs.
pub fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let _ = write!(text, ": {inner}");
        cause = inner.source();
    }
    text
}
