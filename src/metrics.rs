//! Prometheus metrics, rendered by hand in the text format: a handful of counters and one
//! latency histogram do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};

/// A monotonically increasing count.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Everything `/metrics` reports, shared by the whole application.
#[derive(Default)]
pub struct Metrics {
    /// Statements sent to PostgreSQL by request handlers (prepares that missed the statement
    /// cache included): the "round trips per request" of the benchmark.
    pub db_round_trips: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_errors: Counter,
    pub notifications: Counter,
    pub listener_reconnects: Counter,
    /// (route pattern, status) → latency histogram.
    requests: Mutex<BTreeMap<(String, u16), Histogram>>,
}

/// Pool figures sampled when `/metrics` is scraped.
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

impl Metrics {
    pub fn observe_request(&self, route: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests
            .entry((route.to_owned(), status))
            .or_default()
            .observe(seconds);
    }

    /// The Prometheus text exposition of everything above.
    pub fn render(&self, pool: &PoolStatus, cache_state: &str) -> String {
        let mut out = String::with_capacity(4096);
        let counters = [
            (
                "roster_db_round_trips_total",
                "Statements sent to PostgreSQL by request handlers.",
                &self.db_round_trips,
            ),
            (
                "roster_cache_hits_total",
                "Cache lookups answered by a fresh entry.",
                &self.cache_hits,
            ),
            (
                "roster_cache_misses_total",
                "Cache lookups that found no fresh entry.",
                &self.cache_misses,
            ),
            (
                "roster_cache_errors_total",
                "Redis calls that failed or timed out.",
                &self.cache_errors,
            ),
            (
                "roster_notifications_total",
                "Change notifications received from PostgreSQL.",
                &self.notifications,
            ),
            (
                "roster_listener_reconnects_total",
                "Times the change listener (re)connected.",
                &self.listener_reconnects,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.get()
            );
        }
        let gauges = [
            (
                "roster_db_pool_max_size",
                "Largest number of pooled connections.",
                pool.max_size,
            ),
            ("roster_db_pool_size", "Open pooled connections.", pool.size),
            (
                "roster_db_pool_available",
                "Idle pooled connections.",
                pool.available,
            ),
            (
                "roster_db_pool_waiting",
                "Requests waiting for a pooled connection.",
                pool.waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP roster_cache_state Cache state (1 for the current one).\n# TYPE roster_cache_state gauge"
        );
        for state in ["ok", "degraded", "disabled"] {
            let _ = writeln!(
                out,
                "roster_cache_state{{state=\"{state}\"}} {}",
                u8::from(state == cache_state)
            );
        }
        let _ = writeln!(
            out,
            "# HELP roster_http_request_duration_seconds HTTP requests by route and status.\n# TYPE roster_http_request_duration_seconds histogram"
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((route, status), histogram) in &requests {
            let labels = format!("route=\"{route}\",status=\"{status}\"");
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                let _ = writeln!(out, "roster_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "roster_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nroster_http_request_duration_seconds_sum{{{labels}}} {}\nroster_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        out
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
            // Asked after routing, the pattern is a lookup; before, it is a regex match of the
            // path against every route (measured: 40% of a cached request's CPU).
            let route = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            let status = response.status().as_u16();
            metrics.observe_request(&route, status, started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}
