//! Protects the privacy promise that API keys are never logged: every client runs against its
//! fake with faults (retries, reconnects, errors) under a TRACE subscriber that captures all
//! crates' logs (ours, reqwest, hyper, tungstenite), and the key must not appear anywhere.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::vendors::anthropic::{AnthropicConfig, AnthropicLlm};
use engine::vendors::deepgram::{DeepgramConfig, DeepgramStt};
use engine::vendors::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use engine::vendors::retry::RetryPolicy;
use engine::vendors::{
    ChatMessage, LanguageModel, LlmRequest, SpeechToText, SttEvent, TextToSpeech,
};
use fakes::{FakeVendors, FakeVendorsConfig, Fault, Pacing, fault_key};
use secrecy::SecretString;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRET: &str = "LOGCHECK-SECRET-5f1e2d";

#[tokio::test]
async fn api_keys_never_reach_the_logs_even_on_errors_and_retries() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let fakes =
        FakeVendors::start_all(FakeVendorsConfig::default().with_pacing(Pacing::faster(50.0)))
            .await
            .expect("fakes start");

    // Anthropic: a 429 then a stream, and a rejected key.
    let key = fault_key(
        SECRET,
        &[Fault::RateLimited {
            retry_after: Some(0.01),
        }],
    );
    let mut cfg = AnthropicConfig::new(
        fakes.anthropic.base_url(),
        SecretString::from(key),
        "claude-haiku-4-5",
    );
    cfg.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let request = LlmRequest {
        messages: vec![ChatMessage::user("hi")],
        ..LlmRequest::default()
    };
    let (_, terminal) = AnthropicLlm::new(cfg.clone())
        .expect("builds")
        .stream(request.clone())
        .await
        .expect("retried")
        .collect()
        .await;
    assert!(terminal.is_some());
    cfg.api_key = SecretString::from(format!("invalid-{SECRET}")).into();
    let e = AnthropicLlm::new(cfg)
        .expect("builds")
        .stream(request)
        .await
        .expect_err("401");
    assert!(!format!("{e:?}").contains(SECRET));

    // Deepgram: a dropped socket and a reconnect.
    let key = fault_key(SECRET, &[Fault::Drop { after: 0 }]);
    let dg = DeepgramStt::new(DeepgramConfig::new(
        fakes.deepgram.base_url(),
        SecretString::from(key),
    ));
    let mut s = dg.start().await.expect("connects");
    let loud: Vec<i16> = (0..1600)
        .map(|i| if i % 40 < 20 { 3000 } else { -3000 })
        .collect();
    for _ in 0..10 {
        let _ = s.input.push_pcm(&loud);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let reconnected = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = s.events.recv().await {
            if matches!(e, SttEvent::Reconnected { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(reconnected, Ok(true));
    drop(s);

    // ElevenLabs: a refused upgrade and a normal session.
    let el = |key: String| {
        ElevenLabsTts::new(ElevenLabsConfig::new(
            fakes.elevenlabs.ws_base_url(),
            fakes.elevenlabs.base_url(),
            SecretString::from(key),
            "voice-1",
        ))
    };
    assert!(el(format!("invalid-{SECRET}")).start().await.is_err());
    let s = el(SECRET.to_string()).start().await.expect("connects");
    s.input.push_text("Hello. ").await.expect("open");
    s.input.finish().await.expect("open");
    let mut events = s.events;
    while let Some(e) = events.recv().await {
        if e.is_terminal() {
            break;
        }
    }

    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(logs.len() > 1000, "the capture works: {} bytes", logs.len());
    assert!(
        logs.contains("retrying"),
        "our own debug lines are captured"
    );
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(SECRET)).collect();
    assert!(leaks.is_empty(), "an API key reached the logs: {leaks:#?}");
    assert!(
        !logs.contains(&SECRET[..12]),
        "an API key prefix reached the logs"
    );
}
