//! The near store: what an instance wrote to Redis it serves again without asking Redis, as
//! exactly as Redis would (a change through another instance, or in psql, is honoured by the
//! next request after the listener reads it), and not at all while Redis is in trouble.

use uuid::Uuid;

use crate::helpers::{
    spawn_app_with, spawn_instance_of, wait_for, AppOptions, RedisServer, TestApp,
    INVALIDATION_DEADLINE,
};

/// Commands the private Redis has processed so far (the INFO asking counts as one).
async fn commands(redis: &RedisServer) -> u64 {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut connection)
        .await
        .expect("INFO stats");
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("total_commands_processed in INFO stats")
}

/// The member's view of the organization: GET org, a check, /me.
async fn answers(app: &TestApp, token: &str, org: Uuid) -> (u16, bool, u16) {
    let org_status = app.get_org(token, org).await.status;
    let check = app.check(token, &[(org, "members:read")]).await;
    let allowed = match check.status {
        200 => check.json()["results"][0]["allowed"].as_bool() == Some(true),
        _ => false,
    };
    (org_status, allowed, app.me(token, org).await.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_answers_ask_neither_the_database_nor_redis_and_follow_other_instances() {
    let redis = RedisServer::start().await;
    let options = || AppOptions {
        redis_url: Some(redis.url()),
        ..AppOptions::default()
    };
    let first = spawn_app_with(options()).await;
    let owner = first.user("owner").await;
    let member = first.user("member").await;
    let org = first.org(&owner, "acme").await;
    first.add(&owner, org, &member, "member").await;
    assert_eq!((200, true, 200), answers(&first, &member.token, org).await);

    let before = commands(&redis).await;
    let (warm, trips) = first
        .counted(async {
            let mut all = Vec::new();
            for _ in 0..3 {
                all.push(answers(&first, &member.token, org).await);
            }
            all
        })
        .await;
    let asked = commands(&redis).await - before - 1;
    assert_eq!(vec![(200, true, 200); 3], warm);
    assert_eq!(
        (0, 0),
        (trips, asked),
        "9 warm requests: (database round trips, Redis commands)"
    );

    // Another instance removes the member: the first one's near entries give way.
    let second = spawn_instance_of(&first, options()).await;
    let reply = second.remove_member_api(&owner.token, org, member.id).await;
    assert_eq!(204, reply.status, "{reply:?}");
    let (refused, _) = wait_for(
        "the removal, at the first instance",
        INVALIDATION_DEADLINE,
        || async {
            let seen = answers(&first, &member.token, org).await;
            (seen.0 == 404).then_some(seen)
        },
    )
    .await;
    assert_eq!(
        (404, false, 404),
        refused,
        "removed: nothing is left of the membership"
    );

    // Redis gone: the near store is not used either, the database answers.
    first.get_org(&owner.token, org).await;
    let (status, trips) = first
        .counted(async { first.get_org(&owner.token, org).await.status })
        .await;
    assert_eq!((200, 0), (status, trips), "the owner's GET org, warm");
    drop(redis);
    first
        .wait_for_cache("degraded", std::time::Duration::from_secs(2))
        .await;
    let (status, trips) = first
        .counted(async { first.get_org(&owner.token, org).await.status })
        .await;
    assert_eq!(
        (200, true),
        (status, trips >= 1),
        "degraded: from the database"
    );
}
