//! Settings and consents, consent history, BYOK keys, resume profiles, policy versions.

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
                    .table(AccountSettings::Table)
                    .col(pk_uuid(AccountSettings::AccountId))
                    .col(boolean(AccountSettings::DigestOptIn).default(false))
                    .col(timestamp_with_time_zone(
                        AccountSettings::DigestOptInChangedAt,
                    ))
                    .col(boolean(AccountSettings::TrainingOptIn).default(false))
                    .col(timestamp_with_time_zone(
                        AccountSettings::TrainingOptInChangedAt,
                    ))
                    .col(boolean(AccountSettings::SkillTracking).default(true))
                    .col(timestamp_with_time_zone(
                        AccountSettings::SkillTrackingChangedAt,
                    ))
                    .col(string_null(AccountSettings::InterviewerVoice))
                    .col(timestamp_with_time_zone(AccountSettings::UpdatedAt))
                    .foreign_key(&mut fk(
                        AccountSettings::Table,
                        AccountSettings::AccountId,
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
                    .table(ConsentEvents::Table)
                    .col(pk_uuid(ConsentEvents::Id))
                    .col(uuid(ConsentEvents::AccountId))
                    .col(string_len(ConsentEvents::Purpose, 32))
                    .col(boolean(ConsentEvents::Granted))
                    .col(timestamp_with_time_zone(ConsentEvents::CreatedAt))
                    .foreign_key(&mut fk(
                        ConsentEvents::Table,
                        ConsentEvents::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "consent_events_account",
            ConsentEvents::Table,
            &["account_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ByokKeys::Table)
                    .col(pk_uuid(ByokKeys::Id))
                    .col(uuid(ByokKeys::AccountId))
                    .col(string_len(ByokKeys::Provider, 32))
                    // AES-256-GCM ciphertext (with tag) and its 96-bit nonce; never the plaintext.
                    .col(blob(ByokKeys::Ciphertext))
                    .col(blob(ByokKeys::Nonce))
                    // Which master key encrypted the row, so the master key can be rotated.
                    .col(string_len(ByokKeys::KeyId, 64))
                    .col(string_len(ByokKeys::LastFour, 8))
                    .col(timestamp_with_time_zone(ByokKeys::CreatedAt))
                    .col(timestamp_with_time_zone(ByokKeys::UpdatedAt))
                    .foreign_key(&mut fk(
                        ByokKeys::Table,
                        ByokKeys::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "byok_keys_account_provider",
            ByokKeys::Table,
            &["account_id", "provider"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ResumeProfiles::Table)
                    .col(pk_uuid(ResumeProfiles::AccountId))
                    // Extracted text and derived profile only: the uploaded file is never stored.
                    .col(text(ResumeProfiles::ExtractedText))
                    .col(json(ResumeProfiles::Profile))
                    .col(string_len(ResumeProfiles::SourceKind, 16))
                    .col(timestamp_with_time_zone(ResumeProfiles::CreatedAt))
                    .col(timestamp_with_time_zone(ResumeProfiles::UpdatedAt))
                    .foreign_key(&mut fk(
                        ResumeProfiles::Table,
                        ResumeProfiles::AccountId,
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
                    .table(PolicyVersions::Table)
                    .col(pk_uuid(PolicyVersions::Id))
                    .col(string_len_uniq(PolicyVersions::Version, 32))
                    .col(string(PolicyVersions::Title))
                    .col(text(PolicyVersions::Summary))
                    .col(text(PolicyVersions::Body))
                    .col(timestamp_with_time_zone(PolicyVersions::PublishedAt))
                    .col(timestamp_with_time_zone(PolicyVersions::EffectiveAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PolicyAcceptances::Table)
                    .col(pk_uuid(PolicyAcceptances::Id))
                    .col(uuid(PolicyAcceptances::AccountId))
                    .col(uuid(PolicyAcceptances::PolicyVersionId))
                    .col(timestamp_with_time_zone(PolicyAcceptances::AcceptedAt))
                    .foreign_key(&mut fk(
                        PolicyAcceptances::Table,
                        PolicyAcceptances::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        PolicyAcceptances::Table,
                        PolicyAcceptances::PolicyVersionId,
                        PolicyVersions::Table,
                        PolicyVersions::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "policy_acceptances_account_version",
            PolicyAcceptances::Table,
            &["account_id", "policy_version_id"],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PolicyAcceptances::Table.into_iden(),
            PolicyVersions::Table.into_iden(),
            ResumeProfiles::Table.into_iden(),
            ByokKeys::Table.into_iden(),
            ConsentEvents::Table.into_iden(),
            AccountSettings::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AccountSettings {
    Table,
    AccountId,
    DigestOptIn,
    DigestOptInChangedAt,
    TrainingOptIn,
    TrainingOptInChangedAt,
    SkillTracking,
    SkillTrackingChangedAt,
    InterviewerVoice,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConsentEvents {
    Table,
    Id,
    AccountId,
    Purpose,
    Granted,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ByokKeys {
    Table,
    Id,
    AccountId,
    Provider,
    Ciphertext,
    Nonce,
    KeyId,
    LastFour,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ResumeProfiles {
    Table,
    AccountId,
    ExtractedText,
    Profile,
    SourceKind,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PolicyVersions {
    Table,
    Id,
    Version,
    Title,
    Summary,
    Body,
    PublishedAt,
    EffectiveAt,
}

#[derive(DeriveIden)]
enum PolicyAcceptances {
    Table,
    Id,
    AccountId,
    PolicyVersionId,
    AcceptedAt,
}
