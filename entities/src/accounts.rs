//! `accounts`: one row per person. Personal data: `email`, `email_canonical`, `display_name`.

use sea_orm::entity::prelude::*;

use crate::ids::AccountId;
use serde::{Deserialize, Serialize};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "admin")]
    Admin,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AccountId,
    /// Normalized (trimmed, lower-cased) address; unique.
    #[sea_orm(unique)]
    pub email: String,
    /// Canonical address for abuse checks (provider dots and `+tags` removed).
    pub email_canonical: String,
    pub display_name: Option<String>,
    /// bcrypt hash; the password itself is never stored.
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub role: Role,
    pub age_confirmed_at: DateTimeUtc,
    pub failed_login_count: i32,
    pub locked_until: Option<DateTimeUtc>,
    pub disabled_at: Option<DateTimeUtc>,
    pub password_changed_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the account followed a verification link sent to its current address; `None`
    /// until then, and again after an e-mail change.
    pub email_verified_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::refresh_tokens::Entity")]
    RefreshTokens,
    #[sea_orm(has_many = "super::interviews::Entity")]
    Interviews,
}

impl Related<super::refresh_tokens::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RefreshTokens.def()
    }
}

impl Related<super::interviews::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Interviews.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// What a new account starts with. [`NewAccount::row`] is the one place an `accounts` row is
/// built (sign-up and `create-admin` through `api::accounts`, and the test fixtures), so a new
/// column gets its initial value here once.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    /// Normalized address.
    pub email: String,
    /// Canonical address for abuse checks.
    pub email_canonical: String,
    pub display_name: Option<String>,
    pub password_hash: String,
    pub role: Role,
}

impl NewAccount {
    /// The row to insert: not locked, not disabled, mailbox not verified, age confirmed and
    /// password set at `now`.
    pub fn row(self, now: DateTimeUtc) -> ActiveModel {
        use sea_orm::ActiveValue::Set;
        ActiveModel {
            id: Set(self.id),
            email: Set(self.email),
            email_canonical: Set(self.email_canonical),
            display_name: Set(self.display_name),
            password_hash: Set(self.password_hash),
            role: Set(self.role),
            age_confirmed_at: Set(now),
            failed_login_count: Set(0),
            locked_until: Set(None),
            disabled_at: Set(None),
            password_changed_at: Set(now),
            created_at: Set(now),
            updated_at: Set(now),
            email_verified_at: Set(None),
        }
    }
}
