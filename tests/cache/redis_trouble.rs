//! Redis trouble makes Roster slower, never wrong: with Redis down, slow, or back empty, every
//! request is answered from the database without an error, and the cache comes back by itself.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::helpers::{
    spawn_app, spawn_app_with, spawn_instance_of, wait_for, AppOptions, RedisServer, Reply,
    TestApp, TestUser,
};

/// Comfortably above the Redis timeout (100 ms) plus a database read, far below the 1 s that
/// a request waiting on a sleeping Redis would take.
const SLOW_REQUEST: Duration = Duration::from_millis(600);

struct People {
    owner: TestUser,
    member: TestUser,
    outsider: TestUser,
    /// Removed by raw SQL while Redis is down.
    leaver: TestUser,
    /// Promoted to admin by raw SQL while Redis is down.
    promoted: TestUser,
    org: Uuid,
}

async fn people(app: &TestApp) -> People {
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let outsider = app.user("outsider").await;
    let leaver = app.user("leaver").await;
    let promoted = app.user("promoted").await;
    let org = app.org(&owner, "acme").await;
    for user in [&member, &leaver, &promoted] {
        app.add(&owner, org, user, "member").await;
    }
    People {
        owner,
        member,
        outsider,
        leaver,
        promoted,
        org,
    }
}

/// Sends a request, asserting it is not a 5xx and answered in under `SLOW_REQUEST`.
async fn timed<F: std::future::Future<Output = Reply>>(what: &str, request: F) -> Reply {
    let started = Instant::now();
    let reply = request.await;
    let elapsed = started.elapsed();
    assert!(reply.status < 500, "{what}: {reply:?}");
    assert!(
        elapsed < SLOW_REQUEST,
        "{what} took {elapsed:?}: Redis trouble should cost at most its timeout"
    );
    reply
}

/// The member sees the organization, the outsider does not: the answers that must hold whether
/// or not Redis works. Returns the slowest answer's time.
async fn assert_answers(app: &TestApp, p: &People, context: &str) -> Duration {
    let cases = [
        ("the member's GET org", &p.member, 200),
        ("the outsider's GET org", &p.outsider, 404),
        ("the owner's GET org", &p.owner, 200),
    ];
    let mut slowest = Duration::ZERO;
    for (what, user, expected) in cases {
        let started = Instant::now();
        let reply = timed(what, app.get_org(&user.token, p.org)).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(expected, reply.status, "{what} ({context}): {reply:?}");
    }
    slowest
}

/// The requests whose answers the cache holds once warm (a refused GET org is not among them:
/// see round_trips.rs), with the round trips they made together.
async fn cacheable_answers(app: &TestApp, p: &People, context: &str) -> u64 {
    let (_, trips) = app
        .counted(async {
            for (what, user, expected) in [
                ("the member's GET org", &p.member, 200),
                ("the owner's GET org", &p.owner, 200),
            ] {
                let reply = timed(what, app.get_org(&user.token, p.org)).await;
                assert_eq!(expected, reply.status, "{what} ({context}): {reply:?}");
            }
            let reply = timed("the outsider's /me", app.me(&p.outsider.token, p.org)).await;
            assert_eq!(
                404, reply.status,
                "the outsider's /me ({context}): {reply:?}"
            );
        })
        .await;
    trips
}

