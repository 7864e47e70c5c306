//! Bearer JWT authentication: every token the app must refuse is a 401 with `WWW-Authenticate`.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_page, base64url, error_body, error_of, hand_built_token, now, sign, spawn_app,
    spawn_app_with, AppOptions, Reply, TestApp, JWT_SECRET,
};

/// `claims` with `changes` merged in; a null in `changes` removes the claim.
fn merged(claims: &Value, changes: Value) -> Value {
    let mut claims = claims.clone();
    let object = claims.as_object_mut().expect("claims are an object");
    for (key, value) in changes.as_object().expect("changes are an object") {
        match value {
            Value::Null => object.remove(key),
            value => object.insert(key.clone(), value.clone()),
        };
    }
    claims
}

/// Sends `method path` with this Authorization header (none for `None`) and asserts a 401
/// with a Bearer challenge.
async fn assert_unauthenticated(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    context: &str,
) {
    let mut request = app.request(method.clone(), path);
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    if method == Method::POST {
        // A valid body, so that only the credentials are wrong.
        request = request.json(&json!({"name": "Acme", "slug": "acme"}));
    }
    let reply = Reply::read(request.send().await.expect("send the request")).await;
    let challenge = reply
        .header(WWW_AUTHENTICATE.as_str())
        .unwrap_or_default()
        .to_owned();
    let (code, message) = error_of(&reply, 401, context);
    assert_eq!(
        "unauthenticated", code,
        "{context}: code (message: {message})"
    );
    assert!(
        challenge.starts_with("Bearer "),
        "{context}: a 401 carries a Bearer challenge, got {challenge:?}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_for_a_live_user_are_401() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let org = app.new_org(&uma, "acme").await;
    let deleted = app.user("dan").await;
    app.soft_delete_user(deleted.id).await;
    let globex = app.create_tenant("globex").await;
    let orphan = app.user_in(globex, "gina", false).await;
    app.soft_delete_tenant(globex).await;

    let t = now();
    let valid = json!({"sub": uma.id, "exp": t + 600, "iat": t});
    let tampered = {
        let token = sign(Algorithm::HS256, JWT_SECRET, &valid);
        let parts: Vec<&str> = token.split('.').collect();
        let payload = merged(&valid, json!({"sub": Uuid::new_v4()}));
        format!(
            "{}.{}.{}",
            parts[0],
            base64url(payload.to_string().as_bytes()),
            parts[2]
        )
    };
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let hs256 = |claims: Value| bearer(sign(Algorithm::HS256, JWT_SECRET, &claims));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        (
            "the Basic scheme",
            Some(format!("Basic {}", base64url(b"uma:secret"))),
        ),
        ("Bearer without a token", Some("Bearer ".to_owned())),
        (
            "a token without a scheme",
            Some(sign(Algorithm::HS256, JWT_SECRET, &valid)),
        ),
        ("garbage", bearer("not-a-jwt".to_owned())),
        ("three garbage parts", bearer("a.b.c".to_owned())),
        (
            "a token signed with another secret",
            bearer(sign(
                Algorithm::HS256,
                b"another-secret-that-is-long-enough-0123456789",
                &valid,
            )),
        ),
        ("a token whose payload was altered", bearer(tampered)),
        (
            "a token expired a minute ago (leeway 5 s)",
            hs256(merged(&valid, json!({"exp": t - 60}))),
        ),
        (
            "a token valid only from a minute from now",
            hs256(merged(&valid, json!({"nbf": t + 60}))),
        ),
        (
            "a token without sub",
            hs256(merged(&valid, json!({"sub": null}))),
        ),
        (
            "a token without exp",
            hs256(merged(&valid, json!({"exp": null}))),
        ),
        (
            "a token whose sub is not a uuid",
            hs256(merged(&valid, json!({"sub": "uma"}))),
        ),
        (
            "an unsigned token (alg none)",
            bearer(hand_built_token(
                &json!({"alg": "none", "typ": "JWT"}),
                &valid,
                "",
            )),
        ),
        (
            "an HS384 token (HS256 configured)",
            bearer(sign(Algorithm::HS384, JWT_SECRET, &valid)),
        ),
        (
            "an RS256 header (HS256 configured)",
            bearer(hand_built_token(
                &json!({"alg": "RS256", "typ": "JWT"}),
                &valid,
                &base64url(b"not an RSA signature"),
            )),
        ),
        (
            "a valid token of a deleted user",
            bearer(app.token_for(deleted.id)),
        ),
        (
            "a valid token of a user of a deleted tenant",
            bearer(app.token_for(orphan.id)),
        ),
        (
            "a valid token of an unknown user",
            bearer(app.token_for(Uuid::new_v4())),
        ),
    ];

    let endpoints = [
        (Method::GET, "/organizations".to_owned()),
        (Method::POST, "/organizations".to_owned()),
        (Method::GET, format!("/organizations/{org}")),
        (Method::GET, format!("/organizations/{org}/members")),
        (Method::GET, "/tenant/organizations".to_owned()),
    ];
    for (description, authorization) in &cases {
        for (method, path) in &endpoints {
            let context = format!("{method} {path} with {description} should be 401");
            assert_unauthenticated(
                &app,
                method.clone(),
                path,
                authorization.as_deref(),
                &context,
            )
            .await;
        }
    }

    // The control: the untampered token works, under either spelling of the scheme.
    for scheme in ["Bearer", "bearer"] {
        let response = app
            .request(Method::GET, "/organizations")
            .header(
                AUTHORIZATION,
                format!("{scheme} {}", sign(Algorithm::HS256, JWT_SECRET, &valid)),
            )
            .send()
            .await
            .expect("send the request");
        assert_page(response, &format!("a valid token under {scheme}")).await;
    }
}

