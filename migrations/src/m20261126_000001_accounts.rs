//! Accounts and the refresh tokens of their sign-in sessions.

use crate::helpers::{fk, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(pk_uuid(Accounts::Id))
                    // Normalized (trimmed, lower-cased): unique case-insensitively on every backend.
                    .col(string_uniq(Accounts::Email))
                    // Canonical form for abuse checks (dots and +tags of known providers removed).
                    .col(string(Accounts::EmailCanonical))
                    .col(string_null(Accounts::DisplayName))
                    .col(string(Accounts::PasswordHash))
                    .col(string_len(Accounts::Role, 16).default("user"))
                    .col(timestamp_with_time_zone(Accounts::AgeConfirmedAt))
                    .col(integer(Accounts::FailedLoginCount).default(0))
                    .col(timestamp_with_time_zone_null(Accounts::LockedUntil))
                    .col(timestamp_with_time_zone_null(Accounts::DisabledAt))
                    .col(timestamp_with_time_zone(Accounts::PasswordChangedAt))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .col(timestamp_with_time_zone(Accounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "accounts_email_canonical",
            Accounts::Table,
            &["email_canonical"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(pk_uuid(RefreshTokens::Id))
                    .col(uuid(RefreshTokens::AccountId))
                    .col(uuid(RefreshTokens::FamilyId))
                    // SHA-256 of the token; the token itself is only ever in the cookie.
                    .col(string_uniq(RefreshTokens::TokenHash))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RotatedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .foreign_key(&mut fk(
                        RefreshTokens::Table,
                        RefreshTokens::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "refresh_tokens_account",
            RefreshTokens::Table,
            &["account_id"],
            false,
        )
        .await?;
        index(
            manager,
            "refresh_tokens_family",
            RefreshTokens::Table,
            &["family_id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Accounts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Accounts {
    Table,
    Id,
    Email,
    EmailCanonical,
    DisplayName,
    PasswordHash,
    Role,
    AgeConfirmedAt,
    FailedLoginCount,
    LockedUntil,
    DisabledAt,
    PasswordChangedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    AccountId,
    FamilyId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
}
