//! `byok_keys`: a user's own vendor API keys, AES-256-GCM encrypted. The plaintext is never stored.

use sea_orm::entity::prelude::*;

use crate::ids::AccountId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "byok_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: AccountId,
    /// `anthropic`, `deepgram` or `elevenlabs`.
    pub provider: String,
    #[serde(skip_serializing)]
    pub ciphertext: Vec<u8>,
    /// The random 96-bit nonce of this encryption.
    #[serde(skip_serializing)]
    pub nonce: Vec<u8>,
    /// Which master key encrypted this row (for rotation).
    pub key_id: String,
    /// The key's last four characters, the only part ever shown.
    pub last_four: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
