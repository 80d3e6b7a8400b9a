//! The one place an interview's rows are written while it runs and when it ends: the actor
//! and the API (`POST /interviews/{id}/end` for an interview not live on this node) both use
//! it, so the "ended" UPDATE exists once.

use chrono::{DateTime, Utc};
use entities::interviews::{self, InterviewStatus};
use entities::{transcript_segments, transcript_words, turn_metrics};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::interview_core::{EndReason, TurnBreakdown};
use crate::transcript_assembler::{SegmentRecord, Speaker};

/// The interview is live on `node_id` since `now`.
pub async fn mark_live(
    db: &impl ConnectionTrait,
    interview_id: Uuid,
    node_id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    interviews::Entity::update_many()
        .col_expr(
            interviews::Column::Status,
            Expr::value(InterviewStatus::Live),
        )
        .col_expr(interviews::Column::StartedAt, Expr::value(Some(now)))
        .col_expr(
            interviews::Column::NodeId,
            Expr::value(Some(node_id.to_owned())),
        )
        .filter(interviews::Column::Id.eq(interview_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Appends finished transcript segments and their words.
pub async fn append_segments(
    db: &impl ConnectionTrait,
    interview_id: Uuid,
    segments: Vec<SegmentRecord>,
) -> Result<(), DbErr> {
    let now = Utc::now();
    for segment in segments {
        let segment_id = Uuid::now_v7();
        transcript_segments::Entity::insert(transcript_segments::ActiveModel {
            id: Set(segment_id),
            interview_id: Set(interview_id),
            seq: Set(segment.seq),
            speaker: Set(match segment.speaker {
                Speaker::Candidate => transcript_segments::Speaker::Candidate,
                Speaker::Interviewer => transcript_segments::Speaker::Interviewer,
            }),
            text: Set(segment.text),
            start_ms: Set(segment.start_ms),
            end_ms: Set(segment.end_ms),
            interrupted: Set(segment.interrupted),
            created_at: Set(now),
        })
        .exec(db)
        .await?;
        if !segment.words.is_empty() {
            let words = segment
                .words
                .into_iter()
                .map(|word| transcript_words::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    segment_id: Set(segment_id),
                    interview_id: Set(interview_id),
                    word: Set(word.word.chars().take(255).collect()),
                    start_ms: Set(word.start_ms),
                    end_ms: Set(word.end_ms),
                    confidence: Set(word.confidence),
                    created_at: Set(now),
                });
            transcript_words::Entity::insert_many(words)
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// Stores one turn's latency breakdown.
pub async fn record_turn(
    db: &impl ConnectionTrait,
    interview_id: Uuid,
    breakdown: &TurnBreakdown,
) -> Result<(), DbErr> {
    let row = turn_metrics::ActiveModel {
        id: Set(Uuid::now_v7()),
        interview_id: Set(interview_id),
        turn_index: Set(breakdown.turn_index),
        ingress_ms: Set(Some(breakdown.ingress_ms)),
        stt_final_ms: Set(Some(breakdown.stt_final_ms)),
        turn_wait_ms: Set(Some(breakdown.turn_wait_ms)),
        dispatch_ms: Set(Some(breakdown.dispatch_ms)),
        llm_ttft_ms: Set(Some(breakdown.llm_ttft_ms)),
        tts_buffering_ms: Set(Some(breakdown.tts_buffering_ms)),
        tts_ttfa_ms: Set(Some(breakdown.tts_ttfa_ms)),
        egress_ms: Set(Some(breakdown.egress_ms)),
        engine_overhead_ms: Set(Some(breakdown.engine_overhead_ms)),
        v2v_ms: Set(Some(breakdown.v2v_ms)),
        created_at: Set(Utc::now()),
    };
    turn_metrics::Entity::insert(row).exec(db).await?;
    Ok(())
}

/// The update that ends interviews at `now` for `reason` (filtered by the caller).
fn ended(reason: EndReason, now: DateTime<Utc>) -> sea_orm::UpdateMany<interviews::Entity> {
    interviews::Entity::update_many()
        .col_expr(
            interviews::Column::Status,
            Expr::value(InterviewStatus::Ended),
        )
        .col_expr(interviews::Column::EndedAt, Expr::value(Some(now)))
        .col_expr(
            interviews::Column::EndReason,
            Expr::value(Some(reason.as_str().to_owned())),
        )
}

/// Ends every interview `node_id` still holds `live` (it stopped without ending them) for
/// `reason` at `now`; returns how many. Other nodes' live interviews are untouched.
pub async fn mark_node_ended(
    db: &impl ConnectionTrait,
    node_id: &str,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let result = ended(reason, now)
        .filter(interviews::Column::Status.eq(InterviewStatus::Live))
        .filter(interviews::Column::NodeId.eq(node_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// The interview ended at `now` for `reason`. An interview already ended keeps its first end
/// (a late second writer, e.g. the API after the actor, changes nothing); returns whether
/// this call ended it.
pub async fn mark_ended(
    db: &impl ConnectionTrait,
    interview_id: Uuid,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = ended(reason, now)
        .filter(interviews::Column::Id.eq(interview_id))
        .filter(interviews::Column::Status.ne(InterviewStatus::Ended))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}
