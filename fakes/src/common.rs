//! Small shared pieces: deterministic ids, pacing, timestamps.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A deterministic pseudo-random source (`rand`'s `StdRng` from a seed): fakes must be
/// reproducible. Shared by a fake's connection tasks, hence the lock.
#[derive(Debug)]
pub(crate) struct Rng(Mutex<StdRng>);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A version-4 UUID as text.
    pub fn uuid(&self) -> String {
        let bytes: [u8; 16] = self.with(|rng| rng.random());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// `len` base62 characters.
    pub fn base62(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        self.with(|rng| {
            (0..len)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect()
        })
    }

    /// `len` lower-case hex characters.
    pub fn hex(&self, len: usize) -> String {
        self.with(|rng| {
            (0..len)
                .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                .collect()
        })
    }

    /// Uniform in `lo..=hi` (`lo` when the range is empty).
    pub fn range(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        self.with(|rng| rng.random_range(lo..=hi))
    }
}

/// How fast a fake runs relative to wall-clock time: `1.0` is real time, `20.0` is twenty
/// times faster. Only the fake's own latencies and pacing are scaled; timeouts and the
/// audio clock are not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    pub speed: f64,
}

impl Pacing {
    pub const REAL_TIME: Pacing = Pacing { speed: 1.0 };

    /// A pacing `speed` times faster than real time (values ≤ 0 or non-finite mean "no delays").
    pub fn faster(speed: f64) -> Self {
        Self { speed }
    }

    pub fn scale(&self, d: Duration) -> Duration {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Duration::ZERO;
        }
        d.div_f64(self.speed)
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Self::REAL_TIME
    }
}

/// `SystemTime::now()` as an RFC 3339 UTC timestamp with milliseconds.
pub(crate) fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_a_known_instant() {
        let t = UNIX_EPOCH + Duration::from_millis(1_724_971_075_202);
        assert_eq!(rfc3339(t), "2024-08-29T22:37:55.202Z");
    }

    #[test]
    fn uuids_are_shaped_like_v4() {
        let rng = Rng::new(7);
        let id = rng.uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn the_same_seed_gives_the_same_values() {
        let (a, b) = (Rng::new(42), Rng::new(42));
        assert_eq!(a.uuid(), b.uuid());
        assert_eq!(a.base62(20), b.base62(20));
        assert_eq!(a.hex(8), b.hex(8));
        assert_eq!(a.range(1, 1_000), b.range(1, 1_000));
        assert_ne!(Rng::new(43).base62(20), Rng::new(42).base62(20));
        assert!(a.hex(64).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.range(5, 5), 5);
    }
}
