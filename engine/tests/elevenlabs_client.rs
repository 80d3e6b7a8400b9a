//! Protects the ElevenLabs clients (stream-input WebSocket and HTTP /stream fallback) against
//! the fake over real sockets: paced PCM with alignment, flush, end-of-stream, keepalive,
//! usage and timing, and every injected fault.

use std::time::Duration;

use engine::vendors::elevenlabs::{ElevenLabsConfig, ElevenLabsHttpTts, ElevenLabsTts};
use engine::vendors::{ErrorCategory, TextToSpeech, TtsEvent, TtsReport, TtsSession};
use fakes::{ElevenLabsConfig as FakeConfig, FakeElevenLabs, Fault, Pacing, fault_key};
use secrecy::SecretString;
use tokio::sync::mpsc;

const TEXT: &str = "Thanks for joining. Let's start with your most recent project. ";

fn fast() -> FakeConfig {
    FakeConfig {
        pacing: Pacing::faster(20.0),
        ..FakeConfig::default()
    }
}

fn config(fake: &FakeElevenLabs, key: &str) -> ElevenLabsConfig {
    let mut c = ElevenLabsConfig::new(
        fake.ws_base_url(),
        fake.base_url(),
        SecretString::from(key.to_string()),
        "voice-1",
    );
    c.audio_timeout = Duration::from_secs(3);
    c
}

async fn drain(events: &mut mpsc::Receiver<TtsEvent>) -> (Vec<TtsEvent>, TtsEvent) {
    let mut audio = Vec::new();
    let result = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.recv().await {
            if e.is_terminal() {
                return Some(e);
            }
            audio.push(e);
        }
        None
    })
    .await;
    let terminal = result
        .expect("the session ends within 10 s")
        .expect("a terminal event before the channel closes");
    (audio, terminal)
}

fn samples(events: &[TtsEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            TtsEvent::Audio(c) => c.pcm.len(),
            _ => 0,
        })
        .sum()
}

fn failure(terminal: &TtsEvent) -> (ErrorCategory, TtsReport) {
    match terminal {
        TtsEvent::Failed { error, report } => (error.category, report.clone()),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_streams_paced_pcm_with_alignment_and_reports_usage() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let TtsSession { input, mut events } = ElevenLabsTts::new(config(&fake, "xi-test"))
        .start()
        .await
        .expect("connects");
    input.push_text(TEXT).await.expect("open");
    input.finish().await.expect("open");
    let (audio, terminal) = drain(&mut events).await;
    let TtsEvent::Done(report) = terminal else {
        panic!("expected Done: {terminal:?}");
    };
    let expected = TEXT.chars().count() as f64 / 15.0 * 16_000.0;
    assert!(
        (samples(&audio) as f64 - expected).abs() < 200.0,
        "{} vs {expected}",
        samples(&audio)
    );
    let aligned: String = audio
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio(c) => c.alignment.as_ref().map(|a| a.chars.concat()),
            _ => None,
        })
        .collect();
    assert_eq!(aligned, TEXT);
    let TtsEvent::Audio(first) = &audio[0] else {
        unreachable!("only audio before terminal")
    };
    assert_eq!(first.sample_rate, 16_000);
    assert_eq!(
        first
            .normalized_alignment
            .as_ref()
            .map(|a| a.chars[0].as_str()),
        Some(" ")
    );
    assert!(
        first.pcm.iter().any(|s| s.unsigned_abs() > 1000),
        "audible tone"
    );
    assert_eq!(report.usage.characters, TEXT.chars().count() as u64);
    assert!((report.usage.audio_seconds - expected / 16_000.0).abs() < 0.02);
    assert!(report.timing.time_to_first_audio.is_some());
    assert!(report.cost_usd > 0.0);
    let c = fake.counters();
    assert_eq!(c.characters, TEXT.chars().count() as u64);
    assert_eq!(c.end_of_streams, 1);
    assert_eq!(c.chunks, report.usage.chunks);
}

#[tokio::test]
async fn short_text_waits_for_the_schedule_until_flushed() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let TtsSession { input, mut events } = ElevenLabsTts::new(config(&fake, "xi-test"))
        .start()
        .await
        .expect("connects");
    input.push_text("Sure. ").await.expect("open");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        events.try_recv().is_err(),
        "below the 120-char schedule nothing is generated"
    );
    input.flush().await.expect("open");
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("audio after flush");
    assert!(matches!(first, Some(TtsEvent::Audio(_))), "{first:?}");
    assert_eq!(fake.counters().flushes, 1);
    input.finish().await.expect("open");
    let (_, terminal) = drain(&mut events).await;
    assert!(matches!(terminal, TtsEvent::Done(_)), "{terminal:?}");
}

