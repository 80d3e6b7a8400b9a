//! `UsageMeter` (process-wide): collects usage records from every interview and writes them in
//! batches. Records are control messages: never dropped; a failed write is retried with the
//! batch kept in order; `Flush` (at shutdown) writes what is pending.

use std::time::{Duration, Instant};

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use crate::metering::{UsageBatcher, UsageRecord, store};

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
struct Written(Result<usize, (Vec<UsageRecord>, String)>);

pub struct UsageMeter {
    db: DatabaseConnection,
    batcher: UsageBatcher,
    writing: bool,
    timer: Option<SpawnHandle>,
}

impl UsageMeter {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            batcher: UsageBatcher::new(BATCH_RECORDS, BATCH_AGE),
            writing: false,
            timer: None,
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
            let result = match store::insert_batch(&db, &batch, chrono::Utc::now()).await {
                Ok(()) => Ok(batch.len()),
                Err(error) => Err((batch, error.to_string())),
            };
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
        if let Err((batch, error)) = result {
            tracing::warn!(
                error,
                records = batch.len(),
                "usage write failed; will retry"
            );
            self.batcher.restore(Instant::now(), batch);
            ctx.run_later(Duration::from_secs(1), |meter, ctx| meter.maybe_write(ctx));
            return;
        }
        self.maybe_write(ctx);
    }
}

impl Handler<Flush> for UsageMeter {
    type Result = ResponseFuture<Result<usize, String>>;

    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        let batch = self.batcher.take();
        let db = self.db.clone();
        Box::pin(async move {
            store::insert_batch(&db, &batch, chrono::Utc::now())
                .await
                .map(|()| batch.len())
                .map_err(|error| error.to_string())
        })
    }
}
