//! Roster's access tokens: the exchange of an identity token for one scoped to an
//! organization (RFC 8693), switching organization, introspection (RFC 7662) and the keys that
//! verify them (RFC 7517).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{JwtVerifier, Principal, Scoped};
use crate::db::tokens as db;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, RawBody};
use crate::reads;
use crate::state::AppState;
use crate::tokens::{AccessClaims, KeyRing};

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub fn configure(cfg: &mut web::ServiceConfig) {
    use super::resource;
    use web::{get, post};
    cfg.service(resource("/auth/token").route(post().to(exchange)))
        .service(resource("/auth/switch").route(post().to(switch)))
        .service(resource("/auth/introspect").route(post().to(introspect)))
        .service(resource("/.well-known/jwks.json").route(get().to(jwks)));
}

/// `POST /auth/token`, as a form (`application/x-www-form-urlencoded`) or JSON. Parameters
/// other than these are ignored (RFC 6749 section 3.2).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    #[schema(value_type = String, required = true)]
    pub grant_type: Option<String>,
    /// An identity token: the identity provider's (RS256) or a development token (HS256).
    #[schema(value_type = String, required = true)]
    pub subject_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:jwt`.
    #[schema(value_type = String, required = true)]
    pub subject_token_type: Option<String>,
    /// The organization the token is for; absent: the last active one, else the only one,
    /// else none (an unscoped token and the organizations to choose from).
    #[schema(value_type = String, format = Uuid, required = false)]
    pub organization_id: Option<String>,
}

/// `POST /auth/switch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    pub organization_id: Uuid,
}

/// An issued access token (RFC 8693 section 2.2.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    pub issued_token_type: &'static str,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The organization it is scoped to; null for an unscoped token.
    pub organization: Option<TokenOrganization>,
    /// Without a choice and with several organizations: those to choose from (exchange again
    /// with `organization_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub organizations: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOrganization {
    pub id: Uuid,
    pub slug: Option<String>,
    pub name: Option<String>,
    /// The membership's role; null for a tenant admin who is no member.
    pub role: Option<String>,
    /// The organization-wide effective permissions (all of them, unlike the token's claim).
    pub permissions: Vec<String>,
}

/// An error of `POST /auth/token` in the shape of RFC 6749 section 5.2, with Roster's code.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`, `invalid_target` (the
    /// organization is not one the user may see: 404), `temporarily_unavailable` or
    /// `server_error`.
    pub error: &'static str,
    pub error_description: String,
    /// Roster's code (`sql/ERRORS.md`).
    pub code: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            code: "invalid_input",
            description: description.into(),
        }
    }

    fn invalid_grant(code: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            code,
            description: description.into(),
        }
    }
}

