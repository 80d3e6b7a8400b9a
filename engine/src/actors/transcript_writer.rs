//! `TranscriptWriter` (one per node): every running interview's transcript segments, words,
//! turn metrics and its `live`/`ended` marks go through it, so that the node's database
//! writes are batched, retried and bounded instead of one pool checkout per row racing every
//! other request for the connection (with SQLite's single connection, ~95 interviews made
//! those checkouts time out and rows were lost).
//!
//! A tokio task behind a bounded channel rather than an actix actor: an actix mailbox gives
//! `do_send` no capacity to wait for, and the interviews must wait (backpressure), not pile up.
//!
//! | Channel | Capacity | When full |
//! |---|---|---|
//! | interviews → writer | [`QUEUE_CAPACITY`] ops | the interview waits up to [`SUBMIT_WAIT`]; after that the op is dropped and counted (`dropped`), with a warning |
//!
//! Policy:
//! - **Batching.** The writer takes what is queued (up to [`BATCH_OPS`]) and stores it in one
//!   transaction with multi-row inserts ([`interview_store::write_ops`]).
//! - **Ordering.** The queue is FIFO and each interview submits its ops one after another (the
//!   interview actor chains them), and a batch stores its `ended` marks after its rows: an
//!   interview's end is never stored before its last segment. An `End` is answered once stored.
//! - **Retry.** A transient failure (pool timeout, lost connection, `SQLITE_BUSY`/`LOCKED`,
//!   serialization failure or deadlock) retries the same batch with backoff ([`backoff`]) for
//!   as long as it lasts; meanwhile the queue fills and interviews wait. Any other failure is
//!   retried [`UNKNOWN_ATTEMPTS`] times.
//! - **Never silently dropped.** When a batch fails for good, it is split by interview and each
//!   interview's ops are written on their own: the ops of an interview that can never be
//!   written (erased meanwhile: a foreign key fails) are dropped and counted, the rest kept.
//! - **Drained at shutdown.** [`TranscriptWriter::flush`] resolves once everything queued before
//!   it is stored; the engine's drain calls it before flushing the usage meter.
//!
//! Counters (`/metrics`): `queued`, `written` (rows), `retried` (batch attempts), `dropped`
//! (rows). Rows are segments, words and turns; the marks count 0. Nothing personal is logged.

use std::time::Duration;

use crate::ids::InterviewId;
use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, SqlErr};
use tokio::sync::{mpsc, oneshot};

use crate::interview_core::EndReason;
use crate::interview_store::{self, OpsWritten, StoreOp};

/// Ops waiting for the writer, over all interviews of the node.
pub const QUEUE_CAPACITY: usize = 2048;
/// Ops stored per transaction at most.
pub const BATCH_OPS: usize = 256;
/// How long an interview waits for room in the queue before the op is dropped (counted).
pub const SUBMIT_WAIT: Duration = Duration::from_secs(30);
/// Attempts for a failure that is neither transient nor known to be permanent.
pub const UNKNOWN_ATTEMPTS: u32 = 4;
/// First and longest pause between attempts.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(50);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The writer's counters (shared; `/metrics` exports them).
#[derive(Debug, Clone, Default)]
pub struct WriterCounters {
    /// Rows accepted into the queue.
    pub queued: Counter,
    /// Rows stored.
    pub written: Counter,
    /// Batch attempts that failed and were tried again.
    pub retried: Counter,
    /// Rows that were not stored: their interview no longer exists (or the write failed for
    /// good), or the queue stayed full for [`SUBMIT_WAIT`].
    pub dropped: Counter,
}

/// Why an op was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteRefused {
    #[error("the transcript writer stayed full")]
    Full,
    #[error("the transcript writer is not running")]
    Stopped,
    #[error("the write can never succeed: {0}")]
    Unwritable(String),
}

/// How a failed write is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Passes by itself (busy or unreachable database): retry the same batch.
    Transient,
    /// Can never succeed for these rows (their interview or segment is gone).
    Unwritable,
    /// Anything else: a few more attempts, then treated as unwritable.
    Unknown,
}

