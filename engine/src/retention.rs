//! Retention: word-level timestamps are deleted 14 days after they were written, usage rows 90
//! days after. [`RetentionPolicy`] is the pure decision (what is expired at `now`);
//! [`sweep`] deletes expired rows in bounded batches, so a large backlog never holds a long
//! lock. The `RetentionSweeper` actor runs it on an interval (on PostgreSQL under an advisory
//! lock, so one node sweeps at a time).

use chrono::{DateTime, Duration, Utc};
use entities::{transcript_words, usage_log};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
};

/// How long data is kept, and how much one delete statement may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub transcript_words: Duration,
    pub usage_log: Duration,
    pub batch_size: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            transcript_words: Duration::days(14),
            usage_log: Duration::days(90),
            batch_size: 1000,
        }
    }
}

impl RetentionPolicy {
    /// Words created before this instant are expired at `now`.
    pub fn words_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.transcript_words
    }

    /// Usage rows created before this instant are expired at `now`.
    pub fn usage_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.usage_log
    }
}

/// What a sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub transcript_words: u64,
    pub usage_rows: u64,
    pub batches: u32,
}

/// Deletes everything expired at `now`, `batch_size` rows per statement.
pub async fn sweep(
    db: &impl ConnectionTrait,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<SweepReport, DbErr> {
    let mut report = SweepReport::default();
    loop {
        let ids = Query::select()
            .column(transcript_words::Column::Id)
            .from(transcript_words::Entity)
            .and_where(transcript_words::Column::CreatedAt.lt(policy.words_cutoff(now)))
            .limit(policy.batch_size)
            .to_owned();
        let deleted = transcript_words::Entity::delete_many()
            .filter(transcript_words::Column::Id.in_subquery(ids))
            .exec(db)
            .await?
            .rows_affected;
        report.transcript_words += deleted;
        report.batches += 1;
        if deleted < policy.batch_size {
            break;
        }
    }
    loop {
        let ids = Query::select()
            .column(usage_log::Column::Id)
            .from(usage_log::Entity)
            .and_where(usage_log::Column::CreatedAt.lt(policy.usage_cutoff(now)))
            .limit(policy.batch_size)
            .to_owned();
        let deleted = usage_log::Entity::delete_many()
            .filter(usage_log::Column::Id.in_subquery(ids))
            .exec(db)
            .await?
            .rows_affected;
        report.usage_rows += deleted;
        report.batches += 1;
        if deleted < policy.batch_size {
            break;
        }
    }
    Ok(report)
}

/// Key of the PostgreSQL advisory lock that makes the sweep a cluster-wide singleton.
pub const SWEEP_LOCK_KEY: i64 = 0x1c_5eed_0001;

/// Takes the sweep lock for this session if free (always `true` on SQLite: one node).
pub async fn try_lock(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_try_advisory_xact_lock({SWEEP_LOCK_KEY}) AS locked"),
        ))
        .await?;
    Ok(row
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_follow_the_promised_periods() {
        let policy = RetentionPolicy::default();
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(
            policy.words_cutoff(now).to_rfc3339(),
            "2026-11-12T12:00:00+00:00"
        );
        assert_eq!(
            policy.usage_cutoff(now).to_rfc3339(),
            "2026-08-28T12:00:00+00:00"
        );
    }
}
