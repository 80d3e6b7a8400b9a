//! `transcript_segments`: what each speaker said, with start and end in milliseconds from the start
//! of the interview. Personal data: `text`.

use sea_orm::entity::prelude::*;

use crate::ids::InterviewId;
use serde::{Deserialize, Serialize};

/// Who spoke a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    #[sea_orm(string_value = "candidate")]
    Candidate,
    #[sea_orm(string_value = "interviewer")]
    Interviewer,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "transcript_segments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub interview_id: InterviewId,
    pub seq: i32,
    pub speaker: Speaker,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The interviewer was interrupted; `text` holds the part that was heard.
    pub interrupted: bool,
    pub created_at: DateTimeUtc,
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
