//! Bearer JWT authentication. An identity token only says who the caller claims to be: a user
//! (`sub` = its id) or a service of one tenant (`sub` = `service:NAME`, `tid` = the tenant);
//! whether the user exists and what it may do is decided by the database on every request.
//! Roster's own access tokens (`tokens`) also name one organization, the only one they open,
//! and are refused once their authorization version is not the current one.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::settings::{JwtKey, JwtSettings, SettingsError, MIN_SECRET_BYTES};

/// The claims Roster checks itself, kept as JSON so that each refusal is a fixed text (serde's
/// messages quote the value). jsonwebtoken checks the signature, `iss` and `aud` (a string or an
/// array, RFC 7519 section 4.1.3).
#[derive(Deserialize)]
struct Checked {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    tid: Option<Value>,
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(Uuid),
    /// A service of one tenant: it may check, explain and look up access for any user of that
    /// tenant, and register the tenant's permissions; nothing else.
    Service {
        name: String,
        tenant: Uuid,
    },
}

/// The `sub` prefix of service tokens.
pub const SERVICE_PREFIX: &str = "service:";

/// A service's name: `^[a-z][a-z0-9_-]{0,62}$`.
pub fn valid_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `JWT_AUDIENCE=*`: any `aud`, or none, is accepted (an explicit choice, RFC 8725 section 3.9).
pub const ANY_AUDIENCE: &str = "*";

/// The claims `roster token` writes.
#[derive(Debug, Serialize)]
pub struct Claims {
    /// The user's id, or `service:NAME`.
    pub sub: String,
    /// A service's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
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

/// Checks tokens against the one configured key and algorithm, and Roster's token policy.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    times: TimePolicy,
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
        // exp, nbf and iat are checked by TimePolicy, with the lifetime that needs them anyway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let mut required = vec!["sub"];
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match settings.audience.as_deref() {
            Some(ANY_AUDIENCE) => validation.validate_aud = false,
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // An identity provider issues tokens for many services: without an audience, one
            // meant for any of them would be accepted here.
            None if algorithm == Algorithm::RS256 => {
                return Err(SettingsError {
                    name: "JWT_AUDIENCE",
                    problem: format!(
                        "required with JWT_PUBLIC_KEY: the aud the identity provider puts in tokens for Roster, or {ANY_AUDIENCE} to accept any (RFC 8725 section 3.9)"
                    ),
                });
            }
            // Validation's default: a token naming an audience is not for us (RFC 7519 4.1.3).
            None => {}
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtVerifier {
            key,
            validation,
            times: TimePolicy {
                leeway: settings.leeway_seconds,
                max_lifetime: settings.max_lifetime_seconds,
            },
        })
    }

    /// Clock skew tolerated on time claims (JWT_LEEWAY_SECONDS), Roster's tokens included.
    pub fn leeway(&self) -> u64 {
        self.times.leeway
    }

    /// The principal a valid token speaks for.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        self.check(token, jsonwebtoken::get_current_timestamp())
            .map_err(ApiError::invalid_token)
    }

    /// Why a token is refused, as one of a few fixed texts: never the library's message, which
    /// can quote the unverified token (`unknown variant ...` for an `alg` it does not know).
    fn check(&self, token: &str, now: u64) -> Result<Principal, &'static str> {
        let data = jsonwebtoken::decode::<Checked>(token, &self.key, &self.validation)
            .map_err(|e| reason(e.kind()))?;
        check_header(&data.header)?;
        self.times.check(&data.claims, now)?;
        let sub = data.claims.sub.as_ref().and_then(Value::as_str);
        match sub.and_then(|sub| sub.strip_prefix(SERVICE_PREFIX)) {
            Some(name) => {
                if !valid_service_name(name) {
                    return Err("malformed service name");
                }
                let tenant = data
                    .claims
                    .tid
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(|tid| Uuid::parse_str(tid).ok())
                    .ok_or("a service token needs tid, its tenant's id")?;
                Ok(Principal::Service {
                    name: name.to_owned(),
                    tenant,
                })
            }
            None => sub
                .and_then(|sub| Uuid::parse_str(sub).ok())
                .map(Principal::User)
                .ok_or("sub is not a UUID"),
        }
    }
}

