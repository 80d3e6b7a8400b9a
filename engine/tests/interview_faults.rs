//! Protects the interview's resilience and limits: barge-in stops the interviewer, keeps only
//! what was heard and is measured (decision → playback stopped); an STT socket drop, an LLM overload mid-stream and a stalled LLM stream are survived; a TTS that
//! rejects its key ends the interview with a clear recorded reason; a vanished peer and a silent
//! candidate end it; admission control refuses a second interview per account and beyond
//! capacity. A child actor (ingress, STT, LLM, playback) that panics is restarted; one that
//! keeps panicking ends the interview; a panicking interview frees its account and stores its
//! end; a shutdown drain lets the candidate hear a closing line. A failing TTS WebSocket falls
//! back to the HTTP stream; a TTS failing both ways is said in the transcript and events, then
//! ends the interview; a stalled TTS or STT socket is replaced (the STT with its audio resent).
//! Faults come from the fakes, chosen per connection by the (BYOK) key.

mod support;

use std::time::Duration;

use engine::InterviewId;
use engine::actors::interview::{Child, EndReason, InterviewEvent, Phase};
use engine::engine::EngineError;
use engine::interview_core::{CLOSING_LINE, VOICE_FAILED_NOTE};
use engine::media::memory_transport;
use entities::{interviews, transcript_segments, usage_log};
use fakes::{Fault, fault_key};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use support::{Candidate, Harness};
use tokio::sync::broadcast;
use uuid::Uuid;

async fn segments(harness: &Harness, id: InterviewId) -> Vec<transcript_segments::Model> {
    transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.eq(id))
        .order_by_asc(transcript_segments::Column::Seq)
        .all(&harness.db)
        .await
        .expect("segments")
}

async fn end_reason(harness: &Harness, id: InterviewId) -> Option<String> {
    interviews::Entity::find_by_id(id)
        .one(&harness.db)
        .await
        .expect("query")
        .and_then(|row| row.end_reason)
}

const LONG_GREETING: &str = "Hello and welcome to your mock interview today, I am really glad you could make it and I hope you are ready. Tell me about yourself.";

#[actix::test]
async fn barge_in_stops_the_interviewer_and_keeps_only_the_heard_part() {
    let harness = Harness::start(
        &["Sorry, could you repeat the question please?"],
        &[LONG_GREETING, "Of course. That is all, thank you. [END]"],
    )
    .await;
    let mut candidate = Candidate::answers(1);
    candidate.barge_in_on_reply = Some((1, Duration::from_millis(800)));
    let barge_ins_before = engine::latency::barge_ins_observed();
    let (id, mut run) = harness.start_interview(candidate).await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    let report = run.candidate_task.await.expect("candidate");
    let segments = segments(&harness, id).await;
    let first = &segments[0];
    assert!(first.interrupted, "{segments:#?}");
    assert!(
        !first.text.is_empty() && first.text.len() < LONG_GREETING.len(),
        "{first:?}"
    );
    assert!(
        LONG_GREETING.starts_with(&first.text),
        "heard part is a prefix: {first:?}"
    );
    assert_eq!(
        segments[1].text,
        "Sorry, could you repeat the question please?"
    );
    // Audio stopped soon after the candidate started talking: barge-in needs 200 ms of voice
    // plus a word (or 900 ms without one); after the decision not one more frame is sent.
    let after = report.frames_after_barge_in[0];
    assert!(
        after > 0 && after <= 60,
        "frames heard after talking over: {after}"
    );
    // The playback observed the server's part of the reaction (other tests of this binary
    // may add theirs).
    assert!(engine::latency::barge_ins_observed() > barge_ins_before);
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn an_stt_socket_drop_mid_utterance_is_survived() {
    let harness = Harness::start(
        &["First answer about Rust.", "Second answer about tests."],
        &[
            "Hi! First question?",
            "Second question?",
            "Thanks, goodbye. [END]",
        ],
    )
    .await;
    let stt_key = fault_key("dg-user-key-000000000000", &[Fault::Drop { after: 4 }]);
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(2), &[("deepgram", &stt_key)])
        .await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    let candidate_lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .filter(|s| s.speaker == transcript_segments::Speaker::Candidate)
        .map(|s| s.text)
        .collect();
    assert_eq!(
        candidate_lines,
        vec!["First answer about Rust.", "Second answer about tests."]
    );
    harness.assert_engine_idle().await;
}

