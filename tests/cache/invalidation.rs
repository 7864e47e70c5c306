//! No stale answer after a change: once a change has committed and its notification had time
//! to arrive, a cached answer reflects it, whether the change came through the API, a roster.*
//! function on another connection, or raw SQL.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, wait_for, Reply, TestApp, INVALIDATION_DEADLINE};

/// Asserts that `probe` answers `before`, the second time from the cache, runs `change`, then
/// polls `probe` until it answers `after`. Returns how long after `change` returned the new
/// answer first appeared, and prints it.
async fn observe<P, PF, C>(
    app: &TestApp,
    what: &str,
    probe: P,
    before: impl Fn(&Reply) -> bool,
    change: C,
    after: impl Fn(&Reply) -> bool,
) -> Duration
where
    P: Fn() -> PF,
    PF: Future<Output = Reply>,
    C: Future<Output = ()>,
{
    let cold = probe().await;
    assert!(
        before(&cold),
        "{what}: unexpected answer before the change: {cold:?}"
    );
    let (warm, trips) = app.counted(probe()).await;
    assert!(before(&warm), "{what}: unexpected cached answer: {warm:?}");
    assert_eq!(
        0, trips,
        "{what}: the answer should be cached before the change"
    );

    change.await;
    let changed = Instant::now();
    let description = format!("{what} to show the change");
    wait_for(&description, INVALIDATION_DEADLINE, || async {
        let reply = probe().await;
        assert!(reply.status < 500, "{what}: {reply:?}");
        after(&reply).then_some(())
    })
    .await;
    // Until the first reply showing the change had arrived: an upper bound.
    let latency = changed.elapsed();
    println!("invalidation latency: {what}: {latency:?}");
    latency
}

fn status(expected: u16) -> impl Fn(&Reply) -> bool {
    move |reply| reply.status == expected
}

fn json_field(pointer: &'static str, expected: Value) -> impl Fn(&Reply) -> bool {
    move |reply| reply.status == 200 && reply.json().pointer(pointer) == Some(&expected)
}

/// The `/me` permissions include `permission`.
fn may(permission: &'static str) -> impl Fn(&Reply) -> bool {
    move |reply| {
        reply.status == 200
            && reply.json()["permissions"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p == permission))
    }
}

fn lacks(permission: &'static str) -> impl Fn(&Reply) -> bool {
    move |reply| reply.status == 200 && !may(permission)(reply)
}

