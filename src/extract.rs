//! What handlers extract from a request besides the path and query: the caller (`Caller`,
//! `Principal`, `Scoped`: the bearer token verified, and a Roster access token checked to be
//! current), and the body (`Json`, actix's `web::Json` but with errors that name the field at
//! fault, `user_id: UUID parsing failed ...`, in the API's error shape; `RawBody` for forms).

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use serde::de::{DeserializeOwned, IgnoredAny};
use uuid::Uuid;

use crate::auth::{Caller, JwtVerifier, Principal, Scoped, TokenScope};
use crate::error::ApiError;
use crate::reads;
use crate::state::AppState;
use crate::tokens::{AccessClaims, KeyRing};

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Authenticating<Caller>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            match authenticate(&request).await?.0 {
                Principal::User(user_id) => Ok(Caller { user_id }),
                Principal::Service { .. } => Err(ApiError::service_refused(
                    request.method().as_str(),
                    request.match_pattern().as_deref().unwrap_or(request.path()),
                )),
            }
        })
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Authenticating<Principal>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move { Ok(authenticate(&request).await?.0) })
    }
}

/// Authentication of a request: immediate for identity and service tokens, one cached
/// lookup for Roster's access tokens (whether they are still current).
pub type Authenticating<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for Scoped {
    type Error = ApiError;
    type Future = Authenticating<Scoped>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let (principal, scope) = authenticate(&request).await?;
            Ok(Scoped { principal, scope })
        })
    }
}

/// The bearer token of a request.
pub fn bearer(request: &HttpRequest) -> Result<&str, ApiError> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::NoCredentials)?;
    value
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
        })
}

async fn authenticate(request: &HttpRequest) -> Result<(Principal, Option<TokenScope>), ApiError> {
    let token = bearer(request)?;
    let verifier = request
        .app_data::<web::Data<JwtVerifier>>()
        .ok_or_else(|| ApiError::Internal("JwtVerifier is not registered".into()))?;
    let now = jsonwebtoken::get_current_timestamp();
    let ours = request
        .app_data::<web::Data<KeyRing>>()
        .and_then(|ring| ring.verify_ours(token, now, verifier.leeway()));
    match ours {
        Some(claims) => {
            let claims = claims.map_err(ApiError::invalid_token)?;
            current_access_token(request, &claims).await
        }
        None => Ok((verifier.verify(token)?, None)),
    }
}

/// The user of a Roster access token that is valid, scoped to the path's organization (when
/// the path names one) and current: its `av` is the authorization version of its user and
/// organization now (401 `token_stale` otherwise). Asked of the cache: no database round trip
/// when warm.
async fn current_access_token(
    request: &HttpRequest,
    claims: &AccessClaims,
) -> Result<(Principal, Option<TokenScope>), ApiError> {
    let scope = TokenScope {
        organization: claims.org_id,
        expires: claims.exp,
    };
    if let Some(org) = request
        .match_info()
        .get("org_id")
        .and_then(|org| Uuid::parse_str(org).ok())
    {
        TokenScope::require(Some(scope), org)?;
    }
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("AppState is not registered".into()))?;
    if !reads::token_is_current(state, claims).await? {
        return Err(ApiError::TokenStale);
    }
    Ok((Principal::User(claims.sub), Some(scope)))
}

/// The body size limit, for messages: registered next to the `web::PayloadConfig` that
/// enforces it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A request body of JSON (`Content-Type: application/json` or `+json`), at most the
/// `web::PayloadConfig` limit.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Json<T>, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = matches!(
            request.mime_type(),
            Ok(Some(mime)) if mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
        );
        let body = RawBody::from_request(request, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::BadRequest(
                    "expected Content-Type: application/json".into(),
                ));
            }
            parse(&body.await?.0).map(Json)
        })
    }
}

/// A request body of any type, at most the `web::PayloadConfig` limit (413 in the API's
/// shape past it): the form bodies of the OAuth endpoints.
#[derive(Debug)]
pub struct RawBody(pub web::Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<RawBody, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = request.app_data::<BodyLimit>().map(|limit| limit.0);
        let body = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            body.await
                .map(RawBody)
                .map_err(|error| match error.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(match limit {
                        Some(limit) => format!("request body is over the limit of {limit} bytes"),
                        None => "request body is over the size limit".into(),
                    }),
                    _ => ApiError::BadRequest(format!("cannot read the request body: {error}")),
                })
        })
    }
}

