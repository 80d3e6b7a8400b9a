//! `transcript_words`: word-level timestamps of a segment; deleted 14 days after `created_at`.

use sea_orm::entity::prelude::*;

use crate::ids::InterviewId;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "transcript_words")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub segment_id: Uuid,
    pub interview_id: InterviewId,
    pub word: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub confidence: f64,
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