/// One answer; the LLM fake serves replies in turn, so a failed first request (the greeting)
/// uses the first entry and its retry the second.
async fn greeting_asked_twice() -> Harness {
    Harness::start(
        &["My answer."],
        &[
            "Hi there, tell me about your last project please.",
            "Hi there, tell me about your last project please.",
            "Thanks, goodbye. [END]",
        ],
    )
    .await
}

#[actix::test]
async fn an_llm_overload_mid_stream_is_survived() {
    let harness = greeting_asked_twice().await;
    let llm_key = fault_key(
        "sk-ant-user-000000000000",
        &[Fault::MidStreamError { after: 1 }],
    );
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(1), &[("anthropic", &llm_key)])
        .await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    let lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Thanks, goodbye."),
        "{lines:?}"
    );
    assert_eq!(
        lines,
        vec![
            "Hi there, tell me about your last project please.",
            "My answer.",
            "Thanks, goodbye."
        ],
        "the overloaded greeting was asked again"
    );
    assert_eq!(harness.fakes.anthropic.counters().streams_started, 3);
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_stalled_llm_stream_is_retried_and_the_reply_is_heard() {
    let harness = greeting_asked_twice().await;
    // Connected, headers and `message_start` sent, then silent: no first token.
    let llm_key = fault_key("sk-ant-user-000000000000", &[Fault::Stall { after: 0 }]);
    let stalls_before = engine::vendors::anthropic::stalled_streams();
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(1), &[("anthropic", &llm_key)])
        .await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    let lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(
        lines,
        vec![
            "Hi there, tell me about your last project please.",
            "My answer.",
            "Thanks, goodbye."
        ],
        "the greeting was heard once, whole, from the retry"
    );
    assert_eq!(harness.fakes.anthropic.counters().streams_started, 3);
    assert!(engine::vendors::anthropic::stalled_streams() > stalls_before);
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_tts_that_rejects_its_key_ends_the_interview_with_a_clear_reason() {
    let harness = Harness::start(&["Hello."], &["Hi!"]).await;
    let tts_key = fault_key("xi-user-key-000000000000", &[Fault::Unauthorized]);
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(1), &[("elevenlabs", &tts_key)])
        .await;
    let reason = run.wait_for_end(Duration::from_secs(30)).await;
    assert_eq!(reason, "vendor_failure:tts:auth");
    assert_eq!(
        end_reason(&harness, id).await.as_deref(),
        Some("vendor_failure:tts:auth")
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_vanished_peer_ends_the_interview() {
    let harness = Harness::start(&["Answer one."], &["Hi! Question one?", "Question two?"]).await;
    let mut candidate = Candidate::answers(1);
    candidate.hang_up_after = Some(1);
    let (id, mut run) = harness.start_interview(candidate).await;
    let reason = run.wait_for_end(Duration::from_secs(30)).await;
    assert!(reason.starts_with("peer_disconnected"), "{reason}");
    assert!(
        end_reason(&harness, id)
            .await
            .is_some_and(|r| r.starts_with("peer_disconnected"))
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_silent_candidate_is_prompted_and_then_the_interview_ends() {
    let harness = Harness::start_with(
        &[],
        &["Hi! Tell me about yourself.", "Take your time."],
        |_, config| {
            config.interview.idle_prompt_after = Duration::from_secs(2);
            config.interview.idle_end_after = Duration::from_secs(5);
        },
    )
    .await;
    let (id, mut run) = harness.start_interview(Candidate::answers(0)).await;
    assert_eq!(
        run.wait_for_end(Duration::from_secs(30)).await,
        "idle_timeout"
    );
    let lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(
        lines,
        vec!["Hi! Tell me about yourself.", "Take your time."],
        "greeting, then one gentle prompt"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn admission_allows_one_live_interview_per_account_and_respects_capacity() {
    let harness = Harness::start_with(&[], &["Hi!"], |_, config| config.max_live = 2).await;
    let (account, first) = harness.create_interview().await;
    let (link, _peer_one) = memory_transport();
    harness
        .engine
        .start_interview(first, account, Harness::plan(), link)
        .await
        .expect("first starts");
    let (link, _peer_two) = memory_transport();
    let again = harness
        .engine
        .start_interview(Uuid::now_v7().into(), account, Harness::plan(), link)
        .await;
    assert!(matches!(again, Err(EngineError::AlreadyLive)), "{again:?}");
    let (other_account, second) = harness.create_interview().await;
    let (link, _peer_three) = memory_transport();
    harness
        .engine
        .start_interview(second, other_account, Harness::plan(), link)
        .await
        .expect("second starts");
    let (third_account, third) = harness.create_interview().await;
    let (link, _peer_four) = memory_transport();
    let full = harness
        .engine
        .start_interview(third, third_account, Harness::plan(), link)
        .await;
    assert!(matches!(full, Err(EngineError::AtCapacity(2))), "{full:?}");
    assert_eq!(harness.engine.live().len(), 2);
    assert_eq!(
        harness
            .engine
            .end_for_account(account, EndReason::AccountDisabled),
        1
    );
    assert!(harness.engine.end_interview(
        second,
        EndReason::CandidateEnded,
        engine::actors::interview::StopMode::CancelNow
    ));
    harness.assert_engine_idle().await;
    assert_eq!(
        end_reason(&harness, first).await.as_deref(),
        Some("account_disabled")
    );
}

#[actix::test]
async fn usage_rows_record_whose_key_paid() {
    let harness = Harness::start(&["Yes."], &["Hi!", "Bye. [END]"]).await;
    let (id, mut run) = harness
        .start_interview_with_keys(
            Candidate::answers(1),
            &[("anthropic", "sk-ant-user-own-key-0000")],
        )
        .await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    harness.engine.flush_usage().await.expect("flush");
    let usage = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(id))
        .all(&harness.db)
        .await
        .expect("usage");
    let llm: Vec<_> = usage
        .iter()
        .filter(|u| u.operation == "llm_stream")
        .collect();
    assert!(
        !llm.is_empty() && llm.iter().all(|u| u.provider == "anthropic"),
        "{usage:#?}"
    );
    assert!(llm.iter().all(|u| u.key_source == "byok"), "{usage:#?}");
    let stt: Vec<_> = usage
        .iter()
        .filter(|u| u.operation == "stt_stream")
        .collect();
    assert!(
        !stt.is_empty()
            && stt
                .iter()
                .all(|u| u.provider == "fake" && u.key_source == "fake"),
        "{usage:#?}"
    );
}

#[actix::test]
async fn stt_usage_is_recorded_per_stream_period_plus_the_remainder() {
    let harness = Harness::start_with(&["Yes."], &["Hi!", "Bye. [END]"], |_, config| {
        config.interview.stt_metering_period = Duration::from_secs(1);
    })
    .await;
    let (id, mut run) = harness.start_interview(Candidate::answers(1)).await;
    assert_eq!(run.wait_for_end(Duration::from_secs(60)).await, "completed");
    harness.engine.flush_usage().await.expect("flush");
    let stt: Vec<usage_log::Model> = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(id))
        .filter(usage_log::Column::Operation.eq("stt_stream"))
        .all(&harness.db)
        .await
        .expect("usage");
    let whole_periods = stt.iter().filter(|row| row.audio_seconds == 1.0).count();
    assert!(
        whole_periods >= 1,
        "one row per period of the open stream: {stt:#?}"
    );
    let total: f64 = stt.iter().map(|row| row.audio_seconds).sum();
    let remainder_rows = stt.len() - whole_periods;
    assert_eq!(
        remainder_rows, 1,
        "the rest when the stream closed: {stt:#?}"
    );
    // The remainder is under one period plus one metering tick (1 s).
    assert!(
        total > whole_periods as f64 && total < whole_periods as f64 + 2.0,
        "{stt:#?}"
    );
}

/// Waits for the interview to reach `phase` (published as a state event).
async fn wait_for_phase(run: &mut support::Run, phase: Phase) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, run.events.recv()).await {
            Ok(Ok(InterviewEvent::State { phase: seen })) if seen == phase => return,
            Ok(Ok(InterviewEvent::Ended { reason })) => panic!("ended ({reason}) before {phase:?}"),
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("events closed"),
            Err(_) => panic!("no {phase:?} within 30 s"),
        }
    }
}

