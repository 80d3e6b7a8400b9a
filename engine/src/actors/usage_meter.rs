//! `UsageMeter` (process-wide): collects usage records from every interview and writes them in
//! batches. Records are control messages: never dropped while they can be stored; a write that
//! fails for a passing reason (busy or unreachable database) is retried with the batch kept in
//! order. A record that can never be stored (its account or interview was erased meanwhile, so
//! its foreign key fails) is dropped and counted ([`UsageMeter::dropped`]), and the rest of its
//! batch is written: one such row never blocks later rows. `Flush` (at shutdown) writes what is
//! pending.

use std::time::{Duration, Instant};

use actix::prelude::*;
use prometheus_client::metrics::counter::Counter;
use sea_orm::DatabaseConnection;

use crate::metering::store::{self, BatchFailed, BatchOutcome};
use crate::metering::{UsageBatcher, UsageRecord};

/// Batch size and the longest a record waits.
pub const BATCH_RECORDS: usize = 200;
pub const BATCH_AGE: Duration = Duration::from_secs(2);

/// A usage record. Sender: interview actors.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Record(pub UsageRecord);

/// Write everything pending now; resolves when written. Sender: shutdown, tests.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct Flush;

#[derive(Message)]
#[rtype(result = "()")]
struct Written(Result<BatchOutcome, BatchFailed>);

pub struct UsageMeter {
    db: DatabaseConnection,
    batcher: UsageBatcher,
    writing: bool,
    timer: Option<SpawnHandle>,
    dropped: Counter,
}

impl UsageMeter {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            batcher: UsageBatcher::new(BATCH_RECORDS, BATCH_AGE),
            writing: false,
            timer: None,
            dropped: Counter::default(),
        }
    }

    /// How many records this meter has dropped because they could never be stored (take it
    /// before starting the actor; it counts for the meter's whole life, and `/metrics` exports
    /// it).
    pub fn dropped(&self) -> Counter {
        self.dropped.clone()
    }

    fn count_dropped(&self, outcome: BatchOutcome) {
        if outcome.dropped > 0 {
            self.dropped.inc_by(outcome.dropped as u64);
            tracing::warn!(
                records = outcome.dropped,
                "usage records dropped: their account or interview no longer exists"
            );
        }
    }

    fn maybe_write(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if self.writing || self.batcher.is_empty() {
            return;
        }
        if !self.batcher.is_due(now) {
            if self.timer.is_none()
                && let Some(deadline) = self.batcher.deadline()
            {
                self.timer = Some(ctx.run_later(
                    deadline.saturating_duration_since(now),
                    |meter, ctx| {
                        meter.timer = None;
                        meter.maybe_write(ctx);
                    },
                ));
            }
            return;
        }
        self.write(ctx);
    }

    fn write(&mut self, ctx: &mut Context<Self>) {
        let batch = self.batcher.take();
        self.writing = true;
        let db = self.db.clone();
        let me = ctx.address();
        actix::spawn(async move {
            let result = store::write_batch(&db, batch, chrono::Utc::now()).await;
            me.do_send(Written(result));
        });
    }
}

impl Actor for UsageMeter {
    type Context = Context<Self>;
}

impl Handler<Record> for UsageMeter {
    type Result = ();

    fn handle(&mut self, Record(record): Record, ctx: &mut Self::Context) {
        self.batcher.push(Instant::now(), record);
        self.maybe_write(ctx);
    }
}

impl Handler<Written> for UsageMeter {
    type Result = ();

    fn handle(&mut self, Written(result): Written, ctx: &mut Self::Context) {
        self.writing = false;
        match result {
            Ok(outcome) => self.count_dropped(outcome),
            Err(BatchFailed { pending, error }) => {
                tracing::warn!(
                    error = %error,
                    records = pending.len(),
                    "usage write failed; will retry"
                );
                self.batcher.restore(Instant::now(), pending);
                ctx.run_later(Duration::from_secs(1), |meter, ctx| meter.maybe_write(ctx));
                return;
            }
        }
        self.maybe_write(ctx);
    }
}

impl Handler<Flush> for UsageMeter {
    type Result = ResponseFuture<Result<usize, String>>;

    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        let batch = self.batcher.take();
        let db = self.db.clone();
        let dropped = self.dropped.clone();
        Box::pin(async move {
            let outcome = store::write_batch(&db, batch, chrono::Utc::now())
                .await
                .map_err(|failed| failed.error.to_string())?;
            dropped.inc_by(outcome.dropped as u64);
            Ok(outcome.written)
        })
    }
}
