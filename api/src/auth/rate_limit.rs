//! Per-client fixed-window rate limiting for the sign-in routes (in memory, per node).
//!
//! Client IPs are kept only in this map, for at most two windows, and are never logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts requests per key in fixed windows.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    window_start: Instant,
    count: u32,
}

/// When a limited client may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

/// Entries beyond this many trigger a sweep of expired buckets.
const SWEEP_THRESHOLD: usize = 10_000;

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Records one request from `key` at `now`; `Err` when over the limit.
    pub fn check(&self, key: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > SWEEP_THRESHOLD {
            let window = self.window;
            buckets.retain(|_, bucket| now.duration_since(bucket.window_start) < window);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            window_start: now,
            count: 0,
        });
        if now.duration_since(bucket.window_start) >= self.window {
            bucket.window_start = now;
            bucket.count = 0;
        }
        if bucket.count >= self.limit {
            let elapsed = now.duration_since(bucket.window_start);
            return Err(RetryAfter(self.window.saturating_sub(elapsed)));
        }
        bucket.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_resets_after_the_window() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let start = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "::1".parse().expect("ip");
        for _ in 0..3 {
            assert!(limiter.check(a, start).is_ok());
        }
        let retry = limiter
            .check(a, start + Duration::from_secs(10))
            .expect_err("limited");
        assert_eq!(retry.0, Duration::from_secs(50));
        assert!(
            limiter.check(b, start).is_ok(),
            "other clients are unaffected"
        );
        assert!(
            limiter.check(a, start + Duration::from_secs(60)).is_ok(),
            "new window"
        );
    }
}
