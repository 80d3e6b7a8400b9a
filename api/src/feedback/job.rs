//! The scoring job: a tokio task fed by a bounded channel of interview ids.

use std::sync::Arc;
use std::time::Duration;

use engine::feedback::FeedbackConfig;
use engine::feedback::scorer::{AnswerScorer, LocalScorer};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::store;

/// Interview ids waiting to be scored; beyond this, ids are dropped (the sweep finds them).
pub const QUEUE_CAPACITY: usize = 256;

/// How often the sweep looks for ended interviews without finished scores.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(300);

/// Attempts before a job stays `failed`.
pub const MAX_ATTEMPTS: i32 = 3;

/// The scorer: Claude on the platform key (with the local rules behind it for vendor faults
/// and invalid replies), else the local rules.
pub fn scorer(
    settings: &crate::configuration::Settings,
    config: &FeedbackConfig,
) -> Arc<dyn AnswerScorer> {
    let local = LocalScorer {
        config: config.clone(),
    };
    let Some(key) = settings.anthropic_api_key.clone() else {
        return Arc::new(local);
    };
    let client = engine::vendors::anthropic::AnthropicLlm::new(
        engine::vendors::anthropic::AnthropicConfig::new(
            settings.anthropic_base_url.clone(),
            key,
            settings.anthropic_model.clone(),
        ),
    );
    match client {
        Ok(client) => Arc::new(engine::feedback::scorer::FallbackScorer {
            primary: Arc::new(engine::feedback::claude::ClaudeScorer {
                llm: Arc::new(client),
                config: config.clone(),
            }),
            fallback: local,
        }),
        Err(error) => {
            tracing::warn!(category = ?error.category, "scoring with the local rules: the Anthropic client could not be built");
            Arc::new(local)
        }
    }
}

/// A handle to the scoring job; cheap to clone.
#[derive(Clone)]
pub struct ScoringQueue {
    tx: mpsc::Sender<Uuid>,
}

impl ScoringQueue {
    /// Starts the worker (call inside the server's runtime) and the sweep, which runs once at
    /// once (jobs a restart interrupted) and then every [`SWEEP_INTERVAL`].
    pub fn start(
        db: DatabaseConnection,
        config: FeedbackConfig,
        scorer: Arc<dyn AnswerScorer>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(worker(db.clone(), config, scorer, rx));
        let queue = Self { tx };
        let sweeper = queue.clone();
        tokio::spawn(async move {
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
                if sweeper.tx.is_closed() {
                    break;
                }
            }
        });
        queue
    }

    /// Asks for an interview to be scored; never blocks.
    pub fn enqueue(&self, interview_id: Uuid) {
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
    scorer: Arc<dyn AnswerScorer>,
    mut rx: mpsc::Receiver<Uuid>,
) {
    while let Some(interview_id) = rx.recv().await {
        match store::score_interview(&db, &config, scorer.as_ref(), interview_id, MAX_ATTEMPTS)
            .await
        {
            Ok(outcome) => tracing::info!(%interview_id, ?outcome, "scoring finished"),
            Err(error) => {
                tracing::warn!(%interview_id, error = %error, "scoring failed");
                if let Err(error) = store::mark_failed(&db, interview_id, &error).await {
                    tracing::warn!(%interview_id, error = %error, "recording a failed scoring job failed");
                }
            }
        }
    }
}
