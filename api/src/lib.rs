//! The InterviewCraft HTTP server as a library; `main.rs` is a thin command-line front.
//!
//! Layout (after zero-to-production): [`configuration`] (layered typed settings),
//! [`startup::Application`] (binds its own listener, port 0 allowed, and reports its port),
//! [`routes`] mirroring the URL tree, [`domain`] validated types, [`auth`] sign-in machinery,
//! [`error::ApiError`] mapped to HTTP in one place, and [`telemetry`] for logs that never carry
//! personal data.

pub mod abuse;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod configuration;
pub mod digest;
pub mod domain;
pub mod error;
pub mod feedback;
pub mod free_interviews;
pub mod interviews;
pub mod local_vendors;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod policy;
pub mod privacy;
pub mod protocol_errors;
pub mod resume;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod verification;

/// Installs the process-wide rustls crypto provider (ring). Call once before any TLS use; a second
/// call is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
