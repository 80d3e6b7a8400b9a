//! `GET /metrics`: Prometheus (OpenMetrics) text.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus / OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.metrics.observe_engine(&state.engine);
    let body = state
        .metrics
        .encode()
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("encoding metrics: {error}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}
