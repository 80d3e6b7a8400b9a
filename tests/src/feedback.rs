//! Helpers for the feedback tests: an ended interview with a transcript written straight into
//! the database (word times on the interview's clock), and waiting for its scores.

use std::time::{Duration, Instant};

use chrono::Utc;
use engine::{AccountId, InterviewId};
use entities::interviews::{self, InterviewKind, InterviewStatus};
use entities::transcript_segments::{self, Speaker};
use entities::transcript_words;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ConnectionTrait};
use serde_json::Value;
use uuid::Uuid;

use crate::{Session, TestApp};

/// Pace of the written words: one every 400 ms (150 words per minute).
pub const MS_PER_WORD: i64 = 400;

/// Writes an ended interview of `kind` for `account_id` with the given turns (candidate turns
/// get word timestamps; a 2 s gap separates turns). Returns its id.
pub async fn ended_interview_with_transcript(
    app: &TestApp,
    account_id: AccountId,
    kind: InterviewKind,
    turns: &[(Speaker, &str)],
) -> InterviewId {
    // One transaction: the server's scoring sweep runs concurrently and must never see the
    // ended interview without its whole transcript (it would score a partial answer).
    let txn = engine::database::begin_write(&app.db).await.expect("begin");
    let id = ended_interview_in(&txn, account_id, kind, turns).await;
    txn.commit().await.expect("commit");
    id
}

/// [`ended_interview_with_transcript`] on any connection, e.g. a transaction that also writes
/// other rows the server must only ever see together with the interview.
pub async fn ended_interview_in(
    db: &impl ConnectionTrait,
    account_id: AccountId,
    kind: InterviewKind,
    turns: &[(Speaker, &str)],
) -> InterviewId {
    let now = Utc::now();
    let interview = interviews::ActiveModel {
        id: Set(InterviewId::now_v7()),
        account_id: Set(account_id),
        kind: Set(kind),
        target_role: Set(None),
        company: Set(None),
        planned_minutes: Set(20),
        status: Set(InterviewStatus::Ended),
        node_id: Set(None),
        created_at: Set(now),
        started_at: Set(Some(now)),
        ended_at: Set(Some(now)),
        end_reason: Set(Some("completed".into())),
        focus_skill: Set(None),
    }
    .insert(db)
    .await
    .expect("interview");
    let mut at = 1_000i64;
    for (seq, (speaker, text)) in turns.iter().enumerate() {
        let words: Vec<&str> = text.split_whitespace().collect();
        let start = at;
        let end = start + words.len() as i64 * MS_PER_WORD;
        let segment = transcript_segments::ActiveModel {
            id: Set(Uuid::now_v7()),
            interview_id: Set(interview.id),
            seq: Set(seq as i32),
            speaker: Set(*speaker),
            text: Set((*text).to_owned()),
            start_ms: Set(start),
            end_ms: Set(end),
            interrupted: Set(false),
            created_at: Set(now),
        }
        .insert(db)
        .await
        .expect("segment");
        if *speaker == Speaker::Candidate {
            for (i, word) in words.iter().enumerate() {
                let word_start = start + i as i64 * MS_PER_WORD;
                transcript_words::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    segment_id: Set(segment.id),
                    interview_id: Set(interview.id),
                    word: Set((*word).to_owned()),
                    start_ms: Set(word_start),
                    end_ms: Set(word_start + MS_PER_WORD - 80),
                    confidence: Set(0.97),
                    created_at: Set(now),
                }
                .insert(db)
                .await
                .expect("word");
            }
        }
        at = end + 2_000;
    }
    interview.id
}

/// Polls `GET /api/v1/interviews/{id}/scores` until the job is `done` or `skipped` (generous
/// timeout: the machine may be loaded).
pub async fn wait_scored(app: &TestApp, session: &Session, id: InterviewId) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = app
            .get_as(
                &format!("/api/v1/interviews/{id}/scores"),
                &session.access_token,
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        if body["state"] == "done" || body["state"] == "skipped" {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the interview is scored in time: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks for a re-score and waits for it.
pub async fn rescore(app: &TestApp, session: &Session, id: InterviewId) -> Value {
    let response = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/interviews/{id}/score"),
            Some(&session.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), 202);
    wait_scored(app, session, id).await
}

/// A behavioral answer that triggers `no_ownership`, `result_not_specific` and
/// `missing_metrics`.
pub const VAGUE_ANSWER: &str = "We worked on a new onboarding flow and we made it much better. \
    Our team did a lot of work on it and we launched it and it went well, everyone was happy \
    with how it turned out in the end.";

/// A strong behavioral answer.
pub const STRONG_ANSWER: &str = "Last year at my previous company our checkout service was \
    failing during sales peaks. My goal was to stop the timeouts before Black Friday. I profiled \
    the service, I found a lock in the payment client, and I proposed moving payments to a queue \
    instead of synchronous calls. I convinced my manager and the product team with a load test. \
    I also paired with a junior engineer to build the retry logic. As a result, checkout errors \
    dropped from 4 percent to 0.3 percent and we handled twice the peak traffic.";
