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
