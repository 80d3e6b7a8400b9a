//! Protects the transcript under load: 150 interviews at once on one node (the server's own
//! database set-up: SQLite's single connection, PostgreSQL's small pool), with the database
//! stalled mid-run for longer than the pool's acquire timeout (every connection held in an
//! open transaction), and still every segment, word and turn of every interview is stored and
//! the node's transcript writer dropped nothing: it waited and retried. (Writing each row on
//! its own, as the interview did before, loses rows to the pool timeout here.) The candidates are scripted on in-memory transports (no browser, no WebRTC), the
//! vendors are the fast fakes; the fakes and the candidates run on a runtime of their own.

use engine::{AccountId, InterviewId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use engine::actors::interview::InterviewEvent;
use engine::conversation::{InterviewKind, InterviewPlan};
use engine::interview_core::Phase;
use engine::media::{
    INBOUND_FRAME_SAMPLES, INBOUND_RATE, InboundFrame, MemoryPeer, memory_transport,
};
use entities::interviews::InterviewStatus;
use entities::{interviews, transcript_segments, transcript_words, turn_metrics};
use fakes::{FakeVendors, FakeVendorsConfig};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use secrecy::SecretString;
use tests::{Backend, db_tests, spawn_app_with};
use tokio::sync::broadcast;

db_tests!(every_segment_word_and_turn_of_150_concurrent_interviews_is_stored);

const INTERVIEWS: usize = 150;
const ANSWERS: &[&str] = &["I built a ledger in Rust.", "We tested it well."];
/// The fake's replies are taken in turn over all interviews, so every reply is the same.
const REPLY: &str = "Tell me more about that.";
/// Generous: on this 2-core machine the whole run takes well under a minute.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

fn fakes_config() -> FakeVendorsConfig {
    let mut config = FakeVendorsConfig::default();
    config.deepgram.max_concurrent_per_key = 100_000;
    config.deepgram.script = ANSWERS.iter().map(|s| (*s).to_owned()).collect();
    config.anthropic.replies = vec![REPLY.to_owned()];
    config.anthropic.time_to_message_start = Duration::from_millis(20);
    config.anthropic.time_to_first_text = Duration::from_millis(20);
    config.anthropic.inter_delta = Duration::from_millis(5);
    config.elevenlabs.ttfb = Duration::from_millis(30);
    config.elevenlabs.chars_per_second = 40.0;
    config
}

async fn create_interview(db: &DatabaseConnection) -> (AccountId, InterviewId) {
    entities::fixtures::account_with_interview(db)
        .await
        .expect("account and interview")
}

fn plan() -> InterviewPlan {
    InterviewPlan {
        kind: InterviewKind::Behavioral,
        target_role: Some("Backend Engineer".into()),
        company: None,
        planned: Duration::from_secs(20 * 60),
        profile: None,
        focus_skill: None,
    }
}

/// A candidate that answers once the interviewer has finished (the interview says it listens,
/// and its audio has been quiet for a while; on a saturated machine a reply's audio can pause
/// mid-sentence, so silence alone is not enough): 20 ms frames in real time, a tone while
/// answering, silence otherwise; after its last answer it waits for the interviewer's reply
/// and hangs up.
async fn candidate(
    mut peer: MemoryPeer,
    answers: usize,
    mut events: broadcast::Receiver<InterviewEvent>,
) {
    const REACTION: Duration = Duration::from_millis(700);
    const SPEECH: Duration = Duration::from_millis(800);
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = Instant::now();
    let mut heard_since_answer = false;
    let mut last_heard = started;
    let mut speaking_until: Option<Instant> = None;
    let mut answered = 0;
    let mut phase = 0.0f64;
    let mut listening = false;
    while started.elapsed() < RUN_TIMEOUT {
        ticker.tick().await;
        let now = Instant::now();
        while peer.from_engine.try_recv().is_ok() {
            heard_since_answer = true;
            last_heard = now;
        }
        loop {
            match events.try_recv() {
                Ok(InterviewEvent::State { phase }) => listening = phase == Phase::Listening,
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        if speaking_until.is_some_and(|until| now >= until) {
            speaking_until = None;
        }
        let interviewer_done =
            heard_since_answer && listening && now.duration_since(last_heard) >= REACTION;
        if speaking_until.is_none() && answered == answers && interviewer_done {
            if let Some(hang_up) = peer.hang_up.take() {
                let _ = hang_up.send("the candidate hung up".into());
            }
            return;
        }
        if speaking_until.is_none() && answered < answers && interviewer_done {
            speaking_until = Some(now + SPEECH);
            answered += 1;
            heard_since_answer = false;
        }
        let pcm = if speaking_until.is_some() {
            (0..INBOUND_FRAME_SAMPLES)
                .map(|_| {
                    phase += 2.0 * std::f64::consts::PI * 180.0 / f64::from(INBOUND_RATE.hz());
                    (6000.0 * phase.sin()) as i16
                })
                .collect()
        } else {
            vec![0i16; INBOUND_FRAME_SAMPLES]
        };
        if peer
            .to_engine
            .send(InboundFrame { pcm, at: now })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The interview's end reason and how many turn breakdowns it announced.
async fn watch(mut events: broadcast::Receiver<InterviewEvent>) -> (String, usize) {
    let mut turns = 0;
    loop {
        match tokio::time::timeout(RUN_TIMEOUT, events.recv()).await {
            Ok(Ok(InterviewEvent::Turn { .. })) => turns += 1,
            Ok(Ok(InterviewEvent::Ended { reason })) => return (reason, turns),
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                panic!("the watcher missed {n} events")
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return ("closed".into(), turns),
            Err(_) => return ("timed out".into(), turns),
        }
    }
}

async fn every_segment_word_and_turn_of_150_concurrent_interviews_is_stored(backend: Backend) {
    let side = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fakes-and-candidates")
        .enable_all()
        .build()
        .expect("side runtime");
    let fakes: FakeVendors = side
        .spawn(FakeVendors::start_all(fakes_config()))
        .await
        .expect("fakes task")
        .expect("fakes start");
    let key = || Some(SecretString::from("load-test-key".to_owned()));
    let sqlite = matches!(backend, Backend::Sqlite);
    let app = spawn_app_with(backend, |settings| {
        settings.max_live_interviews = INTERVIEWS * 2;
        // Platform keys: every interview uses the "real" vendors, which are the fast fakes.
        settings.anthropic_api_key = key();
        settings.anthropic_base_url = fakes.anthropic.base_url();
        settings.deepgram_api_key = key();
        settings.deepgram_base_url = fakes.deepgram.base_url();
        settings.elevenlabs_api_key = key();
        settings.elevenlabs_ws_base_url = fakes.elevenlabs.ws_base_url();
        settings.elevenlabs_http_base_url = fakes.elevenlabs.base_url();
    })
    .await;
    let engine = app.state.engine.clone();

    let started = Instant::now();
    let mut runs = Vec::new();
    for _ in 0..INTERVIEWS {
        let (account_id, interview_id) = create_interview(&app.db).await;
        let (link, peer) = memory_transport();
        let events = engine
            .start_interview(interview_id, account_id, plan(), link)
            .await
            .expect("the interview starts");
        side.spawn(candidate(peer, ANSWERS.len(), events.resubscribe()));
        runs.push((interview_id, tokio::spawn(watch(events))));
    }
    // The stall: every pooled connection held until a write of the engine has waited out the
    // pool's acquire timeout (10 s) at least once.
    let connections = if sqlite {
        1
    } else {
        app.settings.database_max_connections
    };
    let mut held = Vec::new();
    for _ in 0..connections {
        held.push(app.db.begin().await.expect("hold a connection"));
    }
    let counters = engine.transcript_writer_counters();
    let stalled = Instant::now();
    while counters.retried.get() + counters.dropped.get() == 0 {
        assert!(
            stalled.elapsed() < Duration::from_secs(60),
            "no write ever waited out the pool"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for transaction in held {
        transaction.commit().await.expect("release");
    }
    let stall = stalled.elapsed();

    let mut outcomes = HashMap::new();
    for (interview_id, watcher) in runs {
        outcomes.insert(interview_id, watcher.await.expect("watcher"));
    }
    let elapsed = started.elapsed();
    assert!(
        engine.flush_transcripts(Duration::from_secs(60)).await,
        "the writer drained"
    );

    let ids: Vec<InterviewId> = outcomes.keys().copied().collect();
    let mut segments: HashMap<InterviewId, Vec<transcript_segments::Model>> = HashMap::new();
    for segment in transcript_segments::Entity::find()
        .filter(transcript_segments::Column::InterviewId.is_in(ids.clone()))
        .all(&app.db)
        .await
        .expect("segments")
    {
        segments
            .entry(segment.interview_id)
            .or_default()
            .push(segment);
    }
    let mut words: HashMap<InterviewId, usize> = HashMap::new();
    for word in transcript_words::Entity::find()
        .all(&app.db)
        .await
        .expect("words")
    {
        *words.entry(word.interview_id).or_default() += 1;
    }
    let mut turns: HashMap<InterviewId, usize> = HashMap::new();
    for turn in turn_metrics::Entity::find()
        .all(&app.db)
        .await
        .expect("turns")
    {
        *turns.entry(turn.interview_id).or_default() += 1;
    }
    let ended = interviews::Entity::find()
        .filter(interviews::Column::Status.eq(InterviewStatus::Ended))
        .all(&app.db)
        .await
        .expect("interviews");

    let expected_segments = 1 + 2 * ANSWERS.len();
    let mut failures = Vec::new();
    for (id, (reason, announced_turns)) in &outcomes {
        let mut stored = segments.remove(id).unwrap_or_default();
        stored.sort_by_key(|s| s.seq);
        let stored_turns = turns.get(id).copied().unwrap_or(0);
        let stored_words = words.get(id).copied().unwrap_or(0);
        let closing = stored.last().map(|s| s.text.as_str());
        // Every word of every stored answer has its timestamp row (which answer the fake
        // heard first is not fixed: the script is per STT connection).
        let expected_words: usize = stored
            .iter()
            .filter(|s| s.speaker == transcript_segments::Speaker::Candidate)
            .map(|s| s.text.split_whitespace().count())
            .sum();
        if reason != "peer_disconnected"
            || stored.len() != expected_segments
            || closing != Some(REPLY)
            || *announced_turns != ANSWERS.len()
            || stored_turns != *announced_turns
            || stored_words != expected_words
            || expected_words == 0
        {
            failures.push(format!(
                "{id}: {reason}, {} segments (last {closing:?}), {stored_turns}/{announced_turns} turns, {stored_words} words",
                stored.len()
            ));
        }
    }
    eprintln!(
        "transcript load: {INTERVIEWS} interviews in {:.1}s (database stalled {:.1}s); writer queued {} written {} retried {} dropped {}; {} incomplete",
        elapsed.as_secs_f64(),
        stall.as_secs_f64(),
        counters.queued.get(),
        counters.written.get(),
        counters.retried.get(),
        counters.dropped.get(),
        failures.len(),
    );
    assert!(
        failures.is_empty(),
        "{} of {INTERVIEWS} interviews are not stored whole:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        ended.len(),
        INTERVIEWS,
        "every interview is stored as ended"
    );
    assert_eq!(counters.dropped.get(), 0, "the writer dropped nothing");
    assert!(
        counters.retried.get() >= 1,
        "the stall made the writer retry"
    );
    let rows =
        (INTERVIEWS * (expected_segments + ANSWERS.len()) + words.values().sum::<usize>()) as u64;
    assert_eq!(counters.written.get(), rows, "every queued row is stored");
    assert_eq!(counters.queued.get(), rows);
    drop(fakes);
    side.shutdown_background();
}
