//! HTTP routes; modules mirror the URL tree.

pub mod auth;
pub mod health;
pub mod me;
pub mod metrics;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::middleware::auth_rate_limit;

/// Mounts every route.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/health").get(health::health))
        .service(web::resource("/metrics").get(metrics::metrics))
        .service(
            web::scope("/api/v1")
                .service(
                    web::scope("/auth")
                        .wrap(from_fn(auth_rate_limit))
                        .service(web::resource("/register").post(auth::register))
                        .service(web::resource("/login").post(auth::login))
                        .service(web::resource("/refresh").post(auth::refresh))
                        .service(web::resource("/logout").post(auth::logout)),
                )
                .service(web::resource("/me").get(me::get_me)),
        );
}
