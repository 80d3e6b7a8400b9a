//! Accounts: the one place an account is created (sign-up and `create-admin`), and in
//! [`tables`] the one descriptor of what an account owns, which drives export, erasure and the
//! every-table tests.

pub mod tables;

use chrono::{DateTime, Utc};
use engine::AccountId;
use entities::accounts::{self, NewAccount, Role};
use entities::{account_settings, interview_quotas};
use sea_orm::ActiveModelTrait;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, DbErr};

use crate::domain::Email;

/// What the caller decides about a new account; the rest are defaults.
pub struct Registration {
    pub email: Email,
    pub display_name: Option<String>,
    /// bcrypt hash of the chosen password.
    pub password_hash: String,
    pub role: Role,
    /// Free interviews on platform keys granted at sign-up.
    pub free_interviews: i32,
    /// Whether the mailbox counts as verified from the start (an account an operator creates
    /// with `create-admin`); a sign-up's is verified by e-mail link.
    pub email_verified: bool,
}

/// Creates an account in the caller's transaction: its row, its default settings (digest and
/// training use off, skill tracking on) and its free-interview allocation.
pub async fn create(
    db: &impl ConnectionTrait,
    registration: Registration,
    now: DateTime<Utc>,
) -> Result<accounts::Model, DbErr> {
    let id = AccountId::now_v7();
    let mut row = NewAccount {
        id,
        email: registration.email.as_str().to_owned(),
        email_canonical: registration.email.canonical(),
        display_name: registration.display_name,
        password_hash: registration.password_hash,
        role: registration.role,
    }
    .row(now);
    if registration.email_verified {
        row.email_verified_at = Set(Some(now));
    }
    let account = row.insert(db).await?;
    account_settings::defaults(id, now).insert(db).await?;
    interview_quotas::ActiveModel {
        account_id: Set(id),
        free_interviews_granted: Set(registration.free_interviews),
        free_interviews_used: Set(0),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(account)
}
