//! `email_verifications`: single-use, expiring links that prove an account holds its mailbox.
//! Only the token's SHA-256 is stored (never exported); the token itself is only in the e-mail.

use sea_orm::entity::prelude::*;

use crate::ids::AccountId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "email_verifications")]
pub struct Model {
    /// Hex of SHA-256 of the link's token.
    #[sea_orm(primary_key, auto_increment = false)]
    #[serde(skip_serializing)]
    pub token_hash: String,
    pub account_id: AccountId,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// When the link was followed; a used link verifies nothing again.
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::accounts::Entity",
        from = "Column::AccountId",
        to = "super::accounts::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
}

impl Related<super::accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
