//! The entities under short names: `use entities::prelude::*;`.

pub use super::abuse_ledger::Entity as AbuseLedger;
pub use super::abuse_reviews::Entity as AbuseReviews;
pub use super::abuse_signals::Entity as AbuseSignals;
pub use super::account_settings::Entity as AccountSettings;
pub use super::accounts::Entity as Accounts;
pub use super::admin_audit::Entity as AdminAudit;
pub use super::answer_feedback::Entity as AnswerFeedback;
pub use super::answer_scores::Entity as AnswerScores;
pub use super::byok_keys::Entity as ByokKeys;
pub use super::consent_events::Entity as ConsentEvents;
pub use super::digest_marks::Entity as DigestMarks;
pub use super::email_verifications::Entity as EmailVerifications;
pub use super::interview_quotas::Entity as InterviewQuotas;
pub use super::interviews::Entity as Interviews;
pub use super::policy_acceptances::Entity as PolicyAcceptances;
pub use super::policy_versions::Entity as PolicyVersions;
pub use super::refresh_tokens::Entity as RefreshTokens;
pub use super::resume_profiles::Entity as ResumeProfiles;
pub use super::scoring_jobs::Entity as ScoringJobs;
pub use super::signup_ip_counts::Entity as SignupIpCounts;
pub use super::skill_history::Entity as SkillHistory;
pub use super::skill_levels::Entity as SkillLevels;
pub use super::transcript_segments::Entity as TranscriptSegments;
pub use super::transcript_words::Entity as TranscriptWords;
pub use super::turn_metrics::Entity as TurnMetrics;
pub use super::usage_log::Entity as UsageLog;