#[tokio::test]
async fn configured_issuer_and_audience_are_required_and_checked() {
    let issuer = "https://id.example.com/";
    let audience = "roster-api";
    let app = spawn_app_with(AppOptions {
        issuer: Some(issuer.into()),
        audience: Some(audience.into()),
        ..AppOptions::default()
    })
    .await;
    let uma = app.user("uma").await;
    let t = now();
    let bare = json!({"sub": uma.id, "exp": t + 600, "iat": t});
    let right = merged(&bare, json!({"iss": issuer, "aud": audience}));

    let cases = [
        ("the token roster issues", uma.token.clone(), 200),
        (
            "the right iss and aud",
            sign(Algorithm::HS256, JWT_SECRET, &right),
            200,
        ),
        (
            "aud as an array holding ours (RFC 7519 4.1.3)",
            sign(
                Algorithm::HS256,
                JWT_SECRET,
                &merged(&right, json!({"aud": ["billing", audience]})),
            ),
            200,
        ),
        (
            "neither iss nor aud",
            sign(Algorithm::HS256, JWT_SECRET, &bare),
            401,
        ),
        (
            "no iss",
            sign(
                Algorithm::HS256,
                JWT_SECRET,
                &merged(&right, json!({"iss": null})),
            ),
            401,
        ),
        (
            "no aud",
            sign(
                Algorithm::HS256,
                JWT_SECRET,
                &merged(&right, json!({"aud": null})),
            ),
            401,
        ),
        (
            "a wrong iss",
            sign(
                Algorithm::HS256,
                JWT_SECRET,
                &merged(&right, json!({"iss": "https://evil.example.com/"})),
            ),
            401,
        ),
        (
            "a wrong aud",
            sign(
                Algorithm::HS256,
                JWT_SECRET,
                &merged(&right, json!({"aud": "billing"})),
            ),
            401,
        ),
    ];
    for (description, token, status) in cases {
        let context = format!("a token with {description} should get {status}");
        let response = app.list_organizations(&token, "").await;
        if status == 200 {
            assert_page(response, &context).await;
        } else {
            let challenge = response.headers().contains_key(WWW_AUTHENTICATE);
            let (code, _) = error_body(response, status, &context).await;
            assert_eq!("unauthenticated", code, "{context}");
            assert!(challenge, "{context}: a 401 carries WWW-Authenticate");
        }
    }
}

