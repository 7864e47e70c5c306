//! RS256: the app holds only the identity provider's public key. Tokens signed with the matching
//! private key pass; anything else is a 401, notably an HS256 token keyed with the public key's
//! PEM text, which a verifier that trusts the token's `alg` would accept (algorithm confusion,
//! RFC 8725 section 2.1).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::WWW_AUTHENTICATE;
use roster::settings::{JwtKey, JwtSettings};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_page, error_of, now, sign, spawn_app_with_jwt, Reply};

// TEST-ONLY KEYS. Generated once for these tests (`openssl genrsa -out k.pem 2048 && openssl rsa
// -in k.pem -pubout`); they protect nothing and must never be used outside this file.

/// TEST ONLY: the "identity provider's" public key, the one the app is configured with.
const TEST_ONLY_PUBLIC_KEY_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyCwHjE5LnN6cKjan/AVk
OMh9SlZWkMZElz10ZISQ4EuQp8JghMKfDXn+BEBgvxUn1MfHX1UWZj+eTQTc54Qa
AeorikXLBy1KIUbBn0foKQvqPiSBNi88qCWtNSWmVkRRoF/0MqjG9MHjUE+H8dRs
D0VIsVozzFwIUpgGCmk8bwNR02kCZnq4LqVrA6QS4RuBGxxyaXrrgZ9L9QZM4onc
r5cvoyK4tNsLwurciFS+VIhX4nknG9FvHD6v4OYfjQAO0FPOiGlB/PyrGs0/OXCU
soN5wmSbU7y8lnDZSK8OD6ZjpIYbYHiXKFM1xIROtV8Y9nhqzQ52FglAq4wE0hHR
9wIDAQAB
-----END PUBLIC KEY-----
";

/// TEST ONLY: the private half of `TEST_ONLY_PUBLIC_KEY_PEM`.
const TEST_ONLY_PRIVATE_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDILAeMTkuc3pwq
Nqf8BWQ4yH1KVlaQxkSXPXRkhJDgS5CnwmCEwp8Nef4EQGC/FSfUx8dfVRZmP55N
BNznhBoB6iuKRcsHLUohRsGfR+gpC+o+JIE2LzyoJa01JaZWRFGgX/QyqMb0weNQ
T4fx1GwPRUixWjPMXAhSmAYKaTxvA1HTaQJmergupWsDpBLhG4EbHHJpeuuBn0v1
Bkziidyvly+jIri02wvC6tyIVL5UiFfieScb0W8cPq/g5h+NAA7QU86IaUH8/Ksa
zT85cJSyg3nCZJtTvLyWcNlIrw4PpmOkhhtgeJcoUzXEhE61Xxj2eGrNDnYWCUCr
jATSEdH3AgMBAAECggEAQADsDO2/+ZGoR0sgnVGwAQQCI7HFjhcHOYCZ5cYJeN5Q
i4N4TxrXtnxqPzvCc3a1PLEAS7guKFVxLVk/tPslQbV5ZIX6a/oMOOWh5WcdkXpQ
1LvhYMzrzSv23QaD0BOaMfhcYZJbw0j3gOddJXLxdlSF8MdRxqcqthYL4GpTu363
Z8HE8ywbgTiXICaOoc/LmwoDKE3eCCtlTYCWFOrUgZ54FBdzf7w88qr2/jOU14H5
BjU4dLieIn7subf9Jgr33ZRdA/BFdzwJMxycntb7PuXiEA/Stl1Id2Qom5Cfl8rC
RRoknjYqV7aky/kkzSmjthqY9HQ8w/JLxrgMzN+g4QKBgQD/kBtKOaWy46nBc1wA
HHbNQ9DzwgzMbdrfqTM7Cpep4SCW0vkLjTp0E9Byul5sd/dJ+KkqX+2HIIHHhI7S
xUZgacBB856bYY0X88ZC+BnUyBG52m324hjL0HpSgGhhMUEIKyqZogz4N8jL1RmC
ZlpyUBMPBI5bgoqjrA0L4cPmcQKBgQDIg6vHbzd6iDlXCxMzyQYgDuKmJYe5MJsG
+PXUx07ea6rgLQ1A09MDt47kGnr0mTsOCIWqS/K6DB6mgUzFUk9DWgbtnUp3/pSA
Hfof35xJK+AKxTuez0sXQn3vl6aluqhtDjZcAJODgKLjxs9Lh3dICP4myWbvUJIs
7zm7+oAC5wKBgQC0lzmhluDva49eo00kyvhsjnqOddajcxGSsTcBhrerlOl5ivXv
4smmkwXevLHSxmdZvzyTNBxeO2tZ+OMQL9VOdgwkzqmKtUGF5n54fmeKhCJ6ic7h
Ad5x0A1QVWrtG2gQBKjiza+Ki6j52Mlg60EIvGrrVtXd9n5PsFm7xrqvEQKBgHRy
Y1RS9nkmm4Y9XE16tR/xBRdQPF4EKEQIWVvU06zAAmBmSYgYfDdwZn96EWXzhyRD
Nr0Llk8Nss8n0BnYD0giBFwCOLkvE7bDsfrItc6YuGgI2vMDl6xOZSy7eYBNwnpz
AoaznveDwRVe5AwNA+zFrDOCS1E4DWwjEfhlJeqJAoGBANyT+LIPQdwh5s2scjNH
bax+k/2NhBFe+zcORZRr2RIipqyeQ8VYdGhrbhdVsgOKRc+fV3rAfLcQRPI/vyDz
nomTqBT02S1vJtRFT/2dfAz+1mocxjqSPViNgHtNgyENFkPBAm430R4ys5slXfYi
KyncdI/f0eoCz/K6C53jeEYn
-----END PRIVATE KEY-----
";

