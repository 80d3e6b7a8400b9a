//! Privacy policy versions: which one is in force, which are announced, and who accepted which.
//!
//! A new version can only be published with an effective date at least
//! [`NOTICE_DAYS`] days ahead, so every change is announced (in `GET /api/v1/me` and
//! `GET /api/v1/policy`) for at least that long before it applies.

use chrono::{DateTime, Duration, Utc};
use engine::AccountId;
use entities::{policy_acceptances, policy_versions};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;

/// Minimum notice, in days, between publishing a policy version and its taking effect.
pub const NOTICE_DAYS: i64 = 14;

/// The version installed with the product, so a fresh server has a policy in force.
pub const INITIAL_VERSION: &str = "2026-11-01";
const INITIAL_TITLE: &str = "InterviewCraft privacy policy";
const INITIAL_SUMMARY: &str = "Passwords are stored only as bcrypt hashes; audio is never stored; \
transcripts, word timestamps (14 days) and usage logs (90 days, no text) are kept as described; \
your own API keys are encrypted; you can export, correct and delete your data at any time.";
const INITIAL_BODY: &str = include_str!("policy_text.md");

/// A policy version as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub version: String,
    pub title: String,
    pub summary: String,
    pub published_at: DateTime<Utc>,
    pub effective_at: DateTime<Utc>,
}

impl From<policy_versions::Model> for PolicyView {
    fn from(model: policy_versions::Model) -> Self {
        Self {
            version: model.version,
            title: model.title,
            summary: model.summary,
            published_at: model.published_at,
            effective_at: model.effective_at,
        }
    }
}

/// Installs the initial policy version if there is none.
pub async fn seed(db: &impl ConnectionTrait) -> Result<(), ApiError> {
    if policy_versions::Entity::find().count(db).await? > 0 {
        return Ok(());
    }
    let effective = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("policy date: {error}")))?
        .with_timezone(&Utc);
    policy_versions::ActiveModel {
        id: Set(Uuid::now_v7()),
        version: Set(INITIAL_VERSION.to_owned()),
        title: Set(INITIAL_TITLE.to_owned()),
        summary: Set(INITIAL_SUMMARY.to_owned()),
        body: Set(INITIAL_BODY.to_owned()),
        published_at: Set(effective),
        effective_at: Set(effective),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The version in force at `now` (the latest whose effective date has passed).
pub async fn current(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Option<policy_versions::Model>, ApiError> {
    Ok(policy_versions::Entity::find()
        .filter(policy_versions::Column::EffectiveAt.lte(now))
        .order_by_desc(policy_versions::Column::EffectiveAt)
        .one(db)
        .await?)
}

/// Versions published but not yet in force, soonest first.
pub async fn upcoming(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<policy_versions::Model>, ApiError> {
    Ok(policy_versions::Entity::find()
        .filter(policy_versions::Column::EffectiveAt.gt(now))
        .order_by_asc(policy_versions::Column::EffectiveAt)
        .all(db)
        .await?)
}

/// Records that an account accepted a version (idempotent).
pub async fn accept(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    version: &policy_versions::Model,
) -> Result<(), ApiError> {
    let already = policy_acceptances::Entity::find()
        .filter(policy_acceptances::Column::AccountId.eq(account_id))
        .filter(policy_acceptances::Column::PolicyVersionId.eq(version.id))
        .one(db)
        .await?;
    if already.is_none() {
        policy_acceptances::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_id: Set(account_id),
            policy_version_id: Set(version.id),
            accepted_at: Set(Utc::now()),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Whether the account has accepted `version`.
pub async fn has_accepted(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    version: &policy_versions::Model,
) -> Result<bool, ApiError> {
    Ok(policy_acceptances::Entity::find()
        .filter(policy_acceptances::Column::AccountId.eq(account_id))
        .filter(policy_acceptances::Column::PolicyVersionId.eq(version.id))
        .count(db)
        .await?
        > 0)
}

/// A new version to publish.
pub struct NewPolicy {
    pub version: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub effective_at: DateTime<Utc>,
}

/// Publishes a version; refuses one that would take effect with less than the required notice.
pub async fn publish(
    db: &impl ConnectionTrait,
    policy: NewPolicy,
    now: DateTime<Utc>,
) -> Result<policy_versions::Model, ApiError> {
    if policy.effective_at < now + Duration::days(NOTICE_DAYS) {
        return Err(ApiError::Validation(format!(
            "effective_at: must be at least {NOTICE_DAYS} days after publication"
        )));
    }
    let valid_version = !policy.version.is_empty()
        && policy.version.len() <= 32
        && policy
            .version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid_version {
        return Err(ApiError::Validation(
            "version: 1 to 32 letters, digits, '.', '-' or '_'".into(),
        ));
    }
    if policy.title.trim().is_empty() || policy.title.len() > 200 {
        return Err(ApiError::Validation("title: 1 to 200 characters".into()));
    }
    if policy.summary.len() > 4_000 || policy.body.trim().is_empty() || policy.body.len() > 200_000
    {
        return Err(ApiError::Validation(
            "summary: at most 4000 characters; body: 1 to 200000 characters".into(),
        ));
    }
    let exists = policy_versions::Entity::find()
        .filter(policy_versions::Column::Version.eq(policy.version.as_str()))
        .count(db)
        .await?
        > 0;
    if exists {
        return Err(ApiError::Conflict {
            code: "policy_version_exists",
            message: "a policy version with this name already exists",
        });
    }
    Ok(policy_versions::ActiveModel {
        id: Set(Uuid::now_v7()),
        version: Set(policy.version),
        title: Set(policy.title.trim().to_owned()),
        summary: Set(policy.summary),
        body: Set(policy.body),
        published_at: Set(now),
        effective_at: Set(policy.effective_at),
    }
    .insert(db)
    .await?)
}
