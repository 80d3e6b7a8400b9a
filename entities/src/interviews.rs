//! `interviews`: one row per interview, live or ended; `node_id` is the interview registry that
//! routes signaling to the node hosting a live interview.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The kind of interview the interviewer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
#[serde(rename_all = "snake_case")]
pub enum InterviewKind {
    #[sea_orm(string_value = "behavioral")]
    Behavioral,
    #[sea_orm(string_value = "system_design")]
    SystemDesign,
    #[sea_orm(string_value = "technical")]
    Technical,
}

/// Lifecycle of an interview as stored (the live state machine has finer states in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum InterviewStatus {
    #[sea_orm(string_value = "created")]
    Created,
    #[sea_orm(string_value = "live")]
    Live,
    #[sea_orm(string_value = "ended")]
    Ended,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "interviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: InterviewKind,
    pub target_role: Option<String>,
    pub company: Option<String>,
    pub planned_minutes: i32,
    pub status: InterviewStatus,
    pub node_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    /// Why it ended (`completed`, `candidate_ended`, `idle_timeout`, `vendor_failure:stt`, ...).
    pub end_reason: Option<String>,
    /// The microskill a drill interview practises (the interviewer's prompt names it).
    pub focus_skill: Option<String>,
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
    #[sea_orm(has_many = "super::transcript_segments::Entity")]
    TranscriptSegments,
}

impl Related<super::accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl Related<super::transcript_segments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TranscriptSegments.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
