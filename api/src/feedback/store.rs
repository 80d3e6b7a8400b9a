//! Loading an interview for scoring and writing its scores, skill history and levels.
//!
//! Scoring an interview again replaces its rows: answer feedback, answer scores and its skill
//! history rows are deleted and written anew in one transaction, and the levels of every skill
//! it touches are replayed from the account's whole history, so the result does not depend on
//! how often an interview was scored.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use engine::feedback::delivery::{DeliveryMetrics, delivery};
use engine::feedback::scorer::{AnswerScorer, ScoreError};
use engine::feedback::segments::{Segment, Speaker, Turn, segment};
use engine::feedback::skills::{SkillState, Trend, replay, signals};
use engine::feedback::{AnswerKind, AnswerScore, FeedbackConfig, Word};
use engine::{AccountId, InterviewId};
use entities::interviews::{self, InterviewKind, InterviewStatus};
use entities::{
    account_settings, answer_feedback, answer_scores, scoring_jobs, skill_history, skill_levels,
    transcript_segments, transcript_words,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// Job states as stored.
pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const SKIPPED: &str = "skipped";
pub const FAILED: &str = "failed";

/// Why scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("scorer: {0}")]
    Scorer(#[from] ScoreError),
}

impl StoreError {
    /// What the job row records (a category, never data).
    fn category(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "database",
            StoreError::Scorer(ScoreError::Vendor(_)) => "scorer_vendor",
            StoreError::Scorer(ScoreError::Invalid(_)) => "scorer_invalid_output",
            StoreError::Scorer(ScoreError::Task(_)) => "scorer_task",
        }
    }
}

/// What a run of the job did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The interview is gone or has not ended.
    NotEnded,
    /// Already scored (or given up on); ask again with [`request`] to re-score.
    AlreadyFinished,
    /// Another run holds the job (this node's earlier run, or another node's).
    Busy,
    /// A re-score was asked for, or another run took the job over, while this run scored: its
    /// result was not written (the newer run's will be).
    Superseded,
    /// The word timestamps this re-score needs were deleted after their retention period; the
    /// stored scores stand.
    WordTimesExpired,
    /// No answer of at least the minimum length.
    Skipped,
    Scored {
        answers: usize,
    },
}

/// The kind the rules use for an interview.
pub fn answer_kind(kind: InterviewKind) -> AnswerKind {
    match kind {
        InterviewKind::Behavioral => AnswerKind::Behavioral,
        InterviewKind::SystemDesign => AnswerKind::SystemDesign,
        InterviewKind::Technical => AnswerKind::Technical,
    }
}

/// Ended interviews whose scoring has not finished: no job yet, pending, running (a restart
/// interrupted it) or failed with attempts left. At most 500 per call.
pub async fn unfinished(
    db: &DatabaseConnection,
    max_attempts: i32,
) -> Result<Vec<InterviewId>, DbErr> {
    let mut ids: Vec<InterviewId> = scoring_jobs::Entity::find()
        .filter(
            scoring_jobs::Column::State
                .is_in([PENDING, RUNNING])
                .or(scoring_jobs::Column::State
                    .eq(FAILED)
                    .and(scoring_jobs::Column::Attempts.lt(max_attempts))),
        )
        .limit(500)
        .all(db)
        .await?
        .into_iter()
        .map(|job| job.interview_id)
        .collect();
    let without_job = interviews::Entity::find()
        .filter(interviews::Column::Status.eq(InterviewStatus::Ended))
        .filter(
            interviews::Column::Id.not_in_subquery(
                Query::select()
                    .column(scoring_jobs::Column::InterviewId)
                    .from(scoring_jobs::Entity)
                    .to_owned(),
            ),
        )
        .limit(500)
        .all(db)
        .await?;
    ids.extend(without_job.into_iter().map(|i| i.id));
    Ok(ids)
}

