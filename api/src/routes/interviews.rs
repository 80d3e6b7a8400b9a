//! `/api/v1/interviews`: create, list, read (transcript and latency breakdown), end, and join
//! over WebRTC (`offer`: the browser's session description in, the answer out).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use engine::actors::interview::{EndReason, StopMode};
use engine::transport::{SessionDescription, accept_offer};
use engine::{InterviewId, interview_store};
use entities::interviews::{self, InterviewKind, InterviewStatus};
use entities::{transcript_segments, turn_metrics};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::AuthenticatedAccount;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInterview {
    /// `behavioral`, `system_design` or `technical`.
    #[schema(value_type = String, example = "behavioral", pattern = "^(behavioral|system_design|technical)$")]
    kind: InterviewKind,
    #[schema(max_length = 100)]
    target_role: Option<String>,
    #[schema(max_length = 100)]
    company: Option<String>,
    /// 5 to 60 minutes; 20 by default.
    #[schema(minimum = 5, maximum = 60)]
    length_minutes: Option<i32>,
    /// A drill: the microskill to practise (see `GET /api/v1/drills`); the interviewer's prompt
    /// names it.
    #[schema(example = "star_structure", value_type = Option<String>, pattern = "^(capacity_estimation|tradeoff_analysis|component_design|api_design|scalability_thinking|failure_modes|star_structure|quantifiable_results|ownership_signal|conflict_resolution|leadership_stories|mentoring_signal|conciseness|filler_word_control|pacing|confidence_under_pressure|complexity_analysis|edge_cases|testing_approach|code_review_reasoning|anchoring|value_articulation|counter_strategy|emotional_control)$")]
    focus_skill: Option<String>,
}

/// An interview as listed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InterviewView {
    #[schema(value_type = Uuid)]
    pub id: InterviewId,
    #[schema(value_type = String)]
    pub kind: InterviewKind,
    pub target_role: Option<String>,
    pub company: Option<String>,
    pub length_minutes: i32,
    #[schema(value_type = String)]
    pub status: InterviewStatus,
    pub live: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub focus_skill: Option<String>,
}

fn view(state: &AppState, model: interviews::Model) -> InterviewView {
    InterviewView {
        live: state.engine.is_live(model.id),
        id: model.id,
        kind: model.kind,
        target_role: model.target_role,
        company: model.company,
        length_minutes: model.planned_minutes,
        status: model.status,
        created_at: model.created_at,
        started_at: model.started_at,
        ended_at: model.ended_at,
        end_reason: model.end_reason,
        focus_skill: model.focus_skill,
    }
}

fn short_text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > 100 || value.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{field}: at most 100 characters, one line"
        )));
    }
    Ok(Some(value))
}

/// `POST /api/v1/interviews`: creates an interview. A free interview is only taken when it
/// starts on platform keys (`offer`; see `crate::free_interviews`).
#[utoipa::path(post, path = "/api/v1/interviews", tag = "interviews", security(("bearer" = [])),
    request_body = CreateInterview,
    responses((status = 201, body = InterviewView), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    body: web::Json<CreateInterview>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let length = body.length_minutes.unwrap_or(20);
    if !(5..=60).contains(&length) {
        return Err(ApiError::Validation("length_minutes: 5 to 60".into()));
    }
    let target_role = short_text("target_role", body.target_role)?;
    let company = short_text("company", body.company)?;
    if let Some(skill) = &body.focus_skill
        && !engine::feedback::skills::is_skill(skill)
    {
        return Err(ApiError::Validation(
            "focus_skill: one of the 24 microskills (see GET /api/v1/skills)".into(),
        ));
    }
    let interview = interviews::NewInterview {
        id: InterviewId::now_v7(),
        account_id: caller.id,
        kind: body.kind,
        target_role,
        company,
        planned_minutes: length,
        focus_skill: body.focus_skill,
    }
    .row(Utc::now())
    .insert(&state.db)
    .await?;
    Ok(HttpResponse::Created().json(view(&state, interview)))
}

