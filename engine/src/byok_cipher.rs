//! Encryption of users' own vendor API keys (BYOK) at rest: AES-256-GCM with a random 96-bit
//! nonce per encryption, the account id and provider bound in as associated data (a ciphertext
//! moved to another account or provider fails to decrypt), under a master key that is separate
//! from the JWT secret. Each row records the id of the master key that encrypted it, so the
//! master key can be rotated (`interviewcraft rotate-keys`).
//!
//! Plaintext keys only ever exist as [`SecretString`] (zeroized on drop, redacted in `Debug`).
//! Decryption is meant for the engine's key lease; the HTTP API never decrypts.

use crate::ids::AccountId;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Why a key could not be encrypted or decrypted. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the master key must be base64 of 32 bytes")]
    InvalidMasterKey,
    #[error("no master key with id {0} is configured")]
    UnknownKeyId(String),
    #[error("the stored key could not be decrypted (wrong master key, account or provider)")]
    Decrypt,
    #[error("the key could not be encrypted")]
    Encrypt,
}

/// An AES-256 master key and its id (a truncated hash that names it without revealing it).
#[derive(Clone)]
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    key_id: String,
}

impl MasterKey {
    /// Parses base64 of exactly 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, CipherError> {
        let decoded = Zeroizing::new(
            BASE64
                .decode(encoded.trim())
                .map_err(|_| CipherError::InvalidMasterKey)?,
        );
        let key: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CipherError::InvalidMasterKey)?;
        Ok(Self::from_bytes(key))
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"interviewcraft-kek-id:");
        hasher.update(key);
        let key_id = hex::encode(&hasher.finalize()[..8]);
        Self {
            key: Zeroizing::new(key),
            key_id,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.key).into())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A stored, encrypted key: what goes into the `byok_keys` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedKey {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub key_id: String,
}

/// The current master key plus earlier ones still accepted for decryption during a rotation.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

fn associated_data(account_id: AccountId, provider: &str) -> Vec<u8> {
    format!("interviewcraft-byok-v1|{account_id}|{provider}").into_bytes()
}

impl KeyRing {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
    }

    pub fn current_key_id(&self) -> &str {
        self.current.key_id()
    }

    /// Encrypts `plaintext` for one account and provider under the current master key.
    pub fn encrypt(
        &self,
        account_id: AccountId,
        provider: &str,
        plaintext: &SecretString,
    ) -> Result<EncryptedKey, CipherError> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(account_id, provider);
        let ciphertext = self
            .current
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| CipherError::Encrypt)?;
        Ok(EncryptedKey {
            ciphertext,
            nonce: nonce.to_vec(),
            key_id: self.current.key_id.clone(),
        })
    }

    /// Decrypts a stored key with the master key named by its `key_id`.
    pub fn decrypt(
        &self,
        account_id: AccountId,
        provider: &str,
        stored: &EncryptedKey,
    ) -> Result<SecretString, CipherError> {
        let master = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.key_id == stored.key_id)
            .ok_or_else(|| CipherError::UnknownKeyId(stored.key_id.clone()))?;
        let nonce: [u8; 12] = stored
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| CipherError::Decrypt)?;
        let aad = associated_data(account_id, provider);
        let plaintext = Zeroizing::new(
            master
                .cipher()
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: &stored.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| CipherError::Decrypt)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| CipherError::Decrypt)?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// Re-encrypts a stored key under the current master key (for rotation).
    pub fn reencrypt(
        &self,
        account_id: AccountId,
        provider: &str,
        stored: &EncryptedKey,
    ) -> Result<EncryptedKey, CipherError> {
        let plaintext = self.decrypt(account_id, provider, stored)?;
        self.encrypt(account_id, provider, &plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(byte: u8) -> KeyRing {
        KeyRing::new(MasterKey::from_bytes([byte; 32]), vec![])
    }

    #[test]
    fn round_trips_and_uses_a_fresh_nonce_each_time() {
        let ring = ring(1);
        let account = AccountId::now_v7();
        let key = SecretString::from("sk-ant-test-1234567890".to_owned());
        let first = ring.encrypt(account, "anthropic", &key).expect("encrypt");
        let second = ring.encrypt(account, "anthropic", &key).expect("encrypt");
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
        assert_eq!(first.nonce.len(), 12);
        let decrypted = ring.decrypt(account, "anthropic", &first).expect("decrypt");
        assert_eq!(decrypted.expose_secret(), "sk-ant-test-1234567890");
        assert!(!first.ciphertext.windows(10).any(|w| w == b"sk-ant-tes"));
    }

    #[test]
    fn ciphertext_is_bound_to_account_and_provider() {
        let ring = ring(2);
        let account = AccountId::now_v7();
        let key = SecretString::from("dg-secret-value".to_owned());
        let stored = ring.encrypt(account, "deepgram", &key).expect("encrypt");
        assert!(matches!(
            ring.decrypt(AccountId::now_v7(), "deepgram", &stored),
            Err(CipherError::Decrypt)
        ));
        assert!(ring.decrypt(account, "elevenlabs", &stored).is_err());
        let mut tampered = stored.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(ring.decrypt(account, "deepgram", &tampered).is_err());
    }

    #[test]
    fn rotation_reencrypts_under_the_new_key() {
        let old = MasterKey::from_bytes([3; 32]);
        let new = MasterKey::from_bytes([4; 32]);
        let account = AccountId::now_v7();
        let key = SecretString::from("xi-key-abcdef".to_owned());
        let stored = KeyRing::new(old.clone(), vec![])
            .encrypt(account, "elevenlabs", &key)
            .expect("encrypt");
        let rotating = KeyRing::new(new.clone(), vec![old]);
        let rotated = rotating
            .reencrypt(account, "elevenlabs", &stored)
            .expect("reencrypt");
        assert_eq!(rotated.key_id, new.key_id());
        let after = KeyRing::new(new, vec![]);
        assert_eq!(
            after
                .decrypt(account, "elevenlabs", &rotated)
                .expect("decrypt")
                .expose_secret(),
            "xi-key-abcdef"
        );
        assert!(matches!(
            after.decrypt(account, "elevenlabs", &stored),
            Err(CipherError::UnknownKeyId(_))
        ));
    }

    #[test]
    fn debug_and_errors_never_show_key_material() {
        let master = MasterKey::from_bytes([5; 32]);
        let printed = format!("{master:?} {:?}", KeyRing::new(master.clone(), vec![]));
        assert!(!printed.contains("5, 5, 5"));
        let secret = SecretString::from("sk-visible?".to_owned());
        assert!(!format!("{secret:?}").contains("sk-visible"));
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(
            !CipherError::InvalidMasterKey
                .to_string()
                .contains("not base64")
        );
    }
}
