//! Writing usage records to the `usage_log` table.

use chrono::{DateTime, Utc};
use entities::usage_log;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

use super::UsageRecord;

/// Inserts a batch in one statement.
pub async fn insert_batch(
    db: &impl ConnectionTrait,
    batch: &[UsageRecord],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if batch.is_empty() {
        return Ok(());
    }
    let rows = batch.iter().map(|record| usage_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(record.account_id),
        interview_id: Set(record.interview_id),
        provider: Set(record.provider.to_owned()),
        model: Set(record.model.clone()),
        operation: Set(record.operation.to_owned()),
        key_source: Set(record.key_source.as_str().to_owned()),
        input_tokens: Set(record.input_tokens),
        output_tokens: Set(record.output_tokens),
        cache_read_tokens: Set(record.cache_read_tokens),
        cache_creation_tokens: Set(record.cache_creation_tokens),
        audio_seconds: Set(record.audio_seconds),
        characters: Set(record.characters),
        latency_ms: Set(record.latency_ms),
        cost_micro_usd: Set(record.cost_micro_usd),
        created_at: Set(now),
    });
    usage_log::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}
