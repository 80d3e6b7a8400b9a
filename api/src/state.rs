//! What every request handler shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::{FailedAttempts, JwtKeys, RateLimiter};
use crate::configuration::Settings;
use crate::metrics::Metrics;
use engine::byok_cipher::KeyRing;

/// Shared state, registered as `web::Data<AppState>`.
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub jwt: JwtKeys,
    /// The BYOK master key ring: handlers only encrypt; decryption is for the engine's key lease.
    pub key_ring: KeyRing,
    pub auth_rate_limiter: RateLimiter,
    /// Failed password checks per subject and client (sign-in, and the re-checks of `/me`).
    pub failed_attempts: FailedAttempts,
    pub metrics: Arc<Metrics>,
    /// bcrypt hash of a throwaway password at the configured cost, to verify against when an
    /// e-mail is unknown (equal timing for known and unknown accounts).
    pub dummy_password_hash: String,
    /// The live-interview engine.
    pub engine: engine::engine::EngineHandle,
    /// The in-process fake vendors of keyless local mode (kept alive with the server).
    pub local_vendors: Option<std::sync::Arc<fakes::FakeVendors>>,
    /// Local implementations that are missing here (what the candidate gets instead, and
    /// which package to install), for `/health` and the page.
    pub local_notes: crate::local_vendors::LocalNotes,
    /// The events sockets' tickets and parked receivers (node-local).
    pub events: crate::routes::interview_events::EventHub,
    /// WebRTC settings of new peer connections.
    pub webrtc: engine::transport::WebRtcConfig,
    /// Where uploaded resumes are parsed: capped worker processes, never this one.
    pub resume_sandbox: crate::resume::worker::ExtractionSandbox,
    /// The feedback job (scores ended interviews off the live path).
    pub scoring: crate::feedback::job::ScoringQueue,
    /// Where mail goes (`SMTP_URL`); `None`: no mail, and no mailbox verification required.
    pub mailer: Option<crate::digest::Mailer>,
    /// The address users reach the server at (`PUBLIC_URL`, else the listener's), no trailing
    /// slash: the base of links in e-mails.
    pub public_url: String,
    /// The abuse ledger's HMAC key.
    pub ledger_key: crate::abuse::LedgerKey,
}

impl AppState {
    /// Whether a mailbox must be verified before a free interview: only when mail can be sent.
    pub fn verification_required(&self) -> bool {
        self.mailer.is_some()
    }

    /// The sign-up rules of the settings.
    pub fn signup_rules(&self) -> crate::abuse::SignupRules {
        crate::abuse::SignupRules {
            free_interviews: i32::try_from(self.settings.free_interviews).unwrap_or(i32::MAX),
            signups_per_address_per_day: self.settings.signups_per_ip_per_day,
        }
    }
}
