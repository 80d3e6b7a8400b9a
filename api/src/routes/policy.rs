//! `/api/v1/policy`: the privacy policy in force, announced versions, and acceptance.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use entities::policy_versions;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;

use crate::auth::AuthenticatedAccount;
use crate::error::{ApiError, ErrorBody};
use crate::policy::{self, PolicyView};
use crate::state::AppState;

/// `GET /api/v1/policy` (public): the current version with its text, and upcoming versions.
#[utoipa::path(get, path = "/api/v1/policy", tag = "privacy", responses((status = 200, description = "Current and upcoming policy versions", body = Object)))]
pub async fn get_policy(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let current = policy::current(&state.db, now).await?;
    let upcoming: Vec<_> = policy::upcoming(&state.db, now)
        .await?
        .into_iter()
        .map(|version| {
            let body = version.body.clone();
            json!({"version": PolicyView::from(version), "body": body})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "current": current.map(|version| {
            let body = version.body.clone();
            json!({"version": PolicyView::from(version), "body": body})
        }),
        "upcoming": upcoming,
        "notice_days": policy::NOTICE_DAYS,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    version: String,
}

/// `POST /api/v1/policy/accept` `{version}`: records the caller's acceptance.
#[utoipa::path(post, path = "/api/v1/policy/accept", tag = "privacy", security(("bearer" = [])), request_body = AcceptRequest,
    responses((status = 200, body = Object), (status = 401, description = "Missing or invalid access token", body = ErrorBody), (status = 404, description = "Unknown version", body = ErrorBody)))]
pub async fn accept_policy(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
    body: web::Json<AcceptRequest>,
) -> Result<HttpResponse, ApiError> {
    let version = policy_versions::Entity::find()
        .filter(policy_versions::Column::Version.eq(body.version.as_str()))
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound)?;
    policy::accept(&state.db, caller.id, &version).await?;
    Ok(HttpResponse::Ok().json(json!({"accepted": version.version})))
}
