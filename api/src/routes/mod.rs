//! HTTP routes; modules mirror the URL tree.

pub mod admin;
pub mod auth;
pub mod feedback;
pub mod health;
pub mod interview_events;
pub mod interviews;
pub mod me;
pub mod metrics;
pub mod page;
pub mod policy;
pub mod privacy;
pub mod resume;
pub mod settings;
pub mod usage;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::middleware::auth_rate_limit;

/// Mounts every route.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/health").get(health::health))
        .service(web::resource("/metrics").get(metrics::metrics))
        .service(web::resource("/").get(page::index).head(page::index))
        .service(
            web::resource("/static/{file}")
                .get(page::asset)
                .head(page::asset),
        )
        .service(
            web::scope("/api/v1")
                .service(
                    web::scope("/auth")
                        .wrap(from_fn(auth_rate_limit))
                        .service(web::resource("/register").post(auth::register))
                        .service(web::resource("/login").post(auth::login))
                        .service(web::resource("/refresh").post(auth::refresh))
                        .service(web::resource("/logout").post(auth::logout))
                        .service(
                            web::resource("/verify-email")
                                .get(auth::verify_email_link)
                                .post(auth::verify_email),
                        )
                        .service(web::resource("/verification").post(auth::resend_verification)),
                )
                .service(
                    web::resource("/me")
                        .get(me::get_me)
                        .patch(me::patch_me)
                        .delete(me::delete_me),
                )
                .service(
                    web::resource("/settings")
                        .get(settings::get_settings)
                        .patch(settings::patch_settings),
                )
                .service(web::resource("/settings/keys").get(settings::list_keys))
                .service(
                    web::resource("/settings/keys/{provider}")
                        .put(settings::put_key)
                        .delete(settings::delete_key),
                )
                .service(web::resource("/openapi.json").get(crate::openapi::openapi_json))
                .service(
                    web::resource("/interviews")
                        .post(interviews::create)
                        .get(interviews::list),
                )
                .service(web::resource("/interviews/{id}").get(interviews::get))
                .service(web::resource("/interviews/{id}/end").post(interviews::end))
                .service(web::resource("/interviews/{id}/offer").post(interviews::offer))
                .service(
                    web::resource("/interviews/{id}/events-ticket").post(interview_events::ticket),
                )
                .service(web::resource("/interviews/{id}/events").get(interview_events::events))
                .service(web::resource("/interviews/{id}/scores").get(feedback::scores))
                .service(web::resource("/interviews/{id}/score").post(feedback::rescore))
                .service(web::resource("/skills").get(feedback::skills))
                .service(web::resource("/skills/{skill}/history").get(feedback::history))
                .service(web::resource("/drills").get(feedback::drills))
                .service(web::resource("/privacy/export").get(privacy::export))
                .service(web::resource("/usage").get(usage::account_usage))
                .service(
                    web::resource("/resume")
                        .post(resume::upload)
                        .get(resume::get_resume)
                        .patch(resume::patch_resume)
                        .delete(resume::delete_resume),
                )
                .service(web::resource("/policy").get(policy::get_policy))
                .service(web::resource("/policy/accept").post(policy::accept_policy))
                .service(
                    web::scope("/admin")
                        .service(web::resource("/users").get(admin::search_users))
                        .service(
                            web::resource("/users/{id}")
                                .get(admin::get_user)
                                .delete(admin::erase_user),
                        )
                        .service(web::resource("/users/{id}/export").get(admin::export_user))
                        .service(web::resource("/users/{id}/disable").post(admin::disable_user))
                        .service(web::resource("/users/{id}/enable").post(admin::enable_user))
                        .service(
                            web::resource("/users/{id}/abuse-decision").post(admin::abuse_decision),
                        )
                        .service(web::resource("/audit").get(admin::list_audit))
                        .service(web::resource("/usage").get(usage::platform_usage))
                        .service(web::resource("/policies").post(admin::publish_policy)),
                ),
        );
}
