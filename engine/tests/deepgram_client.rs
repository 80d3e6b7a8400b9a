//! Protects the Deepgram live client against the fake over real sockets: scripted speech in,
//! timed words out, KeepAlive, Finalize, CloseStream, reconnect-with-resend and every fault.

use std::time::Duration;

use engine::vendors::deepgram::{DeepgramConfig, DeepgramStt, ReconnectPolicy};
use engine::vendors::{ErrorCategory, SpeechToText, SttEvent, SttInput, SttSession, Transcript};
use fakes::{DeepgramConfig as FakeConfig, FakeDeepgram, Fault, fault_key};
use secrecy::SecretString;
use tokio::sync::mpsc;

const RATE: usize = 16_000;

fn fake_config(script: &[&str]) -> FakeConfig {
    FakeConfig {
        script: script.iter().map(|s| s.to_string()).collect(),
        ..FakeConfig::default()
    }
}

fn client(fake: &FakeDeepgram, key: &str) -> DeepgramStt {
    let mut cfg = DeepgramConfig::new(fake.base_url(), SecretString::from(key.to_string()));
    cfg.reconnect = ReconnectPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    };
    cfg.close_timeout = Duration::from_secs(5);
    DeepgramStt::new(cfg)
}

/// Pushes `seconds` of audio in 100 ms frames: a loud square wave, or silence.
async fn push(input: &SttInput, seconds: f64, loud: bool) {
    let frame = RATE / 10;
    let frames = (seconds * 10.0).round() as usize;
    for _ in 0..frames {
        let samples: Vec<i16> = (0..frame)
            .map(|i| {
                if !loud {
                    0
                } else if (i / 20) % 2 == 0 {
                    3000
                } else {
                    -3000
                }
            })
            .collect();
        while input.push_pcm(&samples).is_err() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads events until `done` says stop or the terminal event; fails the test after 10 s.
async fn read_until(
    events: &mut mpsc::Receiver<SttEvent>,
    mut done: impl FnMut(&SttEvent) -> bool,
) -> Vec<SttEvent> {
    let mut seen = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.recv().await {
            let stop = done(&e) || e.is_terminal();
            seen.push(e);
            if stop {
                break;
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "timed out; events so far: {seen:?}");
    seen
}

fn finals(events: &[SttEvent]) -> Vec<&Transcript> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Transcript(t) if t.is_final && !t.text.is_empty() => Some(t),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn scripted_speech_comes_back_as_timed_words_and_the_session_closes_with_usage() {
    let fake = FakeDeepgram::start(fake_config(&["I led the billing migration."]))
        .await
        .expect("fake starts");
    let SttSession { input, mut events } =
        client(&fake, "dg-test").start().await.expect("connects");
    push(&input, 0.5, false).await;
    push(&input, 2.0, true).await;
    push(&input, 1.5, false).await;
    let seen = read_until(&mut events, |e| matches!(e, SttEvent::UtteranceEnd { .. })).await;

    let started = seen.iter().find_map(|e| match e {
        SttEvent::SpeechStarted { at } => Some(*at),
        _ => None,
    });
    assert!(
        started.is_some_and(|at| (at - 0.5).abs() < 0.05),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, SttEvent::Transcript(t) if !t.is_final && !t.text.is_empty())),
        "interims while speaking"
    );
    let f = finals(&seen);
    assert_eq!(f.len(), 1, "{seen:?}");
    assert_eq!(f[0].text, "I led the billing migration.");
    assert!(f[0].speech_final);
    assert_eq!(f[0].words.len(), 5);
    assert!((f[0].words[0].start - 0.5).abs() < 0.05);
    assert!((f[0].words[4].end - 2.5).abs() < 0.05);
    assert_eq!(f[0].words[4].punctuated, "migration.");

    input.close().await.expect("session open");
    let rest = read_until(&mut events, |_| false).await;
    let Some(SttEvent::Closed(report)) = rest.last() else {
        panic!("expected Closed: {rest:?}");
    };
    assert!(
        (report.usage.audio_seconds - 4.0).abs() < 0.01,
        "{report:?}"
    );
    assert!(report.cost_usd > 0.0);
    assert!(report.timing.first_result.is_some());
    assert!(report.request_id.is_some());
    let c = fake.counters();
    assert!((c.audio_seconds - 4.0).abs() < 0.01, "{c:?}");
    assert!((c.max_rms - 3000.0).abs() < 1.0);
    assert_eq!(c.utterances, 1);
    assert_eq!(c.close_streams, 1);
}

#[tokio::test]
async fn finalize_turns_pending_speech_into_a_final_from_finalize() {
    let fake = FakeDeepgram::start(fake_config(&["Yes, that is right."]))
        .await
        .expect("fake starts");
    let SttSession { input, mut events } =
        client(&fake, "dg-test").start().await.expect("connects");
    push(&input, 1.0, true).await;
    input.finalize().await.expect("session open");
    let seen = read_until(
        &mut events,
        |e| matches!(e, SttEvent::Transcript(t) if t.is_final),
    )
    .await;
    let f = finals(&seen);
    assert_eq!(f.len(), 1, "{seen:?}");
    assert!(f[0].from_finalize);
    assert!(!f[0].speech_final);
    assert_eq!(fake.counters().finalizes, 1);
}

#[tokio::test]
async fn keepalive_holds_an_idle_socket_open_past_the_server_timeout() {
    let fake = FakeDeepgram::start(FakeConfig {
        inactivity_timeout: Duration::from_millis(900),
        ..fake_config(&["Still here."])
    })
    .await
    .expect("fake starts");
    let mut cfg = DeepgramConfig::new(fake.base_url(), SecretString::from("dg-test"));
    cfg.keepalive_after = Duration::from_millis(100);
    let SttSession { input, mut events } = DeepgramStt::new(cfg).start().await.expect("connects");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    push(&input, 1.0, true).await;
    push(&input, 0.5, false).await;
    let seen = read_until(
        &mut events,
        |e| matches!(e, SttEvent::Transcript(t) if t.is_final),
    )
    .await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, SttEvent::Reconnecting { .. })),
        "{seen:?}"
    );
    let c = fake.counters();
    assert!(c.keepalives >= 3, "{c:?}");
    assert_eq!(c.inactivity_closes, 0);
    assert_eq!(c.connections, 1);
}

