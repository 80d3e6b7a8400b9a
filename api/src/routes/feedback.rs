//! Feedback after the call: `/api/v1/interviews/{id}/scores` and `/score` (re-score),
//! `/api/v1/skills`, `/api/v1/skills/{skill}/history` and `/api/v1/drills`. Owner-only: an
//! interview is found through `interviews::own`, everything else is the caller's own rows.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use engine::InterviewId;
use engine::feedback::drills::plan;
use engine::feedback::skills::{MICROSKILLS, area_of, is_skill};
use entities::interviews::InterviewStatus;
use entities::{answer_feedback, scoring_jobs, skill_history};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::AuthenticatedAccount;
use crate::error::{ApiError, ErrorBody};
use crate::feedback::store;
use crate::state::AppState;

/// One scored answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AnswerView {
    pub index: i32,
    pub question: String,
    pub answer: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub overall: f64,
    pub confidence: f64,
    /// `{structure, depth, communication, seniority_signal}`, 0–100 each.
    #[schema(value_type = Object)]
    pub categories: Value,
    /// `[{rule, confidence, evidence: {start_ms, end_ms, quote}, fix, impact}]`; every quote is
    /// the candidate's own words.
    #[schema(value_type = Vec<Object>)]
    pub findings: Value,
    pub improved_answer: String,
    /// Words per minute, fillers, hesitations, long pauses, score and grade; null without word
    /// times.
    #[schema(value_type = Option<Object>)]
    pub delivery: Option<Value>,
    pub scorer: String,
}

/// The scores of an interview.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScoresView {
    #[schema(value_type = Uuid)]
    pub interview_id: InterviewId,
    /// `none` (not ended yet), `pending`, `running`, `done`, `skipped` (no answer of 15+ words)
    /// or `failed`.
    pub state: String,
    pub scorer: Option<String>,
    /// Delivery over the whole interview.
    #[schema(value_type = Option<Object>)]
    pub delivery: Option<Value>,
    pub answers: Vec<AnswerView>,
}

/// `GET /api/v1/interviews/{id}/scores`: the scores of each answer, with evidence.
#[utoipa::path(get, path = "/api/v1/interviews/{id}/scores", tag = "feedback", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ScoresView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn scores(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    id: web::Path<InterviewId>,
) -> Result<HttpResponse, ApiError> {
    let interview = super::interviews::own(&state, &caller, *id).await?;
    let job = scoring_jobs::Entity::find_by_id(interview.id)
        .one(&state.db)
        .await?;
    let answers = answer_feedback::Entity::find()
        .filter(answer_feedback::Column::InterviewId.eq(interview.id))
        .order_by_asc(answer_feedback::Column::SegmentIndex)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|row| AnswerView {
            index: row.segment_index,
            question: row.question,
            answer: row.answer,
            start_ms: row.start_ms,
            end_ms: row.end_ms,
            overall: row.overall,
            confidence: row.confidence,
            categories: row.categories,
            findings: row.findings,
            improved_answer: row.improved_answer,
            delivery: row.delivery,
            scorer: row.scorer,
        })
        .collect();
    let (job_state, scorer, delivery) = match job {
        Some(job) => (job.state, job.scorer, job.delivery),
        None if interview.status == InterviewStatus::Ended => ("pending".into(), None, None),
        None => ("none".into(), None, None),
    };
    Ok(HttpResponse::Ok().json(ScoresView {
        interview_id: interview.id,
        state: job_state,
        scorer,
        delivery,
        answers,
    }))
}

/// `POST /api/v1/interviews/{id}/score`: scores the interview again (replacing its scores).
#[utoipa::path(post, path = "/api/v1/interviews/{id}/score", tag = "feedback", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 202, description = "Queued: `{interview_id, state: \"pending\"}`", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The interview has not ended (`interview_not_ended`), or its word timestamps, which a re-score needs, were deleted after 14 days (`word_times_expired`)", body = ErrorBody)))]
pub async fn rescore(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    id: web::Path<InterviewId>,
) -> Result<HttpResponse, ApiError> {
    let interview = super::interviews::own(&state, &caller, *id).await?;
    if interview.status != InterviewStatus::Ended {
        return Err(ApiError::Conflict {
            code: "interview_not_ended",
            message: "an interview is scored once it has ended",
        });
    }
    if store::rescore_needs_expired_words(&state.db, interview.id).await? {
        return Err(ApiError::Conflict {
            code: "word_times_expired",
            message: "the word timestamps a re-score needs were deleted after 14 days; the stored scores stand",
        });
    }
    store::request(&state.db, &interview).await?;
    state.scoring.enqueue(interview.id);
    Ok(HttpResponse::Accepted().json(json!({"interview_id": interview.id, "state": "pending"})))
}

