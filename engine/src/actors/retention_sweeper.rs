//! `RetentionSweeper` (process-wide): runs the retention sweep on an interval. On PostgreSQL the
//! sweep runs in a transaction holding an advisory lock, so only one node sweeps at a time.

use std::time::Duration;

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use crate::retention::{self, RetentionPolicy, SweepReport};

/// Run one sweep now as of `now`; resolves with what it deleted (`None`: another node holds
/// the lock). Sender: the interval timer, tests (with a fake clock), operators.
#[derive(Message)]
#[rtype(result = "Result<Option<SweepReport>, String>")]
pub struct SweepNow {
    pub now: chrono::DateTime<chrono::Utc>,
}

pub struct RetentionSweeper {
    db: DatabaseConnection,
    policy: RetentionPolicy,
    interval: Duration,
}

impl RetentionSweeper {
    pub fn new(db: DatabaseConnection, policy: RetentionPolicy, interval: Duration) -> Self {
        Self {
            db,
            policy,
            interval,
        }
    }
}

/// One locked sweep.
pub async fn sweep_once(
    db: &DatabaseConnection,
    policy: &RetentionPolicy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<SweepReport>, String> {
    let txn = crate::database::begin_write(db)
        .await
        .map_err(|e| e.to_string())?;
    if !retention::try_lock(&txn).await.map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let report = retention::sweep(&txn, policy, now)
        .await
        .map_err(|e| e.to_string())?;
    txn.commit().await.map_err(|e| e.to_string())?;
    Ok(Some(report))
}

impl Actor for RetentionSweeper {
    type Context = Context<Self>;

    /// One sweep at start (a node restarted more often than the interval would otherwise never
    /// sweep), then one per interval. The first one holds the mailbox, so a `SweepNow` sent after
    /// start runs after it.
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.wait(self.sweep().into_actor(self));
        ctx.run_interval(self.interval, |sweeper, _| {
            actix::spawn(sweeper.sweep());
        });
    }
}

impl RetentionSweeper {
    /// One sweep as of the wall clock, logging what it deleted.
    fn sweep(&self) -> impl std::future::Future<Output = ()> + 'static {
        let db = self.db.clone();
        let policy = self.policy;
        async move {
            match sweep_once(&db, &policy, chrono::Utc::now()).await {
                Ok(Some(report)) if report.rows() > 0 => {
                    tracing::info!(
                        words = report.transcript_words,
                        usage_rows = report.usage_rows,
                        ledger_rows = report.ledger_rows,
                        signup_ip_rows = report.signup_ip_rows,
                        verification_links = report.verification_links,
                        "retention sweep"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error, "retention sweep failed"),
            }
        }
    }
}

impl Handler<SweepNow> for RetentionSweeper {
    type Result = ResponseFuture<Result<Option<SweepReport>, String>>;

    fn handle(&mut self, msg: SweepNow, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        let policy = self.policy;
        Box::pin(async move { sweep_once(&db, &policy, msg.now).await })
    }
}
