//! Protects the Anthropic client against the fake over real sockets: streaming, usage and
//! timing, prompt caching, SDK-style retries and every injected fault.

use std::time::{Duration, Instant};

use engine::vendors::anthropic::{self, AnthropicConfig, AnthropicLlm};
use engine::vendors::retry::RetryPolicy;
use engine::vendors::{
    ChatMessage, ErrorCategory, LanguageModel, LlmEvent, LlmRequest, LlmStream, StopReason,
};
use fakes::{FakeAnthropic, Fault, Pacing, fault_key};
use secrecy::SecretString;

fn fast_fake_config() -> fakes::AnthropicConfig {
    fakes::AnthropicConfig {
        pacing: Pacing::faster(50.0),
        replies: vec!["Thanks. Tell me about a project you led, and what you would change.".into()],
        min_cacheable_tokens: 10,
        ..fakes::AnthropicConfig::default()
    }
}

/// The fake with short delays, started.
async fn start_fake() -> FakeAnthropic {
    FakeAnthropic::start(fast_fake_config())
        .await
        .expect("fake starts")
}

/// The stream ends with its `Finished` event.
async fn assert_finishes(stream: LlmStream) {
    assert!(matches!(
        stream.collect().await.1,
        Some(LlmEvent::Finished { .. })
    ));
}

fn client(fake: &FakeAnthropic, key: &str) -> AnthropicLlm {
    let mut cfg = AnthropicConfig::new(
        fake.base_url(),
        SecretString::from(key.to_string()),
        "claude-haiku-4-5",
    );
    cfg.retry = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(60),
    };
    cfg.idle_timeout = Duration::from_secs(2);
    cfg.response_timeout = Duration::from_secs(5);
    AnthropicLlm::new(cfg).expect("client builds with a valid config")
}

fn request() -> LlmRequest {
    LlmRequest {
        system: "You are a calm, concise interviewer for a senior backend role. Ask one question at a time."
            .into(),
        messages: vec![ChatMessage::user("Hi, I'm ready to start.")],
        ..LlmRequest::default()
    }
}

#[tokio::test]
async fn streams_text_and_reports_usage_timing_and_cost() {
    let fake = start_fake().await;
    let llm = client(&fake, "sk-test");
    let stream = llm.stream(request()).await.expect("stream starts");
    let (text, terminal) = stream.collect().await;
    assert_eq!(
        text,
        "Thanks. Tell me about a project you led, and what you would change."
    );
    let Some(LlmEvent::Finished {
        stop_reason,
        report,
    }) = terminal
    else {
        panic!("expected Finished, got {terminal:?}");
    };
    assert_eq!(stop_reason, StopReason::EndTurn);
    assert!(
        report.usage.output_tokens > 1,
        "cumulative output tokens: {report:?}"
    );
    assert!(report.usage.total_input_tokens() > 0);
    assert!(report.cost_usd > 0.0);
    assert!(report.timing.time_to_first_text.is_some());
    assert!(report.timing.time_to_headers <= report.timing.time_to_first_text);
    assert!(
        report
            .request_id
            .as_deref()
            .is_some_and(|r| r.starts_with("req_"))
    );
    let c = fake.counters();
    assert_eq!(c.streams_completed, 1);
    assert_eq!(c.output_tokens, report.usage.output_tokens);
    let sent = &fake.requests()[0];
    assert_eq!(sent.anthropic_version.as_deref(), Some("2023-06-01"));
    assert_eq!(sent.body["system"][0]["cache_control"]["type"], "ephemeral");
}

#[tokio::test]
async fn second_turn_reads_the_cached_system_prompt() {
    let fake = start_fake().await;
    let llm = client(&fake, "sk-test");
    let first = llm
        .stream(request())
        .await
        .expect("first")
        .collect()
        .await
        .1;
    let second = llm
        .stream(request())
        .await
        .expect("second")
        .collect()
        .await
        .1;
    let (Some(LlmEvent::Finished { report: r1, .. }), Some(LlmEvent::Finished { report: r2, .. })) =
        (first, second)
    else {
        panic!("both turns should finish");
    };
    assert!(r1.usage.cache_creation_input_tokens > 0, "{:?}", r1.usage);
    assert_eq!(r1.usage.cache_read_input_tokens, 0);
    assert_eq!(
        r2.usage.cache_read_input_tokens,
        r1.usage.cache_creation_input_tokens
    );
    assert!(
        r2.cost_usd < r1.cost_usd,
        "cache reads are cheaper than writes"
    );
}

