//! `usage_log`: one row per vendor call or per STT stream minute: tokens, audio seconds,
//! characters, latency, cost. There is deliberately no text column. Deleted after 90 days.

use sea_orm::entity::prelude::*;

use crate::ids::{AccountId, InterviewId};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "usage_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Option<AccountId>,
    pub interview_id: Option<InterviewId>,
    /// `deepgram`, `anthropic`, `elevenlabs`, or `fake` in keyless local mode.
    pub provider: String,
    pub model: String,
    /// `stt_stream`, `llm_stream`, `tts_stream`, ...
    pub operation: String,
    /// `platform` or `byok`.
    pub key_source: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub audio_seconds: f64,
    pub characters: i64,
    pub latency_ms: f64,
    /// Cost in millionths of a US dollar.
    pub cost_micro_usd: i64,
    pub created_at: DateTimeUtc,
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
