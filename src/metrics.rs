//! Prometheus metrics (the `prometheus` crate, text format only): counters incremented where
//! things happen, pool and cache gauges sampled when `/metrics` is scraped, and a latency
//! histogram by route and status recorded by the `RecordRequests` middleware.
//!
//! Recording a request costs a hash of its two label values, a shared read lock on the
//! histogram's children and a few atomic additions: no mutex, and no allocation once a (route,
//! status) pair has been seen. The crate escapes label values and help texts.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The values of `roster_cache_state`'s `state` label.
const CACHE_STATES: [&str; 3] = ["ok", "degraded", "disabled"];

/// Everything `/metrics` reports, shared by the whole application.
pub struct Metrics {
    /// Statements sent to PostgreSQL by request handlers (prepares that missed the statement
    /// cache included): the "round trips per request" of the benchmark.
    pub db_round_trips: IntCounter,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    pub cache_errors: IntCounter,
    /// Changes applied from the change log (the name is older than the log: NOTIFY came first).
    pub notifications: IntCounter,
    pub listener_reconnects: IntCounter,
    /// Cached reads answered by the database because the cache had not applied the write
    /// named by the request's `Roster-Consistency` within `consistency::WAIT`.
    pub consistency_fallbacks: IntCounter,
    /// When the change log was last read, in microseconds since `origin`; 0: not following.
    stream_read_at: AtomicU64,
    origin: Instant,
    stream_lag: Gauge,
    /// Latency by route pattern and status.
    requests: HistogramVec,
    /// From a change's write in the database to this process applying it.
    change_delays: Histogram,
    pool_max_size: IntGauge,
    pool_size: IntGauge,
    pool_available: IntGauge,
    pool_waiting: IntGauge,
    cache_state: IntGaugeVec,
    /// Its own registry, not the crate's global one: every application built (tests build
    /// several per process) reports only its own figures.
    registry: Registry,
}

/// Pool figures sampled when `/metrics` is scraped.
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let counter = IntCounter::new(name, help).expect("valid counter");
            registry
                .register(Box::new(counter.clone()))
                .expect("metric names are unique");
            counter
        };
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid gauge");
            registry
                .register(Box::new(gauge.clone()))
                .expect("metric names are unique");
            gauge
        };
        let metrics = Metrics {
            db_round_trips: counter(
                "roster_db_round_trips_total",
                "Statements sent to PostgreSQL by request handlers.",
            ),
            cache_hits: counter(
                "roster_cache_hits_total",
                "Cache lookups answered by a fresh entry.",
            ),
            cache_misses: counter(
                "roster_cache_misses_total",
                "Cache lookups that found no fresh entry.",
            ),
            cache_errors: counter(
                "roster_cache_errors_total",
                "Redis calls that failed or timed out.",
            ),
            notifications: counter(
                "roster_notifications_total",
                "Changes applied from the database's change log (roster.change_log).",
            ),
            consistency_fallbacks: counter(
                "roster_consistency_fallbacks_total",
                "Cached reads sent to the database because the cache had not caught up with the request's Roster-Consistency write in time.",
            ),
            stream_read_at: AtomicU64::new(0),
            origin: Instant::now(),
            stream_lag: {
                let gauge = Gauge::new(
                    "roster_change_stream_lag_seconds",
                    "Time since the change log was last read (NaN while it is not followed).",
                )
                .expect("valid gauge");
                registry
                    .register(Box::new(gauge.clone()))
                    .expect("metric names are unique");
                gauge
            },
            listener_reconnects: counter(
                "roster_listener_reconnects_total",
                "Times the change listener (re)connected.",
            ),
            pool_max_size: gauge(
                "roster_db_pool_max_size",
                "Largest number of pooled connections.",
            ),
            pool_size: gauge("roster_db_pool_size", "Open pooled connections."),
            pool_available: gauge("roster_db_pool_available", "Idle pooled connections."),
            pool_waiting: gauge(
                "roster_db_pool_waiting",
                "Requests waiting for a pooled connection.",
            ),
            cache_state: IntGaugeVec::new(
                Opts::new("roster_cache_state", "Cache state (1 for the current one)."),
                &["state"],
            )
            .expect("valid gauge"),
            requests: HistogramVec::new(
                HistogramOpts::new(
                    "roster_http_request_duration_seconds",
                    "HTTP requests by route and status.",
                )
                .buckets(BUCKETS.to_vec()),
                &["route", "status"],
            )
            .expect("valid histogram"),
            change_delays: Histogram::with_opts(
                HistogramOpts::new(
                    "roster_change_stream_delay_seconds",
                    "From a change's write in the database (roster.change_log.recorded_at) to its application to this process's cache, on the database's clock.",
                )
                .buckets(BUCKETS.to_vec()),
            )
            .expect("valid histogram"),
            registry,
        };
        for collector in [
            Box::new(metrics.cache_state.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.requests.clone()),
            Box::new(metrics.change_delays.clone()),
        ] {
            metrics
                .registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }
}

