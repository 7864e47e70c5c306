//! Who may do what: the role matrix for writes, 403 for callers who see the organization but
//! lack the permission, 404 for callers who may not see it, and tenant isolation.

use reqwest::Response;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_error, assert_json, assert_no_content, assert_page, column, spawn_app, Reply, TestApp,
    TestUser,
};

/// One request against an organization, so that tables can list calls.
#[derive(Debug, Clone)]
enum Call {
    GetOrganization,
    UpdateOrganization(Value),
    PutOrganization(Value),
    DeleteOrganization,
    ListMembers,
    AddMember(Value),
    UpdateMember(Uuid, Value),
    RemoveMember(Uuid),
    ListUserOrganizations(Uuid),
    ListTenantOrganizations,
}

impl Call {
    async fn send(&self, app: &TestApp, token: &str, org: Uuid) -> Response {
        match self {
            Call::GetOrganization => app.get_organization(token, org).await,
            Call::UpdateOrganization(body) => app.update_organization(token, org, body).await,
            Call::PutOrganization(body) => app.put_organization(token, org, body).await,
            Call::DeleteOrganization => app.delete_organization(token, org).await,
            Call::ListMembers => app.list_members(token, org, "").await,
            Call::AddMember(body) => app.add_member(token, org, body).await,
            Call::UpdateMember(user, body) => app.update_member(token, org, user, body).await,
            Call::RemoveMember(user) => app.remove_member(token, org, user).await,
            Call::ListUserOrganizations(user) => app.list_user_organizations(token, user, "").await,
            Call::ListTenantOrganizations => app.list_tenant_organizations(token, "").await,
        }
    }
}

/// What the owner sees of an organization: its GET and its member list, verbatim.
async fn snapshot(app: &TestApp, owner: &TestUser, org: Uuid) -> (u16, String, u16, String) {
    let organization = Reply::read(app.get_organization(&owner.token, org).await).await;
    let members = Reply::read(app.list_members(&owner.token, org, "").await).await;
    (
        organization.status,
        organization.text,
        members.status,
        members.text,
    )
}

#[derive(Debug, Clone, Copy)]
enum Actor {
    Owner,
    Admin,
    Member,
    TenantAdmin,
}

#[derive(Debug, Clone, Copy)]
enum Write {
    AddMember,
    ChangeRole,
    Suspend,
    Remove,
    UpdateOrganization,
    DeleteOrganization,
}

#[tokio::test]
async fn role_matrix_for_writes() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let admin = app.user("adam").await;
    let member = app.user("mia").await;
    let tenant_admin = app.tenant_admin("tess").await;
    let target = app.user("tom").await;
    let newcomer = app.user("nina").await;

    // Expected status for owner, admin, member, tenant admin (who is no member at all).
    let actors = [
        Actor::Owner,
        Actor::Admin,
        Actor::Member,
        Actor::TenantAdmin,
    ];
    let matrix = [
        (Write::AddMember, [201, 201, 403, 201]),
        // Only owners change roles (and tenant admins, who hold the owner's permissions).
        (Write::ChangeRole, [200, 403, 403, 200]),
        (Write::Suspend, [200, 200, 403, 200]),
        (Write::Remove, [204, 204, 403, 204]),
        (Write::UpdateOrganization, [200, 200, 403, 200]),
        (Write::DeleteOrganization, [204, 403, 403, 204]),
    ];
    let mut n = 0;
    for (write, statuses) in matrix {
        for (actor, status) in actors.into_iter().zip(statuses) {
            // A fresh organization per case: owner, admin, member and the target member tom.
            n += 1;
            let org = app.new_org(&owner, &format!("org-{n}")).await;
            app.new_member(&owner, org, &admin, "admin", "active").await;
            app.new_member(&owner, org, &member, "member", "active")
                .await;
            app.new_member(&owner, org, &target, "member", "active")
                .await;
            let caller = match actor {
                Actor::Owner => &owner,
                Actor::Admin => &admin,
                Actor::Member => &member,
                Actor::TenantAdmin => &tenant_admin,
            };
            let call = match write {
                Write::AddMember => Call::AddMember(json!({"user_id": newcomer.id})),
                Write::ChangeRole => Call::UpdateMember(target.id, json!({"role": "admin"})),
                Write::Suspend => Call::UpdateMember(target.id, json!({"status": "suspended"})),
                Write::Remove => Call::RemoveMember(target.id),
                Write::UpdateOrganization => {
                    Call::UpdateOrganization(json!({"description": "changed"}))
                }
                Write::DeleteOrganization => Call::DeleteOrganization,
            };
            let context = format!("{actor:?} × {write:?}");

            let before = snapshot(&app, &owner, org).await;
            let response = call.send(&app, &caller.token, org).await;
            if status == 403 {
                assert_error(response, 403, "forbidden", &context).await;
                let after = snapshot(&app, &owner, org).await;
                assert_eq!(before, after, "{context}: a refused write changes nothing");
            } else {
                let reply = Reply::read(response).await;
                assert_eq!(
                    status, reply.status,
                    "{context} should be allowed, body: {}",
                    reply.text
                );
                let after = snapshot(&app, &owner, org).await;
                assert_ne!(before, after, "{context}: the write takes effect");
            }
        }
    }
}

