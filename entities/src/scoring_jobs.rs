//! `scoring_jobs`: the feedback job of an ended interview. Its state lives here, not only in
//! memory, so a job interrupted by a restart is picked up again at start.

use sea_orm::entity::prelude::*;

use crate::ids::{AccountId, InterviewId};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "scoring_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub interview_id: InterviewId,
    pub account_id: AccountId,
    /// `pending`, `running`, `done`, `skipped` (no answer of 15+ words) or `failed`.
    pub state: String,
    pub attempts: i32,
    /// Which scorer produced the rows (`local_rules`, ...).
    pub scorer: Option<String>,
    /// Why the last attempt failed (an error category; never transcript text).
    pub error: Option<String>,
    /// Answers scored.
    pub answers: i32,
    /// Delivery metrics over the whole interview (kept after word timestamps are deleted).
    pub delivery: Option<Json>,
    pub requested_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// The token of the run that holds the job (`running`); a run writes its result only while
    /// its token is still here.
    pub claim: Option<Uuid>,
    /// The node whose run holds the job (its `NODE_ID`).
    pub claimed_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::interviews::Entity",
        from = "Column::InterviewId",
        to = "super::interviews::Column::Id",
        on_delete = "Cascade"
    )]
    Interview,
}

impl Related<super::interviews::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Interview.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
