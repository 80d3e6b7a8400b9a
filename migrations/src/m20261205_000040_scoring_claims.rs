//! A scoring job is claimed by one run at a time: the run's token (`claim`) and its node
//! (`claimed_by`). A run writes its result only while its claim still holds, so a re-score
//! asked for during a run, or a second node's sweep, never loses or duplicates a result.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ScoringJobs::Table)
                    .add_column(uuid_null(ScoringJobs::Claim))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ScoringJobs::Table)
                    .add_column(string_len_null(ScoringJobs::ClaimedBy, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ScoringJobs::ClaimedBy, ScoringJobs::Claim] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ScoringJobs::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ScoringJobs {
    Table,
    Claim,
    ClaimedBy,
}
