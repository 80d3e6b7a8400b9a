//! Operator actions run from the command line (`interviewcraft create-admin`).

use chrono::Utc;
use engine::AccountId;
use entities::accounts::{self, Role};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};

use crate::domain::{Email, Password};

/// What `create_admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    Promoted(AccountId),
    Created(AccountId),
}

/// Promotes the account with `email` to admin, or creates it as an admin with `password`.
pub async fn create_admin(
    db: &DatabaseConnection,
    email: &Email,
    password: Option<Password>,
    bcrypt_cost: u32,
) -> anyhow::Result<AdminOutcome> {
    if let Some(account) = accounts::Entity::find()
        .filter(accounts::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
    {
        let id = account.id;
        let mut active: accounts::ActiveModel = account.into();
        active.role = Set(Role::Admin);
        active.updated_at = Set(Utc::now());
        active.update(db).await?;
        return Ok(AdminOutcome::Promoted(id));
    }
    let password = password.ok_or_else(|| {
        anyhow::anyhow!("no account with that email; pass --password-stdin to create one")
    })?;
    let hash = crate::auth::password_hash::hash(&password, bcrypt_cost)
        .await
        .map_err(|error| anyhow::anyhow!("hashing the password: {error}"))?;
    let txn = engine::database::begin_write(db).await?;
    let registration = crate::accounts::Registration {
        email: email.clone(),
        display_name: None,
        password_hash: hash,
        role: Role::Admin,
        free_interviews: 0,
        // The operator who runs `create-admin` vouches for the address.
        email_verified: true,
    };
    let id = crate::accounts::create(&txn, registration, Utc::now())
        .await?
        .id;
    txn.commit().await?;
    Ok(AdminOutcome::Created(id))
}

/// What a master-key rotation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Rows re-encrypted under the current master key.
    pub rotated: usize,
    /// Rows already under the current key.
    pub current: usize,
}

/// Re-encrypts every BYOK row that is not under the ring's current master key (`rotate-keys`).
/// Runs in one transaction: either every row moves to the new key or none does.
pub async fn rotate_keys(
    db: &DatabaseConnection,
    ring: &engine::byok_cipher::KeyRing,
) -> anyhow::Result<RotationReport> {
    use engine::byok_cipher::EncryptedKey;
    use entities::byok_keys;

    let txn = engine::database::begin_write(db).await?;
    let mut report = RotationReport::default();
    for row in byok_keys::Entity::find().all(&txn).await? {
        if row.key_id == ring.current_key_id() {
            report.current += 1;
            continue;
        }
        let stored = EncryptedKey {
            ciphertext: row.ciphertext.clone(),
            nonce: row.nonce.clone(),
            key_id: row.key_id.clone(),
        };
        let rotated = ring
            .reencrypt(row.account_id, &row.provider, &stored)
            .map_err(|error| anyhow::anyhow!("key row {}: {error}", row.id))?;
        let mut active: byok_keys::ActiveModel = row.into();
        active.ciphertext = Set(rotated.ciphertext);
        active.nonce = Set(rotated.nonce);
        active.key_id = Set(rotated.key_id);
        active.update(&txn).await?;
        report.rotated += 1;
    }
    txn.commit().await?;
    Ok(report)
}