fn role(reply: &Reply) -> String {
    assert_eq!(200, reply.status, "{reply:?}");
    reply.json()["role"].as_str().expect("role").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_then_back_empty_is_slower_never_wrong() {
    let mut redis = RedisServer::start().await;
    let app = spawn_app_with(AppOptions {
        redis_url: Some(redis.url()),
        // Every lookup asks Redis, so that each request meets the trouble.
        near_entries: 0,
        ..AppOptions::default()
    })
    .await;
    let p = people(&app).await;

    // Warm: the second round of answers comes from the cache.
    assert_answers(&app, &p, "cold").await;
    let leaver_before = app.get_org(&p.leaver.token, p.org).await;
    assert_eq!(200, leaver_before.status, "{leaver_before:?}");
    assert_eq!("member", role(&app.me(&p.promoted.token, p.org).await));
    cacheable_answers(&app, &p, "cold").await;
    let trips = cacheable_answers(&app, &p, "warm").await;
    assert_eq!(0, trips, "warm answers come from the cache");

    redis.stop();
    let errors_before = app.metric("roster_cache_errors_total").await;
    for round in 1..=3 {
        assert_answers(&app, &p, &format!("Redis down, round {round}")).await;
    }
    assert!(
        app.metric("roster_cache_errors_total").await > errors_before,
        "the failed Redis calls are counted"
    );
    app.wait_for_cache("degraded", Duration::from_secs(2)).await;

    // Changes while Redis is down are seen at once: requests go to the database.
    app.exec(
        "update roster.organization_memberships set deleted_at = now() \
         where organization_id = $1 and user_id = $2",
        &[&p.org, &p.leaver.id],
    )
    .await;
    app.exec(
        "update roster.organization_memberships set role = 'admin' \
         where organization_id = $1 and user_id = $2",
        &[&p.org, &p.promoted.id],
    )
    .await;
    let reply = timed("the leaver's GET org", app.get_org(&p.leaver.token, p.org)).await;
    assert_eq!(404, reply.status, "removed while Redis is down: {reply:?}");
    let reply = timed("the promoted's /me", app.me(&p.promoted.token, p.org)).await;
    assert_eq!("admin", role(&reply), "promoted while Redis is down");
    assert_answers(&app, &p, "Redis down, after the changes").await;

    // Back, empty: the app recovers by itself.
    redis.restart().await;
    let recovery = app.wait_for_cache("ok", Duration::from_secs(10)).await;
    println!("cache ok again {recovery:?} after redis-server answered");
    let reply = app.get_org(&p.leaver.token, p.org).await;
    assert_eq!(
        404, reply.status,
        "no stale grant after recovery: {reply:?}"
    );
    assert_eq!("admin", role(&app.me(&p.promoted.token, p.org).await));
    assert_answers(&app, &p, "Redis back").await;
    cacheable_answers(&app, &p, "Redis back, cold").await;
    let trips = cacheable_answers(&app, &p, "Redis back, warm").await;
    assert_eq!(0, trips, "warm answers come from the cache again");
    let (reply, trips) = app.counted(app.me(&p.promoted.token, p.org)).await;
    assert_eq!(("admin".to_owned(), 0), (role(&reply), trips));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_costs_its_timeout_not_an_error() {
    let redis = RedisServer::start().await;
    let app = spawn_app_with(AppOptions {
        redis_url: Some(redis.url()),
        // Every lookup asks Redis, so that each request meets the trouble.
        near_entries: 0,
        ..AppOptions::default()
    })
    .await;
    let p = people(&app).await;
    assert_answers(&app, &p, "cold").await;
    cacheable_answers(&app, &p, "cold").await;
    let trips = cacheable_answers(&app, &p, "warm").await;
    assert_eq!(0, trips, "warm answers come from the cache");
    let errors_before = app.metric("roster_cache_errors_total").await;

    // Redis blocks every client for 1 s; requests keep being answered, from the database.
    let sleeper = redis.sleep_in_background(1.0);
    let mut rounds = 0;
    let mut slowest = Duration::ZERO;
    while !sleeper.is_finished() {
        let round = assert_answers(&app, &p, &format!("Redis sleeping, round {rounds}")).await;
        slowest = slowest.max(round);
        rounds += 1;
    }
    sleeper.join().expect("redis-cli DEBUG SLEEP");
    let errors = app.metric("roster_cache_errors_total").await - errors_before;
    println!("slow Redis: {rounds} rounds of 3 requests, {errors} timeouts, slowest {slowest:?}");
    assert!(errors >= 1, "some Redis calls should have timed out");

    // It recovers by itself: ok again, and warm answers make no round trip.
    wait_for(
        "the cache to be ok again",
        Duration::from_secs(10),
        || async {
            assert_answers(&app, &p, "Redis awake").await;
            (app.cache_state().await == "ok").then_some(())
        },
    )
    .await;
    cacheable_answers(&app, &p, "Redis awake, cold").await;
    let trips = cacheable_answers(&app, &p, "Redis awake, warm").await;
    assert_eq!(0, trips, "warm answers come from the cache again");
}

/// `/readyz` is what an orchestrator and an operator see: it should say "degraded" while Redis
/// is down and "ok" once it is back, whether or not requests happen to arrive meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_redis_down_without_traffic() {
    let mut redis = RedisServer::start().await;
    let app = spawn_app_with(AppOptions {
        redis_url: Some(redis.url()),
        ..AppOptions::default()
    })
    .await;
    redis.stop();
    app.wait_for_cache("degraded", Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_redis_back_without_traffic() {
    let mut redis = RedisServer::start().await;
    let app = spawn_app_with(AppOptions {
        redis_url: Some(redis.url()),
        ..AppOptions::default()
    })
    .await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    // The listener has applied every notification: it has no reason to touch Redis from now on.
    app.wait_for_minimums(org, owner.id).await;
    redis.stop();
    // One request notices that Redis is down.
    let reply = app.get_org(&owner.token, org).await;
    assert_eq!(200, reply.status, "{reply:?}");
    app.wait_for_cache("degraded", Duration::from_secs(2)).await;
    redis.restart().await;
    app.wait_for_cache("ok", Duration::from_secs(10)).await;
}

/// A Redis that goes back in time (failed over to a replica that had not received the newest
/// writes yet, restarted from an older snapshot) brings back an older epoch and the entries
/// written under it. An instance that started after a change it never heard of, under an
/// epoch of its own, must not serve them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_an_epoch_redis_went_back_to_are_not_served() {
    let first = spawn_app().await;
    let owner = first.user("owner").await;
    let org = first.org(&owner, "acme").await;
    let name = |reply: Reply| {
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()["name"].as_str().map(str::to_owned)
    };
    assert_eq!(
        name(first.get_org(&owner.token, org).await).as_deref(),
        Some("Org acme")
    );
    let (reply, trips) = first.counted(first.get_org(&owner.token, org)).await;
    assert_eq!(
        (name(reply).as_deref(), trips),
        (Some("Org acme"), 0),
        "cached"
    );
    let old_copy = first.redis_copy().await;

    first
        .exec(
            "update roster.organizations set name = 'Renamed' where id = $1",
            &[&org],
        )
        .await;
    // Started after the change: its listener never reports it, its epoch makes it unneeded.
    let second = spawn_instance_of(&first, AppOptions::default()).await;
    assert_eq!(
        name(second.get_org(&owner.token, org).await).as_deref(),
        Some("Renamed")
    );

    second.redis_restore(&old_copy).await;
    for app in [&second, &first] {
        let reply = app.get_org(&owner.token, org).await;
        assert_eq!(
            name(reply).as_deref(),
            Some("Renamed"),
            "{}: served from the epoch Redis went back to",
            app.address
        );
    }
    // A new epoch, so that the cache works again.
    second.get_org(&owner.token, org).await;
    let (reply, trips) = second.counted(second.get_org(&owner.token, org)).await;
    assert_eq!(
        (name(reply).as_deref(), trips),
        (Some("Renamed"), 0),
        "cached again"
    );
}
