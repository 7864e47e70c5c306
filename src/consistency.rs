//! Read-your-writes (`Roster-Consistency`).
//!
//! A write's response names its transaction: the `xid8` its statement ran in
//! (`pg_current_xact_id()`, read in the same statement, see `db::write_one`). A request that
//! sends that token back is not answered from cache state older than the write: the cache is
//! used only once the change listener has applied a snapshot in which that transaction is
//! committed ([`StreamPosition`]); the request waits up to [`WAIT`] for that, then reads the
//! database instead. Requests without the token behave as if it were not there.
//!
//! The token in, the token out and the verdict live in a task-local scope that
//! [`read_your_writes`] (middleware) opens around each request, so that the database layer
//! can record a write and the cached reads can consult the token without every handler
//! passing them along.

use std::cell::Cell;
use std::str::FromStr;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tokio::sync::watch;

use crate::error::ApiError;

/// The header, in requests and in write responses.
pub const HEADER: HeaderName = HeaderName::from_static("roster-consistency");

/// How long a request waits for the change listener to catch up with its token before it
/// reads the database (the listener polls every 5 ms).
pub const WAIT: Duration = Duration::from_millis(50);

/// The snapshot of the change listener's last poll (`xmin:xmax:xip,…` as PostgreSQL prints a
/// `pg_snapshot`): every change of a transaction it sees as committed has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    xmin: u64,
    xmax: u64,
    /// In progress when the snapshot was taken, sorted.
    xip: Vec<u64>,
}

impl Snapshot {
    /// Whether `xid` had ended (committed or aborted) when the snapshot was taken: the rule of
    /// `pg_visible_in_snapshot`.
    pub fn sees(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && self.xip.binary_search(&xid).is_err())
    }
}

impl FromStr for Snapshot {
    type Err = String;

    fn from_str(text: &str) -> Result<Snapshot, String> {
        let invalid = || format!("not a pg_snapshot: {text:?}");
        let mut parts = text.splitn(3, ':');
        let number = |part: Option<&str>| part.and_then(|p| p.parse::<u64>().ok());
        let xmin = number(parts.next()).ok_or_else(invalid)?;
        let xmax = number(parts.next()).ok_or_else(invalid)?;
        let mut xip = match parts.next() {
            Some("") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|xid| xid.parse::<u64>().map_err(|_| invalid()))
                .collect::<Result<Vec<u64>, String>>()?,
            None => return Err(invalid()),
        };
        xip.sort_unstable();
        Ok(Snapshot { xmin, xmax, xip })
    }
}

/// How far the change listener has applied the change log: the snapshot of its last poll.
pub struct StreamPosition(watch::Sender<Option<Snapshot>>);

impl Default for StreamPosition {
    fn default() -> StreamPosition {
        StreamPosition(watch::Sender::new(None))
    }
}

impl StreamPosition {
    /// Called by the listener once every change up to `snapshot` has been applied. The
    /// position never needs to go back: when the stream is lost the cache is not used at all,
    /// and a new stream starts in a new epoch, which is current with everything before it.
    pub fn advance(&self, snapshot: Snapshot) {
        self.0.send_replace(Some(snapshot));
    }

    /// Whether the changes of transaction `xid` have been applied, waiting up to `bound`.
    pub async fn wait_until_applied(&self, xid: u64, bound: Duration) -> bool {
        let mut position = self.0.subscribe();
        let applied = async {
            position
                .wait_for(|s| s.as_ref().is_some_and(|s| s.sees(xid)))
                .await
                .is_ok()
        };
        tokio::time::timeout(bound, applied).await.unwrap_or(false)
    }
}

tokio::task_local! {
    static REQUEST: Request;
}

/// One request's token, its verdict once asked, and the newest transaction it wrote.
struct Request {
    after: Option<u64>,
    cache_current: Cell<Option<bool>>,
    written: Cell<Option<u64>>,
}

/// Whether this request may be answered from a cache at `position`: yes without a token;
/// with one, once the listener has applied that transaction (waiting up to [`WAIT`], once
/// per request).
pub async fn cache_is_current(position: &StreamPosition) -> bool {
    let Ok(Some(after)) = REQUEST.try_with(|request| request.after) else {
        return true;
    };
    if let Some(verdict) = REQUEST.with(|request| request.cache_current.get()) {
        return verdict;
    }
    let verdict = position.wait_until_applied(after, WAIT).await;
    REQUEST.with(|request| request.cache_current.set(Some(verdict)));
    verdict
}

/// Records that this request's statement wrote in transaction `xid`.
pub fn record_write(xid: u64) {
    let _ = REQUEST.try_with(|request| {
        let newest = request.written.get().map_or(xid, |known| known.max(xid));
        request.written.set(Some(newest));
    });
}

/// The token a request sent: absent, or a transaction id (400 naming the header otherwise).
fn requested(request: &ServiceRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = request.headers().get(&HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Roster-Consistency: expected the value of a write's Roster-Consistency response \
                 header (a transaction id, digits only)"
                    .into(),
            )
        })
}

/// Middleware: reads the request's token, runs the request in its scope, and names the
/// transaction of a successful write in the response.
pub async fn read_your_writes(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let scope = Request {
        after: requested(&request)?,
        cache_current: Cell::new(None),
        written: Cell::new(None),
    };
    let (response, written) = REQUEST
        .scope(scope, async {
            let response = next.call(request).await;
            (response, REQUEST.with(|request| request.written.get()))
        })
        .await;
    let mut response = response?;
    if let Some(xid) = written.filter(|_| response.status().is_success()) {
        response
            .headers_mut()
            .insert(HEADER, HeaderValue::from(xid));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_what_had_ended_when_it_was_taken() {
        let snapshot: Snapshot = "100:110:107,103".parse().unwrap();
        for (xid, seen) in [
            (99, true),
            (100, true),
            (103, false),
            (105, true),
            (107, false),
            (109, true),
            (110, false),
            (111, false),
        ] {
            assert_eq!(seen, snapshot.sees(xid), "{xid}");
        }
        let empty: Snapshot = "742:742:".parse().unwrap();
        assert!(empty.sees(741) && !empty.sees(742));
        for bad in ["", "1", "1:2", "a:2:", "1:2:x", "1:2:3,"] {
            assert!(bad.parse::<Snapshot>().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_request_waits_for_the_listener_within_the_bound() {
        let position = std::sync::Arc::new(StreamPosition::default());
        assert!(!position.wait_until_applied(5, Duration::ZERO).await);
        position.advance("5:5:".parse().unwrap());
        assert!(
            !position
                .wait_until_applied(5, Duration::from_millis(1))
                .await
        );
        let later = position.clone();
        let advance = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            later.advance("6:6:".parse().unwrap());
        });
        assert!(position.wait_until_applied(5, Duration::from_secs(5)).await);
        advance.await.unwrap();
    }
}