/// `crit` lists extensions the recipient must understand or refuse the token (RFC 7515
/// section 4.1.11): Roster implements none. `typ` tells access tokens from other JWTs signed
/// by the same key (RFC 8725 section 3.11): absent, `JWT` or `at+jwt` (RFC 9068), compared as
/// media types are (case-insensitively, `application/` implied).
fn check_header(header: &Header) -> Result<(), &'static str> {
    if header.crit.is_some() {
        return Err("unsupported critical header");
    }
    let Some(typ) = &header.typ else {
        return Ok(());
    };
    let typ = typ.to_ascii_lowercase();
    match typ.strip_prefix("application/").unwrap_or(&typ) {
        "jwt" | "at+jwt" => Ok(()),
        _ => Err("unsupported token type"),
    }
}

/// The time claims, NumericDates (seconds, fractions allowed: RFC 7519 section 2).
struct TimePolicy {
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    leeway: u64,
    /// `exp` at most this long after `iat`, or after now without `iat`: a stolen token, or one
    /// an identity provider minted for years, stays useful for a bounded time.
    max_lifetime: u64,
}

impl TimePolicy {
    fn check(&self, claims: &Checked, now: u64) -> Result<(), &'static str> {
        let (now, leeway) = (now as f64, self.leeway as f64);
        let exp = numeric_date(&claims.exp, "malformed claim exp")?.ok_or("missing claim exp")?;
        let nbf = numeric_date(&claims.nbf, "malformed claim nbf")?;
        let iat = numeric_date(&claims.iat, "malformed claim iat")?;
        if exp < now - leeway {
            return Err("token expired");
        }
        if nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err("token not yet valid");
        }
        if iat.is_some_and(|iat| iat > now + leeway) {
            return Err("issued in the future");
        }
        if exp - iat.unwrap_or(now) > self.max_lifetime as f64 {
            return Err("lifetime over the maximum");
        }
        Ok(())
    }
}

fn numeric_date(
    value: &Option<Value>,
    malformed: &'static str,
) -> Result<Option<f64>, &'static str> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite())
            .map(Some)
            .ok_or(malformed),
        Some(_) => Err(malformed),
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

/// Signs a user's token for `roster token` (HS256 only: Roster never holds an identity
/// provider's private key).
pub fn issue_token(
    settings: &JwtSettings,
    user: Uuid,
    org: Option<Uuid>,
    ttl_seconds: u64,
) -> Result<String, SettingsError> {
    sign(settings, user.to_string(), None, org, ttl_seconds)
}

/// Signs a service's token for `roster token --service NAME --tenant TENANT`.
pub fn issue_service_token(
    settings: &JwtSettings,
    name: &str,
    tenant: Uuid,
    ttl_seconds: u64,
) -> Result<String, SettingsError> {
    if !valid_service_name(name) {
        return Err(SettingsError {
            name: "--service",
            problem: format!("{name:?} is not a service name: 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter"),
        });
    }
    sign(
        settings,
        format!("{SERVICE_PREFIX}{name}"),
        Some(tenant),
        None,
        ttl_seconds,
    )
}

fn sign(
    settings: &JwtSettings,
    sub: String,
    tid: Option<Uuid>,
    org: Option<Uuid>,
    ttl_seconds: u64,
) -> Result<String, SettingsError> {
    let JwtKey::Hs256Secret(secret) = &settings.key else {
        return Err(SettingsError {
            name: "JWT_SECRET",
            problem: "roster token signs with JWT_SECRET (HS256); with JWT_PUBLIC_KEY, tokens come from the identity provider".into(),
        });
    };
    if ttl_seconds > settings.max_lifetime_seconds {
        return Err(SettingsError {
            name: "--ttl",
            problem: format!(
                "{ttl_seconds} s is over JWT_MAX_LIFETIME_SECONDS ({} s): the app would refuse the token",
                settings.max_lifetime_seconds
            ),
        });
    }
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub,
        tid,
        exp: now + ttl_seconds,
        iat: Some(now),
        iss: settings.issuer.clone(),
        aud: settings.audience.clone().filter(|aud| aud != ANY_AUDIENCE),
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

/// The authenticated user: extracting it from a request (`extract`) checks the bearer token,
/// and refuses a service's (403): services only check, explain and look up access, and
/// register permissions, through the endpoints that take a [`Principal`].
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Uuid,
}

