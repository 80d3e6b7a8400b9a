//! The weekly digest's only record: per account, the ISO week (`2026-W49`) of the last digest
//! sent, so it goes out once per week. The digest's content is never stored.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::fk;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DigestMarks::Table)
                    .col(pk_uuid(DigestMarks::AccountId))
                    .col(string_len(DigestMarks::LastWeek, 8))
                    .foreign_key(&mut fk(
                        DigestMarks::Table,
                        DigestMarks::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DigestMarks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DigestMarks {
    Table,
    AccountId,
    LastWeek,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}
