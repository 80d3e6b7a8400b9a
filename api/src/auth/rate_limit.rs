//! Per-client rate limiting for the sign-in routes (in memory, per node): `governor`'s keyed
//! GCRA limiter. A client may send `limit` requests at once, then one more every
//! `window / limit` (30 per minute: a burst of 30, then one every 2 s); a refused request is
//! told how long until the next one would pass.
//!
//! Client IPs are kept only in the limiter's map, and are never logged; the map is swept of
//! clients back at a full allowance when it grows past [`SWEEP_THRESHOLD`].

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Gcra};

type Keyed<C> =
    Gcra<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Requests per key in a window, with the wait a refused request is told.
pub struct RateLimiter<C: Clock = MonotonicClock> {
    /// `None` when the limit is 0: every request is refused.
    limiter: Option<Keyed<C>>,
    window: Duration,
    clock: C,
}

/// When a limited client may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

/// Keys beyond this many trigger a sweep of those back at a full allowance.
const SWEEP_THRESHOLD: usize = 10_000;

impl RateLimiter {
    /// `limit` requests per `window` per key, on the monotonic clock.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self::with_clock(limit, window, MonotonicClock)
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// As [`RateLimiter::new`], on `clock` (tests pass a `governor::clock::FakeRelativeClock`).
    pub fn with_clock(limit: u32, window: Duration, clock: C) -> Self {
        let limiter = NonZeroU32::new(limit).and_then(|burst| {
            Quota::with_period(window / burst.get())
                .map(|quota| quota.allow_burst(burst))
                .map(|quota| Gcra::new(quota, DefaultKeyedStateStore::default(), clock.clone()))
        });
        Self {
            limiter,
            window,
            clock,
        }
    }

    /// Records one request from `key` now; `Err` with the wait when over the limit.
    pub fn check(&self, key: IpAddr) -> Result<(), RetryAfter> {
        let Some(limiter) = &self.limiter else {
            return Err(RetryAfter(self.window));
        };
        if limiter.len() > SWEEP_THRESHOLD {
            limiter.retain_recent();
        }
        limiter
            .check_key(&key)
            .map_err(|refused| RetryAfter(refused.wait_time_from(self.clock.now())))
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_burst_of_the_limit_passes_then_one_per_window_share() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(3, Duration::from_secs(60), clock.clone());
        for _ in 0..3 {
            assert!(limiter.check(A).is_ok());
        }
        clock.advance(Duration::from_secs(5));
        let retry = limiter.check(A).expect_err("limited");
        // One request back every 20 s; 5 s of it have passed.
        assert_eq!(retry.0, Duration::from_secs(15));
        assert!(limiter.check(B).is_ok(), "other clients are unaffected");
        clock.advance(Duration::from_secs(15));
        assert!(limiter.check(A).is_ok(), "one more after its share");
        assert!(limiter.check(A).is_err(), "but only one");
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check(A).is_ok(), "a whole window refills the burst");
        }
    }

    #[test]
    fn a_limit_of_zero_refuses_everything() {
        let limiter = RateLimiter::new(0, Duration::from_secs(60));
        assert_eq!(limiter.check(A), Err(RetryAfter(Duration::from_secs(60))));
    }

    #[test]
    fn many_clients_are_swept_once_their_allowance_is_back() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(2, Duration::from_secs(60), clock.clone());
        for i in 0..=SWEEP_THRESHOLD as u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i));
            assert!(limiter.check(ip).is_ok());
        }
        clock.advance(Duration::from_secs(60));
        assert!(limiter.check(A).is_ok());
        let kept = limiter.limiter.as_ref().map_or(0, |l| l.len());
        assert!(kept <= 2, "{kept} keys kept after the sweep");
    }
}