#[tokio::test]
async fn thinking_blocks_are_never_spoken() {
    let fake = FakeAnthropic::start(fakes::AnthropicConfig {
        thinking: Some("Let me plan the next question carefully.".into()),
        ..fast_fake_config()
    })
    .await
    .expect("fake starts");
    let (text, terminal) = client(&fake, "sk-test")
        .stream(request())
        .await
        .expect("stream starts")
        .collect()
        .await;
    assert!(!text.contains("plan the next question"), "{text}");
    assert!(text.starts_with("Thanks."));
    assert!(matches!(terminal, Some(LlmEvent::Finished { .. })));
}

#[tokio::test]
async fn bad_key_fails_permanently_without_retry_and_without_echoing_the_key() {
    let fake = start_fake().await;
    let key = "invalid-sk-ant-api03-SECRETSECRET";
    let e = client(&fake, key).stream(request()).await.expect_err("401");
    assert_eq!(e.category, ErrorCategory::Auth);
    assert!(e.is_permanent());
    assert_eq!(e.status, Some(401));
    assert_eq!(
        fake.counters().requests,
        1,
        "a permanent error is not retried"
    );
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("SECRETSECRET"), "{shown}");
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let fake = start_fake().await;
    let key = fault_key(
        "sk-test",
        &[Fault::RateLimited {
            retry_after: Some(0.3),
        }],
    );
    let started = Instant::now();
    let (_, terminal) = client(&fake, &key)
        .stream(request())
        .await
        .expect("retried into a stream")
        .collect()
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "retry-after honoured"
    );
    let Some(LlmEvent::Finished { report, .. }) = terminal else {
        panic!("expected Finished: {terminal:?}");
    };
    assert_eq!(report.timing.retries, 1);
    assert_eq!(fake.counters().requests, 2);
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off_and_succeeds() {
    let fake = start_fake().await;
    let key = fault_key("sk-test", &[Fault::RateLimited { retry_after: None }]);
    let stream = client(&fake, &key)
        .stream(request())
        .await
        .expect("retried");
    assert_finishes(stream).await;
    assert_eq!(fake.counters().requests, 2);
}

#[tokio::test]
async fn overloaded_529_is_retried_until_max_retries_then_reported() {
    let fake = start_fake().await;
    let ok_after_one = fault_key("sk-a", &[Fault::Overloaded]);
    let stream = client(&fake, &ok_after_one)
        .stream(request())
        .await
        .expect("retried");
    assert_finishes(stream).await;

    let always = fault_key(
        "sk-b",
        &[Fault::Overloaded, Fault::Overloaded, Fault::Overloaded],
    );
    let e = client(&fake, &always)
        .stream(request())
        .await
        .expect_err("gives up");
    assert_eq!(e.category, ErrorCategory::Overloaded);
    assert_eq!(e.status, Some(529));
    assert!(!e.is_permanent());
    assert_eq!(fake.counters().requests, 2 + 3, "one try plus two retries");
}

#[tokio::test]
async fn x_should_retry_false_stops_retries_of_a_500() {
    let fake = start_fake().await;
    let key = fault_key(
        "sk-test",
        &[Fault::ServerError {
            should_retry: Some(false),
        }],
    );
    let e = client(&fake, &key)
        .stream(request())
        .await
        .expect_err("not retried");
    assert_eq!(e.category, ErrorCategory::Server);
    assert_eq!(fake.counters().requests, 1);
}

#[tokio::test]
async fn quota_exhaustion_is_permanent() {
    let fake = start_fake().await;
    let key = fault_key("sk-test", &[Fault::QuotaExceeded]);
    let e = client(&fake, &key)
        .stream(request())
        .await
        .expect_err("402");
    assert_eq!(e.category, ErrorCategory::Quota);
    assert!(e.is_permanent());
}

