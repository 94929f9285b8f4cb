//! Rate limits per client address and per hook token (issue 11, finding
//! 6): a token bucket per key, `count` requests per period in bursts of up
//! to `count`. A request over the limit is answered 429 with `Retry-After`
//! (RFC 9110 §10.2.3: seconds to wait) before any database work.
//!
//! The buckets live in memory, per process: with several replicas each
//! allows the configured rate. The map is bounded: when it is full, buckets
//! that have refilled completely (clients gone quiet) are dropped, and if
//! none has, the new key shares an overflow bucket, so a flood of fresh
//! addresses costs memory up to the bound, never more.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tagcast_spec::error_body::ErrorCode;

use crate::AppState;
use crate::api::ApiError;
use crate::config::Rate;

/// The most keys one limiter tracks.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Option<Rate>,
    buckets: Mutex<HashMap<Option<K>, Bucket>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    /// A limiter of `rate`; `None` allows everything.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(wait)` if it is empty,
    /// with how long until the next request is allowed.
    ///
    /// # Errors
    ///
    /// The time to wait, when over the limit.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let capacity = f64::from(rate.count);
        let per_token = rate.per.as_secs_f64() / capacity;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("not poisoned");
        let refill = |bucket: &mut Bucket| {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed / per_token).min(capacity);
            bucket.at = now;
        };
        let mut slot = Some(key.clone());
        if !buckets.contains_key(&slot) && buckets.len() >= MAX_KEYS {
            buckets.retain(|_, bucket| {
                refill(bucket);
                bucket.tokens < capacity
            });
            if buckets.len() >= MAX_KEYS {
                slot = None;
            }
        }
        let bucket = buckets.entry(slot).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        refill(bucket);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) * per_token))
        }
    }
}

/// The key of a client address: the address itself for IPv4, its /64 for
/// IPv6 (one host usually holds a whole /64, so single addresses would
/// let it rotate past the limit).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// `Retry-After` in whole seconds, at least 1.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

/// 429 with `Retry-After`, in the spec's error body.
pub fn too_many(what: &str, wait: Duration) -> Response {
    let seconds = retry_after(wait);
    let mut response = ApiError::new(
        ErrorCode::TooManyRequests,
        format!("{what} is over the broker's rate limit; retry after {seconds} s"),
    )
    .into_response();
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The per-address limit, before any other work. A request without a peer
/// address (a test driving [`crate::app`] without a socket) is not limited.
pub async fn limit_clients(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| client_key(info.0.ip()));
    if let Some(peer) = peer {
        if let Err(wait) = state.client_limiter.check(&peer) {
            state.metrics.rate_limited("client");
            tracing::warn!(client = %peer, "request over the per-address rate limit");
            return too_many("this client address", wait);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_then_refill() {
        let limiter = Limiter::new(Some(Rate {
            count: 3,
            per: Duration::from_secs(3600),
        }));
        for _ in 0..3 {
            assert!(limiter.check(&"a").is_ok());
        }
        let wait = limiter.check(&"a").unwrap_err();
        assert!(wait > Duration::from_secs(1000), "{wait:?}");
        // Another key has its own bucket.
        assert!(limiter.check(&"b").is_ok());
        let unlimited: Limiter<&str> = Limiter::new(None);
        for _ in 0..10_000 {
            assert!(unlimited.check(&"a").is_ok());
        }
    }

    #[test]
    fn keys_and_retry_after() {
        assert_eq!(
            client_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::from_secs(2)), 2);
        assert_eq!(retry_after(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after(Duration::ZERO), 1);
    }
}
