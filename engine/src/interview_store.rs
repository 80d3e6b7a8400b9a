//! The one place an interview's rows are written while it runs and when it ends: the actor
//! and the API (`POST /interviews/{id}/end` for an interview not live on this node) both use
//! it, so the "ended" UPDATE exists once. A running interview's writes go through the node's
//! [`TranscriptWriter`](crate::actors::transcript_writer::TranscriptWriter), which hands them to
//! [`write_ops`] in batches.

use chrono::{DateTime, Utc};
use entities::interviews::{self, InterviewStatus};
use entities::{transcript_segments, transcript_words, turn_metrics};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::ids::InterviewId;
use crate::interview_core::{EndReason, TurnBreakdown};
use crate::transcript_assembler::{SegmentRecord, Speaker};

/// The interview is live on `node_id` since `now`.
pub async fn mark_live(
    db: &impl ConnectionTrait,
    interview_id: InterviewId,
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

/// One write of a running interview, as the [`TranscriptWriter`] queues it and
/// [`write_ops`] stores it. `at` is when the interview made it (the rows' `created_at`, the
/// end's `ended_at`), not when the writer got to it.
///
/// [`TranscriptWriter`]: crate::actors::transcript_writer::TranscriptWriter
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    /// The interview is live on `node_id` ([`mark_live`]).
    Live {
        interview_id: InterviewId,
        node_id: String,
        at: DateTime<Utc>,
    },
    /// Finished transcript segments and their words.
    Segments {
        interview_id: InterviewId,
        segments: Vec<SegmentRecord>,
        at: DateTime<Utc>,
    },
    /// One turn's latency breakdown.
    Turn {
        interview_id: InterviewId,
        breakdown: TurnBreakdown,
        at: DateTime<Utc>,
    },
    /// The interview ended ([`mark_ended`]).
    Ended {
        interview_id: InterviewId,
        reason: EndReason,
        at: DateTime<Utc>,
    },
}

impl StoreOp {
    pub fn interview_id(&self) -> InterviewId {
        match self {
            StoreOp::Live { interview_id, .. }
            | StoreOp::Segments { interview_id, .. }
            | StoreOp::Turn { interview_id, .. }
            | StoreOp::Ended { interview_id, .. } => *interview_id,
        }
    }

    /// Rows this op inserts (segments, their words, turns; the marks update and count 0).
    pub fn rows(&self) -> usize {
        match self {
            StoreOp::Segments { segments, .. } => {
                segments.iter().map(|segment| 1 + segment.words.len()).sum()
            }
            StoreOp::Turn { .. } => 1,
            StoreOp::Live { .. } | StoreOp::Ended { .. } => 0,
        }
    }
}

/// What [`write_ops`] stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpsWritten {
    /// Rows inserted (segments, words, turns).
    pub rows: usize,
    /// Per `Ended` op, in order: whether it ended the interview (false: it had ended before).
    pub ended: Vec<bool>,
}

/// Rows per multi-row INSERT: at most 10 columns each, so 5,000 bind parameters, well under
/// SQLite's 32,766 and PostgreSQL's 65,535.
pub const ROWS_PER_INSERT: usize = 500;