/// The names of the organizations of a `GET /organizations` page.
fn names(reply: &Reply) -> Vec<String> {
    assert_eq!(200, reply.status, "{reply:?}");
    reply.json()["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|o| o["name"].as_str().expect("name").to_owned())
        .collect()
}

fn listed(expected: &'static [&'static str]) -> impl Fn(&Reply) -> bool {
    move |reply| names(reply) == expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_the_api_reach_cached_readers() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let o = owner.token.as_str();
    let app = &app;
    let mut latencies = Vec::new();

    // Removed by an owner: the member's cached grant goes.
    let member = app.user("removed").await;
    let org = app.org(&owner, "removal").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "DELETE member -> member's GET org 404",
            || app.get_org(m, org),
            status(200),
            async {
                let reply = app.remove_member_api(o, org, member.id).await;
                assert_eq!(204, reply.status, "{reply:?}");
            },
            status(404),
        )
        .await,
    );

    // Promoted: /me shows the new role's permissions.
    let member = app.user("promoted").await;
    let org = app.org(&owner, "promotion").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "PATCH member role admin -> /me",
            || app.me(m, org),
            lacks("members:invite"),
            async {
                let body = json!({"role": "admin"});
                let reply = app.patch_member(o, org, member.id, &body).await;
                assert_eq!(200, reply.status, "{reply:?}");
            },
            |reply| may("members:invite")(reply) && reply.json()["role"] == "admin",
        )
        .await,
    );

    // Suspended: the organization disappears for them.
    let member = app.user("suspended").await;
    let org = app.org(&owner, "suspension").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "PATCH member status suspended -> member's GET org 404",
            || app.get_org(m, org),
            status(200),
            async {
                let body = json!({"status": "suspended"});
                let reply = app.patch_member(o, org, member.id, &body).await;
                assert_eq!(200, reply.status, "{reply:?}");
            },
            status(404),
        )
        .await,
    );

    // Renamed: every reader's cached body changes.
    let member = app.user("reader").await;
    let org = app.org(&owner, "rename").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "PATCH org name -> GET org body",
            || app.get_org(m, org),
            json_field("/name", json!("Org rename")),
            async {
                let body = json!({"name": "Renamed"});
                let reply = app.patch_org(o, org, &body).await;
                assert_eq!(200, reply.status, "{reply:?}");
            },
            json_field("/name", json!("Renamed")),
        )
        .await,
    );
    latencies.push(
        observe(
            app,
            "PATCH org name -> GET /organizations",
            || app.orgs(m, ""),
            listed(&["Renamed"]),
            async {
                let body = json!({"name": "Renamed again"});
                let reply = app.patch_org(o, org, &body).await;
                assert_eq!(200, reply.status, "{reply:?}");
            },
            listed(&["Renamed again"]),
        )
        .await,
    );

    // A new member: member_count and the member list change.
    let newcomer = app.user("newcomer").await;
    latencies.push(
        observe(
            app,
            "POST member -> GET org member_count",
            || app.get_org(m, org),
            json_field("/member_count", json!(2)),
            async {
                let reply = app.add_member_api(o, org, newcomer.id, "member").await;
                assert_eq!(201, reply.status, "{reply:?}");
            },
            json_field("/member_count", json!(3)),
        )
        .await,
    );
    let other = app.org(&owner, "joined").await;
    latencies.push(
        observe(
            app,
            "POST member -> the newcomer's GET /organizations",
            || app.orgs(&newcomer.token, ""),
            listed(&["Renamed again"]),
            async {
                let reply = app.add_member_api(o, other, newcomer.id, "member").await;
                assert_eq!(201, reply.status, "{reply:?}");
            },
            listed(&["Org joined", "Renamed again"]),
        )
        .await,
    );

    // Deleted through the API.
    latencies.push(
        observe(
            app,
            "DELETE org -> member's GET org 404",
            || app.get_org(m, org),
            status(200),
            async {
                let reply = app.delete_org(o, org).await;
                assert_eq!(204, reply.status, "{reply:?}");
            },
            status(404),
        )
        .await,
    );
    println!("invalidation latencies through the API: {latencies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_sql_in_another_connection_reach_cached_readers() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let o = owner.token.as_str();
    let app = &app;
    let mut latencies = Vec::new();

    // A roster.* function called on another connection (not through the API).
    let member = app.user("leaver").await;
    let org = app.org(&owner, "function").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "select roster.remove_member(...) -> GET org 404",
            || app.get_org(m, org),
            status(200),
            app.exec(
                "select roster.remove_member($1, $2, $3)",
                &[&owner.id, &org, &member.id],
            ),
            status(404),
        )
        .await,
    );

    // Raw SQL on the tables, as a DBA or another service would change them.
    let member = app.user("raw-role").await;
    let org = app.org(&owner, "raw-role").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "update organization_memberships set role -> /me",
            || app.me(m, org),
            lacks("members:invite"),
            app.exec(
                "update roster.organization_memberships set role = 'admin' \
                 where organization_id = $1 and user_id = $2",
                &[&org, &member.id],
            ),
            |reply| may("members:invite")(reply) && reply.json()["role"] == "admin",
        )
        .await,
    );

    let org = app.org(&owner, "raw-deleted").await;
    let member = app.user("raw-deleted").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "update users set deleted_at -> GET org 401",
            || app.get_org(m, org),
            status(200),
            app.exec(
                "update roster.users set deleted_at = now() where id = $1",
                &[&member.id],
            ),
            status(401),
        )
        .await,
    );
    let member = app.user("raw-deleted-lister").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "update users set deleted_at -> GET /organizations 401",
            || app.orgs(m, ""),
            listed(&["Org raw-deleted"]),
            app.exec(
                "update roster.users set deleted_at = now() where id = $1",
                &[&member.id],
            ),
            status(401),
        )
        .await,
    );

    let admin = app.user("raw-admin").await;
    let org = app.org(&owner, "raw-admin").await;
    let a = admin.token.as_str();
    latencies.push(
        observe(
            app,
            "update users set is_tenant_admin -> /me of a non-member with the owner's permissions",
            || app.me(a, org),
            status(404),
            app.exec(
                "update roster.users set is_tenant_admin = true where id = $1",
                &[&admin.id],
            ),
            may("organization:delete"),
        )
        .await,
    );
    latencies.push(
        observe(
            app,
            "update users set is_tenant_admin = false -> GET org of a non-member 404",
            || app.get_org(a, org),
            status(200),
            app.exec(
                "update roster.users set is_tenant_admin = false where id = $1",
                &[&admin.id],
            ),
            status(404),
        )
        .await,
    );

    let member = app.user("raw-org-deleted").await;
    let org = app.org(&owner, "raw-org-deleted").await;
    app.add(&owner, org, &member, "member").await;
    let m = member.token.as_str();
    latencies.push(
        observe(
            app,
            "update organizations set deleted_at -> GET org 404",
            || app.get_org(m, org),
            status(200),
            app.exec(
                "update roster.organizations set deleted_at = now() where id = $1",
                &[&org],
            ),
            status(404),
        )
        .await,
    );

    let member = app.user("raw-email").await;
    let org = app.org(&owner, "raw-email").await;
    app.add(&owner, org, &member, "member").await;
    let emails = |reply: &Reply| -> Vec<String> {
        reply.json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|m| m["email"].as_str().expect("email").to_owned())
            .collect()
    };
    latencies.push(
        observe(
            app,
            "update users set email -> the cached member list",
            || app.members(o, org),
            |reply| reply.status == 200 && emails(reply).contains(&member.email),
            app.exec(
                "update roster.users set email = 'renamed@example.com' where id = $1",
                &[&member.id],
            ),
            |reply| reply.status == 200 && emails(reply).contains(&"renamed@example.com".into()),
        )
        .await,
    );
    // The inviter's email is shown too (invited_by.email of the members it added).
    let m = member.token.as_str();
    let inviter_email = |reply: &Reply| -> Option<String> {
        reply.json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .find(|row| row["email"] == "renamed@example.com")
            .and_then(|row| row["invited_by"]["email"].as_str().map(str::to_owned))
    };
    latencies.push(
        observe(
            app,
            "update users set email (of the inviter) -> the cached member list",
            || app.members(m, org),
            |reply| reply.status == 200 && inviter_email(reply) == Some(owner.email.clone()),
            app.exec(
                "update roster.users set email = 'boss@example.com' where id = $1",
                &[&owner.id],
            ),
            |reply| {
                reply.status == 200 && inviter_email(reply).as_deref() == Some("boss@example.com")
            },
        )
        .await,
    );
    println!("invalidation latencies by SQL: {latencies:?}");
}

