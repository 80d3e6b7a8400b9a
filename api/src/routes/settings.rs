//! `/api/v1/settings`: consents and preferences (the right to object), and BYOK API keys.
//!
//! Every consent change records when it happened, on the settings row and as an appended
//! `consent_events` row, so the history is part of the export.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use engine::AccountId;
use entities::{account_settings, byok_keys, consent_events, skill_history};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AuthenticatedAccount;
use crate::domain::{ApiKey, ValidationError, parse_provider};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Interviewer voices a user can prefer (mapped to vendor voices by the engine's configuration).
pub const INTERVIEWER_VOICES: &[&str] = &["default", "warm", "neutral", "brisk"];

#[derive(Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    pub digest_opt_in: bool,
    pub digest_opt_in_changed_at: DateTime<Utc>,
    pub training_opt_in: bool,
    pub training_opt_in_changed_at: DateTime<Utc>,
    pub skill_tracking: bool,
    pub skill_tracking_changed_at: DateTime<Utc>,
    pub interviewer_voice: String,
    pub updated_at: DateTime<Utc>,
    /// The date of the candidate's real interview (paces the drill plan), or null.
    pub target_interview_date: Option<chrono::NaiveDate>,
}

impl From<account_settings::Model> for SettingsView {
    fn from(model: account_settings::Model) -> Self {
        Self {
            digest_opt_in: model.digest_opt_in,
            digest_opt_in_changed_at: model.digest_opt_in_changed_at,
            training_opt_in: model.training_opt_in,
            training_opt_in_changed_at: model.training_opt_in_changed_at,
            skill_tracking: model.skill_tracking,
            skill_tracking_changed_at: model.skill_tracking_changed_at,
            interviewer_voice: model
                .interviewer_voice
                .unwrap_or_else(|| "default".to_owned()),
            updated_at: model.updated_at,
            target_interview_date: model.target_interview_date,
        }
    }
}

/// The account's settings row (every account has one from registration on).
pub async fn load_settings(
    db: &impl ConnectionTrait,
    account_id: AccountId,
) -> Result<account_settings::Model, ApiError> {
    account_settings::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .ok_or_else(ApiError::unauthorized)
}

#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", security(("bearer" = [])), responses((status = 200, body = SettingsView), (status = 401, description = "Missing or invalid access token", body = ErrorBody)))]
pub async fn get_settings(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let settings = load_settings(&state.db, caller.id).await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(settings)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    digest_opt_in: Option<bool>,
    training_opt_in: Option<bool>,
    skill_tracking: Option<bool>,
    interviewer_voice: Option<String>,
    /// `YYYY-MM-DD`, or null to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Date)]
    target_interview_date: Option<Option<chrono::NaiveDate>>,
}

/// A field that is present (possibly null) as `Some`, absent as `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /api/v1/settings`. Turning `skill_tracking` off is an objection: new scores stop being
/// added to the history and the existing history is deleted.
#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings", security(("bearer" = [])), request_body = SettingsPatch,
    responses((status = 200, body = SettingsView), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 422, description = "Invalid input", body = ErrorBody)))]