impl From<ApiError> for OAuthError {
    fn from(error: ApiError) -> OAuthError {
        let status = error.status_code();
        let (status, oauth) = match status.as_u16() {
            401 => (StatusCode::BAD_REQUEST, "invalid_grant"),
            413 => (status, "invalid_request"),
            404 => (status, "invalid_target"),
            503 => (status, "temporarily_unavailable"),
            500..=599 => (status, "server_error"),
            _ => (StatusCode::BAD_REQUEST, "invalid_request"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Logged (with its cause) as every internal error is.
            let _ = error.error_response();
        }
        OAuthError {
            status,
            error: oauth,
            code: error.code(),
            description: match status {
                StatusCode::INTERNAL_SERVER_ERROR => "internal error".to_owned(),
                _ => error.to_string(),
            },
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(OAuthErrorBody {
                error: self.error,
                error_description: self.description.clone(),
                code: self.code,
            })
    }
}

/// The parameters of a form or JSON body.
fn parameters<T: serde::de::DeserializeOwned + Default>(
    request: &HttpRequest,
    body: &[u8],
) -> Result<T, String> {
    let content_type = request
        .mime_type()
        .ok()
        .flatten()
        .map(|mime| mime.essence_str().to_ascii_lowercase())
        .unwrap_or_default();
    match content_type.as_str() {
        "application/x-www-form-urlencoded" => {
            serde_urlencoded::from_bytes(body).map_err(|e| format!("malformed form: {e}"))
        }
        "application/json" => {
            let value: Value =
                serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
            if !value.is_object() {
                return Err("the body must be a JSON object".into());
            }
            serde_json::from_value(value).map_err(|e| format!("{e}"))
        }
        _ => {
            Err("Content-Type must be application/x-www-form-urlencoded or application/json".into())
        }
    }
}

/// Exchange an identity token for a Roster access token scoped to an organization (RFC 8693).
///
/// Claims: `iss`, `aud`, `sub`, `tid`, `org_id`, `org_slug`, `org_role`, `org_permissions` (at
/// most 50; `org_permissions_truncated` past that), `av`, `iat`, `exp`, `jti`. The token opens
/// its organization only, and is refused (401 `token_stale`) once the user's access there has
/// changed. Without `organization_id`: the last active organization, else the only one, else
/// an unscoped token and `organizations` to choose from.
#[utoipa::path(post, path = "/auth/token", tag = "tokens",
    request_body(content = ExchangeRequest, content_type = "application/x-www-form-urlencoded",
        description = "Also accepted as application/json."),
    responses(
        (status = 200, description = "The access token.", body = TokenResponse),
        (status = 400, description = "`invalid_request` (a parameter missing or malformed), \
            `unsupported_grant_type`, `invalid_grant` (the subject token is refused, or its user \
            does not exist).", body = OAuthErrorBody),
        (status = 404, description = "`invalid_target`: the organization does not exist or the \
            user may not see it.", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is over `BODY_LIMIT_BYTES`.", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`.", body = OAuthErrorBody),
    ))]
pub async fn exchange(
    request: HttpRequest,
    state: web::Data<AppState>,
    ring: web::Data<KeyRing>,
    verifier: web::Data<JwtVerifier>,
    body: Result<RawBody, ApiError>,
) -> Result<HttpResponse, OAuthError> {
    let RawBody(body) = body?;
    let params: ExchangeRequest =
        parameters(&request, &body).map_err(OAuthError::invalid_request)?;
    let required = |value: Option<String>, name: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::invalid_request(format!("{name}: required")))
    };
    let grant_type = required(params.grant_type, "grant_type")?;
    if grant_type != TOKEN_EXCHANGE {
        return Err(OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            code: "invalid_input",
            description: format!("grant_type: only {TOKEN_EXCHANGE} is supported"),
        });
    }
    let subject_token = required(params.subject_token, "subject_token")?;
    let subject_token_type = required(params.subject_token_type, "subject_token_type")?;
    if subject_token_type != JWT_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type: only {JWT_TOKEN_TYPE} is supported"
        )));
    }
    let organization = params
        .organization_id
        .filter(|v| !v.is_empty())
        .map(|v| Uuid::parse_str(&v))
        .transpose()
        .map_err(|_| OAuthError::invalid_request("organization_id: not a UUID"))?;
    if jsonwebtoken::decode_header(&subject_token).is_ok_and(|h| ring.recognises(&h)) {
        return Err(OAuthError::invalid_grant(
            "invalid_input",
            "subject_token: a Roster access token is no identity token (switch with POST /auth/switch)",
        ));
    }
    let user = match verifier.verify(&subject_token)? {
        Principal::User(user) => user,
        Principal::Service { .. } => {
            return Err(OAuthError::invalid_grant(
                "unauthenticated",
                "subject_token: a service token speaks for no user",
            ))
        }
    };
    Ok(issue(&state, &ring, user, organization, None).await?)
}