/// A 401 says why in a few fixed words, never with text from the token: jsonwebtoken's errors
/// echo the unverified header (`unknown variant ...`), and CR LF from there made
/// `WWW-Authenticate` fail to build (a 500, text/plain, not logged).
#[tokio::test]
async fn a_401_never_echoes_the_token() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let t = now();
    let valid = json!({"sub": uma.id, "exp": t + 600, "iat": t});
    let marker = "X-Injected";
    let hs256 = |claims: Value| sign(Algorithm::HS256, JWT_SECRET, &claims);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "an alg holding CR LF and a header line",
            hand_built_token(
                &json!({"alg": "HS256\r\nX-Injected: yes", "typ": "JWT"}),
                &valid,
                "c2ln",
            ),
            "malformed token",
        ),
        (
            "an unknown alg holding quotes",
            hand_built_token(
                &json!({"alg": "X-Injected\", error=\"none"}),
                &valid,
                "c2ln",
            ),
            "malformed token",
        ),
        (
            "a header that is a string",
            hand_built_token(&json!("X-Injected"), &valid, "c2ln"),
            "malformed token",
        ),
        (
            "a signed token whose sub holds CR LF",
            hs256(merged(&valid, json!({"sub": "\r\nX-Injected: yes"}))),
            "sub is not a UUID",
        ),
        (
            "a signed token whose sub holds quotes and a backslash",
            hs256(merged(&valid, json!({"sub": "\"X-Injected\\"}))),
            "sub is not a UUID",
        ),
        (
            "a signed token whose exp is text",
            hs256(merged(&valid, json!({"exp": "X-Injected"}))),
            "malformed claim exp",
        ),
        (
            "a signed token whose payload is not an object",
            hs256(json!(["X-Injected\r\n"])),
            "malformed token",
        ),
    ];
    for (description, token, reason) in cases {
        let context = format!("GET /organizations with {description}");
        let reply = Reply::read(app.list_organizations(&token, "").await).await;
        let (code, message) = error_of(&reply, 401, &context);
        assert_eq!("unauthenticated", code, "{context}: code");
        let challenge = reply
            .header(WWW_AUTHENTICATE.as_str())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            format!(
                "Bearer realm=\"roster\", error=\"invalid_token\", error_description=\"{reason}\""
            ),
            challenge,
            "{context}: the challenge gives a fixed reason"
        );
        for (what, text) in [("challenge", &challenge), ("message", &message)] {
            assert!(
                !text.contains(marker) && !text.contains(['\r', '\n', '\\']),
                "{context}: the {what} must not echo the token, got {text:?}"
            );
        }
        assert!(
            !reply.headers.contains_key(marker),
            "{context}: no header was injected"
        );
    }
}

/// Signs `claims` with the app's secret under a header of the test's making.
fn sign_with_header(header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(JWT_SECRET))
        .expect("sign test claims")
}