/// TEST ONLY: an unrelated RSA key, standing for an attacker's.
pub(crate) const TEST_ONLY_OTHER_PRIVATE_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCkprSSpYOjkyw6
iNBlX6QXCe7aANDSq11jHvCLTRlwiIgehH/pR2OLnX1tH9YfiOu0Ug8iCqUo5YhV
FI9gZNd68Q9D7K8xs6kZrH0egZMRbwcsSZ8pADh+wMo25VrltI29VcGi5O/fykH3
WMA1XwBIhCxfPzsfTXk7Jc2GoYmyDi+xeutyeeMroF5Afx6jtDIoAvPBEOZ33r7F
xgnD6c3eHV+/PqhRsFlIEOUmaUckoIaoe7Z0rOt85XGNzg0FBk+DaxKm0gDH96lJ
0K848yvZhGnauKfXyvuAJMTPCcNvItAGmgCRgUeD8S3oPdnaN0YD/GBbGwU5iorc
zq+H54X1AgMBAAECggEAH1e6nQXT4sID09qybPHBXz9dT/OCzO+hFdrQaHwTQShE
XSbU4Jfd27htpWW/kX4zfD54sf67xOa4xpVk27Emkbkssj3udbQhFwmOQc3hrJpp
j6UuHpRzrLFPbRbI8Fwn9ShLdZJGFWA/oXGsGRzOBX/foHv9aa6KSted4aiDeTjK
ufRRewVKUIfDUoGmYcr5SzEvCkhQ/XLAwrHUQCoTULuD0aHJGn8goFXhDPyYpCNb
juHqTAk1gxhPFRjpfMwv/MkOH2JD3YL6o7pefuS6qOJ9AOYlG+/G7Oov/FWCUY1T
j2IZMJ82Wo5vZFKXUFABlJ6585DeouJkbvs9d5pZawKBgQDdTBOTK33YvG8qjvUt
ED6/p+ASfJQdLy/bZZA5pw7esJGKz8RT66X8ye3ysF4pJ290HcEYp1Aa0snx2HeP
tAKQXeqSNHaAn9KbKq3OQj5x3+09hv59NxgkmRquUHl/xpsnnppUJv2VktOEOo9a
SBK+ysWBJGrDr2i1x9Whas3LowKBgQC+eJbUeA2Ww/rrMKbjxF8meD8m7JJObydR
K5rTKPx5mdr8ywBCpI+Td5cny8Dcsvr3gwjQtr/Iex6qZG/fDMqkr6yKPxHG0ADa
uXf4teDDAwQ661PaP5QngIH/89Yxrm0vOEPz+c8jX0MyAm40p01/wGUvQcsqBKhl
vebqk2yBhwKBgQCwf7LFGFUA/hlzyh1F2cUSOyR92hqPxEjZJYIIWXOErTMHkXo2
rKXwnmVHwN7419kOtYSC0z8ShbhHSaziUmIRHrat8WXqZI4m77072p3PWRfwkLB8
0epRlkMvcEPXY2HwEZFpOMfb+gT1W3dmPEGnJjasL41vkYFkKoP6gCKvHQKBgClm
grpaAfIkVRTr9UqKs3fkKS3nvAFqbaxaAwQk44P26j+KTFsv87lFBEj1I82U5bII
/FCJeHQ2Nrsoq5xa5m0XdjRycwW4zoa8S5R2zAz3SeMYpZhJu4U+jIM61/Lii/74
huSwBtMUcMGc/6FYQCMliZjU/zj53DSJK3kPZEVfAoGAcJf3ekpf2MXugrlCFjZk
x3cTtelQy4SjZru1dxumuY+OHslTtIJqwWluGsgbbsj+qFjwdkwqQa2HVVn4Ztmz
2GRGddMKO/y5KI5BPvwwEpSM6HAa5lh5GgazKQ4eiOrHUlGxUMcTf731vRDwhrFL
dLR93dOsjLuDJ6tvJhuY5Jk=
-----END PRIVATE KEY-----
";

