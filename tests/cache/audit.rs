//! The audit trail: every change to organizations and memberships, through the API or by raw
//! SQL, with its actor when a roster function knows it; readable by owners and admins, newest
//! first, paginated; append-only even for a superuser.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

/// (action, actor, target user) of one event.
type Event = (String, Option<Uuid>, Option<Uuid>);

fn uuid_or_null(value: &Value) -> Option<Uuid> {
    value
        .as_str()
        .map(|s| s.parse().expect("a UUID in the audit event"))
}

/// Every event of the organization, newest first, read page by page (`limit`) as `token`;
/// asserts `has_more` on every page.
async fn read_all(app: &TestApp, token: &str, org: Uuid, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let query = format!("?limit={limit}&offset={}", events.len());
        let reply = app.audit_events(token, org, &query).await;
        assert_eq!(200, reply.status, "audit-events{query}: {reply:?}");
        let page = reply.json();
        let data = page["data"].as_array().expect("data").clone();
        let has_more = page["has_more"].as_bool().expect("has_more");
        assert!(data.len() <= limit, "audit-events{query}: page too long");
        events.extend(data);
        if !has_more {
            return events;
        }
        assert!(!events.is_empty(), "has_more on an empty page");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_with_its_actor_and_read_newest_first() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let leaver = app.user("leaver").await;
    let outsider = app.user("outsider").await;
    let login: String = app
        .sql
        .query_one("select session_user::text as login", &[])
        .await
        .and_then(|row| row.try_get("login"))
        .expect("session_user");
    let o = owner.token.as_str();

    let created = app.create_org_api(o, "audited").await;
    assert_eq!(201, created.status, "{created:?}");
    let org: Uuid = uuid_or_null(&created.json()["id"]).expect("id");
    let steps = [
        (
            "add member",
            app.add_member_api(o, org, member.id, "member").await,
            201,
        ),
        (
            "add leaver",
            app.add_member_api(o, org, leaver.id, "member").await,
            201,
        ),
        (
            "promote leaver",
            app.patch_member(o, org, leaver.id, &json!({"role": "admin"}))
                .await,
            200,
        ),
        (
            "remove leaver",
            app.remove_member_api(o, org, leaver.id).await,
            204,
        ),
        (
            "rename",
            app.patch_org(o, org, &json!({"name": "Audited renamed"}))
                .await,
            200,
        ),
    ];
    for (what, reply, expected) in steps {
        assert_eq!(expected, reply.status, "{what}: {reply:?}");
    }
    // A DBA's raw SQL: no roster function, so no actor.
    app.exec(
        "update roster.organization_memberships set last_active_at = now() \
         where organization_id = $1 and user_id = $2",
        &[&org, &member.id],
    )
    .await;

    let expected: Vec<Event> = [
        ("membership.updated", None, Some(member.id)),
        ("organization.updated", Some(owner.id), None),
        ("membership.removed", Some(owner.id), Some(leaver.id)),
        ("membership.updated", Some(owner.id), Some(leaver.id)),
        ("membership.created", Some(owner.id), Some(leaver.id)),
        ("membership.created", Some(owner.id), Some(member.id)),
        ("membership.created", Some(owner.id), Some(owner.id)),
        ("organization.created", Some(owner.id), None),
    ]
    .into_iter()
    .map(|(action, actor, target)| (action.to_owned(), actor, target))
    .collect();

    for limit in [3, 50] {
        let events = read_all(&app, o, org, limit).await;
        let actual: Vec<Event> = events
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().expect("action").to_owned(),
                    uuid_or_null(&e["actor_id"]),
                    uuid_or_null(&e["target_user_id"]),
                )
            })
            .collect();
        assert_eq!(
            expected, actual,
            "audit events, newest first, pages of {limit}"
        );
        let ids: Vec<i64> = events
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
        for event in &events {
            assert_eq!(login, event["db_user"], "the database login: {event}");
            assert_eq!(json!(org), event["organization_id"], "{event}");
            let creation = event["action"]
                .as_str()
                .is_some_and(|a| a.ends_with(".created"));
            assert_eq!(creation, event["before"].is_null(), "before of {event}");
            assert!(!event["after"].is_null(), "after of {event}");
        }
        let rename = &events[1];
        assert_eq!("Org audited", rename["before"]["name"], "{rename}");
        assert_eq!("Audited renamed", rename["after"]["name"], "{rename}");
    }

    // Owners and admins only; to a non-member the organization does not exist.
    let refusals = [
        ("a member", member.token.as_str(), 403),
        ("a non-member", outsider.token.as_str(), 404),
    ];
    for (who, token, expected) in refusals {
        let reply = app.audit_events(token, org, "").await;
        assert_eq!(
            expected, reply.status,
            "{who} reading the audit trail: {reply:?}"
        );
    }

    // Deleted through the API: the organization is invisible now, so read the table.
    let reply = app.delete_org(o, org).await;
    assert_eq!(204, reply.status, "{reply:?}");
    let row = app
        .sql
        .query_one(
            "select action, actor_id, db_user from roster.audit_events \
             where organization_id = $1 order by id desc limit 1",
            &[&org],
        )
        .await
        .expect("the last audit event");
    let last: (String, Option<Uuid>, String) =
        (row.get("action"), row.get("actor_id"), row.get("db_user"));
    assert_eq!(
        ("organization.deleted".to_owned(), Some(owner.id), login),
        last
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_is_append_only() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    app.org(&owner, "acme").await;
    let count = || async {
        app.sql
            .query_one("select count(*) as n from roster.audit_events", &[])
            .await
            .and_then(|row| row.try_get::<_, i64>("n"))
            .expect("count audit events")
    };
    let before = count().await;
    assert!(before >= 2, "the organization and its owner were audited");

    let nil = Uuid::nil();
    let cases = [
        (
            Some("roster_app"),
            "update roster.audit_events set action = 'organization.updated'".to_owned(),
            "42501",
        ),
        (
            Some("roster_app"),
            "delete from roster.audit_events".to_owned(),
            "42501",
        ),
        (
            Some("roster_app"),
            "select * from roster.audit_events".to_owned(),
            "42501",
        ),
        (
            Some("roster_app"),
            format!(
                "insert into roster.audit_events (tenant_id, action, organization_id) \
                 values ('{nil}', 'organization.updated', '{nil}')"
            ),
            "42501",
        ),
        (
            None,
            "update roster.audit_events set action = 'organization.updated'".to_owned(),
            "RAPND",
        ),
        (None, "delete from roster.audit_events".to_owned(), "RAPND"),
        (None, "truncate roster.audit_events".to_owned(), "RAPND"),
    ];
    let mut client = app.connect().await;
    for (role, statement, expected) in cases {
        let who = role.unwrap_or("the superuser");
        let transaction = client.transaction().await.expect("begin");
        if let Some(role) = role {
            transaction
                .batch_execute(&format!("set local role {role}"))
                .await
                .expect("set role");
        }
        let error = transaction
            .batch_execute(&statement)
            .await
            .expect_err(&format!("{who}: {statement} should fail"));
        assert_eq!(
            Some(expected),
            error.code().map(|c| c.code()),
            "{who}: {statement}: {error:?}"
        );
        transaction.rollback().await.expect("rollback");
    }
    assert_eq!(before, count().await, "no audit event changed");
}