/// A skill's current level.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SkillView {
    pub skill: String,
    pub area: String,
    pub level: f64,
    pub best_level: f64,
    /// `improving`, `stable` or `declining`.
    pub trend: String,
    pub updates: i32,
    pub next_review_at: DateTime<Utc>,
}

/// The caller's skills.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SkillsView {
    /// `false`: the account objected to skill tracking; no levels are kept.
    pub skill_tracking: bool,
    pub skills: Vec<SkillView>,
    /// All 24 microskills by area (`[skill, area]`).
    #[schema(value_type = Vec<Vec<String>>)]
    pub microskills: Vec<[&'static str; 2]>,
}

/// `GET /api/v1/skills`: the caller's microskill levels, trends and next reviews.
#[utoipa::path(get, path = "/api/v1/skills", tag = "feedback", security(("bearer" = [])),
    responses((status = 200, body = SkillsView), (status = 401, body = ErrorBody)))]
pub async fn skills(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let settings = super::settings::load_settings(&state.db, caller.id).await?;
    let skills = entities::skill_levels::Entity::find()
        .filter(entities::skill_levels::Column::AccountId.eq(caller.id))
        .order_by_asc(entities::skill_levels::Column::Skill)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|row| SkillView {
            area: area_of(&row.skill).unwrap_or("other").to_owned(),
            skill: row.skill,
            level: row.level,
            best_level: row.best_level,
            trend: row.trend,
            updates: row.updates,
            next_review_at: row.next_review_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SkillsView {
        skill_tracking: settings.skill_tracking,
        skills,
        microskills: MICROSKILLS.iter().map(|(s, a)| [*s, *a]).collect(),
    }))
}

/// One change of a skill's level.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    #[schema(value_type = Option<Uuid>)]
    pub interview_id: Option<InterviewId>,
    pub level: f64,
    pub previous_level: Option<f64>,
    /// The signal: positive or negative, from an answer that scored `signal_score`.
    pub positive: Option<bool>,
    pub signal_score: Option<f64>,
    pub recorded_at: DateTime<Utc>,
}

/// `GET /api/v1/skills/{skill}/history`: every change of one skill's level, oldest first.
#[utoipa::path(get, path = "/api/v1/skills/{skill}/history", tag = "feedback", security(("bearer" = [])),
    params(("skill" = String, Path, description = "One of the 24 microskills")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, description = "Not a microskill", body = ErrorBody)))]
pub async fn history(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    skill: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let skill = skill.into_inner();
    if !is_skill(&skill) {
        return Err(ApiError::NotFound);
    }
    let points: Vec<HistoryPoint> = skill_history::Entity::find()
        .filter(skill_history::Column::AccountId.eq(caller.id))
        .filter(skill_history::Column::Skill.eq(&skill))
        .order_by_asc(skill_history::Column::RecordedAt)
        .order_by_asc(skill_history::Column::Id)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|row| HistoryPoint {
            interview_id: row.interview_id,
            level: row.score,
            previous_level: row.previous_level,
            positive: row.positive,
            signal_score: row.signal_score,
            recorded_at: row.recorded_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"skill": skill, "history": points})))
}

/// `GET /api/v1/drills`: the drill plan from the caller's skill levels, paced by the target
/// interview date in the settings.
#[utoipa::path(get, path = "/api/v1/drills", tag = "feedback", security(("bearer" = [])),
    responses((status = 200, description = "`{cadence, target_date, slots: [{day, skill, level, trend, questions, minutes, focus, target_level, urgency}]}`", body = Object),
        (status = 401, body = ErrorBody)))]
pub async fn drills(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let settings = super::settings::load_settings(&state.db, caller.id).await?;
    let skills = store::skill_states(&state.db, caller.id).await?;
    let today: NaiveDate = Utc::now().date_naive();
    let drill_plan = plan(
        &state.settings.feedback,
        &skills,
        today,
        settings.target_interview_date,
    );
    Ok(HttpResponse::Ok().json(drill_plan))
}