/// A tenant change announces "everything of the tenant is stale": the listener starts a new
/// epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_change_makes_every_entry_stale() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    let tenant = app.tenant;
    observe(
        &app,
        "update tenants set deleted_at -> GET org 401",
        || app.get_org(&owner.token, org),
        status(200),
        app.exec(
            "update roster.tenants set deleted_at = now() where id = $1",
            &[&tenant],
        ),
        status(401),
    )
    .await;
}

/// A change of the built-in permission catalogue (by migration only) announces "every
/// permission is stale".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_catalogue_change_makes_every_entry_stale() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    observe(
        &app,
        "rename a built-in permission -> /me no longer lists the old name",
        || app.me(&owner.token, org),
        may("audit:read"),
        app.exec(
            "update roster.permissions set name = 'audit:view' where name = 'audit:read'",
            &[],
        ),
        lacks("audit:read"),
    )
    .await;
}

/// Built-in roles are immutable; a custom role's grants changed by raw SQL are seen by the
/// next request, in an organization's role and in a tenant-wide one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_edit_by_raw_sql_is_seen_by_the_next_request() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let reader = app.user("reader").await;
    let auditor = app.user("auditor").await;
    let org = app.org(&owner, "acme").await;
    app.exec(
        "insert into roster.roles (tenant_id, organization_id, key, name, permissions) \
         values ($1, $2, 'reader', 'Reader', array['organization:read', 'members:read']), \
                ($1, null, 'auditor', 'Auditor', array['organization:read', 'audit:read'])",
        &[&app.tenant, &org],
    )
    .await;
    app.add(&owner, org, &reader, "reader").await;
    app.add(&owner, org, &auditor, "auditor").await;
    observe(
        &app,
        "update an organization's role -> GET members 403",
        || app.members(&reader.token, org),
        status(200),
        app.exec(
            "update roster.roles set permissions = array['organization:read'] where key = 'reader'",
            &[],
        ),
        status(403),
    )
    .await;
    observe(
        &app,
        "update a tenant-wide role -> /me lacks audit:read",
        || app.me(&auditor.token, org),
        may("audit:read"),
        app.exec(
            "update roster.roles set permissions = array['organization:read'] where key = 'auditor'",
            &[],
        ),
        lacks("audit:read"),
    )
    .await;
}

