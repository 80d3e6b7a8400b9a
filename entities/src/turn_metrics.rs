//! `turn_metrics`: per-turn latency breakdown in milliseconds (see DESIGN.md §4); no text.

use sea_orm::entity::prelude::*;

use crate::ids::InterviewId;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "turn_metrics")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub interview_id: InterviewId,
    pub turn_index: i32,
    /// Ours: from the last voiced frame received to the conductor seeing it (jitter buffer,
    /// decode, voice detection, mailbox).
    pub ingress_ms: Option<f64>,
    /// Vendor: from the conductor seeing the end of speech to the STT final.
    pub stt_final_ms: Option<f64>,
    /// From the STT final (or speech end) to the end-of-turn decision (the quiet window).
    pub turn_wait_ms: Option<f64>,
    /// Ours: from the decision to the LLM request being sent.
    pub dispatch_ms: Option<f64>,
    /// Vendor: the LLM's time to first token still waited for after the decision.
    pub llm_ttft_ms: Option<f64>,
    /// Ours: from the reply text being available to it being sent to the TTS.
    pub tts_buffering_ms: Option<f64>,
    /// Vendor: TTS time to first audio.
    pub tts_ttfa_ms: Option<f64>,
    /// Ours: from the first audio to the first reply frame sent.
    pub egress_ms: Option<f64>,
    /// Ingress + dispatch + TTS buffering + egress (everything but the vendor waits and the
    /// quiet window).
    pub engine_overhead_ms: Option<f64>,
    /// From the last voiced frame received to the first reply packet sent.
    pub v2v_ms: Option<f64>,
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
