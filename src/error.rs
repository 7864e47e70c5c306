//! The one error type of the HTTP layer, and the one place that maps database errors to HTTP.
//!
//! Handlers return `Result<_, ApiError>` and use `?`: a `tokio_postgres::Error` or a pool error
//! converts here, by SQLSTATE, following the catalogue in `sql/ERRORS.md`. Anything this file
//! does not know is a bug: it becomes a 500 and is logged with its whole cause chain.

use std::error::Error as StdError;
use std::fmt::Write as _;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
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
    /// 401 Unauthorized: invalid credentials. `WWW-Authenticate` says why with `reason`, a fixed
    /// text (`&'static str`: never from the token, whose bytes could break the header); the
    /// body says `message`.
    #[error("{message}")]
    Unauthenticated {
        reason: &'static str,
        message: String,
    },
    /// 401 Unauthorized: a Roster access token issued before a change to its user's access in
    /// its organization (or to the user, the organization, the tenant's roles): the client
    /// exchanges its identity token again.
    #[error("token_stale: access changed since this access token was issued; exchange again (POST /auth/token)")]
    TokenStale,
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
    /// 503 Service Unavailable: the database is unreachable, no pooled connection was had
    /// within the pool's timeout, or a statement ran past its statement timeout. (A concurrent
    /// write or a held lock asking for a retry is a `Rejected` 503 with code `retry`.)
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

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code from `sql/ERRORS.md` (e.g. `last_owner`).
    pub code: &'static str,
    /// What went wrong, naming the offending value where there is one.
    pub message: String,
}

impl ApiError {
    /// The code of the body (`sql/ERRORS.md`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NoCredentials | ApiError::Unauthenticated { .. } => "unauthenticated",
            ApiError::TokenStale => "token_stale",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Invalid(_) => "invalid_input",
            ApiError::Rejected { code, .. } => code,
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A token refused for `reason`, one of the fixed texts of `auth`.
    pub fn invalid_token(reason: &'static str) -> ApiError {
        ApiError::Unauthenticated {
            reason,
            message: format!("invalid token: {reason}"),
        }
    }