#[tokio::test]
async fn callers_who_see_the_organization_but_lack_the_permission_get_403() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let otto = app.user("otto").await;
    let admin = app.user("adam").await;
    let member = app.user("mia").await;
    let target = app.user("tom").await;
    let newcomer = app.user("nina").await;
    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &otto, "owner", "active").await;
    app.new_member(&owner, org, &admin, "admin", "active").await;
    app.new_member(&owner, org, &member, "member", "active")
        .await;
    app.new_member(&owner, org, &target, "member", "active")
        .await;

    let add = |role: &str, status: &str| {
        Call::AddMember(json!({"user_id": newcomer.id, "role": role, "status": status}))
    };
    let cases = [
        (
            "a member updates the organization",
            &member,
            Call::UpdateOrganization(json!({"name": "Mine"})),
            "organization:update",
        ),
        (
            "a member updates the organization with PUT",
            &member,
            Call::PutOrganization(json!({"name": "Mine"})),
            "organization:update",
        ),
        (
            "an admin deletes the organization",
            &admin,
            Call::DeleteOrganization,
            "organization:delete",
        ),
        (
            "a member deletes the organization",
            &member,
            Call::DeleteOrganization,
            "organization:delete",
        ),
        (
            "an admin adds an owner",
            &admin,
            add("owner", "active"),
            "members:manage_owners",
        ),
        (
            "an admin invites an owner",
            &admin,
            add("owner", "invited"),
            "members:manage_owners",
        ),
        // Only owners change roles: an admin is refused before the owner role comes into it.
        (
            "an admin makes a member an admin",
            &admin,
            Call::UpdateMember(target.id, json!({"role": "admin"})),
            "members:update_role",
        ),
        (
            "an admin promotes a member to owner",
            &admin,
            Call::UpdateMember(target.id, json!({"role": "owner"})),
            "members:update_role",
        ),
        (
            "an admin demotes an owner",
            &admin,
            Call::UpdateMember(otto.id, json!({"role": "member"})),
            "members:update_role",
        ),
        (
            "an admin suspends an owner",
            &admin,
            Call::UpdateMember(otto.id, json!({"status": "suspended"})),
            "members:manage_owners",
        ),
        (
            "an admin removes an owner",
            &admin,
            Call::RemoveMember(otto.id),
            "members:manage_owners",
        ),
        (
            "a member adds a member",
            &member,
            add("member", "active"),
            "members:invite",
        ),
        (
            "a member invites a member",
            &member,
            add("member", "invited"),
            "members:invite",
        ),
        (
            "a member changes a role",
            &member,
            Call::UpdateMember(target.id, json!({"role": "admin"})),
            "members:update_role",
        ),
        (
            "a member suspends a member",
            &member,
            Call::UpdateMember(target.id, json!({"status": "suspended"})),
            "members:suspend",
        ),
        (
            "a member removes another member",
            &member,
            Call::RemoveMember(target.id),
            "members:remove",
        ),
        (
            "a member lists another user's organizations",
            &member,
            Call::ListUserOrganizations(owner.id),
            "tenant admin",
        ),
        (
            "a member lists the tenant's organizations",
            &member,
            Call::ListTenantOrganizations,
            "tenant admin",
        ),
    ];

    let before = snapshot(&app, &owner, org).await;
    for (description, caller, call, reason) in cases {
        let response = call.send(&app, &caller.token, org).await;
        let message = assert_error(response, 403, "forbidden", description).await;
        assert!(
            message.contains(reason),
            "{description}: the message should say why ({reason}): {message}"
        );
    }
    let after = snapshot(&app, &owner, org).await;
    assert_eq!(before, after, "refused requests change nothing");
}

