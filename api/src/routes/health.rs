//! `GET /health`: liveness, database reachability, and what serves each vendor kind.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Up, with database reachability", body = Object), (status = 503, description = "Database unreachable", body = Object)))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let backend = match state.db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "postgres",
        sea_orm::DatabaseBackend::Sqlite => "sqlite",
        _ => "other",
    };
    let reachable = state.db.ping().await.is_ok();
    state.metrics.database_up.set(i64::from(reachable));
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(json!({
        "status": if reachable { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "node_id": state.settings.node_id,
        "database": {
            "backend": backend,
            "reachable": reachable,
        },
        // What serves each vendor kind for accounts without their own keys: the vendor's name,
        // "local" (keyless local mode), "fake" (the protocol fakes) or "unavailable".
        "vendors": state.engine.modes(),
        // Local implementations missing on this machine: what runs instead, what to install.
        "local_notes": state.local_notes.snapshot(),
        "live_interviews": state.engine.live().len(),
    }))
}
