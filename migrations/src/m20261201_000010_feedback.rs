//! Feedback after the call: a scoring job per ended interview (its state survives a restart),
//! the per-answer feedback (findings with evidence, categories, improved answer, delivery), the
//! account's skill levels, the signal behind each `skill_history` row, a focus skill on
//! interviews and a target interview date in the settings.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScoringJobs::Table)
                    .col(pk_uuid(ScoringJobs::InterviewId))
                    .col(uuid(ScoringJobs::AccountId))
                    .col(string_len(ScoringJobs::State, 16))
                    .col(integer(ScoringJobs::Attempts).default(0))
                    .col(string_len_null(ScoringJobs::Scorer, 32))
                    .col(string_len_null(ScoringJobs::Error, 200))
                    .col(integer(ScoringJobs::Answers).default(0))
                    .col(json_null(ScoringJobs::Delivery))
                    .col(timestamp_with_time_zone(ScoringJobs::RequestedAt))
                    .col(timestamp_with_time_zone_null(ScoringJobs::StartedAt))
                    .col(timestamp_with_time_zone_null(ScoringJobs::FinishedAt))
                    .foreign_key(&mut fk(
                        ScoringJobs::Table,
                        ScoringJobs::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        ScoringJobs::Table,
                        ScoringJobs::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "scoring_jobs_state",
            ScoringJobs::Table,
            &["state"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AnswerFeedback::Table)
                    .col(pk_uuid(AnswerFeedback::Id))
                    .col(uuid(AnswerFeedback::InterviewId))
                    .col(integer(AnswerFeedback::SegmentIndex))
                    .col(text(AnswerFeedback::Question))
                    .col(text(AnswerFeedback::Answer))
                    .col(big_integer(AnswerFeedback::StartMs))
                    .col(big_integer(AnswerFeedback::EndMs))
                    .col(double(AnswerFeedback::Overall))
                    .col(double(AnswerFeedback::Confidence))
                    .col(json(AnswerFeedback::Categories))
                    .col(json(AnswerFeedback::Findings))
                    .col(text(AnswerFeedback::ImprovedAnswer))
                    .col(json_null(AnswerFeedback::Delivery))
                    .col(string_len(AnswerFeedback::Scorer, 32))
                    .col(timestamp_with_time_zone(AnswerFeedback::CreatedAt))
                    .foreign_key(&mut fk(
                        AnswerFeedback::Table,
                        AnswerFeedback::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "answer_feedback_interview",
            AnswerFeedback::Table,
            &["interview_id", "segment_index"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SkillLevels::Table)
                    .col(pk_uuid(SkillLevels::Id))
                    .col(uuid(SkillLevels::AccountId))
                    .col(string_len(SkillLevels::Skill, 64))
                    .col(double(SkillLevels::Level))
                    .col(double(SkillLevels::BestLevel))
                    .col(string_len(SkillLevels::Trend, 16))
                    .col(integer(SkillLevels::Updates))
                    .col(timestamp_with_time_zone(SkillLevels::NextReviewAt))
                    .col(timestamp_with_time_zone(SkillLevels::UpdatedAt))
                    .foreign_key(&mut fk(
                        SkillLevels::Table,
                        SkillLevels::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "skill_levels_account_skill",
            SkillLevels::Table,
            &["account_id", "skill"],
            true,
        )
        .await?;

        // SQLite adds one column per statement.
        for column in [
            ColumnDef::new(SkillHistory::PreviousLevel)
                .double()
                .null()
                .to_owned(),
            ColumnDef::new(SkillHistory::Positive)
                .boolean()
                .null()
                .to_owned(),
            ColumnDef::new(SkillHistory::SignalScore)
                .double()
                .null()
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(SkillHistory::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Interviews::Table)
                    .add_column(string_len_null(Interviews::FocusSkill, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccountSettings::Table)
                    .add_column(date_null(AccountSettings::TargetInterviewDate))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AccountSettings::Table)
                    .drop_column(AccountSettings::TargetInterviewDate)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Interviews::Table)
                    .drop_column(Interviews::FocusSkill)
                    .to_owned(),
            )
            .await?;
        for column in [
            SkillHistory::SignalScore,
            SkillHistory::Positive,
            SkillHistory::PreviousLevel,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SkillHistory::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            SkillLevels::Table.into_iden(),
            AnswerFeedback::Table.into_iden(),
            ScoringJobs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ScoringJobs {
    Table,
    InterviewId,
    AccountId,
    State,
    Attempts,
    Scorer,
    Error,
    Answers,
    Delivery,
    RequestedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum AnswerFeedback {
    Table,
    Id,
    InterviewId,
    SegmentIndex,
    Question,
    Answer,
    StartMs,
    EndMs,
    Overall,
    Confidence,
    Categories,
    Findings,
    ImprovedAnswer,
    Delivery,
    Scorer,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SkillLevels {
    Table,
    Id,
    AccountId,
    Skill,
    Level,
    BestLevel,
    Trend,
    Updates,
    NextReviewAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SkillHistory {
    Table,
    PreviousLevel,
    Positive,
    SignalScore,
}

#[derive(DeriveIden)]
enum Interviews {
    Table,
    Id,
    FocusSkill,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AccountSettings {
    Table,
    TargetInterviewDate,
}