#[tokio::test]
async fn callers_who_may_not_see_the_organization_get_the_same_404_as_for_a_missing_one() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let mia = app.user("mia").await;
    let stranger = app.user("sid").await;
    let invited = app.user("ivy").await;
    let suspended = app.user("sam").await;
    let former = app.user("fred").await;
    let newcomer = app.user("nina").await;
    let tenant_admin = app.tenant_admin("tess").await;
    let globex = app.create_tenant("globex").await;
    let foreign = app.user_in(globex, "gina", false).await;
    let foreign_admin = app.user_in(globex, "gary", true).await;

    let org = app.new_org(&owner, "acme").await;
    app.new_member(&owner, org, &mia, "member", "active").await;
    app.new_member(&owner, org, &invited, "member", "invited")
        .await;
    app.new_member(&owner, org, &suspended, "member", "active")
        .await;
    let response = app
        .update_member(
            &owner.token,
            org,
            suspended.id,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_json(response, 200, "suspend sam").await;
    app.new_member(&owner, org, &former, "member", "active")
        .await;
    assert_no_content(
        app.remove_member(&owner.token, org, former.id).await,
        "remove fred",
    )
    .await;
    let deleted = app.new_org(&owner, "deleted").await;
    assert_no_content(
        app.delete_organization(&owner.token, deleted).await,
        "delete",
    )
    .await;
    let missing = Uuid::new_v4();

    let cases = [
        ("a missing organization id", &owner, missing),
        ("a deleted organization, to its owner", &owner, deleted),
        (
            "a deleted organization, to a tenant admin",
            &tenant_admin,
            deleted,
        ),
        ("a user of the tenant who is not a member", &stranger, org),
        ("an invited user", &invited, org),
        ("a suspended member", &suspended, org),
        ("a removed member", &former, org),
        ("a user of another tenant", &foreign, org),
        ("a tenant admin of another tenant", &foreign_admin, org),
    ];
    let calls = [
        Call::GetOrganization,
        Call::UpdateOrganization(json!({"name": "Mine"})),
        Call::PutOrganization(json!({"name": "Mine"})),
        Call::DeleteOrganization,
        Call::ListMembers,
        Call::AddMember(json!({"user_id": newcomer.id})),
        Call::UpdateMember(mia.id, json!({"role": "admin"})),
        Call::RemoveMember(mia.id),
    ];
    for (description, caller, id) in cases {
        for call in &calls {
            let response = call.send(&app, &caller.token, id).await;
            let context = format!("{description}: {call:?}");
            let message = assert_error(response, 404, "not_found", &context).await;
            assert_eq!(
                format!("organization {id} not found"),
                message,
                "{context}: indistinguishable from a missing id"
            );
        }
    }
    let (rows, _) = assert_page(app.list_members(&owner.token, org, "").await, "members").await;
    assert_eq!(
        vec!["olivia", "mia", "ivy", "sam"],
        column(&rows, "display_name"),
        "nothing changed"
    );
}

#[tokio::test]
async fn tenants_are_isolated() {
    let app = spawn_app().await;
    let owner = app.user("olivia").await;
    let tenant_admin = app.tenant_admin("tess").await;
    let globex = app.create_tenant("globex").await;
    let foreign = app.user_in(globex, "gina", false).await;
    let foreign_admin = app.user_in(globex, "gary", true).await;
    let org = app.new_org(&owner, "acme").await;
    let foreign_org = app.new_org(&foreign, "acme").await;

    // The same slug in two tenants is no conflict; and no id of one tenant works in the other.
    let response = app
        .add_member(&owner.token, org, &json!({"user_id": foreign.id}))
        .await;
    assert_error(
        response,
        404,
        "user_not_found",
        "add a user of another tenant",
    )
    .await;
    let response = app
        .update_member(&owner.token, org, foreign.id, &json!({"role": "admin"}))
        .await;
    assert_error(
        response,
        404,
        "member_not_found",
        "update a user of another tenant",
    )
    .await;
    let response = app.remove_member(&owner.token, org, foreign.id).await;
    assert_error(
        response,
        404,
        "member_not_found",
        "remove a user of another tenant",
    )
    .await;
    let response = app
        .list_user_organizations(&tenant_admin.token, foreign.id, "")
        .await;
    assert_error(
        response,
        404,
        "user_not_found",
        "tenant admin lists a foreign user",
    )
    .await;
    let response = app.accept_invitation(&foreign.token, org).await;
    assert_error(response, 404, "not_found", "accept in another tenant").await;

    let (rows, _) = assert_page(
        app.list_tenant_organizations(&foreign_admin.token, "")
            .await,
        "globex's admin lists its tenant",
    )
    .await;
    assert_eq!(
        vec![foreign_org.to_string()],
        column(&rows, "id"),
        "only globex's"
    );
    let (rows, _) = assert_page(
        app.list_tenant_organizations(&tenant_admin.token, "").await,
        "acme's admin lists its tenant",
    )
    .await;
    assert_eq!(vec![org.to_string()], column(&rows, "id"), "only acme's");
}