/// Sorts a failed write (pure: the retry decision is made here).
pub fn classify(error: &DbErr) -> Failure {
    if matches!(
        error.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_) | SqlErr::UniqueConstraintViolation(_))
    ) {
        return Failure::Unwritable;
    }
    let runtime = match error {
        DbErr::ConnectionAcquire(_) => return Failure::Transient,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return Failure::Unknown,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return Failure::Unknown;
    };
    use sea_orm::sqlx::Error;
    match sqlx.as_ref() {
        Error::PoolTimedOut | Error::PoolClosed | Error::Io(_) | Error::WorkerCrashed => {
            Failure::Transient
        }
        Error::Database(database) => {
            let sqlite = database
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some();
            database
                .code()
                .map_or(Failure::Unknown, |code| classify_code(sqlite, &code))
        }
        _ => Failure::Unknown,
    }
}

/// A database's error code: SQLite's (extended) result code in decimal (`sqlite`), else
/// PostgreSQL's SQLSTATE.
pub fn classify_code(sqlite: bool, code: &str) -> Failure {
    if sqlite {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        return match code.parse::<u32>().map(|code| code & 0xff) {
            Ok(5 | 6) => Failure::Transient,
            _ => Failure::Unknown,
        };
    }
    match code {
        // serialization_failure, deadlock_detected, lock_not_available, admin_shutdown,
        // crash_shutdown, cannot_connect_now, too_many_connections.
        "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "53300" => Failure::Transient,
        // connection_exception class.
        code if code.starts_with("08") => Failure::Transient,
        _ => Failure::Unknown,
    }
}

/// The pause before attempt `attempt + 1` (0-based): doubling from [`BACKOFF_FIRST`], at most
/// [`BACKOFF_MAX`].
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_MAX)
}