/// Switch organization: a new access token for another organization of the same user, with
/// the current access token (or an identity token) as the bearer. The new token expires no
/// later than an access token it replaces: switching does not extend a session.
#[utoipa::path(post, path = "/auth/switch", tag = "tokens", request_body = SwitchRequest,
    responses(
        (status = 200, description = "The access token.", body = TokenResponse),
        (status = 404, description = "`not_found`: the organization does not exist or the user may not see it.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn switch(
    Scoped { principal, scope }: Scoped,
    state: web::Data<AppState>,
    ring: web::Data<KeyRing>,
    body: Json<SwitchRequest>,
) -> Result<HttpResponse, ApiError> {
    let Principal::User(user) = principal else {
        return Err(ApiError::Invalid(
            "a service token speaks for no user: nothing to switch".into(),
        ));
    };
    issue(
        &state,
        &ring,
        user,
        Some(body.organization_id),
        scope.map(|s| s.expires),
    )
    .await
}

/// Signs the token of an exchange or a switch: one database round trip.
async fn issue(
    state: &AppState,
    ring: &KeyRing,
    user: Uuid,
    organization: Option<Uuid>,
    expires_by: Option<u64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.db.client().await?;
    let exchange = db::exchange_token(&client, user, organization).await?;
    drop(client);
    let now = jsonwebtoken::get_current_timestamp();
    let ttl = expires_by.map_or(ring.ttl_seconds, |exp| {
        exp.saturating_sub(now).min(ring.ttl_seconds)
    });
    let claims = AccessClaims::new(
        ring,
        user,
        exchange.tenant,
        exchange.organization,
        &exchange.access,
        now,
        ttl,
    );
    let access_token = ring
        .sign(&claims)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let response = TokenResponse {
        access_token,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: ttl,
        organization: exchange.organization.map(|id| TokenOrganization {
            id,
            slug: exchange.access.org_slug.clone(),
            name: exchange.organization_name.clone(),
            role: claims.org_role.clone(),
            permissions: exchange.access.permissions.clone(),
        }),
        organizations: exchange.choices,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(response))
}

/// `POST /auth/introspect`, as a form or JSON.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct IntrospectRequest {
    #[schema(value_type = String, required = true, min_length = 1)]
    pub token: Option<String>,
    /// Ignored: only Roster's access tokens are introspected.
    #[schema(value_type = String, required = false)]
    pub token_type_hint: Option<String>,
}

/// RFC 7662 section 2.2: `active` false for any token that is not a current Roster access
/// token the caller may know about, and nothing else then.
#[derive(Debug, Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten)]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<AccessClaims>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// Whether an access token is current (RFC 7662): its signature, expiry and authorization
/// version now, for services that verify offline with the JWKS but want exactness before a
/// sensitive action. A service introspects tokens of its tenant; a user its own.
#[utoipa::path(post, path = "/auth/introspect", tag = "tokens",
    request_body(content = IntrospectRequest, content_type = "application/x-www-form-urlencoded",
        description = "Also accepted as application/json."),
    responses(
        (status = 200, description = "`active`, and the token's claims when it is.", body = Introspection),
        (status = 400, description = "`bad_request`: `token` missing, or the body unreadable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn introspect(
    request: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    ring: web::Data<KeyRing>,
    verifier: web::Data<JwtVerifier>,
    RawBody(body): RawBody,
) -> Result<HttpResponse, ApiError> {
    let params: IntrospectRequest = parameters(&request, &body).map_err(ApiError::BadRequest)?;
    let token = params
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadRequest("token: required".into()))?;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = match ring.verify(&token, now, verifier.leeway()) {
        Ok(claims) if may_know(&principal, &claims) => Some((*claims).clone()),
        _ => None,
    };
    let claims = match claims {
        Some(claims) => current(&state, claims).await?,
        None => None,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Introspection {
            active: claims.is_some(),
            token_type: claims.as_ref().map(|_| "Bearer"),
            claims,
        }))
}

fn may_know(principal: &Principal, claims: &AccessClaims) -> bool {
    match principal {
        Principal::User(user) => *user == claims.sub,
        Principal::Service { tenant, .. } => *tenant == claims.tid,
    }
}

/// The claims, if their authorization version is still the current one.
async fn current(state: &AppState, claims: AccessClaims) -> Result<Option<AccessClaims>, ApiError> {
    match reads::token_is_current(state, &claims).await {
        Ok(current) => Ok(current.then_some(claims)),
        // The user is gone.
        Err(ApiError::Unauthenticated { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The public keys that verify Roster's access tokens: the signing key and the previous ones
/// (`TOKEN_PREVIOUS_KEYS`), each with its `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "A JWK Set (RFC 7517).", body = Object)))]
pub async fn jwks(ring: web::Data<KeyRing>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(ring.jwks().to_owned())
}
