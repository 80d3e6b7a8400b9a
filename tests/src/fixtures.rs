//! Test data: one row in every table of the schema for an account, written directly.

use chrono::Utc;
use engine::{AccountId, InterviewId};
use entities::accounts::Role;
use entities::interviews::{InterviewKind, InterviewStatus};
use entities::transcript_segments::Speaker;
use entities::*;
use sea_orm::ActiveModelTrait;
use sea_orm::ActiveValue::Set;
use sea_orm::DatabaseConnection;
use serde_json::json;
use uuid::Uuid;

/// The transcript text, resume text and display name the fixture writes (to search exports for).
pub const FIXTURE_SEGMENT_TEXT: &str = "I led the migration";
pub const FIXTURE_RESUME_TEXT: &str = "Ten years of Rust";

/// Creates one row in every table that can hold the account's data.
pub async fn populate_every_table(db: &DatabaseConnection, account_id: AccountId) {
    let now = Utc::now();
    accounts::NewAccount {
        id: account_id,
        email: format!("{account_id}@example.com"),
        email_canonical: format!("{account_id}@example.com"),
        display_name: Some("Someone".into()),
        password_hash: "$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234".into(),
        role: Role::User,
    }
    .row(now)
    .insert(db)
    .await
    .expect("account");
    refresh_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        family_id: Set(Uuid::now_v7()),
        token_hash: Set(format!(
            "{:064}",
            account_id.as_uuid().as_u128() % 1_000_000
        )),
        created_at: Set(now),
        expires_at: Set(now),
        rotated_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .expect("refresh token");
    account_settings::ActiveModel {
        account_id: Set(account_id),
        digest_opt_in: Set(true),
        digest_opt_in_changed_at: Set(now),
        training_opt_in: Set(false),
        training_opt_in_changed_at: Set(now),
        skill_tracking: Set(true),
        skill_tracking_changed_at: Set(now),
        interviewer_voice: Set(Some("calm".into())),
        updated_at: Set(now),
        target_interview_date: Set(chrono::NaiveDate::from_ymd_opt(2027, 1, 15)),
    }
    .insert(db)
    .await
    .expect("settings");
    consent_events::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        purpose: Set("digest".into()),
        granted: Set(true),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("consent event");
    byok_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        provider: Set("anthropic".into()),
        ciphertext: Set(vec![1, 2, 3]),
        nonce: Set(vec![0; 12]),
        key_id: Set("k1".into()),
        last_four: Set("abcd".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .expect("byok key");
    resume_profiles::ActiveModel {
        account_id: Set(account_id),
        extracted_text: Set(FIXTURE_RESUME_TEXT.into()),
        profile: Set(json!({"role": "engineer", "skills": ["rust"]})),
        source_kind: Set("text".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .expect("resume");
    let policy = policy_versions::ActiveModel {
        id: Set(Uuid::now_v7()),
        version: Set(format!("v-{}", &Uuid::new_v4().simple().to_string()[..8])),
        title: Set("Privacy policy".into()),
        summary: Set("What changed".into()),
        body: Set("The policy".into()),
        published_at: Set(now),
        effective_at: Set(now),
    }
    .insert(db)
    .await
    .expect("policy version");
    policy_acceptances::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        policy_version_id: Set(policy.id),
        accepted_at: Set(now),
    }
    .insert(db)
    .await
    .expect("acceptance");
    let interview = interviews::ActiveModel {
        id: Set(InterviewId::now_v7()),
        account_id: Set(account_id),
        kind: Set(InterviewKind::Behavioral),
        target_role: Set(Some("Engineer".into())),
        company: Set(None),
        planned_minutes: Set(20),
        status: Set(InterviewStatus::Ended),
        node_id: Set(Some("node-1".into())),
        created_at: Set(now),
        started_at: Set(Some(now)),
        ended_at: Set(Some(now)),
        end_reason: Set(Some("completed".into())),
        focus_skill: Set(Some("star_structure".into())),
    }
    .insert(db)
    .await
    .expect("interview");
    let segment = transcript_segments::ActiveModel {
        id: Set(Uuid::now_v7()),
        interview_id: Set(interview.id),
        seq: Set(0),
        speaker: Set(Speaker::Candidate),
        text: Set(FIXTURE_SEGMENT_TEXT.into()),
        start_ms: Set(1000),
        end_ms: Set(2500),
        interrupted: Set(false),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("segment");
    transcript_words::ActiveModel {
        id: Set(Uuid::now_v7()),
        segment_id: Set(segment.id),
        interview_id: Set(interview.id),
        word: Set("migration".into()),
        start_ms: Set(2000),
        end_ms: Set(2500),
        confidence: Set(0.98),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("word");
    turn_metrics::ActiveModel {
        id: Set(Uuid::now_v7()),
        interview_id: Set(interview.id),
        turn_index: Set(0),
        ingress_ms: Set(Some(1.0)),
        stt_final_ms: Set(Some(120.0)),
        turn_wait_ms: Set(Some(400.0)),
        dispatch_ms: Set(Some(0.2)),
        llm_ttft_ms: Set(Some(300.0)),
        tts_buffering_ms: Set(Some(2.0)),
        tts_ttfa_ms: Set(Some(150.0)),
        egress_ms: Set(Some(1.0)),
        engine_overhead_ms: Set(Some(4.2)),
        v2v_ms: Set(Some(974.2)),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("turn metrics");
    answer_scores::ActiveModel {
        id: Set(Uuid::now_v7()),
        interview_id: Set(interview.id),
        segment_id: Set(Some(segment.id)),
        skill: Set("communication".into()),
        score: Set(4.0),
        rationale: Set(Some("clear".into())),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("score");
    skill_history::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        interview_id: Set(Some(interview.id)),
        skill: Set("communication".into()),
        score: Set(4.0),
        recorded_at: Set(now),
        previous_level: Set(Some(50.0)),
        positive: Set(Some(false)),
        signal_score: Set(Some(40.0)),
    }
    .insert(db)
    .await
    .expect("skill history");
    scoring_jobs::ActiveModel {
        interview_id: Set(interview.id),
        account_id: Set(account_id),
        state: Set("done".into()),
        attempts: Set(1),
        scorer: Set(Some("local_rules".into())),
        error: Set(None),
        answers: Set(1),
        delivery: Set(Some(serde_json::json!({"words_per_minute": 140.0}))),
        requested_at: Set(now),
        started_at: Set(Some(now)),
        finished_at: Set(Some(now)),
        claim: Set(None),
        claimed_by: Set(None),
    }
    .insert(db)
    .await
    .expect("scoring job");
    answer_feedback::ActiveModel {
        id: Set(Uuid::now_v7()),
        interview_id: Set(interview.id),
        segment_index: Set(0),
        question: Set("Tell me about a project.".into()),
        answer: Set(FIXTURE_SEGMENT_TEXT.into()),
        start_ms: Set(1000),
        end_ms: Set(2500),
        overall: Set(72.0),
        confidence: Set(0.5),
        categories: Set(serde_json::json!({"structure": 70.0})),
        findings: Set(serde_json::json!([])),
        improved_answer: Set("I led the migration.".into()),
        delivery: Set(None),
        scorer: Set("local_rules".into()),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("answer feedback");
    skill_levels::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        skill: Set("star_structure".into()),
        level: Set(45.0),
        best_level: Set(50.0),
        trend: Set("declining".into()),
        updates: Set(1),
        next_review_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .expect("skill level");
    usage_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(Some(account_id)),
        interview_id: Set(Some(interview.id)),
        provider: Set("anthropic".into()),
        model: Set("claude".into()),
        operation: Set("llm_stream".into()),
        key_source: Set("platform".into()),
        input_tokens: Set(100),
        output_tokens: Set(50),
        cache_read_tokens: Set(0),
        cache_creation_tokens: Set(0),
        audio_seconds: Set(0.0),
        characters: Set(0),
        latency_ms: Set(300.0),
        cost_micro_usd: Set(1200),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("usage");
    interview_quotas::ActiveModel {
        account_id: Set(account_id),
        free_interviews_granted: Set(3),
        free_interviews_used: Set(1),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .expect("quota");
    abuse_signals::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        kind: Set("canonical_email_reuse".into()),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("abuse signal");
    digest_marks::ActiveModel {
        account_id: Set(account_id),
        last_week: Set("2026-W48".into()),
    }
    .insert(db)
    .await
    .expect("digest mark");
    abuse_reviews::ActiveModel {
        account_id: Set(account_id),
        decision: Set("allow".into()),
        note: Set(Some("checked by the fixture".into())),
        decided_by: Set(AccountId::now_v7()),
        decided_at: Set(now),
    }
    .insert(db)
    .await
    .expect("abuse review");
    email_verifications::ActiveModel {
        token_hash: Set(format!("{:064x}", account_id.as_uuid().as_u128())),
        account_id: Set(account_id),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::hours(24)),
        used_at: Set(None),
    }
    .insert(db)
    .await
    .expect("verification link");
    // Retained, unlinked tables: rows that name no account (a hash derived from the id here,
    // so two fixtures never collide).
    abuse_ledger::ActiveModel {
        mailbox_hash: Set(format!("{:064x}", account_id.as_uuid().as_u128() ^ 0x5a5a)),
        recorded_at: Set(now),
    }
    .insert(db)
    .await
    .expect("ledger row");
    signup_ip_counts::ActiveModel {
        ip_hash: Set(format!("{:064x}", account_id.as_uuid().as_u128() ^ 0xa5a5)),
        day_start: Set(now),
        signups: Set(1),
    }
    .insert(db)
    .await
    .expect("sign-up count");
    admin_audit::ActiveModel {
        id: Set(Uuid::now_v7()),
        admin_id: Set(AccountId::now_v7()),
        action: Set("user.export".into()),
        target_id: Set(Some(account_id.into())),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("audit");
}
