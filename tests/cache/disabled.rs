//! Without REDIS_URL there is no cache: `/readyz` says so and every request reads the database.

use crate::helpers::{spawn_app_with, AppOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_url_the_cache_is_disabled_and_every_request_reads_the_database() {
    let app = spawn_app_with(AppOptions {
        redis_url: None,
        ..AppOptions::default()
    })
    .await;
    assert_eq!("disabled", app.cache_state().await);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("roster_cache_state{state=\"disabled\"} 1"),
        "{metrics}"
    );
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    let org = app.org(&owner, "acme").await;
    app.add(&owner, org, &member, "member").await;

    let cases = [
        ("the member's GET org", &member, 200),
        ("the outsider's GET org", &outsider, 404),
    ];
    for (what, user, expected) in cases {
        for attempt in 1..=2 {
            let (reply, trips) = app.counted(app.get_org(&user.token, org)).await;
            assert_eq!(expected, reply.status, "{what} #{attempt}: {reply:?}");
            assert!(
                (1..=2).contains(&trips),
                "{what} #{attempt} reads the database once, made {trips} round trips"
            );
        }
    }
    let (reply, trips) = app
        .counted(app.check(&member.token, &[(org, "members:read")]))
        .await;
    assert_eq!(200, reply.status, "{reply:?}");
    assert_eq!(true, reply.json()["results"][0]["allowed"]);
    assert!((1..=2).contains(&trips), "one statement, made {trips}");

    // A change is seen by the very next request.
    app.exec(
        "update roster.organization_memberships set deleted_at = now() \
         where organization_id = $1 and user_id = $2",
        &[&org, &member.id],
    )
    .await;
    let reply = app.get_org(&member.token, org).await;
    assert_eq!(404, reply.status, "{reply:?}");
    assert_eq!(0, app.metric("roster_cache_hits_total").await);
    assert_eq!(0, app.metric("roster_cache_misses_total").await);
}
