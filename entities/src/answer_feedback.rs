//! `answer_feedback`: the score of one answer (question/answer segment) of an interview:
//! findings with evidence spans on the interview's clock, category scores, overall, confidence,
//! an improved answer and delivery metrics. Personal data: `question`, `answer`, the quotes in
//! `findings`, `improved_answer`.

use sea_orm::entity::prelude::*;

use crate::ids::InterviewId;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "answer_feedback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub interview_id: InterviewId,
    /// 0-based position of the segment in the interview.
    pub segment_index: i32,
    #[sea_orm(column_type = "Text")]
    pub question: String,
    #[sea_orm(column_type = "Text")]
    pub answer: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub overall: f64,
    pub confidence: f64,
    pub categories: Json,
    pub findings: Json,
    #[sea_orm(column_type = "Text")]
    pub improved_answer: String,
    pub delivery: Option<Json>,
    pub scorer: String,
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
