"""Drives the running server through the client openapi-python-client generated from its
document: the document is good enough for a stock generator only if the client it makes works.

Usage: client_smoke.py CLIENT_DIR BASE_URL TOKEN (the token of a user allowed to create
organizations). Exits non-zero, naming the call, on the first surprise.
"""

import sys
import uuid

client_dir, base_url, token = sys.argv[1:4]
sys.path.insert(0, client_dir)

from roster_client import AuthenticatedClient  # noqa: E402  (generated into client_dir)
from roster_client.api.authorization import check  # noqa: E402
from roster_client.api.members import list_members  # noqa: E402
from roster_client.api.organizations import (  # noqa: E402
    create_organization,
    get_organization,
    list_organizations,
    update_organization,
)
from roster_client.models import (  # noqa: E402
    Check,
    CheckRequest,
    CheckResponse,
    ErrorBody,
    NewOrganization,
    Organization,
    OrganizationChanges,
    PaginatedMember,
    PaginatedUserOrganization,
)


def expect(what, response, status, model):
    if response.status_code != status or not isinstance(response.parsed, model):
        sys.exit(
            f"client smoke: {what}: expected {status} as {model.__name__}, got "
            f"{int(response.status_code)} {response.parsed!r}: {response.content[:300]!r}"
        )
    return response.parsed


client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
slug = f"client-{uuid.uuid4().hex[:12]}"
created = expect(
    "create_organization",
    create_organization.sync_detailed(client=client, body=NewOrganization(name=f"Client {slug}", slug=slug)),
    201,
    Organization,
)
expect(
    "create_organization again (taken slug)",
    create_organization.sync_detailed(client=client, body=NewOrganization(name=f"Other {slug}", slug=slug)),
    409,
    ErrorBody,
)
fetched = expect("get_organization", get_organization.sync_detailed(created.id, client=client), 200, Organization)
assert fetched.slug == slug, f"client smoke: get_organization: slug {fetched.slug!r}, expected {slug!r}"
updated = expect(
    "update_organization",
    update_organization.sync_detailed(created.id, client=client, body=OrganizationChanges(description="from the client")),
    200,
    Organization,
)
assert updated.description == "from the client", f"client smoke: update_organization: {updated!r}"
expect("get_organization (unknown id)", get_organization.sync_detailed(uuid.uuid4(), client=client), 404, ErrorBody)
expect(
    "list_organizations",
    list_organizations.sync_detailed(client=client, limit=200),
    200,
    PaginatedUserOrganization,
)
expect("list_organizations (limit 0)", list_organizations.sync_detailed(client=client, limit=0), 422, ErrorBody)
expect("list_members", list_members.sync_detailed(created.id, client=client), 200, PaginatedMember)
answer = expect(
    "check",
    check.sync_detailed(
        client=client,
        body=CheckRequest(checks=[Check(organization_id=created.id, permission="organization:read")]),
    ),
    200,
    CheckResponse,
)
assert [r.allowed for r in answer.results] == [True], f"client smoke: check: {answer!r}"
print("client smoke: 9 calls through the generated client answered as documented")
