//! Protects keyless local mode inside the engine: an interview whose interviewer is the local
//! rule-based one (mixed with the fakes for speech) reacts to what the candidate said, and its
//! usage rows say `local` and cost nothing.

mod support;

use std::sync::Arc;
use std::time::Duration;

use engine::vendors::espeak::{EspeakConfig, EspeakTts};
use engine::vendors::local_interviewer::LocalInterviewer;
use entities::{transcript_segments, usage_log};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use support::{Candidate, Harness};

#[actix::test]
async fn local_interviewer_follows_up_on_the_answer_and_is_metered_free() {
    let harness = Harness::start_with(
        &[
            "I did some testing.",
            "I led the migration of our billing service and as a result we cut latency by 40 percent.",
        ],
        &[],
        |_, config| {
            config.local.llm = Some(Arc::new(LocalInterviewer::default()));
        },
    )
    .await;
    assert_eq!(harness.engine.modes().llm, "local");
    assert_eq!(harness.engine.modes().stt, "fake");
    let mut candidate = Candidate::answers(2);
    candidate.hang_up_after = Some(2);
    let (interview_id, mut run) = harness.start_interview(candidate).await;
    run.wait_for_end(Duration::from_secs(90)).await;

    let segments = transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.eq(interview_id))
        .order_by_asc(transcript_segments::Column::Seq)
        .all(&harness.db)
        .await
        .expect("segments");
    let interviewer: Vec<&str> = segments
        .iter()
        .filter(|s| format!("{:?}", s.speaker) == "Interviewer")
        .map(|s| s.text.as_str())
        .collect();
    assert!(
        interviewer.len() >= 2,
        "greeting and a follow-up: {segments:#?}"
    );
    assert!(
        interviewer[0].contains("rule-based program")
            && interviewer[0].contains("Backend Engineer"),
        "{interviewer:?}"
    );
    // A very short answer gets "give me an example".
    assert_eq!(
        interviewer[1],
        "Could you give me a specific example, from a real situation?"
    );

    harness.engine.flush_usage().await.expect("flush");
    let usage = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(interview_id))
        .all(&harness.db)
        .await
        .expect("usage");
    let llm: Vec<_> = usage
        .iter()
        .filter(|u| u.operation == "llm_stream")
        .collect();
    assert!(llm.len() >= 2, "{usage:#?}");
    assert!(
        llm.iter().all(|u| u.provider == "local"
            && u.key_source == "local"
            && u.cost_micro_usd == 0
            && u.model == "local-interviewer"),
        "{usage:#?}"
    );
    assert!(
        usage
            .iter()
            .filter(|u| u.operation != "llm_stream")
            .all(|u| u.provider == "fake" && u.key_source == "fake"),
        "{usage:#?}"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn espeak_voice_reaches_the_candidate_and_barge_in_keeps_the_heard_part() {
    let harness = Harness::start_with(&["Sorry, could you repeat that?"], &[], |_, config| {
        config.local.llm = Some(Arc::new(LocalInterviewer::default()));
        config.local.tts = Some(Arc::new(EspeakTts::new(EspeakConfig::default())));
    })
    .await;
    assert_eq!(harness.engine.modes().tts, "local");
    let mut candidate = Candidate::answers(1);
    // The greeting is long (about 15 s of speech): talk over it after 3 s.
    candidate.barge_in_on_reply = Some((1, Duration::from_secs(3)));
    candidate.hang_up_after = Some(1);
    let (interview_id, mut run) = harness.start_interview(candidate).await;
    run.wait_for_end(Duration::from_secs(90)).await;
    let report = run.candidate_task.await.expect("candidate");
    assert!(
        report.frames_received >= 150,
        "at least 3 s of the voice reached the candidate: {report:?}"
    );
    let after = report.frames_after_barge_in.first().copied().unwrap_or(0);
    assert!(
        after <= 60,
        "the voice stopped soon after the candidate talked: {after}"
    );

    let segments = transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.eq(interview_id))
        .order_by_asc(transcript_segments::Column::Seq)
        .all(&harness.db)
        .await
        .expect("segments");
    let greeting = &segments[0];
    assert!(greeting.interrupted, "{segments:#?}");
    let full = engine::vendors::local_interviewer::next_reply(
        &engine::conversation::system_prompt(&Harness::plan()),
        &[engine::vendors::ChatMessage::user(
            engine::conversation::Cue::Start.message(),
        )],
    );
    assert!(
        full.starts_with(&greeting.text),
        "the heard part is a prefix of the greeting: {greeting:?}"
    );
    assert!(
        greeting.text.len() > 20 && greeting.text.len() < full.len() / 2,
        "about 3 s of it was heard, by the character timing: {:?}",
        greeting.text
    );

    harness.engine.flush_usage().await.expect("flush");
    let usage = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(interview_id))
        .all(&harness.db)
        .await
        .expect("usage");
    let tts: Vec<_> = usage
        .iter()
        .filter(|u| u.operation == "tts_stream")
        .collect();
    assert!(!tts.is_empty(), "{usage:#?}");
    assert!(
        tts.iter().all(|u| u.provider == "local"
            && u.key_source == "local"
            && u.cost_micro_usd == 0
            && u.model.starts_with("espeak-ng")),
        "{usage:#?}"
    );
    harness.assert_engine_idle().await;
}

