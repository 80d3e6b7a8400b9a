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
    modifiers(&BearerAuth, &CommonErrors),
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

/// Documents the error answers that come from how a request is read, not from what a handler
/// decides, on every operation they can reach, so the document and the server agree
/// (schemathesis checks both in CI: `.ci/schemathesis`): with a request body, 400 (malformed
/// JSON or multipart), 413 (too large), 415 (wrong content type) and 422 (fields that break a
/// rule); with path or query parameters, 422 (a value that does not parse); with the bearer
/// scheme, 401. A handler's own description of a status wins.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Operation, ParameterIn};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let add = |operation: &mut Operation| {
            let mut statuses: Vec<(&str, &str)> = Vec::new();
            if operation.request_body.is_some() {
                statuses.extend([
                    ("400", "The body is not well-formed JSON (or multipart)"),
                    ("413", "The body is larger than the limit"),
                    ("415", "The body has the wrong content type"),
                    (
                        "422",
                        "A field is missing, unknown, of the wrong type or breaks a rule",
                    ),
                ]);
            }
            let parameters = operation.parameters.as_deref().unwrap_or_default();
            if parameters
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query))
            {
                statuses.push((
                    "422",
                    "A path or query parameter does not parse or is out of range",
                ));
            }
            if operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty())
            {
                statuses.push(("401", "Missing, expired or invalid access token"));
            }
            for (status, description) in statuses {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            }
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add(operation);
            }
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
