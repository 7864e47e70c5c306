//! The permissions matrix: every actor-checked function called by every kind of actor.
//!
//! Rules (sql/ERRORS.md, V6): an owner may do everything; an admin reads and updates the
//! organization and adds, invites, suspends and removes non-owners, but never grants or touches
//! the owner role nor deletes the organization; a member reads the organization and its members
//! and may leave; a tenant admin has the owner's powers in every organization of its tenant.
//! Anyone who is not an active member (invited, suspended, outsider, other tenant) gets RNFND, as
//! for a missing id; a deleted or unknown actor gets RNACT.

use crate::common;
use crate::support::*;
use uuid::Uuid;

const NOT_PENDING: Expect = Err("RNINV");
const NO_SUCH_USER: Expect = Err("RUSNF");

#[tokio::test]
async fn organization_functions_by_actor() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let org = w.org;

    #[rustfmt::skip]
    let calls = [
        ("create_organization", "select id from roster.create_organization($1, 'Acme Gizmos', 'acme-gizmos')".to_owned()),
        ("get_organization", format!("select * from roster.get_organization($1, '{org}')")),
        ("list_members", format!("select * from roster.list_members($1, '{org}')")),
        ("get_member", format!("select * from roster.get_member($1, '{org}', '{}')", w.owner)),
        ("update_organization", format!(r#"select * from roster.update_organization($1, '{org}', '{{"description": "updated"}}')"#)),
        ("delete_organization", format!("select * from roster.delete_organization($1, '{org}')")),
        ("list_organizations", "select * from roster.list_organizations($1)".to_owned()),
        ("list_tenant_organizations", "select * from roster.list_tenant_organizations($1)".to_owned()),
        ("list_audit_events", format!("select * from roster.list_audit_events($1, '{org}')")),
    ];
    #[rustfmt::skip]
    let matrix = [
        //                    create    get        members    member     update     delete     list      list tenant audit
        (Actor::Owner,       [OK,       OK,        OK,        OK,        OK,        OK,        OK,       DENIED,     OK]),
        (Actor::Admin,       [OK,       OK,        OK,        OK,        OK,        DENIED,    OK,       DENIED,     OK]),
        (Actor::Member,      [OK,       OK,        OK,        OK,        DENIED,    DENIED,    OK,       DENIED,     DENIED]),
        (Actor::Invited,     [OK,       NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK,       DENIED,     NOT_FOUND]),
        (Actor::Suspended,   [OK,       NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK,       DENIED,     NOT_FOUND]),
        (Actor::NonMember,   [OK,       NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK,       DENIED,     NOT_FOUND]),
        (Actor::OtherTenant, [OK,       NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK,       DENIED,     NOT_FOUND]),
        (Actor::TenantAdmin, [OK,       OK,        OK,        OK,        OK,        OK,        OK,       OK,         OK]),
        (Actor::DeletedUser, [NO_ACTOR, NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR, NO_ACTOR,   NO_ACTOR]),
        (Actor::UnknownUser, [NO_ACTOR, NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR, NO_ACTOR,   NO_ACTOR]),
    ];
    assert_matrix(&mut client, &w, calls, &matrix).await;
}

#[tokio::test]
async fn add_member_by_actor() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let candidate = w.new_user(&client, "candidate@acme.test").await;
    let add = |role: &str, status: &str| {
        format!(
            "select * from roster.add_member($1, '{}', '{candidate}', '{role}', '{status}')",
            w.org
        )
    };

    let calls = [
        ("add_member as member", add("member", "active")),
        ("add_member as admin", add("admin", "active")),
        ("add_member as owner", add("owner", "active")),
        ("add_member inviting as member", add("member", "invited")),
        ("add_member inviting as owner", add("owner", "invited")),
    ];
    #[rustfmt::skip]
    let matrix = [
        //                    member     admin      owner      invite     invite owner
        (Actor::Owner,       [OK,        OK,        OK,        OK,        OK]),
        (Actor::Admin,       [OK,        OK,        DENIED,    OK,        DENIED]),
        (Actor::Member,      [DENIED,    DENIED,    DENIED,    DENIED,    DENIED]),
        (Actor::Invited,     [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::Suspended,   [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::NonMember,   [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::OtherTenant, [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::TenantAdmin, [OK,        OK,        OK,        OK,        OK]),
        (Actor::DeletedUser, [NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR]),
        (Actor::UnknownUser, [NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR]),
    ];
    assert_matrix(&mut client, &w, calls, &matrix).await;
}

#[tokio::test]
async fn accept_invitation_by_actor() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;

    let calls = [(
        "accept_invitation",
        format!("select * from roster.accept_invitation($1, '{}')", w.org),
    )];
    // Only the invited user has a pending invitation; a member's own membership is not one; a
    // tenant admin has no membership at all.
    #[rustfmt::skip]
    let matrix = [
        (Actor::Owner,       [NOT_PENDING]),
        (Actor::Admin,       [NOT_PENDING]),
        (Actor::Member,      [NOT_PENDING]),
        (Actor::Invited,     [OK]),
        (Actor::Suspended,   [NOT_PENDING]),
        (Actor::NonMember,   [NOT_FOUND]),
        (Actor::OtherTenant, [NOT_FOUND]),
        (Actor::TenantAdmin, [NOT_FOUND]),
        (Actor::DeletedUser, [NO_ACTOR]),
        (Actor::UnknownUser, [NO_ACTOR]),
    ];
    assert_matrix(&mut client, &w, calls, &matrix).await;
}

#[tokio::test]
async fn update_member_by_actor() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let co_owner = w.new_co_owner(&client).await;
    let update = |target: Uuid, changes: &str| {
        format!(
            "select * from roster.update_member($1, '{}', '{target}', {changes})",
            w.org
        )
    };

    let calls = [
        (
            "update_member making a member admin",
            update(w.member, "p_role => 'admin'"),
        ),
        (
            "update_member suspending a member",
            update(w.member, "p_status => 'suspended'"),
        ),
        (
            "update_member reactivating a suspended member",
            update(w.suspended, "p_status => 'active'"),
        ),
        (
            "update_member changing an invitation's role",
            update(w.invited, "p_role => 'admin'"),
        ),
        (
            "update_member making a member owner",
            update(w.member, "p_role => 'owner'"),
        ),
        (
            "update_member demoting an owner",
            update(co_owner, "p_role => 'admin'"),
        ),
        (
            "update_member suspending an owner",
            update(co_owner, "p_status => 'suspended'"),
        ),
    ];
    #[rustfmt::skip]
    let matrix = [
        //                    to admin   suspend    reactivate invitation to owner   demote     suspend owner
        (Actor::Owner,       [OK,        OK,        OK,        OK,        OK,        OK,        OK]),
        // Only owners change roles: an admin suspends and reactivates, nothing more.
        (Actor::Admin,       [DENIED,    OK,        OK,        DENIED,    DENIED,    DENIED,    DENIED]),
        (Actor::Member,      [DENIED,    DENIED,    DENIED,    DENIED,    DENIED,    DENIED,    DENIED]),
        (Actor::Invited,     [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::Suspended,   [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::NonMember,   [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::OtherTenant, [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::TenantAdmin, [OK,        OK,        OK,        OK,        OK,        OK,        OK]),
        (Actor::DeletedUser, [NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR]),
        (Actor::UnknownUser, [NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR]),
    ];
    assert_matrix(&mut client, &w, calls, &matrix).await;
}

#[tokio::test]
async fn remove_member_by_actor() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    // Targets that are none of the actors, so that removing them is never leaving.
    let bystander = w
        .new_member(&client, "bystander@acme.test", "member", "active")
        .await;
    let invitee = w
        .new_member(&client, "invitee@acme.test", "admin", "invited")
        .await;
    // A second owner, so that the first may leave and there is an owner to remove.
    let co_owner = w.new_co_owner(&client).await;
    let org = w.org;

    let calls = [
        (
            "remove_member of a member",
            format!("select * from roster.remove_member($1, '{org}', '{bystander}')"),
        ),
        (
            "remove_member withdrawing an invitation",
            format!("select * from roster.remove_member($1, '{org}', '{invitee}')"),
        ),
        (
            "remove_member of an owner",
            format!("select * from roster.remove_member($1, '{org}', '{co_owner}')"),
        ),
        (
            "remove_member of themselves (leaving)",
            format!("select * from roster.remove_member($1, '{org}', $1)"),
        ),
    ];
    // Leaving needs only a live membership: the invited user declines this way, and a suspended
    // member may still leave. A tenant admin who is not a member has nothing to leave.
    #[rustfmt::skip]
    let matrix = [
        //                    member     invitation owner      leave
        (Actor::Owner,       [OK,        OK,        OK,        OK]),
        (Actor::Admin,       [OK,        OK,        DENIED,    OK]),
        (Actor::Member,      [DENIED,    DENIED,    DENIED,    OK]),
        (Actor::Invited,     [NOT_FOUND, NOT_FOUND, NOT_FOUND, OK]),
        (Actor::Suspended,   [NOT_FOUND, NOT_FOUND, NOT_FOUND, OK]),
        (Actor::NonMember,   [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::OtherTenant, [NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND]),
        (Actor::TenantAdmin, [OK,        OK,        OK,        NOT_FOUND]),
        (Actor::DeletedUser, [NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR]),
        (Actor::UnknownUser, [NO_ACTOR,  NO_ACTOR,  NO_ACTOR,  NO_ACTOR]),
    ];
    assert_matrix(&mut client, &w, calls, &matrix).await;
}

#[tokio::test]
async fn list_user_organizations_by_actor() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    // Targets that are none of the actors, so that listing them is never listing oneself.
    let colleague = w
        .new_member(&client, "colleague@acme.test", "member", "active")
        .await;
    let foreigner = create_user(&client, w.other_tenant, "staff@globex.test", false).await;
    let list = |user: String| format!("select * from roster.list_user_organizations($1, {user})");

    let calls = [
        ("list_user_organizations of themselves", list("$1".into())),
        (
            "list_user_organizations of a member",
            list(format!("'{colleague}'")),
        ),
        (
            "list_user_organizations of another tenant's user",
            list(format!("'{foreigner}'")),
        ),
        (
            "list_user_organizations of an unknown user",
            list(format!("'{}'", Uuid::new_v4())),
        ),
    ];
    #[rustfmt::skip]
    let matrix = [
        //                    self      a member  other tenant  unknown
        (Actor::Owner,       [OK,       DENIED,   DENIED,       DENIED]),
        (Actor::Admin,       [OK,       DENIED,   DENIED,       DENIED]),
        (Actor::Member,      [OK,       DENIED,   DENIED,       DENIED]),
        (Actor::Invited,     [OK,       DENIED,   DENIED,       DENIED]),
        (Actor::Suspended,   [OK,       DENIED,   DENIED,       DENIED]),
        (Actor::NonMember,   [OK,       DENIED,   DENIED,       DENIED]),
        (Actor::OtherTenant, [OK,       DENIED,   DENIED,       DENIED]),
        (Actor::TenantAdmin, [OK,       OK,       NO_SUCH_USER, NO_SUCH_USER]),
        (Actor::DeletedUser, [NO_ACTOR, NO_ACTOR, NO_ACTOR,     NO_ACTOR]),
        (Actor::UnknownUser, [NO_ACTOR, NO_ACTOR, NO_ACTOR,     NO_ACTOR]),
    ];
    assert_matrix(&mut client, &w, calls, &matrix).await;
}

/// An organization of another tenant, or an id that does not exist, is RNFND for everyone, the
/// tenant admin included, whatever the function.
#[tokio::test]
async fn other_tenants_and_missing_organizations_are_not_found() {
    let db = common::fresh_database().await;
    let mut client = db.client().await;
    let w = World::build(&client).await;
    let missing = Uuid::new_v4();

    for (which, org) in [
        ("another tenant's organization", w.other_org),
        ("a missing organization", missing),
    ] {
        let calls = [
            format!("select * from roster.get_organization($1, '{org}')"),
            format!("select * from roster.list_members($1, '{org}')"),
            format!("select * from roster.list_audit_events($1, '{org}')"),
            format!(
                "select * from roster.get_member($1, '{org}', '{}')",
                w.other_tenant_user
            ),
            format!(
                r#"select * from roster.update_organization($1, '{org}', '{{"name": "Taken"}}')"#
            ),
            format!("select * from roster.delete_organization($1, '{org}')"),
            format!(
                "select * from roster.add_member($1, '{org}', '{}')",
                w.non_member
            ),
            format!(
                "select * from roster.update_member($1, '{org}', '{}', 'admin')",
                w.other_tenant_user
            ),
            format!(
                "select * from roster.remove_member($1, '{org}', '{}')",
                w.other_tenant_user
            ),
            format!("select * from roster.remove_member($1, '{org}', $1)"),
            format!("select * from roster.accept_invitation($1, '{org}')"),
        ];
        for actor in [Actor::Owner, Actor::TenantAdmin] {
            for sql in &calls {
                let got = attempt_rolled_back(&mut client, sql, &[&w.id(actor)]).await;
                assert_eq!(got, Err("RNFND".to_owned()), "{actor} on {which}: `{sql}`");
            }
        }
    }
}