#[actix::test]
async fn the_interviewer_voice_setting_picks_the_espeak_voice() {
    let harness = Harness::start_with(&["I did some testing."], &[], |_, config| {
        config.local.llm = Some(Arc::new(LocalInterviewer::default()));
        config.local.tts = Some(Arc::new(EspeakTts::new(EspeakConfig::default())));
    })
    .await;
    let (account_id, interview_id) = harness.create_interview().await;
    entities::account_settings::ActiveModel {
        interviewer_voice: Set(Some("brisk".into())),
        ..entities::account_settings::defaults(account_id, chrono::Utc::now())
    }
    .insert(&harness.db)
    .await
    .expect("settings row");
    let (link, peer) = engine::media::memory_transport();
    let mut events = harness
        .engine
        .start_interview(interview_id, account_id, Harness::plan(), link)
        .await
        .expect("interview starts");
    let mut candidate = Candidate::answers(1);
    candidate.hang_up_after = Some(1);
    let candidate = tokio::spawn(candidate.run(peer));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(engine::actors::interview::InterviewEvent::Ended { .. })) => break,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("the interview did not end: {other:?}"),
        }
    }
    let report = candidate.await.expect("candidate");
    assert!(report.frames_received > 50, "{report:?}");
    harness.engine.flush_usage().await.expect("flush");
    let usage = usage_log::Entity::find()
        .filter(usage_log::Column::InterviewId.eq(interview_id))
        .filter(usage_log::Column::Operation.eq("tts_stream"))
        .all(&harness.db)
        .await
        .expect("usage");
    assert!(!usage.is_empty());
    assert!(
        usage.iter().all(|u| u.model == "espeak-ng:en-us+m3"),
        "brisk is espeak-ng's en-us+m3: {usage:#?}"
    );
    // espeak-ng speaks at 22.05 kHz, which the encoder does not take: the playback converts
    // it to 24 kHz, and the candidate hears it at its own duration. The greeting (the longest
    // utterance) is heard whole before the answer; the reply to the answer at most whole.
    let longest = usage.iter().map(|u| u.audio_seconds).fold(0.0, f64::max);
    let synthesized: f64 = usage.iter().map(|u| u.audio_seconds).sum();
    let heard = report.heard.as_secs_f64();
    assert!(
        heard >= longest - 0.1 && heard <= synthesized + 0.1,
        "heard {heard:.2} s of {synthesized:.2} s synthesized (greeting {longest:.2} s)"
    );
}
