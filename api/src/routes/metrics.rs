//! `GET /metrics`: Prometheus (OpenMetrics) text.

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus / OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut body = state
        .metrics
        .encode()
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("encoding metrics: {error}")))?;
    // The engine's live actors and per-turn latency, before the closing `# EOF`.
    let mut engine_text = String::from(
        "# HELP interviewcraft_live_actors Live actors by type (returns to zero when interviews end).\n\
         # TYPE interviewcraft_live_actors gauge\n",
    );
    for (kind, count) in engine::actors::live_counts() {
        engine_text.push_str(&format!(
            "interviewcraft_live_actors{{kind=\"{kind}\"}} {count}\n"
        ));
    }
    engine_text.push_str(&format!(
        "# HELP interviewcraft_live_interviews Live interviews on this node.\n\
         # TYPE interviewcraft_live_interviews gauge\ninterviewcraft_live_interviews {}\n",
        state.engine.live().len()
    ));
    engine_text.push_str(&engine::latency::render_prometheus());
    if let Some(eof) = body.rfind("# EOF") {
        body.insert_str(eof, &engine_text);
    } else {
        body.push_str(&engine_text);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}
