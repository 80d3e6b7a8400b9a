//! sea-orm entities of InterviewCraft: one file per table, plus a prelude.
//!
//! The schema itself lives in the `migrations` crate (append-only); these entities mirror it.
//! Columns that hold personal data are documented as such; no table has a column for audio, and
//! `usage_log` has no text column by design.

pub mod abuse_signals;
pub mod account_settings;
pub mod accounts;
pub mod admin_audit;
pub mod answer_feedback;
pub mod answer_scores;
pub mod byok_cipher;
pub mod byok_keys;
pub mod consent_events;
pub mod digest_marks;
pub mod interview_quotas;
pub mod interviews;
pub mod policy_acceptances;
pub mod policy_versions;
pub mod refresh_tokens;
pub mod resume_profiles;
pub mod scoring_jobs;
pub mod skill_history;
pub mod skill_levels;
pub mod transcript_segments;
pub mod transcript_words;
pub mod turn_metrics;
pub mod usage_log;

pub mod prelude;

/// Every table of the schema, by name. Tests use it to prove that erasure and export cover every
/// table, so a new table cannot be forgotten: add it here when you add its migration.
pub const ALL_TABLES: &[&str] = &[
    "accounts",
    "refresh_tokens",
    "account_settings",
    "consent_events",
    "byok_keys",
    "resume_profiles",
    "policy_versions",
    "policy_acceptances",
    "interviews",
    "transcript_segments",
    "transcript_words",
    "turn_metrics",
    "answer_scores",
    "skill_history",
    "scoring_jobs",
    "answer_feedback",
    "skill_levels",
    "usage_log",
    "interview_quotas",
    "abuse_signals",
    "digest_marks",
    "admin_audit",
];
