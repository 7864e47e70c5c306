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
shape are left as generated. Nothing else is changed.
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


def _known_roles(body):
    """The generated body with each well-formed role key replaced by one the tenant has."""
    if not isinstance(body, dict):
        return st.just(body)
    fields = [k for k in ("role", "join_role") if isinstance(body.get(k), str) and ROLE_KEY.match(body[k])]
    if not fields:
        return st.just(body)
    return st.tuples(*[st.sampled_from(ROLES) for _ in fields]).map(lambda roles: {**body, **dict(zip(fields, roles))})


@schemathesis.hook("flatmap_body").apply_to(
    operation_id=["add_member", "update_member", "update_member_put", "invite", "add_domain", "update_domain"]
)
def tenant_roles(context, body):
    return _known_roles(body)


PERMISSIONS = [
    "organization:read", "organization:update", "organization:delete", "members:read",
    "members:invite", "members:update_role", "members:suspend", "members:remove",
    "members:manage_owners", "audit:read", "roles:manage", "invitations:manage",
]


@schemathesis.hook("flatmap_body").apply_to(operation_id="check")
def known_permissions(context, body):
    checks = body.get("checks") if isinstance(body, dict) else None
    if not isinstance(checks, list) or not all(isinstance(c, dict) and isinstance(c.get("permission"), str) for c in checks):
        return st.just(body)
    return st.lists(st.sampled_from(PERMISSIONS), min_size=len(checks), max_size=len(checks)).map(
        lambda names: {**body, "checks": [{**c, "permission": n} for c, n in zip(checks, names)]}
    )
