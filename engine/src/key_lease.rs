//! BYOK keys: the platform's keys from configuration, the lease settings, and the one place a
//! user's stored vendor keys are decrypted ([`decrypt_own_keys`], called only by the
//! [`crate::actors::key_leaser::KeyLeaser`], once per interview). The leaser keeps the
//! decrypted keys in a [`crate::lease_book::LeaseBook`] and hands the interview's vendor
//! clients [`crate::vendors::key::KeyHandle`]s, zeroized at release, expiry or revocation.

use std::collections::HashMap;
use std::time::Duration;

use crate::byok_cipher::{EncryptedKey, KeyRing};
use crate::ids::AccountId;
use entities::{accounts, byok_keys};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use secrecy::SecretString;

use crate::lease_book::{OwnKey, StoredAccount};
use crate::vendors::Vendor;
use crate::vendors::key::ApiKey;

/// The platform's own keys, from configuration.
#[derive(Clone, Default)]
pub struct PlatformKeys {
    pub anthropic: Option<SecretString>,
    pub deepgram: Option<SecretString>,
    pub elevenlabs: Option<SecretString>,
}

impl PlatformKeys {
    pub fn get(&self, provider: Vendor) -> Option<&SecretString> {
        match provider {
            Vendor::Anthropic => self.anthropic.as_ref(),
            Vendor::Deepgram => self.deepgram.as_ref(),
            Vendor::ElevenLabs => self.elevenlabs.as_ref(),
            // Keyless by nature: no key to hold.
            Vendor::Local | Vendor::Fake => None,
        }
    }

    /// The configured keys by provider, as the lease book fails over to them.
    pub fn by_provider(&self) -> HashMap<Vendor, ApiKey> {
        Vendor::KEYED
            .into_iter()
            .filter_map(|p| self.get(p).map(|key| (p, ApiKey::from(key.clone()))))
            .collect()
    }
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

/// How long key leases last. `[key_lease]` in the settings file, `KEY_LEASE__…` in the
/// environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyLeaseConfig {
    /// A lease ends at the interview's planned length plus this, even if nobody released it.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// How often the leaser looks for expired leases.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
}

impl Default for KeyLeaseConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(10 * 60),
            check_every: Duration::from_secs(5),
        }
    }
}

impl KeyLeaseConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.check_every.is_zero() {
            return Err("key_lease.check_every must be more than 0".into());
        }
        if self.grace > Duration::from_secs(24 * 3600) {
            return Err("key_lease.grace must be at most 24h".into());
        }
        Ok(())
    }
}

/// The account's own keys as decrypted, and its `password_changed_at` (milliseconds) read
/// with them (`None`: no account row).
pub struct OwnKeys {
    pub keys: HashMap<Vendor, OwnKey>,
    pub password_stamp: Option<i64>,
}

/// Decrypts the account's own stored keys (the only place they ever are). A stored key that
/// fails to decrypt (e.g. a master key rotated away) is left out, so the platform key serves
/// instead, and is reported without any key material.
pub async fn decrypt_own_keys(
    db: &impl ConnectionTrait,
    ring: &KeyRing,
    account_id: AccountId,
    providers: &[Vendor],
) -> Result<OwnKeys, DbErr> {
    let password_stamp = accounts::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .map(|account| account.password_changed_at.timestamp_millis());
    let rows = byok_keys::Entity::find()
        .filter(byok_keys::Column::AccountId.eq(account_id))
        .all(db)
        .await?;
    let mut keys = HashMap::new();
    for &provider in providers {
        let Some(row) = rows.iter().find(|row| row.provider == provider.as_str()) else {
            continue;
        };
        let stored = EncryptedKey {
            ciphertext: row.ciphertext.clone(),
            nonce: row.nonce.clone(),
            key_id: row.key_id.clone(),
        };
        match ring.decrypt(account_id, provider.as_str(), &stored) {
            Ok(key) => {
                keys.insert(
                    provider,
                    OwnKey {
                        key: ApiKey::from(key),
                        stamp: row.nonce.clone(),
                    },
                );
            }
            Err(error) => {
                let provider = provider.as_str();
                tracing::warn!(%account_id, provider, error = %error, "a stored key could not be decrypted; using the platform key");
            }
        }
    }
    Ok(OwnKeys {
        keys,
        password_stamp,
    })
}

/// How each of these accounts is stored now (no key material: only each key row's stamp);
/// an erased account is missing from the map.
pub async fn stored_accounts(
    db: &impl ConnectionTrait,
    account_ids: &[AccountId],
) -> Result<HashMap<AccountId, StoredAccount>, DbErr> {
    let mut stored: HashMap<AccountId, StoredAccount> = accounts::Entity::find()
        .filter(accounts::Column::Id.is_in(account_ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|account| {
            (
                account.id,
                StoredAccount {
                    password_stamp: account.password_changed_at.timestamp_millis(),
                    disabled: account.disabled_at.is_some(),
                    keys: HashMap::new(),
                },
            )
        })
        .collect();
    let rows = byok_keys::Entity::find()
        .filter(byok_keys::Column::AccountId.is_in(account_ids.iter().copied()))
        .all(db)
        .await?;
    for row in rows {
        let provider = Vendor::KEYED
            .into_iter()
            .find(|p| p.as_str() == row.provider);
        if let (Some(account), Some(provider)) = (stored.get_mut(&row.account_id), provider) {
            account.keys.insert(provider, row.nonce);
        }
    }
    Ok(stored)
}