#[tokio::test]
async fn keepalive_holds_the_socket_past_the_inactivity_timeout() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let mut c = config(&fake, "xi-test");
    c.inactivity_timeout_secs = 1;
    c.keepalive_after = Duration::from_millis(250);
    let TtsSession { input, mut events } = ElevenLabsTts::new(c).start().await.expect("connects");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    input.push_text(TEXT).await.expect("open");
    input.finish().await.expect("open");
    let (_, terminal) = drain(&mut events).await;
    assert!(matches!(terminal, TtsEvent::Done(_)), "{terminal:?}");
    let counters = fake.counters();
    assert!(counters.keepalives >= 3, "{counters:?}");
    assert_eq!(counters.inactivity_closes, 0);
}

#[tokio::test]
async fn silence_past_the_inactivity_timeout_fails_with_a_timeout() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let mut c = config(&fake, "xi-test");
    c.inactivity_timeout_secs = 1;
    c.keepalive_after = Duration::from_secs(30);
    let TtsSession { input, mut events } = ElevenLabsTts::new(c).start().await.expect("connects");
    let (_, terminal) = drain(&mut events).await;
    let (category, _) = failure(&terminal);
    assert_eq!(category, ErrorCategory::Timeout);
    assert_eq!(fake.counters().inactivity_closes, 1);
    drop(input);
}

#[tokio::test]
async fn upgrade_refusals_map_to_categories_without_echoing_the_key() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let e = ElevenLabsTts::new(config(&fake, "invalid-xi-SECRETSECRET"))
        .start()
        .await
        .expect_err("401");
    assert_eq!(e.category, ErrorCategory::Auth);
    assert_eq!(e.status, Some(401));
    assert!(!format!("{e} {e:?}").contains("SECRETSECRET"));

    let key = fault_key(
        "xi",
        &[Fault::RateLimited {
            retry_after: Some(1.5),
        }],
    );
    let e = ElevenLabsTts::new(config(&fake, &key))
        .start()
        .await
        .expect_err("429");
    assert_eq!(e.category, ErrorCategory::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));

    let key = fault_key("xi", &[Fault::Overloaded]);
    let e = ElevenLabsTts::new(config(&fake, &key))
        .start()
        .await
        .expect_err("busy");
    assert_eq!(e.category, ErrorCategory::Overloaded);
    assert!(!e.is_permanent());
}

#[tokio::test]
async fn a_final_without_audio_for_real_text_is_reported_as_quota_exhaustion() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let key = fault_key("xi", &[Fault::QuotaExceeded]);
    let TtsSession { input, mut events } = ElevenLabsTts::new(config(&fake, &key))
        .start()
        .await
        .expect("connects");
    input.push_text(TEXT).await.expect("open");
    input.finish().await.expect("open");
    let (audio, terminal) = drain(&mut events).await;
    assert!(audio.is_empty());
    let (category, report) = failure(&terminal);
    assert_eq!(category, ErrorCategory::Quota);
    assert_eq!(report.usage.characters, TEXT.chars().count() as u64);
}

#[tokio::test]
async fn dropped_socket_mid_audio_fails_as_network_after_partial_audio() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let key = fault_key("xi", &[Fault::Drop { after: 2 }]);
    let TtsSession { input, mut events } = ElevenLabsTts::new(config(&fake, &key))
        .start()
        .await
        .expect("connects");
    input.push_text(TEXT).await.expect("open");
    input.finish().await.expect("open");
    let (audio, terminal) = drain(&mut events).await;
    assert_eq!(
        audio.len(),
        2,
        "exactly the chunks sent before the drop, never replayed"
    );
    assert_eq!(failure(&terminal).0, ErrorCategory::Network);
}

#[tokio::test]
async fn server_error_close_mid_audio_fails_as_server_error() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let key = fault_key("xi", &[Fault::MidStreamError { after: 1 }]);
    let TtsSession { input, mut events } = ElevenLabsTts::new(config(&fake, &key))
        .start()
        .await
        .expect("connects");
    input.push_text(TEXT).await.expect("open");
    input.finish().await.expect("open");
    let (_, terminal) = drain(&mut events).await;
    assert_eq!(failure(&terminal).0, ErrorCategory::Server);
}

