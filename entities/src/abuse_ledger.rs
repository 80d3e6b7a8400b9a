//! `abuse_ledger`: keyed hashes (HMAC-SHA256) of the canonical mailboxes that have held an
//! account, so a mailbox's free interviews are granted once per period even across erasure and
//! e-mail changes. No account column: nothing here names an account, and the row outlives an
//! erased one until the retention sweep deletes it (`ABUSE_LEDGER_DAYS` after `recorded_at`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "abuse_ledger")]
pub struct Model {
    /// Hex of HMAC-SHA256 of the canonical mailbox under the ledger key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub mailbox_hash: String,
    /// The last time the mailbox was signed up with, changed to or from, or erased.
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
