//! The one error type of the vendor boundary. Its [`ErrorCategory`] makes retry and fallback
//! pure decisions (`is_permanent`, `retry_after`), and its text never carries an API key.

use std::fmt;
use std::time::Duration;

/// A vendor of speech-to-text, language model or text-to-speech: the one name for it in
/// errors, usage rows (`usage_log.provider`), key leases, tracing fields and the API. The three
/// real vendors are also the providers whose keys a user can bring ([`Vendor::KEYED`], the names
/// stored in `byok_keys.provider`); the in-process local implementations and the protocol fakes
/// are vendors too, so whatever served a call can be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    Anthropic,
    Deepgram,
    ElevenLabs,
    /// An in-process local implementation of keyless local mode (interviewer, voice,
    /// recognizer).
    Local,
    /// A protocol fake standing in for a vendor (tests, load runs, local mode's recognizer).
    Fake,
}

impl Vendor {
    /// The vendors whose API keys a user can bring and the server leases per interview.
    pub const KEYED: [Vendor; 3] = [Vendor::Anthropic, Vendor::Deepgram, Vendor::ElevenLabs];

    /// The stable name (`usage_log.provider`, `byok_keys.provider`, the API's `{provider}`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Vendor::Anthropic => "anthropic",
            Vendor::Deepgram => "deepgram",
            Vendor::ElevenLabs => "elevenlabs",
            Vendor::Local => "local",
            Vendor::Fake => "fake",
        }
    }

    /// The keyed vendor of a stable name; `None` for any other string (`local` and `fake`
    /// included: nobody brings a key for them).
    pub fn parse_keyed(name: &str) -> Option<Self> {
        Self::KEYED.into_iter().find(|v| v.as_str() == name)
    }

    /// Whether a user can bring this vendor's key.
    pub fn is_keyed(self) -> bool {
        Self::KEYED.contains(&self)
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure this is, as far as retry and fallback care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The key was rejected (401/403).
    Auth,
    /// Credits or billing exhausted (Deepgram 402, Anthropic `billing_error`,
    /// ElevenLabs `quota_exceeded`, or a silent empty TTS result).
    Quota,
    /// Too many requests or connections; wait `retry_after` if given.
    RateLimited,
    /// The vendor is overloaded (Anthropic 529 / `overloaded_error`, 503).
    Overloaded,
    /// The request is malformed or refused as such (400, 404, 413, 422).
    BadRequest,
    /// Connection refused, reset or dropped; DNS; TLS; abnormal close.
    Network,
    /// The vendor stopped answering within our deadline (stall, 408, 504, idle close).
    Timeout,
    /// A 5xx from the vendor.
    Server,
    /// The vendor sent something we could not understand.
    Protocol,
    /// We cancelled the call ourselves.
    Cancelled,
    /// The account's own (BYOK) key was revoked mid-interview (deleted, replaced, the password
    /// changed, the account erased or disabled, the keys rotated, or the lease expired) and
    /// there is no platform key to fail over to. Permanent: the interview ends with
    /// `byok_key_revoked`.
    KeyRevoked,
}

impl ErrorCategory {
    /// A permanent error will fail again if retried unchanged: fail over or give up.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorCategory::Auth
                | ErrorCategory::Quota
                | ErrorCategory::BadRequest
                | ErrorCategory::Cancelled
                | ErrorCategory::KeyRevoked
        )
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCategory::Auth => "authentication failed",
            ErrorCategory::Quota => "quota exhausted",
            ErrorCategory::RateLimited => "rate limited",
            ErrorCategory::Overloaded => "overloaded",
            ErrorCategory::BadRequest => "bad request",
            ErrorCategory::Network => "network error",
            ErrorCategory::Timeout => "timed out",
            ErrorCategory::Server => "server error",
            ErrorCategory::Protocol => "protocol error",
            ErrorCategory::Cancelled => "cancelled",
            ErrorCategory::KeyRevoked => "key revoked",
        })
    }
}

/// A failed vendor call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{vendor} {category}: {message}")]
pub struct VendorError {
    pub vendor: Vendor,
    pub category: ErrorCategory,
    /// Human-readable detail, from the vendor's error body where there is one. Redacted.
    pub message: String,
    /// HTTP status or WebSocket close code, when there was one.
    pub status: Option<u16>,
    /// How long the vendor asked us to wait before retrying.
    pub retry_after: Option<Duration>,
    /// The vendor's request id, for support tickets.
    pub request_id: Option<String>,
}

impl VendorError {
    pub fn new(vendor: Vendor, category: ErrorCategory, message: impl Into<String>) -> Self {
        Self {
            vendor,
            category,
            message: message.into(),
            status: None,
            retry_after: None,
            request_id: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// Shorthand for `self.category.is_permanent()`.
    pub fn is_permanent(&self) -> bool {
        self.category.is_permanent()
    }

    /// Removes every occurrence of `secret` (and of its first 8 characters, which some
    /// vendors echo as a hint) from the message.
    pub(crate) fn redacted(mut self, secret: &str) -> Self {
        self.message = redact(&self.message, secret);
        self
    }
}

/// Replaces a secret (and a recognisable prefix of it) in `text` with `[redacted]`.
pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.len() < 4 {
        return text.to_string();
    }
    let mut out = text.replace(secret, "[redacted]");
    let prefix: String = secret.chars().take(8).collect();
    if prefix.len() >= 8 {
        out = out.replace(&prefix, "[redacted]");
    }
    out
}

/// The category for an HTTP status, before looking at the body.
pub(crate) fn category_for_status(status: u16) -> ErrorCategory {
    match status {
        401 | 403 => ErrorCategory::Auth,
        402 => ErrorCategory::Quota,
        408 | 504 => ErrorCategory::Timeout,
        429 => ErrorCategory::RateLimited,
        503 | 529 => ErrorCategory::Overloaded,
        400..=499 => ErrorCategory::BadRequest,
        500..=599 => ErrorCategory::Server,
        _ => ErrorCategory::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_auth_quota_bad_request_and_cancel_are_permanent() {
        use ErrorCategory::*;
        for c in [Auth, Quota, BadRequest, Cancelled, KeyRevoked] {
            assert!(c.is_permanent(), "{c:?}");
        }
        for c in [RateLimited, Overloaded, Network, Timeout, Server, Protocol] {
            assert!(!c.is_permanent(), "{c:?}");
        }
    }

    #[test]
    fn redaction_removes_the_key_and_its_prefix() {
        let key = "sk-ant-api03-abcdefghijkl";
        let msg = format!("invalid key {key}; hint sk-ant-a…");
        let out = redact(&msg, key);
        assert!(!out.contains("abcdefghijkl"));
        assert!(!out.contains("sk-ant-a"));
    }
}
