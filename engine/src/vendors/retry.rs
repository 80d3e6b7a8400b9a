//! Retry decisions, copied in behaviour (not code) from the official Anthropic SDK: retry
//! 408, 409, 429 and every 5xx (529 included) unless `x-should-retry` says otherwise; honour
//! `retry-after-ms`, then `retry-after` (seconds or an HTTP date) when it lies in (0, 60] s;
//! otherwise back off exponentially (0.5 s × 2ⁿ, capped at 8 s) with up to 25 % jitter.
//! Pure functions: the caller supplies the clock and the random number.
//!
//! Hand-written rather than a retry crate: the rules are the vendor SDK's own (which statuses,
//! which headers, the 60 s ceiling on a server's wait), not a generic backoff, and they must be
//! decisions the caller can test without sleeping.

use std::time::{Duration, SystemTime};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the SDK's default is 2).
    pub max_retries: u32,
    /// First backoff step.
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// A server-sent delay above this is ignored in favour of backoff.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Should a response with this status be retried? `x_should_retry` overrides the status rule.
pub fn should_retry_status(status: u16, x_should_retry: Option<&str>) -> bool {
    match x_should_retry.map(str::trim) {
        Some("true") => return true,
        Some("false") => return false,
        _ => {}
    }
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// Parses the server's requested delay: `retry-after-ms` first, then `retry-after` as seconds
/// (fractions allowed) or as an HTTP date relative to `now`.
pub fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok())
        && let Ok(d) = Duration::try_from_secs_f64(ms / 1000.0)
    {
        return Some(d);
    }
    let value = retry_after?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (0.0..1e9)
            .contains(&secs)
            .then(|| Duration::from_secs_f64(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(u64::try_from(date.timestamp()).ok()?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `d × factor`, capped at `cap` (and never panicking on overflow).
pub(crate) fn scaled(d: Duration, factor: f64, cap: Duration) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor)
        .unwrap_or(cap)
        .min(cap)
}

impl RetryPolicy {
    /// The wait before retry number `retries_done + 1`. `jitter` is a uniform sample in [0, 1).
    pub fn delay(
        &self,
        retries_done: u32,
        server_delay: Option<Duration>,
        jitter: f64,
    ) -> Duration {
        if let Some(d) = server_delay
            && d > Duration::ZERO
            && d <= self.max_retry_after
        {
            return d;
        }
        let exp = 2f64.powi(retries_done.min(30) as i32);
        let base = scaled(self.initial_backoff, exp, self.max_backoff);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base.mul_f64(1.0 - 0.25 * jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_follow_the_sdk() {
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(should_retry_status(s, None), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 413, 422] {
            assert!(!should_retry_status(s, None), "{s}");
        }
        assert!(!should_retry_status(500, Some("false")));
        assert!(should_retry_status(400, Some("true")));
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after(Some("250"), Some("3"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after(None, Some("1.5"), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after(None, Some("soon"), now), None);
    }

    #[test]
    fn retry_after_http_date_is_relative_to_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50
        let d = parse_retry_after(None, Some("Wed, 21 Oct 2015 07:28:00 GMT"), now);
        assert_eq!(d, Some(Duration::from_secs(10)));
    }

    #[test]
    fn server_delay_is_honoured_only_within_sixty_seconds() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3)), 0.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(120)), 0.0),
            Duration::from_millis(500)
        );
        assert_eq!(
            p.delay(0, Some(Duration::ZERO), 0.0),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_down_by_at_most_a_quarter() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None, 0.0), Duration::from_secs(1));
        assert_eq!(p.delay(10, None, 0.0), Duration::from_secs(8));
        assert_eq!(p.delay(10, None, 1.0), Duration::from_secs(6));
    }
}