/// A child that panics while the interview listens is restarted, and the interview goes on
/// to its normal end with the candidate's answer transcribed.
async fn a_panicking_child_is_restarted(child: Child) {
    let harness = Harness::start(
        &["My answer about the billing service."],
        &["Hi! Tell me about a project.", "Thanks, goodbye. [END]"],
    )
    .await;
    let (id, mut run) = harness.start_interview(Candidate::answers(1)).await;
    wait_for_phase(&mut run, Phase::Listening).await;
    assert!(harness.engine.inject_panic(id, Some(child)));
    assert_eq!(
        run.wait_for_end(Duration::from_secs(60)).await,
        "completed",
        "{child:?}"
    );
    let lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(
        lines,
        vec![
            "Hi! Tell me about a project.",
            "My answer about the billing service.",
            "Thanks, goodbye."
        ],
        "{child:?}"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_panicking_ingress_is_restarted_and_the_interview_goes_on() {
    a_panicking_child_is_restarted(Child::Ingress).await;
}

#[actix::test]
async fn a_panicking_stt_is_restarted_and_the_interview_goes_on() {
    a_panicking_child_is_restarted(Child::Stt).await;
}

#[actix::test]
async fn a_panicking_llm_is_restarted_and_the_interview_goes_on() {
    a_panicking_child_is_restarted(Child::Llm).await;
}

#[actix::test]
async fn a_panicking_playback_is_restarted_and_the_interview_goes_on() {
    a_panicking_child_is_restarted(Child::Playback).await;
}

#[actix::test]
async fn a_child_that_keeps_panicking_ends_the_interview_with_a_clear_reason() {
    let harness = Harness::start(&[], &["Hi! Tell me about a project."]).await;
    let (id, mut run) = harness.start_interview(Candidate::answers(0)).await;
    wait_for_phase(&mut run, Phase::Listening).await;
    // The default budget is two restarts; the third panic ends the interview.
    for _ in 0..3 {
        assert!(harness.engine.inject_panic(id, Some(Child::Llm)));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        run.wait_for_end(Duration::from_secs(30)).await,
        "child_failed:llm"
    );
    assert_eq!(
        end_reason(&harness, id).await.as_deref(),
        Some("child_failed:llm")
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_panicking_interview_frees_the_account_and_stores_its_end() {
    let harness = Harness::start(&[], &["Hi! Tell me about a project.", "Hello again."]).await;
    let (id, mut run) = harness.start_interview(Candidate::answers(0)).await;
    wait_for_phase(&mut run, Phase::Listening).await;
    assert!(harness.engine.inject_panic(id, None));
    assert_eq!(
        run.wait_for_end(Duration::from_secs(30)).await,
        "internal_error"
    );
    harness.assert_engine_idle().await;
    // The end is stored (by a task the dying actor spawned): the row is not left live.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = interviews::Entity::find_by_id(id)
            .one(&harness.db)
            .await
            .expect("query")
            .expect("row");
        if row.status == interviews::InterviewStatus::Ended {
            assert_eq!(row.end_reason.as_deref(), Some("internal_error"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}",
            row.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The account is not stuck "already live": its next interview starts.
    let (link, _peer) = memory_transport();
    let next = Uuid::now_v7();
    let started = harness
        .engine
        .start_interview(next.into(), run.account_id, Harness::plan(), link)
        .await;
    assert!(started.is_ok(), "{started:?}");
    assert!(harness.engine.end_interview(
        next.into(),
        EndReason::CandidateEnded,
        engine::actors::interview::StopMode::CancelNow
    ));
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_shutdown_drain_says_a_closing_line_before_the_end() {
    let harness = Harness::start(&[], &["Hi! Tell me about a project."]).await;
    let (id, mut run) = harness.start_interview(Candidate::answers(0)).await;
    wait_for_phase(&mut run, Phase::Listening).await;
    // Let the candidate notice the greeting is over, so the closing line is a reply of its own.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let left = harness
        .engine
        .drain(EndReason::ServerShutdown, Duration::from_secs(20))
        .await;
    assert_eq!(left, 0, "the drain finished within its time");
    assert_eq!(
        run.wait_for_end(Duration::from_secs(5)).await,
        "server_shutdown"
    );
    let report = run.candidate_task.await.expect("candidate");
    let lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(
        lines,
        vec!["Hi! Tell me about a project.", CLOSING_LINE],
        "the closing line is in the transcript"
    );
    assert_eq!(
        report.replies_heard, 2,
        "the greeting, then the closing line: {report:?}"
    );
    assert_eq!(
        end_reason(&harness, id).await.as_deref(),
        Some("server_shutdown")
    );
}

/// Every event up to the end, and the end's reason. Panics after `timeout`.
async fn events_until_end(
    run: &mut support::Run,
    timeout: Duration,
) -> (Vec<InterviewEvent>, String) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, run.events.recv()).await {
            Ok(Ok(InterviewEvent::Ended { reason })) => return (seen, reason),
            Ok(Ok(event)) => seen.push(event),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("events closed before the end"),
            Err(_) => panic!("the interview did not end within {timeout:?}: {seen:?}"),
        }
    }
}

#[actix::test]
async fn a_failing_tts_websocket_falls_back_to_the_http_stream_and_every_reply_is_heard() {
    let replies = ["Hi! Tell me about a project.", "Thanks, goodbye. [END]"];
    let harness = Harness::start(&["I built a billing system."], &replies).await;
    // Every WebSocket drops after its first audio chunk; the HTTP stream works.
    let tts_key = "xi-user-key-000000000000~ws=drop:1*";
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(1), &[("elevenlabs", tts_key)])
        .await;
    let (events, reason) = events_until_end(&mut run, Duration::from_secs(60)).await;
    assert_eq!(reason, "completed");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, InterviewEvent::VoiceFailed { .. })),
        "{events:?}"
    );
    let report = run.candidate_task.await.expect("candidate");
    assert!(report.replies_heard >= 2, "{report:?}");
    let segments = segments(&harness, id).await;
    let lines: Vec<(&str, bool)> = segments
        .iter()
        .map(|s| (s.text.as_str(), s.interrupted))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("Hi! Tell me about a project.", false),
            ("I built a billing system.", false),
            ("Thanks, goodbye.", false),
        ]
    );
    let tts = harness.fakes.elevenlabs.counters();
    assert!(tts.ws_connections >= 2, "the WebSocket was tried: {tts:?}");
    assert!(
        tts.http_requests >= 2,
        "each reply was spoken over HTTP: {tts:?}"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_tts_failing_both_ways_is_said_in_the_transcript_and_events_then_ends_the_interview() {
    let harness = Harness::start_with(
        &[],
        &["Hi! Tell me about yourself.", "Take your time."],
        |_, config| {
            config.interview.idle_prompt_after = Duration::from_secs(2);
            config.interview.idle_end_after = Duration::from_secs(30);
        },
    )
    .await;
    let tts_key = "xi-user-key-000000000000~ws=500*~http=500*";
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(0), &[("elevenlabs", tts_key)])
        .await;
    let (events, reason) = events_until_end(&mut run, Duration::from_secs(60)).await;
    // The greeting's voice failed (said, then listening), the idle prompt's too: the end.
    assert_eq!(reason, "vendor_failure:tts:server");
    let failures = events
        .iter()
        .filter(
            |e| matches!(e, InterviewEvent::VoiceFailed { category, .. } if category == "server"),
        )
        .count();
    assert_eq!(failures, 2, "{events:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            InterviewEvent::State {
                phase: Phase::Listening
            }
        )),
        "the interview went on after the first failure: {events:?}"
    );
    let notes = segments(&harness, id)
        .await
        .into_iter()
        .filter(|s| {
            s.speaker == transcript_segments::Speaker::Interviewer && s.text == VOICE_FAILED_NOTE
        })
        .count();
    assert_eq!(notes, 2, "the transcript says where the voice failed");
    assert_eq!(
        end_reason(&harness, id).await.as_deref(),
        Some("vendor_failure:tts:server")
    );
    let tts = harness.fakes.elevenlabs.counters();
    assert!(
        tts.ws_connections + tts.rejected >= 2 && tts.http_requests >= 2,
        "both ways were tried for each utterance: {tts:?}"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_stalled_stt_socket_is_replaced_and_the_answer_is_heard_in_full() {
    let harness = Harness::start(
        &["First answer about Rust.", "Second answer about tests."],
        &[
            "Hi! First question?",
            "Second question?",
            "Thanks, goodbye. [END]",
        ],
    )
    .await;
    let stalls_before = engine::vendors::deepgram::stalled_sockets();
    // The first socket answers once, then stays open and silent; the next one works.
    let stt_key = fault_key("dg-user-key-000000000000", &[Fault::Stall { after: 1 }]);
    let mut candidate = Candidate::answers(2);
    candidate.speech = Duration::from_millis(1500);
    let (id, mut run) = harness
        .start_interview_with_keys(candidate, &[("deepgram", &stt_key)])
        .await;
    assert_eq!(run.wait_for_end(Duration::from_secs(90)).await, "completed");
    let candidate_lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .filter(|s| s.speaker == transcript_segments::Speaker::Candidate)
        .map(|s| s.text)
        .collect();
    assert_eq!(
        candidate_lines,
        vec!["First answer about Rust.", "Second answer about tests."],
        "the resent audio was heard in full"
    );
    assert!(
        engine::vendors::deepgram::stalled_sockets() > stalls_before,
        "the watchdog counted the stall"
    );
    let stt = harness.fakes.deepgram.counters();
    assert!(
        stt.connections >= 2,
        "the stalled socket was replaced: {stt:?}"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn a_stalled_tts_websocket_is_given_up_by_its_watchdog_and_the_http_stream_speaks() {
    let replies = ["Hi! Tell me about a project.", "Thanks, goodbye. [END]"];
    let harness = Harness::start(&["I built a billing system."], &replies).await;
    let stalls_before = engine::vendors::elevenlabs::stalled_sockets();
    // Every WebSocket takes the text and never sends audio; the HTTP stream works.
    let tts_key = "xi-user-key-000000000000~ws=stall:0*";
    let (id, mut run) = harness
        .start_interview_with_keys(Candidate::answers(1), &[("elevenlabs", tts_key)])
        .await;
    let (events, reason) = events_until_end(&mut run, Duration::from_secs(90)).await;
    assert_eq!(reason, "completed");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, InterviewEvent::VoiceFailed { .. })),
        "{events:?}"
    );
    let lines: Vec<String> = segments(&harness, id)
        .await
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(
        lines,
        vec![
            "Hi! Tell me about a project.",
            "I built a billing system.",
            "Thanks, goodbye."
        ]
    );
    assert!(
        engine::vendors::elevenlabs::stalled_sockets() > stalls_before,
        "the watchdog counted the stalls"
    );
    assert!(harness.fakes.elevenlabs.counters().http_requests >= 2);
    harness.assert_engine_idle().await;
}
