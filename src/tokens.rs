//! Roster's own access tokens (`POST /auth/token`): JWTs scoped to one organization, signed
//! with Roster's key (EdDSA by default, or RS256), published with the previous keys at
//! `/.well-known/jwks.json`. What a token says is a snapshot; whether it still holds is the
//! `av` claim against the current versions (`auth`), so a revoked grant is refused at once.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::authz::Access;
use crate::settings::SettingsError;

/// `typ` of Roster's access tokens (RFC 9068), which tells them from identity tokens.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Access tokens remembered as verified (`KeyRing::verify`).
const VERIFIED_TOKENS: usize = 10_000;

/// At most this many permission names in `org_permissions`: past it the claim is cut (and
/// `org_permissions_truncated` set), so that a token stays small enough for a header.
pub const MAX_PERMISSION_CLAIMS: usize = 50;

/// The algorithms Roster signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    EdDsa,
    Rs256,
}

impl SigningAlg {
    pub fn parse(text: &str) -> Option<SigningAlg> {
        match text {
            "EdDSA" => Some(SigningAlg::EdDsa),
            "RS256" => Some(SigningAlg::Rs256),
            _ => None,
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::EdDsa => Algorithm::EdDSA,
            SigningAlg::Rs256 => Algorithm::RS256,
        }
    }
}

/// How Roster issues access tokens.
#[derive(Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: u64,
    pub alg: SigningAlg,
    /// The signing key in PEM form; None: a key generated at start-up, good until this
    /// process stops and only in it (development).
    pub signing_key: Option<String>,
    /// Keys still accepted and published (rotation): PEM text, private or public keys.
    pub previous_keys: Vec<String>,
}

impl fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSettings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_seconds", &self.ttl_seconds)
            .field("alg", &self.alg)
            .field("signing_key", &self.signing_key.as_ref().map(|_| ".."))
            .field("previous_keys", &self.previous_keys.len())
            .finish()
    }
}