/// Marks an interview for (re-)scoring: its job becomes `pending` with fresh attempts.
pub async fn request(db: &DatabaseConnection, interview: &interviews::Model) -> Result<(), DbErr> {
    use sea_orm::sea_query::OnConflict;
    // One statement: the job may be created at the same moment by the scoring worker (the end
    // of the interview queued it), and a find-then-insert would then fail on its key.
    scoring_jobs::Entity::insert(new_job(interview, PENDING, 0, Utc::now()))
        .on_conflict(
            OnConflict::column(scoring_jobs::Column::InterviewId)
                // The claim goes too: a run still scoring loses it and does not write its
                // result over this request (the new run's will be written).
                .update_columns([
                    scoring_jobs::Column::State,
                    scoring_jobs::Column::Attempts,
                    scoring_jobs::Column::Error,
                    scoring_jobs::Column::RequestedAt,
                    scoring_jobs::Column::Claim,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// How long a run may hold a job before another node's sweep takes it over (its node died and
/// did not come back). Well above the time a scoring may hold its key lease.
pub const STALE_CLAIM: Duration = Duration::minutes(15);

/// Takes the interview's job for one run, atomically: a job that does not exist yet, or one
/// that is `pending`, `failed` with attempts left, or `running` under a claim older than
/// [`STALE_CLAIM`]. Returns the run's token, or what holds the job instead.
pub async fn claim(
    db: &DatabaseConnection,
    interview: &interviews::Model,
    node: &str,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> Result<Result<Uuid, Outcome>, DbErr> {
    let token = Uuid::new_v4();
    let mut job = new_job(interview, RUNNING, 1, now);
    job.started_at = Set(Some(now));
    job.claim = Set(Some(token));
    job.claimed_by = Set(Some(node.to_owned()));
    let inserted = scoring_jobs::Entity::insert(job)
        .on_conflict_do_nothing_on([scoring_jobs::Column::InterviewId])
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, sea_orm::TryInsertResult::Inserted(rows) if rows > 0) {
        return Ok(Ok(token));
    }
    use sea_orm::sea_query::Expr;
    let claimable = scoring_jobs::Column::State
        .eq(PENDING)
        .or(scoring_jobs::Column::State
            .eq(FAILED)
            .and(scoring_jobs::Column::Attempts.lt(max_attempts)))
        .or(scoring_jobs::Column::State
            .eq(RUNNING)
            .and(scoring_jobs::Column::StartedAt.lt(now - STALE_CLAIM)));
    let taken = scoring_jobs::Entity::update_many()
        .col_expr(scoring_jobs::Column::State, Expr::value(RUNNING))
        .col_expr(
            scoring_jobs::Column::Attempts,
            Expr::col(scoring_jobs::Column::Attempts).add(1),
        )
        .col_expr(scoring_jobs::Column::StartedAt, Expr::value(Some(now)))
        .col_expr(scoring_jobs::Column::Claim, Expr::value(Some(token)))
        .col_expr(
            scoring_jobs::Column::ClaimedBy,
            Expr::value(Some(node.to_owned())),
        )
        .filter(scoring_jobs::Column::InterviewId.eq(interview.id))
        .filter(claimable)
        .exec(db)
        .await?;
    if taken.rows_affected == 1 {
        return Ok(Ok(token));
    }
    let state = scoring_jobs::Entity::find_by_id(interview.id)
        .one(db)
        .await?
        .map(|job| job.state);
    Ok(Err(match state.as_deref() {
        Some(RUNNING) => Outcome::Busy,
        _ => Outcome::AlreadyFinished,
    }))
}

/// At start: the jobs this node was running when it stopped (crash, kill) are nobody's now, so
/// they go back to `pending` at once instead of waiting out [`STALE_CLAIM`]. Jobs claimed
/// before claims carried a node are treated alike. Returns how many.
pub async fn release_own_claims(db: &DatabaseConnection, node: &str) -> Result<u64, DbErr> {
    use sea_orm::sea_query::Expr;
    let released = scoring_jobs::Entity::update_many()
        .col_expr(scoring_jobs::Column::State, Expr::value(PENDING))
        .col_expr(
            scoring_jobs::Column::Claim,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(scoring_jobs::Column::State.eq(RUNNING))
        .filter(
            scoring_jobs::Column::ClaimedBy
                .eq(node)
                .or(scoring_jobs::Column::ClaimedBy.is_null()),
        )
        .exec(db)
        .await?;
    Ok(released.rows_affected)
}

fn new_job(
    interview: &interviews::Model,
    state: &str,
    attempts: i32,
    now: DateTime<Utc>,
) -> scoring_jobs::ActiveModel {
    scoring_jobs::ActiveModel {
        interview_id: Set(interview.id),
        account_id: Set(interview.account_id),
        state: Set(state.into()),
        attempts: Set(attempts),
        scorer: Set(None),
        error: Set(None),
        answers: Set(0),
        delivery: Set(None),
        requested_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        claim: Set(None),
        claimed_by: Set(None),
    }
}

/// Records a failed attempt of the run holding `claim` (the sweep retries while attempts are
/// left); nothing when the run lost its claim meanwhile.
pub async fn mark_failed(
    db: &DatabaseConnection,
    interview_id: InterviewId,
    claim: Uuid,
    error: &StoreError,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    scoring_jobs::Entity::update_many()
        .col_expr(scoring_jobs::Column::State, Expr::value(FAILED))
        .col_expr(
            scoring_jobs::Column::Error,
            Expr::value(Some(error.category().to_owned())),
        )
        .col_expr(
            scoring_jobs::Column::FinishedAt,
            Expr::value(Some(Utc::now())),
        )
        .col_expr(
            scoring_jobs::Column::Claim,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(scoring_jobs::Column::InterviewId.eq(interview_id))
        .filter(scoring_jobs::Column::State.eq(RUNNING))
        .filter(scoring_jobs::Column::Claim.eq(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// The interview's transcript as turns with their words, in order.
async fn load_turns(
    db: &impl ConnectionTrait,
    interview_id: InterviewId,
) -> Result<Vec<Turn>, DbErr> {
    let rows = transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.eq(interview_id))
        .order_by_asc(transcript_segments::Column::Seq)
        .all(db)
        .await?;
    let mut words: HashMap<Uuid, Vec<Word>> = HashMap::new();
    for word in transcript_words::Entity::find()
        .filter(transcript_words::Column::InterviewId.eq(interview_id))
        .order_by_asc(transcript_words::Column::StartMs)
        .all(db)
        .await?
    {
        words.entry(word.segment_id).or_default().push(Word {
            text: word.word,
            start_ms: word.start_ms,
            end_ms: word.end_ms,
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| Turn {
            words: words.remove(&row.id).unwrap_or_default(),
            id: row.id,
            speaker: match row.speaker {
                transcript_segments::Speaker::Candidate => Speaker::Candidate,
                transcript_segments::Speaker::Interviewer => Speaker::Interviewer,
            },
            text: row.text,
            start_ms: row.start_ms,
            end_ms: row.end_ms,
        })
        .collect())
}

/// What the blocking part computes: the answers long enough to score, their delivery, and the
/// interview's delivery.
struct Prepared {
    answers: Vec<(Segment, Option<DeliveryMetrics>)>,
    overall: Option<DeliveryMetrics>,
}

fn prepare(config: &FeedbackConfig, turns: &[Turn]) -> Prepared {
    let answers: Vec<Segment> = segment(turns)
        .into_iter()
        .filter(|s| s.words.len() >= config.min_answer_words)
        .collect();
    let overall = delivery(config, &answers.iter().collect::<Vec<_>>());
    Prepared {
        answers: answers
            .into_iter()
            .map(|s| {
                let d = delivery(config, &[&s]);
                (s, d)
            })
            .collect(),
        overall,
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Scores one ended interview and writes the result (see the module doc), as the run of
/// `node` that claims its job; a failure is recorded on the job (the sweep retries while
/// attempts are left).
pub async fn score_interview(
    db: &DatabaseConnection,
    config: &FeedbackConfig,
    scorer: &dyn AnswerScorer,
    interview_id: InterviewId,
    node: &str,
    max_attempts: i32,
) -> Result<Outcome, StoreError> {
    let Some(interview) = interviews::Entity::find_by_id(interview_id).one(db).await? else {
        return Ok(Outcome::NotEnded);
    };
    if interview.status != InterviewStatus::Ended {
        return Ok(Outcome::NotEnded);
    }
    let now = Utc::now();
    let claim = match claim(db, &interview, node, max_attempts, now).await? {
        Ok(claim) => claim,
        Err(outcome) => return Ok(outcome),
    };
    match run(db, config, scorer, &interview, claim, now).await {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            mark_failed(db, interview_id, claim, &error).await?;
            Err(error)
        }
    }
}

/// One claimed run of [`score_interview`].
async fn run(
    db: &DatabaseConnection,
    config: &FeedbackConfig,
    scorer: &dyn AnswerScorer,
    interview: &interviews::Model,
    claim: Uuid,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let interview_id = interview.id;
    let turns = load_turns(db, interview_id).await?;
    if words_expired(&turns)
        && answer_feedback::Entity::find()
            .filter(answer_feedback::Column::InterviewId.eq(interview_id))
            .one(db)
            .await?
            .is_some()
    {
        // A re-score after the 14-day deletion of word timestamps would lose the delivery
        // metrics and put the evidence on guessed times: the stored scores stand.
        restore_done(db, interview_id, claim).await?;
        return Ok(Outcome::WordTimesExpired);
    }
    let prepare_config = config.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&prepare_config, &turns))
        .await
        .map_err(|error| ScoreError::Task(error.to_string()))?;
    let kind = answer_kind(interview.kind);
    let mut scored: Vec<(Segment, Option<DeliveryMetrics>, AnswerScore)> = Vec::new();
    for (segment, delivery) in prepared.answers {
        let score = scorer.score(kind, &segment).await?;
        scored.push((segment, delivery, score));
    }

    let tracking = account_settings::Entity::find_by_id(interview.account_id)
        .one(db)
        .await?
        .is_none_or(|s| s.skill_tracking);
    let answers = scored.len();
    let txn = engine::database::begin_write(db).await?;
    // First the job, under this run's claim: if a re-score was asked for or another run took
    // the job over meanwhile, nothing of this run is written (the transaction is dropped).
    let finished = finish(
        &txn,
        interview_id,
        claim,
        &scored,
        prepared.overall.as_ref(),
    )
    .await?;
    if !finished {
        return Ok(Outcome::Superseded);
    }
    answer_feedback::Entity::delete_many()
        .filter(answer_feedback::Column::InterviewId.eq(interview_id))
        .exec(&txn)
        .await?;
    answer_scores::Entity::delete_many()
        .filter(answer_scores::Column::InterviewId.eq(interview_id))
        .exec(&txn)
        .await?;
    let mut all_signals = Vec::new();
    for (segment, delivery, score) in &scored {
        answer_feedback::ActiveModel {
            id: Set(Uuid::now_v7()),
            interview_id: Set(interview_id),
            segment_index: Set(i32::try_from(segment.index).unwrap_or(i32::MAX)),
            question: Set(segment.question.clone()),
            answer: Set(segment.answer_text()),
            start_ms: Set(segment.start_ms()),
            end_ms: Set(segment.end_ms()),
            overall: Set(score.overall),
            confidence: Set(score.confidence),
            categories: Set(json(&score.categories)),
            findings: Set(json(&score.findings)),
            improved_answer: Set(score.improved_answer.clone()),
            delivery: Set(delivery.as_ref().map(json)),
            scorer: Set(score.scorer.into()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        for signal in signals(config, kind, score) {
            let rules: Vec<&str> = score
                .findings
                .iter()
                .filter(|f| engine::feedback::skills::skill_of(f.rule) == signal.skill)
                .map(|f| f.rule.id())
                .collect();
            answer_scores::ActiveModel {
                id: Set(Uuid::now_v7()),
                interview_id: Set(interview_id),
                segment_id: Set(segment.turn_ids.first().copied()),
                skill: Set(signal.skill.clone()),
                score: Set(score.overall),
                rationale: Set(Some(if rules.is_empty() {
                    format!("no finding; answer scored {:.0}", score.overall)
                } else {
                    format!("findings: {}", rules.join(", "))
                })),
                created_at: Set(now),
            }
            .insert(&txn)
            .await?;
            all_signals.push((segment.index, signal));
        }
    }
    if tracking {
        let at = interview.ended_at.unwrap_or(now);
        record_skills(
            &txn,
            config,
            interview.account_id,
            interview_id,
            at,
            &all_signals,
            now,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(if answers == 0 {
        Outcome::Skipped
    } else {
        Outcome::Scored { answers }
    })
}

/// Whether a re-score of this interview would run on deleted word timestamps: it was scored,
/// and its candidate's words are gone (the 14-day retention sweep). The stored scores, with
/// their delivery metrics and evidence times, then stand.
pub async fn rescore_needs_expired_words(
    db: &DatabaseConnection,
    interview_id: InterviewId,
) -> Result<bool, DbErr> {
    let scored = answer_feedback::Entity::find()
        .filter(answer_feedback::Column::InterviewId.eq(interview_id))
        .one(db)
        .await?
        .is_some();
    Ok(scored && words_expired(&load_turns(db, interview_id).await?))
}

/// Whether the candidate's words lost their timestamps (the retention sweep deletes them after
/// 14 days): candidate turns with text, none with words.
fn words_expired(turns: &[Turn]) -> bool {
    let mut candidate = turns
        .iter()
        .filter(|t| t.speaker == Speaker::Candidate && !t.text.trim().is_empty())
        .peekable();
    candidate.peek().is_some() && candidate.all(|t| t.words.is_empty())
}

/// Gives a claimed job back as `done` without touching its stored result.
async fn restore_done(
    db: &DatabaseConnection,
    interview_id: InterviewId,
    claim: Uuid,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    scoring_jobs::Entity::update_many()
        .col_expr(scoring_jobs::Column::State, Expr::value(DONE))
        .col_expr(
            scoring_jobs::Column::Claim,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(scoring_jobs::Column::InterviewId.eq(interview_id))
        .filter(scoring_jobs::Column::Claim.eq(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks the job finished with this run's result, if the run still holds its claim.
async fn finish(
    txn: &impl ConnectionTrait,
    interview_id: InterviewId,
    claim: Uuid,
    scored: &[(Segment, Option<DeliveryMetrics>, AnswerScore)],
    overall: Option<&DeliveryMetrics>,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let answers = scored.len();
    // The scorers that produced the answers, in order of first use (`claude+local_rules` when
    // the local rules took over an answer from Claude).
    let mut scorers: Vec<&str> = Vec::new();
    for (_, _, score) in scored {
        if !scorers.contains(&score.scorer) {
            scorers.push(score.scorer);
        }
    }
    let scorer = (!scorers.is_empty()).then(|| scorers.join("+"));
    let updated = scoring_jobs::Entity::update_many()
        .col_expr(
            scoring_jobs::Column::State,
            Expr::value(if answers == 0 { SKIPPED } else { DONE }),
        )
        .col_expr(scoring_jobs::Column::Scorer, Expr::value(scorer))
        .col_expr(
            scoring_jobs::Column::Error,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            scoring_jobs::Column::Answers,
            Expr::value(i32::try_from(answers).unwrap_or(i32::MAX)),
        )
        .col_expr(
            scoring_jobs::Column::Delivery,
            Expr::value(overall.map(json)),
        )
        .col_expr(
            scoring_jobs::Column::FinishedAt,
            Expr::value(Some(Utc::now())),
        )
        .col_expr(
            scoring_jobs::Column::Claim,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(scoring_jobs::Column::InterviewId.eq(interview_id))
        .filter(scoring_jobs::Column::State.eq(RUNNING))
        .filter(scoring_jobs::Column::Claim.eq(claim))
        .exec(txn)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Replaces the interview's skill history rows with `signals` and replays every touched skill.
async fn record_skills(
    txn: &impl ConnectionTrait,
    config: &FeedbackConfig,
    account_id: AccountId,
    interview_id: InterviewId,
    at: DateTime<Utc>,
    signals: &[(usize, engine::feedback::skills::Signal)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let mut touched: BTreeSet<String> = skill_history::Entity::find()
        .filter(skill_history::Column::AccountId.eq(account_id))
        .filter(skill_history::Column::InterviewId.eq(interview_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|row| row.skill)
        .collect();
    skill_history::Entity::delete_many()
        .filter(skill_history::Column::AccountId.eq(account_id))
        .filter(skill_history::Column::InterviewId.eq(interview_id))
        .exec(txn)
        .await?;
    for (index, signal) in signals {
        touched.insert(signal.skill.clone());
        skill_history::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(account_id),
            interview_id: Set(Some(interview_id)),
            skill: Set(signal.skill.clone()),
            score: Set(signal.overall),
            // Answers of one interview keep their order.
            recorded_at: Set(at + Duration::milliseconds(i64::try_from(*index).unwrap_or(0))),
            previous_level: Set(None),
            positive: Set(Some(signal.positive)),
            signal_score: Set(Some(signal.overall)),
        }
        .insert(txn)
        .await?;
    }
    for skill in touched {
        replay_skill(txn, config, account_id, &skill, now).await?;
    }
    Ok(())
}

/// Recomputes one skill's history levels and its current level from its signals.
async fn replay_skill(
    txn: &impl ConnectionTrait,
    config: &FeedbackConfig,
    account_id: AccountId,
    skill: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows: Vec<skill_history::Model> = skill_history::Entity::find()
        .filter(skill_history::Column::AccountId.eq(account_id))
        .filter(skill_history::Column::Skill.eq(skill))
        .order_by_asc(skill_history::Column::RecordedAt)
        .order_by_asc(skill_history::Column::Id)
        .all(txn)
        .await?
        .into_iter()
        .filter(|row| row.positive.is_some() && row.signal_score.is_some())
        .collect();
    let history: Vec<(DateTime<Utc>, bool, f64)> = rows
        .iter()
        .map(|row| {
            (
                row.recorded_at,
                row.positive.unwrap_or(false),
                row.signal_score.unwrap_or(0.0),
            )
        })
        .collect();
    let existing = skill_levels::Entity::find()
        .filter(skill_levels::Column::AccountId.eq(account_id))
        .filter(skill_levels::Column::Skill.eq(skill))
        .one(txn)
        .await?;
    let Some((levels, state)) = replay(config, skill, &history) else {
        if let Some(existing) = existing {
            skill_levels::Entity::delete_by_id(existing.id)
                .exec(txn)
                .await?;
        }
        return Ok(());
    };
    let mut previous = config.initial_level;
    for (row, level) in rows.into_iter().zip(levels) {
        if row.score != level || row.previous_level != Some(previous) {
            let mut row = row.into_active_model();
            row.score = Set(level);
            row.previous_level = Set(Some(previous));
            row.update(txn).await?;
        }
        previous = level;
    }
    let fill = |level: &mut skill_levels::ActiveModel| {
        level.level = Set(state.level);
        level.best_level = Set(state.best_level);
        level.trend = Set(state.trend.as_str().into());
        level.updates = Set(i32::try_from(state.updates).unwrap_or(i32::MAX));
        level.next_review_at = Set(state.next_review_at);
        level.updated_at = Set(now);
    };
    match existing {
        Some(existing) => {
            let mut level = existing.into_active_model();
            fill(&mut level);
            level.update(txn).await?;
        }
        None => {
            let mut level = skill_levels::ActiveModel {
                id: Set(Uuid::now_v7()),
                account_id: Set(account_id),
                skill: Set(skill.to_owned()),
                ..Default::default()
            };
            fill(&mut level);
            level.insert(txn).await?;
        }
    }
    Ok(())
}

/// The account's skill levels as the drill planner sees them.
pub async fn skill_states(
    db: &impl ConnectionTrait,
    account_id: AccountId,
) -> Result<Vec<SkillState>, DbErr> {
    Ok(skill_levels::Entity::find()
        .filter(skill_levels::Column::AccountId.eq(account_id))
        .order_by_asc(skill_levels::Column::Skill)
        .all(db)
        .await?
        .into_iter()
        .map(|row| SkillState {
            skill: row.skill,
            level: row.level,
            best_level: row.best_level,
            trend: Trend::parse(&row.trend),
            updates: usize::try_from(row.updates).unwrap_or(0),
            updated_at: row.updated_at,
            next_review_at: row.next_review_at,
        })
        .collect())
}