impl Metrics {
    pub fn observe_request(&self, route: &str, status: &str, seconds: f64) {
        self.requests
            .with_label_values(&[route, status])
            .observe(seconds);
    }

    /// The listener applied a change written `seconds` ago.
    pub fn change_delay(&self, seconds: f64) {
        self.change_delays.observe(seconds.max(0.0));
    }

    /// The change listener read the log just now.
    pub fn stream_read(&self) {
        let micros = self.origin.elapsed().as_micros().max(1);
        self.stream_read_at
            .store(u64::try_from(micros).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The change listener lost its stream.
    pub fn stream_lost(&self) {
        self.stream_read_at.store(0, Ordering::Relaxed);
    }

    /// How long ago the change log was last read; None while it is not followed.
    pub fn stream_lag(&self) -> Option<Duration> {
        match self.stream_read_at.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(
                self.origin
                    .elapsed()
                    .saturating_sub(Duration::from_micros(micros)),
            ),
        }
    }

    /// The Prometheus text exposition of everything above.
    pub fn render(&self, pool: &PoolStatus, cache_state: &str) -> String {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.pool_max_size.set(gauge(pool.max_size));
        self.pool_size.set(gauge(pool.size));
        self.pool_available.set(gauge(pool.available));
        self.pool_waiting.set(gauge(pool.waiting));
        self.stream_lag
            .set(self.stream_lag().map_or(f64::NAN, |lag| lag.as_secs_f64()));
        for state in CACHE_STATES {
            self.cache_state
                .with_label_values(&[state])
                .set(i64::from(state == cache_state));
        }
        let mut out = Vec::with_capacity(8192);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the text encoder writes to memory");
        // The text encoder writes only UTF-8 (names, escaped labels and numbers).
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }
}

/// Middleware recording every request's route pattern, status and latency.
pub struct RecordRequests(pub Arc<Metrics>);

impl<S, B> Transform<S, ServiceRequest> for RecordRequests
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RecordRequestsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RecordRequestsService {
            service,
            metrics: self.0.clone(),
        }))
    }
}

pub struct RecordRequestsService<S> {
    service: S,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<ServiceRequest> for RecordRequestsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let future = self.service.call(request);
        Box::pin(async move {
            let response = future.await?;
            let seconds = started.elapsed().as_secs_f64();
            let status = response.status();
            let request = response.request();
            // Asked after routing, the name is a lookup that borrows it: every resource is
            // named after its pattern (`routes::resource`). Before routing, or by pattern,
            // it would be a match of the path against every route or a String per request.
            match request.match_name() {
                Some(route) => metrics.observe_request(route, status.as_str(), seconds),
                None => {
                    // An unnamed resource, or no route at all (the default service).
                    let route = request.match_pattern();
                    let route = route.as_deref().unwrap_or("unmatched");
                    metrics.observe_request(route, status.as_str(), seconds);
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> PoolStatus {
        PoolStatus {
            max_size: 4,
            size: 2,
            available: 1,
            waiting: 0,
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.observe_request("/a\"b\\c\nd", "200", 0.001);
        let text = metrics.render(&pool(), "ok");
        assert!(
            text.contains(
                r#"roster_http_request_duration_seconds_count{route="/a\"b\\c\nd",status="200"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn the_text_format_keeps_the_names_and_shapes_of_the_hand_written_one() {
        let metrics = Metrics::default();
        metrics.db_round_trips.inc_by(3);
        metrics.observe_request("/organizations/{org_id}", "200", 0.003);
        let text = metrics.render(&pool(), "degraded");
        for line in [
            "# TYPE roster_db_round_trips_total counter",
            "roster_db_round_trips_total 3",
            "roster_cache_hits_total 0",
            "roster_db_pool_max_size 4",
            "roster_db_pool_size 2",
            "roster_db_pool_available 1",
            "roster_db_pool_waiting 0",
            "roster_cache_state{state=\"ok\"} 0",
            "roster_cache_state{state=\"degraded\"} 1",
            "roster_cache_state{state=\"disabled\"} 0",
            "# TYPE roster_http_request_duration_seconds histogram",
            "roster_http_request_duration_seconds_bucket{route=\"/organizations/{org_id}\",status=\"200\",le=\"0.0025\"} 0",
            "roster_http_request_duration_seconds_bucket{route=\"/organizations/{org_id}\",status=\"200\",le=\"0.005\"} 1",
            "roster_http_request_duration_seconds_bucket{route=\"/organizations/{org_id}\",status=\"200\",le=\"1\"} 1",
            "roster_http_request_duration_seconds_bucket{route=\"/organizations/{org_id}\",status=\"200\",le=\"+Inf\"} 1",
            "roster_http_request_duration_seconds_sum{route=\"/organizations/{org_id}\",status=\"200\"} 0.003",
            "roster_http_request_duration_seconds_count{route=\"/organizations/{org_id}\",status=\"200\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }
}