impl TokenSettings {
    pub fn new() -> TokenSettings {
        TokenSettings {
            issuer: "roster".to_owned(),
            audience: "roster".to_owned(),
            ttl_seconds: 900,
            alg: SigningAlg::EdDsa,
            signing_key: None,
            previous_keys: Vec::new(),
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings::new()
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// The user's tenant.
    pub tid: Uuid,
    /// None: an unscoped token (the user has several organizations and chose none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    /// The membership's role (none for a tenant admin who is no member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_role: Option<String>,
    /// The organization-wide effective permissions, sorted, at most `MAX_PERMISSION_CLAIMS`.
    #[serde(default)]
    pub org_permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub org_permissions_truncated: bool,
    /// The authorization version at issue: see [`authorization_version`].
    pub av: i64,
    pub iat: u64,
    pub exp: u64,
    pub jti: Uuid,
}

/// The version a token's `av` is compared with: the sum of the tenant's, the user's and the
/// organization's versions. Each only grows, so the sum grows exactly when one of them does:
/// any change to the user, its memberships, groups and grants, the organization, its roles and
/// groups, or the tenant's roles and catalogue (sql/CACHE.md).
pub fn authorization_version(access: &Access) -> i64 {
    access
        .identity
        .tenant_version
        .saturating_add(access.identity.user_version)
        .saturating_add(access.org_version)
}

impl AccessClaims {
    /// The claims for `access` (of `user` in `org`, or of `user` alone when `org` is None),
    /// issued `now` for `ttl_seconds`.
    pub fn new(
        ring: &KeyRing,
        user: Uuid,
        tenant: Uuid,
        org: Option<Uuid>,
        access: &Access,
        now: u64,
        ttl_seconds: u64,
    ) -> AccessClaims {
        let scoped = org.is_some();
        let mut permissions = if scoped {
            access.permissions.clone()
        } else {
            Vec::new()
        };
        let truncated = permissions.len() > MAX_PERMISSION_CLAIMS;
        permissions.truncate(MAX_PERMISSION_CLAIMS);
        AccessClaims {
            iss: ring.issuer.clone(),
            aud: ring.audience.clone(),
            sub: user,
            tid: tenant,
            org_id: org,
            org_slug: org.and(access.org_slug.clone()),
            org_role: org.and(access.role.as_ref().map(|role| role.as_str().to_owned())),
            org_permissions: permissions,
            org_permissions_truncated: truncated,
            av: authorization_version(access),
            iat: now,
            exp: now + ttl_seconds,
            jti: Uuid::new_v4(),
        }
    }
}

/// One key Roster accepts tokens under.
struct VerifyingKey {
    kid: String,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The signing key, the keys accepted (it and the previous ones) and the JWKS document.
pub struct KeyRing {
    signing: EncodingKey,
    header: Header,
    verifying: Vec<VerifyingKey>,
    jwks: String,
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: u64,
    /// With the process's own generated key (no TOKEN_SIGNING_KEY).
    pub ephemeral: bool,
    /// Tokens whose signature and claims verified, by their whole text: a client sends the
    /// same token on every request, and an Ed25519 verification costs about as much CPU as
    /// the rest of a cached request. The keys never change in a process, so the same text
    /// verifies the same way; only the time claims are checked again.
    verified: Mutex<lru::LruCache<Box<str>, Arc<AccessClaims>>>,
}

impl KeyRing {
    pub fn new(settings: &TokenSettings) -> Result<KeyRing, SettingsError> {
        let (pem, ephemeral) =
            match &settings.signing_key {
                Some(pem) => (pem.clone(), false),
                None if settings.alg == SigningAlg::EdDsa => (generate_ed25519_pem(), true),
                None => return Err(SettingsError::new(
                    "TOKEN_SIGNING_KEY",
                    "missing: TOKEN_SIGNING_ALG=RS256 needs an RSA private key (PEM text or path)",
                )),
            };
        let algorithm = settings.alg.algorithm();
        let blocks = pem_blocks("TOKEN_SIGNING_KEY", &pem)?;
        let [block] = blocks.as_slice() else {
            return Err(SettingsError::new(
                "TOKEN_SIGNING_KEY",
                format!(
                    "holds {} PEM blocks: expected one private key",
                    blocks.len()
                ),
            ));
        };
        let signing = match settings.alg {
            SigningAlg::EdDsa => EncodingKey::from_ed_pem(block.as_bytes()),
            SigningAlg::Rs256 => EncodingKey::from_rsa_pem(block.as_bytes()),
        }
        .map_err(|e| {
            SettingsError::new(
                "TOKEN_SIGNING_KEY",
                format!("not a {algorithm:?} private key in PEM form: {e}"),
            )
        })?;
        let current = Jwk::from_encoding_key(&signing, algorithm)
            .map_err(|e| SettingsError::new("TOKEN_SIGNING_KEY", format!("unusable key: {e}")))?;
        let mut jwks = vec![current];
        for text in &settings.previous_keys {
            for block in pem_blocks("TOKEN_PREVIOUS_KEYS", text)? {
                jwks.push(previous_jwk(&block)?);
            }
        }
        let mut verifying = Vec::with_capacity(jwks.len());
        for jwk in &mut jwks {
            let kid = jwk
                .thumbprint(ThumbprintHash::SHA256)
                .map_err(|e| SettingsError::new("TOKEN_PREVIOUS_KEYS", format!("{e}")))?;
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            let algorithm = match jwk.common.key_algorithm {
                Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                _ => Algorithm::RS256,
            };
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| SettingsError::new("TOKEN_PREVIOUS_KEYS", format!("{e}")))?;
            if verifying.iter().all(|k: &VerifyingKey| k.kid != kid) {
                verifying.push(VerifyingKey {
                    kid,
                    algorithm,
                    key,
                });
            }
        }
        jwks.dedup_by(|a, b| a.common.key_id == b.common.key_id);
        let mut header = Header::new(algorithm);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(verifying[0].kid.clone());
        let jwks = serde_json::to_string(&JwkSet { keys: jwks })
            .map_err(|e| SettingsError::new("TOKEN_SIGNING_KEY", format!("{e}")))?;
        Ok(KeyRing {
            signing,
            header,
            verifying,
            jwks,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_seconds: settings.ttl_seconds,
            ephemeral,
            verified: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(VERIFIED_TOKENS).expect("not zero"),
            )),
        })
    }