/// What a signature alone does not make acceptable (RFC 8725): critical extensions Roster does
/// not implement, tokens of another type, lifetimes beyond JWT_MAX_LIFETIME_SECONDS (24 h by
/// default) counted from `iat` (or from now without one), `iat` in the future, and an `aud`
/// naming someone when no audience is configured (RFC 7519 section 4.1.3).
#[tokio::test]
async fn token_policy_refuses_what_a_signature_does_not_make_acceptable() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let t = now();
    let day = 24 * 3600;
    let valid = json!({"sub": uma.id, "exp": t + 600, "iat": t});
    let hs256 = |claims: Value| sign(Algorithm::HS256, JWT_SECRET, &claims);
    let header = |changes: &dyn Fn(&mut Header)| {
        let mut header = Header::new(Algorithm::HS256);
        changes(&mut header);
        header
    };
    let typed = |typ: Option<&str>| {
        let typ = typ.map(str::to_owned);
        sign_with_header(&header(&|h| h.typ = typ.clone()), &valid)
    };
    let cases: Vec<(&str, String, Result<(), &str>)> = vec![
        (
            "an unknown critical header parameter",
            sign_with_header(
                &header(&|h| {
                    h.crit = Some(vec!["exp_hint".into()]);
                    h.extras.insert("exp_hint", 1);
                }),
                &valid,
            ),
            Err("unsupported critical header"),
        ),
        (
            "crit b64 (RFC 7797, unencoded payload)",
            sign_with_header(
                &header(&|h| {
                    h.crit = Some(vec!["b64".into()]);
                    h.extras.insert("b64", false);
                }),
                &valid,
            ),
            Err("unsupported critical header"),
        ),
        (
            "typ refresh+jwt",
            typed(Some("refresh+jwt")),
            Err("unsupported token type"),
        ),
        (
            "typ secevent+jwt (RFC 8417)",
            typed(Some("secevent+jwt")),
            Err("unsupported token type"),
        ),
        ("no typ", typed(None), Ok(())),
        ("typ JWT", typed(Some("JWT")), Ok(())),
        (
            "typ jwt (media types ignore case)",
            typed(Some("jwt")),
            Ok(()),
        ),
        ("typ at+jwt (RFC 9068)", typed(Some("at+jwt")), Ok(())),
        (
            "typ application/at+jwt",
            typed(Some("application/at+jwt")),
            Ok(()),
        ),
        (
            "exp in the year 3000",
            hs256(merged(&valid, json!({"exp": 32_503_680_000_u64}))),
            Err("lifetime over the maximum"),
        ),
        (
            "iat ten years in the future",
            hs256(merged(&valid, json!({"iat": t + 10 * 365 * day}))),
            Err("issued in the future"),
        ),
        (
            "iat 3 s in the future (leeway 5 s)",
            hs256(merged(&valid, json!({"iat": t + 3}))),
            Ok(()),
        ),
        (
            "iat ten years ago, exp in 10 minutes",
            hs256(merged(&valid, json!({"iat": t - 10 * 365 * day}))),
            Err("lifetime over the maximum"),
        ),
        (
            "exactly the maximum lifetime from iat",
            hs256(merged(&valid, json!({"exp": t + day}))),
            Ok(()),
        ),
        (
            "no iat and exp in 25 h",
            hs256(merged(&valid, json!({"iat": null, "exp": t + day + 3600}))),
            Err("lifetime over the maximum"),
        ),
        (
            "no iat and exp in 23 h",
            hs256(merged(&valid, json!({"iat": null, "exp": t + day - 3600}))),
            Ok(()),
        ),
        (
            "fractional exp and iat (NumericDate, RFC 7519 section 2)",
            hs256(merged(
                &valid,
                json!({"exp": t as f64 + 600.5, "iat": t as f64 + 0.25}),
            )),
            Ok(()),
        ),
        (
            "iat that is text",
            hs256(merged(&valid, json!({"iat": "yesterday"}))),
            Err("malformed claim iat"),
        ),
        (
            "an aud while none is configured",
            hs256(merged(&valid, json!({"aud": "billing"}))),
            Err("wrong audience"),
        ),
        (
            "an aud array while none is configured",
            hs256(merged(&valid, json!({"aud": ["billing", "roster"]}))),
            Err("wrong audience"),
        ),
        ("the token roster issues", uma.token.clone(), Ok(())),
    ];
    for (description, token, expected) in cases {
        let context = format!("GET /organizations with {description}");
        let response = app.list_organizations(&token, "").await;
        let Err(reason) = expected else {
            assert_page(response, &format!("{context} should be 200")).await;
            continue;
        };
        let reply = Reply::read(response).await;
        let (code, _) = error_of(&reply, 401, &format!("{context} should be 401"));
        assert_eq!("unauthenticated", code, "{context}");
        let challenge = reply.header(WWW_AUTHENTICATE.as_str()).unwrap_or_default();
        assert!(
            challenge.ends_with(&format!("error_description=\"{reason}\"")),
            "{context}: refused as {reason:?}, got {challenge:?}"
        );
    }
}

/// `roster token` signs only what the app accepts: its lifetime is at most
/// JWT_MAX_LIFETIME_SECONDS (24 h by default).
#[tokio::test]
async fn roster_token_refuses_a_ttl_over_the_maximum_lifetime() {
    let app = spawn_app().await;
    let uma = app.user("uma").await;
    let day = 24 * 3600;
    let longest = roster::auth::issue_token(&app.jwt, uma.id, None, day)
        .expect("a ttl of exactly the maximum lifetime is signed");
    assert_page(
        app.list_organizations(&longest, "").await,
        "a token roster issued for the maximum lifetime should be accepted",
    )
    .await;
    let error = roster::auth::issue_token(&app.jwt, uma.id, None, day + 1)
        .expect_err("a ttl over the maximum lifetime should be refused");
    assert_eq!("--ttl", error.name, "the error names the option: {error}");
    assert!(
        error.problem.contains("JWT_MAX_LIFETIME_SECONDS"),
        "the error names the setting that caps it: {error}"
    );
}
