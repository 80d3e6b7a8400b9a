//! The rights of access, portability and erasure over everything held about an account.
//!
//! [`export_account`] and [`erase_account`] each name every table of the schema; the tests compare
//! both against `entities::ALL_TABLES` (which another test compares against the database), so a
//! new table cannot be forgotten by either.

use chrono::Utc;
use entities::prelude::*;
use entities::{
    abuse_signals, account_settings, accounts, admin_audit, answer_feedback, answer_scores,
    byok_keys, consent_events, digest_marks, interview_quotas, interviews, policy_acceptances,
    policy_versions, refresh_tokens, resume_profiles, scoring_jobs, skill_history, skill_levels,
    transcript_segments, transcript_words, turn_metrics, usage_log,
};
use sea_orm::sea_query::{ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::ApiError;

/// The version of the export document's shape.
pub const EXPORT_FORMAT: &str = "interviewcraft.export.v1";

fn rows<T: serde::Serialize>(rows: Vec<T>) -> Result<Value, ApiError> {
    serde_json::to_value(rows)
        .map_err(|error| ApiError::Unexpected(anyhow::anyhow!("serializing the export: {error}")))
}

/// Everything held about an account, as one JSON document: one array per table (secrets such as
/// the password hash, token hashes and key ciphertexts are never part of it).
pub async fn export_account(db: &DatabaseConnection, account_id: Uuid) -> Result<Value, ApiError> {
    let account = Accounts::find_by_id(account_id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)?;
    let interview_ids = Query::select()
        .column(interviews::Column::Id)
        .from(interviews::Entity)
        .and_where(interviews::Column::AccountId.eq(account_id))
        .to_owned();
    let in_interviews = || interview_ids.clone();

    let mut tables = Map::new();
    // One array per table: `export!(table name, query)`.
    macro_rules! export {
        ($table:literal, $query:expr) => {
            tables.insert($table.into(), rows($query.all(db).await?)?);
        };
    }
    tables.insert("accounts".into(), rows(vec![account])?);
    export!(
        "refresh_tokens",
        RefreshTokens::find()
            .filter(refresh_tokens::Column::AccountId.eq(account_id))
            .order_by_asc(refresh_tokens::Column::CreatedAt)
    );
    export!(
        "account_settings",
        AccountSettings::find().filter(account_settings::Column::AccountId.eq(account_id))
    );
    export!(
        "consent_events",
        ConsentEvents::find()
            .filter(consent_events::Column::AccountId.eq(account_id))
            .order_by_asc(consent_events::Column::CreatedAt)
    );
    export!(
        "byok_keys",
        ByokKeys::find().filter(byok_keys::Column::AccountId.eq(account_id))
    );
    export!(
        "resume_profiles",
        ResumeProfiles::find().filter(resume_profiles::Column::AccountId.eq(account_id))
    );
    let acceptances = PolicyAcceptances::find()
        .filter(policy_acceptances::Column::AccountId.eq(account_id))
        .order_by_asc(policy_acceptances::Column::AcceptedAt)
        .all(db)
        .await?;
    export!(
        "policy_versions",
        PolicyVersions::find().filter(
            policy_versions::Column::Id.is_in(
                acceptances
                    .iter()
                    .map(|a| a.policy_version_id)
                    .collect::<Vec<_>>()
            ),
        )
    );
    tables.insert("policy_acceptances".into(), rows(acceptances)?);
    export!(
        "interviews",
        Interviews::find()
            .filter(interviews::Column::AccountId.eq(account_id))
            .order_by_asc(interviews::Column::CreatedAt)
    );
    export!(
        "transcript_segments",
        TranscriptSegments::find()
            .filter(transcript_segments::Column::InterviewId.in_subquery(in_interviews()))
            .order_by_asc(transcript_segments::Column::InterviewId)
            .order_by_asc(transcript_segments::Column::Seq)
    );
    export!(
        "transcript_words",
        TranscriptWords::find()
            .filter(transcript_words::Column::InterviewId.in_subquery(in_interviews()))
            .order_by_asc(transcript_words::Column::InterviewId)
            .order_by_asc(transcript_words::Column::StartMs)
    );
    export!(
        "turn_metrics",
        TurnMetrics::find()
            .filter(turn_metrics::Column::InterviewId.in_subquery(in_interviews()))
            .order_by_asc(turn_metrics::Column::InterviewId)
            .order_by_asc(turn_metrics::Column::TurnIndex)
    );
    export!(
        "answer_scores",
        AnswerScores::find()
            .filter(answer_scores::Column::InterviewId.in_subquery(in_interviews()))
    );
    export!(
        "skill_history",
        SkillHistory::find()
            .filter(skill_history::Column::AccountId.eq(account_id))
            .order_by_asc(skill_history::Column::RecordedAt)
    );
    export!(
        "scoring_jobs",
        ScoringJobs::find()
            .filter(scoring_jobs::Column::InterviewId.in_subquery(in_interviews()))
            .order_by_asc(scoring_jobs::Column::RequestedAt)
    );
    export!(
        "answer_feedback",
        AnswerFeedback::find()
            .filter(answer_feedback::Column::InterviewId.in_subquery(in_interviews()))
            .order_by_asc(answer_feedback::Column::InterviewId)
            .order_by_asc(answer_feedback::Column::SegmentIndex)
    );
    export!(
        "skill_levels",
        SkillLevels::find()
            .filter(skill_levels::Column::AccountId.eq(account_id))
            .order_by_asc(skill_levels::Column::Skill)
    );
    export!(
        "usage_log",
        UsageLog::find()
            .filter(usage_log::Column::AccountId.eq(account_id))
            .order_by_asc(usage_log::Column::CreatedAt)
    );
    export!(
        "interview_quotas",
        InterviewQuotas::find().filter(interview_quotas::Column::AccountId.eq(account_id))
    );
    export!(
        "abuse_signals",
        AbuseSignals::find().filter(abuse_signals::Column::AccountId.eq(account_id))
    );
    export!(
        "digest_marks",
        DigestMarks::find().filter(digest_marks::Column::AccountId.eq(account_id))
    );
    // Staff actions on this account: what and when (the staff member's id is not the user's data).
    let audit: Vec<Value> = AdminAudit::find()
        .filter(admin_audit::Column::TargetId.eq(account_id))
        .order_by_asc(admin_audit::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|row| json!({"id": row.id, "action": row.action, "created_at": row.created_at}))
        .collect();
    tables.insert("admin_audit".into(), Value::Array(audit));

    Ok(json!({
        "format": EXPORT_FORMAT,
        "exported_at": Utc::now(),
        "account_id": account_id,
        "tables": tables,
    }))
}

/// What an erasure removed, per table (row counts only).
pub type ErasureReport = Vec<(&'static str, u64)>;

/// Deletes every row of an account in one transaction, children first (the foreign keys would
/// cascade too; deleting explicitly keeps erasure correct even where a cascade is missing).
/// The admin audit keeps its id-only rows: they hold no personal data.
pub async fn erase_account(
    db: &DatabaseConnection,
    account_id: Uuid,
) -> Result<ErasureReport, ApiError> {
    let txn = db.begin().await?;
    let report = erase_in(&txn, account_id).await?;
    txn.commit().await?;
    crate::startup::scrub_after_erasure(db, &erased_tables(&report)).await;
    Ok(report)
}

/// The tables an erasure deleted rows from.
pub(crate) fn erased_tables(report: &ErasureReport) -> Vec<&'static str> {
    report
        .iter()
        .filter(|(_, rows)| *rows > 0)
        .map(|(table, _)| *table)
        .collect()
}

/// The erasure itself, inside the caller's transaction (the admin route adds its audit row).
pub(crate) async fn erase_in(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<ErasureReport, ApiError> {
    if Accounts::find_by_id(account_id).one(db).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let interview_ids = Query::select()
        .column(interviews::Column::Id)
        .from(interviews::Entity)
        .and_where(interviews::Column::AccountId.eq(account_id))
        .to_owned();
    let in_interviews = || interview_ids.clone();
    let mut report = ErasureReport::new();
    macro_rules! erase {
        ($table:literal, $entity:ty, $filter:expr) => {
            let result = <$entity>::delete_many().filter($filter).exec(db).await?;
            report.push(($table, result.rows_affected));
        };
    }
    erase!(
        "transcript_words",
        TranscriptWords,
        transcript_words::Column::InterviewId.in_subquery(in_interviews())
    );
    erase!(
        "answer_scores",
        AnswerScores,
        answer_scores::Column::InterviewId.in_subquery(in_interviews())
    );
    erase!(
        "answer_feedback",
        AnswerFeedback,
        answer_feedback::Column::InterviewId.in_subquery(in_interviews())
    );
    erase!(
        "scoring_jobs",
        ScoringJobs,
        scoring_jobs::Column::InterviewId
            .in_subquery(in_interviews())
            .or(scoring_jobs::Column::AccountId.eq(account_id))
    );
    erase!(
        "transcript_segments",
        TranscriptSegments,
        transcript_segments::Column::InterviewId.in_subquery(in_interviews())
    );
    erase!(
        "turn_metrics",
        TurnMetrics,
        turn_metrics::Column::InterviewId.in_subquery(in_interviews())
    );
    erase!(
        "usage_log",
        UsageLog,
        usage_log::Column::AccountId
            .eq(account_id)
            .or(usage_log::Column::InterviewId.in_subquery(in_interviews()))
    );
    erase!(
        "skill_history",
        SkillHistory,
        skill_history::Column::AccountId.eq(account_id)
    );
    erase!(
        "skill_levels",
        SkillLevels,
        skill_levels::Column::AccountId.eq(account_id)
    );
    erase!(
        "interviews",
        Interviews,
        interviews::Column::AccountId.eq(account_id)
    );
    erase!(
        "refresh_tokens",
        RefreshTokens,
        refresh_tokens::Column::AccountId.eq(account_id)
    );
    erase!(
        "account_settings",
        AccountSettings,
        account_settings::Column::AccountId.eq(account_id)
    );
    erase!(
        "consent_events",
        ConsentEvents,
        consent_events::Column::AccountId.eq(account_id)
    );
    erase!(
        "byok_keys",
        ByokKeys,
        byok_keys::Column::AccountId.eq(account_id)
    );
    erase!(
        "resume_profiles",
        ResumeProfiles,
        resume_profiles::Column::AccountId.eq(account_id)
    );
    erase!(
        "policy_acceptances",
        PolicyAcceptances,
        policy_acceptances::Column::AccountId.eq(account_id)
    );
    erase!(
        "interview_quotas",
        InterviewQuotas,
        interview_quotas::Column::AccountId.eq(account_id)
    );
    erase!(
        "abuse_signals",
        AbuseSignals,
        abuse_signals::Column::AccountId.eq(account_id)
    );
    erase!(
        "digest_marks",
        DigestMarks,
        digest_marks::Column::AccountId.eq(account_id)
    );
    erase!("accounts", Accounts, accounts::Column::Id.eq(account_id));
    Ok(report)
}

/// Tables that hold no account's personal data and so are not erased with an account: shared
/// policy texts, and the admin audit (ids and action codes only).
pub const RETAINED_TABLES: &[&str] = &["policy_versions", "admin_audit"];
