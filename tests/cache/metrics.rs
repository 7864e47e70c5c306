//! `GET /metrics`: request latencies by route and status, cache hits and misses, notifications,
//! listener reconnects and pool gauges, in the Prometheus text format.

use crate::helpers::{metric_in, spawn_app, wait_for, INVALIDATION_DEADLINE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_requests_cache_listener_and_pool() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let org = app.org(&owner, "acme").await;
    let text = app.metrics_text().await;
    let (hits, misses) = (
        metric_in(&text, "roster_cache_hits_total"),
        metric_in(&text, "roster_cache_misses_total"),
    );
    let notifications = metric_in(&text, "roster_notifications_total");

    // A miss, then hits.
    assert_eq!(200, app.get_org(&owner.token, org).await.status);
    let text = app.metrics_text().await;
    assert_eq!(
        (misses + 2, hits),
        (
            metric_in(&text, "roster_cache_misses_total"),
            metric_in(&text, "roster_cache_hits_total")
        ),
        "a cold GET org misses its access and its body"
    );
    assert_eq!(200, app.get_org(&owner.token, org).await.status);
    let text = app.metrics_text().await;
    assert_eq!(
        (misses + 2, hits + 2),
        (
            metric_in(&text, "roster_cache_misses_total"),
            metric_in(&text, "roster_cache_hits_total")
        ),
        "a warm GET org hits its access and its body"
    );
    assert_eq!(404, app.get_org(&outsider.token, org).await.status);

    // A change is a notification.
    app.exec(
        "update roster.organizations set description = 'noticed' where id = $1",
        &[&org],
    )
    .await;
    wait_for(
        "the notification to be counted",
        INVALIDATION_DEADLINE,
        || async { (app.metric("roster_notifications_total").await > notifications).then_some(()) },
    )
    .await;

    let text = app.metrics_text().await;
    let lines = [
        ("# TYPE roster_http_request_duration_seconds histogram", "the histogram's type"),
        (
            "roster_http_request_duration_seconds_bucket{route=\"/organizations/{org_id}\",status=\"200\",le=\"+Inf\"} 2",
            "both 200s of GET org, by route pattern",
        ),
        (
            "roster_http_request_duration_seconds_count{route=\"/organizations/{org_id}\",status=\"404\"} 1",
            "the 404 of GET org",
        ),
        (
            "roster_http_request_duration_seconds_sum{route=\"/organizations/{org_id}\",status=\"200\"} ",
            "the latency sum",
        ),
        (
            "roster_http_request_duration_seconds_bucket{route=\"/metrics\",status=\"200\",le=\"0.005\"} ",
            "/metrics itself",
        ),
        ("# TYPE roster_cache_hits_total counter", "the hit counter's type"),
        ("# TYPE roster_cache_misses_total counter", "the miss counter's type"),
        ("# TYPE roster_cache_errors_total counter", "the error counter's type"),
        ("roster_listener_reconnects_total 1", "the listener's first connect"),
        ("roster_db_pool_max_size 4", "the pool size"),
        ("roster_db_pool_size ", "open connections"),
        ("roster_db_pool_available ", "idle connections"),
        ("roster_db_pool_waiting 0", "waiting requests"),
        ("roster_cache_state{state=\"ok\"} 1", "the cache state"),
        ("roster_cache_state{state=\"degraded\"} 0", "not degraded"),
        ("roster_db_round_trips_total ", "round trips"),
    ];
    for (prefix, what) in lines {
        assert!(
            text.lines().any(|line| line.starts_with(prefix)),
            "/metrics should show {what} ({prefix}):\n{text}"
        );
    }
    let buckets = text
        .lines()
        .filter(|line| {
            line.starts_with(
                "roster_http_request_duration_seconds_bucket{route=\"/organizations/{org_id}\",status=\"200\"",
            )
        })
        .count();
    assert_eq!(13, buckets, "12 bounds and +Inf:\n{text}");
}

/// `roster_change_stream_delay_seconds` times each change from its write in the database to
/// its application here: a change held 300 ms before its commit shows at least that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_applied_change_is_timed_from_its_write() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let org = app.org(&owner, "acme").await;
    app.wait_for_minimums(org, owner.id).await;
    let sample = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("/metrics has no {name}"))
            .trim()
            .parse()
            .expect("a number")
    };
    let text = app.metrics_text().await;
    let count = sample(&text, "roster_change_stream_delay_seconds_count");
    let sum = sample(&text, "roster_change_stream_delay_seconds_sum");

    app.exec(
        "do $$ begin
           update roster.organizations set description = 'slow' where slug = 'acme';
           perform pg_sleep(0.3);
         end $$",
        &[],
    )
    .await;
    let (text, _) = wait_for("the change to be timed", INVALIDATION_DEADLINE, || async {
        let text = app.metrics_text().await;
        (sample(&text, "roster_change_stream_delay_seconds_count") > count).then_some(text)
    })
    .await;
    let changes = sample(&text, "roster_change_stream_delay_seconds_count") - count;
    let delay = sample(&text, "roster_change_stream_delay_seconds_sum") - sum;
    // One organization change; each delay is at least the 300 ms the transaction held it.
    assert!(changes >= 1.0, "{changes}");
    assert!(
        delay / changes >= 0.3 && delay / changes < 1.3,
        "{changes} changes took {delay} s"
    );
}
