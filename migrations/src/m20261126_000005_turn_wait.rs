//! Per-turn latency gains the turn-detection wait, so the stored breakdown adds up:
//! v2v = stt final + turn wait + LLM time to first token + TTS time to first audio + engine
//! overhead.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TurnMetrics::Table)
                    .add_column(double_null(TurnMetrics::TurnWaitMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TurnMetrics::Table)
                    .drop_column(TurnMetrics::TurnWaitMs)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum TurnMetrics {
    Table,
    TurnWaitMs,
}
