//! Read-your-writes: a write's response names its transaction in `Roster-Consistency`; a
//! request that sends it back is never answered from cache state older than that write.

use std::time::Instant;

use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, spawn_app_with, AppOptions, Reply, TestApp};

/// A request without a token of its own; returns the response's token too.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
) -> (Reply, Option<String>) {
    app.send_after(method, path, Some(token), body, None).await
}

/// Renames the organization's description through the API and returns the write's token.
async fn describe(app: &TestApp, token: &str, org: Uuid, description: &str) -> String {
    let body = json!({ "description": description });
    let path = format!("/organizations/{org}");
    let (reply, written) = send(app, Method::PATCH, &path, token, Some(&body)).await;
    assert_eq!(200, reply.status, "{reply:?}");
    written.expect("a write names its transaction")
}

async fn get_org_after(app: &TestApp, token: &str, org: Uuid, after: Option<&str>) -> String {
    let path = format!("/organizations/{org}");
    let (reply, written) = app
        .send_after(Method::GET, &path, Some(token), None, after)
        .await;
    assert_eq!(200, reply.status, "{reply:?}");
    assert_eq!(None, written, "a read names no transaction");
    reply.json()["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_sends_a_writes_token_sees_the_write_even_when_the_stream_lags() {
    let app = spawn_app_with(AppOptions {
        through_proxy: true,
        ..AppOptions::default()
    })
    .await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    describe(&app, &owner.token, org, "before").await;
    app.wait_for_minimums(org, owner.id).await;
    assert_eq!("before", get_org_after(&app, &owner.token, org, None).await);
    let (_, trips) = app
        .counted(get_org_after(&app, &owner.token, org, None))
        .await;
    assert_eq!(0, trips, "the organization is cached");

    // The stream stops delivering (its poll now waits for its 1 s bound): the cache still
    // holds "before" and nothing tells it otherwise.
    app.proxy.as_ref().expect("proxy").freeze_listener();
    let frozen = Instant::now();
    let token = describe(&app, &owner.token, org, "after").await;
    // The token is the write's transaction: the one that logged the organization's change.
    let same: bool = app
        .sql
        .query_one(
            "select exists (select from roster.change_log \
                             where xid = $1::text::xid8 and object_id = $2)",
            &[&token, &org],
        )
        .await
        .expect("look the change up")
        .get(0);
    assert!(same, "{token} is not the transaction that wrote the row");

    let fallbacks = app.metric("roster_consistency_fallbacks_total").await;
    let (seen, trips) = app
        .counted(get_org_after(&app, &owner.token, org, Some(&token)))
        .await;
    assert_eq!("after", seen);
    assert!(trips >= 1, "read from the database");
    assert!(app.metric("roster_consistency_fallbacks_total").await > fallbacks);

    // Without the token the same read is answered from the cache, stale, for as long as the
    // cache is still in use (until the frozen poll's bound ends the stream).
    let (unasked, trips) = app
        .counted(get_org_after(&app, &owner.token, org, None))
        .await;
    if app.cache_state().await == "ok" {
        assert_eq!(("before", 0), (unasked.as_str(), trips));
    } else {
        println!(
            "the stream was declared lost {:?} after the freeze, before the read without \
             the token: its staleness was not observed",
            frozen.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_listener_has_applied_is_answered_from_the_cache() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    assert_eq!("", get_org_after(&app, &owner.token, org, None).await);
    let token = describe(&app, &owner.token, org, "new").await;
    // At once: the listener has applied it within the wait, or the database answers.
    assert_eq!(
        "new",
        get_org_after(&app, &owner.token, org, Some(&token)).await
    );
    let (seen, trips) = app
        .counted(get_org_after(&app, &owner.token, org, Some(&token)))
        .await;
    assert_eq!(("new", 0), (seen.as_str(), trips), "served from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_successful_write_names_its_transaction_and_a_refused_one_does_not() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let org = app.org(&owner, "acme").await;
    let members = format!("/organizations/{org}/members");
    let body = json!({"user_id": member.id, "role": "member"});
    let (added, added_in) = send(&app, Method::POST, &members, &owner.token, Some(&body)).await;
    let membership = format!("{members}/{}", member.id);
    let (removed, removed_in) = send(&app, Method::DELETE, &membership, &owner.token, None).await;
    let body = json!({"description": "no"});
    let path = format!("/organizations/{org}");
    let (refused, refused_in) =
        send(&app, Method::PATCH, &path, &stranger.token, Some(&body)).await;
    assert_eq!(
        (201, 204, 404),
        (added.status, removed.status, refused.status)
    );
    let added: u64 = added_in.expect("201 names it").parse().unwrap();
    let removed: u64 = removed_in.expect("204 names it").parse().unwrap();
    assert!(added < removed, "{added} then {removed}");
    assert_eq!(None, refused_in);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_token_is_refused_naming_the_header() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    let path = format!("/organizations/{org}");
    for bad in ["", "abc", "-1", "1.5", "0x10", "18446744073709551616"] {
        let (reply, _) = app
            .send_after(Method::GET, &path, Some(&owner.token), None, Some(bad))
            .await;
        assert_eq!(400, reply.status, "{bad:?}: {reply:?}");
        assert!(
            reply.text.contains("Roster-Consistency"),
            "{bad:?}: {reply:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_a_write_still_names_its_transaction_and_reads_are_current() {
    let app = spawn_app_with(AppOptions {
        redis_url: None,
        ..AppOptions::default()
    })
    .await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    let token = describe(&app, &owner.token, org, "uncached").await;
    assert_eq!(
        "uncached",
        get_org_after(&app, &owner.token, org, Some(&token)).await
    );
}