#[tokio::test]
async fn mid_stream_overloaded_error_fails_the_turn_after_partial_text() {
    let fake = start_fake().await;
    let key = fault_key("sk-test", &[Fault::MidStreamError { after: 2 }]);
    let (text, terminal) = client(&fake, &key)
        .stream(request())
        .await
        .expect("stream starts")
        .collect()
        .await;
    assert!(!text.is_empty(), "two deltas arrived first");
    let Some(LlmEvent::Failed { error, report }) = terminal else {
        panic!("a mid-stream error is a failure, not a truncated success: {terminal:?}");
    };
    assert_eq!(error.category, ErrorCategory::Overloaded);
    assert!(
        report.usage.input_tokens > 0,
        "usage from message_start is kept"
    );
    assert_eq!(fake.counters().streams_completed, 0);
}

#[tokio::test]
async fn dropped_connection_mid_stream_is_a_network_failure() {
    let fake = start_fake().await;
    let key = fault_key("sk-test", &[Fault::Drop { after: 1 }]);
    let (_, terminal) = client(&fake, &key)
        .stream(request())
        .await
        .expect("stream starts")
        .collect()
        .await;
    let Some(LlmEvent::Failed { error, .. }) = terminal else {
        panic!("expected Failed: {terminal:?}");
    };
    assert_eq!(error.category, ErrorCategory::Network);
}

#[tokio::test]
async fn stalled_stream_times_out() {
    let fake = start_fake().await;
    let key = fault_key("sk-test", &[Fault::Stall { after: 1 }]);
    let (_, terminal) = client(&fake, &key)
        .stream(request())
        .await
        .expect("stream starts")
        .collect()
        .await;
    let Some(LlmEvent::Failed { error, .. }) = terminal else {
        panic!("expected Failed: {terminal:?}");
    };
    assert_eq!(error.category, ErrorCategory::Timeout);
}

/// A client whose stream watchdog is short, and whose idle timeout is far longer, so a test
/// can tell which of the two gave up.
fn watched_client(fake: &FakeAnthropic, key: &str) -> AnthropicLlm {
    let mut cfg = client(fake, key).config().clone();
    cfg.idle_timeout = Duration::from_secs(60);
    cfg.first_token_timeout = Duration::from_millis(300);
    cfg.inter_token_timeout = Duration::from_millis(300);
    AnthropicLlm::new(cfg).expect("client builds with a valid config")
}

#[tokio::test]
async fn a_stream_stalled_before_its_first_token_is_sent_again_and_the_reply_arrives() {
    let fake = start_fake().await;
    // The first stream sends its headers, `message_start` and a ping, then nothing.
    let key = fault_key("sk-test", &[Fault::Stall { after: 0 }]);
    let stalls_before = anthropic::stalled_streams();
    let (text, terminal) = watched_client(&fake, &key)
        .stream(request())
        .await
        .expect("stream starts")
        .collect()
        .await;
    let Some(LlmEvent::Finished { report, .. }) = terminal else {
        panic!("the stalled attempt is replaced, not reported: {terminal:?}");
    };
    assert_eq!(
        text,
        "Thanks. Tell me about a project you led, and what you would change."
    );
    assert_eq!(fake.counters().streams_started, 2);
    assert!(report.timing.retries >= 1, "{report:?}");
    assert!(
        report.timing.time_to_first_text >= Some(Duration::from_millis(300)),
        "the watchdog waited its time first: {report:?}"
    );
    // Tests of this binary run in parallel and may stall streams of their own.
    assert!(anthropic::stalled_streams() > stalls_before);
}

#[tokio::test]
async fn a_stream_that_keeps_stalling_before_its_first_token_fails_as_a_timeout() {
    let fake = start_fake().await;
    let stall = Fault::Stall { after: 0 };
    // The first attempt and both retries stall.
    let key = fault_key("sk-test", &[stall.clone(), stall.clone(), stall]);
    let (text, terminal) = watched_client(&fake, &key)
        .stream(request())
        .await
        .expect("stream starts")
        .collect()
        .await;
    assert_eq!(text, "");
    let Some(LlmEvent::Failed { error, report }) = terminal else {
        panic!("expected Failed: {terminal:?}");
    };
    assert_eq!(error.category, ErrorCategory::Timeout);
    assert!(error.message.contains("no first token"), "{error}");
    assert_eq!(fake.counters().streams_started, 3);
    assert_eq!(report.timing.retries, 2);
    assert!(
        report.usage.input_tokens > 0,
        "the abandoned attempts' input is reported"
    );
}