fn rs256_settings() -> JwtSettings {
    JwtSettings {
        key: JwtKey::Rs256PublicKeyPem(TEST_ONLY_PUBLIC_KEY_PEM.as_bytes().to_vec()),
        issuer: None,
        // Required with a public key; these tests' tokens carry no aud.
        audience: Some("*".into()),
        leeway_seconds: 5,
        max_lifetime_seconds: roster::settings::DEFAULT_JWT_MAX_LIFETIME_SECONDS,
    }
}

/// Signs `claims` with an RSA private key in PEM form.
fn sign_rsa(algorithm: Algorithm, private_key_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).expect("parse a test RSA key");
    jsonwebtoken::encode(&Header::new(algorithm), claims, &key).expect("sign test claims")
}

#[tokio::test]
async fn only_rs256_tokens_signed_with_the_configured_key_are_accepted() {
    let app = spawn_app_with_jwt(rs256_settings()).await;
    let uma = app.create_user(app.tenant, "uma", false).await;
    let t = now();
    let valid = json!({"sub": uma, "exp": t + 600, "iat": t});
    let expired = json!({"sub": uma, "exp": t - 60, "iat": t - 660});

    let cases = [
        (
            "RS256 signed with the provider's private key",
            sign_rsa(Algorithm::RS256, TEST_ONLY_PRIVATE_KEY_PEM, &valid),
            200,
        ),
        (
            "HS256 keyed with the public key's PEM text (algorithm confusion)",
            sign(
                Algorithm::HS256,
                TEST_ONLY_PUBLIC_KEY_PEM.as_bytes(),
                &valid,
            ),
            401,
        ),
        (
            "RS256 expired a minute ago (leeway 5 s)",
            sign_rsa(Algorithm::RS256, TEST_ONLY_PRIVATE_KEY_PEM, &expired),
            401,
        ),
        (
            "RS256 signed with another RSA key",
            sign_rsa(Algorithm::RS256, TEST_ONLY_OTHER_PRIVATE_KEY_PEM, &valid),
            401,
        ),
        (
            "RS384 signed with the provider's private key (only RS256 is configured)",
            sign_rsa(Algorithm::RS384, TEST_ONLY_PRIVATE_KEY_PEM, &valid),
            401,
        ),
    ];
    for (description, token, status) in cases {
        let context = format!("GET /organizations with a token {description} should get {status}");
        let response = app.list_organizations(&token, "").await;
        if status == 200 {
            assert_page(response, &context).await;
            continue;
        }
        let reply = Reply::read(response).await;
        let challenge = reply
            .header(WWW_AUTHENTICATE.as_str())
            .unwrap_or_default()
            .to_owned();
        let (code, message) = error_of(&reply, status, &context);
        assert_eq!(
            "unauthenticated", code,
            "{context}: code (message: {message})"
        );
        assert!(
            challenge.starts_with("Bearer "),
            "{context}: a 401 carries a Bearer challenge, got {challenge:?}"
        );
    }
}

#[test]
fn issue_token_refuses_to_sign_with_only_a_public_key() {
    let error = roster::auth::issue_token(&rs256_settings(), Uuid::new_v4(), None, 600)
        .expect_err("with only an RS256 public key there is nothing to sign with");
    assert_eq!(
        "JWT_SECRET", error.name,
        "the error names the setting that would make signing possible: {error}"
    );
}

