//! `/api/v1/resume`: upload (parsed in memory; the file is never stored or written to disk),
//! read, rectify and delete the resume's extracted text and derived profile.

use actix_multipart::Multipart;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use entities::resume_profiles;
use futures_util::StreamExt;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use crate::auth::AuthenticatedAccount;
use crate::error::{ApiError, ErrorBody};
use crate::resume::{self, ResumeProfile};
use crate::state::AppState;

/// The stored resume as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResumeView {
    pub source_kind: String,
    pub extracted_text: String,
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<resume_profiles::Model> for ResumeView {
    fn from(model: resume_profiles::Model) -> Self {
        Self {
            source_kind: model.source_kind,
            extracted_text: model.extracted_text,
            profile: model.profile,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// Reads the multipart field `file` into memory, refusing more than `limit` bytes.
async fn read_file_field(
    mut payload: Multipart,
    limit: usize,
) -> Result<(Vec<u8>, Option<String>, Option<String>), ApiError> {
    while let Some(field) = payload.next().await {
        let mut field =
            field.map_err(|_| ApiError::BadRequest("malformed multipart body".into()))?;
        if field.name() != Some("file") {
            // Drain and ignore other fields.
            while let Some(chunk) = field.next().await {
                chunk.map_err(|_| ApiError::BadRequest("malformed multipart body".into()))?;
            }
            continue;
        }
        let content_type = field
            .content_type()
            .map(|mime| mime.essence_str().to_owned());
        let filename = field
            .content_disposition()
            .and_then(|disposition| disposition.get_filename())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::BadRequest("malformed multipart body".into()))?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the resume must be at most {limit} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((bytes, content_type, filename));
    }
    Err(ApiError::Validation(
        "file: a multipart field named `file` is required".into(),
    ))
}

/// `POST /api/v1/resume`.
#[utoipa::path(post, path = "/api/v1/resume", tag = "resume", security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "Field `file`: PDF, DOCX or plain text"),
    responses((status = 201, body = ResumeView), (status = 401, body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Not a PDF, DOCX or text file", body = ErrorBody),
        (status = 422, description = "Corrupt, encrypted, empty, or too complex to read within the worker's limits (`resume_too_complex`)", body = ErrorBody),
        (status = 429, description = "This account's previous upload is still being read", body = ErrorBody),
        (status = 503, description = "Every resume worker is busy", body = ErrorBody)))]
pub async fn upload(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let (bytes, content_type, filename) =
        read_file_field(payload, state.settings.resume_max_bytes).await?;
    // Parsing happens in a capped worker process: a hostile file cannot exhaust this one.
    let extracted = state
        .resume_sandbox
        .extract(caller.id, bytes, content_type, filename)
        .await?;
    let (extracted, profile) = web::block(move || {
        let profile = resume::derive_profile_locally(&extracted.text);
        (extracted, profile)
    })
    .await
    .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("blocking pool: {error}")))?;
    let profile = match claude_profile(&state, &extracted.text).await {
        Some(profile) => profile,
        None => profile,
    };
    let profile_json = serde_json::to_value(&profile)
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("profile json: {error}")))?;
    let now = Utc::now();
    let existing = resume_profiles::Entity::find_by_id(caller.id)
        .one(&state.db)
        .await?;
    let saved = match existing {
        Some(row) => {
            let mut row: resume_profiles::ActiveModel = row.into();
            row.extracted_text = Set(extracted.text);
            row.profile = Set(profile_json);
            row.source_kind = Set(extracted.format.as_str().to_owned());
            row.updated_at = Set(now);
            row.update(&state.db).await?
        }
        None => {
            resume_profiles::ActiveModel {
                account_id: Set(caller.id),
                extracted_text: Set(extracted.text),
                profile: Set(profile_json),
                source_kind: Set(extracted.format.as_str().to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&state.db)
            .await?
        }
    };
    tracing::info!(account_id = %caller.id, format = %saved.source_kind, "resume stored");
    Ok(HttpResponse::Created().json(ResumeView::from(saved)))
}

/// Derives the profile with Claude when a platform Anthropic key is configured; `None` (use the
/// local extractor's profile) without a key or on any failure. The resume text goes only to
/// the vendor; neither it nor the reply is logged.
async fn claude_profile(state: &AppState, text: &str) -> Option<ResumeProfile> {
    use engine::vendors::anthropic::{AnthropicConfig, AnthropicLlm};
    use engine::vendors::{ChatMessage, LanguageModel, LlmRequest};

    let key = state.settings.anthropic_api_key.clone()?;
    let mut config = AnthropicConfig::new(
        state.settings.anthropic_base_url.clone(),
        key,
        state.settings.anthropic_model.clone(),
    );
    config.max_tokens = 800;
    let client = AnthropicLlm::new(config).ok()?;
    let (system, user) = resume::llm_profile_prompt(text);
    let request = LlmRequest {
        system,
        messages: vec![ChatMessage::user(user)],
        max_tokens: Some(800),
        stop_sequences: Vec::new(),
    };
    let stream = client.stream(request).await.ok()?;
    let (reply, _) = tokio::time::timeout(std::time::Duration::from_secs(30), stream.collect())
        .await
        .ok()?;
    match resume::parse_llm_profile(&reply) {
        Ok(profile) => Some(profile),
        Err(_) => {
            tracing::warn!("the model's resume profile was unusable; using the local extractor");
            None
        }
    }
}

/// `GET /api/v1/resume`.
#[utoipa::path(get, path = "/api/v1/resume", tag = "resume", security(("bearer" = [])),
    responses((status = 200, body = ResumeView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_resume(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let row = resume_profiles::Entity::find_by_id(caller.id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(ResumeView::from(row)))
}

/// `PATCH /api/v1/resume`: rectify the derived profile (absent fields stay as they are).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    role: Option<String>,
    skills: Option<Vec<String>>,
    experience_summary: Option<String>,
    years_experience: Option<u32>,
}

#[utoipa::path(patch, path = "/api/v1/resume", tag = "resume", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = ResumeView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn patch_resume(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let row = resume_profiles::Entity::find_by_id(caller.id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut profile: ResumeProfile =
        serde_json::from_value(row.profile.clone()).unwrap_or_default();
    let patch = body.into_inner();
    if let Some(role) = patch.role {
        profile.role = Some(role.trim().to_owned()).filter(|r| !r.is_empty());
    }
    if let Some(skills) = patch.skills {
        profile.skills = skills.into_iter().map(|s| s.trim().to_owned()).collect();
    }
    if let Some(summary) = patch.experience_summary {
        profile.experience_summary = summary.trim().to_owned();
    }
    if let Some(years) = patch.years_experience {
        profile.years_experience = Some(years);
    }
    profile
        .validate()
        .map_err(|message| ApiError::Validation(format!("profile: {message}")))?;
    let mut active: resume_profiles::ActiveModel = row.into();
    active.profile = Set(serde_json::to_value(&profile)
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("profile json: {error}")))?);
    active.updated_at = Set(Utc::now());
    let saved = active.update(&state.db).await?;
    Ok(HttpResponse::Ok().json(ResumeView::from(saved)))
}

/// `DELETE /api/v1/resume`.
#[utoipa::path(delete, path = "/api/v1/resume", tag = "resume", security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_resume(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let deleted = resume_profiles::Entity::delete_by_id(caller.id)
        .exec(&state.db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}