#[tokio::test]
async fn server_inactivity_close_is_survived_by_reconnecting() {
    let fake = FakeDeepgram::start(FakeConfig {
        inactivity_timeout: Duration::from_millis(300),
        ..fake_config(&["After the pause."])
    })
    .await
    .expect("fake starts");
    let mut cfg = DeepgramConfig::new(fake.base_url(), SecretString::from("dg-test"));
    cfg.keepalive_after = Duration::from_secs(60);
    let SttSession { input, mut events } = DeepgramStt::new(cfg).start().await.expect("connects");
    let seen = read_until(&mut events, |e| matches!(e, SttEvent::Reconnected { .. })).await;
    let reason = seen.iter().find_map(|e| match e {
        SttEvent::Reconnecting { error, .. } => Some(error.clone()),
        _ => None,
    });
    let reason = reason.expect("a reconnect after NET-0001");
    assert_eq!(reason.category, ErrorCategory::Timeout);
    assert_eq!(reason.status, Some(1011));
    assert!(fake.counters().inactivity_closes >= 1);
    drop(input);
}

#[tokio::test]
async fn dropped_socket_mid_utterance_reconnects_and_resends_so_no_words_are_lost() {
    let fake = FakeDeepgram::start(fake_config(&["We sharded the ledger by tenant."]))
        .await
        .expect("fake starts");
    // Unit 1 is SpeechStarted; the drop comes instead of the first interim, mid-utterance.
    let key = fault_key("dg-test", &[Fault::Drop { after: 1 }]);
    let SttSession { input, mut events } = client(&fake, &key).start().await.expect("connects");
    push(&input, 0.5, false).await;
    push(&input, 2.0, true).await;
    push(&input, 1.0, false).await;
    let seen = read_until(
        &mut events,
        |e| matches!(e, SttEvent::Transcript(t) if t.is_final && !t.text.is_empty()),
    )
    .await;
    assert!(seen.iter().any(|e| matches!(e, SttEvent::Reconnecting { error, .. } if error.category == ErrorCategory::Network)), "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, SttEvent::Reconnected { .. }))
    );
    let f = finals(&seen);
    assert_eq!(f[0].text, "We sharded the ledger by tenant.");
    assert!(
        (f[0].words[0].start - 0.5).abs() < 0.05,
        "timeline kept: {:?}",
        f[0].words
    );
    input.close().await.expect("session open");
    let rest = read_until(&mut events, |_| false).await;
    let Some(SttEvent::Closed(report)) = rest.last() else {
        panic!("expected Closed: {rest:?}");
    };
    assert_eq!(report.usage.reconnects, 1);
    assert!(
        report.usage.billed_audio_seconds > report.usage.audio_seconds,
        "resent audio is billed"
    );
    assert_eq!(fake.counters().connections, 2);
}

#[tokio::test]
async fn a_net0000_close_mid_stream_reconnects() {
    let fake = FakeDeepgram::start(fake_config(&["One.", "One."]))
        .await
        .expect("fake starts");
    let key = fault_key("dg-test", &[Fault::MidStreamError { after: 1 }]);
    let SttSession { input, mut events } = client(&fake, &key).start().await.expect("connects");
    push(&input, 1.5, true).await;
    let seen = read_until(&mut events, |e| matches!(e, SttEvent::Reconnected { .. })).await;
    let cause = seen.iter().find_map(|e| match e {
        SttEvent::Reconnecting { error, .. } => Some(error.clone()),
        _ => None,
    });
    let cause = cause.expect("reconnecting after 1011");
    assert_eq!(cause.category, ErrorCategory::Server);
    assert!(
        cause.message.contains("NET-0000") || cause.message.contains("net0000"),
        "{cause}"
    );
    drop(input);
}

