//! The machine-readable description of the HTTP API, generated from the handlers' annotations and
//! served at `GET /api/v1/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    admin, auth, feedback, health, interview_events, interviews, me, metrics, policy, privacy,
    resume, settings, usage,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "InterviewCraft API",
        description = "Accounts, privacy rights, settings and administration of the InterviewCraft \
                       voice interview server. Errors always have the body `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout,
        auth::verify_email, auth::verify_email_link, auth::resend_verification,
        me::get_me, me::patch_me, me::delete_me,
        settings::get_settings, settings::patch_settings,
        settings::list_keys, settings::put_key, settings::delete_key,
        privacy::export, policy::get_policy, policy::accept_policy,
        resume::upload, resume::get_resume, resume::patch_resume, resume::delete_resume,
        interviews::create, interviews::list, interviews::get, interviews::end, interviews::offer,
        interview_events::ticket, interview_events::events,
        feedback::scores, feedback::rescore, feedback::skills, feedback::history, feedback::drills,
        admin::search_users, admin::get_user, admin::export_user, admin::erase_user,
        admin::disable_user, admin::enable_user, admin::abuse_decision, admin::list_audit,
        admin::publish_policy,
        usage::account_usage, usage::platform_usage,
        health::health, metrics::metrics,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-up and sign-in; refresh tokens travel in an HttpOnly cookie"),
        (name = "account", description = "The signed-in account: profile, rectification, erasure"),
        (name = "settings", description = "Consents, preferences and bring-your-own API keys"),
        (name = "privacy", description = "Export and the privacy policy"),
        (name = "interviews", description = "Interviews: create, join over WebRTC, end, transcript and latency"),
        (name = "feedback", description = "Scores with evidence after the call, skill levels and history, drill plans"),
        (name = "resume", description = "Resume text and profile; the uploaded file is never stored"),
        (name = "admin", description = "Operator actions; admin role required, every call audited"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the protected routes refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
