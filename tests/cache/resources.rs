//! Resource checks stay exact through the cache: a group membership, a grant, a parent, a
//! group's place in the tree, each changed in psql (functions or raw SQL), is honoured by the
//! next check after it commits; and a cached answer, resource or organization-wide, is not
//! served past the earliest expiry it depended on, though nothing was written.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, wait_for, Reply, TestApp, TestUser, INVALIDATION_DEADLINE};

/// A service's check of (user, org, permission) on model `model` (organization-wide when None).
async fn check(
    app: &TestApp,
    token: &str,
    user: Uuid,
    org: Uuid,
    permission: &str,
    model: Option<&str>,
) -> bool {
    let mut one = json!({"organization_id": org, "permission": permission, "user_id": user});
    if let Some(model) = model {
        one["resource_type"] = json!("model");
        one["resource_id"] = json!(model);
    }
    let reply: Reply = app
        .send(
            reqwest::Method::POST,
            "/authz/check",
            Some(token),
            Some(&json!({ "checks": [one] })),
        )
        .await;
    assert_eq!(200, reply.status, "check: {reply:?}");
    reply.json()["results"][0]["allowed"]
        .as_bool()
        .expect("allowed")
}

struct World {
    app: TestApp,
    service: String,
    owner: TestUser,
    user: TestUser,
    org: Uuid,
}

impl World {
    async fn build() -> World {
        let app = spawn_app().await;
        let owner = app.user("owner").await;
        let user = app.user("engineer").await;
        let org = app.org(&owner, "acme").await;
        let service = app.service_token(app.tenant);
        let names: Vec<Value> = ["model:read", "model:update", "project:read"]
            .iter()
            .map(|n| json!({"name": n}))
            .collect();
        let reply = app
            .send(
                reqwest::Method::POST,
                "/tenant/permissions",
                Some(&service),
                Some(&json!(names)),
            )
            .await;
        assert_eq!(200, reply.status, "{reply:?}");
        app.exec(
            "select roster.create_role($1, $2, 'editor', 'Editor', null, array['model:read', 'model:update'])",
            &[&owner.id, &org],
        )
        .await;
        app.add(&owner, org, &user, "member").await;
        World {
            app,
            service,
            owner,
            user,
            org,
        }
    }

    async fn model(&self, permission: &str, model: &str) -> bool {
        check(
            &self.app,
            &self.service,
            self.user.id,
            self.org,
            permission,
            Some(model),
        )
        .await
    }

    /// Waits until the check on `model` answers `expected`, then asserts the answer is cached.
    async fn until(&self, what: &str, model: &str, expected: bool) {
        wait_for(what, INVALIDATION_DEADLINE, || async {
            (self.model("model:update", model).await == expected).then_some(())
        })
        .await;
        let (answer, trips) = self.app.counted(self.model("model:update", model)).await;
        assert_eq!(expected, answer, "{what}: cached after the change");
        assert_eq!(0, trips, "{what}: the new answer is cached");
    }

