//! `abuse_reviews`: an admin's decision on an account flagged for free-interview abuse
//! (`allow` grants the allocation, `deny` keeps it at zero), with an optional note. The note is
//! the account's data (exported, erased with it); the audit log records ids and the decision
//! code only.

use sea_orm::entity::prelude::*;

use crate::ids::AccountId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "abuse_reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: AccountId,
    /// `allow` or `deny`.
    pub decision: String,
    pub note: Option<String>,
    /// The deciding admin (not the account's data: left out of the export, as in the audit).
    #[serde(skip_serializing)]
    pub decided_by: AccountId,
    pub decided_at: DateTimeUtc,
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
