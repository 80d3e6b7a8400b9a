//! The key leaser during whole interviews against the fakes: a lease is held while the
//! interview runs and released at its end; revoking it mid-interview fails the vendor clients
//! over to the platform key (the usage rows written afterwards say `platform`) or, without a
//! platform key, ends the interview with `byok_key_revoked`; an unreleased lease expires at its
//! deadline.

mod support;

use std::time::{Duration, Instant};

use engine::engine::EngineHandle;
use engine::key_lease::PlatformKeys;
use engine::{AccountId, InterviewId};
use entities::{interviews, usage_log};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use secrecy::SecretString;
use support::{Candidate, Harness};

const OWN_ANTHROPIC: &str = "sk-ant-api03-own-key-of-the-user-0001";
const OWN_DEEPGRAM: &str = "dg-own-key-of-the-user-000000002";

async fn usage_rows(
    harness: &Harness,
    engine: &EngineHandle,
    id: InterviewId,
) -> Vec<usage_log::Model> {
    engine.flush_usage().await.expect("flush");
    usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(id))
        .order_by_asc(usage_log::Column::Id)
        .all(&harness.db)
        .await
        .expect("usage")
}

/// Waits until the interview wrote a language-model usage row (its greeting was generated).
async fn wait_for_llm_row(harness: &Harness, engine: &EngineHandle, id: InterviewId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = usage_rows(harness, engine, id).await;
        if rows.iter().any(|row| row.operation.starts_with("llm")) {
            return;
        }
        assert!(Instant::now() < deadline, "no LLM usage row: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn end_reason(harness: &Harness, id: InterviewId) -> Option<String> {
    interviews::Entity::find_by_id(id)
        .one(&harness.db)
        .await
        .expect("interview")
        .and_then(|row| row.end_reason)
}

async fn wait_for_release(engine: &EngineHandle, account: AccountId) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.lease_status(account).await.live {
        assert!(
            Instant::now() < deadline,
            "the lease outlived the interview"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[actix::test]
async fn a_revoked_byok_key_fails_over_to_the_platform_key_and_usage_says_so() {
    let harness = Harness::start(
        &["I built a billing system.", "Migrating the data."],
        &[
            "Hi! Tell me about a project.",
            "What was the hardest part?",
            "Great, goodbye. [END]",
        ],
    )
    .await;
    // The same engine setup, with a platform key for Anthropic (the fakes accept any key).
    let engine = EngineHandle::start(
        harness.db.clone(),
        harness.engine.config().clone(),
        PlatformKeys {
            anthropic: Some(SecretString::from("sk-ant-platform-key-0000-PLAT")),
            ..PlatformKeys::default()
        },
        harness.ring.clone(),
    );
    let (account, id) = harness.create_interview().await;
    harness.store_key(account, "anthropic", OWN_ANTHROPIC).await;
    let (link, peer) = engine::media::memory_transport();
    let mut events = engine
        .start_interview(id, account, Harness::plan(), link)
        .await
        .expect("starts");
    let candidate = tokio::spawn(Candidate::answers(2).run(peer));
    let status = engine.lease_status(account).await;
    assert!(status.live && status.own_keys, "{status:?}");
    assert_eq!(engine.lease_gauges().live.get(), 1);
    assert_eq!(engine.lease_gauges().own_keys.get(), 1);

    wait_for_llm_row(&harness, &engine, id).await;
    assert_eq!(engine.revoke_keys(account).await, 1);
    let status = engine.lease_status(account).await;
    assert!(status.live && !status.own_keys, "{status:?}");
    assert_eq!(engine.lease_gauges().own_keys.get(), 0);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let reason = loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(engine::actors::interview::InterviewEvent::Ended { reason })) => break reason,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("no end: {other:?}"),
        }
    };
    assert_eq!(
        reason, "completed",
        "the interview went on on the platform key"
    );
    candidate.abort();
    wait_for_release(&engine, account).await;
    assert_eq!(engine.lease_gauges().live.get(), 0);

    let llm: Vec<String> = usage_rows(&harness, &engine, id)
        .await
        .into_iter()
        .filter(|row| row.provider == "anthropic")
        .map(|row| row.key_source)
        .collect();
    assert_eq!(llm.first().map(String::as_str), Some("byok"), "{llm:?}");
    assert!(
        llm.iter().any(|source| source == "platform"),
        "replies after the revocation are on the platform key: {llm:?}"
    );
    let first_platform = llm.iter().position(|s| s == "platform").unwrap();
    assert!(
        llm[first_platform..].iter().all(|s| s == "platform"),
        "no byok row after the failover: {llm:?}"
    );
}

#[actix::test]
async fn without_a_platform_key_the_next_request_ends_the_interview_with_byok_key_revoked() {
    let harness = Harness::start(
        &["I built a billing system.", "Migrating the data."],
        &[
            "Hi! Tell me about a project.",
            "What was the hardest part?",
            "Great, goodbye. [END]",
        ],
    )
    .await;
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(2), &[("anthropic", OWN_ANTHROPIC)])
        .await;
    wait_for_llm_row(&harness, &harness.engine, id).await;
    assert_eq!(harness.engine.revoke_keys(run.account_id).await, 1);
    assert_eq!(
        run.wait_for_end(Duration::from_secs(60)).await,
        "byok_key_revoked"
    );
    harness.assert_engine_idle().await;
    assert_eq!(
        end_reason(&harness, id).await.as_deref(),
        Some("byok_key_revoked")
    );
    wait_for_release(&harness.engine, run.account_id).await;
    let rows = usage_rows(&harness, &harness.engine, id).await;
    assert!(
        rows.iter()
            .filter(|row| row.provider == "anthropic")
            .all(|row| row.key_source == "byok"),
        "{rows:#?}"
    );
}

#[actix::test]
async fn an_open_speech_to_text_stream_on_a_revoked_key_ends_at_once() {
    let harness = Harness::start(&["Hello there."], &["Hi! Tell me about a project."]).await;
    // The candidate never answers, so only the revocation can end the interview soon.
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(0), &[("deepgram", OWN_DEEPGRAM)])
        .await;
    wait_for_llm_row(&harness, &harness.engine, id).await;
    assert_eq!(harness.engine.revoke_keys(run.account_id).await, 1);
    assert_eq!(
        run.wait_for_end(Duration::from_secs(20)).await,
        "byok_key_revoked"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn an_unreleased_lease_expires_at_its_deadline_and_its_keys_are_revoked() {
    let harness = Harness::start(&["Hello there."], &["Hi! Tell me about a project."]).await;
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(0), &[("deepgram", OWN_DEEPGRAM)])
        .await;
    let account = run.account_id;
    wait_for_llm_row(&harness, &harness.engine, id).await;
    let grace = harness.engine.config().key_lease.grace;
    let planned = Harness::plan().planned;
    // Simulated time: before the deadline nothing expires...
    let now = Instant::now();
    assert!(
        harness
            .engine
            .expire_leases(now + planned + grace - Duration::from_secs(30))
            .await
            .is_empty()
    );
    assert!(harness.engine.lease_status(account).await.live);
    // ...after it, the lease ends though nobody released it, and the interview with it.
    assert_eq!(
        harness
            .engine
            .expire_leases(now + planned + grace + Duration::from_secs(1))
            .await,
        vec![id]
    );
    assert!(!harness.engine.lease_status(account).await.live);
    assert_eq!(
        run.wait_for_end(Duration::from_secs(20)).await,
        "byok_key_revoked"
    );
    harness.assert_engine_idle().await;
}
