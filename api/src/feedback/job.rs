//! The scoring job: a tokio task fed by a bounded channel of interview ids.

use std::sync::Arc;
use std::time::Duration;

use engine::InterviewId;
use engine::feedback::FeedbackConfig;
use engine::feedback::scorer::{AnswerScorer, LocalScorer};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;

use super::store;

/// Interview ids waiting to be scored; beyond this, ids are dropped (the sweep finds them).
pub const QUEUE_CAPACITY: usize = 256;

/// How often the sweep looks for ended interviews without finished scores.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// Attempts before a job stays `failed`.
pub const MAX_ATTEMPTS: i32 = 3;

/// Builds each interview's scorer: Claude (the scorer's model, priced by its own entry in the
/// price table) on the interview's account's own Anthropic key when
/// it has one, else on the platform key (leased from the key leaser for the scoring only, see
/// [`engine::engine::EngineHandle::lease_for_work`]), with the
/// local rules behind it for vendor faults and invalid replies; the local rules alone when
/// neither key exists. Claude's calls are metered like any vendor call (usage rows with the
/// account, the interview and whose key paid).
pub struct ScorerSource {
    config: FeedbackConfig,
    anthropic_url: String,
    anthropic_model: String,
    prices: engine::vendors::usage::TokenPrices,
    engine: engine::engine::EngineHandle,
    meter: Option<actix::Recipient<engine::actors::usage_meter::Record>>,
}

/// How long a scoring may hold its key lease (the lease grace comes on top).
const SCORING_LEASE: Duration = Duration::from_secs(300);

/// A scorer and the key lease it runs on (released when this is dropped, after the scoring).
pub struct LeasedScorer {
    pub scorer: Arc<dyn AnswerScorer>,
    _lease: Option<engine::engine::WorkLease>,
}

impl ScorerSource {
    pub fn new(
        settings: &crate::configuration::Settings,
        config: &FeedbackConfig,
        engine: engine::engine::EngineHandle,
        meter: Option<actix::Recipient<engine::actors::usage_meter::Record>>,
    ) -> Self {
        Self {
            config: config.clone(),
            anthropic_url: settings.anthropic_base_url.clone(),
            anthropic_model: settings.scorer_model().to_owned(),
            // Every configured model has a price (checked at start).
            prices: settings
                .prices
                .llm_prices(settings.scorer_model())
                .unwrap_or_default(),
            engine,
            meter,
        }
    }

    /// The scorer of one interview.
    pub async fn for_interview(
        &self,
        db: &DatabaseConnection,
        interview_id: InterviewId,
    ) -> Result<LeasedScorer, sea_orm::DbErr> {
        use sea_orm::EntityTrait;
        let local = LocalScorer {
            config: self.config.clone(),
        };
        let only_local = |local: LocalScorer| LeasedScorer {
            scorer: Arc::new(local),
            _lease: None,
        };
        let Some(interview) = entities::interviews::Entity::find_by_id(interview_id)
            .one(db)
            .await?
        else {
            return Ok(only_local(local));
        };
        let lease = match self
            .engine
            .lease_for_work(
                interview.account_id,
                interview_id,
                vec![engine::vendors::Vendor::Anthropic],
                SCORING_LEASE,
            )
            .await
        {
            Ok(lease) => lease,
            Err(engine::engine::EngineError::Database(error)) => return Err(error),
            Err(error) => {
                tracing::warn!(error = %error, "scoring with the local rules: no key lease");
                return Ok(only_local(local));
            }
        };
        let Some(key) = lease.anthropic().cloned() else {
            return Ok(only_local(local));
        };
        let key_source = key.source();
        let usage_key = key.clone();
        let mut anthropic = engine::vendors::anthropic::AnthropicConfig::new(
            self.anthropic_url.clone(),
            key,
            self.anthropic_model.clone(),
        );
        anthropic.prices = self.prices;
        match engine::vendors::anthropic::AnthropicLlm::new(anthropic) {
            Ok(client) => Ok(LeasedScorer {
                scorer: Arc::new(engine::feedback::scorer::FallbackScorer {
                    primary: Arc::new(engine::feedback::claude::ClaudeScorer {
                        llm: Arc::new(client),
                        config: self.config.clone(),
                        usage: self.meter.clone().map(|meter| {
                            engine::feedback::claude::ScorerUsage {
                                meter,
                                context: engine::metering::UsageContext {
                                    account_id: Some(interview.account_id),
                                    interview_id: Some(interview_id),
                                    key_source,
                                },
                                key: Some(usage_key.clone()),
                            }
                        }),
                    }),
                    fallback: local,
                }),
                _lease: Some(lease),
            }),
            Err(error) => {
                tracing::warn!(category = ?error.category, "scoring with the local rules: the Anthropic client could not be built");
                Ok(only_local(local))
            }
        }
    }
}