#[tokio::test]
async fn a_stream_stalled_mid_reply_fails_within_the_inter_token_timeout() {
    let fake = start_fake().await;
    let key = fault_key("sk-test", &[Fault::Stall { after: 2 }]);
    let mut stream = watched_client(&fake, &key)
        .stream(request())
        .await
        .expect("stream starts");
    let mut last_text = None;
    let terminal = loop {
        match stream.next().await {
            Some(LlmEvent::TextDelta(_)) => last_text = Some(Instant::now()),
            other => break other,
        }
    };
    let last_text = last_text.expect("two deltas arrived before the stall");
    let Some(LlmEvent::Failed { error, .. }) = terminal else {
        panic!("part of the reply was delivered, so the stall is a failure: {terminal:?}");
    };
    assert_eq!(error.category, ErrorCategory::Timeout);
    assert!(error.message.contains("no token within 300 ms"), "{error}");
    let waited = last_text.elapsed();
    // At least the watchdog's time, and far less than the 60 s idle timeout (generous: the
    // machine may be loaded).
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    assert_eq!(
        fake.counters().streams_started,
        1,
        "a reply partly delivered is not sent again"
    );
}

#[tokio::test]
async fn slow_first_byte_within_the_deadline_still_streams() {
    let fake = start_fake().await;
    let key = fault_key(
        "sk-test",
        &[Fault::SlowFirstByte(Duration::from_millis(300))],
    );
    let (_, terminal) = client(&fake, &key)
        .stream(request())
        .await
        .expect("stream starts")
        .collect()
        .await;
    let Some(LlmEvent::Finished { report, .. }) = terminal else {
        panic!("expected Finished: {terminal:?}");
    };
    assert!(report.timing.time_to_headers >= Some(Duration::from_millis(300)));
}

#[tokio::test]
async fn cancel_mid_stream_returns_the_usage_so_far_and_closes_the_connection() {
    let fake = FakeAnthropic::start(fakes::AnthropicConfig {
        pacing: Pacing::faster(5.0),
        ..fast_fake_config()
    })
    .await
    .expect("fake starts");
    let mut stream = client(&fake, "sk-test")
        .stream(request())
        .await
        .expect("starts");
    let first = stream.next().await;
    assert!(matches!(first, Some(LlmEvent::TextDelta(_))), "{first:?}");
    let report = stream.cancel().await.expect("a report on cancel");
    assert!(report.usage.input_tokens > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.counters().streams_completed,
        0,
        "the fake saw the client go away"
    );
}

#[tokio::test]
async fn max_tokens_and_stop_sequences_are_reported_as_stop_reasons() {
    let fake = start_fake().await;
    let llm = client(&fake, "sk-test");
    let short = LlmRequest {
        max_tokens: Some(4),
        ..request()
    };
    let (_, t) = llm.stream(short).await.expect("starts").collect().await;
    assert!(
        matches!(
            t,
            Some(LlmEvent::Finished {
                stop_reason: StopReason::MaxTokens,
                ..
            })
        ),
        "{t:?}"
    );

    let stop = LlmRequest {
        stop_sequences: vec!["project".into()],
        ..request()
    };
    let (text, t) = llm.stream(stop).await.expect("starts").collect().await;
    assert_eq!(text, "Thanks. Tell me about a ");
    assert!(
        matches!(t, Some(LlmEvent::Finished { stop_reason: StopReason::StopSequence(ref s), .. }) if s == "project"),
        "{t:?}"
    );
}

#[tokio::test]
async fn unreachable_server_is_a_transient_network_error() {
    let fake = start_fake().await;
    let url = fake.base_url();
    fake.shutdown().await;
    let mut cfg = AnthropicConfig::new(url, SecretString::from("sk-test"), "claude-haiku-4-5");
    cfg.retry.max_retries = 0;
    let e = AnthropicLlm::new(cfg)
        .expect("builds")
        .stream(request())
        .await
        .expect_err("refused");
    assert_eq!(e.category, ErrorCategory::Network);
    assert!(!e.is_permanent());
}