/// Splits ops by interview, keeping each interview's ops in order (and the interviews in the
/// order of their first op).
pub fn split_by_interview<T>(items: Vec<T>, id: impl Fn(&T) -> InterviewId) -> Vec<Vec<T>> {
    let mut groups: Vec<(InterviewId, Vec<T>)> = Vec::new();
    for item in items {
        let key = id(&item);
        match groups.iter_mut().find(|(group, _)| *group == key) {
            Some((_, group)) => group.push(item),
            None => groups.push((key, vec![item])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// One op and, for an `End`, who waits for it.
struct Job {
    op: StoreOp,
    done: Option<oneshot::Sender<Result<bool, WriteRefused>>>,
}

enum Envelope {
    Job(Job),
    /// Answered once everything queued before it is stored (or dropped).
    Flush(oneshot::Sender<()>),
}

/// A cheap handle to the node's writer; the task runs while a handle exists.
#[derive(Clone)]
pub struct TranscriptWriter {
    queue: mpsc::Sender<Envelope>,
    counters: WriterCounters,
    submit_wait: Duration,
}

impl TranscriptWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(db: DatabaseConnection) -> Self {
        Self::start_with(db, QUEUE_CAPACITY, SUBMIT_WAIT)
    }

    /// [`start`](Self::start) with another queue capacity and wait (tests).
    pub fn start_with(db: DatabaseConnection, capacity: usize, submit_wait: Duration) -> Self {
        let (queue, inbox) = mpsc::channel(capacity.max(1));
        let counters = WriterCounters::default();
        tokio::spawn(run(db, inbox, counters.clone()));
        Self {
            queue,
            counters,
            submit_wait,
        }
    }

    pub fn counters(&self) -> WriterCounters {
        self.counters.clone()
    }

    async fn enqueue(&self, envelope: Envelope, rows: usize) -> Result<(), WriteRefused> {
        match self.queue.send_timeout(envelope, self.submit_wait).await {
            Ok(()) => {
                self.counters.queued.inc_by(rows as u64);
                Ok(())
            }
            Err(error) => {
                self.counters.dropped.inc_by(rows as u64);
                let refused = match error {
                    mpsc::error::SendTimeoutError::Timeout(_) => WriteRefused::Full,
                    mpsc::error::SendTimeoutError::Closed(_) => WriteRefused::Stopped,
                };
                tracing::warn!(rows, error = %refused, "transcript rows dropped");
                Err(refused)
            }
        }
    }

    /// Queues a write, waiting (at most the submit wait) for room; returns once queued.
    pub async fn submit(&self, op: StoreOp) -> Result<(), WriteRefused> {
        let rows = op.rows();
        self.enqueue(Envelope::Job(Job { op, done: None }), rows)
            .await
    }

    /// Queues the interview's end after everything it submitted before and waits until it is
    /// stored; `Ok(false)` if it had ended already.
    pub async fn end(
        &self,
        interview_id: InterviewId,
        reason: EndReason,
        at: DateTime<Utc>,
    ) -> Result<bool, WriteRefused> {
        let (done, stored) = oneshot::channel();
        let op = StoreOp::Ended {
            interview_id,
            reason,
            at,
        };
        self.enqueue(
            Envelope::Job(Job {
                op,
                done: Some(done),
            }),
            0,
        )
        .await?;
        stored.await.unwrap_or(Err(WriteRefused::Stopped))
    }

    /// Waits until everything queued before this call is stored (or dropped), at most
    /// `timeout`; `false` if the time ran out.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done, flushed) = oneshot::channel();
        tokio::time::timeout(timeout, async move {
            self.queue.send(Envelope::Flush(done)).await.is_ok() && flushed.await.is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

async fn run(
    db: DatabaseConnection,
    mut inbox: mpsc::Receiver<Envelope>,
    counters: WriterCounters,
) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = inbox.recv().await {
        let mut next = Some(first);
        // Everything queued meanwhile joins the batch (under load, what arrived while the
        // last batch was being written).
        while let Some(envelope) = next.take() {
            match envelope {
                Envelope::Job(job) => batch.push(job),
                Envelope::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH_OPS {
                next = inbox.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write_batch(&db, std::mem::take(&mut batch), &counters).await;
        }
        // Everything before each flush marker was in this batch or an earlier one.
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes `ops`, retrying transient failures for as long as they last and others
/// [`UNKNOWN_ATTEMPTS`] times; the last error if it failed for good.
async fn write_retrying(
    db: &DatabaseConnection,
    ops: &[StoreOp],
    counters: &WriterCounters,
) -> Result<OpsWritten, DbErr> {
    let mut attempt = 0u32;
    let mut unknown = 0u32;
    loop {
        let error = match interview_store::write_ops(db, ops).await {
            Ok(written) => return Ok(written),
            Err(error) => error,
        };
        match classify(&error) {
            Failure::Unwritable => return Err(error),
            Failure::Unknown if unknown + 1 >= UNKNOWN_ATTEMPTS => return Err(error),
            Failure::Unknown => unknown += 1,
            Failure::Transient => {}
        }
        counters.retried.inc();
        if attempt == 0 || attempt.is_power_of_two() {
            tracing::warn!(error = %error, attempt, ops = ops.len(), "transcript write failed; retrying");
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

fn answer(jobs: Vec<Job>, written: Option<&OpsWritten>, error: Option<&str>) {
    let mut ended = written.map(|w| w.ended.iter().copied());
    for job in jobs {
        let is_end = matches!(job.op, StoreOp::Ended { .. });
        let Some(done) = job.done else {
            continue;
        };
        let result = match (&mut ended, error) {
            (Some(ended), _) if is_end => Ok(ended.next().unwrap_or(false)),
            (Some(_), _) => Ok(false),
            (None, error) => Err(WriteRefused::Unwritable(
                error.unwrap_or("unknown").to_owned(),
            )),
        };
        let _ = done.send(result);
    }
}

async fn write_batch(db: &DatabaseConnection, jobs: Vec<Job>, counters: &WriterCounters) {
    let ops: Vec<StoreOp> = jobs.iter().map(|job| job.op.clone()).collect();
    let error = match write_retrying(db, &ops, counters).await {
        Ok(written) => {
            counters.written.inc_by(written.rows as u64);
            answer(jobs, Some(&written), None);
            return;
        }
        Err(error) => error,
    };
    // One interview's rows must not take the others down with them: each on its own.
    let groups = split_by_interview(jobs, |job| job.op.interview_id());
    if groups.len() == 1 {
        drop_group(groups.into_iter().flatten().collect(), &error, counters);
        return;
    }
    for group in groups {
        let ops: Vec<StoreOp> = group.iter().map(|job| job.op.clone()).collect();
        match write_retrying(db, &ops, counters).await {
            Ok(written) => {
                counters.written.inc_by(written.rows as u64);
                answer(group, Some(&written), None);
            }
            Err(error) => drop_group(group, &error, counters),
        }
    }
}

fn drop_group(group: Vec<Job>, error: &DbErr, counters: &WriterCounters) {
    let rows: usize = group.iter().map(|job| job.op.rows()).sum();
    counters.dropped.inc_by(rows as u64);
    // The error names tables and constraints, never row contents.
    tracing::warn!(rows, error = %error, "transcript rows dropped: they can never be stored");
    answer(group, None, Some(&error.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_busy_and_serialization_failures_are_transient() {
        assert_eq!(
            classify(&DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
            Failure::Transient
        );
        for code in ["5", "6", "517", "261", "262"] {
            assert_eq!(
                classify_code(true, code),
                Failure::Transient,
                "SQLite {code}"
            );
        }
        for code in ["1", "19", "787", "2067"] {
            assert_eq!(classify_code(true, code), Failure::Unknown, "SQLite {code}");
        }
        for code in ["40001", "40P01", "08006", "57P01", "53300"] {
            assert_eq!(
                classify_code(false, code),
                Failure::Transient,
                "SQLSTATE {code}"
            );
        }
        for code in ["23502", "22001", "42P01", "5"] {
            assert_eq!(
                classify_code(false, code),
                Failure::Unknown,
                "SQLSTATE {code}"
            );
        }
        assert_eq!(
            classify(&DbErr::Custom("something else".into())),
            Failure::Unknown
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), BACKOFF_FIRST);
        assert_eq!(backoff(1), BACKOFF_FIRST * 2);
        assert_eq!(backoff(3), BACKOFF_FIRST * 8);
        assert_eq!(backoff(10), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn splitting_keeps_each_interviews_order() {
        let (a, b, c) = (
            InterviewId::now_v7(),
            InterviewId::now_v7(),
            InterviewId::now_v7(),
        );
        let items = vec![(a, 1), (b, 2), (a, 3), (c, 4), (b, 5), (a, 6)];
        let groups = split_by_interview(items, |(id, _)| *id);
        let numbers: Vec<Vec<i32>> = groups
            .iter()
            .map(|group| group.iter().map(|(_, n)| *n).collect())
            .collect();
        assert_eq!(numbers, vec![vec![1, 3, 6], vec![2, 5], vec![4]]);
    }

    // The writer against a real (SQLite file) database.
    use entities::interviews::InterviewStatus;
    use entities::{interviews, transcript_segments, transcript_words, turn_metrics};
    use sea_orm::{
        ColumnTrait, ConnectOptions, ConnectionTrait, Database, EntityTrait, PaginatorTrait,
        QueryFilter, TransactionTrait,
    };
    use sea_orm_migration::MigratorTrait;

    use crate::interview_core::TurnBreakdown;
    use crate::transcript_assembler::{SegmentRecord, Speaker, WordTiming};

    async fn database(
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .sqlx_logging(false);
        let db = Database::connect(options).await.expect("sqlite");
        migrations::Migrator::up(&db, None).await.expect("migrate");
        (db, dir)
    }

    async fn interview(db: &impl ConnectionTrait) -> InterviewId {
        entities::fixtures::account_with_interview(db)
            .await
            .expect("account and interview")
            .1
    }

    /// One segment with two words (3 rows).
    fn segment(interview_id: InterviewId, seq: i32) -> StoreOp {
        let word = |word: &str, start_ms| WordTiming {
            word: word.into(),
            start_ms,
            end_ms: start_ms + 100,
            confidence: 0.9,
        };
        StoreOp::Segments {
            interview_id,
            segments: vec![SegmentRecord {
                seq,
                speaker: Speaker::Candidate,
                text: "two words".into(),
                start_ms: 0,
                end_ms: 200,
                interrupted: false,
                words: vec![word("two", 0), word("words", 100)],
            }],
            at: Utc::now(),
        }
    }

    fn turn(interview_id: InterviewId, turn_index: i32) -> StoreOp {
        StoreOp::Turn {
            interview_id,
            breakdown: TurnBreakdown {
                turn_index,
                v2v_ms: 500.0,
                ..TurnBreakdown::default()
            },
            at: Utc::now(),
        }
    }

    async fn segments_of(db: &impl ConnectionTrait, interview_id: InterviewId) -> u64 {
        transcript_segments::Entity::find()
            .filter(transcript_segments::Column::InterviewId.eq(interview_id))
            .count(db)
            .await
            .expect("count")
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn an_end_is_stored_only_after_every_write_before_it_over_many_batches() {
        let (db, _dir) = database(1, Duration::from_secs(30)).await;
        let ids = [
            interview(&db).await,
            interview(&db).await,
            interview(&db).await,
        ];
        // A small queue: the submitting side waits for room (backpressure) instead of failing.
        let writer = TranscriptWriter::start_with(db.clone(), 16, Duration::from_secs(60));
        let per_interview = 300; // several batches of BATCH_OPS
        for seq in 0..per_interview {
            for (n, id) in ids.iter().enumerate() {
                writer.submit(segment(*id, seq)).await.expect("queued");
                if seq % 100 == n as i32 {
                    writer.submit(turn(*id, seq)).await.expect("queued");
                }
            }
        }
        for id in ids {
            assert_eq!(
                writer.end(id, EndReason::Completed, Utc::now()).await,
                Ok(true)
            );
            // The end is answered once stored, and nothing before it is still queued.
            assert_eq!(segments_of(&db, id).await, per_interview as u64);
            let row = interviews::Entity::find_by_id(id)
                .one(&db)
                .await
                .expect("query")
                .expect("row");
            assert_eq!(row.status, InterviewStatus::Ended);
            assert_eq!(row.end_reason.as_deref(), Some("completed"));
        }
        assert_eq!(
            writer.end(ids[0], EndReason::Stopped, Utc::now()).await,
            Ok(false),
            "a second end changes nothing"
        );
        let words = transcript_words::Entity::find()
            .count(&db)
            .await
            .expect("words");
        let turns = turn_metrics::Entity::find()
            .count(&db)
            .await
            .expect("turns");
        assert_eq!(words, 3 * 2 * per_interview as u64);
        assert_eq!(turns, 9);
        let counters = writer.counters();
        let rows = 3 * 3 * per_interview as u64 + 9;
        assert_eq!(counters.queued.get(), rows);
        assert_eq!(counters.written.get(), rows);
        assert_eq!(counters.dropped.get(), 0);
    }

    #[tokio::test]
    async fn a_pool_timeout_is_retried_until_the_connection_is_free_again() {
        // One connection, as the SQLite default; a short acquire timeout, so the writer's
        // checkouts time out while the test holds the connection in a transaction.
        let (db, _dir) = database(1, Duration::from_millis(100)).await;
        let id = interview(&db).await;
        let writer = TranscriptWriter::start(db.clone());
        let hold = db.begin().await.expect("hold the only connection");
        for seq in 0..5 {
            writer.submit(segment(id, seq)).await.expect("queued");
        }
        let counters = writer.counters();
        wait_for("the writer retried", || counters.retried.get() >= 2).await;
        assert_eq!(segments_of(&hold, id).await, 0, "nothing stored while held");
        hold.commit().await.expect("release");
        assert!(writer.flush(Duration::from_secs(60)).await, "flushed");
        assert_eq!(segments_of(&db, id).await, 5);
        assert_eq!(counters.written.get(), 15);
        assert_eq!(counters.dropped.get(), 0);
    }

    #[tokio::test]
    async fn an_erased_interviews_rows_are_dropped_and_counted_and_the_rest_of_the_batch_is_stored()
    {
        let (db, _dir) = database(2, Duration::from_secs(30)).await;
        let kept = interview(&db).await;
        let erased = InterviewId::now_v7(); // no such interview: every row of it fails its foreign key
        let (kept_end, kept_stored) = oneshot::channel();
        let (erased_end, erased_stored) = oneshot::channel();
        let job = |op| Job { op, done: None };
        let jobs = vec![
            job(segment(kept, 0)),
            job(segment(erased, 0)),
            job(turn(erased, 0)),
            job(segment(kept, 1)),
            job(turn(kept, 0)),
            Job {
                op: StoreOp::Ended {
                    interview_id: erased,
                    reason: EndReason::AccountErased,
                    at: Utc::now(),
                },
                done: Some(erased_end),
            },
            Job {
                op: StoreOp::Ended {
                    interview_id: kept,
                    reason: EndReason::Completed,
                    at: Utc::now(),
                },
                done: Some(kept_end),
            },
        ];
        let counters = WriterCounters::default();
        write_batch(&db, jobs, &counters).await;
        assert_eq!(kept_stored.await.expect("answered"), Ok(true));
        assert!(matches!(
            erased_stored.await.expect("answered"),
            Err(WriteRefused::Unwritable(_))
        ));
        assert_eq!(segments_of(&db, kept).await, 2);
        assert_eq!(counters.written.get(), 2 * 3 + 1);
        assert_eq!(
            counters.dropped.get(),
            3 + 1,
            "the erased segment, its words, its turn"
        );
        assert_eq!(
            counters.retried.get(),
            0,
            "a foreign key failure is not retried"
        );
    }
}
