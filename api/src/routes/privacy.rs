//! `GET /api/v1/privacy/export`: everything held about the caller, as a JSON download.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use engine::AccountId;

use crate::auth::AuthenticatedAccount;
use crate::error::{ApiError, ErrorBody};
use crate::privacy::export_account;
use crate::state::AppState;

/// The export as an attachment named after the date.
pub fn export_response(document: serde_json::Value, account_id: AccountId) -> HttpResponse {
    let filename = format!(
        "interviewcraft-export-{}-{}.json",
        &account_id.as_uuid().simple().to_string()[..8],
        Utc::now().format("%Y-%m-%d")
    );
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .json(document)
}

#[utoipa::path(get, path = "/api/v1/privacy/export", tag = "privacy", security(("bearer" = [])),
    responses((status = 200, description = "Everything held about the account, one array per table, as a download", body = Object), (status = 401, description = "Missing or invalid access token", body = ErrorBody)))]
pub async fn export(
    state: web::Data<AppState>,
    caller: AuthenticatedAccount,
) -> Result<HttpResponse, ApiError> {
    let document = export_account(&state.db, caller.id)
        .await
        .map_err(|error| match error {
            ApiError::NotFound => ApiError::unauthorized(),
            other => other,
        })?;
    tracing::info!(account_id = %caller.id, "data export");
    Ok(export_response(document, caller.id))
}
