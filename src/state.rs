//! What every handler may use: the database pool, the cache and the metrics.

use std::sync::Arc;

use crate::cache::{Cache, CacheState};
use crate::db::Db;
use crate::metrics::Metrics;

pub struct AppState {
    pub db: Db,
    /// None without REDIS_URL.
    pub cache: Option<Arc<Cache>>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn cache_state(&self) -> CacheState {
        self.cache
            .as_ref()
            .map_or(CacheState::Disabled, |cache| cache.state())
    }
}
