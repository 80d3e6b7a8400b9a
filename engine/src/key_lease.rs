//! BYOK key leases: for one interview, a user's own vendor keys are decrypted (the only place
//! they ever are), handed to that interview's vendor clients, and zeroized when the lease is
//! released at the end of the interview or expires. Providers without a user key fall back to
//! the platform's key, and without either to the local fake vendors (keyless local mode).

use entities::byok_cipher::{EncryptedKey, KeyRing};
use entities::byok_keys;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use secrecy::SecretString;
use uuid::Uuid;

use crate::metering::KeySource;

/// The platform's own keys, from configuration.
#[derive(Clone, Default)]
pub struct PlatformKeys {
    pub anthropic: Option<SecretString>,
    pub deepgram: Option<SecretString>,
    pub elevenlabs: Option<SecretString>,
}

impl std::fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformKeys")
            .field("anthropic", &self.anthropic.is_some())
            .field("deepgram", &self.deepgram.is_some())
            .field("elevenlabs", &self.elevenlabs.is_some())
            .finish()
    }
}

/// A key for one provider and whose it is. `SecretString` zeroizes on drop.
#[derive(Clone)]
pub struct LeasedKey {
    pub key: SecretString,
    pub source: KeySource,
}

impl std::fmt::Debug for LeasedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeasedKey")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The keys of one interview; `None` for a provider means: use the local fake.
#[derive(Debug, Clone, Default)]
pub struct KeyLease {
    pub anthropic: Option<LeasedKey>,
    pub deepgram: Option<LeasedKey>,
    pub elevenlabs: Option<LeasedKey>,
}

/// Leases keys for an account: its own where it has one (decrypted here), the platform's
/// otherwise. A stored key that fails to decrypt (e.g. a master key rotated away) falls back
/// to the platform key and is reported without any key material.
pub async fn lease_keys(
    db: &impl ConnectionTrait,
    ring: &KeyRing,
    platform: &PlatformKeys,
    account_id: Uuid,
) -> Result<KeyLease, DbErr> {
    let rows = byok_keys::Entity::find()
        .filter(byok_keys::Column::AccountId.eq(account_id))
        .all(db)
        .await?;
    let own = |provider: &str| -> Option<LeasedKey> {
        let row = rows.iter().find(|row| row.provider == provider)?;
        let stored = EncryptedKey {
            ciphertext: row.ciphertext.clone(),
            nonce: row.nonce.clone(),
            key_id: row.key_id.clone(),
        };
        match ring.decrypt(account_id, provider, &stored) {
            Ok(key) => Some(LeasedKey {
                key,
                source: KeySource::Byok,
            }),
            Err(error) => {
                tracing::warn!(%account_id, provider, error = %error, "a stored key could not be decrypted; using the platform key");
                None
            }
        }
    };
    let platform_key = |key: &Option<SecretString>| {
        key.clone().map(|key| LeasedKey {
            key,
            source: KeySource::Platform,
        })
    };
    Ok(KeyLease {
        anthropic: own("anthropic").or_else(|| platform_key(&platform.anthropic)),
        deepgram: own("deepgram").or_else(|| platform_key(&platform.deepgram)),
        elevenlabs: own("elevenlabs").or_else(|| platform_key(&platform.elevenlabs)),
    })
}
