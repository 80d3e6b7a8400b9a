//! Refresh tokens: 256 random bits, sent only in the `refresh_token` cookie, stored as SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Name of the refresh cookie, and the path it is scoped to.
pub const COOKIE_NAME: &str = "refresh_token";
pub const COOKIE_PATH: &str = "/api/v1/auth";

/// A fresh random refresh token (43 URL-safe characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores for a token: its SHA-256 in hex. The token has 256 bits of entropy,
/// so an unsalted fast hash is enough to make a stolen table useless.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The key of [`successor`], derived from the server's signing secret (so every node of a
/// deployment derives the same successors, and nothing new has to be stored or configured).
pub fn successor_key(signing_secret: &[u8]) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(b"interviewcraft refresh-token successor key v1\0");
    digest.update(signing_secret);
    digest.finalize().into()
}

/// The token that replaces `presented` when it is exchanged: HMAC-SHA-256 of it under `key`.
/// Deterministic, so a second exchange of the same token within the reuse window (two tabs,
/// a retried request) gets the same successor on any node instead of looking like a theft;
/// unpredictable without the server's key, and as long and random-looking as [`generate`]'s.
pub fn successor(key: &[u8; 32], presented: &str) -> String {
    // An HMAC takes a key of any length, so this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(presented.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hashes_stable() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a));
    }

    #[test]
    fn a_successor_is_stable_per_key_and_token_and_looks_like_a_fresh_token() {
        let key = successor_key(b"secret one");
        let token = generate();
        let next = successor(&key, &token);
        assert_eq!(
            next,
            successor(&key, &token),
            "the same on every call and node"
        );
        assert_eq!(next.len(), 43);
        assert_ne!(next, successor(&key, &generate()));
        assert_ne!(next, successor(&successor_key(b"secret two"), &token));
        assert_ne!(next, token);
    }
}