/// The caller's interview, or 404 (someone else's is indistinguishable from none).
pub(crate) async fn own(
    state: &AppState,
    caller: &AuthenticatedAccount,
    id: InterviewId,
) -> Result<interviews::Model, ApiError> {
    interviews::Entity::find_by_id(id)
        .filter(interviews::Column::AccountId.eq(caller.id))
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET /api/v1/interviews`: the caller's interviews, newest first.
#[utoipa::path(get, path = "/api/v1/interviews", tag = "interviews", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let rows = interviews::Entity::find()
        .filter(interviews::Column::AccountId.eq(caller.id))
        .order_by_desc(interviews::Column::CreatedAt)
        .all(&state.db)
        .await?;
    let items: Vec<InterviewView> = rows.into_iter().map(|row| view(&state, row)).collect();
    Ok(HttpResponse::Ok().json(json!({ "interviews": items })))
}

/// `GET /api/v1/interviews/{id}`: the interview with its transcript and per-turn latency.
#[utoipa::path(get, path = "/api/v1/interviews/{id}", tag = "interviews", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    id: web::Path<InterviewId>,
) -> Result<HttpResponse, ApiError> {
    let interview = own(&state, &caller, *id).await?;
    let segments = transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.eq(interview.id))
        .order_by_asc(transcript_segments::Column::Seq)
        .all(&state.db)
        .await?;
    let turns = turn_metrics::Entity::find()
        .filter(turn_metrics::Column::InterviewId.eq(interview.id))
        .order_by_asc(turn_metrics::Column::TurnIndex)
        .all(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "interview": view(&state, interview),
        "transcript": segments,
        "turns": turns,
    })))
}

/// `POST /api/v1/interviews/{id}/end`.
#[utoipa::path(post, path = "/api/v1/interviews/{id}/end", tag = "interviews", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 202, description = "Ending"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn end(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    id: web::Path<InterviewId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let interview = own(&state, &caller, id).await?;
    // Live here: the interview ends itself (and stores its end). Otherwise the row is ended
    // directly, through the same store (an already ended interview keeps its first end).
    if !state
        .engine
        .end_interview(id, EndReason::CandidateEnded, StopMode::Graceful)
        && interview.status != InterviewStatus::Ended
    {
        interview_store::mark_ended(&state.db, id, EndReason::CandidateEnded, Utc::now()).await?;
    }
    Ok(HttpResponse::Accepted().json(json!({"id": interview.id, "ending": true})))
}

/// `POST /api/v1/interviews/{id}/offer`: the browser's WebRTC offer; starts the interview and
/// answers. One offer per interview; an ended or someone else's interview is refused. An
/// interview on platform keys takes one free interview here (given back if it never starts:
/// see `crate::free_interviews`); none left → 402 `free_interviews_exhausted`.
#[utoipa::path(post, path = "/api/v1/interviews/{id}/offer", tag = "interviews", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Object,
    responses((status = 200, description = "The answer `{type: \"answer\", sdp}`", body = Object),
        (status = 400, description = "Malformed SDP or no audio", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, description = "No free interviews left for an interview on platform keys (`free_interviews_exhausted`)", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Already started or ended", body = ErrorBody),
        (status = 503, description = "At capacity, or the server is shutting down", body = ErrorBody)))]
pub async fn offer(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    id: web::Path<InterviewId>,
    body: web::Json<SessionDescription>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let interview = own(&state, &caller, id).await?;
    if interview.status != InterviewStatus::Created || state.engine.is_live(id) {
        return Err(ApiError::Conflict {
            code: "interview_not_startable",
            message: "this interview has already started or ended",
        });
    }
    let (session, answer) = accept_offer(&state.webrtc, &body).await?;
    let plan = crate::interviews::plan_for(&state.db, &interview).await?;
    let (link, control) = session.into_link();
    let stats = control.stats().clone();
    let charge = crate::free_interviews::Charge::default();
    let gate = crate::free_interviews::gate(&state, caller.id, charge.clone());
    match state
        .engine
        .start_interview_gated(id, caller.id, plan, link, Some(gate))
        .await
    {
        // Kept for the first events socket, so it sees the interview from its start.
        Ok(events) => {
            state.events.park(id, events);
            if charge.taken() {
                crate::free_interviews::watch_charged_start(&state, id, caller.id, stats);
            }
        }
        Err(error) => {
            control.close().await;
            return Err(error.into());
        }
    }
    tracing::info!(interview_id = %interview.id, "interview joined over WebRTC");
    Ok(HttpResponse::Ok().json(answer))
}
