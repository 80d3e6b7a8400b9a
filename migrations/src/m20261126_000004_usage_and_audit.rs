//! Usage log (no text column, swept after 90 days), free-interview quota, abuse signals and the
//! admin audit log.

use crate::helpers::{fk, index};
use crate::m20261126_000001_accounts::Accounts;
use crate::m20261126_000003_interviews::Interviews;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageLog::Table)
                    .col(pk_uuid(UsageLog::Id))
                    .col(uuid_null(UsageLog::AccountId))
                    .col(uuid_null(UsageLog::InterviewId))
                    .col(string_len(UsageLog::Provider, 32))
                    .col(string_len(UsageLog::Model, 64))
                    .col(string_len(UsageLog::Operation, 32))
                    // Whose key paid: "platform" or "byok".
                    .col(string_len(UsageLog::KeySource, 16))
                    .col(big_integer(UsageLog::InputTokens).default(0))
                    .col(big_integer(UsageLog::OutputTokens).default(0))
                    .col(big_integer(UsageLog::CacheReadTokens).default(0))
                    .col(big_integer(UsageLog::CacheCreationTokens).default(0))
                    .col(double(UsageLog::AudioSeconds).default(0.0))
                    .col(big_integer(UsageLog::Characters).default(0))
                    .col(double(UsageLog::LatencyMs).default(0.0))
                    .col(big_integer(UsageLog::CostMicroUsd).default(0))
                    // Swept 90 days after this instant.
                    .col(timestamp_with_time_zone(UsageLog::CreatedAt))
                    .foreign_key(&mut fk(
                        UsageLog::Table,
                        UsageLog::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        UsageLog::Table,
                        UsageLog::InterviewId,
                        Interviews::Table,
                        Interviews::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "usage_log_account",
            UsageLog::Table,
            &["account_id"],
            false,
        )
        .await?;
        index(
            manager,
            "usage_log_created",
            UsageLog::Table,
            &["created_at"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(InterviewQuotas::Table)
                    .col(pk_uuid(InterviewQuotas::AccountId))
                    .col(integer(InterviewQuotas::FreeInterviewsGranted))
                    .col(integer(InterviewQuotas::FreeInterviewsUsed).default(0))
                    .col(timestamp_with_time_zone(InterviewQuotas::UpdatedAt))
                    .foreign_key(&mut fk(
                        InterviewQuotas::Table,
                        InterviewQuotas::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AbuseSignals::Table)
                    .col(pk_uuid(AbuseSignals::Id))
                    .col(uuid(AbuseSignals::AccountId))
                    // A fixed code (e.g. "canonical_email_reuse"); never free text or an address.
                    .col(string_len(AbuseSignals::Kind, 64))
                    .col(timestamp_with_time_zone(AbuseSignals::CreatedAt))
                    .foreign_key(&mut fk(
                        AbuseSignals::Table,
                        AbuseSignals::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "abuse_signals_account",
            AbuseSignals::Table,
            &["account_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AdminAudit::Table)
                    .col(pk_uuid(AdminAudit::Id))
                    // Ids only: no foreign keys, so the audit outlives an erased admin or target.
                    .col(uuid(AdminAudit::AdminId))
                    .col(string_len(AdminAudit::Action, 64))
                    .col(uuid_null(AdminAudit::TargetId))
                    .col(timestamp_with_time_zone(AdminAudit::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "admin_audit_created",
            AdminAudit::Table,
            &["created_at"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AdminAudit::Table.into_iden(),
            AbuseSignals::Table.into_iden(),
            InterviewQuotas::Table.into_iden(),
            UsageLog::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum UsageLog {
    Table,
    Id,
    AccountId,
    InterviewId,
    Provider,
    Model,
    Operation,
    KeySource,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheCreationTokens,
    AudioSeconds,
    Characters,
    LatencyMs,
    CostMicroUsd,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InterviewQuotas {
    Table,
    AccountId,
    FreeInterviewsGranted,
    FreeInterviewsUsed,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AbuseSignals {
    Table,
    Id,
    AccountId,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AdminAudit {
    Table,
    Id,
    AdminId,
    Action,
    TargetId,
    CreatedAt,
}