/// A handle to the scoring job; cheap to clone.
#[derive(Clone)]
pub struct ScoringQueue {
    tx: mpsc::Sender<InterviewId>,
    /// Becomes true once the start-up sweep has queued what it found.
    swept: tokio::sync::watch::Receiver<bool>,
}

impl ScoringQueue {
    /// Starts the worker (call inside the server's runtime) and the sweep, which runs once at
    /// once (jobs a restart interrupted) and then every [`SWEEP_INTERVAL`]. Runs are claimed as
    /// `node`'s; the jobs `node` held when it last stopped are released first, so they are
    /// picked up at once (another node's are taken over only when their claim is stale).
    pub fn start(
        db: DatabaseConnection,
        config: FeedbackConfig,
        scorers: ScorerSource,
        node: String,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(worker(db.clone(), config, scorers, rx, node.clone()));
        let (swept_tx, swept) = tokio::sync::watch::channel(false);
        let queue = Self { tx, swept };
        let sweeper = queue.clone();
        tokio::spawn(async move {
            match store::release_own_claims(&db, &node).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "scoring: resuming the jobs this node held"),
                Err(error) => {
                    tracing::warn!(error = %error, "scoring: releasing this node's jobs failed")
                }
            }
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                match store::unfinished(&db, MAX_ATTEMPTS).await {
                    Ok(ids) => {
                        if !ids.is_empty() {
                            tracing::info!(
                                count = ids.len(),
                                "scoring: picking up unfinished jobs"
                            );
                        }
                        for id in ids {
                            sweeper.enqueue(id);
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "scoring: sweep failed"),
                }
                swept_tx.send_replace(true);
                if sweeper.tx.is_closed() {
                    break;
                }
            }
        });
        queue
    }

    /// Waits until the start-up sweep has queued the unfinished jobs it found (the jobs a
    /// restart interrupted, and ended interviews never scored).
    pub async fn start_up_sweep_done(&self) {
        let mut swept = self.swept.clone();
        // An error means the sweep task is gone (the runtime is stopping): nothing to wait for.
        let _ = swept.wait_for(|swept| *swept).await;
    }

    /// Asks for an interview to be scored; never blocks.
    pub fn enqueue(&self, interview_id: InterviewId) {
        if let Err(error) = self.tx.try_send(interview_id) {
            tracing::warn!(%interview_id, full = matches!(error, mpsc::error::TrySendError::Full(_)),
                "scoring queue refused an interview; the sweep will pick it up");
        }
    }

    /// The engine's end-of-interview listener.
    pub fn listener(&self) -> engine::engine::EndedListener {
        let queue = self.clone();
        Arc::new(move |interview_id| queue.enqueue(interview_id))
    }
}

async fn worker(
    db: DatabaseConnection,
    config: FeedbackConfig,
    scorers: ScorerSource,
    mut rx: mpsc::Receiver<InterviewId>,
    node: String,
) {
    while let Some(interview_id) = rx.recv().await {
        let scored = match scorers.for_interview(&db, interview_id).await {
            Ok(leased) => {
                store::score_interview(
                    &db,
                    &config,
                    leased.scorer.as_ref(),
                    interview_id,
                    &node,
                    MAX_ATTEMPTS,
                )
                .await
            }
            Err(error) => Err(error.into()),
        };
        match scored {
            // Asked again while this run scored: the newer request is this worker's next job
            // (queued by the request) or the sweep's.
            Ok(outcome) => tracing::info!(%interview_id, ?outcome, "scoring finished"),
            Err(error) => tracing::warn!(%interview_id, error = %error, "scoring failed"),
        }
    }
}
