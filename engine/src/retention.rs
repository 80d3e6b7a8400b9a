//! Retention: word-level timestamps are deleted 14 days after they were written, usage rows 90
//! days after; the abuse ledger's keyed mailbox hashes a configurable period (365 days by
//! default) after they were last recorded, sign-up counts per client address once their UTC
//! day is over, and mailbox-verification links once expired. [`RetentionPolicy`] is the pure
//! decision (what is expired at `now`);
//! [`sweep`] deletes expired rows in bounded batches, so a large backlog never holds a long
//! lock. The `RetentionSweeper` actor runs it on an interval (on PostgreSQL under an advisory
//! lock, so one node sweeps at a time).

use chrono::{DateTime, Duration, Utc};
use entities::{abuse_ledger, email_verifications, signup_ip_counts, transcript_words, usage_log};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
};

/// How long data is kept, and how much one delete statement may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub transcript_words: Duration,
    pub usage_log: Duration,
    /// How long a mailbox's keyed hash stays in the abuse ledger after it was last recorded
    /// (sign-up, e-mail change, erasure): `ABUSE_LEDGER_DAYS`.
    pub abuse_ledger: Duration,
    /// How long a day's sign-up count per client address is kept after the day began: the
    /// counting window, so a row goes once its day is over.
    pub signup_ip_counts: Duration,
    pub batch_size: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            transcript_words: Duration::days(14),
            usage_log: Duration::days(90),
            abuse_ledger: Duration::days(365),
            signup_ip_counts: Duration::days(1),
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

    /// Ledger rows last recorded before this instant are expired at `now`.
    pub fn ledger_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.abuse_ledger
    }

    /// Sign-up counts of days that began before this instant are expired at `now` (their day
    /// is over).
    pub fn signup_ip_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.signup_ip_counts
    }
}

/// What a sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub transcript_words: u64,
    pub usage_rows: u64,
    pub ledger_rows: u64,
    pub signup_ip_rows: u64,
    pub verification_links: u64,
    pub batches: u32,
}

impl SweepReport {
    /// Rows deleted, all tables together.
    pub fn rows(&self) -> u64 {
        self.transcript_words
            + self.usage_rows
            + self.ledger_rows
            + self.signup_ip_rows
            + self.verification_links
    }
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
    loop {
        let hashes = Query::select()
            .column(abuse_ledger::Column::MailboxHash)
            .from(abuse_ledger::Entity)
            .and_where(abuse_ledger::Column::RecordedAt.lt(policy.ledger_cutoff(now)))
            .limit(policy.batch_size)
            .to_owned();
        let deleted = abuse_ledger::Entity::delete_many()
            .filter(abuse_ledger::Column::MailboxHash.in_subquery(hashes))
            .exec(db)
            .await?
            .rows_affected;
        report.ledger_rows += deleted;
        report.batches += 1;
        if deleted < policy.batch_size {
            break;
        }
    }
    // One row per client address per day and one link per sign-up or re-send (itself limited):
    // small enough for one statement each.
    report.signup_ip_rows = signup_ip_counts::Entity::delete_many()
        .filter(signup_ip_counts::Column::DayStart.lt(policy.signup_ip_cutoff(now)))
        .exec(db)
        .await?
        .rows_affected;
    report.verification_links = email_verifications::Entity::delete_many()
        .filter(email_verifications::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    report.batches += 2;
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
        assert_eq!(
            policy.ledger_cutoff(now).to_rfc3339(),
            "2025-11-26T12:00:00+00:00"
        );
        // Counts of a day that began more than 24 hours ago: every day before today.
        assert_eq!(
            policy.signup_ip_cutoff(now).to_rfc3339(),
            "2026-11-25T12:00:00+00:00"
        );
    }
}
