//! Bearer JWT authentication. A token only says who the caller claims to be; whether that user
//! exists and what it may do is decided by the database on every request.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::settings::{JwtKey, JwtSettings, SettingsError, MIN_SECRET_BYTES};

/// The only claim Roster reads itself; jsonwebtoken checks `exp`, `nbf`, `iss` and `aud`
/// (which may be a string or an array, RFC 7519 section 4.1.3). Kept as JSON so that a `sub`
/// that is not a UUID is refused with a fixed text, not with serde's, which quotes it.
#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    sub: Option<Value>,
}

/// The claims `roster token` writes.
#[derive(Debug, Serialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Informational only: authorization never comes from claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
}

/// Checks tokens against the one configured key and algorithm.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    pub fn new(settings: &JwtSettings) -> Result<JwtVerifier, SettingsError> {
        let (key, algorithm) = match &settings.key {
            JwtKey::Hs256Secret(secret) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(SettingsError {
                        name: "JWT_SECRET",
                        problem: format!("must be at least {MIN_SECRET_BYTES} bytes"),
                    });
                }
                (DecodingKey::from_secret(secret), Algorithm::HS256)
            }
            JwtKey::Rs256PublicKeyPem(pem) => (
                DecodingKey::from_rsa_pem(pem).map_err(|e| SettingsError {
                    name: "JWT_PUBLIC_KEY",
                    problem: format!("not an RSA public key in PEM form: {e}"),
                })?,
                Algorithm::RS256,
            ),
        };
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp", "sub"];
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_seconds;
        validation.validate_aud = settings.audience.is_some();
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = &settings.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtVerifier { key, validation })
    }

    /// The user a valid token speaks for.
    pub fn verify(&self, token: &str) -> Result<Uuid, ApiError> {
        self.check(token).map_err(ApiError::invalid_token)
    }

    /// Why a token is refused, as one of a few fixed texts: never the library's message, which
    /// can quote the unverified token (`unknown variant ...` for an `alg` it does not know).
    fn check(&self, token: &str) -> Result<Uuid, &'static str> {
        let data = jsonwebtoken::decode::<Subject>(token, &self.key, &self.validation)
            .map_err(|e| reason(e.kind()))?;
        data.claims
            .sub
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|sub| Uuid::parse_str(sub).ok())
            .ok_or("sub is not a UUID")
    }
}

/// jsonwebtoken's error kinds, by what a client can do about them.
fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed token",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => "wrong algorithm",
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidSubject => "wrong subject",
        // The claim names come from our Validation, not from the token; matched anyway, so
        // that only literals reach the response.
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "missing claim exp",
            "sub" => "missing claim sub",
            "iss" => "missing claim iss",
            "aud" => "missing claim aud",
            _ => "missing claim",
        },
        ErrorKind::InvalidClaimFormat(claim) => match claim.as_str() {
            "exp" => "malformed claim exp",
            "nbf" => "malformed claim nbf",
            _ => "malformed claim",
        },
        _ => "invalid token",
    }
}

/// Signs a token for `roster token` (HS256 only: Roster never holds an identity provider's
/// private key).
pub fn issue_token(
    settings: &JwtSettings,
    user: Uuid,
    org: Option<Uuid>,
    ttl_seconds: u64,
) -> Result<String, SettingsError> {
    let JwtKey::Hs256Secret(secret) = &settings.key else {
        return Err(SettingsError {
            name: "JWT_SECRET",
            problem: "roster token signs with JWT_SECRET (HS256); with JWT_PUBLIC_KEY, tokens come from the identity provider".into(),
        });
    };
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: user,
        exp: now + ttl_seconds,
        iat: Some(now),
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        org,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| SettingsError {
        name: "JWT_SECRET",
        problem: format!("cannot sign: {e}"),
    })
}

/// The authenticated caller: extracting it from a request checks the bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Uuid,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(request))
    }
}

fn authenticate(request: &HttpRequest) -> Result<Caller, ApiError> {
    let verifier = request
        .app_data::<web::Data<JwtVerifier>>()
        .ok_or_else(|| ApiError::Internal("JwtVerifier is not registered".into()))?;
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::NoCredentials)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthenticated {
            reason: "expected Authorization: Bearer <token>",
            message: "expected Authorization: Bearer <token>".into(),
        })?;
    Ok(Caller {
        user_id: verifier.verify(token)?,
    })
}
