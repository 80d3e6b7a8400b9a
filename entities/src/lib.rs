//! sea-orm entities of InterviewCraft: one file per table, plus a prelude.
//!
//! The schema itself lives in the `migrations` crate (append-only); these entities mirror it.
//! What each table holds of an account (and so what export and erasure cover) is described once,
//! in `api::accounts::tables`; a test compares that list with the database.
//! Columns that hold personal data are documented as such; no table has a column for audio, and
//! `usage_log` has no text column by design.

pub mod abuse_ledger;
pub mod abuse_reviews;
pub mod abuse_signals;
pub mod account_settings;
pub mod accounts;
pub mod admin_audit;
pub mod answer_feedback;
pub mod answer_scores;
pub mod byok_keys;
pub mod consent_events;
pub mod digest_marks;
pub mod email_verifications;
pub mod interview_quotas;
pub mod interviews;
pub mod policy_acceptances;
pub mod policy_versions;
pub mod refresh_tokens;
pub mod resume_profiles;
pub mod scoring_jobs;
pub mod signup_ip_counts;
pub mod skill_history;
pub mod skill_levels;
pub mod transcript_segments;
pub mod transcript_words;
pub mod turn_metrics;
pub mod usage_log;

pub mod ids;
pub mod prelude;

/// Rows the tests of several crates set up the same way (feature `test-fixtures`).
#[cfg(feature = "test-fixtures")]
pub mod fixtures;