pub async fn patch_settings(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    body: web::Json<SettingsPatch>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    if let Some(voice) = &patch.interviewer_voice
        && !INTERVIEWER_VOICES.contains(&voice.as_str())
    {
        return Err(ValidationError::new(
            "interviewer_voice",
            "must be one of default, warm, neutral, brisk",
        )
        .into());
    }
    let now = Utc::now();
    let txn = engine::database::begin_write(&state.db).await?;
    let current = load_settings(&txn, caller.id).await?;
    let mut row: account_settings::ActiveModel = current.clone().into();
    let mut changes: Vec<(&'static str, bool)> = Vec::new();
    if let Some(value) = patch.digest_opt_in
        && value != current.digest_opt_in
    {
        row.digest_opt_in = Set(value);
        row.digest_opt_in_changed_at = Set(now);
        changes.push(("digest", value));
    }
    if let Some(value) = patch.training_opt_in
        && value != current.training_opt_in
    {
        row.training_opt_in = Set(value);
        row.training_opt_in_changed_at = Set(now);
        changes.push(("training", value));
    }
    if let Some(value) = patch.skill_tracking
        && value != current.skill_tracking
    {
        row.skill_tracking = Set(value);
        row.skill_tracking_changed_at = Set(now);
        changes.push(("skill_tracking", value));
        if !value {
            skill_history::Entity::delete_many()
                .filter(skill_history::Column::AccountId.eq(caller.id))
                .exec(&txn)
                .await?;
            entities::skill_levels::Entity::delete_many()
                .filter(entities::skill_levels::Column::AccountId.eq(caller.id))
                .exec(&txn)
                .await?;
        }
    }
    if let Some(date) = patch.target_interview_date {
        row.target_interview_date = Set(date);
    }
    if let Some(voice) = patch.interviewer_voice {
        row.interviewer_voice = Set((voice != "default").then_some(voice));
    }
    row.updated_at = Set(now);
    let updated = row.update(&txn).await?;
    for (purpose, granted) in &changes {
        consent_events::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(caller.id),
            purpose: Set((*purpose).to_owned()),
            granted: Set(*granted),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    if !changes.is_empty() {
        tracing::info!(account_id = %caller.id, changes = changes.len(), "consents changed");
    }
    Ok(HttpResponse::Ok().json(SettingsView::from(updated)))
}

/// A stored key as listed: never more than its last four characters.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub provider: String,
    pub last_four: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<byok_keys::Model> for KeyView {
    fn from(model: byok_keys::Model) -> Self {
        Self {
            provider: model.provider,
            last_four: model.last_four,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// The caller's stored keys.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

#[utoipa::path(get, path = "/api/v1/settings/keys", tag = "settings", security(("bearer" = [])), responses((status = 200, body = KeyList), (status = 401, description = "Missing or invalid access token", body = ErrorBody)))]
pub async fn list_keys(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let keys: Vec<KeyView> = byok_keys::Entity::find()
        .filter(byok_keys::Column::AccountId.eq(caller.id))
        .order_by_asc(byok_keys::Column::Provider)
        .all(&state.db)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(HttpResponse::Ok().json(KeyList { keys }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutKey {
    /// 20 to 512 printable ASCII characters without spaces.
    #[schema(min_length = 20, max_length = 512, pattern = "^[!-~]{20,512}$")]
    api_key: String,
}

/// `PUT /api/v1/settings/keys/{provider}`: stores (or replaces) the key, encrypted.
#[utoipa::path(put, path = "/api/v1/settings/keys/{provider}", tag = "settings", security(("bearer" = [])), request_body = PutKey,
    params(("provider" = String, Path, description = "anthropic, deepgram or elevenlabs", pattern = "^(anthropic|deepgram|elevenlabs)$")),
    responses((status = 200, body = KeyView), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 422, description = "Unknown provider or implausible key", body = ErrorBody)))]
pub async fn put_key(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    provider: web::Path<String>,
    body: web::Json<PutKey>,
) -> Result<HttpResponse, ApiError> {
    let provider = parse_provider(&provider)?;
    let key = ApiKey::parse(body.into_inner().api_key)?;
    let encrypted = state
        .key_ring
        .encrypt(caller.id, provider.as_str(), key.secret())
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("encrypting a key: {error}")))?;
    let now = Utc::now();
    let txn = engine::database::begin_write(&state.db).await?;
    let existing = byok_keys::Entity::find()
        .filter(byok_keys::Column::AccountId.eq(caller.id))
        .filter(byok_keys::Column::Provider.eq(provider.as_str()))
        .one(&txn)
        .await?;
    let replaced = existing.is_some();
    let saved = match existing {
        Some(row) => {
            let mut row: byok_keys::ActiveModel = row.into();
            row.ciphertext = Set(encrypted.ciphertext);
            row.nonce = Set(encrypted.nonce);
            row.key_id = Set(encrypted.key_id);
            row.last_four = Set(key.last_four());
            row.updated_at = Set(now);
            row.update(&txn).await?
        }
        None => {
            byok_keys::ActiveModel {
                id: Set(Uuid::now_v7()),
                account_id: Set(caller.id),
                provider: Set(provider.as_str().to_owned()),
                ciphertext: Set(encrypted.ciphertext),
                nonce: Set(encrypted.nonce),
                key_id: Set(encrypted.key_id),
                last_four: Set(key.last_four()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?
        }
    };
    txn.commit().await?;
    if replaced {
        // The replaced key leaves every live interview at once (platform key, or the end).
        state.engine.revoke_keys(caller.id).await;
    }
    tracing::info!(account_id = %caller.id, provider = provider.as_str(), "API key stored");
    Ok(HttpResponse::Ok().json(KeyView::from(saved)))
}

/// `DELETE /api/v1/settings/keys/{provider}`.
#[utoipa::path(delete, path = "/api/v1/settings/keys/{provider}", tag = "settings", security(("bearer" = [])),
    params(("provider" = String, Path, description = "anthropic, deepgram or elevenlabs", pattern = "^(anthropic|deepgram|elevenlabs)$")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 404, description = "No key for this provider", body = ErrorBody)))]
pub async fn delete_key(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    provider: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = parse_provider(&provider)?;
    let deleted = byok_keys::Entity::delete_many()
        .filter(byok_keys::Column::AccountId.eq(caller.id))
        .filter(byok_keys::Column::Provider.eq(provider.as_str()))
        .exec(&state.db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    // The deleted key leaves every live interview at once (platform key, or the end).
    state.engine.revoke_keys(caller.id).await;
    Ok(HttpResponse::NoContent().finish())
}