/// Stores `ops` in one transaction: the `live` marks, then every segment, word and turn row in
/// multi-row inserts, then the `ended` marks, so an interview's end is never stored before
/// its last segment. Either all of it is stored or none (the caller may retry the same ops).
pub async fn write_ops<C>(db: &C, ops: &[StoreOp]) -> Result<OpsWritten, DbErr>
where
    C: TransactionTrait,
{
    let txn = crate::database::begin_write(db).await?;
    let mut segments = Vec::new();
    let mut words = Vec::new();
    let mut turns = Vec::new();
    for op in ops {
        match op {
            StoreOp::Live {
                interview_id,
                node_id,
                at,
            } => mark_live(&txn, *interview_id, node_id, *at).await?,
            StoreOp::Segments {
                interview_id,
                segments: records,
                at,
            } => {
                for segment in records {
                    let segment_id = Uuid::now_v7();
                    segments.push(segment_row(*interview_id, segment_id, segment, *at));
                    words.extend(
                        segment
                            .words
                            .iter()
                            .map(|word| transcript_words::ActiveModel {
                                id: Set(Uuid::now_v7()),
                                segment_id: Set(segment_id),
                                interview_id: Set(*interview_id),
                                word: Set(word.word.chars().take(255).collect()),
                                start_ms: Set(word.start_ms),
                                end_ms: Set(word.end_ms),
                                confidence: Set(word.confidence),
                                created_at: Set(*at),
                            }),
                    );
                }
            }
            StoreOp::Turn {
                interview_id,
                breakdown,
                at,
            } => turns.push(turn_row(*interview_id, breakdown, *at)),
            StoreOp::Ended { .. } => {}
        }
    }
    let rows = segments.len() + words.len() + turns.len();
    // Segments before their words (the words' foreign key).
    insert_chunked::<transcript_segments::Entity, _>(&txn, segments).await?;
    insert_chunked::<transcript_words::Entity, _>(&txn, words).await?;
    insert_chunked::<turn_metrics::Entity, _>(&txn, turns).await?;
    let mut ended = Vec::new();
    for op in ops {
        if let StoreOp::Ended {
            interview_id,
            reason,
            at,
        } = op
        {
            ended.push(mark_ended(&txn, *interview_id, *reason, *at).await?);
        }
    }
    txn.commit().await?;
    Ok(OpsWritten { rows, ended })
}

async fn insert_chunked<E, A>(db: &impl ConnectionTrait, rows: Vec<A>) -> Result<(), DbErr>
where
    E: EntityTrait,
    A: ActiveModelTrait<Entity = E>,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}

fn segment_row(
    interview_id: InterviewId,
    segment_id: Uuid,
    segment: &SegmentRecord,
    at: DateTime<Utc>,
) -> transcript_segments::ActiveModel {
    transcript_segments::ActiveModel {
        id: Set(segment_id),
        interview_id: Set(interview_id),
        seq: Set(segment.seq),
        speaker: Set(match segment.speaker {
            Speaker::Candidate => transcript_segments::Speaker::Candidate,
            Speaker::Interviewer => transcript_segments::Speaker::Interviewer,
        }),
        text: Set(segment.text.clone()),
        start_ms: Set(segment.start_ms),
        end_ms: Set(segment.end_ms),
        interrupted: Set(segment.interrupted),
        created_at: Set(at),
    }
}

fn turn_row(
    interview_id: InterviewId,
    breakdown: &TurnBreakdown,
    at: DateTime<Utc>,
) -> turn_metrics::ActiveModel {
    turn_metrics::ActiveModel {
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
        created_at: Set(at),
    }
}

/// Appends finished transcript segments and their words (one transaction; a running
/// interview writes through the [`TranscriptWriter`] instead).
///
/// [`TranscriptWriter`]: crate::actors::transcript_writer::TranscriptWriter
pub async fn append_segments(
    db: &impl TransactionTrait,
    interview_id: InterviewId,
    segments: Vec<SegmentRecord>,
) -> Result<(), DbErr> {
    let op = StoreOp::Segments {
        interview_id,
        segments,
        at: Utc::now(),
    };
    write_ops(db, &[op]).await.map(|_| ())
}

/// Stores one turn's latency breakdown (a running interview writes through the
/// [`TranscriptWriter`] instead).
///
/// [`TranscriptWriter`]: crate::actors::transcript_writer::TranscriptWriter
pub async fn record_turn(
    db: &impl TransactionTrait,
    interview_id: InterviewId,
    breakdown: &TurnBreakdown,
) -> Result<(), DbErr> {
    let op = StoreOp::Turn {
        interview_id,
        breakdown: *breakdown,
        at: Utc::now(),
    };
    write_ops(db, &[op]).await.map(|_| ())
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
    interview_id: InterviewId,
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
