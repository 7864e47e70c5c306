"""A Roster access token, verified by a library that is not Roster's: PyJWT (with
`cryptography`), given nothing but the served JWK Set (see .ci/openapi-check.sh).

Usage: jwks_check.py ORIGIN IDENTITY_TOKEN

IDENTITY_TOKEN is an identity token (`roster token --user ...`) of a user allowed to create
organizations. The server's TOKEN_ISSUER and TOKEN_AUDIENCE (default `roster`) are read from the
environment, and TOKEN_SIGNING_KEY when it is a file. The check:
  1. GET /.well-known/jwks.json, read with jwt.PyJWKSet: Ed25519 keys only (OKP, EdDSA, sig),
     the first one the public half of TOKEN_SIGNING_KEY when that is given;
  2. POST /organizations as that user: a new organization, so the user is its owner;
  3. POST /auth/token (RFC 8693, as a form) with organization_id: an access token;
  4. jwt.decode with the JWKS key its `kid` names, algorithms=["EdDSA"], the issuer and the
     audience required: claims sub, org_id, av present and right;
  5. the same token with one byte of its signature changed, and the same token checked for
     another audience or issuer, are refused;
  6. the access token is accepted as a bearer (GET /organizations/{id}).
Exits non-zero, naming the step, on the first surprise. Standard library and PyJWT only.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt

origin, identity = sys.argv[1:3]
issuer = os.environ.get("TOKEN_ISSUER") or "roster"
audience = os.environ.get("TOKEN_AUDIENCE") or "roster"
signing_key = os.environ.get("TOKEN_SIGNING_KEY", "")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def fail(message):
    sys.exit(f"jwks check: {message}")


def call(method, path, token=None, body=None, content_type=None, expect=200):
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        if content_type == "application/x-www-form-urlencoded":
            data = urllib.parse.urlencode(body).encode()
        else:
            content_type = "application/json"
            data = json.dumps(body).encode()
        headers["Content-Type"] = content_type
    request = urllib.request.Request(origin + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    if status != expect:
        fail(f"{method} {path}: expected {expect}, got {status}: {raw[:300]!r}")
    if not kind.startswith("application/json"):
        fail(f"{method} {path}: Content-Type {kind!r}, expected application/json")
    return json.loads(raw)


# 1. The JWK Set, and nothing else, is what PyJWT gets to verify with.
document = call("GET", "/.well-known/jwks.json")
try:
    jwks = jwt.PyJWKSet.from_dict(document)
except jwt.PyJWKSetError as error:
    fail(f"PyJWKSet refused the served JWKS {document!r}: {error}")
if not jwks.keys:
    fail(f"the JWKS has no key PyJWT can use: {document!r}")
for raw_key in document["keys"]:
    shape = {k: raw_key.get(k) for k in ("kty", "crv", "alg", "use")}
    if shape != {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig"} or not raw_key.get("kid"):
        fail(f"a JWKS key is not an Ed25519 signing key with a kid: {raw_key!r}")
    if "d" in raw_key:
        fail("the JWKS publishes a private key (member d)")
if os.path.isfile(signing_key):
    # Only to tell that the JWKS publishes the configured key: verifying below uses the JWKS.
    from cryptography.hazmat.primitives import serialization

    with open(signing_key, "rb") as pem:
        public = serialization.load_pem_private_key(pem.read(), password=None).public_key()
    x = base64.urlsafe_b64encode(
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).rstrip(b"=").decode()
    if document["keys"][0].get("x") != x:
        fail(f"the JWKS's first key is not TOKEN_SIGNING_KEY's public key ({x}): {document!r}")

# 2. A user of our own (the caller's) owning a new organization.
slug = f"pyjwt-{uuid.uuid4().hex[:12]}"
org = call("POST", "/organizations", identity, {"name": f"PyJWT {slug}", "slug": slug}, expect=201)

# 3. The exchange, as a form (RFC 8693 section 2.1).
issued = call(
    "POST",
    "/auth/token",
    body={
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": identity,
        "subject_token_type": JWT_TYPE,
        "organization_id": org["id"],
    },
    content_type="application/x-www-form-urlencoded",
)
token = issued.get("access_token")
if not token or issued.get("token_type") != "Bearer" or (issued.get("organization") or {}).get("id") != org["id"]:
    fail(f"POST /auth/token answered {issued!r}")

# 4. Verified with PyJWT and the JWKS key the token's kid names.
header = jwt.get_unverified_header(token)
if header.get("alg") != "EdDSA" or header.get("typ") != "at+jwt":
    fail(f"unexpected token header {header!r}")
try:
    key = jwks[header["kid"]]
except KeyError:
    fail(f"the token's kid {header.get('kid')!r} names no key of the JWKS")


def verify(candidate, aud=audience, iss=issuer):
    return jwt.decode(
        candidate,
        key=key,
        algorithms=["EdDSA"],
        audience=aud,
        issuer=iss,
        options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_signature": True},
    )


try:
    claims = verify(token)
except jwt.PyJWTError as error:
    fail(f"PyJWT refused the access token: {type(error).__name__}: {error}")
missing = [name for name in ("sub", "org_id", "av", "tid", "jti") if name not in claims]
if missing:
    fail(f"claims {missing} missing from {claims!r}")
if claims["org_id"] != org["id"] or not isinstance(claims["av"], int):
    fail(f"claims org_id/av wrong: {claims!r} (organization {org['id']})")
try:
    uuid.UUID(claims["sub"])
except ValueError:
    fail(f"claim sub is no user id: {claims['sub']!r}")
if claims["exp"] - claims["iat"] != issued["expires_in"]:
    fail(f"exp - iat is {claims['exp'] - claims['iat']}, expires_in {issued['expires_in']}")

# 5. One byte of the signature changed (in the decoded signature, not its base64 text, whose
#    last character carries padding bits): refused. So are another audience and issuer.
head, body, signature = token.split(".")
raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
for index in (0, len(raw) // 2, len(raw) - 1):
    changed = bytearray(raw)
    changed[index] ^= 0x01
    forged = f"{head}.{body}." + base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
    try:
        verify(forged)
    except jwt.InvalidSignatureError:
        pass
    except jwt.PyJWTError as error:
        fail(f"signature byte {index} changed: refused, but as {type(error).__name__}: {error}")
    else:
        fail(f"signature byte {index} changed: PyJWT still accepted the token")
for what, kwargs, refusal in (
    ("another audience", {"aud": audience + "-other"}, jwt.InvalidAudienceError),
    ("another issuer", {"iss": issuer + "-other"}, jwt.InvalidIssuerError),
):
    try:
        verify(token, **kwargs)
    except refusal:
        pass
    else:
        fail(f"checked for {what}, the token was not refused with {refusal.__name__}")

# 6. Roster takes its own token as a bearer.
fetched = call("GET", f"/organizations/{org['id']}", token)
if fetched.get("id") != org["id"]:
    fail(f"GET /organizations/{{id}} with the access token answered {fetched!r}")

print(
    f"jwks check: PyJWT {jwt.__version__} verified an EdDSA access token (kid {header['kid'][:12]}..) "
    f"with the JWKS alone ({len(jwks.keys)} key(s)): sub, org_id, av present; 3 one-byte signature "
    "changes, another audience and another issuer refused; Roster accepted it as a bearer"
)