/// An identity provider's tokens are meant for many services: without JWT_AUDIENCE, a token
/// for any of them would do here (RFC 8725 section 3.9). Start-up refuses unless the audience
/// is named, or `*` says that any will do. (`JwtVerifier::new` is what `Application::build` and
/// `JwtSettings::from_env` check first.)
#[test]
fn an_identity_providers_key_needs_an_audience_or_an_explicit_star() {
    let unset = JwtSettings {
        audience: None,
        ..rs256_settings()
    };
    let error = roster::auth::JwtVerifier::new(&unset)
        .err()
        .expect("JWT_PUBLIC_KEY without JWT_AUDIENCE should not start");
    assert_eq!("JWT_AUDIENCE", error.name, "the error names it: {error}");
    for audience in ["*", "roster-api"] {
        let settings = JwtSettings {
            audience: Some(audience.into()),
            ..rs256_settings()
        };
        if let Err(error) = roster::auth::JwtVerifier::new(&settings) {
            panic!("JWT_AUDIENCE={audience} should start: {error}");
        }
    }
}

#[tokio::test]
async fn audience_star_accepts_any_audience_and_a_named_one_only_itself() {
    let t = now();
    for (audience, aud, status) in [
        ("*", None, 200),
        ("*", Some(json!("billing")), 200),
        ("*", Some(json!(["billing", "crm"])), 200),
        ("roster-api", Some(json!("roster-api")), 200),
        ("roster-api", Some(json!(["billing", "roster-api"])), 200),
        ("roster-api", Some(json!("billing")), 401),
        ("roster-api", None, 401),
    ] {
        let app = spawn_app_with_jwt(JwtSettings {
            audience: Some(audience.into()),
            ..rs256_settings()
        })
        .await;
        let uma = app.create_user(app.tenant, "uma", false).await;
        let mut claims = json!({"sub": uma, "exp": t + 600, "iat": t});
        if let Some(aud) = &aud {
            claims["aud"] = aud.clone();
        }
        let token = sign_rsa(Algorithm::RS256, TEST_ONLY_PRIVATE_KEY_PEM, &claims);
        let context = format!("JWT_AUDIENCE={audience} and aud {aud:?} should get {status}");
        let response = app.list_organizations(&token, "").await;
        if status == 200 {
            assert_page(response, &context).await;
        } else {
            let (code, _) = error_of(&Reply::read(response).await, status, &context);
            assert_eq!("unauthenticated", code, "{context}");
        }
    }
}

/// The identity provider's RS256 token is exchanged for a Roster access token (#12), and one
/// signed by another key is not.
#[tokio::test]
async fn an_identity_providers_token_is_exchanged_for_an_access_token() {
    let app = spawn_app_with_jwt(rs256_settings()).await;
    let uma = app.create_user(app.tenant, "uma", false).await;
    let org: uuid::Uuid = app
        .sql
        .query_one(
            "select (roster.create_organization($1, 'Acme', 'acme')).id as id",
            &[&uma],
        )
        .await
        .and_then(|row| row.try_get("id"))
        .expect("create an organization in psql");
    let t = now();
    let claims = json!({"sub": uma, "exp": t + 600, "iat": t});
    let exchange = |subject: String| {
        let app = &app;
        async move {
            let form = serde_urlencoded::to_string([
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("subject_token", subject.as_str()),
                ("organization_id", org.to_string().as_str()),
            ])
            .unwrap();
            Reply::read(
                app.request(reqwest::Method::POST, "/auth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .expect("send"),
            )
            .await
        }
    };
    let reply = exchange(sign_rsa(
        Algorithm::RS256,
        TEST_ONLY_PRIVATE_KEY_PEM,
        &claims,
    ))
    .await;
    assert_eq!(200, reply.status, "{}", reply.text);
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = Reply::read(
        app.request(reqwest::Method::GET, &format!("/organizations/{org}"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(200, reply.status, "{}", reply.text);

    let reply = exchange(sign_rsa(
        Algorithm::RS256,
        TEST_ONLY_OTHER_PRIVATE_KEY_PEM,
        &claims,
    ))
    .await;
    assert_eq!(400, reply.status, "{}", reply.text);
    assert_eq!("invalid_grant", reply.json()["error"]);
}
