//! Per-turn latency gains the parts that are the engine's own, so the stored breakdown has no
//! gaps: v2v = ingress + STT wait + turn wait + dispatch + LLM wait + TTS buffering + TTS wait +
//! egress, and engine overhead = ingress + dispatch + TTS buffering + egress.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const PARTS: [TurnMetrics; 4] = [
    TurnMetrics::IngressMs,
    TurnMetrics::DispatchMs,
    TurnMetrics::TtsBufferingMs,
    TurnMetrics::EgressMs,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for part in PARTS {
            manager
                .alter_table(
                    Table::alter()
                        .table(TurnMetrics::Table)
                        .add_column(double_null(part))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for part in PARTS {
            manager
                .alter_table(
                    Table::alter()
                        .table(TurnMetrics::Table)
                        .drop_column(part)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum TurnMetrics {
    Table,
    IngressMs,
    DispatchMs,
    TtsBufferingMs,
    EgressMs,
}