    /// `GET /.well-known/jwks.json`.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The `kid` new tokens carry.
    pub fn current_kid(&self) -> &str {
        &self.verifying[0].kid
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&self.header, claims, &self.signing)
    }

    /// `verify` for a token whose header names one of Roster's keys (an access token, to which
    /// only Roster's rules apply); None for any other token (an identity token, or garbage
    /// for the identity verifier to refuse).
    pub fn verify_ours(
        &self,
        token: &str,
        now: u64,
        leeway: u64,
    ) -> Option<Result<Arc<AccessClaims>, &'static str>> {
        if let Some(claims) = self.remembered().get(token).cloned() {
            return Some(in_time(claims, now, leeway));
        }
        let ours = jsonwebtoken::decode_header(token).is_ok_and(|header| self.recognises(&header));
        ours.then(|| self.verify(token, now, leeway))
    }

    /// Whether a token's header names one of Roster's keys: then it is an access token, and
    /// only Roster's rules apply to it.
    pub fn recognises(&self, header: &Header) -> bool {
        header
            .kid
            .as_deref()
            .is_some_and(|kid| self.verifying.iter().any(|k| k.kid == kid))
    }

    /// The claims of a valid access token (signature under the key its `kid` names, that
    /// key's algorithm, `typ`, issuer, audience), not expired at `now` (with `leeway`). Why
    /// not, as a fixed text.
    pub fn verify(
        &self,
        token: &str,
        now: u64,
        leeway: u64,
    ) -> Result<Arc<AccessClaims>, &'static str> {
        let known = self.remembered().get(token).cloned();
        let claims = match known {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signed(token)?);
                self.remembered().put(token.into(), claims.clone());
                claims
            }
        };
        in_time(claims, now, leeway)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Box<str>, Arc<AccessClaims>>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The signature, header and audience checks of `verify`, whatever the time.
    fn verify_signed(&self, token: &str) -> Result<AccessClaims, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.iter().find(|k| k.kid == kid))
            .ok_or("unknown key")?;
        if header.alg != key.algorithm {
            return Err("wrong algorithm");
        }
        if header.crit.is_some() {
            return Err("unsupported critical header");
        }
        if header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
            != Some(ACCESS_TOKEN_TYPE)
        {
            return Err("unsupported token type");
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        jsonwebtoken::decode::<AccessClaims>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => "wrong issuer",
                jsonwebtoken::errors::ErrorKind::InvalidAudience => "wrong audience",
                _ => "malformed token",
            })
    }
}

/// The claims, unless `now` is past their `exp` or before their `iat` (with `leeway`).
fn in_time(
    claims: Arc<AccessClaims>,
    now: u64,
    leeway: u64,
) -> Result<Arc<AccessClaims>, &'static str> {
    if claims.exp + leeway < now {
        return Err("token expired");
    }
    if claims.iat > now + leeway {
        return Err("issued in the future");
    }
    Ok(claims)
}

