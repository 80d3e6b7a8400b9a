//! Interviews and what they produce: transcript segments and words, per-turn latency, scores and
//! skill history. No table here has a column for audio: audio is never stored.

use crate::helpers::{fk, index};
use crate::m20261126_000001_accounts::Accounts;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Interviews::Table)
                    .col(pk_uuid(Interviews::Id))
                    .col(uuid(Interviews::AccountId))
                    .col(string_len(Interviews::Kind, 32))
                    .col(string_null(Interviews::TargetRole))
                    .col(string_null(Interviews::Company))
                    .col(integer(Interviews::PlannedMinutes))
                    .col(string_len(Interviews::Status, 16))
                    // The node hosting the live interview (the interview registry across nodes).
                    .col(string_len_null(Interviews::NodeId, 64))
                    .col(timestamp_with_time_zone(Interviews::CreatedAt))
                    .col(timestamp_with_time_zone_null(Interviews::StartedAt))
                    .col(timestamp_with_time_zone_null(Interviews::EndedAt))
                    .col(string_len_null(Interviews::EndReason, 64))
                    .foreign_key(&mut fk(
                        Interviews::Table,
                        Interviews::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "interviews_account",
            Interviews::Table,
            &["account_id"],
            false,
        )
        .await?;
        index(
            manager,
            "interviews_status",
            Interviews::Table,
            &["status"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TranscriptSegments::Table)
                    .col(pk_uuid(TranscriptSegments::Id))
                    .col(uuid(TranscriptSegments::InterviewId))
                    .col(integer(TranscriptSegments::Seq))
                    .col(string_len(TranscriptSegments::Speaker, 16))
                    .col(text(TranscriptSegments::Text))
                    // Milliseconds from the start of the interview.
                    .col(big_integer(TranscriptSegments::StartMs))
                    .col(big_integer(TranscriptSegments::EndMs))
                    // For the interviewer: the reply was cut by a barge-in; `text` is what was heard.
                    .col(boolean(TranscriptSegments::Interrupted).default(false))
                    .col(timestamp_with_time_zone(TranscriptSegments::CreatedAt))
                    .foreign_key(&mut fk(
                        TranscriptSegments::Table,
                        TranscriptSegments::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "transcript_segments_interview",
            TranscriptSegments::Table,
            &["interview_id", "seq"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TranscriptWords::Table)
                    .col(pk_uuid(TranscriptWords::Id))
                    .col(uuid(TranscriptWords::SegmentId))
                    .col(uuid(TranscriptWords::InterviewId))
                    .col(string(TranscriptWords::Word))
                    .col(big_integer(TranscriptWords::StartMs))
                    .col(big_integer(TranscriptWords::EndMs))
                    .col(double(TranscriptWords::Confidence))
                    // Swept 14 days after this instant.
                    .col(timestamp_with_time_zone(TranscriptWords::CreatedAt))
                    .foreign_key(&mut fk(
                        TranscriptWords::Table,
                        TranscriptWords::SegmentId,
                        TranscriptSegments::Table,
                        TranscriptSegments::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        TranscriptWords::Table,
                        TranscriptWords::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "transcript_words_interview",
            TranscriptWords::Table,
            &["interview_id"],
            false,
        )
        .await?;
        index(
            manager,
            "transcript_words_segment",
            TranscriptWords::Table,
            &["segment_id"],
            false,
        )
        .await?;
        index(
            manager,
            "transcript_words_created",
            TranscriptWords::Table,
            &["created_at"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TurnMetrics::Table)
                    .col(pk_uuid(TurnMetrics::Id))
                    .col(uuid(TurnMetrics::InterviewId))
                    .col(integer(TurnMetrics::TurnIndex))
                    // Milliseconds (fractional): see DESIGN.md §4 for the definitions.
                    .col(double_null(TurnMetrics::SttFinalMs))
                    .col(double_null(TurnMetrics::LlmTtftMs))
                    .col(double_null(TurnMetrics::TtsTtfaMs))
                    .col(double_null(TurnMetrics::EngineOverheadMs))
                    .col(double_null(TurnMetrics::V2vMs))
                    .col(timestamp_with_time_zone(TurnMetrics::CreatedAt))
                    .foreign_key(&mut fk(
                        TurnMetrics::Table,
                        TurnMetrics::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "turn_metrics_interview",
            TurnMetrics::Table,
            &["interview_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AnswerScores::Table)
                    .col(pk_uuid(AnswerScores::Id))
                    .col(uuid(AnswerScores::InterviewId))
                    .col(uuid_null(AnswerScores::SegmentId))
                    .col(string_len(AnswerScores::Skill, 64))
                    .col(double(AnswerScores::Score))
                    .col(text_null(AnswerScores::Rationale))
                    .col(timestamp_with_time_zone(AnswerScores::CreatedAt))
                    .foreign_key(&mut fk(
                        AnswerScores::Table,
                        AnswerScores::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        AnswerScores::Table,
                        AnswerScores::SegmentId,
                        TranscriptSegments::Table,
                        TranscriptSegments::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "answer_scores_interview",
            AnswerScores::Table,
            &["interview_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SkillHistory::Table)
                    .col(pk_uuid(SkillHistory::Id))
                    .col(uuid(SkillHistory::AccountId))
                    .col(uuid_null(SkillHistory::InterviewId))
                    .col(string_len(SkillHistory::Skill, 64))
                    .col(double(SkillHistory::Score))
                    .col(timestamp_with_time_zone(SkillHistory::RecordedAt))
                    .foreign_key(&mut fk(
                        SkillHistory::Table,
                        SkillHistory::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        SkillHistory::Table,
                        SkillHistory::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "skill_history_account_skill",
            SkillHistory::Table,
            &["account_id", "skill"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SkillHistory::Table.into_iden(),
            AnswerScores::Table.into_iden(),
            TurnMetrics::Table.into_iden(),
            TranscriptWords::Table.into_iden(),
            TranscriptSegments::Table.into_iden(),
            Interviews::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub enum Interviews {
    Table,
    Id,
    AccountId,
    Kind,
    TargetRole,
    Company,
    PlannedMinutes,
    Status,
    NodeId,
    CreatedAt,
    StartedAt,
    EndedAt,
    EndReason,
}

#[derive(DeriveIden)]
enum TranscriptSegments {
    Table,
    Id,
    InterviewId,
    Seq,
    Speaker,
    Text,
    StartMs,
    EndMs,
    Interrupted,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TranscriptWords {
    Table,
    Id,
    SegmentId,
    InterviewId,
    Word,
    StartMs,
    EndMs,
    Confidence,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TurnMetrics {
    Table,
    Id,
    InterviewId,
    TurnIndex,
    SttFinalMs,
    LlmTtftMs,
    TtsTtfaMs,
    EngineOverheadMs,
    V2vMs,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AnswerScores {
    Table,
    Id,
    InterviewId,
    SegmentId,
    Skill,
    Score,
    Rationale,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SkillHistory {
    Table,
    Id,
    AccountId,
    InterviewId,
    Skill,
    Score,
    RecordedAt,
}