#[tokio::test]
async fn stalled_audio_is_detected_by_the_stall_watchdog() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let key = fault_key("xi", &[Fault::Stall { after: 1 }]);
    let mut c = config(&fake, &key);
    c.stall_timeout = Duration::from_millis(500);
    let TtsSession { input, mut events } = ElevenLabsTts::new(c).start().await.expect("connects");
    input.push_text(TEXT).await.expect("open");
    input.finish().await.expect("open");
    let (audio, terminal) = drain(&mut events).await;
    assert_eq!(audio.len(), 1);
    assert_eq!(failure(&terminal).0, ErrorCategory::Timeout);
}

#[tokio::test]
async fn slow_handshake_shows_in_connect_timing() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let key = fault_key("xi", &[Fault::SlowFirstByte(Duration::from_millis(300))]);
    let TtsSession { input, mut events } = ElevenLabsTts::new(config(&fake, &key))
        .start()
        .await
        .expect("connects");
    input.push_text(TEXT).await.expect("open");
    input.finish().await.expect("open");
    let (_, terminal) = drain(&mut events).await;
    let TtsEvent::Done(report) = terminal else {
        panic!("expected Done: {terminal:?}");
    };
    assert!(report.timing.connect >= Some(Duration::from_millis(300)));
}

#[tokio::test]
async fn cancel_mid_utterance_stops_audio_and_reports() {
    let fake = FakeElevenLabs::start(FakeConfig {
        pacing: Pacing::faster(2.0),
        ..FakeConfig::default()
    })
    .await
    .expect("fake starts");
    let TtsSession { input, mut events } = ElevenLabsTts::new(config(&fake, "xi-test"))
        .start()
        .await
        .expect("connects");
    input.push_text(TEXT).await.expect("open");
    input.flush().await.expect("open");
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("audio");
    assert!(matches!(first, Some(TtsEvent::Audio(_))));
    input.cancel().await.expect("open");
    let (_, terminal) = drain(&mut events).await;
    let (category, report) = failure(&terminal);
    assert_eq!(category, ErrorCategory::Cancelled);
    assert!(report.usage.chunks >= 1);
    let sent = fake.counters().chunks;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fake.counters().chunks,
        sent,
        "the fake stops sending once the socket is closed"
    );
}

#[tokio::test]
async fn http_fallback_synthesizes_each_flushed_segment() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    let tts = ElevenLabsHttpTts::new(config(&fake, "xi-test")).expect("client builds");
    let TtsSession { input, mut events } = tts.start().await.expect("starts");
    input
        .push_text("First sentence here. ")
        .await
        .expect("open");
    input.flush().await.expect("open");
    input.push_text("And a second one. ").await.expect("open");
    input.finish().await.expect("open");
    let (audio, terminal) = drain(&mut events).await;
    let TtsEvent::Done(report) = terminal else {
        panic!("expected Done: {terminal:?}");
    };
    let chars = "First sentence here. And a second one. ".chars().count();
    assert_eq!(report.usage.characters, chars as u64);
    let expected = chars as f64 / 15.0 * 16_000.0;
    assert!((samples(&audio) as f64 - expected).abs() < 400.0);
    assert!(report.request_id.is_some());
    assert_eq!(fake.counters().http_requests, 2);
}

#[tokio::test]
async fn http_fallback_reports_every_fault() {
    let fake = FakeElevenLabs::start(fast()).await.expect("fake starts");
    for (key, expected) in [
        ("invalid-xi".to_string(), ErrorCategory::Auth),
        (
            fault_key("xi-q", &[Fault::QuotaExceeded]),
            ErrorCategory::Quota,
        ),
        (
            fault_key("xi-r", &[Fault::RateLimited { retry_after: None }]),
            ErrorCategory::RateLimited,
        ),
        (
            fault_key("xi-o", &[Fault::Overloaded]),
            ErrorCategory::Overloaded,
        ),
        (
            fault_key("xi-d", &[Fault::Drop { after: 1 }]),
            ErrorCategory::Network,
        ),
        (
            fault_key("xi-s", &[Fault::Stall { after: 1 }]),
            ErrorCategory::Timeout,
        ),
    ] {
        let mut c = config(&fake, &key);
        c.audio_timeout = Duration::from_millis(1500);
        let TtsSession { input, mut events } = ElevenLabsHttpTts::new(c)
            .expect("builds")
            .start()
            .await
            .expect("starts");
        input.push_text(TEXT).await.expect("open");
        input.finish().await.expect("open");
        let (_, terminal) = drain(&mut events).await;
        assert_eq!(failure(&terminal).0, expected, "key {key}");
    }
}
