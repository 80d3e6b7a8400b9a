//! `interviews`: one row per interview, live or ended; `node_id` is the interview registry that
//! routes signaling to the node hosting a live interview.

use sea_orm::entity::prelude::*;

use crate::ids::{AccountId, InterviewId};
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
    pub id: InterviewId,
    pub account_id: AccountId,
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

/// What a new interview is created with. [`NewInterview::row`] is the one place a `created`
/// interview row is built (`POST /api/v1/interviews` and the test set-ups).
#[derive(Debug, Clone)]
pub struct NewInterview {
    pub id: InterviewId,
    pub account_id: AccountId,
    pub kind: InterviewKind,
    pub target_role: Option<String>,
    pub company: Option<String>,
    pub planned_minutes: i32,
    pub focus_skill: Option<String>,
}

impl NewInterview {
    /// A behavioral interview of 20 minutes with no role, company or focus.
    pub fn behavioral(id: InterviewId, account_id: AccountId) -> Self {
        Self {
            id,
            account_id,
            kind: InterviewKind::Behavioral,
            target_role: None,
            company: None,
            planned_minutes: 20,
            focus_skill: None,
        }
    }

    /// The row to insert: `created`, on no node, not started.
    pub fn row(self, now: DateTimeUtc) -> ActiveModel {
        use sea_orm::ActiveValue::Set;
        ActiveModel {
            id: Set(self.id),
            account_id: Set(self.account_id),
            kind: Set(self.kind),
            target_role: Set(self.target_role),
            company: Set(self.company),
            planned_minutes: Set(self.planned_minutes),
            status: Set(InterviewStatus::Created),
            node_id: Set(None),
            created_at: Set(now),
            started_at: Set(None),
            ended_at: Set(None),
            end_reason: Set(None),
            focus_skill: Set(self.focus_skill),
        }
    }
}
