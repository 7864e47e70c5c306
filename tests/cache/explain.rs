//! Explanations (`POST /authz/explain`) come from the cache like checks, and stay exact: a role,
//! membership, grant or parent changed in psql (functions or raw SQL) is explained by the next
//! request after it commits; a cached explanation is not served past the expiry it depended
//! on; and a cached explanation is never given to an asker who may not have it.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, wait_for, Reply, TestApp, TestUser, INVALIDATION_DEADLINE};

struct World {
    app: TestApp,
    service: String,
    owner: TestUser,
    user: TestUser,
    org: Uuid,
}

impl World {
    /// An owner, and a plain member of its organization; the tenant registers `invoice:*`
    /// `model:update` and `project:read` and the organization has an `approver` role (`invoice:*`).
    async fn build() -> World {
        let app = spawn_app().await;
        let owner = app.user("owner").await;
        let user = app.user("clerk").await;
        let org = app.org(&owner, "acme").await;
        let service = app.service_token(app.tenant);
        let names: Vec<Value> = [
            "invoice:read",
            "invoice:approve",
            "model:update",
            "project:read",
        ]
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
            "select roster.create_role($1, $2, 'approver', 'Approver', null, array['invoice:*'])",
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

    /// `POST /authz/explain` about `about` (the caller itself when None) as `token`.
    async fn explain(
        &self,
        token: &str,
        about: Option<Uuid>,
        permission: &str,
        model: Option<&str>,
    ) -> Reply {
        let mut body = json!({"organization_id": self.org, "permission": permission});
        if let Some(user) = about {
            body["user_id"] = json!(user);
        }
        if let Some(model) = model {
            body["resource_type"] = json!("model");
            body["resource_id"] = json!(model);
        }
        self.app
            .send(
                reqwest::Method::POST,
                "/authz/explain",
                Some(token),
                Some(&body),
            )
            .await
    }

    /// The service's explanation of the member's `permission` (on model `model` when given).
    async fn of_member(&self, permission: &str, model: Option<&str>) -> Value {
        let reply = self
            .explain(&self.service, Some(self.user.id), permission, model)
            .await;
        assert_eq!(200, reply.status, "explain: {reply:?}");
        reply.json()
    }

    /// Waits until the explanation's `reason` is `expected`, then asserts that the same
    /// explanation comes again without a database round trip.
    async fn until(&self, what: &str, permission: &str, model: Option<&str>, expected: &str) {
        let (answer, _) = wait_for(what, INVALIDATION_DEADLINE, || async {
            let answer = self.of_member(permission, model).await;
            (answer["reason"] == expected).then_some(answer)
        })
        .await;
        let (cached, trips) = self.app.counted(self.of_member(permission, model)).await;
        assert_eq!(answer, cached, "{what}: cached after the change");
        assert_eq!(0, trips, "{what}: the new explanation is cached");
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
async fn explanations_follow_every_change_made_in_psql() {
    let w = World::build().await;
    w.until("a member", "invoice:approve", None, "role_lacks_permission")
        .await;
    let cached = w.of_member("invoice:approve", None).await;
    assert_eq!(json!(false), cached["allowed"], "{cached}");
    assert_eq!("member", cached["via_role"], "{cached}");

    w.sql("select roster.update_member($owner, $org, $user, p_role => 'approver')")
        .await;
    w.until(
        "given the approver role",
        "invoice:approve",
        None,
        "member_role",
    )
    .await;
    let allowed = w.of_member("invoice:approve", None).await;
    assert_eq!("approver", allowed["via_role"], "{allowed}");
    assert_eq!("invoice:*", allowed["via_grant"], "{allowed}");

    w.sql(
        "update roster.roles set permissions = array['invoice:read'] \
          where organization_id = $org and key = 'approver'",
    )
    .await;
    w.until(
        "the role narrowed by raw SQL",
        "invoice:approve",
        None,
        "role_lacks_permission",
    )
    .await;

    w.sql(
        "update roster.organization_memberships set status = 'suspended' \
          where organization_id = $org and user_id = $user",
    )
    .await;
    w.until("suspended by raw SQL", "invoice:read", None, "suspended")
        .await;

    w.sql(
        "update roster.organization_memberships set status = 'active' \
          where organization_id = $org and user_id = $user",
    )
    .await;
    w.until("active again", "invoice:read", None, "member_role")
        .await;

    // On a resource: a grant to a group on the model's parent project.
    for statement in [
        "select roster.create_role($owner, $org, 'editor', 'Editor', null, array['model:update'])",
        "select roster.create_group($owner, $org, 'eng', 'Eng')",
        "select roster.add_group_member($owner, $org, 'eng', $user)",
        "select roster.grant_role($owner, $org, 'group', 'eng', 'editor', 'project', 'p1')",
    ] {
        w.sql(statement).await;
    }
    w.until(
        "no parent yet",
        "model:update",
        Some("42"),
        "role_lacks_permission",
    )
    .await;
    w.sql("select roster.set_resource_parent($owner, $org, 'model', '42', 'project', 'p1')")
        .await;
    w.until(
        "under the granted project",
        "model:update",
        Some("42"),
        "grant",
    )
    .await;
    let granted = w.of_member("model:update", Some("42")).await;
    assert_eq!(json!(["eng"]), granted["via_groups"], "{granted}");
    assert_eq!("p1", granted["via_resource_id"], "{granted}");

    w.sql(
        "update roster.group_members set deleted_at = now() \
          where organization_id = $org and user_id = $user",
    )
    .await;
    w.until(
        "out of the group by raw SQL",
        "model:update",
        Some("42"),
        "role_lacks_permission",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_explanation_goes_only_to_askers_who_may_have_it() {
    let w = World::build().await;
    let outsider = w.app.user("outsider").await;
    let other_tenant = w.app.create_tenant("globex").await;
    let other_service = w.app.service_token(other_tenant);

    // Cached by those who may ask: the owner (members:read), the member itself, its service.
    for token in [&w.owner.token, &w.service] {
        let (first, _) = w
            .app
            .counted(w.explain(token, Some(w.user.id), "invoice:read", None))
            .await;
        assert_eq!(200, first.status, "{first:?}");
        let (again, trips) = w
            .app
            .counted(w.explain(token, Some(w.user.id), "invoice:read", None))
            .await;
        assert_eq!((200, 0), (again.status, trips), "warm: {again:?}");
        assert_eq!(first.json(), again.json());
    }
    let (own, _) = w
        .app
        .counted(w.explain(&w.user.token, None, "invoice:read", None))
        .await;
    assert_eq!(200, own.status, "{own:?}");
    let (own_again, trips) = w
        .app
        .counted(w.explain(&w.user.token, None, "invoice:read", None))
        .await;
    assert_eq!((200, 0), (own_again.status, trips), "warm: {own_again:?}");

    // Not to a user who cannot see the organization, nor to another tenant's service, however
    // warm the entry is.
    for _ in 0..2 {
        let reply = w
            .explain(&outsider.token, Some(w.user.id), "invoice:read", None)
            .await;
        assert_eq!(404, reply.status, "an outsider: {reply:?}");
        let reply = w
            .explain(&other_service, Some(w.user.id), "invoice:read", None)
            .await;
        assert_eq!(404, reply.status, "another tenant's service: {reply:?}");
        assert_eq!("user_not_found", reply.json()["error"]["code"], "{reply:?}");
    }

    // Nor to the member once it is deleted, by raw SQL.
    w.app
        .exec(
            "update roster.users set deleted_at = now() where id = $1",
            &[&w.user.id],
        )
        .await;
    wait_for(
        "the deleted member refused",
        INVALIDATION_DEADLINE,
        || async {
            let reply = w.explain(&w.user.token, None, "invoice:read", None).await;
            (reply.status == 401).then_some(())
        },
    )
    .await;
    // The owner still may ask about it: the explanation says why it may do nothing now.
    let reply = w
        .explain(&w.owner.token, Some(w.user.id), "invoice:read", None)
        .await;
    assert_eq!(200, reply.status, "{reply:?}");
    assert_eq!("user_deleted", reply.json()["reason"], "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cached_explanation_outlives_the_expiry_it_depends_on() {
    let w = World::build().await;
    let lifetime = Duration::from_secs(2);
    w.app
        .exec(
            &format!(
                "select roster.grant_role($1, $2, 'user', $3::uuid::text, 'approver', null, null, \
                        now() + interval '{} milliseconds')",
                lifetime.as_millis()
            ),
            &[&w.owner.id, &w.org, &w.user.id],
        )
        .await;
    let started = std::time::Instant::now();
    let before = w.of_member("invoice:approve", None).await;
    assert_eq!("grant", before["reason"], "{before}");
    let (cached, trips) = w.app.counted(w.of_member("invoice:approve", None)).await;
    assert_eq!((&before, 0), (&cached, trips), "cached before it expires");

    // Nothing is written when the grant expires: time alone must end the cached explanation.
    tokio::time::sleep((lifetime + Duration::from_millis(100)).saturating_sub(started.elapsed()))
        .await;
    let after = w.of_member("invoice:approve", None).await;
    assert_eq!(json!(false), after["allowed"], "expired: {after}");
}
