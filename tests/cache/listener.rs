//! The change listener's connection: when it ends, notifications are lost, so the cache must
//! be treated as stale until the listener is back; and a connection that silently stops
//! delivering must not keep the cache in use.

use std::time::Duration;

use crate::helpers::{spawn_app, spawn_app_with, wait_for, AppOptions, INVALIDATION_DEADLINE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_missed_while_the_listener_reconnects_is_never_served_stale() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "member").await;
    assert_eq!(200, app.get_org(&member.token, org).await.status);
    let (reply, trips) = app.counted(app.get_org(&member.token, org)).await;
    assert_eq!((200, 0), (reply.status, trips), "cached: {reply:?}");
    // Every fixture's notification has arrived (the last fixture's has, and they arrive in
    // commit order): from here on, the count moves only if the change below is heard.
    app.wait_for_minimums(org, member.id).await;
    let reconnects = app.metric("roster_listener_reconnects_total").await;
    let notifications = app.metric("roster_notifications_total").await;

    // Keep the listener from reconnecting (new connections to the database are refused, even
    // a superuser's), end its session, and remove the member while it cannot hear about it.
    app.allow_connections(false).await;
    let terminated: i64 = app
        .sql
        .query_one(
            "select count(*) filter (where pg_terminate_backend(pid, 5000)) as terminated \
               from pg_stat_activity \
              where datname = current_database() and application_name = 'roster change listener' \
                and pid <> pg_backend_pid()",
            &[],
        )
        .await
        .and_then(|row| row.try_get("terminated"))
        .expect("terminate the listener's session");
    assert_eq!(1, terminated, "exactly one session listens for this app");
    app.exec(
        "update roster.organization_memberships set deleted_at = now() \
         where organization_id = $1 and user_id = $2",
        &[&org, &member.id],
    )
    .await;
    app.allow_connections(true).await;

    let (_, took) = wait_for(
        "the listener to reconnect",
        Duration::from_secs(5),
        || async {
            let now = app.metric("roster_listener_reconnects_total").await;
            (now > reconnects).then_some(())
        },
    )
    .await;
    println!("listener reconnected {took:?} after connections were allowed again");
    app.wait_for_cache("ok", Duration::from_secs(5)).await;
    assert_eq!(
        notifications,
        app.metric("roster_notifications_total").await,
        "the change's notification should have been missed (else this test proves nothing)"
    );
    let reply = app.get_org(&member.token, org).await;
    assert_eq!(
        404, reply.status,
        "the first request after the reconnect must not be served the stale grant: {reply:?}"
    );

    // And the cache is in use again: a fresh entry is served without a round trip.
    assert_eq!(200, app.get_org(&owner.token, org).await.status);
    let (reply, trips) = app.counted(app.get_org(&owner.token, org)).await;
    assert_eq!((200, 0), (reply.status, trips), "cached again: {reply:?}");
}

/// A listener connection whose peer vanished without a FIN or RST (a network partition, a
/// crashed host, a NAT or proxy that dropped the flow) delivers nothing and reports no error.
/// The API must notice within seconds (a heartbeat on the listener connection, or TCP
/// keepalive/user timeouts) and stop using the cache, not serve stale grants until the entries
/// expire (CACHE_TTL_SECONDS, 300 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_listener_connection_does_not_keep_stale_grants() {
    let app = spawn_app_with(AppOptions {
        through_proxy: true,
        ..AppOptions::default()
    })
    .await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "member").await;
    // Sanity: with the proxy in the way, notifications still work.
    let notifications = app.metric("roster_notifications_total").await;
    app.exec(
        "update roster.organizations set description = 'seen' where id = $1",
        &[&org],
    )
    .await;
    wait_for(
        "a notification through the proxy",
        INVALIDATION_DEADLINE,
        || async { (app.metric("roster_notifications_total").await > notifications).then_some(()) },
    )
    .await;
    app.wait_for_minimums(org, member.id).await;
    assert_eq!(200, app.get_org(&member.token, org).await.status);
    let (reply, trips) = app.counted(app.get_org(&member.token, org)).await;
    assert_eq!((200, 0), (reply.status, trips), "cached: {reply:?}");

    app.proxy.as_ref().expect("proxy").freeze_listener();
    app.exec(
        "update roster.organization_memberships set deleted_at = now() \
         where organization_id = $1 and user_id = $2",
        &[&org, &member.id],
    )
    .await;
    let (_, took) = wait_for(
        "the removed member's GET to stop being served from the cache",
        Duration::from_secs(5),
        || async { (app.get_org(&member.token, org).await.status == 404).then_some(()) },
    )
    .await;
    println!("stale grant ended {took:?} after the change, with the listener frozen");
}
