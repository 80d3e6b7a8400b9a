//! Vendor API keys as the clients hold them.
//!
//! [`ApiKey`] is the only form a key takes outside the key leaser: zeroized on drop (it wraps a
//! `secrecy::SecretString`), and its `Debug` and `Display` print at most the last four
//! characters. [`KeyHandle`] is a vendor client's shared view of "the key to use now, and whose
//! it is": the key leaser ([`crate::actors::key_leaser`]) swaps the platform key in or marks
//! the handle revoked, and each client reads the handle at every request or connection, so the
//! next one fails over or fails with [`ErrorCategory::KeyRevoked`].

use std::fmt;
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use super::error::{ErrorCategory, Vendor, VendorError};
use crate::metering::KeySource;

/// A vendor API key. Cloning copies the secret into a new zeroizing buffer.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(SecretString::from(key.into()))
    }

    /// The key itself, for writing one request header (and for redacting errors).
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The last four characters, or nothing for a key too short to show any of it safely.
    fn hint(&self) -> String {
        let key = self.0.expose_secret();
        let count = key.chars().count();
        if count < 12 {
            return String::new();
        }
        key.chars().skip(count - 4).collect()
    }
}

impl From<SecretString> for ApiKey {
    fn from(key: SecretString) -> Self {
        Self(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey(…{})", self.hint())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "…{}", self.hint())
    }
}

/// What a handle holds now.
#[derive(Clone)]
enum Slot {
    Active {
        key: ApiKey,
        source: KeySource,
    },
    /// Revoked (or released): no key any more; `source` is whose it was.
    Revoked {
        source: KeySource,
    },
}

struct Shared {
    slot: RwLock<Slot>,
    /// Bumped at every swap, so a long-lived session (a speech-to-text socket) can notice.
    changed: watch::Sender<u64>,
}

/// A vendor client's shared handle on its current key. Cheap to clone; every clone sees swaps.
#[derive(Clone)]
pub struct KeyHandle {
    shared: Arc<Shared>,
}

impl KeyHandle {
    /// A handle on `key`, paid for by `source`.
    pub fn new(key: ApiKey, source: KeySource) -> Self {
        Self {
            shared: Arc::new(Shared {
                slot: RwLock::new(Slot::Active { key, source }),
                changed: watch::channel(0).0,
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Slot> {
        self.shared.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The key to use for the next request, or a [`ErrorCategory::KeyRevoked`] error.
    pub fn current(&self, vendor: Vendor) -> Result<ApiKey, VendorError> {
        match &*self.read() {
            Slot::Active { key, .. } => Ok(key.clone()),
            Slot::Revoked { .. } => Err(VendorError::new(
                vendor,
                ErrorCategory::KeyRevoked,
                "the account's own key was revoked and there is no platform key",
            )),
        }
    }

    /// Whose key the handle holds now (for usage rows).
    pub fn source(&self) -> KeySource {
        match &*self.read() {
            Slot::Active { source, .. } | Slot::Revoked { source } => *source,
        }
    }

    pub fn is_revoked(&self) -> bool {
        matches!(&*self.read(), Slot::Revoked { .. })
    }

    /// A receiver that sees each swap (its value is a swap counter).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Puts `key` in place of the current one (which is dropped, so zeroized).
    pub(crate) fn replace(&self, key: ApiKey, source: KeySource) {
        self.swap(Slot::Active { key, source });
    }

    /// Drops the key (zeroizing it); the next request fails with `KeyRevoked`.
    pub(crate) fn revoke(&self) {
        let source = self.source();
        self.swap(Slot::Revoked { source });
    }

    fn swap(&self, slot: Slot) {
        let old = {
            let mut guard = self.shared.slot.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *guard, slot)
        };
        drop(old);
        self.shared.changed.send_modify(|n| *n += 1);
    }
}

/// A fixed key (configuration, tests): counted as the platform's.
impl From<SecretString> for KeyHandle {
    fn from(key: SecretString) -> Self {
        Self::new(ApiKey::from(key), KeySource::Platform)
    }
}

impl From<ApiKey> for KeyHandle {
    fn from(key: ApiKey) -> Self {
        Self::new(key, KeySource::Platform)
    }
}

impl fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.read() {
            Slot::Active { key, source } => f
                .debug_struct("KeyHandle")
                .field("key", key)
                .field("source", source)
                .finish(),
            Slot::Revoked { source } => f
                .debug_struct("KeyHandle")
                .field("revoked", &true)
                .field("source", source)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ant-api03-secret-middle-WXYZ";

    #[test]
    fn debug_and_display_show_at_most_the_last_four() {
        let key = ApiKey::new(KEY);
        for shown in [format!("{key:?}"), format!("{key}")] {
            assert!(shown.contains("WXYZ"), "{shown}");
            assert!(!shown.contains("sk-ant"), "{shown}");
            assert!(!shown.contains("middle"), "{shown}");
        }
        let short = ApiKey::new("abcdefgh");
        assert_eq!(format!("{short}"), "…");
        let handle = KeyHandle::new(key, KeySource::Byok);
        let shown = format!("{handle:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn a_swap_is_seen_by_every_clone_and_revoking_fails_the_next_request() {
        let handle = KeyHandle::new(ApiKey::new(KEY), KeySource::Byok);
        let client = handle.clone();
        let mut changes = client.subscribe();
        handle.replace(ApiKey::new("platform-key-0000-PPPP"), KeySource::Platform);
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(client.source(), KeySource::Platform);
        assert_eq!(
            client.current(Vendor::Anthropic).unwrap().expose_secret(),
            "platform-key-0000-PPPP"
        );
        handle.revoke();
        assert!(changes.has_changed().unwrap());
        let error = client.current(Vendor::Anthropic).unwrap_err();
        assert_eq!(error.category, ErrorCategory::KeyRevoked);
        assert!(error.is_permanent());
        assert!(client.is_revoked());
    }
}
