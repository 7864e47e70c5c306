"""Schemathesis hooks for .ci/openapi-check.sh (loaded through SCHEMATHESIS_HOOKS).

A random uuid names no user and no organization, so without help nearly every generated request
ends in a 404 and what lies behind it (roles, statuses, the last-owner guard) is never reached.
So a well-formed `user_id` (in a body or a path) is also drawn from the fixture's users
(ROSTER_CHECK_USERS, comma-separated), and a well-formed `org_id` from its organization
(ROSTER_CHECK_ORG), beside the generated value; malformed values are left as generated, for the
negative cases.

Role keys and permission names are open sets the database defines (the schema can only say
what a key looks like), so a name the tenant does not have is refused with 422 (`unknown role`,
`unknown_permission`), which schemathesis would take for a valid request refused. A well-formed
`role` or `join_role` is therefore drawn from the tenant's roles (the built-in owner, admin,
member), and a check's `permission` string from the built-in permissions; values of the wrong
shape are left as generated.

A generated `subject_token` is never a signed identity token, so `POST /auth/token` would only
ever answer invalid_grant: a well-formed (string) `subject_token` is, for most cases, replaced
by one of the fixture's identity tokens (ROSTER_CHECK_SUBJECT_TOKENS, comma-separated), and a
string `grant_type` and `subject_token_type` by the values the exchange takes, so that issuance
itself (the organization chosen or refused, the claims signed) is reached; `POST /auth/introspect`
likewise gets the fixture's access token (ROSTER_CHECK_ACCESS_TOKEN) for a string `token`, and
`POST /auth/switch` the fixture's organization for a well-formed `organization_id`. Values of
the wrong type are left as generated. Nothing else is changed.
"""
import re

import os
import uuid

import schemathesis
from hypothesis import strategies as st

USERS = [user for user in os.environ.get("ROSTER_CHECK_USERS", "").split(",") if user]
ORGS = [org for org in [os.environ.get("ROSTER_CHECK_ORG")] if org]


def _is_uuid(value):
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def _with_known(values, key, known):
    """The generated `values`, or the same with `key` set to one of `known`."""
    if not known or not isinstance(values, dict) or not _is_uuid(values.get(key)):
        return st.just(values)
    return st.sampled_from([None, *known]).map(lambda k: values if k is None else {**values, key: k})


@schemathesis.hook("flatmap_body").apply_to(operation_id="add_member")
def tenant_users(context, body):
    return _with_known(body, "user_id", USERS)


@schemathesis.hook("flatmap_path_parameters")
def known_ids(context, parameters):
    return _with_known(parameters, "org_id", ORGS).flatmap(lambda p: _with_known(p, "user_id", USERS))


ROLES = ["owner", "admin", "member"]
ROLE_KEY = re.compile(r"^[a-z][a-z0-9_-]{1,49}$")


def _known(name, known):
    """One of `known`, chosen by `name`'s text (map_case hooks are functions, not strategies)."""
    return name if name in known else known[sum(name.encode()) % len(known)]


# map_case hooks, not flatmap_body ones: the coverage phase applies only case hooks.
@schemathesis.hook("map_case").apply_to(
    operation_id=["add_member", "update_member", "update_member_put", "invite", "add_domain", "update_domain"]
)
def tenant_roles(context, case):
    """Each well-formed role or join_role the tenant lacks is replaced by one it has."""
    if isinstance(case.body, dict):
        body = dict(case.body)
        for field in ("role", "join_role"):
            value = body.get(field)
            if isinstance(value, str) and ROLE_KEY.match(value):
                body[field] = _known(value, ROLES)
        case.body = body
    return case


PERMISSIONS = [
    "organization:read", "organization:update", "organization:delete", "members:read",
    "members:invite", "members:update_role", "members:suspend", "members:remove",
    "members:manage_owners", "audit:read", "roles:manage", "invitations:manage",
]


@schemathesis.hook("map_case").apply_to(operation_id="check")
def known_permissions(context, case):
    """Each permission string not in the catalogue is replaced by one that is."""
    checks = case.body.get("checks") if isinstance(case.body, dict) else None
    if isinstance(checks, list):
        known = [
            {**check, "permission": _known(check["permission"], PERMISSIONS)}
            if isinstance(check, dict) and isinstance(check.get("permission"), str)
            else check
            for check in checks
        ]
        case.body = {**case.body, "checks": known}
    return case


SUBJECT_TOKENS = [t for t in os.environ.get("ROSTER_CHECK_SUBJECT_TOKENS", "").split(",") if t]
ACCESS_TOKEN = os.environ.get("ROSTER_CHECK_ACCESS_TOKEN", "")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def _mostly(value, replacement):
    """`replacement` for three strings in four (by `value`'s text), else `value` itself: the
    refusals of generated values stay exercised, the acceptance is reached."""
    if not isinstance(value, str) or not replacement:
        return value
    return value if sum(value.encode()) % 4 == 0 else replacement


@schemathesis.hook("map_case").apply_to(operation_id="exchange")
def exchange_with_identity_tokens(context, case):
    if isinstance(case.body, dict):
        body = dict(case.body)
        if "subject_token" in body and SUBJECT_TOKENS:
            token = body["subject_token"]
            if isinstance(token, str):
                body["subject_token"] = _mostly(token, SUBJECT_TOKENS[sum(token.encode()) % len(SUBJECT_TOKENS)])
        for field, value in (("grant_type", TOKEN_EXCHANGE), ("subject_token_type", JWT_TOKEN_TYPE)):
            if field in body:
                body[field] = _mostly(body[field], value)
        org = body.get("organization_id")
        if ORGS and _is_uuid(org):
            body["organization_id"] = _mostly(org, ORGS[0])
        case.body = body
    return case


@schemathesis.hook("map_case").apply_to(operation_id="introspect")
def introspect_an_access_token(context, case):
    if isinstance(case.body, dict) and "token" in case.body:
        case.body = {**case.body, "token": _mostly(case.body["token"], ACCESS_TOKEN)}
    return case


@schemathesis.hook("flatmap_body").apply_to(operation_id="switch")
def switch_to_known_organization(context, body):
    return _with_known(body, "organization_id", ORGS)
