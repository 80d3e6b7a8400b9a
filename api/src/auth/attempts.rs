//! Failed password checks, counted per subject *and* client (in memory, per node): sign-in
//! (the subject is the e-mail as typed, normalized) and the password re-checks of
//! `PATCH`/`DELETE /api/v1/me` (the subject is the account).
//!
//! After `limit` failures in a window, that subject-and-client pair waits out the rest of the
//! window; every answer in the wait is the same 429, right password or not. Two properties
//! follow, and are why this replaced a lock on the account row:
//! - nobody can lock a victim out at will: failures from one client never make the owner wait
//!   on another;
//! - the answer reveals nothing: an e-mail without an account is counted and refused exactly
//!   like one with an account (the key is what was typed, not what was found).
//!
//! Keys are keyed hashes (a per-process random SipHash key) of the subject with the client
//! address, so neither the e-mail nor the address is kept in the clear; an entry lives at most
//! one window after its last failure.
//!
//! Hand-written rather than a second `governor` limiter (which [`super::RateLimiter`] is): this
//! is a lockout counter, not a rate. The failure that reaches the limit starts a wait of a whole
//! window, and a right password clears the pair at once; a GCRA limiter hands back one attempt
//! every `window / limit` (a guesser would get a try every few minutes for ever) and has no way
//! to forget one key on success.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries beyond this many trigger a sweep of expired ones.
const SWEEP_THRESHOLD: usize = 10_000;

pub struct FailedAttempts {
    limit: u32,
    window: Duration,
    hasher: RandomState,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

struct Bucket {
    window_start: Instant,
    failures: u32,
}

impl FailedAttempts {
    /// `limit` failures per `window` per subject and client (a `limit` of 0 counts as 1).
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            hasher: RandomState::new(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, subject: &str, client: IpAddr) -> u64 {
        self.hasher.hash_one((subject, client))
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long `client` must still wait before checking a password for `subject`; `None`: it
    /// may now.
    pub fn wait(&self, subject: &str, client: IpAddr, now: Instant) -> Option<Duration> {
        let key = self.key(subject, client);
        let buckets = self.buckets();
        let bucket = buckets.get(&key)?;
        let elapsed = now.saturating_duration_since(bucket.window_start);
        (bucket.failures >= self.limit && elapsed < self.window)
            .then(|| self.window.saturating_sub(elapsed))
    }

    /// Counts a failed check; the wait it starts when it was the one that reached the limit.
    pub fn failed(&self, subject: &str, client: IpAddr, now: Instant) -> Option<Duration> {
        let key = self.key(subject, client);
        let mut buckets = self.buckets();
        if buckets.len() > SWEEP_THRESHOLD {
            let window = self.window;
            buckets.retain(|_, b| now.saturating_duration_since(b.window_start) < window);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            window_start: now,
            failures: 0,
        });
        if now.saturating_duration_since(bucket.window_start) >= self.window {
            bucket.window_start = now;
            bucket.failures = 0;
        }
        bucket.failures += 1;
        (bucket.failures >= self.limit).then(|| {
            // The wait runs a whole window from the failure that reached the limit.
            bucket.window_start = now;
            self.window
        })
    }

    /// A right password: that pair starts again from zero.
    pub fn succeeded(&self, subject: &str, client: IpAddr) {
        let key = self.key(subject, client);
        self.buckets().remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn the_failure_that_reaches_the_limit_starts_a_wait_for_that_pair_only() {
        let attempts = FailedAttempts::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(attempts.failed("ada", A, t0), None);
        assert_eq!(attempts.failed("ada", A, t0), None);
        assert_eq!(attempts.wait("ada", A, t0), None);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            attempts.failed("ada", A, later),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            attempts.wait("ada", A, later + Duration::from_secs(15)),
            Some(Duration::from_secs(45))
        );
        // Another client, or another subject from the same client, is not held up.
        assert_eq!(attempts.wait("ada", B, later), None);
        assert_eq!(attempts.wait("bob", A, later), None);
        // The wait ends with its window.
        assert_eq!(
            attempts.wait("ada", A, later + Duration::from_secs(60)),
            None
        );
    }

    #[test]
    fn a_right_password_clears_the_count_and_old_failures_expire() {
        let attempts = FailedAttempts::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        attempts.failed("ada", A, t0);
        attempts.succeeded("ada", A);
        assert_eq!(attempts.failed("ada", A, t0), None, "counting starts again");
        // A failure a window later starts a new window instead of reaching the limit.
        assert_eq!(
            attempts.failed("ada", A, t0 + Duration::from_secs(61)),
            None
        );
    }
}