    /// A statement as a DBA types it: `$owner`, `$org` and `$user` are the world's ids.
    async fn sql(&self, statement: &str) {
        let ids = [
            ("$owner", self.owner.id),
            ("$org", self.org),
            ("$user", self.user.id),
        ];
        self.app.exec_with_ids(statement, &ids).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_checks_follow_every_change_made_in_psql() {
    let w = World::build().await;
    for statement in [
        "select roster.create_group($owner, $org, 'eng', 'Eng')",
        "select roster.create_group($owner, $org, 'ml', 'ML', null, 'eng')",
        "select roster.add_group_member($owner, $org, 'ml', $user)",
        "select roster.grant_role($owner, $org, 'group', 'eng', 'editor', 'project', 'p1')",
    ] {
        w.sql(statement).await;
    }
    w.until("no parent yet", "42", false).await;

    w.sql("select roster.set_resource_parent($owner, $org, 'model', '42', 'project', 'p1')")
        .await;
    w.until("a parent under the granted project", "42", true)
        .await;

    w.sql(
        "delete from roster.resource_parents where organization_id = $org and resource_id = '42'",
    )
    .await;
    w.until("the parent removed by raw SQL", "42", false).await;

    w.sql("select roster.set_resource_parent($owner, $org, 'model', '42', 'project', 'p1')")
        .await;
    w.until("the parent back", "42", true).await;

    w.sql("update roster.groups set parent_id = null where organization_id = $org and key = 'ml'")
        .await;
    w.until("ml moved out of eng by raw SQL", "42", false).await;

    w.sql("select roster.update_group($owner, $org, 'ml', '{\"parent_key\": \"eng\"}')")
        .await;
    w.until("ml back under eng", "42", true).await;

    w.sql(
        "update roster.group_members set deleted_at = now() where organization_id = $org \
            and user_id = $user",
    )
    .await;
    w.until("out of the group by raw SQL", "42", false).await;

    w.sql("select roster.add_group_member($owner, $org, 'eng', $user)")
        .await;
    w.until("in eng itself", "42", true).await;

    w.sql("update roster.grants set deleted_at = now() where organization_id = $org")
        .await;
    w.until("the grant revoked by raw SQL", "42", false).await;

    w.sql("select roster.grant_role($owner, $org, 'user', $user::text, 'editor', 'model', '42')")
        .await;
    w.until("a direct grant", "42", true).await;
    assert!(!w.model("model:update", "43").await, "on 42 only");

    w.sql("select roster.update_member($owner, $org, $user, p_status => 'suspended')")
        .await;
    w.until("suspended", "42", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cached_answer_outlives_the_expiry_it_depends_on() {
    let w = World::build().await;
    let lifetime = Duration::from_secs(2);
    let expires_in = format!("{} milliseconds", lifetime.as_millis());
    w.app
        .exec(
            &format!(
                "select roster.grant_role($1, $2, 'user', $3::uuid::text, 'editor', 'model', '9', \
                        now() + interval '{expires_in}')"
            ),
            &[&w.owner.id, &w.org, &w.user.id],
        )
        .await;
    let temp = w.app.user("temp").await;
    w.app
        .exec(
            &format!(
                "select roster.add_member($1, $2, $3, 'admin', 'active', now() + interval '{expires_in}')"
            ),
            &[&w.owner.id, &w.org, &temp.id],
        )
        .await;
    let started = std::time::Instant::now();
    let members_read = || check(&w.app, &w.service, temp.id, w.org, "members:invite", None);

    assert!(
        w.model("model:update", "9").await,
        "the grant, before it expires"
    );
    assert!(members_read().await, "the membership, before it expires");
    let (cached, trips) = w.app.counted(w.model("model:update", "9")).await;
    assert!(cached && trips == 0, "the resource answer is cached");
    let (cached, trips) = w.app.counted(members_read()).await;
    assert!(cached && trips == 0, "the organization answer is cached");

    // Nothing is written when they expire: time alone must end both answers.
    tokio::time::sleep((lifetime + Duration::from_millis(100)).saturating_sub(started.elapsed()))
        .await;
    assert!(!w.model("model:update", "9").await, "the grant has expired");
    assert!(!members_read().await, "the membership has expired");
}

/// An allowed check on a resource, once cached, misses nothing: the tenant's catalogue (read
/// only to name a refused permission) is read with the resource's first answer, not looked up
/// and missed on every request after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_resource_check_counts_no_miss() {
    let w = World::build().await;
    w.sql("select roster.grant_role($owner, $org, 'user', $user::text, 'editor', 'model', '7')")
        .await;
    w.until("the grant", "7", true).await;
    let (hits, misses) = (
        w.app.metric("roster_cache_hits_total").await,
        w.app.metric("roster_cache_misses_total").await,
    );
    let (answer, trips) = w.app.counted(w.model("model:update", "7")).await;
    assert!(answer, "still allowed");
    assert_eq!(0, trips, "answered from the cache");
    assert_eq!(
        misses,
        w.app.metric("roster_cache_misses_total").await,
        "no key missed"
    );
    assert!(w.app.metric("roster_cache_hits_total").await > hits);
}