/// The organization a Roster access token is scoped to (None: an unscoped one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenScope {
    pub organization: Option<Uuid>,
    /// The token's `exp`.
    pub expires: u64,
}

impl TokenScope {
    /// 404 for an organization outside the token's scope, as if it did not exist.
    pub fn require(scope: Option<TokenScope>, org: Uuid) -> Result<(), ApiError> {
        match scope {
            Some(TokenScope { organization, .. }) if organization != Some(org) => {
                Err(ApiError::organization_not_found(org))
            }
            _ => Ok(()),
        }
    }
}

/// The principal with the scope of its token, for handlers that take an organization from
/// the body (or need the token's expiry).
#[derive(Debug, Clone)]
pub struct Scoped {
    pub principal: Principal,
    /// None: an identity or service token, scoped to nothing.
    pub scope: Option<TokenScope>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn time_policy_bounds_are_inclusive_and_named() {
        let policy = TimePolicy {
            leeway: 5,
            max_lifetime: 3600,
        };
        let now = 1_000_000;
        let cases: [(Value, Result<(), &str>); 12] = [
            (json!({"exp": now + 60, "iat": now}), Ok(())),
            (json!({"exp": now - 5}), Ok(())),
            (json!({"exp": now - 6}), Err("token expired")),
            (json!({"exp": now + 60, "nbf": now + 5}), Ok(())),
            (
                json!({"exp": now + 60, "nbf": now + 6}),
                Err("token not yet valid"),
            ),
            (json!({"exp": now + 60, "iat": now + 5}), Ok(())),
            (
                json!({"exp": now + 60, "iat": now + 6}),
                Err("issued in the future"),
            ),
            (json!({"exp": now + 3600, "iat": now}), Ok(())),
            (
                json!({"exp": now + 3601, "iat": now}),
                Err("lifetime over the maximum"),
            ),
            (json!({"exp": now + 3601}), Err("lifetime over the maximum")),
            (json!({"iat": now}), Err("missing claim exp")),
            (
                json!({"exp": now + 60, "nbf": "soon"}),
                Err("malformed claim nbf"),
            ),
        ];
        for (claims, expected) in cases {
            let checked: Checked = serde_json::from_value(claims.clone()).unwrap();
            assert_eq!(expected, policy.check(&checked, now), "claims {claims}");
        }
    }

    /// serde_json reads numbers exactly (`arbitrary_precision`): fractions and numbers beyond 64
    /// bits, in the header or the claims, still verify.
    #[test]
    fn fractional_and_big_numbers_in_a_token_verify() {
        let secret = b"a-test-secret-of-at-least-32-bytes-0123456789";
        let verifier = JwtVerifier::new(&JwtSettings {
            key: JwtKey::Hs256Secret(secret.to_vec()),
            issuer: None,
            audience: None,
            leeway_seconds: 5,
            max_lifetime_seconds: 3600,
        })
        .expect("a verifier");
        let user = Uuid::new_v4();
        let now = 1_000_000;
        let claims: Value = serde_json::from_str(&format!(
            r#"{{"sub": "{user}", "exp": 1000060.5, "nbf": 999999.5, "iat": 1000000.25, "n": 12345678901234567890123}}"#
        ))
        .unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.extras.insert("x", 1.5);
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
            .expect("sign");
        assert_eq!(Ok(Principal::User(user)), verifier.check(&token, now));
    }

    #[test]
    fn typ_is_a_media_type_compared_without_case_and_application_prefix() {
        for (typ, accepted) in [
            (None, true),
            (Some("JWT"), true),
            (Some("application/jwt"), true),
            (Some("at+jwt"), true),
            (Some("Application/AT+JWT"), true),
            (Some("refresh+jwt"), false),
            (Some("JOSE"), false),
            (Some(""), false),
        ] {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = typ.map(str::to_owned);
            assert_eq!(accepted, check_header(&header).is_ok(), "typ {typ:?}");
        }
    }
}