    /// RNACT's answer: a valid token for a user that does not exist (any more). The message
    /// names the user; the challenge stays fixed.
    pub fn inactive_user(message: String) -> ApiError {
        ApiError::Unauthenticated {
            reason: "unknown or deleted user",
            message,
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
    pub fn permission_denied(role: &str, permission: &str, org_slug: &str) -> ApiError {
        ApiError::rejected(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("role {role} lacks permission {permission} in organization {org_slug}"),
        )
    }

    /// RUPRM's answer, for a name checked against a cached catalogue.
    pub fn unknown_permission(field: &str, permission: &str) -> ApiError {
        ApiError::rejected(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_permission",
            &format!("{field}: unknown permission {permission:?}"),
        )
    }

    /// RUSNF's answer for a user outside a service's tenant.
    pub fn user_not_found(user: uuid::Uuid) -> ApiError {
        ApiError::rejected(
            StatusCode::NOT_FOUND,
            "user_not_found",
            &format!("user {user} not found in this tenant"),
        )
    }

    /// RMBNF's answer, decided from a cached access.
    pub fn member_not_found(user: uuid::Uuid, org: uuid::Uuid) -> ApiError {
        ApiError::rejected(
            StatusCode::NOT_FOUND,
            "member_not_found",
            &format!("user {user} is not a member of organization {org}"),
        )
    }

    /// A service token on an endpoint for users.
    pub fn service_refused(method: &str, path: &str) -> ApiError {
        ApiError::rejected(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("a service token may check, explain and look up access and register permissions, not {method} {path}"),
        )
    }

    /// A path that matches no route.
    pub fn no_route(method: &str, path: &str) -> ApiError {
        ApiError::rejected(
            StatusCode::NOT_FOUND,
            "no_route",
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
            ApiError::NoCredentials | ApiError::Unauthenticated { .. } | ApiError::TokenStale => {
                StatusCode::UNAUTHORIZED
            }
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
            ApiError::Unauthenticated { reason, .. } => {
                response.insert_header((header::WWW_AUTHENTICATE, invalid_token_challenge(reason)));
            }
            ApiError::TokenStale => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    invalid_token_challenge("token stale"),
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

/// `Bearer ... error="invalid_token", error_description="{reason}"` (RFC 6750 section 3). A
/// reason outside the characters `error_description` allows (a bug: the reasons are fixed texts)
/// leaves the description out rather than turning the 401 into a 500.
fn invalid_token_challenge(reason: &str) -> HeaderValue {
    const BARE: &str = "Bearer realm=\"roster\", error=\"invalid_token\"";
    let allowed = |b: u8| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
    if !reason.bytes().all(allowed) {
        log::error!("a 401 reason with characters a challenge cannot hold: {reason:?}");
        return HeaderValue::from_static(BARE);
    }
    HeaderValue::from_str(&format!("{BARE}, error_description=\"{reason}\""))
        .unwrap_or_else(|_| HeaderValue::from_static(BARE))
}

/// How the API reports each SQLSTATE the functions raise or let through: `(sqlstate, code,
/// status)`, exactly the rows of `sql/ERRORS.md` (a test compares the two). Besides these, class
/// `08` (connection exceptions) and anything the server answers with no SQLSTATE are 503
/// `unavailable`; any other SQLSTATE is a bug: 500, logged.
pub const SQLSTATES: &[(&str, &str, u16)] = &[
    ("RNACT", "unauthenticated", 401),
    ("RNFND", "not_found", 404),
    ("RDNID", "forbidden", 403),
    ("RLOWN", "last_owner", 409),
    ("RISMB", "already_member", 409),
    ("RNINV", "invitation_not_pending", 409),
    ("RMBNF", "member_not_found", 404),
    ("RUSNF", "user_not_found", 404),
    ("RTNNF", "tenant_not_found", 404),
    ("RINVL", "invalid_input", 422),
    ("RUPRM", "unknown_permission", 422),
    ("RBLTN", "builtin", 409),
    ("RRLNF", "role_not_found", 404),
    ("RRLUS", "role_in_use", 409),
    ("RPMUS", "permission_in_use", 409),
    ("RESCL", "privilege_escalation", 403),
    ("RGRNF", "group_not_found", 404),
    ("RGCHD", "group_has_children", 409),
    ("RGTNF", "grant_not_found", 404),
    ("RHIER", "invalid_hierarchy", 422),
    ("RIVNF", "invitation_not_found", 404),
    ("RIEXP", "invitation_expired", 409),
    ("RIEML", "invitation_email_mismatch", 403),
    ("RSEAT", "seat_limit", 409),
    ("RDMNF", "domain_not_found", 404),
    ("RAMBG", "internal", 500),
    ("RAPND", "internal", 500),
    ("23505", "conflict", 409),
    ("23514", "invalid_input", 422),
    ("23502", "invalid_input", 422),
    ("23503", "invalid_input", 422),
    ("22P02", "invalid_input", 422),
    ("22023", "invalid_input", 422),
    ("22001", "invalid_input", 422),
    ("22003", "invalid_input", 422),
    ("22004", "invalid_input", 422),
    ("22007", "invalid_input", 422),
    ("22008", "invalid_input", 422),
    ("22021", "invalid_input", 422),
    ("22P05", "invalid_input", 422),
    ("2201W", "invalid_input", 422),
    ("2201X", "invalid_input", 422),
    ("54000", "invalid_input", 422),
    ("40001", "retry", 503),
    ("40P01", "retry", 503),
    ("55P03", "retry", 503),
    ("57014", "unavailable", 503),
    ("57P01", "unavailable", 503),
    ("57P03", "unavailable", 503),
];

/// SQLSTATE → HTTP, by the table above.
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
        let sqlstate = db.code().code();
        let message = db.message();
        let Some(&(_, code, status)) = SQLSTATES.iter().find(|(s, _, _)| *s == sqlstate) else {
            return match sqlstate.starts_with("08") {
                true => ApiError::Unavailable(format!("database unavailable: {message}")),
                false => ApiError::Internal(Box::new(error)),
            };
        };
        match (code, status) {
            (_, 401) => ApiError::inactive_user(message.to_owned()),
            (_, 500) => ApiError::Internal(Box::new(error)),
            // statement_timeout (or a DBA's pg_cancel_backend): the database is too slow now.
            ("unavailable", _) if sqlstate == "57014" => {
                ApiError::Unavailable(format!("database too slow: {message}"))
            }
            ("unavailable", _) => ApiError::Unavailable(format!("database unavailable: {message}")),
            // lock_timeout: another session holds what the statement needs (a migration
            // holding a table, a long transaction); trying again later is the answer.
            ("retry", _) if sqlstate == "55P03" => ApiError::rejected(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "the data is locked by another database session; retry the request",
            ),
            ("retry", _) => ApiError::rejected(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "a concurrent change got in the way; retry the request",
            ),
            ("conflict", _) => ApiError::rejected(
                StatusCode::CONFLICT,
                conflict_code(db.constraint().unwrap_or_default()),
                message,
            ),
            (code, status) => ApiError::rejected(
                StatusCode::from_u16(status).expect("a valid status in SQLSTATES"),
                code,
                message,
            ),
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

/// The API code of a SQLSTATE (and, for a unique violation, of its constraint), as a response
/// would carry it: for errors reported inside a 200, such as the items of a bulk invitation.
pub fn code_of(sqlstate: &str, constraint: Option<&str>) -> &'static str {
    match SQLSTATES.iter().find(|(s, _, _)| *s == sqlstate) {
        Some(("23505", _, _)) => conflict_code(constraint.unwrap_or_default()),
        Some((_, code, _)) => code,
        None => "internal",
    }
}

/// The code of a unique violation, by the constraint that caught it.
fn conflict_code(constraint: &str) -> &'static str {
    match constraint {
        "uq_organizations_tenant_slug" | "uq_tenants_slug" => "slug_taken",
        "uq_organizations_tenant_name" => "name_taken",
        "uq_users_tenant_email" => "email_taken",
        "uq_organization_memberships_tenant_org_user" => "already_member",
        "uq_roles_tenant_key" | "uq_roles_organization_key" | "uq_roles_scope_key" => {
            "role_key_taken"
        }
        "uq_groups_organization_key" => "group_key_taken",
        "uq_grants_live" => "already_granted",
        "uq_invitations_pending_email" => "already_invited",
        "uq_organization_domains_org_domain" => "domain_exists",
        "uq_organization_domains_verified" => "domain_taken",
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

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &str = include_str!("../sql/ERRORS.md");

    /// The cells of the table rows under the heading `## {section}` (header and rule skipped),
    /// with backticks removed.
    fn rows(section: &str) -> Vec<Vec<String>> {
        let start = CATALOGUE
            .find(&format!("## {section}\n"))
            .unwrap_or_else(|| panic!("sql/ERRORS.md has no section {section:?}"));
        let body = &CATALOGUE[start..];
        let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
        body[..end]
            .lines()
            .filter(|line| line.starts_with('|'))
            .skip(2)
            .map(|line| {
                line.trim_matches('|')
                    .split('|')
                    .map(|cell| cell.trim().replace('`', ""))
                    .collect()
            })
            .collect()
    }

    fn sqlstate_rows() -> Vec<(String, String, u16)> {
        let mut rows: Vec<_> = [
            "Roster's own codes",
            "PostgreSQL codes the functions let through",
        ]
        .into_iter()
        .flat_map(rows)
        .map(|cells| {
            (
                cells[0].clone(),
                cells[1].clone(),
                cells[2].parse().unwrap(),
            )
        })
        .collect();
        rows.sort();
        rows
    }

    #[test]
    fn the_sqlstate_mapping_is_the_catalogue() {
        let mut mapped: Vec<(String, String, u16)> = SQLSTATES
            .iter()
            .map(|(s, c, h)| (s.to_string(), c.to_string(), *h))
            .collect();
        mapped.sort();
        assert_eq!(
            sqlstate_rows(),
            mapped,
            "sql/ERRORS.md and error::SQLSTATES must list the same SQLSTATEs with the same code and status"
        );
    }

    /// One of each error the API can send, with the code and status it sends.
    fn sent() -> Vec<(&'static str, u16)> {
        let samples = [
            ApiError::BadRequest("x".into()),
            ApiError::NoCredentials,
            ApiError::invalid_token("bad signature"),
            ApiError::TokenStale,
            ApiError::MethodNotAllowed("x".into()),
            ApiError::PayloadTooLarge("x".into()),
            ApiError::Invalid("x".into()),
            ApiError::Unavailable("x".into()),
            ApiError::Internal("x".into()),
            ApiError::organization_not_found(uuid::Uuid::nil()),
            ApiError::permission_denied("member", "members:invite", "acme"),
            ApiError::unknown_permission("checks[0].permission", "x:y"),
            ApiError::no_route("GET", "/x"),
            ApiError::user_not_found(uuid::Uuid::nil()),
            ApiError::member_not_found(uuid::Uuid::nil(), uuid::Uuid::nil()),
            ApiError::service_refused("GET", "/x"),
        ];
        samples
            .iter()
            .map(|e| (e.code(), e.status_code().as_u16()))
            .collect()
    }

    #[test]
    fn every_code_the_api_adds_is_catalogued_and_only_those() {
        let mut documented: Vec<(String, u16)> = rows("Codes the HTTP API adds")
            .into_iter()
            .map(|cells| (cells[0].clone(), cells[1].parse().unwrap()))
            .collect();
        documented.sort();
        documented.dedup();
        let mut added: Vec<(String, u16)> = sent()
            .into_iter()
            .map(|(code, status)| (code.to_owned(), status))
            .collect();
        added.sort();
        added.dedup();
        assert_eq!(
            documented, added,
            "the codes the API sends of its own are the rows of 'Codes the HTTP API adds'"
        );
    }

    #[test]
    fn every_conflict_code_is_catalogued() {
        let unique = rows("PostgreSQL codes the functions let through")
            .into_iter()
            .find(|cells| cells[0] == "23505")
            .expect("a 23505 row");
        for constraint in [
            "uq_organizations_tenant_slug",
            "uq_tenants_slug",
            "uq_organizations_tenant_name",
            "uq_users_tenant_email",
            "uq_organization_memberships_tenant_org_user",
            "uq_roles_tenant_key",
            "uq_roles_organization_key",
            "uq_roles_scope_key",
            "uq_groups_organization_key",
            "uq_grants_live",
            "uq_invitations_pending_email",
            "uq_organization_domains_org_domain",
            "uq_organization_domains_verified",
            "any other",
        ] {
            let code = conflict_code(constraint);
            assert!(
                unique[3].contains(code),
                "the 23505 row names {code} (for {constraint})"
            );
        }
    }

    #[test]
    fn a_challenge_always_builds_and_holds_only_a_clean_reason() {
        assert_eq!(
            "Bearer realm=\"roster\", error=\"invalid_token\", error_description=\"token expired\"",
            invalid_token_challenge("token expired")
        );
        for hostile in [
            "HS256\r\nX-Injected: yes",
            "a \"quoted\" text",
            "back\\slash",
            "caf\u{e9}",
        ] {
            assert_eq!(
                "Bearer realm=\"roster\", error=\"invalid_token\"",
                invalid_token_challenge(hostile),
                "reason {hostile:?} is left out"
            );
        }
    }
}