/// A previous key's public JWK, from a private or a public key.
fn previous_jwk(block: &str) -> Result<Jwk, SettingsError> {
    let bad = |e: &dyn fmt::Display| {
        SettingsError::new(
            "TOKEN_PREVIOUS_KEYS",
            format!("not an Ed25519 or RSA key in PEM form: {e}"),
        )
    };
    let bytes = block.as_bytes();
    if let Ok(key) = EncodingKey::from_ed_pem(bytes) {
        return Jwk::from_encoding_key(&key, Algorithm::EdDSA).map_err(|e| bad(&e));
    }
    if let Ok(key) = EncodingKey::from_rsa_pem(bytes) {
        return Jwk::from_encoding_key(&key, Algorithm::RS256).map_err(|e| bad(&e));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        return Jwk::from_decoding_key(&key, Some(Algorithm::EdDSA)).map_err(|e| bad(&e));
    }
    match DecodingKey::from_rsa_pem(bytes) {
        Ok(key) => Jwk::from_decoding_key(&key, Some(Algorithm::RS256)).map_err(|e| bad(&e)),
        Err(e) => Err(bad(&e)),
    }
}

/// The PEM blocks of a text, each re-encoded on its own.
fn pem_blocks(name: &'static str, text: &str) -> Result<Vec<String>, SettingsError> {
    let blocks = pem::parse_many(text)
        .map_err(|e| SettingsError::new(name, format!("not PEM text: {e}")))?;
    if blocks.is_empty() {
        return Err(SettingsError::new(name, "holds no PEM block"));
    }
    Ok(blocks.iter().map(pem::encode).collect())
}

/// A new Ed25519 private key, PKCS#8 in PEM form (`roster keys generate`, and the key of a
/// process started without TOKEN_SIGNING_KEY).
pub fn generate_ed25519_pem() -> String {
    // PKCS#8 v1 of an Ed25519 key (RFC 8410 section 7): this fixed prefix, then the 32-byte seed.
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).expect("the operating system's random number generator");
    der.extend_from_slice(&seed);
    pem::encode(&pem::Pem::new("PRIVATE KEY", der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::authz::Identity;

    fn access() -> Access {
        Access {
            identity: Identity {
                tenant_id: Some(Uuid::new_v4()),
                is_tenant_admin: false,
                user_live: true,
                user_version: 3,
                tenant_version: 2,
            },
            org_version: 7,
            org_slug: Some("acme".into()),
            visible: true,
            role: None,
            status: None,
            permissions: (0..60).map(|i| format!("p{i:02}:read")).collect(),
            valid_until: None,
        }
    }

    #[test]
    fn a_signed_token_verifies_under_its_ring_and_after_rotation() {
        let old = TokenSettings::new();
        let old_key = generate_ed25519_pem();
        let old_ring = KeyRing::new(&TokenSettings {
            signing_key: Some(old_key.clone()),
            ..old.clone()
        })
        .unwrap();
        let (user, tenant, org) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let claims = AccessClaims::new(&old_ring, user, tenant, Some(org), &access(), 1_000, 900);
        assert_eq!(12, claims.av);
        assert_eq!(MAX_PERMISSION_CLAIMS, claims.org_permissions.len());
        assert!(claims.org_permissions_truncated);
        let token = old_ring.sign(&claims).unwrap();
        assert_eq!(Ok(&claims), old_ring.verify(&token, 1_000, 5).as_deref());
        assert_eq!(Err("token expired"), old_ring.verify(&token, 1_906, 5));
        // Remembered as verified: the time claims are still checked.
        assert_eq!(Err("token expired"), old_ring.verify(&token, 1_906, 5));

        let rotated = KeyRing::new(&TokenSettings {
            signing_key: Some(generate_ed25519_pem()),
            previous_keys: vec![old_key],
            ..old.clone()
        })
        .unwrap();
        assert_ne!(rotated.current_kid(), old_ring.current_kid());
        assert_eq!(Ok(&claims), rotated.verify(&token, 1_000, 5).as_deref());
        let jwks: serde_json::Value = serde_json::from_str(rotated.jwks()).unwrap();
        assert_eq!(2, jwks["keys"].as_array().unwrap().len());
        assert!(
            !rotated.jwks().contains("\"d\""),
            "no private part is published"
        );

        let stranger = KeyRing::new(&old).unwrap();
        assert_eq!(Err("unknown key"), stranger.verify(&token, 1_000, 5));
    }
}
