//! The read–invalidate race, forced with the fill hook: a read fetches the old state from the
//! database, a change commits and its notification is applied, and only then does the read
//! write what it fetched to the cache. That entry must never be served.

use std::sync::Arc;

use roster::cache::keys;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    spawn_app_with, wait_for, AppOptions, Gate, Reply, TestApp, TestUser, INVALIDATION_DEADLINE,
};

#[derive(Clone, Copy, Debug)]
enum Read {
    Organization,
    Members,
    Me,
    Check,
    OrganizationList,
}

#[derive(Clone, Copy, Debug)]
enum Change {
    /// `update roster.organization_memberships set deleted_at = now()`.
    RemoveMember,
    /// `update roster.organizations set name = name || ' renamed'`.
    RenameOrganization,
}

impl Read {
    async fn send(self, app: &TestApp, user: &TestUser, org: Uuid) -> Reply {
        let token = user.token.as_str();
        match self {
            Read::Organization => app.get_org(token, org).await,
            Read::Members => app.members(token, org).await,
            Read::Me => app.me(token, org).await,
            Read::Check => app.check(token, &[(org, "organization:read")]).await,
            Read::OrganizationList => app.orgs(token, "").await,
        }
    }

    /// The cache keys the held read writes.
    fn keys(self, tenant: Uuid, user: Uuid, org: Uuid) -> Vec<String> {
        let access = keys::access(tenant, org, user).name;
        match self {
            Read::Organization => vec![access, keys::organization(tenant, org).name],
            Read::Members => vec![access, keys::members(tenant, org, 20, 0).name],
            Read::Me | Read::Check => vec![access],
            Read::OrganizationList => vec![
                keys::identity(tenant, user).name,
                keys::user_organizations(tenant, user, 50, 0).name,
            ],
        }
    }
}

impl Change {
    async fn commit(self, app: &TestApp, user: Uuid, org: Uuid) {
        match self {
            Change::RemoveMember => {
                app.exec(
                    "update roster.organization_memberships set deleted_at = now() \
                     where organization_id = $1 and user_id = $2",
                    &[&org, &user],
                )
                .await
            }
            Change::RenameOrganization => {
                app.exec(
                    "update roster.organizations set name = name || ' renamed' where id = $1",
                    &[&org],
                )
                .await
            }
        }
    }
}

/// Whether `reply` shows the state before (`changed` false) or after the change, for an
/// organization first named `original`.
fn shows(read: Read, change: Change, reply: &Reply, changed: bool, original: &str) -> bool {
    let name = match changed {
        true => format!("{original} renamed"),
        false => original.to_owned(),
    };
    let body = || -> Value { reply.json() };
    match (read, change, changed) {
        (Read::Check, Change::RemoveMember, changed) => {
            reply.status == 200 && body()["results"][0]["allowed"] == Value::Bool(!changed)
        }
        (Read::OrganizationList, Change::RemoveMember, changed) => {
            reply.status == 200 && body()["data"].as_array().expect("data").is_empty() == changed
        }
        (Read::OrganizationList, Change::RenameOrganization, _) => {
            reply.status == 200 && body()["data"][0]["name"] == name
        }
        (Read::Organization, Change::RenameOrganization, _) => {
            reply.status == 200 && body()["name"] == name
        }
        (_, Change::RemoveMember, false) | (_, Change::RenameOrganization, _) => {
            reply.status == 200
        }
        (_, Change::RemoveMember, true) => reply.status == 404,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_fetched_the_old_state_cannot_cache_it_after_the_invalidation() {
    let gate = Arc::new(Gate::default());
    let app = spawn_app_with(AppOptions {
        fill_hook: Some(gate.hook()),
        ..AppOptions::default()
    })
    .await;
    let cases = [
        (Read::Organization, Change::RemoveMember),
        (Read::Members, Change::RemoveMember),
        (Read::Me, Change::RemoveMember),
        (Read::Check, Change::RemoveMember),
        (Read::OrganizationList, Change::RemoveMember),
        (Read::Organization, Change::RenameOrganization),
        (Read::OrganizationList, Change::RenameOrganization),
    ];
    for (i, (read, change)) in cases.into_iter().enumerate() {
        let what = format!("{read:?} held across {change:?}");
        // Users and an organization of its own per case, so that every read starts cold.
        let owner = app.user(&format!("owner-{i}")).await;
        let member = app.user(&format!("member-{i}")).await;
        let slug = format!("race-{i}");
        let org = app.org(&owner, &slug).await;
        let original = format!("Org {slug}");
        app.add(&owner, org, &member, "member").await;
        // The fixtures' notifications have all arrived: the next one is the change's.
        app.wait_for_minimums(org, member.id).await;
        let notifications = app.metric("roster_notifications_total").await;

        gate.arm();
        let held = read.send(&app, &member, org);
        let orchestrate = async {
            gate.reached().await;
            change.commit(&app, member.id, org).await;
            wait_for(
                "the change's notification",
                INVALIDATION_DEADLINE,
                || async {
                    let now = app.metric("roster_notifications_total").await;
                    (now > notifications).then_some(())
                },
            )
            .await;
            app.wait_for_minimums(org, member.id).await;
            gate.release();
        };
        let (held, ()) = tokio::join!(held, orchestrate);
        gate.disarm();

        assert!(
            shows(read, change, &held, false, &original),
            "{what}: the held read answers the state it read: {held:?}"
        );
        for key in read.keys(app.tenant, member.id, org) {
            assert!(
                app.redis_get(&key).await.is_some(),
                "{what}: the held read should have written {key} after the invalidation"
            );
        }
        let (next, trips) = app.counted(read.send(&app, &member, org)).await;
        assert!(
            shows(read, change, &next, true, &original),
            "{what}: the next read must not be served the stale entry: {next:?}"
        );
        assert!(trips >= 1, "{what}: the stale entry should be a miss");
    }
}
