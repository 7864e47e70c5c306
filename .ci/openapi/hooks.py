"""Schemathesis hooks for .ci/openapi-check.sh (loaded through SCHEMATHESIS_HOOKS).

A random uuid names no user and no organization, so without help nearly every generated request
ends in a 404 and what lies behind it (roles, statuses, the last-owner guard) is never reached.
So a well-formed `user_id` (in a body or a path) is also drawn from the fixture's users
(ROSTER_CHECK_USERS, comma-separated), and a well-formed `org_id` from its organization
(ROSTER_CHECK_ORG), beside the generated value; malformed values are left as generated, for the
negative cases. Nothing else is changed.
"""

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
