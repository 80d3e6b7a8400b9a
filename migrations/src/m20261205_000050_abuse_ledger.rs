//! Abuse of the free allocation (issue 12):
//!
//! - `abuse_ledger`: keyed hashes (HMAC-SHA256) of canonical mailboxes that have held an
//!   account. No account column and no foreign key: a row outlives the account's erasure for
//!   the stated period (`ABUSE_LEDGER_DAYS` after it was last recorded), then the retention
//!   sweep deletes it. The primary key is what makes the free-interview grant atomic: a sign-up
//!   grants only if its `INSERT … ON CONFLICT DO NOTHING` inserted the row.
//! - `signup_ip_counts`: sign-ups per keyed hash of the client address per UTC day; swept once
//!   the day is over.
//! - `accounts.email_verified_at` and `email_verifications` (single-use link tokens, stored as
//!   SHA-256 only, cascade with the account).
//! - `abuse_reviews`: an admin's decision on a flagged account (cascade with the account).

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
                    .table(AbuseLedger::Table)
                    // Hex of HMAC-SHA256 under the ledger key: never the address itself.
                    .col(
                        ColumnDef::new(AbuseLedger::MailboxHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(timestamp_with_time_zone(AbuseLedger::RecordedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "abuse_ledger_recorded",
            AbuseLedger::Table,
            &["recorded_at"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SignupIpCounts::Table)
                    // Hex of HMAC-SHA256 of the client address (IPv6: its /64) under the key.
                    .col(string_len(SignupIpCounts::IpHash, 64))
                    .col(timestamp_with_time_zone(SignupIpCounts::DayStart))
                    .col(integer(SignupIpCounts::Signups))
                    .primary_key(
                        Index::create()
                            .col(SignupIpCounts::IpHash)
                            .col(SignupIpCounts::DayStart),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "signup_ip_counts_day",
            SignupIpCounts::Table,
            &["day_start"],
            false,
        )
        .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(timestamp_with_time_zone_null(Accounts::EmailVerifiedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailVerifications::Table)
                    // SHA-256 of the link's token; the token itself is only ever in the e-mail.
                    .col(
                        ColumnDef::new(EmailVerifications::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(uuid(EmailVerifications::AccountId))
                    .col(timestamp_with_time_zone(EmailVerifications::CreatedAt))
                    .col(timestamp_with_time_zone(EmailVerifications::ExpiresAt))
                    .col(timestamp_with_time_zone_null(EmailVerifications::UsedAt))
                    .foreign_key(&mut fk(
                        EmailVerifications::Table,
                        EmailVerifications::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "email_verifications_account",
            EmailVerifications::Table,
            &["account_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AbuseReviews::Table)
                    .col(pk_uuid(AbuseReviews::AccountId))
                    // `allow` or `deny`.
                    .col(string_len(AbuseReviews::Decision, 16))
                    .col(string_len_null(AbuseReviews::Note, 500))
                    // The deciding admin's id; no foreign key, like the audit log.
                    .col(uuid(AbuseReviews::DecidedBy))
                    .col(timestamp_with_time_zone(AbuseReviews::DecidedAt))
                    .foreign_key(&mut fk(
                        AbuseReviews::Table,
                        AbuseReviews::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AbuseReviews::Table.into_iden(),
            EmailVerifications::Table.into_iden(),
            SignupIpCounts::Table.into_iden(),
            AbuseLedger::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::EmailVerifiedAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AbuseLedger {
    Table,
    MailboxHash,
    RecordedAt,
}

#[derive(DeriveIden)]
enum SignupIpCounts {
    Table,
    IpHash,
    DayStart,
    Signups,
}

#[derive(DeriveIden)]
enum EmailVerifications {
    Table,
    TokenHash,
    AccountId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum AbuseReviews {
    Table,
    AccountId,
    Decision,
    Note,
    DecidedBy,
    DecidedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    EmailVerifiedAt,
}