/// 400 for JSON that cannot be read, 422 for JSON of the wrong shape, naming where.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_nul(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        // What decides is whether the body is JSON at all, not serde_json's category: it files
        // some shape errors under syntax (a number where an enum's string belongs is "expected
        // value"), and a wrong shape met before a syntax error under data.
        let shape = serde_json::from_slice::<IgnoredAny>(bytes).is_ok();
        match (shape, path.as_str()) {
            (true, ".") => ApiError::Invalid(inner.to_string()),
            (true, _) => ApiError::Invalid(format!("{path}: {inner}")),
            (false, _) => ApiError::BadRequest(format!("malformed JSON body: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::BadRequest(format!("malformed JSON body: {error}")))?;
    Ok(value)
}

/// PostgreSQL text cannot hold U+0000 (nor can jsonb): a string or key with one, anywhere in the
/// body, is refused here with 422 naming where, instead of reaching the database. Only bodies
/// that contain the escape at all are parsed a second time.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(()); // unreadable: the typed parse says why
    };
    match nul_path(&value, String::new()) {
        Some(path) => Err(ApiError::Invalid(format!(
            "{}: must not contain the NUL character (\\u0000)",
            if path.is_empty() { "." } else { &path }
        ))),
        None => Ok(()),
    }
}

/// Where the first string or key holding U+0000 is, as serde_path_to_error writes paths.
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let at = match path.is_empty() {
                true => key.replace('\0', "\\u0000"),
                false => format!("{path}.{}", key.replace('\0', "\\u0000")),
            };
            match key.contains('\0') {
                true => Some(at),
                false => nul_path(item, at),
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        user_id: uuid::Uuid,
        #[allow(dead_code)]
        role: Option<crate::domain::RoleKey>,
    }

    #[test]
    fn nul_characters_are_refused_naming_where() {
        let cases = [
            (r#"{"name": "a\u0000b"}"#, "name"),
            (
                r#"{"billing_address": {"city": "x\u0000"}}"#,
                "billing_address.city",
            ),
            (
                r#"{"metadata": {"tags": ["ok", "\u0000"]}}"#,
                "metadata.tags[1]",
            ),
            (r#"{"metadata": {"k\u0000": 1}}"#, "metadata.k\\u0000"),
            (r#""\u0000""#, "."),
        ];
        for (body, path) in cases {
            match refuse_nul(body.as_bytes()) {
                Err(ApiError::Invalid(message)) => assert!(
                    message.starts_with(&format!("{path}: ")),
                    "{body}: {message} should name {path}"
                ),
                other => panic!("{body} should be refused with 422, got {other:?}"),
            }
        }
        for body in [
            r#"{"name": "plain"}"#,
            r#"{"name": "escaped \\u0000 backslash"}"#,
        ] {
            assert!(refuse_nul(body.as_bytes()).is_ok(), "{body} has no NUL");
        }
    }

    #[test]
    fn errors_name_the_field_and_split_400_from_422() {
        let id = r#""user_id": "00000000-0000-0000-0000-000000000000""#;
        let role_number = format!("{{{id}, \"role\": 5}}");
        let role_object = format!("{{{id}, \"role\": {{}}}}");
        let cases: [(&str, &str, Option<&str>); 8] = [
            (r#"{"user_id": "nope"}"#, "422", Some("user_id")),
            (r#"{"user_id": 7}"#, "422", Some("user_id")),
            (r#"{"colour": "red"}"#, "422", Some("colour")),
            (&role_number, "422", Some("role")),
            (&role_object, "422", Some("role")),
            (r#"[1, 2"#, "400", None),
            (r#"{"user_id": "#, "400", None),
            (
                r#"{"user_id": "00000000-0000-0000-0000-000000000000"} x"#,
                "400",
                None,
            ),
        ];
        for (body, status, named) in cases {
            let error = parse::<Body>(body.as_bytes()).expect_err(body);
            let (actual, message) = match &error {
                ApiError::Invalid(m) => ("422", m),
                ApiError::BadRequest(m) => ("400", m),
                other => panic!("{body}: unexpected {other:?}"),
            };
            assert_eq!(
                status, actual,
                "body {body} should be a {status}: {message}"
            );
            if let Some(named) = named {
                assert!(
                    message.contains(named),
                    "body {body}: {message} should name {named}"
                );
            }
        }
    }
}
