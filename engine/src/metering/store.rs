//! Writing usage records to the `usage_log` table.

use chrono::{DateTime, Utc};
use entities::usage_log;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, SqlErr};
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
        provider: Set(record.provider.as_str().to_owned()),
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

/// What became of a batch written by [`write_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// Rows stored.
    pub written: usize,
    /// Rows that can never be stored (their account or interview no longer exists), dropped.
    pub dropped: usize,
}

/// A batch that failed for a reason that may pass (the database is busy or unreachable): the
/// rows not yet written, in order, and the error.
#[derive(Debug)]
pub struct BatchFailed {
    pub pending: Vec<UsageRecord>,
    pub error: DbErr,
}

/// Whether a failed insert can never succeed, however often it is retried: its account or
/// interview was erased after the record was made (a foreign-key violation).
pub fn is_unwritable(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}

/// Writes a batch in one statement; when that fails, row by row, so that one row that can never
/// be stored does not hold back every later row of every user. Unwritable rows are dropped and
/// counted; any other failure stops with the rows not yet written, for a retry.
pub async fn write_batch(
    db: &impl ConnectionTrait,
    batch: Vec<UsageRecord>,
    now: DateTime<Utc>,
) -> Result<BatchOutcome, BatchFailed> {
    match insert_batch(db, &batch, now).await {
        Ok(()) => {
            return Ok(BatchOutcome {
                written: batch.len(),
                dropped: 0,
            });
        }
        Err(error) if !is_unwritable(&error) => {
            return Err(BatchFailed {
                pending: batch,
                error,
            });
        }
        Err(_) => {}
    }
    let mut outcome = BatchOutcome::default();
    let mut rows = batch.into_iter();
    while let Some(record) = rows.next() {
        match insert_batch(db, std::slice::from_ref(&record), now).await {
            Ok(()) => outcome.written += 1,
            Err(error) if is_unwritable(&error) => outcome.dropped += 1,
            Err(error) => {
                let mut pending = vec![record];
                pending.extend(rows);
                return Err(BatchFailed { pending, error });
            }
        }
    }
    Ok(outcome)
}
