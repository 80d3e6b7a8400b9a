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
pub async fn unfinished(db: &DatabaseConnection, max_attempts: i32) -> Result<Vec<Uuid>, DbErr> {
    let mut ids: Vec<Uuid> = scoring_jobs::Entity::find()
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
                .update_columns([
                    scoring_jobs::Column::State,
                    scoring_jobs::Column::Attempts,
                    scoring_jobs::Column::Error,
                    scoring_jobs::Column::RequestedAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
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
    }
}

/// Records a failed attempt (the sweep retries while attempts are left).
pub async fn mark_failed(
    db: &DatabaseConnection,
    interview_id: Uuid,
    error: &StoreError,
) -> Result<(), DbErr> {
    if let Some(job) = scoring_jobs::Entity::find_by_id(interview_id)
        .one(db)
        .await?
    {
        let mut job = job.into_active_model();
        job.state = Set(FAILED.into());
        job.error = Set(Some(error.category().into()));
        job.finished_at = Set(Some(Utc::now()));
        job.update(db).await?;
    }
    Ok(())
}

/// The interview's transcript as turns with their words, in order.
async fn load_turns(db: &impl ConnectionTrait, interview_id: Uuid) -> Result<Vec<Turn>, DbErr> {
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

/// Scores one ended interview and writes the result (see the module doc).
pub async fn score_interview(
    db: &DatabaseConnection,
    config: &FeedbackConfig,
    scorer: &dyn AnswerScorer,
    interview_id: Uuid,
    max_attempts: i32,
) -> Result<Outcome, StoreError> {
    let Some(interview) = interviews::Entity::find_by_id(interview_id).one(db).await? else {
        return Ok(Outcome::NotEnded);
    };
    if interview.status != InterviewStatus::Ended {
        return Ok(Outcome::NotEnded);
    }
    let now = Utc::now();
    match scoring_jobs::Entity::find_by_id(interview_id)
        .one(db)
        .await?
    {
        Some(job)
            if job.state == DONE
                || job.state == SKIPPED
                || (job.state == FAILED && job.attempts >= max_attempts) =>
        {
            return Ok(Outcome::AlreadyFinished);
        }
        Some(job) => {
            let attempts = job.attempts + 1;
            let mut job = job.into_active_model();
            job.state = Set(RUNNING.into());
            job.attempts = Set(attempts);
            job.started_at = Set(Some(now));
            job.update(db).await?;
        }
        None => {
            let mut job = new_job(&interview, RUNNING, 1, now);
            job.started_at = Set(Some(now));
            // A re-score request may create the row at the same moment: this run is that job.
            scoring_jobs::Entity::insert(job)
                .on_conflict(
                    sea_orm::sea_query::OnConflict::column(scoring_jobs::Column::InterviewId)
                        .update_columns([
                            scoring_jobs::Column::State,
                            scoring_jobs::Column::Attempts,
                            scoring_jobs::Column::StartedAt,
                        ])
                        .to_owned(),
                )
                .exec(db)
                .await?;
        }
    }

    let turns = load_turns(db, interview_id).await?;
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
            scorer: Set(scorer.name().into()),
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
    // The row exists: it was claimed above, and erasure would have removed the interview too.
    let Some(job) = scoring_jobs::Entity::find_by_id(interview_id)
        .one(&txn)
        .await?
    else {
        return Ok(Outcome::NotEnded);
    };
    let mut job = job.into_active_model();
    job.state = Set(if answers == 0 { SKIPPED } else { DONE }.into());
    job.scorer = Set(Some(scorer.name().into()));
    job.error = Set(None);
    job.answers = Set(i32::try_from(answers).unwrap_or(i32::MAX));
    job.delivery = Set(prepared.overall.as_ref().map(json));
    job.finished_at = Set(Some(Utc::now()));
    job.update(&txn).await?;
    txn.commit().await?;
    Ok(if answers == 0 {
        Outcome::Skipped
    } else {
        Outcome::Scored { answers }
    })
}

/// Replaces the interview's skill history rows with `signals` and replays every touched skill.
async fn record_skills(
    txn: &impl ConnectionTrait,
    config: &FeedbackConfig,
    account_id: Uuid,
    interview_id: Uuid,
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
    account_id: Uuid,
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
    account_id: Uuid,
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
