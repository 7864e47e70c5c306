//! The Redis authorization cache, end to end: the real app on a free port, a fresh database and
//! a Redis key namespace of its own per test.
//!
//! Needs PostgreSQL (`make db`), Redis on 127.0.0.1:6379 (`make redis`),
//! `/usr/bin/redis-server` (some tests start, stop and slow down a private one, or three in a
//! cluster) and `/usr/bin/redis-cli` (which forms the cluster).
//! `cargo test --test cache -- --nocapture` prints the measured invalidation latencies.

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod cluster;
mod consistency;
mod disabled;
mod exact_json;
mod explain;
mod helpers;
mod invalidation;
mod isolation;
mod listener;
mod metrics;
mod near;
mod race;
mod redis_trouble;
mod resources;
mod roles;
mod round_trips;
mod tokens;