#[tokio::test]
async fn a_stalled_socket_is_detected_and_replaced() {
    let fake = FakeDeepgram::start(fake_config(&["Hello.", "Hello."]))
        .await
        .expect("fake starts");
    let key = fault_key("dg-test", &[Fault::Stall { after: 1 }]);
    let mut cfg = DeepgramConfig::new(fake.base_url(), SecretString::from(key));
    cfg.stall_timeout = Duration::from_millis(600);
    cfg.reconnect.initial_backoff = Duration::from_millis(20);
    let SttSession { input, mut events } = DeepgramStt::new(cfg).start().await.expect("connects");
    push(&input, 1.5, true).await;
    push(&input, 1.0, false).await;
    let seen = read_until(
        &mut events,
        |e| matches!(e, SttEvent::Transcript(t) if t.is_final && !t.text.is_empty()),
    )
    .await;
    assert!(seen.iter().any(|e| matches!(e, SttEvent::Reconnecting { error, .. } if error.category == ErrorCategory::Timeout)), "{seen:?}");
    assert_eq!(finals(&seen)[0].text, "Hello.");
    drop(input);
}

#[tokio::test]
async fn handshake_faults_map_to_categories_without_echoing_the_key() {
    let fake = FakeDeepgram::start(fake_config(&[]))
        .await
        .expect("fake starts");
    let e = client(&fake, "invalid-dg-SECRETSECRET")
        .start()
        .await
        .expect_err("401");
    assert_eq!(e.category, ErrorCategory::Auth);
    assert_eq!(e.status, Some(401));
    assert!(e.request_id.is_some());
    assert!(!format!("{e} {e:?}").contains("SECRETSECRET"));

    let e = client(&fake, &fault_key("dg", &[Fault::QuotaExceeded]))
        .start()
        .await
        .expect_err("402");
    assert_eq!(e.category, ErrorCategory::Quota);
    assert!(e.is_permanent());

    let key = fault_key(
        "dg",
        &[Fault::RateLimited {
            retry_after: Some(2.0),
        }],
    );
    let e = client(&fake, &key).start().await.expect_err("429");
    assert_eq!(e.category, ErrorCategory::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    assert!(!e.is_permanent());

    let e = client(&fake, &fault_key("dg", &[Fault::Overloaded]))
        .start()
        .await
        .expect_err("503");
    assert_eq!(e.category, ErrorCategory::Overloaded);
    assert_eq!(fake.counters().rejected, 4);
}

#[tokio::test]
async fn bad_query_parameters_are_a_permanent_bad_request() {
    let fake = FakeDeepgram::start(fake_config(&[]))
        .await
        .expect("fake starts");
    let mut cfg = DeepgramConfig::new(fake.base_url(), SecretString::from("dg-test"));
    cfg.params.interim_results = false; // utterance_end_ms needs interim results
    let e = DeepgramStt::new(cfg).start().await.expect_err("400");
    assert_eq!(e.category, ErrorCategory::BadRequest);
    assert!(e.is_permanent());
}

#[tokio::test]
async fn slow_handshake_is_reflected_in_connect_timing() {
    let fake = FakeDeepgram::start(fake_config(&[]))
        .await
        .expect("fake starts");
    let key = fault_key("dg", &[Fault::SlowFirstByte(Duration::from_millis(300))]);
    let SttSession { input, mut events } = client(&fake, &key).start().await.expect("connects");
    input.close().await.expect("open");
    let seen = read_until(&mut events, |_| false).await;
    let Some(SttEvent::Closed(report)) = seen.last() else {
        panic!("expected Closed: {seen:?}");
    };
    assert!(report.timing.connect >= Some(Duration::from_millis(300)));
}

#[tokio::test]
async fn dropping_the_input_cancels_the_session() {
    let fake = FakeDeepgram::start(fake_config(&[]))
        .await
        .expect("fake starts");
    let SttSession { input, mut events } =
        client(&fake, "dg-test").start().await.expect("connects");
    drop(input);
    let seen = read_until(&mut events, |_| false).await;
    assert!(
        matches!(seen.last(), Some(SttEvent::Failed { error, .. }) if error.category == ErrorCategory::Cancelled),
        "{seen:?}"
    );
}

#[tokio::test]
async fn wss_urls_use_tls_and_fail_cleanly_against_a_plain_server() {
    let fake = FakeDeepgram::start(fake_config(&[]))
        .await
        .expect("fake starts");
    let url = fake.base_url().replace("ws://", "wss://");
    let e = DeepgramStt::new(DeepgramConfig::new(url, SecretString::from("dg-test")))
        .start()
        .await
        .expect_err("a plain server cannot complete a TLS handshake");
    assert_eq!(e.category, ErrorCategory::Network);
    assert!(e.message.contains("TLS"), "{e}");
}