/// NOTIFY is transactional: a rolled-back change announces nothing and leaves the cache warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_change_announces_nothing() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.org(&owner, "acme").await;
    let marker = app.org(&owner, "marker").await;
    app.add(&owner, org, &member, "member").await;
    assert_eq!(200, app.get_org(&member.token, org).await.status);
    let (reply, trips) = app.counted(app.get_org(&member.token, org)).await;
    assert_eq!((200, 0), (reply.status, trips), "cached: {reply:?}");
    let before = app.metric("roster_notifications_total").await;

    let mut client = app.connect().await;
    let transaction = client.transaction().await.expect("begin");
    transaction
        .execute(
            "update roster.organization_memberships set deleted_at = now() \
             where organization_id = $1 and user_id = $2",
            &[&org, &member.id],
        )
        .await
        .expect("remove the member");
    transaction.rollback().await.expect("rollback");
    // Notifications arrive in commit order: once a later committed change (one organization
    // notification) has arrived, a notification of the rolled-back one would have too.
    app.exec(
        "update roster.organizations set description = 'marker' where id = $1",
        &[&marker],
    )
    .await;
    let (after, _) = wait_for(
        "the marker's notification",
        INVALIDATION_DEADLINE,
        || async {
            let now = app.metric("roster_notifications_total").await;
            (now > before).then_some(now)
        },
    )
    .await;
    assert_eq!(before + 1, after, "only the committed change is announced");
    let (reply, trips) = app.counted(app.get_org(&member.token, org)).await;
    assert_eq!(
        (200, 0),
        (reply.status, trips),
        "the rolled-back change leaves the entry fresh: {reply:?}"
    );
}

/// A cached page of `GET /organizations` depends on the organizations it lists; it must also
/// change when an organization it does not list changes how the caller's list looks: one
/// renamed or deleted on an earlier page (the pages shift), or one restored (it reappears).
/// Returns the app, the member (in "Org aa", "Org bb" and "Org cc") and those organizations.
async fn member_of_three() -> (TestApp, crate::helpers::TestUser, [Uuid; 3]) {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let mut orgs = [Uuid::nil(); 3];
    for (slot, slug) in orgs.iter_mut().zip(["aa", "bb", "cc"]) {
        *slot = app.org(&owner, slug).await;
        app.add(&owner, *slot, &member, "member").await;
    }
    (app, member, orgs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_page_of_organizations_shifts_when_an_earlier_one_is_renamed() {
    let (app, member, [aa, _, _]) = member_of_three().await;
    observe(
        &app,
        "rename of the org on page 1 -> page 2 (limit=1&offset=1) shifts",
        || app.orgs(&member.token, "?limit=1&offset=1"),
        listed(&["Org bb"]),
        app.exec(
            "update roster.organizations set name = 'Org zz' where id = $1",
            &[&aa],
        ),
        listed(&["Org cc"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_page_of_organizations_shifts_when_an_earlier_one_is_deleted() {
    let (app, member, [aa, _, _]) = member_of_three().await;
    observe(
        &app,
        "soft delete of the org on page 1 -> page 2 (limit=1&offset=1) shifts",
        || app.orgs(&member.token, "?limit=1&offset=1"),
        listed(&["Org bb"]),
        app.exec(
            "update roster.organizations set deleted_at = now() where id = $1",
            &[&aa],
        ),
        listed(&["Org cc"]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_organization_reappears_in_the_cached_list() {
    let (app, member, [_, bb, _]) = member_of_three().await;
    app.exec(
        "update roster.organizations set deleted_at = now() where id = $1",
        &[&bb],
    )
    .await;
    observe(
        &app,
        "restore of a deleted org -> GET /organizations lists it again",
        || app.orgs(&member.token, ""),
        listed(&["Org aa", "Org cc"]),
        app.exec(
            "update roster.organizations set deleted_at = null where id = $1",
            &[&bb],
        ),
        listed(&["Org aa", "Org bb", "Org cc"]),
    )
    .await;
}

/// `GET /organizations/{id}` reports the seats used, which invitations change: an invitation
/// made through the API, and one revoked by raw SQL, both reach its cached readers (they bump
/// the organization's version, V27).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_change_the_cached_seats_used() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "seats").await;
    let o = owner.token.as_str();
    let app = &app;
    observe(
        app,
        "POST invitation -> GET org seats_used",
        || app.get_org(o, org),
        json_field("/seats_used", json!(1)),
        async {
            let body = json!({"email": "newcomer@example.com"});
            let path = format!("/organizations/{org}/invitations");
            let reply = app
                .send(reqwest::Method::POST, &path, Some(o), Some(&body))
                .await;
            assert_eq!(201, reply.status, "{reply:?}");
        },
        json_field("/seats_used", json!(2)),
    )
    .await;
    observe(
        app,
        "raw revocation -> GET org seats_used",
        || app.get_org(o, org),
        json_field("/seats_used", json!(2)),
        app.exec(
            "update roster.invitations set status = 'revoked' where organization_id = $1",
            &[&org],
        ),
        json_field("/seats_used", json!(1)),
    )
    .await;
}
