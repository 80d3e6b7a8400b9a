//! Protects the live interview end to end: the actor tree runs whole interviews against the
//! fake vendors over real loopback sockets, with a scripted candidate on an in-memory
//! transport, and stores the transcript, word timestamps, per-turn latency breakdown and usage.

mod support;

use std::time::Duration;

use entities::{transcript_segments, turn_metrics, usage_log};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use support::{Candidate, Harness};

#[actix::test]
async fn a_three_question_interview_completes_and_is_stored() {
    let harness = Harness::start(
        &[
            "I built a payments ledger in Rust.",
            "We chose Rust for safety.",
            "We tested it with property tests.",
        ],
        &[
            "Hi, welcome! Tell me about a recent project.",
            "Why did you choose Rust?",
            "How did you test it?",
            "Thanks, that is all for today. [END]",
        ],
    )
    .await;
    let (interview_id, mut run) = harness.start_interview(Candidate::answers(3)).await;
    let reason = run.wait_for_end(Duration::from_secs(90)).await;
    assert_eq!(reason, "completed");

    let segments = transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.eq(interview_id))
        .order_by_asc(transcript_segments::Column::Seq)
        .all(&harness.db)
        .await
        .expect("segments");
    let lines: Vec<(String, String)> = segments
        .iter()
        .map(|s| (format!("{:?}", s.speaker), s.text.clone()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                "Interviewer".into(),
                "Hi, welcome! Tell me about a recent project.".into()
            ),
            (
                "Candidate".into(),
                "I built a payments ledger in Rust.".into()
            ),
            ("Interviewer".into(), "Why did you choose Rust?".into()),
            ("Candidate".into(), "We chose Rust for safety.".into()),
            ("Interviewer".into(), "How did you test it?".into()),
            (
                "Candidate".into(),
                "We tested it with property tests.".into()
            ),
            (
                "Interviewer".into(),
                "Thanks, that is all for today.".into()
            ),
        ],
        "{segments:#?}"
    );
    // Real times from the interview's start, in order, each segment with a length.
    for pair in segments.windows(2) {
        assert!(pair[0].start_ms <= pair[1].start_ms, "{pair:?}");
    }
    assert!(
        segments.iter().all(|s| s.end_ms > s.start_ms),
        "{segments:#?}"
    );
    let words = entities::transcript_words::Entity::find()
        .filter(entities::transcript_words::Column::InterviewId.eq(interview_id))
        .all(&harness.db)
        .await
        .expect("words");
    assert_eq!(
        words.len(),
        7 + 5 + 6,
        "every candidate word has a timestamp"
    );

    // One latency breakdown per answered turn, adding up.
    let turns = turn_metrics::Entity::find()
        .filter(turn_metrics::Column::InterviewId.eq(interview_id))
        .order_by_asc(turn_metrics::Column::TurnIndex)
        .all(&harness.db)
        .await
        .expect("turns");
    assert_eq!(turns.len(), 3, "{turns:#?}");
    for turn in &turns {
        let v2v = turn.v2v_ms.expect("v2v");
        let parts = turn.stt_final_ms.unwrap_or(0.0)
            + turn.turn_wait_ms.unwrap_or(0.0)
            + turn.llm_ttft_ms.unwrap_or(0.0)
            + turn.tts_ttfa_ms.unwrap_or(0.0)
            + turn.engine_overhead_ms.unwrap_or(0.0);
        assert!(
            v2v > 0.0 && turn.engine_overhead_ms.expect("overhead") >= 0.0,
            "{turn:?}"
        );
        assert!(
            (v2v - parts).abs() < 1.0,
            "the breakdown adds up to v2v: {turn:?} (parts {parts})"
        );
        assert!(turn.llm_ttft_ms.expect("ttft") >= 0.0 && turn.tts_ttfa_ms.expect("ttfa") > 0.0);
        assert!(turn.stt_final_ms.is_some() && turn.turn_wait_ms.is_some());
    }

    // Usage rows for every vendor, with what the fakes served and no text.
    harness.engine.flush_usage().await.expect("flush");
    let usage = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(interview_id))
        .all(&harness.db)
        .await
        .expect("usage");
    let llm_calls = usage.iter().filter(|u| u.operation == "llm_stream").count();
    assert_eq!(llm_calls, 4, "greeting, two questions, closing");
    let output_tokens: i64 = usage.iter().map(|u| u.output_tokens).sum();
    assert_eq!(
        u64::try_from(output_tokens).expect("positive"),
        harness.fakes.anthropic.counters().output_tokens,
        "usage matches what the fake served"
    );
    let characters: i64 = usage
        .iter()
        .filter(|u| u.operation == "tts_stream")
        .map(|u| u.characters)
        .sum();
    assert!(characters > 100, "{usage:#?}");
    let stt_seconds: f64 = usage
        .iter()
        .filter(|u| u.operation == "stt_stream")
        .map(|u| u.audio_seconds)
        .sum();
    assert!(stt_seconds > 3.0, "{usage:#?}");
    assert!(
        usage
            .iter()
            .all(|u| u.provider == "fake" && u.key_source == "fake")
    );

    let interview = entities::interviews::Entity::find_by_id(interview_id)
        .one(&harness.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        interview.status,
        entities::interviews::InterviewStatus::Ended
    );
    assert_eq!(interview.end_reason.as_deref(), Some("completed"));
    harness.assert_no_live_actors().await;
}
