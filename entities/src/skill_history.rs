//! `skill_history`: per-skill scores over time (kept only while skill tracking is on).

use sea_orm::entity::prelude::*;

use crate::ids::{AccountId, InterviewId};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "skill_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: AccountId,
    pub interview_id: Option<InterviewId>,
    pub skill: String,
    /// The level after this change.
    pub score: f64,
    pub recorded_at: DateTimeUtc,
    /// The level before this change.
    pub previous_level: Option<f64>,
    /// The signal: positive or negative, from an answer scoring `signal_score`.
    pub positive: Option<bool>,
    pub signal_score: Option<f64>,
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
